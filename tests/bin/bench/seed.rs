//! The property under test: engineers with enrolled phones (made with the
//! relay's library on the data directory before the relay starts), tickets
//! recorded and assigned through the REST API as the front desk, each phone's
//! first online sync, and the offline work each engineer then does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, ensure};
use automerge::transaction::CommitOptions;
use automerge::{ActorId, Change, ChangeHash};
use futures_util::StreamExt;
use harness::server::schema::ticket::{Material, Note};
use harness::server::schema::{
    Action, DeviceId, DocId, Event, EventData, EventId, Fen, UserId, doc as schema_doc,
};
use harness::{Api, server};
use serde_json::json;

use crate::fleet::{Conn, Held, Identity, Target, Wire};

/// How many REST calls or connections are in flight at once while seeding.
const PARALLEL: usize = 32;

/// The engineers' phones.
pub(crate) struct Property {
    /// One engineer per storm device.
    pub(crate) engineers: Vec<(UserId, Identity)>,
    /// Two phones of one more engineer, for the live test.
    pub(crate) live: (UserId, Identity, Identity),
}

/// The demo property's users and their credentials.
pub(crate) type Demo = BTreeMap<String, server::demo::DemoUser>;

/// Creates the demo property in `data` with the relay's library, before any
/// relay process runs on it.
pub(crate) async fn demo(data: &Path) -> Result<Demo> {
    let config = server::Config::new(data.to_owned(), "127.0.0.1:0".parse()?);
    let relay = server::open(config).await?;
    server::demo::seed(&relay)
        .await
        .map_err(|e| anyhow!("{e}"))?
        .context("the data directory was not fresh")
}

/// Adds `n` engineers with a phone each (plus the live pair) to the demo
/// property in `data`, with the relay's library, while no relay process
/// runs on it.
pub(crate) async fn property(
    data: &Path,
    n: usize,
    progress: &crate::Progress,
) -> Result<Property> {
    let config = server::Config::new(data.to_owned(), "127.0.0.1:0".parse()?);
    let relay = server::open(config).await?;
    let enrol = |name: String, phones: Vec<String>| {
        let relay = relay.clone();
        async move {
            let user = UserId::new(&name)?;
            // The password is never used: phones sign in with device tokens.
            server::admin::create_user(
                &relay,
                &user,
                &name,
                &format!("{:032x}", rand::random::<u128>()),
                server::schema::Role::Engineer,
                None,
            )
            .await
            .map_err(|e| anyhow!("creating {name}: {e}"))?;
            let mut ids = Vec::new();
            for phone in phones {
                let token =
                    server::admin::enroll_device(&relay, &user, &DeviceId::new(&phone)?, "bench")
                        .await
                        .map_err(|e| anyhow!("enrolling {phone}: {e}"))?;
                ids.push(Identity {
                    name: phone,
                    token,
                    actor: ActorId::random(),
                    inbox: None,
                });
            }
            anyhow::Ok((user, ids))
        }
    };
    let mut engineers = Vec::with_capacity(n);
    let mut made = futures_util::stream::iter((0..n).map(|i| {
        let f = enrol(
            format!("bench-eng-{i}"),
            vec![format!("bench-eng-{i}-phone")],
        );
        tokio::spawn(f)
    }))
    .buffered(8);
    while let Some(r) = made.next().await {
        let (user, mut ids) = r??;
        engineers.push((user, ids.remove(0)));
        progress.show(&format!("enrolling engineers {}/{n}", engineers.len()));
    }
    let (live_user, mut phones) = enrol(
        "bench-live".into(),
        vec!["bench-live-a".into(), "bench-live-b".into()],
    )
    .await?;
    let b = phones.pop().context("phone b")?;
    let a = phones.pop().context("phone a")?;
    Ok(Property {
        engineers,
        live: (live_user, a, b),
    })
}

/// Records `count` repair orders through the REST API, each assigned to the
/// engineer `assign(i)` names (or to nobody); returns their ids in order.
pub(crate) async fn tickets(
    desk: &Api,
    count: usize,
    assign: impl Fn(usize) -> Option<UserId>,
    progress: &crate::Progress,
    what: &str,
) -> Result<Vec<DocId>> {
    let mut ids = vec![None; count];
    let mut done = 0;
    let mut made = futures_util::stream::iter((0..count).map(|i| {
        let desk = desk.clone();
        let to = assign(i);
        async move {
            let (status, t) = desk
                .post(
                    "/api/v1/tickets",
                    &json!({"kind": "repair", "title": format!("Bench order {i}"),
                            "location": format!("B{}-{}", i % 7 + 1, i % 400 + 101),
                            "category": "plumbing", "channel": "phone"}),
                )
                .await?;
            ensure!(status == 201, "creating a ticket: HTTP {status}: {t}");
            let id: DocId = t["id"].as_str().context("id")?.parse()?;
            if let Some(user) = to {
                let outcome = desk
                    .act(&id.to_string(), "assign", json!({"assignee": user}))
                    .await?;
                ensure!(outcome == "accepted", "assigning {id}: {outcome}");
            }
            anyhow::Ok((i, id))
        }
    }))
    .buffer_unordered(PARALLEL);
    while let Some(r) = made.next().await {
        let (i, id) = r?;
        ids[i] = Some(id);
        done += 1;
        if done % 50 == 0 || done == count {
            progress.show(&format!("{what} {done}/{count}"));
        }
    }
    Ok(ids.into_iter().flatten().collect())
}

/// Each phone's first sync with the relay: it learns its inbox from
/// `/api/v1/me`, follows it, and fetches its `expect` tickets.
pub(crate) async fn first_sync(
    relay: &str,
    phones: Vec<Identity>,
    expect: usize,
    progress: &crate::Progress,
) -> Result<Vec<(Identity, BTreeMap<DocId, Held>)>> {
    let target = Target {
        base: relay.to_owned(),
        path: "/sync",
        tokens: true,
        verdicts: true,
    };
    let wire = Arc::new(Wire::default());
    let total = phones.len();
    let mut out = Vec::with_capacity(total);
    let mut synced = futures_util::stream::iter(phones.into_iter().map(|mut id| {
        let (target, wire, relay) = (target.clone(), Arc::clone(&wire), relay.to_owned());
        async move {
            let me: serde_json::Value = reqwest::Client::new()
                .get(format!("{relay}/api/v1/me"))
                .bearer_auth(&id.token)
                .send()
                .await?
                .json()
                .await?;
            let inbox: harness::server::schema::DocUrl =
                me["inbox"].as_str().context("inbox")?.parse()?;
            id.inbox = Some(inbox.id());
            let mut conn = Conn::open(&target, &id, BTreeMap::new(), &BTreeMap::new(), wire)
                .await
                .with_context(|| format!("first sync of {}", id.name))?;
            conn.until(Duration::from_secs(120), |c| {
                c.engine().is_idle() && c.engine().doc_ids().len() > expect
            })
            .await
            .with_context(|| format!("first sync of {}", id.name))?;
            let held = conn.held();
            conn.close().await;
            anyhow::Ok((id, held))
        }
    }))
    .buffered(PARALLEL); // in order: phone i is engineer i
    while let Some(r) = synced.next().await {
        out.push(r?);
        progress.show(&format!("first sync {}/{total}", out.len()));
    }
    Ok(out)
}

/// Pushes documents to the peer from one device, so they exist there before
/// the storm; returns them with the sync states that session left.
pub(crate) async fn push(
    target: &Target,
    id: &Identity,
    docs: BTreeMap<DocId, Held>,
) -> Result<BTreeMap<DocId, Held>> {
    let docs = docs
        .into_iter()
        .map(|(k, h)| (k, Held { state: None, ..h }))
        .collect();
    let mut conn = Conn::open(
        target,
        id,
        docs,
        &BTreeMap::new(),
        Arc::new(Wire::default()),
    )
    .await?;
    conn.until(Duration::from_secs(120), |c| c.engine().is_idle())
        .await
        .with_context(|| format!("seeding the peer from {}", id.name))?;
    let held = conn.held();
    conn.close().await;
    Ok(held)
}

/// One ticket's offline work.
#[derive(Debug, Default)]
pub(crate) struct Work {
    /// The changes, in order (one per event or note).
    pub(crate) changes: Vec<Change>,
    /// The lifecycle events (notes get no verdict).
    pub(crate) events: BTreeSet<EventId>,
}

impl Work {
    pub(crate) fn hashes(&self) -> Vec<ChangeHash> {
        self.changes.iter().map(Change::hash).collect()
    }
}

/// An engineer's `e` offline steps on one ticket: accept, start, notes,
/// complete with labour and materials (the first `e` of them, notes in the middle).
pub(crate) fn offline_work(
    doc: &mut automerge::Automerge,
    user: &UserId,
    device: &str,
    e: usize,
) -> Result<Work> {
    let device = DeviceId::new(device)?;
    let mut steps: Vec<Option<(Action, EventData)>> = vec![
        Some((Action::Accept, EventData::default())),
        Some((Action::Start, EventData::default())),
    ];
    steps.extend(std::iter::repeat_n(None, e.saturating_sub(3)));
    steps.push(Some((
        Action::Complete,
        EventData {
            result: Some("replaced the valve and tested for leaks".into()),
            labour_min: Some(45),
            materials: Some(vec![
                Material {
                    name: "pressure valve".into(),
                    qty: 1,
                    unit_fen: Fen::new(3_500),
                },
                Material {
                    name: "PTFE tape".into(),
                    qty: 2,
                    unit_fen: Fen::new(300),
                },
            ]),
            ..EventData::default()
        },
    )));
    if e < 3 {
        steps.truncate(e);
    }
    let mut work = Work::default();
    for (i, step) in steps.into_iter().enumerate() {
        let now = chrono::Utc::now();
        let mut tx = doc.transaction();
        match step {
            Some((action, data)) => {
                let event = Event {
                    id: EventId::random(),
                    action: action.as_str().to_owned(),
                    by: user.clone(),
                    device: device.clone(),
                    at: now,
                    data,
                };
                schema_doc::append_event(&mut tx, &event)?;
                work.events.insert(event.id);
            }
            None => {
                let note = Note {
                    id: EventId::random(),
                    by: user.clone(),
                    device: device.clone(),
                    at: now,
                    text: format!("note {i}: resident asked to call before the next visit"),
                };
                schema_doc::append_note(&mut tx, &note)?;
            }
        }
        tx.commit_with(CommitOptions::default().with_time(now.timestamp_millis()));
        work.changes.push(
            doc.get_last_local_change()
                .context("the step made no change")?
                .clone(),
        );
    }
    Ok(work)
}
