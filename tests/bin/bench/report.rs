//! The figures of a run, the table (propsync, the JS peer, their ratio) and
//! `BENCHMARKS.md` with the command, the machine, the date and the targets.

use std::fmt::Write as _;
use std::time::Duration;

/// A storm's figures on one server.
#[derive(Clone, Debug)]
pub(crate) struct Storm {
    pub(crate) took: Duration,
    pub(crate) acked: u64,
    pub(crate) accepted: u64,
    pub(crate) conflicts: u64,
    pub(crate) rejected: u64,
    pub(crate) resets: u64,
    pub(crate) cpu_secs: f64,
    pub(crate) peak_rss: u64,
    pub(crate) wire_bytes: u64,
}

impl Storm {
    fn per_second(&self) -> f64 {
        self.acked as f64 / self.took.as_secs_f64().max(1e-9)
    }

    fn cpu_per_1000(&self) -> f64 {
        self.cpu_secs / (self.acked as f64 / 1000.0).max(1e-9)
    }
}

/// Percentiles of one set of latency samples.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Latency {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Latency {
    fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        let at = |q: f64| -> Duration {
            let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples.get(i).copied().unwrap_or_default()
        };
        Self {
            p50: at(0.50),
            p99: at(0.99),
            max: samples.last().copied().unwrap_or_default(),
        }
    }
}

/// The live test's latencies on one server: samples 5 ms apart (inside
/// automerge-repo's 100 ms sync throttle) and spaced beyond it.
#[derive(Clone, Debug)]
pub(crate) struct Live {
    p50: Duration,
    p99: Duration,
    max: Duration,
    spaced: Latency,
    /// Server RSS with every device connected and idle.
    pub(crate) rss_connected: u64,
}

impl Live {
    pub(crate) fn new(samples: Vec<Duration>, spaced: Vec<Duration>, rss_connected: u64) -> Self {
        let close = Latency::of(samples);
        Self {
            p50: close.p50,
            p99: close.p99,
            max: close.max,
            spaced: Latency::of(spaced),
            rss_connected,
        }
    }
}

/// The relay's cold start.
#[derive(Clone, Debug)]
pub(crate) struct Cold {
    pub(crate) tickets: usize,
    pub(crate) took: Duration,
    pub(crate) rss: u64,
}

/// Everything one run measured.
#[derive(Clone, Debug)]
pub(crate) struct Figures {
    pub(crate) devices: usize,
    pub(crate) tickets: usize,
    pub(crate) events: usize,
    pub(crate) changes: usize,
    pub(crate) live_samples: usize,
    pub(crate) spaced_samples: usize,
    pub(crate) spaced_ms: u64,
    pub(crate) propsync: (Storm, Live),
    pub(crate) peer: Option<(Storm, Live)>,
    pub(crate) cold: Cold,
    pub(crate) raw: Duration,
    pub(crate) year: crate::year::Year,
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The table, in Markdown.
pub(crate) fn table(f: &Figures) -> String {
    let (ps, pl) = &f.propsync;
    let peer = f.peer.as_ref();
    let mut rows: Vec<(String, f64, Option<f64>)> = vec![
        (
            format!(
                "Storm: time to converge, s ({} devices × {} tickets × {} events)",
                f.devices, f.tickets, f.events
            ),
            ps.took.as_secs_f64(),
            peer.map(|(s, _)| s.took.as_secs_f64()),
        ),
        (
            "Storm: accepted changes per second".into(),
            ps.per_second(),
            peer.map(|(s, _)| s.per_second()),
        ),
        (
            "Storm: server CPU s per 1,000 changes".into(),
            ps.cpu_per_1000(),
            peer.map(|(s, _)| s.cpu_per_1000()),
        ),
        (
            "Storm: server peak RSS, MB".into(),
            mb(ps.peak_rss),
            peer.map(|(s, _)| mb(s.peak_rss)),
        ),
        (
            "Storm: bytes on the wire (WebSocket payloads), MB".into(),
            mb(ps.wire_bytes),
            peer.map(|(s, _)| mb(s.wire_bytes)),
        ),
        (
            format!(
                "Live: p50, ms ({} samples, {} devices connected)",
                f.live_samples, f.devices
            ),
            ms(pl.p50),
            peer.map(|(_, l)| ms(l.p50)),
        ),
        (
            "Live: p99, ms".into(),
            ms(pl.p99),
            peer.map(|(_, l)| ms(l.p99)),
        ),
        (
            "Live: max, ms".into(),
            ms(pl.max),
            peer.map(|(_, l)| ms(l.max)),
        ),
        (
            format!(
                "Live, samples {} ms apart: p50, ms ({} samples)",
                f.spaced_ms, f.spaced_samples
            ),
            ms(pl.spaced.p50),
            peer.map(|(_, l)| ms(l.spaced.p50)),
        ),
        (
            format!("Live, samples {} ms apart: p99, ms", f.spaced_ms),
            ms(pl.spaced.p99),
            peer.map(|(_, l)| ms(l.spaced.p99)),
        ),
        (
            format!("Live, samples {} ms apart: max, ms", f.spaced_ms),
            ms(pl.spaced.max),
            peer.map(|(_, l)| ms(l.spaced.max)),
        ),
        (
            format!(
                "Server RSS with {} devices connected and idle, MB",
                f.devices
            ),
            mb(pl.rss_connected),
            peer.map(|(_, l)| mb(l.rss_connected)),
        ),
    ];
    rows.push((
        format!("Cold start with {} tickets stored, s", f.cold.tickets),
        f.cold.took.as_secs_f64(),
        None,
    ));
    rows.push(("RSS after cold start, MB".into(), mb(f.cold.rss), None));
    let raw = f.raw.as_secs_f64();
    rows.push((
        format!("Raw limit: {} changes applied in memory, s", f.changes),
        raw,
        None,
    ));
    rows.push((
        "Storm time over the raw limit, ×".into(),
        ps.took.as_secs_f64() / raw.max(1e-9),
        peer.map(|(s, _)| s.took.as_secs_f64() / raw.max(1e-9)),
    ));
    let mut out =
        String::from("| Figure | propsync | JS peer | propsync / peer |\n|---|---:|---:|---:|\n");
    for (name, ours, theirs) in rows {
        let (t, r) = match theirs {
            Some(t) => (num(t), format!("{:.2}", ours / t.max(1e-12))),
            None => ("—".into(), "—".into()),
        };
        let _ = writeln!(out, "| {name} | {} | {t} | {r} |", num(ours));
    }
    out
}

fn num(v: f64) -> String {
    if v >= 1000.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// The targets of issue 6, each met or missed, with figures.
pub(crate) fn targets(f: &Figures) -> String {
    let (ps, pl) = &f.propsync;
    let mut out = String::new();
    let mark = |ok: bool| if ok { "met" } else { "**missed**" };
    let storm = ps.took.as_secs_f64();
    if let Some((peer, _)) = &f.peer {
        let ratio = peer.took.as_secs_f64() / storm.max(1e-9);
        let _ = writeln!(
            out,
            "- Storm at least 5× faster than the JS peer: {} ({storm:.2} s against {:.2} s, {ratio:.2}×).",
            mark(ratio >= 5.0),
            peer.took.as_secs_f64()
        );
    }
    let over = storm / f.raw.as_secs_f64().max(1e-9);
    let _ = writeln!(
        out,
        "- Storm within 2× of the raw limit: {} ({storm:.2} s against {:.3} s, {over:.1}×).",
        mark(over <= 2.0),
        f.raw.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "- Live p99 under 10 ms with {} idle devices connected: {} (p99 {:.2} ms).",
        f.devices,
        mark(pl.p99 < Duration::from_millis(10)),
        ms(pl.p99)
    );
    let _ = writeln!(
        out,
        "- Relay RSS under 200 MB with {} connected devices and {} stored tickets: {} \
         ({:.1} MB connected and idle, once unused documents left memory; the storm's \
         peak, every document in use at once, was {:.1} MB).",
        f.devices,
        f.cold.tickets,
        mark(pl.rss_connected < 200_000_000),
        mb(pl.rss_connected),
        mb(ps.peak_rss)
    );
    let _ = writeln!(
        out,
        "- Cold start under 1 s with {} tickets: {} ({:.3} s, {:.1} MB after start).",
        f.cold.tickets,
        mark(f.cold.took < Duration::from_secs(1)),
        f.cold.took.as_secs_f64(),
        mb(f.cold.rss)
    );
    let _ = writeln!(
        out,
        "- Verdicts on the relay: {} accepted, {} conflict, {} rejected; {} documents reset.",
        ps.accepted, ps.conflicts, ps.rejected, ps.resets
    );
    out
}

/// A year of a large property: the history, the reports, the register,
/// creation and the desk's tablet, with issue 16's targets.
pub(crate) fn year(f: &Figures) -> String {
    let y = &f.year;
    let h = &y.seeded;
    let mut out = String::new();
    let secs = h.took.as_secs_f64().max(1e-9);
    let kinds: Vec<String> = h.by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let _ = writeln!(
        out,
        "{} tickets of history written with the relay's library (`server::history`, the \
         relay's own judging, numbering, commit and inbox keeping; 64 steps in flight) in \
         {:.1} s: {} steps, {:.0} tickets/s, {:.0} steps/s. Kinds: {}. Open at the end: {} \
         ({:.1} %). Serial numbering checked continuous: {}.\n",
        h.tickets,
        secs,
        h.steps,
        h.tickets as f64 / secs,
        h.steps as f64 / secs,
        kinds.join(", "),
        h.open,
        100.0 * h.open as f64 / (h.tickets.max(1)) as f64,
        y.serials
            .iter()
            .filter(|(_, n, _)| *n > 0)
            .map(|(s, n, _)| format!("{s} ({n})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        out,
        "| Figure | Measured |\n|---|---:|\n\
         | Cold start with {} tickets stored, s | {:.3} |\n\
         | RSS after cold start, MB | {:.1} |\n\
         | Ticket creation over REST, empty relay ({} tickets, 32 at a time), per s | {:.0} |\n\
         | Ticket creation over REST after the history ({} tickets), per s | {:.0} |\n\
         | The desk's tablet: first sync of its inbox ({} documents), s | {:.2} |\n\
         | The desk's tablet: a later sync with nothing new, s | {:.2} |",
        f.cold.tickets,
        f.cold.took.as_secs_f64(),
        mb(f.cold.rss),
        y.create_start.count,
        y.create_start.per_second(),
        y.create_end.count,
        y.create_end.per_second(),
        y.desk.listed,
        y.desk.first.as_secs_f64(),
        y.desk.again.as_secs_f64(),
    );
    let timings = |title: &str, ts: &[crate::year::Timing], what: &str| {
        let mut t = format!(
            "\n| {title} | samples | p50, ms | p99, ms | {what} |\n|---|---:|---:|---:|---:|\n"
        );
        for x in ts {
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} |",
                x.label,
                x.samples.len(),
                num(ms(x.at(0.5))),
                num(ms(x.at(0.99))),
                x.size
            );
        }
        t
    };
    out.push_str(&timings(
        "Report (`GET /api/v1/reports/{name}`, default period)",
        &y.reports,
        "rows",
    ));
    out.push_str(&timings(
        "Register (`GET /api/v1/tickets?…`)",
        &y.register,
        "tickets",
    ));
    let mark = |ok: bool| if ok { "met" } else { "**missed**" };
    let worst = |ts: &[crate::year::Timing]| {
        ts.iter()
            .map(|t| (t.at(0.99), t.label.clone()))
            .max()
            .unwrap_or_default()
    };
    let (rw, rn) = worst(&y.reports);
    let (gw, gn) = worst(&y.register);
    let ratio = y.create_end.per_second() / y.create_start.per_second().max(1e-9);
    let _ = write!(
        out,
        "\n### Targets (issue 16)\n\n\
         - Every report under 200 ms p99 at {} tickets: {} (slowest: {rn}, p99 {:.1} ms).\n\
         - The register's filters and paging under 200 ms p99: {} (slowest: {gn}, p99 {:.1} ms).\n\
         - Creating a ticket costs the same after the history as on the empty relay: {} \
         ({:.0}/s against {:.0}/s, {:.2}×).\n\
         - The desk's first sync under 60 s: {} ({} documents, {:.1} s); a later sync with \
         nothing new under 1 s: {} ({:.2} s).\n\
         - Cold start under 1 s with {} tickets: {} ({:.3} s, {:.1} MB).\n",
        f.cold.tickets,
        mark(rw < Duration::from_millis(200)),
        ms(rw),
        mark(gw < Duration::from_millis(200)),
        ms(gw),
        mark(ratio >= 0.8),
        y.create_end.per_second(),
        y.create_start.per_second(),
        ratio,
        mark(y.desk.first < Duration::from_secs(60)),
        y.desk.listed,
        y.desk.first.as_secs_f64(),
        mark(y.desk.again < Duration::from_secs(1)),
        y.desk.again.as_secs_f64(),
        f.cold.tickets,
        mark(f.cold.took < Duration::from_secs(1)),
        f.cold.took.as_secs_f64(),
        mb(f.cold.rss),
    );
    out
}

/// `BENCHMARKS.md`.
pub(crate) fn render(f: &Figures, command: &str, machine: &str) -> String {
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
    format!(
        "# Benchmarks\n\n\
         Produced by `propsync-bench` (`tests/bin/bench.rs`) on {date}, on {machine}:\n\n\
         ```sh\n{command}\n```\n\n\
         {}\n\
         ## Targets (issue 6)\n\n{}\n\
         ## A year of a large property (issue 16)\n\n{}\n\
         ## What is measured\n\n\
         - Both servers run as child processes on loopback: the relay's release binary on a \
         fresh data directory (every change validated, judged and fsynced), and the JavaScript \
         automerge-repo 2.5.6 sync server (`tests/bench/server.mjs`: WebSocket server adapter, \
         files on disk, no validation, no auth, so no tokens are sent to it). CPU seconds and \
         memory come from `/proc/<pid>`.\n\
         - The devices are `client_core`'s sync engine, one real WebSocket each, all in the \
         bench process; they keep their documents in memory (a phone's SQLite store is not \
         part of the figure). The bench process shares the machine's cores with the server.\n\
         - Storm: each device made its offline steps (accept, start, notes, complete with \
         labour and materials) on each of its assigned orders; all reconnect at the same \
         instant. The time runs until every device is in sync with the server (its heads \
         equal the server's) and, on the relay, every lifecycle event's verdict is back on \
         the device. \"Accepted changes\" are the changes the devices saw acknowledged.\n\
         - Live: two phones of one engineer share an order; one appends a note, the time runs \
         until the other phone's document holds it; they take turns while every storm device \
         stays connected and idle. First 5 ms apart: on the JS peer this measures mostly \
         automerge-repo's sync throttle (a document's changes go to its peers at most once per \
         100 ms, `syncDebounceRate`, as configured by default), not the server's work. Then \
         spaced beyond the throttle ({} ms apart): what each server takes to pass one change \
         on when nothing else is pending. propsync sends a change on as soon as it is committed \
         in both.\n\
         - Cold start: the relay started on the data directory holding every ticket (the \
         history and the tickets created over REST before it), from spawn until \
         `/api/v1/health` answers; RSS right then.\n\
         - The year: `--history` tickets received over the past 365 days, written before the \
         relay process starts by `server::history` (the same code as `propsync-server admin \
         seed-history`): each step authored as the person who does it, judged and numbered by \
         the relay on a clock set to the step's time. Then, against the running relay (no rate \
         limits), each report and register query asked `--report-samples` times one after \
         another (fewer when one takes longer than `--report-budget-secs` in all), as the \
         manager, supervisor or cashier; `--create-samples` repair orders recorded through \
         `POST /api/v1/tickets` 32 at a time, on the empty relay and again after the history; \
         and the front desk's tablet (client-core's sync engine) syncing everything its inbox \
         lists (the open tickets the desk recorded), then a second session with what it \
         holds and nothing new, until idle.\n\
         - Raw limit: the same changes applied with `Automerge::apply_changes`, batched per \
         document, on in-memory copies of the documents, one thread.\n",
        table(f),
        targets(f),
        year(f),
        f.spaced_ms
    )
}
