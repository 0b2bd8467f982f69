//! The golden week (issue 15): a scripted week at the demo property, Monday
//! 2 to Sunday 8 March 2026 in the property's time zone (Asia/Shanghai,
//! UTC+8), run through the real relay on a clock the test moves, the desk
//! working over REST and the field on real phones (`client-core`).
//!
//! The week covers every path a report reads: contacts of every kind and
//! channel by several clerks; repairs completed, handed back, transferred,
//! put on hold, voided before dispatch, cancelled; paid work quoted,
//! collected and waived; return visits early, on time, late and not reached,
//! with each satisfaction; complaints routed, answered, reopened, one
//! crossing seven days to FOCUS; an escalation; work recorded on a phone that
//! was offline across the Monday 09:00 cut-off. Contacts at 23:30 and at
//! 07:59 local (23:59 UTC the day before) test the local day.
//!
//! Every figure of every report's summary and every row of its tables, as
//! printed on Monday 9 March at 09:00, is written out by hand below (never
//! computed by the code under test); after the late phone syncs, the same
//! reports "as of" Monday 09:00 give the same figures, and the late work is
//! listed in their "changes since" section.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicI64;

use anyhow::{Context, Result, bail, ensure};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, SecondsFormat, Utc};
use harness::client_core::{Device, Report as Found};
use harness::server::schema::ticket::{Material, Urgency};
use harness::server::schema::{Action, EventData, Fen, Kind, Role, UserId};
use harness::{Api, TestClock, TestRelay};
use serde_json::{Value, json};

static WORLD: AtomicI64 = AtomicI64::new(0);
const CLOCK: TestClock = TestClock::new(&WORLD);

/// The phones' clock: the same time as the relay's.
fn world() -> DateTime<Utc> {
    CLOCK.now()
}

/// A wall time in Shanghai in March 2026: "Mon2 09:05" is Monday 2 March,
/// 09:05 local, 01:05 UTC (China keeps UTC+8 all year).
fn local(when: &str) -> DateTime<Utc> {
    let (day, time) = when.split_once(' ').expect("\"Day9 HH:MM\"");
    let day: u32 = day
        .trim_start_matches(|c: char| c.is_ascii_alphabetic())
        .parse()
        .expect("a day of March");
    let time = NaiveTime::parse_from_str(time, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(time, "%H:%M"))
        .expect("HH:MM");
    NaiveDate::from_ymd_opt(2026, 3, day)
        .expect("a date")
        .and_time(time)
        .and_utc()
        - Duration::hours(8)
}

/// A time as the relay writes it on the wire: RFC 3339 UTC, milliseconds.
fn ts(when: &str) -> Value {
    json!(local(when).to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// Moves the world's clock to `when` (never back).
fn at(when: &str) -> Result<()> {
    let t = local(when);
    ensure!(t >= CLOCK.now(), "the script goes back in time at {when}");
    CLOCK.set(t);
    Ok(())
}

/// Script names (C1, R1, …) of the tickets, by document id.
type Ids = BTreeMap<&'static str, String>;

fn id<'a>(ids: &'a Ids, name: &str) -> Result<&'a str> {
    ids.get(name)
        .map(String::as_str)
        .with_context(|| format!("no ticket {name} yet"))
}

/// The desk records a contact over REST; an order gets `serial` at once.
async fn record(
    ids: &mut Ids,
    when: &str,
    who: &Api,
    name: &'static str,
    body: Value,
    serial: Option<&str>,
) -> Result<()> {
    at(when)?;
    let (status, t) = who.post("/api/v1/tickets", &body).await?;
    ensure!(status == 201, "{when} recording {name}: HTTP {status}: {t}");
    ensure!(
        t["serial"].as_str() == serial,
        "{name}'s serial: {} (expected {serial:?})",
        t["serial"]
    );
    ids.insert(name, t["id"].as_str().context("an id")?.to_owned());
    Ok(())
}

/// A desk user acts over REST; the step must be accepted.
async fn act(
    ids: &Ids,
    when: &str,
    who: &Api,
    name: &str,
    action: &str,
    data: Value,
) -> Result<()> {
    at(when)?;
    let outcome = who.act(id(ids, name)?, action, data).await?;
    ensure!(
        outcome == "accepted",
        "{when} {action} on {name}: {outcome}"
    );
    Ok(())
}

/// A phone records a step (offline until its next sync).
fn tap(
    ids: &Ids,
    when: &str,
    phone: &Device,
    name: &str,
    action: Action,
    data: EventData,
) -> Result<()> {
    at(when)?;
    phone
        .act(id(ids, name)?, action, data)
        .with_context(|| format!("{when} {action} on {name}"))?;
    Ok(())
}

/// A phone syncs; everything it had recorded is judged, and accepted.
async fn sync(when: &str, phone: &Device) -> Result<()> {
    at(when)?;
    phone
        .sync_once()
        .await
        .with_context(|| format!("{when} sync"))?;
    let left = phone.pending()?;
    ensure!(
        left.is_empty(),
        "{when}: still pending after a sync: {left:?}"
    );
    let refused = phone.quarantine()?;
    ensure!(refused.is_empty(), "{when}: quarantined: {refused:?}");
    Ok(())
}

fn reason(r: &str) -> EventData {
    EventData {
        reason: Some(r.into()),
        ..EventData::default()
    }
}

fn completion(
    result: &str,
    labour_min: i64,
    materials: &[(&str, i64, i64)],
    quote: Option<i64>,
) -> EventData {
    EventData {
        result: Some(result.into()),
        labour_min: Some(labour_min),
        materials: Some(
            materials
                .iter()
                .map(|&(name, qty, unit)| Material {
                    name: name.into(),
                    qty,
                    unit_fen: Fen::new(unit),
                })
                .collect(),
        ),
        quote_fen: quote.map(Fen::new),
        ..EventData::default()
    }
}

fn contact(kind: &str, title: &str, location: &str, channel: &str) -> Value {
    json!({"kind": kind, "title": title, "location": location, "channel": channel, "urgency": "normal"})
}

fn order(kind: &str, title: &str, location: &str, channel: &str, category: &str) -> Value {
    json!({"kind": kind, "title": title, "location": location, "channel": channel,
           "category": category, "urgency": "normal"})
}

fn visit(satisfaction: &str) -> Value {
    json!({"contact_result": "reached", "satisfaction": satisfaction})
}

// ------------------------------------------------------------ reading reports

async fn report(api: &Api, name: &str, query: &str) -> Result<Value> {
    let (status, body) = api.get(&format!("/api/v1/reports/{name}?{query}")).await?;
    ensure!(status == 200, "{name}?{query}: HTTP {status}: {body}");
    Ok(body)
}

/// Replaces every document id (and its 8-character short form, a matter's
/// label) with the ticket's script name, so rows can be written by hand.
fn named(v: &Value, names: &BTreeMap<String, String>) -> Value {
    match v {
        Value::String(s) => names.get(s).map_or_else(|| v.clone(), |n| json!(n)),
        Value::Array(a) => Value::Array(a.iter().map(|x| named(x, names)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), named(x, names)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// One table: its English title and every row, in order.
type Rows = (&'static str, Vec<Value>);

/// Asserts every summary figure (label and value, in order) and every row of
/// every table of a report; `tables` must name all of its tables.
fn check(
    r: &Value,
    names: &BTreeMap<String, String>,
    summary: &[(&str, Value)],
    tables: &[Rows],
) -> Result<()> {
    let name = r["name"].as_str().unwrap_or("?");
    let got: Vec<(String, Value)> = r["summary"]
        .as_array()
        .context("summary")?
        .iter()
        .map(|s| {
            (
                s["label"].as_str().unwrap_or("").to_owned(),
                s["value"].clone(),
            )
        })
        .collect();
    let want: Vec<(String, Value)> = summary
        .iter()
        .map(|(l, v)| ((*l).to_owned(), v.clone()))
        .collect();
    if got != want {
        let mut diff = String::new();
        for i in 0..got.len().max(want.len()) {
            let (g, w) = (got.get(i), want.get(i));
            if g != w {
                diff.push_str(&format!("\n  #{i}: got {g:?}, expected {w:?}"));
            }
        }
        bail!("{name}: the summary differs:{diff}");
    }
    let titles: Vec<&str> = r["tables"]
        .as_array()
        .context("tables")?
        .iter()
        .map(|t| t["title"].as_str().unwrap_or(""))
        .collect();
    let expected: Vec<&str> = tables.iter().map(|(t, _)| *t).collect();
    ensure!(
        titles == expected,
        "{name}: tables {titles:?}, expected {expected:?}"
    );
    for ((title, rows), t) in tables.iter().zip(r["tables"].as_array().context("tables")?) {
        let got = named(&t["rows"], names);
        let got = got.as_array().context("rows")?;
        for (i, (g, w)) in got.iter().zip(rows).enumerate() {
            ensure!(
                g == w,
                "{name} / {title}, row {i}:\n  got      {g}\n  expected {w}"
            );
        }
        ensure!(
            got.len() == rows.len(),
            "{name} / {title}: {} rows, expected {}: {}",
            got.len(),
            rows.len(),
            Value::Array(got.clone())
        );
    }
    Ok(())
}

/// The rows of a report's "changes since the cut-off" tables, by title.
fn changes_since(r: &Value, names: &BTreeMap<String, String>) -> Vec<(String, Value)> {
    r["changes_since"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    (
                        t["title"].as_str().unwrap_or("").to_owned(),
                        named(&t["rows"], names),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

const REPORTS: [&str; 10] = [
    "daily-register",
    "serial-register",
    "open-overdue",
    "not-returned",
    "cashier-close",
    "sync-health",
    "weekly-unresolved",
    "focus-complaints",
    "return-visits",
    "engineer-performance",
];

// ------------------------------------------------------------ the week

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_golden_week_gives_the_figures_a_manager_counted_by_hand() -> Result<()> {
    let relay = TestRelay::start_at(CLOCK, local("Sun1 20:00"), |c| {
        c.session_ttl = Duration::days(60);
    })
    .await?;
    // A second front-desk clerk for the week.
    server_admin_user(&relay, "frontdesk2", "second-clerk-password").await?;
    let desk = relay.api("frontdesk").await?;
    let desk2 = Api::login(&relay.url, "frontdesk2", "second-clerk-password").await?;
    let sup = relay.api("supervisor").await?;
    let engsup = relay.api("engsup").await?;
    let mgr = relay.api("manager").await?;
    let cashier = relay.api("cashier").await?;
    let eng1 = relay.device("eng1").await?.with_clock(world);
    let eng2 = relay.device("eng2").await?.with_clock(world);
    let eng3 = relay.device("eng3").await?.with_clock(world);
    let security1 = relay.device("security1").await?.with_clock(world);
    let cleaning1 = relay.device("cleaning1").await?.with_clock(world);
    let mut ids = Ids::new();
    let ids = &mut ids;

    // ---- Monday 2 March
    record(
        ids,
        "Mon2 08:40",
        &desk,
        "C1",
        contact(
            "complaint",
            "Renovation noise after 22:00",
            "B1-101",
            "phone",
        ),
        None,
    )
    .await?;
    act(
        ids,
        "Mon2 08:45",
        &desk,
        "C1",
        "route",
        json!({"department": "security"}),
    )
    .await?;
    record(
        ids,
        "Mon2 09:05",
        &desk,
        "R1",
        order(
            "repair",
            "Kitchen tap leaking",
            "B1-102 kitchen",
            "walk_in",
            "plumbing",
        ),
        Some("RO-2026-000001"),
    )
    .await?;
    act(
        ids,
        "Mon2 09:10",
        &desk,
        "R1",
        "assign",
        json!({"assignee": "eng1"}),
    )
    .await?;
    record(
        ids,
        "Mon2 09:30",
        &desk,
        "N1",
        contact("need", "Parking permit renewal", "B2-201", "phone"),
        None,
    )
    .await?;
    act(
        ids,
        "Mon2 09:32",
        &desk,
        "N1",
        "answer",
        json!({"result": "Bring the car's registration to the office"}),
    )
    .await?;
    sync("Mon2 09:40", &eng1).await?;
    tap(
        ids,
        "Mon2 09:45",
        &eng1,
        "R1",
        Action::Accept,
        EventData::default(),
    )?;
    tap(
        ids,
        "Mon2 10:00",
        &eng1,
        "R1",
        Action::Start,
        EventData::default(),
    )?;
    record(
        ids,
        "Mon2 10:00",
        &desk2,
        "P1",
        order(
            "paid_service",
            "Deep-clean the range hood",
            "B2-302 kitchen",
            "phone",
            "cleaning",
        ),
        Some("PS-2026-000001"),
    )
    .await?;
    act(
        ids,
        "Mon2 10:05",
        &desk2,
        "P1",
        "assign",
        json!({"assignee": "eng2"}),
    )
    .await?;
    sync("Mon2 10:30", &security1).await?;
    tap(
        ids,
        "Mon2 10:35",
        &security1,
        "C1",
        Action::Accept,
        EventData::default(),
    )?;
    sync("Mon2 10:40", &security1).await?;
    tap(
        ids,
        "Mon2 11:00",
        &eng1,
        "R1",
        Action::Complete,
        completion("Replaced the washer", 40, &[("washer", 2, 150)], None),
    )?;
    record(
        ids,
        "Mon2 11:00",
        &desk,
        "R2",
        order(
            "repair",
            "Corridor light out",
            "B2 3F corridor",
            "phone",
            "electrical",
        ),
        Some("RO-2026-000002"),
    )
    .await?;
    sync("Mon2 11:05", &eng1).await?;
    act(
        ids,
        "Mon2 11:05",
        &desk,
        "R2",
        "assign",
        json!({"assignee": "eng2"}),
    )
    .await?;
    sync("Mon2 12:00", &eng2).await?;
    tap(
        ids,
        "Mon2 13:00",
        &eng2,
        "R2",
        Action::HandBack,
        reason("Needs a licensed electrician"),
    )?;
    sync("Mon2 13:05", &eng2).await?;
    act(
        ids,
        "Mon2 14:00",
        &desk,
        "R2",
        "assign",
        json!({"assignee": "eng3"}),
    )
    .await?;
    act(
        ids,
        "Mon2 14:10",
        &desk,
        "R1",
        "return",
        json!({"copy_received": true}),
    )
    .await?;
    sync("Mon2 14:30", &eng3).await?;
    tap(
        ids,
        "Mon2 14:35",
        &eng3,
        "R2",
        Action::Accept,
        EventData::default(),
    )?;
    tap(
        ids,
        "Mon2 15:00",
        &eng3,
        "R2",
        Action::Start,
        EventData::default(),
    )?;
    tap(
        ids,
        "Mon2 15:30",
        &eng3,
        "R2",
        Action::Hold,
        reason("Awaiting a ballast"),
    )?;
    sync("Mon2 15:35", &eng3).await?;
    // The prompt visit the rules ask for (及时回访): the same afternoon.
    act(
        ids,
        "Mon2 16:00",
        &desk,
        "R1",
        "return_visit",
        visit("satisfied"),
    )
    .await?;
    act(ids, "Mon2 16:05", &desk, "R1", "close", json!({})).await?;
    act(
        ids,
        "Mon2 17:30",
        &sup,
        "C1",
        "check",
        json!({"comments": "Security has it"}),
    )
    .await?;
    act(ids, "Mon2 17:31", &sup, "R1", "check", json!({})).await?;
    act(ids, "Mon2 17:32", &sup, "N1", "check", json!({})).await?;
    // 23:30 local is still Monday.
    record(
        ids,
        "Mon2 23:30",
        &desk2,
        "R3",
        order(
            "repair",
            "No hot water",
            "B1-202 bathroom",
            "app",
            "plumbing",
        ),
        Some("RO-2026-000003"),
    )
    .await?;

    // ---- Tuesday 3 March; 07:59 local is 23:59 UTC on Monday.
    record(
        ids,
        "Tue3 07:59",
        &desk,
        "V1",
        order(
            "repair",
            "Kitchen tap leaking (entered twice)",
            "B1-102 kitchen",
            "phone",
            "plumbing",
        ),
        Some("RO-2026-000004"),
    )
    .await?;
    act(
        ids,
        "Tue3 08:05",
        &desk,
        "V1",
        "void",
        json!({"reason": "Duplicate of RO-2026-000001"}),
    )
    .await?;
    act(
        ids,
        "Tue3 08:30",
        &desk2,
        "R3",
        "assign",
        json!({"assignee": "eng1"}),
    )
    .await?;
    sync("Tue3 08:35", &eng1).await?;
    tap(
        ids,
        "Tue3 08:40",
        &eng1,
        "R3",
        Action::Accept,
        EventData::default(),
    )?;
    tap(
        ids,
        "Tue3 09:00",
        &eng1,
        "R3",
        Action::Start,
        EventData::default(),
    )?;
    tap(
        ids,
        "Tue3 09:00",
        &eng2,
        "P1",
        Action::Accept,
        EventData::default(),
    )?;
    sync("Tue3 09:05", &eng1).await?;
    tap(
        ids,
        "Tue3 09:10",
        &eng2,
        "P1",
        Action::Start,
        EventData::default(),
    )?;
    act(
        ids,
        "Tue3 10:00",
        &engsup,
        "R3",
        "transfer",
        json!({"assignee": "eng2", "reason": "eng1 is needed at a burst pipe"}),
    )
    .await?;
    tap(
        ids,
        "Tue3 10:20",
        &eng2,
        "P1",
        Action::Complete,
        completion(
            "Degreased the range hood",
            90,
            &[("degreaser", 1, 1_500)],
            Some(8_000),
        ),
    )?;
    sync("Tue3 10:25", &eng2).await?;
    record(
        ids,
        "Tue3 10:30",
        &desk,
        "P2",
        order(
            "paid_service",
            "Replace the bathroom fan",
            "B2-101 bathroom",
            "walk_in",
            "electrical",
        ),
        Some("PS-2026-000002"),
    )
    .await?;
    act(
        ids,
        "Tue3 10:35",
        &desk,
        "P2",
        "assign",
        json!({"assignee": "eng3"}),
    )
    .await?;
    tap(
        ids,
        "Tue3 10:45",
        &eng2,
        "R3",
        Action::Accept,
        EventData::default(),
    )?;
    tap(
        ids,
        "Tue3 11:00",
        &eng2,
        "R3",
        Action::Start,
        EventData::default(),
    )?;
    tap(
        ids,
        "Tue3 12:00",
        &eng2,
        "R3",
        Action::Complete,
        completion(
            "Replaced the heating element",
            60,
            &[("heating element", 1, 6_800)],
            None,
        ),
    )?;
    sync("Tue3 12:05", &eng2).await?;
    record(
        ids,
        "Tue3 14:00",
        &desk2,
        "N2",
        contact("need", "Water pressure low", "B2-402", "walk_in"),
        None,
    )
    .await?;
    act(
        ids,
        "Tue3 14:05",
        &desk2,
        "N2",
        "route",
        json!({"department": "engineering"}),
    )
    .await?;
    act(ids, "Tue3 15:00", &engsup, "N2", "accept", json!({})).await?;
    act(
        ids,
        "Tue3 15:10",
        &desk,
        "P1",
        "return",
        json!({"copy_received": true}),
    )
    .await?;

    // ---- Wednesday 4 March
    tap(
        ids,
        "Wed4 09:00",
        &eng3,
        "R2",
        Action::Resume,
        EventData::default(),
    )?;
    act(
        ids,
        "Wed4 09:02",
        &engsup,
        "N2",
        "reply",
        json!({"result": "Pressure is normal (0.3 MPa); advised a tap filter"}),
    )
    .await?;
    act(
        ids,
        "Wed4 09:10",
        &desk,
        "R3",
        "return",
        json!({"copy_received": true}),
    )
    .await?;
    record(
        ids,
        "Wed4 09:30",
        &desk2,
        "X1",
        order(
            "repair",
            "Front door lock stiff",
            "B1-301",
            "walk_in",
            "locks",
        ),
        Some("RO-2026-000005"),
    )
    .await?;
    act(
        ids,
        "Wed4 09:35",
        &desk2,
        "X1",
        "assign",
        json!({"assignee": "eng1"}),
    )
    .await?;
    tap(
        ids,
        "Wed4 10:00",
        &eng3,
        "R2",
        Action::Complete,
        completion("Replaced the ballast", 50, &[("ballast", 1, 4_500)], None),
    )?;
    act(
        ids,
        "Wed4 10:00",
        &cashier,
        "P1",
        "collect",
        json!({"amount_fen": 8_000, "receipt": "R-2026-0001", "method": "wechat"}),
    )
    .await?;
    sync("Wed4 10:05", &eng3).await?;
    tap(
        ids,
        "Wed4 10:10",
        &eng3,
        "P2",
        Action::Accept,
        EventData::default(),
    )?;
    tap(
        ids,
        "Wed4 10:20",
        &eng3,
        "P2",
        Action::Start,
        EventData::default(),
    )?;
    tap(
        ids,
        "Wed4 11:00",
        &security1,
        "C1",
        Action::Reply,
        EventData {
            result: Some("Asked the contractor to stop by 22:00".into()),
            ..EventData::default()
        },
    )?;
    act(
        ids,
        "Wed4 11:00",
        &desk2,
        "X1",
        "cancel",
        json!({"reason": "The resident fixed it himself"}),
    )
    .await?;
    sync("Wed4 11:05", &security1).await?;
    tap(
        ids,
        "Wed4 11:30",
        &eng3,
        "P2",
        Action::Complete,
        completion("Fitted a new fan", 45, &[("fan", 1, 9_000)], Some(12_000)),
    )?;
    sync("Wed4 11:35", &eng3).await?;
    act(
        ids,
        "Wed4 15:00",
        &desk,
        "R3",
        "return_visit",
        visit("dissatisfied"),
    )
    .await?;
    record(
        ids,
        "Wed4 15:10",
        &desk,
        "R6",
        order(
            "repair",
            "No hot water again (rework of RO-2026-000003)",
            "B1-202 bathroom",
            "phone",
            "plumbing",
        ),
        Some("RO-2026-000006"),
    )
    .await?;
    let rework = format!("automerge:{}", id(ids, "R6")?);
    act(
        ids,
        "Wed4 15:15",
        &desk,
        "R3",
        "rework",
        json!({"linked": rework}),
    )
    .await?;
    act(
        ids,
        "Wed4 15:20",
        &desk,
        "R6",
        "assign",
        json!({"assignee": "eng3"}),
    )
    .await?;
    act(
        ids,
        "Wed4 16:00",
        &desk,
        "R2",
        "return",
        json!({"copy_received": true}),
    )
    .await?;
    record(
        ids,
        "Wed4 16:00",
        &sup,
        "PR1",
        contact(
            "praise",
            "Thanks to eng1 for the quick tap repair",
            "B1-102",
            "walk_in",
        ),
        None,
    )
    .await?;
    act(ids, "Wed4 16:05", &sup, "PR1", "acknowledge", json!({})).await?;
    act(
        ids,
        "Wed4 16:06",
        &sup,
        "PR1",
        "inform",
        json!({"department": "engineering"}),
    )
    .await?;
    act(ids, "Wed4 16:10", &sup, "PR1", "close", json!({})).await?;
    act(
        ids,
        "Wed4 16:30",
        &desk,
        "P2",
        "return",
        json!({"copy_received": true}),
    )
    .await?;

    // ---- Thursday 5 March
    act(
        ids,
        "Thu5 09:00",
        &sup,
        "P2",
        "waive",
        json!({"reason": "Elderly resident; goodwill"}),
    )
    .await?;
    let mut urgent = order(
        "repair",
        "Water seeping into the car park",
        "B2 basement",
        "phone",
        "waterproofing",
    );
    urgent["urgency"] = json!("urgent");
    record(
        ids,
        "Thu5 09:05",
        &sup,
        "R4",
        urgent,
        Some("RO-2026-000007"),
    )
    .await?;
    act(
        ids,
        "Thu5 09:10",
        &sup,
        "R4",
        "assign",
        json!({"assignee": "eng3"}),
    )
    .await?;
    sync("Thu5 09:15", &eng3).await?;
    tap(
        ids,
        "Thu5 09:20",
        &eng3,
        "R4",
        Action::Accept,
        EventData::default(),
    )?;
    tap(
        ids,
        "Thu5 09:30",
        &eng3,
        "R4",
        Action::Start,
        EventData::default(),
    )?;
    act(
        ids,
        "Thu5 11:00",
        &desk,
        "P1",
        "return_visit",
        visit("basically_satisfied"),
    )
    .await?;
    act(ids, "Thu5 11:05", &desk, "P1", "close", json!({})).await?;
    tap(
        ids,
        "Thu5 12:00",
        &eng3,
        "R4",
        Action::CannotFix,
        reason("Needs a waterproofing contractor"),
    )?;
    sync("Thu5 12:05", &eng3).await?;
    tap(
        ids,
        "Thu5 13:00",
        &eng3,
        "R6",
        Action::Accept,
        EventData::default(),
    )?;
    tap(
        ids,
        "Thu5 13:30",
        &eng3,
        "R6",
        Action::Start,
        EventData::default(),
    )?;
    act(
        ids,
        "Thu5 14:00",
        &desk,
        "C1",
        "return_visit",
        visit("dissatisfied"),
    )
    .await?;
    act(
        ids,
        "Thu5 14:00",
        &sup,
        "R4",
        "escalate",
        json!({"reason": "Recurring seepage; needs a contractor budget"}),
    )
    .await?;
    act(
        ids,
        "Thu5 14:05",
        &desk,
        "C1",
        "reopen",
        json!({"reason": "The noise goes on after 22:00"}),
    )
    .await?;
    record(
        ids,
        "Thu5 14:10",
        &desk,
        "P3",
        order(
            "paid_service",
            "Install a wall shelf",
            "B1-401",
            "phone",
            "carpentry",
        ),
        Some("PS-2026-000003"),
    )
    .await?;
    act(
        ids,
        "Thu5 14:15",
        &desk,
        "P3",
        "assign",
        json!({"assignee": "eng1"}),
    )
    .await?;
    tap(
        ids,
        "Thu5 14:30",
        &eng3,
        "R6",
        Action::Complete,
        completion("Reset the thermostat and bled the tank", 30, &[], None),
    )?;
    sync("Thu5 14:35", &eng3).await?;
    record(
        ids,
        "Thu5 19:00",
        &desk2,
        "S1",
        contact(
            "suggestion",
            "Add bicycle racks by B2",
            "B2 entrance",
            "app",
        ),
        None,
    )
    .await?;

    // ---- Friday 6 March
    sync("Fri6 08:55", &security1).await?;
    act(ids, "Fri6 09:00", &desk2, "S1", "acknowledge", json!({})).await?;
    tap(
        ids,
        "Fri6 09:00",
        &security1,
        "C1",
        Action::Accept,
        EventData::default(),
    )?;
    sync("Fri6 09:05", &security1).await?;
    sync("Fri6 09:30", &eng1).await?;
    tap(
        ids,
        "Fri6 09:35",
        &eng1,
        "P3",
        Action::Accept,
        EventData::default(),
    )?;
    tap(
        ids,
        "Fri6 09:40",
        &eng1,
        "P3",
        Action::Start,
        EventData::default(),
    )?;
    tap(
        ids,
        "Fri6 10:00",
        &eng1,
        "P3",
        Action::Complete,
        completion("Shelf installed", 30, &[], Some(5_000)),
    )?;
    act(
        ids,
        "Fri6 10:00",
        &desk,
        "P2",
        "return_visit",
        json!({"contact_result": "unreachable"}),
    )
    .await?;
    act(ids, "Fri6 10:00", &mgr, "R4", "decide_escalation", json!({"result": "Hire a waterproofing contractor", "owner": "engsup", "due_at": local("Mon16 18:00")})).await?;
    sync("Fri6 10:05", &eng1).await?;
    act(
        ids,
        "Fri6 11:00",
        &engsup,
        "R4",
        "outsource",
        json!({"contractor": "City Waterproofing Ltd", "reason": "Specialist work"}),
    )
    .await?;
    act(
        ids,
        "Fri6 15:00",
        &desk,
        "P3",
        "return",
        json!({"copy_received": true}),
    )
    .await?;
    at("Fri6 22:00")?;
    let (c2, _) = security1.report(&Found {
        kind: Kind::Complaint,
        household: None,
        location: "Garden by B1".into(),
        title: "Dog fouling in the garden".into(),
        description: String::new(),
        category: None,
        urgency: Urgency::Low,
    })?;
    ids.insert("C2", c2.id().to_string());
    sync("Fri6 22:05", &security1).await?;

    // ---- Saturday 7 March
    act(
        ids,
        "Sat7 09:00",
        &desk,
        "C2",
        "route",
        json!({"department": "cleaning"}),
    )
    .await?;
    record(
        ids,
        "Sat7 09:30",
        &desk,
        "R7",
        order(
            "repair",
            "Balcony drain blocked",
            "B2-502 balcony",
            "phone",
            "plumbing",
        ),
        Some("RO-2026-000008"),
    )
    .await?;
    act(
        ids,
        "Sat7 09:35",
        &desk,
        "R7",
        "assign",
        json!({"assignee": "eng2"}),
    )
    .await?;
    act(
        ids,
        "Sat7 10:00",
        &desk,
        "P2",
        "return_visit",
        json!({"contact_result": "unreachable"}),
    )
    .await?;
    sync("Sat7 10:00", &cleaning1).await?;
    tap(
        ids,
        "Sat7 10:05",
        &cleaning1,
        "C2",
        Action::Accept,
        EventData::default(),
    )?;
    act(ids, "Sat7 10:10", &desk, "P2", "close", json!({})).await?;
    sync("Sat7 10:30", &eng2).await?;
    tap(
        ids,
        "Sat7 10:35",
        &eng2,
        "R7",
        Action::Accept,
        EventData::default(),
    )?;
    sync("Sat7 10:40", &eng2).await?;
    act(
        ids,
        "Sat7 11:00",
        &desk,
        "R2",
        "return_visit",
        visit("satisfied"),
    )
    .await?;
    tap(
        ids,
        "Sat7 11:00",
        &cleaning1,
        "C2",
        Action::Reply,
        EventData {
            result: Some("Cleaned up; put up a sign".into()),
            ..EventData::default()
        },
    )?;
    act(ids, "Sat7 11:05", &desk, "R2", "close", json!({})).await?;
    sync("Sat7 11:05", &cleaning1).await?;
    act(
        ids,
        "Sat7 15:00",
        &desk,
        "C2",
        "return_visit",
        visit("satisfied"),
    )
    .await?;
    act(ids, "Sat7 15:05", &desk, "C2", "close", json!({})).await?;
    act(ids, "Sat7 16:00", &sup, "C1", "follow_up", json!({"owner": "security1", "next_step": "Meet the contractor with the resident", "due_at": local("Mon9 18:00")})).await?;

    // ---- Sunday 8 March: eng2's phone is offline all day.
    tap(
        ids,
        "Sun8 16:00",
        &eng2,
        "R7",
        Action::Start,
        EventData::default(),
    )?;
    at("Sun8 17:00")?;
    let (r5, _) = eng2.report(&Found {
        kind: Kind::Repair,
        household: None,
        location: "B2 lift lobby".into(),
        title: "Cracked tile in the B2 lift lobby".into(),
        description: String::new(),
        category: Some("tiling".into()),
        urgency: Urgency::Normal,
    })?;
    ids.insert("R5", r5.id().to_string());
    tap(
        ids,
        "Sun8 18:00",
        &eng2,
        "R7",
        Action::Complete,
        completion("Cleared the drain", 35, &[], None),
    )?;

    let names: BTreeMap<String, String> = ids
        .iter()
        .flat_map(|(name, id)| {
            [
                (id.clone(), (*name).to_owned()),
                (id.chars().take(8).collect(), (*name).to_owned()),
            ]
        })
        .collect();

    // ---- Monday 9 March, 09:00: the manager prints the week (as_of and
    // from in the property's wall time).
    at("Mon9 09:00")?;
    let week = "as_of=2026-03-09T09:00&from=2026-03-02";
    let mut printed = BTreeMap::new();
    for name in REPORTS {
        printed.insert(name, report(&mgr, name, week).await?);
    }
    for (name, r) in &printed {
        ensure!(
            r["as_of"] == ts("Mon9 09:00") && r["from"] == ts("Mon2 00:00"),
            "{name}: {} – {}",
            r["from"],
            r["as_of"]
        );
        ensure!(
            r["time_zone"] == "Asia/Shanghai",
            "{name}: {}",
            r["time_zone"]
        );
        ensure!(
            changes_since(r, &names)
                .iter()
                .all(|(_, rows)| rows.as_array().is_some_and(Vec::is_empty)),
            "{name}: nothing had arrived late at 09:00: {}",
            r["changes_since"]
        );
    }
    expect_week(&printed, &names)?;
    // C1 was recorded at 08:40 a week ago: FOCUS from 08:40 today.
    let before = report(
        &mgr,
        "focus-complaints",
        "as_of=2026-03-09T08:39&from=2026-03-02",
    )
    .await?;
    check(
        &before,
        &names,
        &[
            ("FOCUS complaints", json!(0)),
            ("without a named follow-up owner", json!(0)),
        ],
        &[("FOCUS complaints", vec![])],
    )?;

    // ---- 10:00: eng2's phone comes back and syncs Sunday's work.
    sync("Mon9 10:00", &eng2).await?;
    at("Mon9 10:05")?;
    let rerun = "as_of=2026-03-09T01:00:00Z&from=2026-03-01T16:00:00Z";
    let late_rows = json!([
        [
            "RO-2026-000008",
            "start",
            "eng2",
            "eng2-phone",
            ts("Sun8 16:00"),
            ts("Mon9 10:00"),
            "accepted"
        ],
        [
            "RO-2026-000009",
            "issue",
            "eng2",
            "eng2-phone",
            ts("Sun8 17:00"),
            ts("Mon9 10:00"),
            "accepted"
        ],
        [
            "RO-2026-000008",
            "complete",
            "eng2",
            "eng2-phone",
            ts("Sun8 18:00"),
            ts("Mon9 10:00"),
            "accepted"
        ],
    ]);
    for name in REPORTS {
        let again = report(&mgr, name, rerun).await?;
        let then = &printed[name];
        for part in [
            "summary",
            "tables",
            "charts",
            "period",
            "as_of",
            "from",
            "time_zone",
        ] {
            ensure!(
                named(&again[part], &names) == named(&then[part], &names),
                "{name}: {part} changed after the late sync:\n  printed {}\n  now     {}",
                then[part],
                again[part]
            );
        }
        let late = changes_since(&again, &names);
        ensure!(
            late.first()
                == Some(&(
                    "Recorded before the cut-off, arrived after".to_owned(),
                    late_rows.clone()
                )),
            "{name}: the late work is listed: {late:?}"
        );
        if name == "sync-health" {
            ensure!(
                late.get(1)
                    == Some(&(
                        "Devices whose events recorded by the cut-off arrived after it".to_owned(),
                        json!([["eng2-phone", "eng2", 3, ts("Sun8 16:00"), ts("Mon9 10:00")]])
                    )),
                "sync-health lists the late phone: {late:?}"
            );
        }
    }
    // The same report now (as of 10:05, this week so far) sees the late work.
    let now = report(&mgr, "open-overdue", "").await?;
    ensure!(
        now["from"] == ts("Mon9 00:00"),
        "a daily report's default period is today: {}",
        now["from"]
    );
    let statuses: Vec<Value> = named(&now["tables"][0]["rows"], &names)
        .as_array()
        .context("rows")?
        .iter()
        .map(|r| json!([r[1], r[5]]))
        .collect();
    ensure!(
        statuses.contains(&json!(["R7", "COMPLETED"]))
            && statuses.contains(&json!(["R5", "ISSUED"])),
        "as of now, R7 is completed and R5 issued: {statuses:?}"
    );
    let weekly = report(&mgr, "engineer-performance", "as_of=2026-03-09T09:00").await?;
    ensure!(
        weekly["from"] == ts("Mon9 00:00"),
        "a weekly report's default period starts on Monday 00:00: {}",
        weekly["from"]
    );

    // ---- Local days: Monday's register holds the 23:30 contact and not the
    // 07:59 one; Tuesday's holds the 07:59 one.
    let monday = report(&mgr, "daily-register", "as_of=2026-03-02T23:59:59").await?;
    ensure!(monday["from"] == ts("Mon2 00:00"), "{}", monday["from"]);
    check(
        &monday,
        &names,
        &[
            ("received", json!(6)),
            ("checked", json!(3)),
            ("not checked", json!(3)),
            ("kind: complaint", json!(1)),
            ("kind: need", json!(1)),
            ("kind: paid_service", json!(1)),
            ("kind: repair", json!(3)),
            ("channel: app", json!(1)),
            ("channel: phone", json!(4)),
            ("channel: walk_in", json!(1)),
            ("clerk: frontdesk", json!(4)),
            ("clerk: frontdesk2", json!(2)),
        ],
        &[(
            "Received in the period",
            vec![
                json!([
                    "C1",
                    "C1",
                    ts("Mon2 08:40"),
                    "complaint",
                    "phone",
                    "frontdesk",
                    "Renovation noise after 22:00",
                    "B1-101",
                    "IN_HAND",
                    true,
                    "supervisor",
                    "Security has it"
                ]),
                json!([
                    "RO-2026-000001",
                    "R1",
                    ts("Mon2 09:05"),
                    "repair",
                    "walk_in",
                    "frontdesk",
                    "Kitchen tap leaking",
                    "B1-102 kitchen",
                    "CLOSED",
                    true,
                    "supervisor",
                    null
                ]),
                json!([
                    "N1",
                    "N1",
                    ts("Mon2 09:30"),
                    "need",
                    "phone",
                    "frontdesk",
                    "Parking permit renewal",
                    "B2-201",
                    "CLOSED",
                    true,
                    "supervisor",
                    null
                ]),
                json!([
                    "PS-2026-000001",
                    "P1",
                    ts("Mon2 10:00"),
                    "paid_service",
                    "phone",
                    "frontdesk2",
                    "Deep-clean the range hood",
                    "B2-302 kitchen",
                    "ASSIGNED",
                    false,
                    null,
                    null
                ]),
                json!([
                    "RO-2026-000002",
                    "R2",
                    ts("Mon2 11:00"),
                    "repair",
                    "phone",
                    "frontdesk",
                    "Corridor light out",
                    "B2 3F corridor",
                    "ON_HOLD",
                    false,
                    null,
                    null
                ]),
                json!([
                    "RO-2026-000003",
                    "R3",
                    ts("Mon2 23:30"),
                    "repair",
                    "app",
                    "frontdesk2",
                    "No hot water",
                    "B1-202 bathroom",
                    "ISSUED",
                    false,
                    null,
                    null
                ]),
            ],
        )],
    )?;
    let tuesday = report(&mgr, "daily-register", "as_of=2026-03-03T23:59:59").await?;
    check(
        &tuesday,
        &names,
        &[
            ("received", json!(3)),
            ("checked", json!(0)),
            ("not checked", json!(3)),
            ("kind: need", json!(1)),
            ("kind: paid_service", json!(1)),
            ("kind: repair", json!(1)),
            ("channel: phone", json!(1)),
            ("channel: walk_in", json!(2)),
            ("clerk: frontdesk", json!(2)),
            ("clerk: frontdesk2", json!(1)),
        ],
        &[(
            "Received in the period",
            vec![
                json!([
                    "RO-2026-000004",
                    "V1",
                    ts("Tue3 07:59"),
                    "repair",
                    "phone",
                    "frontdesk",
                    "Kitchen tap leaking (entered twice)",
                    "B1-102 kitchen",
                    "VOIDED",
                    false,
                    null,
                    null
                ]),
                json!([
                    "PS-2026-000002",
                    "P2",
                    ts("Tue3 10:30"),
                    "paid_service",
                    "walk_in",
                    "frontdesk",
                    "Replace the bathroom fan",
                    "B2-101 bathroom",
                    "ASSIGNED",
                    false,
                    null,
                    null
                ]),
                json!([
                    "N2",
                    "N2",
                    ts("Tue3 14:00"),
                    "need",
                    "walk_in",
                    "frontdesk2",
                    "Water pressure low",
                    "B2-402",
                    "IN_HAND",
                    false,
                    null,
                    null
                ]),
            ],
        )],
    )?;

    // ---- Monday evening: R1's visit, made two hours after the copy came
    // back and before it fell due, already counts (issue 15: it showed 0).
    let evening = report(&mgr, "return-visits", "as_of=2026-03-02T17:40").await?;
    check(
        &evening,
        &names,
        &[
            ("due in the period", json!(0)),
            ("made in the period", json!(1)),
            ("due or made in the period", json!(1)),
            ("coverage %", json!(100.0)),
            ("due, not yet made", json!(0)),
            ("early", json!(1)),
            ("on time", json!(0)),
            ("late", json!(0)),
            ("not reached", json!(0)),
            ("reached", json!(1)),
            ("reached %", json!(100.0)),
            ("satisfied", json!(1)),
            ("basically_satisfied", json!(0)),
            ("dissatisfied", json!(0)),
        ],
        &[
            (
                "Visits made in the period",
                vec![json!([
                    "RO-2026-000001",
                    "R1",
                    "repair",
                    "Kitchen tap leaking",
                    "eng1",
                    ts("Tue3 14:10"),
                    ts("Mon2 16:00"),
                    "frontdesk",
                    "early",
                    1,
                    "satisfied"
                ])],
            ),
            ("Due in the period, not made by the cut-off", vec![]),
            ("Dissatisfied", vec![]),
        ],
    )?;
    Ok(())
}

/// Creates a user with the admin API (the demo has one front-desk clerk).
async fn server_admin_user(relay: &TestRelay, name: &str, password: &str) -> Result<()> {
    harness::server::admin::create_user(
        &relay.relay,
        &UserId::new(name)?,
        "Second front-desk clerk",
        password,
        Role::FrontDesk,
        None,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Every report printed on Monday 9 March at 09:00 for the week, figure by
/// figure and row by row, as counted by hand from the script above.
#[allow(
    clippy::too_many_lines,
    reason = "one report after another, written out by hand"
)]
fn expect_week(r: &BTreeMap<&str, Value>, names: &BTreeMap<String, String>) -> Result<()> {
    check(
        &r["daily-register"],
        names,
        &[
            ("received", json!(17)),
            ("checked", json!(3)),
            ("not checked", json!(14)),
            ("kind: complaint", json!(2)),
            ("kind: need", json!(2)),
            ("kind: paid_service", json!(3)),
            ("kind: praise", json!(1)),
            ("kind: repair", json!(8)),
            ("kind: suggestion", json!(1)),
            ("channel: app", json!(2)),
            ("channel: on_site", json!(1)),
            ("channel: phone", json!(9)),
            ("channel: walk_in", json!(5)),
            ("clerk: frontdesk", json!(9)),
            ("clerk: frontdesk2", json!(5)),
            ("clerk: security1", json!(1)),
            ("clerk: supervisor", json!(2)),
        ],
        &[(
            "Received in the period",
            vec![
                json!([
                    "C1",
                    "C1",
                    ts("Mon2 08:40"),
                    "complaint",
                    "phone",
                    "frontdesk",
                    "Renovation noise after 22:00",
                    "B1-101",
                    "IN_HAND",
                    true,
                    "supervisor",
                    "Security has it"
                ]),
                json!([
                    "RO-2026-000001",
                    "R1",
                    ts("Mon2 09:05"),
                    "repair",
                    "walk_in",
                    "frontdesk",
                    "Kitchen tap leaking",
                    "B1-102 kitchen",
                    "CLOSED",
                    true,
                    "supervisor",
                    null
                ]),
                json!([
                    "N1",
                    "N1",
                    ts("Mon2 09:30"),
                    "need",
                    "phone",
                    "frontdesk",
                    "Parking permit renewal",
                    "B2-201",
                    "CLOSED",
                    true,
                    "supervisor",
                    null
                ]),
                json!([
                    "PS-2026-000001",
                    "P1",
                    ts("Mon2 10:00"),
                    "paid_service",
                    "phone",
                    "frontdesk2",
                    "Deep-clean the range hood",
                    "B2-302 kitchen",
                    "CLOSED",
                    false,
                    null,
                    null
                ]),
                json!([
                    "RO-2026-000002",
                    "R2",
                    ts("Mon2 11:00"),
                    "repair",
                    "phone",
                    "frontdesk",
                    "Corridor light out",
                    "B2 3F corridor",
                    "CLOSED",
                    false,
                    null,
                    null
                ]),
                json!([
                    "RO-2026-000003",
                    "R3",
                    ts("Mon2 23:30"),
                    "repair",
                    "app",
                    "frontdesk2",
                    "No hot water",
                    "B1-202 bathroom",
                    "CLOSED",
                    false,
                    null,
                    null
                ]),
                json!([
                    "RO-2026-000004",
                    "V1",
                    ts("Tue3 07:59"),
                    "repair",
                    "phone",
                    "frontdesk",
                    "Kitchen tap leaking (entered twice)",
                    "B1-102 kitchen",
                    "VOIDED",
                    false,
                    null,
                    null
                ]),
                json!([
                    "PS-2026-000002",
                    "P2",
                    ts("Tue3 10:30"),
                    "paid_service",
                    "walk_in",
                    "frontdesk",
                    "Replace the bathroom fan",
                    "B2-101 bathroom",
                    "CLOSED",
                    false,
                    null,
                    null
                ]),
                json!([
                    "N2",
                    "N2",
                    ts("Tue3 14:00"),
                    "need",
                    "walk_in",
                    "frontdesk2",
                    "Water pressure low",
                    "B2-402",
                    "RESPONDED",
                    false,
                    null,
                    null
                ]),
                json!([
                    "RO-2026-000005",
                    "X1",
                    ts("Wed4 09:30"),
                    "repair",
                    "walk_in",
                    "frontdesk2",
                    "Front door lock stiff",
                    "B1-301",
                    "CANCELLED",
                    false,
                    null,
                    null
                ]),
                json!([
                    "RO-2026-000006",
                    "R6",
                    ts("Wed4 15:10"),
                    "repair",
                    "phone",
                    "frontdesk",
                    "No hot water again (rework of RO-2026-000003)",
                    "B1-202 bathroom",
                    "COMPLETED",
                    false,
                    null,
                    null
                ]),
                json!([
                    "PR1",
                    "PR1",
                    ts("Wed4 16:00"),
                    "praise",
                    "walk_in",
                    "supervisor",
                    "Thanks to eng1 for the quick tap repair",
                    "B1-102",
                    "CLOSED",
                    false,
                    null,
                    null
                ]),
                json!([
                    "RO-2026-000007",
                    "R4",
                    ts("Thu5 09:05"),
                    "repair",
                    "phone",
                    "supervisor",
                    "Water seeping into the car park",
                    "B2 basement",
                    "OUTSOURCED",
                    false,
                    null,
                    null
                ]),
                json!([
                    "PS-2026-000003",
                    "P3",
                    ts("Thu5 14:10"),
                    "paid_service",
                    "phone",
                    "frontdesk",
                    "Install a wall shelf",
                    "B1-401",
                    "CHARGE_PENDING",
                    false,
                    null,
                    null
                ]),
                json!([
                    "S1",
                    "S1",
                    ts("Thu5 19:00"),
                    "suggestion",
                    "app",
                    "frontdesk2",
                    "Add bicycle racks by B2",
                    "B2 entrance",
                    "ACKNOWLEDGED",
                    false,
                    null,
                    null
                ]),
                json!([
                    "C2",
                    "C2",
                    ts("Fri6 22:05"),
                    "complaint",
                    "on_site",
                    "security1",
                    "Dog fouling in the garden",
                    "Garden by B1",
                    "CLOSED",
                    false,
                    null,
                    null
                ]),
                json!([
                    "RO-2026-000008",
                    "R7",
                    ts("Sat7 09:30"),
                    "repair",
                    "phone",
                    "frontdesk",
                    "Balcony drain blocked",
                    "B2-502 balcony",
                    "ACCEPTED",
                    false,
                    null,
                    null
                ]),
            ],
        )],
    )?;

    check(
        &r["serial-register"],
        names,
        &[
            ("issued in the period", json!(11)),
            ("open", json!(4)),
            ("closed", json!(5)),
            ("void", json!(1)),
            ("cancelled", json!(1)),
            ("continuous", json!(true)),
        ],
        &[
            (
                "Numbers issued in the period",
                vec![
                    json!([
                        "RO-2026-000001",
                        "R1",
                        ts("Mon2 09:05"),
                        "closed",
                        "CLOSED",
                        "Kitchen tap leaking",
                        null
                    ]),
                    json!([
                        "RO-2026-000002",
                        "R2",
                        ts("Mon2 11:00"),
                        "closed",
                        "CLOSED",
                        "Corridor light out",
                        null
                    ]),
                    json!([
                        "RO-2026-000003",
                        "R3",
                        ts("Mon2 23:30"),
                        "closed",
                        "CLOSED",
                        "No hot water",
                        null
                    ]),
                    json!([
                        "RO-2026-000004",
                        "V1",
                        ts("Tue3 07:59"),
                        "void",
                        "VOIDED",
                        "Kitchen tap leaking (entered twice)",
                        "Duplicate of RO-2026-000001"
                    ]),
                    json!([
                        "RO-2026-000005",
                        "X1",
                        ts("Wed4 09:30"),
                        "cancelled",
                        "CANCELLED",
                        "Front door lock stiff",
                        "The resident fixed it himself"
                    ]),
                    json!([
                        "RO-2026-000006",
                        "R6",
                        ts("Wed4 15:10"),
                        "open",
                        "COMPLETED",
                        "No hot water again (rework of RO-2026-000003)",
                        null
                    ]),
                    json!([
                        "RO-2026-000007",
                        "R4",
                        ts("Thu5 09:05"),
                        "open",
                        "OUTSOURCED",
                        "Water seeping into the car park",
                        null
                    ]),
                    json!([
                        "RO-2026-000008",
                        "R7",
                        ts("Sat7 09:30"),
                        "open",
                        "ACCEPTED",
                        "Balcony drain blocked",
                        null
                    ]),
                    json!([
                        "PS-2026-000001",
                        "P1",
                        ts("Mon2 10:00"),
                        "closed",
                        "CLOSED",
                        "Deep-clean the range hood",
                        null
                    ]),
                    json!([
                        "PS-2026-000002",
                        "P2",
                        ts("Tue3 10:30"),
                        "closed",
                        "CLOSED",
                        "Replace the bathroom fan",
                        null
                    ]),
                    json!([
                        "PS-2026-000003",
                        "P3",
                        ts("Thu5 14:10"),
                        "open",
                        "CHARGE_PENDING",
                        "Install a wall shelf",
                        null
                    ]),
                ],
            ),
            (
                "Continuity",
                vec![
                    json!(["PS", 2026, 3, 1, 3, [], [], true]),
                    json!(["RO", 2026, 8, 1, 8, [], [], true]),
                ],
            ),
        ],
    )?;

    let r6_unreturned = json!([
        "RO-2026-000006",
        "R6",
        "eng3",
        "No hot water again (rework of RO-2026-000003)",
        ts("Thu5 14:30"),
        ts("Fri6 14:35"),
        66.4
    ]);
    check(
        &r["open-overdue"],
        names,
        &[
            ("open", json!(7)),
            ("overdue", json!(3)),
            ("completed, not returned", json!(1)),
            ("return visits due by the end of the day", json!(1)),
            ("department: engineering", json!(5)),
            ("department: none", json!(1)),
            ("department: security", json!(1)),
        ],
        &[
            (
                "Open",
                vec![
                    json!([
                        "S1",
                        "S1",
                        "suggestion",
                        null,
                        null,
                        "ACKNOWLEDGED",
                        "Add bicycle racks by B2",
                        3.6,
                        null,
                        []
                    ]),
                    json!([
                        "PS-2026-000003",
                        "P3",
                        "paid_service",
                        "engineering",
                        "eng1",
                        "CHARGE_PENDING",
                        "Install a wall shelf",
                        3.8,
                        null,
                        []
                    ]),
                    json!([
                        "RO-2026-000008",
                        "R7",
                        "repair",
                        "engineering",
                        "eng2",
                        "ACCEPTED",
                        "Balcony drain blocked",
                        2.0,
                        ts("Mon9 09:30"),
                        []
                    ]),
                    json!([
                        "RO-2026-000006",
                        "R6",
                        "repair",
                        "engineering",
                        "eng3",
                        "COMPLETED",
                        "No hot water again (rework of RO-2026-000003)",
                        4.7,
                        ts("Fri6 14:35"),
                        ["OVERDUE"]
                    ]),
                    json!([
                        "RO-2026-000007",
                        "R4",
                        "repair",
                        "engineering",
                        "eng3",
                        "OUTSOURCED",
                        "Water seeping into the car park",
                        4.0,
                        ts("Thu5 13:05"),
                        ["OVERDUE", "ESCALATED"]
                    ]),
                    json!([
                        "N2",
                        "N2",
                        "need",
                        "engineering",
                        "engsup",
                        "RESPONDED",
                        "Water pressure low",
                        5.8,
                        null,
                        ["RETURN_VISIT_DUE"]
                    ]),
                    json!([
                        "C1",
                        "C1",
                        "complaint",
                        "security",
                        "security1",
                        "IN_HAND",
                        "Renovation noise after 22:00",
                        7.0,
                        ts("Thu5 08:45"),
                        ["OVERDUE", "FOCUS"]
                    ]),
                ],
            ),
            ("Completed, not returned", vec![r6_unreturned.clone()]),
            (
                "Return visits due by the end of the day",
                vec![json!([
                    "N2",
                    "N2",
                    "need",
                    "RESPONDED",
                    "Water pressure low",
                    ts("Thu5 09:02"),
                    0
                ])],
            ),
        ],
    )?;

    check(
        &r["not-returned"],
        names,
        &[
            ("completed, not returned", json!(1)),
            ("past the return time", json!(1)),
        ],
        &[("Completed, not returned", vec![r6_unreturned])],
    )?;

    check(
        &r["cashier-close"],
        names,
        &[
            ("collections", json!(1)),
            ("collected (fen)", json!(8_000)),
            ("collected", json!("¥80.00")),
            ("waivers", json!(1)),
            ("waived (fen)", json!(12_000)),
            ("materials cost (fen)", json!(22_100)),
            ("outstanding (fen)", json!(5_000)),
            ("orders awaiting the cashier", json!(1)),
            // The fee ledger's side (the demo property bills no fees).
            ("fee receipts", json!(0)),
            ("fee received (fen)", json!(0)),
        ],
        &[
            (
                "Collections",
                vec![json!([
                    "PS-2026-000001",
                    "R-2026-0001",
                    8_000,
                    "¥80.00",
                    "wechat",
                    "cashier",
                    ts("Wed4 10:00")
                ])],
            ),
            (
                "Waivers",
                vec![json!([
                    "PS-2026-000002",
                    12_000,
                    "¥120.00",
                    "Elderly resident; goodwill",
                    "supervisor",
                    ts("Thu5 09:00")
                ])],
            ),
            (
                "Materials cost of work completed",
                vec![
                    json!(["RO-2026-000001", "eng1", ["washer × 2"], 300, "¥3.00"]),
                    json!(["RO-2026-000002", "eng3", ["ballast × 1"], 4_500, "¥45.00"]),
                    json!([
                        "RO-2026-000003",
                        "eng2",
                        ["heating element × 1"],
                        6_800,
                        "¥68.00"
                    ]),
                    json!(["PS-2026-000001", "eng2", ["degreaser × 1"], 1_500, "¥15.00"]),
                    json!(["PS-2026-000002", "eng3", ["fan × 1"], 9_000, "¥90.00"]),
                ],
            ),
            (
                "Outstanding charges",
                vec![json!([
                    "PS-2026-000003",
                    "CHARGE_PENDING",
                    5_000,
                    5_000,
                    "¥50.00"
                ])],
            ),
            ("Fee receipts", vec![]),
            ("Fee refunds and adjustments", vec![]),
        ],
    )?;

    // Events the relay received from each device in the week (the desk's
    // REST steps come from its web device), and each phone's longest delay
    // between recording and syncing: eng1 80 min (accept R1 09:45, synced
    // 11:05), eng2 85 min (accept P1 Tue 09:00, synced 10:25), eng3 165 min
    // (accept R4 Thu 09:20, synced 12:05), security1 5 min, cleaning1 60 min.
    let idle = |device: &str, user: &str| json!([device, user, null, false, 0, null, 0]);
    let web = |device: &str, user: &str, n: u32| json!([device, user, null, false, n, 0.0, 0]);
    check(
        &r["sync-health"],
        names,
        &[
            ("devices", json!(21)),
            ("devices seen in the period", json!(5)),
            ("events received in the period", json!(106)),
            ("longest delay (hours)", json!(2.8)),
            ("conflicts awaiting review", json!(0)),
        ],
        &[(
            "Devices",
            vec![
                idle("cashier-phone", "cashier"),
                json!([
                    "cleaning1-phone",
                    "cleaning1",
                    ts("Sat7 11:05"),
                    false,
                    2,
                    1.0,
                    0
                ]),
                json!(["eng1-phone", "eng1", ts("Fri6 10:05"), false, 8, 1.3, 0]),
                json!(["eng2-phone", "eng2", ts("Sat7 10:40"), false, 8, 1.4, 0]),
                json!(["eng3-phone", "eng3", ts("Thu5 14:35"), false, 14, 2.8, 0]),
                idle("engsup-phone", "engsup"),
                idle("frontdesk-phone", "frontdesk"),
                idle("manager-phone", "manager"),
                json!([
                    "security1-phone",
                    "security1",
                    ts("Fri6 22:05"),
                    false,
                    4,
                    0.1,
                    0
                ]),
                idle("supervisor-phone", "supervisor"),
                web("web-cashier", "cashier", 1),
                idle("web-cleaning1", "cleaning1"),
                idle("web-eng1", "eng1"),
                idle("web-eng2", "eng2"),
                idle("web-eng3", "eng3"),
                web("web-engsup", "engsup", 4),
                web("web-frontdesk", "frontdesk", 41),
                web("web-frontdesk2", "frontdesk2", 11),
                web("web-manager", "manager", 1),
                idle("web-security1", "security1"),
                web("web-supervisor", "supervisor", 12),
            ],
        )],
    )?;

    check(
        &r["weekly-unresolved"],
        names,
        &[
            ("open", json!(7)),
            ("<1d", json!(0)),
            ("1–3d", json!(1)),
            ("3–7d", json!(5)),
            ("7–14d", json!(1)),
            ("14–30d", json!(0)),
            (">30d", json!(0)),
            ("FOCUS", json!(1)),
        ],
        &[
            (
                "By kind and department",
                vec![
                    json!(["repair", "engineering", 0, 1, 2, 0, 0, 0, 3]),
                    json!(["complaint", "security", 0, 0, 0, 1, 0, 0, 1]),
                    json!(["suggestion", "none", 0, 0, 1, 0, 0, 0, 1]),
                    json!(["need", "engineering", 0, 0, 1, 0, 0, 0, 1]),
                    json!(["paid_service", "engineering", 0, 0, 1, 0, 0, 0, 1]),
                ],
            ),
            (
                "Open items",
                vec![
                    json!([
                        "C1",
                        "C1",
                        "complaint",
                        "security",
                        "security1",
                        "IN_HAND",
                        "Renovation noise after 22:00",
                        7.0,
                        "7–14d",
                        ["OVERDUE", "FOCUS"],
                        "security1"
                    ]),
                    json!([
                        "N2",
                        "N2",
                        "need",
                        "engineering",
                        "engsup",
                        "RESPONDED",
                        "Water pressure low",
                        5.8,
                        "3–7d",
                        ["RETURN_VISIT_DUE"],
                        null
                    ]),
                    json!([
                        "RO-2026-000006",
                        "R6",
                        "repair",
                        "engineering",
                        "eng3",
                        "COMPLETED",
                        "No hot water again (rework of RO-2026-000003)",
                        4.7,
                        "3–7d",
                        ["OVERDUE"],
                        null
                    ]),
                    json!([
                        "RO-2026-000007",
                        "R4",
                        "repair",
                        "engineering",
                        "eng3",
                        "OUTSOURCED",
                        "Water seeping into the car park",
                        4.0,
                        "3–7d",
                        ["OVERDUE", "ESCALATED"],
                        null
                    ]),
                    json!([
                        "PS-2026-000003",
                        "P3",
                        "paid_service",
                        "engineering",
                        "eng1",
                        "CHARGE_PENDING",
                        "Install a wall shelf",
                        3.8,
                        "3–7d",
                        [],
                        null
                    ]),
                    json!([
                        "S1",
                        "S1",
                        "suggestion",
                        null,
                        null,
                        "ACKNOWLEDGED",
                        "Add bicycle racks by B2",
                        3.6,
                        "3–7d",
                        [],
                        null
                    ]),
                    json!([
                        "RO-2026-000008",
                        "R7",
                        "repair",
                        "engineering",
                        "eng2",
                        "ACCEPTED",
                        "Balcony drain blocked",
                        2.0,
                        "1–3d",
                        [],
                        null
                    ]),
                ],
            ),
        ],
    )?;

    check(
        &r["focus-complaints"],
        names,
        &[
            ("FOCUS complaints", json!(1)),
            ("without a named follow-up owner", json!(0)),
        ],
        &[(
            "FOCUS complaints",
            vec![json!([
                "C1",
                "C1",
                "Renovation noise after 22:00",
                "B1-101",
                ts("Mon2 08:40"),
                7.0,
                "IN_HAND",
                "security",
                "security1",
                [
                    "record",
                    "route",
                    "accept",
                    "check",
                    "reply",
                    "return_visit",
                    "reopen",
                    "accept",
                    "follow_up"
                ],
                "Meet the contractor with the resident",
                ts("Mon9 18:00")
            ])],
        )],
    )?;

    // Visits: R1 early (Mon 16:00, due Tue 14:10), R3 early (Wed 15:00, due
    // Thu 09:10), P1 on time (Thu 11:00, due Thu 10:00), C1 on time (Thu
    // 14:00, due Thu 11:05), P2 not reached (Fri 10:00, Sat 10:00), R2 late
    // (Sat 11:00, due Thu 16:00, late after Fri 16:00), C2 early (Sat 15:00,
    // due Sun 11:05); N2 fell due Thu 09:02 and was not visited.
    check(
        &r["return-visits"],
        names,
        &[
            ("due in the period", json!(8)),
            ("made in the period", json!(7)),
            ("due or made in the period", json!(8)),
            ("coverage %", json!(87.5)),
            ("due, not yet made", json!(1)),
            ("early", json!(3)),
            ("on time", json!(2)),
            ("late", json!(1)),
            ("not reached", json!(1)),
            ("reached", json!(6)),
            ("reached %", json!(85.7)),
            ("satisfied", json!(3)),
            ("basically_satisfied", json!(1)),
            ("dissatisfied", json!(2)),
        ],
        &[
            (
                "Visits made in the period",
                vec![
                    json!([
                        "RO-2026-000001",
                        "R1",
                        "repair",
                        "Kitchen tap leaking",
                        "eng1",
                        ts("Tue3 14:10"),
                        ts("Mon2 16:00"),
                        "frontdesk",
                        "early",
                        1,
                        "satisfied"
                    ]),
                    json!([
                        "RO-2026-000003",
                        "R3",
                        "repair",
                        "No hot water",
                        "eng2",
                        ts("Thu5 09:10"),
                        ts("Wed4 15:00"),
                        "frontdesk",
                        "early",
                        1,
                        "dissatisfied"
                    ]),
                    json!([
                        "PS-2026-000001",
                        "P1",
                        "paid_service",
                        "Deep-clean the range hood",
                        "eng2",
                        ts("Thu5 10:00"),
                        ts("Thu5 11:00"),
                        "frontdesk",
                        "on_time",
                        1,
                        "basically_satisfied"
                    ]),
                    json!([
                        "C1",
                        "C1",
                        "complaint",
                        "Renovation noise after 22:00",
                        "security1",
                        ts("Thu5 11:05"),
                        ts("Thu5 14:00"),
                        "frontdesk",
                        "on_time",
                        1,
                        "dissatisfied"
                    ]),
                    json!([
                        "PS-2026-000002",
                        "P2",
                        "paid_service",
                        "Replace the bathroom fan",
                        "eng3",
                        ts("Fri6 09:00"),
                        ts("Sat7 10:00"),
                        "frontdesk",
                        "not_reached",
                        2,
                        null
                    ]),
                    json!([
                        "RO-2026-000002",
                        "R2",
                        "repair",
                        "Corridor light out",
                        "eng3",
                        ts("Thu5 16:00"),
                        ts("Sat7 11:00"),
                        "frontdesk",
                        "late",
                        1,
                        "satisfied"
                    ]),
                    json!([
                        "C2",
                        "C2",
                        "complaint",
                        "Dog fouling in the garden",
                        "cleaning1",
                        ts("Sun8 11:05"),
                        ts("Sat7 15:00"),
                        "frontdesk",
                        "early",
                        1,
                        "satisfied"
                    ]),
                ],
            ),
            (
                "Due in the period, not made by the cut-off",
                vec![json!([
                    "N2",
                    "N2",
                    "need",
                    "Water pressure low",
                    "RESPONDED",
                    ts("Thu5 09:02"),
                    0
                ])],
            ),
            (
                "Dissatisfied",
                vec![
                    json!([
                        "RO-2026-000003",
                        "R3",
                        "repair",
                        "No hot water",
                        "CLOSED",
                        "eng2",
                        "RO-2026-000006",
                        0
                    ]),
                    json!([
                        "C1",
                        "C1",
                        "complaint",
                        "Renovation noise after 22:00",
                        "IN_HAND",
                        "security1",
                        null,
                        1
                    ]),
                ],
            ),
        ],
    )?;

    // Hours from receipt: R1 start 0.9 / done 1.9, P3 19.5 / 19.8 (eng1);
    // R3 9.5 / 12.5 (eng1 started it), P1 23.2 / 24.3 (eng2); R2 4.0 / 47.0,
    // R6 22.3 / 23.3, P2 23.8 / 25.0 (eng3). Nearest-rank percentiles.
    check(
        &r["engineer-performance"],
        names,
        &[
            ("engineers", json!(3)),
            ("orders completed", json!(7)),
            ("hand-backs", json!(1)),
            ("transfers", json!(1)),
        ],
        &[(
            "Engineers",
            vec![
                json!(["eng1", 2, 0.9, 19.5, 1.9, 19.8, 100.0, 0.0, 0, 1, 3.0]),
                json!(["eng2", 2, 9.5, 23.2, 12.5, 24.3, 50.0, 50.0, 1, 0, 1.5]),
                json!(["eng3", 3, 22.3, 23.8, 25.0, 47.0, 100.0, 0.0, 0, 0, 3.0]),
            ],
        )],
    )?;

    // What each report's period means, on the report itself.
    let basis: Vec<(&str, &str)> = REPORTS
        .iter()
        .map(|n| (*n, r[*n]["period"]["basis"].as_str().unwrap_or("")))
        .collect();
    ensure!(
        basis
            == [
                ("daily-register", "received_in_period"),
                ("serial-register", "issued_in_period"),
                ("open-overdue", "open_at_cut_off"),
                ("not-returned", "open_at_cut_off"),
                ("cashier-close", "made_in_period"),
                ("sync-health", "received_in_period"),
                ("weekly-unresolved", "open_at_cut_off"),
                ("focus-complaints", "open_at_cut_off"),
                ("return-visits", "due_or_made_in_period"),
                ("engineer-performance", "made_in_period"),
            ],
        "{basis:?}"
    );
    ensure!(
        r["return-visits"]["period"]["en"]
            .as_str()
            .is_some_and(|p| p.contains("a visit counts in the period it was made")),
        "{}",
        r["return-visits"]["period"]
    );
    Ok(())
}
