//! The relay's edges (issue 11), tried the way an attacker with ordinary
//! HTTP and WebSocket clients would: floods of bad tokens and logins, password
//! guessing, tokens in URLs, forged cross-site requests, a logged-out session
//! kept open, blobs fetched by hash, uploads that never finish.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use futures_util::future::join_all;
use harness::server::schema::{Action, EventData};
use harness::{TestRelay, eventually};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

/// A WebSocket upgrade of `/sync` with `token` in the URL; the HTTP status
/// when the relay refuses it.
async fn upgrade(base: &str, token: &str) -> Option<u16> {
    let url = format!("{}/sync?token={token}", base.replacen("http", "ws", 1));
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => None,
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Some(r.status().as_u16()),
        Err(_) => Some(0),
    }
}

async fn login(
    http: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
) -> Result<(u16, Value, reqwest::header::HeaderMap)> {
    let r = http
        .post(format!("{base}/api/v1/login"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await?;
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    Ok((status, r.json().await.unwrap_or(Value::Null), headers))
}

/// The security log as the manager sees it.
async fn security_log(relay: &TestRelay) -> Result<Vec<Value>> {
    let (status, log) = relay
        .api("manager")
        .await?
        .get("/api/v1/security-log")
        .await?;
    ensure!(status == 200, "security log: {status} {log}");
    Ok(log["items"].as_array().cloned().unwrap_or_default())
}

fn total(items: &[Value], kind: &str) -> u64 {
    items
        .iter()
        .filter(|i| i["kind"] == kind)
        .map(|i| i["count"].as_u64().unwrap_or(0))
        .sum()
}

/// 400 upgrades with forged tokens and 100 failed logins: before, each was a
/// security-log row in its own write transaction (one fsync each); now they
/// are coalesced and written a few at a time, and the manager still sees
/// every one of them counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_tokens_and_logins_costs_no_write_each() -> Result<()> {
    let relay = TestRelay::start().await?;
    let http = reqwest::Client::new();
    let before = relay.relay.write_transactions();
    let (upgrades, logins) = (400usize, 100usize);
    for batch in 0..upgrades / 100 {
        let tries = (0..100).map(|i| {
            upgrade(
                &relay.url,
                if i % 2 == 0 {
                    "forged"
                } else {
                    "eyJhbGciOiJub25lIn0.e30."
                },
            )
        });
        let statuses = join_all(tries).await;
        ensure!(
            statuses.iter().all(|s| *s == Some(401)),
            "batch {batch}: every forged token refused with 401: {statuses:?}"
        );
    }
    let tries = (0..logins).map(|i| {
        let user = if i % 2 == 0 {
            "eng1".to_owned()
        } else {
            format!("nobody{i}")
        };
        let (http, url) = (http.clone(), relay.url.clone());
        async move {
            login(&http, &url, &user, "not the password")
                .await
                .map(|r| r.0)
        }
    });
    for status in join_all(tries).await {
        ensure!(status? == 401, "a wrong password is a 401");
    }
    let writes = relay.relay.write_transactions() - before;
    relay.relay.flush_security_log().await;
    let items = security_log(&relay).await?;
    let (refused, failed) = (total(&items, "auth_refused"), total(&items, "bad_login"));
    eprintln!(
        "{upgrades} forged upgrades and {logins} failed logins: {writes} write transactions; \
         security log: {refused} refused tokens and {failed} failed logins in {} rows",
        items.len()
    );
    assert_eq!(refused, upgrades as u64, "every refused token is counted");
    assert_eq!(failed, logins as u64, "every failed login is counted");
    assert!(
        writes < 25,
        "{writes} write transactions for {} refusals",
        upgrades + logins
    );
    Ok(())
}

/// Password guessing against one name: after 3 failures the name is locked
/// (429 with Retry-After, even for the right password), the lock-out is in
/// the security log once, other names are untouched; an unknown user costs
/// the same argon2 verification as a known one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_a_password_locks_the_name_out_once_and_unknown_names_cost_the_same() -> Result<()>
{
    let relay = TestRelay::start_with(|c| {
        c.limits = harness::server::Limits {
            lockout_after: 3,
            ..harness::server::Limits::default()
        };
    })
    .await?;
    let http = reqwest::Client::new();
    let password = relay.creds["eng2"].password.clone();
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(login(&http, &relay.url, "eng2", "guess").await?.0);
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429, 429, 429, 429]);
    let (status, body, headers) = login(&http, &relay.url, "eng2", &password).await?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("locked_out")),
        "{body}"
    );
    let wait: u64 = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .context("Retry-After")?;
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(
        login(&http, &relay.url, "eng3", &relay.creds["eng3"].password)
            .await?
            .0,
        200
    );
    let items = security_log(&relay).await?;
    let locked: Vec<&Value> = items
        .iter()
        .filter(|i| i["kind"] == "login_locked")
        .collect();
    assert_eq!(locked.len(), 1, "one row for the lock-out: {locked:?}");
    assert_eq!(locked[0]["username"], "eng2");
    assert_eq!(
        total(&items, "bad_login"),
        3,
        "locked tries are not logged one by one"
    );

    // Unknown and known names: one argon2 verification each.
    let checks = relay.relay.password_checks();
    login(&http, &relay.url, "no-such-user", "x").await?;
    assert_eq!(
        relay.relay.password_checks() - checks,
        1,
        "an unknown user is verified against a dummy hash"
    );
    login(&http, &relay.url, "eng1", "x").await?;
    assert_eq!(relay.relay.password_checks() - checks, 2);
    // The times, for RELIABILITY.md (no assertion on time), on a relay
    // without limits.
    let relay2 = TestRelay::start().await?;
    let time = |user: &'static str| {
        let (http, url) = (http.clone(), relay2.url.clone());
        async move {
            let start = Instant::now();
            for _ in 0..10 {
                let _ = login(&http, &url, user, "wrong").await;
            }
            start.elapsed() / 10
        }
    };
    let (known, unknown) = (time("cashier").await, time("nobody-at-all").await);
    eprintln!("failed login, mean of 10: known user {known:?}, unknown user {unknown:?}");
    Ok(())
}

/// One address past its burst gets JSON 429s with Retry-After, logged as
/// coalesced rows; the health check is never limited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_past_its_burst_is_slowed_down() -> Result<()> {
    let relay = TestRelay::start_with(|c| {
        c.limits = harness::server::Limits {
            per_address_per_second: 5,
            per_address_burst: 20,
            ..harness::server::Limits::default()
        };
    })
    .await?;
    let http = reqwest::Client::new();
    let mut limited = 0;
    for _ in 0..60 {
        let r = http
            .get(format!("{}/api/v1/me", relay.url))
            .bearer_auth("forged")
            .send()
            .await?;
        if r.status().as_u16() == 429 {
            limited += 1;
            ensure!(r.headers().contains_key("retry-after"), "Retry-After");
            let body: Value = r.json().await?;
            ensure!(body["error"]["code"] == "rate_limited", "{body}");
        }
    }
    assert!(limited >= 30, "only {limited} of 60 limited");
    assert_eq!(
        upgrade(&relay.url, "forged").await,
        Some(429),
        "/sync upgrades count too"
    );
    let r = http
        .get(format!("{}/api/v1/health", relay.url))
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 200, "the health check is not limited");
    // Wait out the limit, then read the log.
    let manager = eventually("the limit to let the manager in", WAIT, || async {
        relay.api("manager").await.ok()
    })
    .await?;
    let (_, log) = eventually("the security log", WAIT, || async {
        manager
            .get("/api/v1/security-log")
            .await
            .ok()
            .filter(|(s, _)| *s == 200)
    })
    .await?;
    let items = log["items"].as_array().cloned().unwrap_or_default();
    assert!(total(&items, "rate_limited") >= limited, "{items:?}");
    Ok(())
}

/// The dashboard's session: an HttpOnly SameSite=Strict cookie; a forged
/// cross-site POST (the cookie without the CSRF token) is refused; no token
/// is taken from a URL but on /sync; token kinds are kept apart both ways;
/// logout ends the session server-side and its live stream within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_needs_its_csrf_token_and_logout_ends_everything() -> Result<()> {
    let relay = TestRelay::start().await?;
    let http = reqwest::Client::new();
    let (status, session, headers) = login(
        &http,
        &relay.url,
        "frontdesk",
        &relay.creds["frontdesk"].password,
    )
    .await?;
    ensure!(status == 200, "{session}");
    let set_cookie = headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .context("a Set-Cookie")?
        .to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attr), "{attr}: {set_cookie}");
    }
    let cookie = set_cookie.split(';').next().context("cookie")?.to_owned();
    let token = session["token"].as_str().context("token")?.to_owned();
    let csrf = session["csrf"].as_str().context("csrf")?.to_owned();
    let url = |p: &str| format!("{}{p}", relay.url);

    let r = http
        .get(url("/api/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 200, "the cookie alone reads");
    let ticket = json!({"kind": "complaint", "title": "Noise", "location": "B1 lobby"});
    let r = http
        .post(url("/api/v1/tickets"))
        .header("cookie", &cookie)
        .json(&ticket)
        .send()
        .await?;
    assert_eq!(
        r.status().as_u16(),
        403,
        "a cross-site POST with the cookie only"
    );
    assert_eq!(r.json::<Value>().await?["error"]["code"], "csrf");
    let r = http
        .post(url("/api/v1/tickets"))
        .header("cookie", &cookie)
        .header("x-csrf-token", "0".repeat(32))
        .json(&ticket)
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 403, "a guessed CSRF token");
    let r = http
        .post(url("/api/v1/tickets"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&ticket)
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 201, "the page's own POST");
    let r = http
        .post(url("/api/v1/tickets"))
        .bearer_auth(&token)
        .json(&ticket)
        .send()
        .await?;
    assert_eq!(
        r.status().as_u16(),
        201,
        "a bearer request needs no CSRF token"
    );

    // Tokens in URLs: refused everywhere but /sync.
    for path in ["/api/v1/me", "/api/v1/tickets", "/api/v1/live"] {
        let r = http
            .get(url(&format!("{path}?token={token}")))
            .send()
            .await?;
        assert_eq!(r.status().as_u16(), 401, "{path}?token=");
    }
    // Kinds: a device token opens /sync, /me and blobs, not the dashboard's API;
    // a session token does not open /sync.
    let device = relay.creds["frontdesk"].device_token.clone();
    let r = http
        .get(url("/api/v1/tickets"))
        .bearer_auth(&device)
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        r.json::<Value>().await?["error"]["code"],
        "wrong_token_kind"
    );
    let r = http
        .get(url("/api/v1/me"))
        .bearer_auth(&device)
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        upgrade(&relay.url, &token).await,
        Some(401),
        "a session token on /sync"
    );
    assert_eq!(
        upgrade(&relay.url, &device).await,
        None,
        "the device token on /sync"
    );

    // A live stream on the cookie, then logout: it ends, the token and cookie stop.
    let mut live = http
        .get(url("/api/v1/live"))
        .header("cookie", &cookie)
        .send()
        .await?;
    assert_eq!(live.status().as_u16(), 200);
    let r = http
        .post(url("/api/v1/logout"))
        .header("cookie", &cookie)
        .send()
        .await?;
    assert_eq!(
        r.status().as_u16(),
        403,
        "logout by cookie needs the CSRF token too"
    );
    let r = http
        .post(url("/api/v1/logout"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 200);
    let cleared = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let ended = Instant::now();
    let end = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match live.chunk().await {
                Ok(Some(_)) => continue,
                _ => return,
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the live stream ended after logout");
    eprintln!("live stream ended {:?} after logout", ended.elapsed());
    for (what, req) in [
        (
            "cookie",
            http.get(url("/api/v1/me")).header("cookie", &cookie),
        ),
        ("bearer", http.get(url("/api/v1/me")).bearer_auth(&token)),
    ] {
        let r = req.send().await?;
        assert_eq!(r.status().as_u16(), 401, "the logged-out session's {what}");
    }
    Ok(())
}

async fn put_blob(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    sha: &str,
    bytes: &[u8],
    size: usize,
) -> Result<(u16, Value)> {
    let r = http
        .put(format!("{base}/api/v1/blobs/{sha}"))
        .bearer_auth(token)
        .header("x-blob-size", size.to_string())
        .header("x-blob-offset", "0")
        .header("content-type", "image/jpeg")
        .body(bytes.to_vec())
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

async fn get_blob(http: &reqwest::Client, base: &str, token: &str, sha: &str) -> Result<u16> {
    Ok(http
        .get(format!("{base}/api/v1/blobs/{sha}"))
        .bearer_auth(token)
        .send()
        .await?
        .status()
        .as_u16())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A photo is served to the phone that sent it and to whoever may read a
/// ticket that references it, and to nobody else: another engineer who
/// learns the hash gets a 404, and claiming the upload with the hash alone
/// (no bytes) does not make it theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_is_served_only_to_its_uploader_and_readers_of_a_ticket_naming_it() -> Result<()> {
    let s =
        harness::FetchedRepair::on(TestRelay::start().await?, "Meter cupboard", "B1-102").await?;
    let relay = &s.relay;
    let http = reqwest::Client::new();
    let photo: &[u8] = b"\xff\xd8\xff\xe0 the meter, before";
    let sha = sha256_hex(photo);
    let eng1 = relay.creds["eng1"].device_token.clone();
    let eng3 = relay.creds["eng3"].device_token.clone();
    let (status, body) = put_blob(&http, &relay.url, &eng1, &sha, photo, photo.len()).await?;
    ensure!(status == 200 && body["complete"] == true, "{status} {body}");
    assert_eq!(
        get_blob(&http, &relay.url, &eng1, &sha).await?,
        200,
        "the uploader"
    );
    assert_eq!(
        get_blob(&http, &relay.url, &eng3, &sha).await?,
        404,
        "another engineer"
    );
    let desk = relay.api("frontdesk").await?;
    assert_eq!(
        get_blob(&http, &relay.url, &desk.token, &sha).await?,
        404,
        "not referenced yet"
    );

    // eng1's phone starts the repair with the photo: the ticket references it.
    let phone = relay.device("eng1").await?;
    phone.add_photo(photo, "image/jpeg")?;
    phone.sync_once().await?;
    phone.act(&s.id, Action::Accept, EventData::default())?;
    phone.act(
        &s.id,
        Action::Start,
        EventData {
            photos: vec![sha.clone()],
            ..EventData::default()
        },
    )?;
    let up = phone.sync_once().await?;
    ensure!(up.acked >= 2, "{up:?}");
    assert_eq!(
        get_blob(&http, &relay.url, &desk.token, &sha).await?,
        200,
        "the desk reads the ticket"
    );
    assert_eq!(
        get_blob(&http, &relay.url, &eng3, &sha).await?,
        404,
        "eng3 may not read the ticket"
    );

    // The hash alone does not make eng3 an uploader; the bytes do.
    let (status, body) = put_blob(&http, &relay.url, &eng3, &sha, b"", photo.len()).await?;
    assert!(
        status == 200 && body["complete"] == false,
        "{status} {body}"
    );
    let r = http
        .head(format!("{}/api/v1/blobs/{sha}", relay.url))
        .bearer_auth(&eng3)
        .send()
        .await?;
    assert_ne!(
        r.headers()
            .get("x-blob-received")
            .and_then(|v| v.to_str().ok()),
        Some(photo.len().to_string().as_str()),
        "HEAD does not tell eng3 the relay has it"
    );
    assert_eq!(get_blob(&http, &relay.url, &eng3, &sha).await?, 404);
    let (status, body) = put_blob(&http, &relay.url, &eng3, &sha, photo, photo.len()).await?;
    assert!(status == 200 && body["complete"] == true, "{status} {body}");
    assert_eq!(
        get_blob(&http, &relay.url, &eng3, &sha).await?,
        200,
        "eng3 sent the bytes"
    );
    Ok(())
}

/// A device's daily upload quota, and abandoned uploads swept away while a
/// fresh one stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_have_a_daily_quota_and_abandoned_parts_are_swept() -> Result<()> {
    let relay = TestRelay::start_with(|c| {
        c.blob_quota_per_day = 1_000;
        c.blob_sweep_every = Duration::from_millis(100);
        c.blob_part_max_age = Duration::from_secs(3_600);
    })
    .await?;
    let http = reqwest::Client::new();
    let eng1 = relay.creds["eng1"].device_token.clone();
    let first = vec![1u8; 800];
    let (status, _) = put_blob(
        &http,
        &relay.url,
        &eng1,
        &sha256_hex(&first),
        &first,
        first.len(),
    )
    .await?;
    assert_eq!(status, 200);
    let second = vec![2u8; 800];
    let r = http
        .put(format!(
            "{}/api/v1/blobs/{}",
            relay.url,
            sha256_hex(&second)
        ))
        .bearer_auth(&eng1)
        .header("x-blob-size", "800")
        .body(second.clone())
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(r.json::<Value>().await?["error"]["code"], "quota_exceeded");
    let eng2 = relay.creds["eng2"].device_token.clone();
    let (status, _) =
        put_blob(&http, &relay.url, &eng2, &sha256_hex(&second), &second, 800).await?;
    assert_eq!(status, 200, "another device has its own quota");

    let blobs = relay.dir().join("relay/blobs");
    let (old, fresh) = (
        blobs.join(format!("{}.part", "a".repeat(64))),
        blobs.join(format!("{}.part", "b".repeat(64))),
    );
    std::fs::write(&old, b"half a photo")?;
    std::fs::write(&fresh, b"half a photo")?;
    std::fs::File::options()
        .write(true)
        .open(&old)?
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(2 * 3_600))?;
    eventually("the abandoned upload to be deleted", WAIT, || async {
        (!old.exists()).then_some(())
    })
    .await?;
    assert!(fresh.exists(), "an upload in progress stays");
    Ok(())
}
