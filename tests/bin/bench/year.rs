//! A year of a large property (issue 16): the history written with the
//! relay's own library before the relay process starts, then, against the
//! running relay, every report and the register's filters (each timed
//! repeatedly), ticket creation over REST, and the front desk's tablet
//! syncing its inbox for the first time and again with nothing new.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use automerge::ActorId;
use harness::Api;
use harness::server::history;
use harness::server::schema::{DocId, UserId, doc as schema_doc};

use crate::fleet::{Conn, Identity, Target, Wire};

/// One timed request, repeated.
#[derive(Clone, Debug)]
pub(crate) struct Timing {
    pub(crate) label: String,
    pub(crate) samples: Vec<Duration>,
    /// What the answer held (rows, tickets), from the last sample.
    pub(crate) size: usize,
}

impl Timing {
    pub(crate) fn at(&self, q: f64) -> Duration {
        let mut s = self.samples.clone();
        s.sort();
        let i = ((s.len() as f64 - 1.0) * q).round() as usize;
        s.get(i).copied().unwrap_or_default()
    }
}

/// REST ticket creation, `count` tickets 32 at a time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rate {
    pub(crate) count: usize,
    pub(crate) took: Duration,
}

impl Rate {
    pub(crate) fn per_second(&self) -> f64 {
        self.count as f64 / self.took.as_secs_f64().max(1e-9)
    }
}

/// The front desk's tablet syncing its inbox.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DeskSync {
    /// Documents the inbox lists.
    pub(crate) listed: usize,
    pub(crate) first: Duration,
    pub(crate) again: Duration,
}

/// Everything the year measured.
#[derive(Clone, Debug)]
pub(crate) struct Year {
    pub(crate) seeded: history::Summary,
    pub(crate) create_start: Rate,
    pub(crate) create_end: Rate,
    pub(crate) reports: Vec<Timing>,
    pub(crate) register: Vec<Timing>,
    pub(crate) desk: DeskSync,
    /// Each serial series and year: numbers issued, and whether continuous.
    pub(crate) serials: Vec<(String, u64, bool)>,
}

/// Writes `n` tickets of history into `data` (the relay not running),
/// orders going to the demo property's engineers.
pub(crate) async fn seed(
    data: &Path,
    n: usize,
    progress: &crate::Progress,
) -> Result<history::Summary> {
    let opts = history::Options {
        engineers: ["eng1", "eng2", "eng3"]
            .into_iter()
            .map(UserId::new)
            .collect::<Result<_, _>>()?,
        ..history::Options::new(n)
    };
    let summary = history::seed_data_dir(data, &opts, &|p: &history::Progress| {
        progress.show(&format!(
            "history: {}/{} steps, {} tickets, {:.0} steps/s",
            p.steps_done,
            p.steps_total,
            p.tickets_created,
            p.steps_done as f64 / p.elapsed.as_secs_f64().max(1e-9)
        ));
    })
    .await
    .map_err(|e| anyhow!("writing the history: {e}"))?;
    ensure!(
        summary.refused == 0 && summary.not_as_planned == 0,
        "the history did not go as planned: {} steps refused, {} tickets open that should have closed",
        summary.refused,
        summary.not_as_planned
    );
    Ok(summary)
}

/// Creates `count` tickets through REST as the front desk, timed.
pub(crate) async fn create(desk: &Api, count: usize, progress: &crate::Progress) -> Result<Rate> {
    let t0 = Instant::now();
    crate::seed::tickets(
        desk,
        count,
        |_| None,
        progress,
        "creating tickets over REST",
    )
    .await?;
    Ok(Rate {
        count,
        took: t0.elapsed(),
    })
}

/// GETs `path` up to `samples` times (at least once, and no more once
/// `budget` is spent).
async fn time(
    api: &Api,
    label: String,
    path: &str,
    samples: usize,
    budget: Duration,
    progress: &crate::Progress,
) -> Result<Timing> {
    let t0 = Instant::now();
    let mut out = Vec::with_capacity(samples);
    let mut size = 0;
    while out.len() < samples.max(1) && (out.is_empty() || t0.elapsed() < budget) {
        let s = Instant::now();
        let (status, body) = api.get(path).await?;
        out.push(s.elapsed());
        ensure!(status == 200, "{path}: HTTP {status}: {body}");
        size = body["tickets"].as_array().map_or_else(
            || {
                body["tables"].as_array().map_or(0, |ts| {
                    ts.iter()
                        .map(|t| t["rows"].as_array().map_or(0, Vec::len))
                        .sum()
                })
            },
            Vec::len,
        );
        progress.show(&format!("{label}: {} samples", out.len()));
    }
    Ok(Timing {
        label,
        samples: out,
        size,
    })
}

/// Every report, as a user its list says may read it, with its default period.
pub(crate) async fn reports(
    logins: &[Api],
    samples: usize,
    budget: Duration,
    progress: &crate::Progress,
) -> Result<Vec<Timing>> {
    let mut allowed: BTreeMap<String, usize> = BTreeMap::new();
    let mut order = Vec::new();
    for (i, api) in logins.iter().enumerate() {
        let (status, list) = api.get("/api/v1/reports").await?;
        ensure!(status == 200, "listing reports: HTTP {status}: {list}");
        for r in list["reports"].as_array().context("reports")? {
            let name = r["name"].as_str().context("name")?.to_owned();
            if !order.contains(&name) {
                order.push(name.clone());
            }
            if r["allowed"].as_bool() == Some(true) {
                allowed.entry(name).or_insert(i);
            }
        }
    }
    let mut out = Vec::new();
    for name in order {
        let Some(&who) = allowed.get(&name) else {
            bail!("no bench user may read the report {name}");
        };
        let t = time(
            &logins[who],
            name.clone(),
            &format!("/api/v1/reports/{name}"),
            samples,
            budget,
            progress,
        )
        .await?;
        progress.done(&format!(
            "report {name}: p50 {:.1} ms, p99 {:.1} ms ({} samples)",
            t.at(0.5).as_secs_f64() * 1000.0,
            t.at(0.99).as_secs_f64() * 1000.0,
            t.samples.len()
        ));
        out.push(t);
    }
    Ok(out)
}

/// The register: its filters and paging, as the supervisor.
pub(crate) async fn register(
    api: &Api,
    samples: usize,
    budget: Duration,
    progress: &crate::Progress,
) -> Result<Vec<Timing>> {
    let now = chrono::Utc::now();
    let month_ago = (now - chrono::Duration::days(30)).format("%Y-%m-%d");
    let quarter_ago = (now - chrono::Duration::days(120)).format("%Y-%m-%d");
    let three_months = (now - chrono::Duration::days(90)).format("%Y-%m-%d");
    let queries = [
        ("first page (limit 50)", "limit=50".to_owned()),
        ("default page (limit 1000)", String::new()),
        ("largest page (limit 5000)", "limit=5000".to_owned()),
        (
            "kind=complaint, limit 100",
            "kind=complaint&limit=100".to_owned(),
        ),
        ("status=IN_PROGRESS", "status=IN_PROGRESS".to_owned()),
        (
            "status=CLOSED, limit 100",
            "status=CLOSED&limit=100".to_owned(),
        ),
        (
            "assignee=eng1, limit 100",
            "assignee=eng1&limit=100".to_owned(),
        ),
        ("flag=OVERDUE", "flag=OVERDUE".to_owned()),
        (
            "from–to: the last 30 days, limit 200",
            format!("from={month_ago}&limit=200"),
        ),
        (
            "from–to: one month, 4 to 3 months ago",
            format!("from={quarter_ago}&to={three_months}"),
        ),
        (
            "kind=repair, status=CLOSED, assignee=eng2, one month",
            format!("kind=repair&status=CLOSED&assignee=eng2&from={quarter_ago}&to={three_months}"),
        ),
    ];
    let mut out = Vec::new();
    for (label, q) in queries {
        let t = time(
            api,
            label.to_owned(),
            &format!("/api/v1/tickets?{q}"),
            samples,
            budget,
            progress,
        )
        .await?;
        progress.done(&format!(
            "register {label}: p50 {:.1} ms, p99 {:.1} ms, {} tickets",
            t.at(0.5).as_secs_f64() * 1000.0,
            t.at(0.99).as_secs_f64() * 1000.0,
            t.size
        ));
        out.push(t);
    }
    Ok(out)
}

/// Every serial series of the history's years: issued and continuous.
pub(crate) async fn serials(api: &Api) -> Result<Vec<(String, u64, bool)>> {
    let year = chrono::Datelike::year(&chrono::Utc::now());
    let mut out = Vec::new();
    for series in ["RO", "PS"] {
        for y in [year - 1, year] {
            let (status, r) = api
                .get(&format!(
                    "/api/v1/reports/serial-continuity?series={series}&year={y}"
                ))
                .await?;
            ensure!(
                status == 200,
                "serial continuity {series} {y}: HTTP {status}: {r}"
            );
            let issued = r["issued"].as_u64().unwrap_or(0);
            let continuous = r["continuous"].as_bool() == Some(true);
            ensure!(
                continuous,
                "{series}-{y}: the numbering is not continuous: missing {}, out of order {}",
                r["missing"],
                r["out_of_order"]
            );
            out.push((format!("{series}-{y}"), issued, continuous));
        }
    }
    Ok(out)
}

/// The front desk's tablet: its first sync of everything its inbox lists,
/// then a second session with what it holds and nothing new.
pub(crate) async fn desk_sync(
    relay: &str,
    token: &str,
    progress: &crate::Progress,
) -> Result<DeskSync> {
    let target = Target {
        base: relay.to_owned(),
        path: "/sync",
        tokens: true,
        verdicts: true,
    };
    let me: serde_json::Value = reqwest::Client::new()
        .get(format!("{relay}/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await?
        .json()
        .await?;
    let inbox: harness::server::schema::DocUrl = me["inbox"].as_str().context("inbox")?.parse()?;
    let id = Identity {
        name: "frontdesk-tablet".into(),
        token: token.to_owned(),
        actor: ActorId::random(),
        inbox: Some(inbox.id()),
    };
    let listed_of = |c: &Conn| -> Option<usize> {
        let doc = c.engine().doc(inbox.id())?;
        schema_doc::read_inbox(doc).ok().map(|i| i.docs.len())
    };
    let wire = Arc::new(Wire::default());
    let t0 = Instant::now();
    let mut conn = Conn::open(
        &target,
        &id,
        BTreeMap::new(),
        &BTreeMap::new(),
        Arc::clone(&wire),
    )
    .await?;
    let mut shown = Instant::now();
    conn.until(Duration::from_secs(600), |c| {
        if shown.elapsed() > Duration::from_millis(200) {
            shown = Instant::now();
            progress.show(&format!(
                "the desk's first sync: {} documents",
                c.engine().doc_ids().len()
            ));
        }
        c.engine().is_idle() && listed_of(c).is_some_and(|n| c.engine().doc_ids().len() > n)
    })
    .await
    .context("the desk's first sync")?;
    let first = t0.elapsed();
    let listed = listed_of(&conn).unwrap_or(0);
    let held = conn.held();
    conn.close().await;
    let held_ids: Vec<DocId> = held.keys().copied().collect();
    let t1 = Instant::now();
    let mut again = Conn::open(&target, &id, held, &BTreeMap::new(), wire).await?;
    again
        .until(Duration::from_secs(120), |c| c.engine().is_idle())
        .await
        .context("the desk's second sync")?;
    let second = t1.elapsed();
    ensure!(
        again.engine().doc_ids().len() >= held_ids.len(),
        "the second sync lost documents"
    );
    again.close().await;
    Ok(DeskSync {
        listed,
        first,
        again: second,
    })
}
