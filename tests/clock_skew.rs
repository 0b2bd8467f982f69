//! A phone whose clock is days off. What it records keeps the phone's time
//! (the event's `at`, the ticket's `reported_at`), but everything the relay
//! decides runs on the relay's clock: verdict times, due times, the
//! register's `received_at`, flags and the reports' periods.

use anyhow::{Context, Result, ensure};
use chrono::{DateTime, Utc};
use harness::TestRelay;
use harness::client_core::{Device, Report};
use harness::server::schema::Kind;
use harness::server::schema::ticket::Urgency;
use serde_json::Value;

const SKEW_DAYS: i64 = 3;

fn behind() -> DateTime<Utc> {
    Utc::now() - chrono::Duration::days(SKEW_DAYS)
}

fn ahead() -> DateTime<Utc> {
    Utc::now() + chrono::Duration::days(SKEW_DAYS)
}

fn time(v: &Value) -> Result<DateTime<Utc>> {
    Ok(
        DateTime::parse_from_rfc3339(v.as_str().with_context(|| format!("not a time: {v}"))?)?
            .to_utc(),
    )
}

/// Whether `t` is within a minute of the relay's now.
fn near(t: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    (t - now).num_seconds().abs() < 60
}

async fn report_with(phone: Device, n: usize) -> Result<(String, Device)> {
    let (url, _) = phone.report(&Report {
        kind: Kind::Repair,
        household: None,
        location: format!("B3 floor {n}"),
        title: format!("Light out {n}"),
        description: String::new(),
        category: Some("electrical".into()),
        urgency: Urgency::Normal,
    })?;
    phone.sync_once().await?;
    Ok((url.id().to_string(), phone))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_days_off_keeps_its_time_but_the_relay_decides_on_its_own() -> Result<()> {
    let relay = TestRelay::start().await?;
    let manager = relay.api("manager").await?;
    let slow = relay.device("eng1").await?.with_clock(behind);
    let fast = relay.device("eng2").await?.with_clock(ahead);
    let (slow_id, slow) = report_with(slow, 1).await?;
    let (fast_id, fast) = report_with(fast, 2).await?;
    let now = Utc::now();
    for (id, phone, offset) in [(&slow_id, &slow, -SKEW_DAYS), (&fast_id, &fast, SKEW_DAYS)] {
        let t = manager.ticket(id).await?;
        let issue = &t["events"][0];
        let device_at = time(&issue["at"])?;
        ensure!(
            near(device_at, now + chrono::Duration::days(offset)),
            "the event keeps the phone's time: {issue}"
        );
        ensure!(
            near(
                time(&t["reported_at"])?,
                now + chrono::Duration::days(offset)
            ),
            "reported_at is the phone's: {t}"
        );
        let verdict_at = time(&issue["verdict"]["at"])?;
        ensure!(
            near(verdict_at, now),
            "the verdict is on relay time: {issue}"
        );
        ensure!(
            near(time(&t["received_at"])?, now),
            "the register's time is the relay's: {t}"
        );
        let p = &t["projection"];
        let response_due = time(&p["response_due"])?;
        let completion_due = time(&p["completion_due"])?;
        ensure!(
            response_due > now && response_due - verdict_at < chrono::Duration::days(2),
            "response due counts from the relay's receipt: {p}"
        );
        ensure!(completion_due > response_due, "{p}");
        ensure!(
            !t["flags"]
                .as_array()
                .is_some_and(|f| f.iter().any(|x| x == "OVERDUE")),
            "a phone behind does not make a fresh ticket overdue: {t}"
        );
        // The phone shows the relay's official dates once it has the verdict.
        let view = phone.show(id)?;
        ensure!(
            view.official.response_due == Some(response_due),
            "the phone's official view has the relay's due time: {:?} vs {response_due}",
            view.official.response_due
        );
    }
    // Reports count by the relay's receipt: today's register lists both, the
    // register of three days ago (the slow phone's date) lists neither.
    let ids = |r: &Value| -> Vec<String> {
        r["tables"][0]["rows"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter_map(|row| row[1].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (status, today) = manager.get("/api/v1/reports/daily-register").await?;
    ensure!(status == 200, "{today}");
    let listed = ids(&today);
    ensure!(
        listed.contains(&slow_id) && listed.contains(&fast_id),
        "today's register has both: {listed:?}"
    );
    let then = (behind() + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ");
    let (status, past) = manager
        .get(&format!("/api/v1/reports/daily-register?as_of={then}"))
        .await?;
    ensure!(status == 200, "{past}");
    let listed = ids(&past);
    ensure!(
        !listed.contains(&slow_id) && !listed.contains(&fast_id),
        "the register of {then} lists neither: {listed:?}"
    );
    eprintln!(
        "clock skew: phones {SKEW_DAYS} days behind and ahead; event time kept, verdict/due/received/report on relay time"
    );
    Ok(())
}
