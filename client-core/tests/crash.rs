//! Crash safety: the built `propsync-device` binary records actions in a loop
//! and is killed with SIGKILL at random moments; every action whose command
//! printed success must be in the store when it is opened again, and the
//! store must open.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use client_core::Device;
use client_core::schema::Status;

const BIN: &str = env!("CARGO_BIN_EXE_propsync-device");

/// A one-route HTTP server for `GET /api/v1/me`, on a thread.
fn fake_me(inbox: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let body = format!(
        r#"{{"user":"eng1","role":"engineer","department":"engineering","device":"dev-eng1","inbox":"automerge:{inbox}","relay_peer_id":"relay-1"}}"#
    );
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            // Read the request head.
            while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                line.clear();
            }
            let mut s = &stream;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

fn cli(store: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("--store")
        .arg(store)
        .arg("--json")
        .args(args)
        .output()
        .expect("run propsync-device")
}

fn ok_json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn actions_that_printed_success_survive_kill_9_at_random_moments() {
    let dir = std::env::temp_dir().join(format!("propsync-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let store = dir.join("device.db");
    let inbox = client_core::schema::DocId::random().to_string();
    let relay = fake_me(&inbox);
    ok_json(&cli(&store, &["enroll", "--relay", &relay, "--token", "t"]));
    let report = ok_json(&cli(
        &store,
        &[
            "report",
            "--kind",
            "repair",
            "--title",
            "leak in B2",
            "--category",
            "plumbing",
        ],
    ));
    let ticket = report["ticket"].as_str().expect("ticket").to_owned();
    let mut printed: Vec<String> = vec![report["event"].as_str().expect("event").to_owned()];
    for action in ["grab", "accept", "start"] {
        let mut args = vec!["do", ticket.as_str(), action];
        if action == "grab" {
            args.extend(["--assignee", "eng1"]);
        }
        printed.push(
            ok_json(&cli(&store, &args))["event"]
                .as_str()
                .expect("event")
                .to_owned(),
        );
    }

    let mut kills = 0;
    let mut successes = 0;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut i = 0u32;
    while kills < 60 && Instant::now() < deadline {
        i += 1;
        // What the next action is depends on what the store holds now (a
        // killed hold may or may not have been committed).
        let status = Device::open(&store)
            .expect("store opens between runs")
            .show(&ticket)
            .expect("show")
            .with_pending
            .status;
        let args: Vec<String> = if i.is_multiple_of(3) {
            vec!["note".into(), ticket.clone(), format!("note {i}")]
        } else if status == Status::InProgress {
            vec![
                "do".into(),
                ticket.clone(),
                "hold".into(),
                "--reason".into(),
                format!("parts {i}"),
            ]
        } else {
            vec!["do".into(), ticket.clone(), "resume".into()]
        };
        let mut child = Command::new(BIN)
            .arg("--store")
            .arg(&store)
            .arg("--json")
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        // A random moment within the command's life (it takes a few ms to tens of ms).
        let delay = Duration::from_micros(rand::random_range(0..30_000));
        let started = Instant::now();
        let mut killed = false;
        loop {
            if child.try_wait().expect("try_wait").is_some() {
                break;
            }
            if started.elapsed() >= delay {
                let _ = child.kill();
                killed = true;
                break;
            }
            std::thread::yield_now();
        }
        let status = child.wait().expect("wait");
        let mut out = String::new();
        if let Some(mut s) = child.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        if killed && !status.success() {
            kills += 1;
        }
        if status.success() {
            let v: serde_json::Value = serde_json::from_str(&out).expect("json on success");
            let id = v["event"]
                .as_str()
                .or(v["note"].as_str())
                .expect("id")
                .to_owned();
            successes += 1;
            printed.push(id);
        }
    }
    assert!(kills >= 50, "only {kills} kills landed mid-command");

    let device = Device::open(&store).expect("the store opens after the kills");
    let view = device.show(&ticket).expect("the ticket reads");
    assert!(view.load.is_clean(), "{:?}", view.load);
    let mut present: Vec<String> = view
        .ticket
        .events
        .iter()
        .map(|e| e.id.to_string())
        .collect();
    present.extend(view.ticket.notes.iter().map(|n| n.id.to_string()));
    let missing: Vec<&String> = printed.iter().filter(|id| !present.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "actions printed as done but lost: {missing:?}"
    );
    let pending = device.pending().expect("pending");
    for id in &printed {
        assert!(
            pending.iter().any(|p| &p.event_id == id),
            "{id} not pending"
        );
    }
    eprintln!(
        "{kills} kills, {successes} completed commands, {} actions kept",
        printed.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
