//! Token verification on arbitrary strings, and on a real token with bytes
//! spliced in: never a panic, and nothing but the untouched token verifies.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use server::auth::Keys;

fn fixture() -> &'static (Keys, String, chrono::DateTime<chrono::Utc>) {
    static F: OnceLock<(Keys, String, chrono::DateTime<chrono::Utc>)> = OnceLock::new();
    F.get_or_init(|| {
        let now = chrono::Utc::now();
        let (keys, token) = server::fuzzing::keys_and_token(now);
        (keys, token, now)
    })
}

fuzz_target!(|data: &[u8]| {
    let (keys, token, now) = fixture();
    let text = String::from_utf8_lossy(data);
    let _ = keys.verify(&text, *now);
    // Splice the input into the real token at a position its first byte picks.
    if let Some((&at, rest)) = data.split_first() {
        let mut forged = token.clone();
        let at = usize::from(at) % (forged.len() + 1);
        if forged.is_char_boundary(at) {
            forged.insert_str(at, &String::from_utf8_lossy(rest));
            if forged != *token {
                // Appended base64 can decode to the same bytes only by chance;
                // what verifies must still name the same subject.
                if let Ok(c) = keys.verify(&forged, *now) {
                    assert_eq!(c.sub, "manager");
                }
            }
        }
    }
    assert!(keys.verify(token, *now).is_ok());
});
