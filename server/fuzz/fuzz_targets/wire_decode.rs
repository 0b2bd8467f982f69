//! The automerge-repo CBOR frame decoder on arbitrary bytes: it returns a
//! message or an error, never panics, and what it decodes re-encodes to a
//! frame that decodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use server::schema::wire::{Limits, decode, encode};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(msg) = decode(data, &limits) {
        let again = decode(&encode(&msg), &limits).expect("a decoded message re-encodes");
        assert_eq!(format!("{msg:?}"), format!("{again:?}"));
    }
});
