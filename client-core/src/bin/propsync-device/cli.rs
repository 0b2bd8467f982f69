//! The command line itself (native only: it needs tokio and the network).
//!
//! Every command but `enroll` and `sync` works with no network. `--json`
//! prints one JSON document on stdout; otherwise the output is for people.
//! A command that prints success has committed its action to the store.
#![allow(
    clippy::print_stdout,
    reason = "a command-line program's output is its interface"
)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use client_core::schema::ticket::{Kind, Material, Urgency};
use client_core::schema::{Action, DocUrl, EventData, Fen, UserId};
use client_core::{Device, DeviceError, Report, SyncConfig};

#[derive(Parser, Debug)]
#[command(
    name = "propsync-device",
    version,
    about = "An engineer's phone, from a shell"
)]
struct Cli {
    /// The device store (an SQLite file; created if missing).
    #[arg(long, env = "PROPSYNC_STORE")]
    store: PathBuf,
    /// Print JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Enrol this device with a relay and a device token.
    Enroll {
        /// The relay, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        relay: String,
        /// The device token.
        #[arg(long)]
        token: String,
    },
    /// Sync once with the relay.
    Sync,
    /// The documents this device holds.
    Inbox,
    /// A ticket: official state, then this device's pending events.
    Show {
        /// URL, bare id or serial number.
        ticket: String,
    },
    /// Take a lifecycle action on a ticket.
    Do {
        /// URL, bare id or serial number.
        ticket: String,
        /// accept, start, hold, resume, complete, hand_back, cannot_fix, reply, grab, …
        action: String,
        /// Labour in minutes.
        #[arg(long)]
        labour_min: Option<i64>,
        /// A material used, NAME:QTY:FEN (unit cost in fen); repeat for more.
        #[arg(long = "material")]
        materials: Vec<String>,
        /// State that no materials were used.
        #[arg(long)]
        no_materials: bool,
        /// A photo file; stored by SHA-256 and uploaded at the next sync.
        #[arg(long = "photo")]
        photos: Vec<PathBuf>,
        /// Reason (hold, hand back, cannot fix, …).
        #[arg(long)]
        reason: Option<String>,
        /// Result (complete, reply).
        #[arg(long)]
        result: Option<String>,
        /// Assignee (grab, assign, transfer).
        #[arg(long)]
        assignee: Option<String>,
        /// Quoted amount in fen (paid work).
        #[arg(long)]
        quote_fen: Option<i64>,
        /// Witness when the resident is absent.
        #[arg(long)]
        witness: Option<String>,
    },
    /// Add a note to a ticket.
    Note {
        /// URL, bare id or serial number.
        ticket: String,
        /// The note.
        text: String,
    },
    /// Record an on-site ticket.
    Report {
        /// The household file URL.
        #[arg(long)]
        household: Option<String>,
        /// repair, paid_service, complaint, need, …
        #[arg(long)]
        kind: String,
        /// One line.
        #[arg(long)]
        title: String,
        /// What was found.
        #[arg(long, default_value = "")]
        description: String,
        /// Where.
        #[arg(long, default_value = "")]
        location: String,
        /// Repair category (orders).
        #[arg(long, default_value = "general")]
        category: String,
        /// urgent, normal or low.
        #[arg(long, default_value = "normal")]
        urgency: String,
    },
    /// Local actions the relay has not judged yet.
    Pending,
    /// Changes the relay rejected; `quarantine export FILE` writes them as JSON.
    Quarantine {
        #[command(subcommand)]
        export: Option<QuarantineCmd>,
    },
}

#[derive(Subcommand, Debug)]
enum QuarantineCmd {
    /// Write every quarantined change (with its raw bytes, hex) to FILE.
    Export {
        /// Where.
        file: PathBuf,
    },
}

pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let refused = e.downcast_ref::<DeviceError>().and_then(|d| match d {
                DeviceError::Refused(r) => Some(r.clone()),
                _ => None,
            });
            if json {
                let body = match &refused {
                    Some(r) => {
                        serde_json::json!({"error": {"code": "refused", "rule": r.rule, "reason": r.reason}})
                    }
                    None => {
                        serde_json::json!({"error": {"code": "failed", "message": format!("{e:#}")}})
                    }
                };
                println!("{body}");
            } else {
                eprintln!("error: {e:#}");
            }
            if refused.is_some() {
                ExitCode::from(3)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let device = Device::open(&cli.store)
        .with_context(|| format!("opening the store {}", cli.store.display()))?;
    let json = cli.json;
    let out = |value: serde_json::Value, text: String| {
        if json {
            println!("{value}");
        } else {
            println!("{text}");
        }
    };
    match cli.command {
        Command::Enroll { relay, token } => {
            let rt = runtime()?;
            let id = rt
                .block_on(device.enroll(&relay, &token))
                .context("enrolling")?;
            out(
                serde_json::to_value(&id)?,
                format!(
                    "enrolled {} ({}) on {} with {}",
                    id.principal.user, id.principal.role, id.principal.device, id.relay
                ),
            );
        }
        Command::Sync => {
            let rt = runtime()?;
            let mut progress = |s: &client_core::SyncSummary, outstanding: usize| {
                eprint!(
                    "\rsyncing: {outstanding} documents to go, {} changes up, {} down, {} verdicts   ",
                    s.changes_up, s.changes_down, s.verdicts
                );
            };
            let summary = rt
                .block_on(device.sync_with(&SyncConfig::default(), &mut progress))
                .context("syncing")?;
            eprintln!();
            out(
                serde_json::to_value(&summary)?,
                format!(
                    "synced: {} documents, {} changes up, {} changes down, {} verdicts received, {} photos uploaded{}{}",
                    summary.documents,
                    summary.changes_up,
                    summary.changes_down,
                    summary.verdicts,
                    summary.photos_uploaded,
                    if summary.quarantined > 0 {
                        format!(", {} changes quarantined", summary.quarantined)
                    } else {
                        String::new()
                    },
                    if summary.purged > 0 {
                        format!(", {} documents purged", summary.purged)
                    } else {
                        String::new()
                    },
                ),
            );
        }
        Command::Inbox => {
            let rows = device.inbox()?;
            let text = rows
                .iter()
                .map(|r| {
                    format!(
                        "{}  {:<14} {:<8} {}{}  {}",
                        r.id.url(),
                        r.serial.as_deref().unwrap_or("-"),
                        r.kind.as_deref().unwrap_or("?"),
                        if r.read_only { "ro " } else { "" },
                        r.listing.as_str(),
                        r.title.as_deref().unwrap_or(&r.label)
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            out(serde_json::to_value(&rows)?, text);
        }
        Command::Show { ticket } => {
            let v = device.show(&ticket)?;
            let mut text = format!(
                "{} {} [{}] {}\nofficial: {}{}\n",
                v.url,
                v.serial.as_deref().unwrap_or("(no serial yet)"),
                v.ticket.header.kind,
                v.ticket.header.title,
                v.official.status,
                v.official
                    .assignee
                    .as_ref()
                    .map(|a| format!(", assigned to {a}"))
                    .unwrap_or_default(),
            );
            for (e, verdict) in v.ticket.judged() {
                text.push_str(&format!(
                    "  #{} {} by {} at {}: {} ({})\n",
                    verdict.seq, e.action, e.by, e.at, verdict.outcome, verdict.rule
                ));
            }
            if v.pending.is_empty() {
                text.push_str("nothing pending\n");
            } else {
                text.push_str(&format!("pending (shown as {}):\n", v.with_pending.status));
            }
            for p in &v.pending {
                text.push_str(&format!(
                    "  {} {} at {}{}\n",
                    p.event.id,
                    p.event.action,
                    p.event.at,
                    p.refused
                        .as_ref()
                        .map(|r| format!(" — would not stand: {r}"))
                        .unwrap_or_default()
                ));
            }
            for prob in &v.load.problems {
                text.push_str(&format!(
                    "store problem: chunk {}: {}\n",
                    prob.chunk, prob.problem
                ));
            }
            out(serde_json::to_value(&v)?, text.trim_end().to_owned());
        }
        Command::Do {
            ticket,
            action,
            labour_min,
            materials,
            no_materials,
            photos,
            reason,
            result,
            assignee,
            quote_fen,
            witness,
        } => {
            let action: Action = action.parse().context("action")?;
            let mut data = EventData {
                labour_min,
                reason,
                result,
                witness,
                quote_fen: quote_fen.map(Fen::new),
                assignee: assignee.map(UserId::new).transpose().context("assignee")?,
                ..EventData::default()
            };
            if !materials.is_empty() || no_materials {
                data.materials = Some(
                    materials
                        .iter()
                        .map(|m| parse_material(m))
                        .collect::<anyhow::Result<_>>()?,
                );
            }
            for path in &photos {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("reading photo {}", path.display()))?;
                data.photos.push(device.add_photo(&bytes, mime_of(path))?);
            }
            let id = device.act(&ticket, action, data)?;
            out(
                serde_json::json!({"ok": true, "event": id, "action": action.as_str()}),
                format!("ok: {action} recorded as {id} (pending until the relay judges it)"),
            );
        }
        Command::Note { ticket, text } => {
            let id = device.note(&ticket, &text)?;
            out(
                serde_json::json!({"ok": true, "note": id}),
                format!("ok: note {id} recorded"),
            );
        }
        Command::Report {
            household,
            kind,
            title,
            description,
            location,
            category,
            urgency,
        } => {
            let kind: Kind = kind.parse().context("kind")?;
            let urgency: Urgency = urgency.parse().context("urgency")?;
            let household: Option<DocUrl> = household
                .map(|h| h.parse())
                .transpose()
                .context("household")?;
            let (url, event) = device.report(&Report {
                kind,
                household,
                location,
                title,
                description,
                category: kind.is_order().then_some(category),
                urgency,
            })?;
            out(
                serde_json::json!({"ok": true, "ticket": url, "event": event}),
                format!("ok: reported {url} (event {event})"),
            );
        }
        Command::Pending => {
            let rows = device.pending()?;
            let text = rows
                .iter()
                .map(|p| {
                    format!(
                        "{} {} {:<10} {}{}",
                        p.at,
                        p.doc,
                        p.action,
                        p.event_id,
                        if p.acked {
                            " (at the relay, awaiting verdict)"
                        } else {
                            ""
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            out(serde_json::to_value(&rows)?, text);
        }
        Command::Quarantine { export } => {
            let rows = device.quarantine()?;
            if let Some(QuarantineCmd::Export { file }) = export {
                std::fs::write(&file, serde_json::to_vec_pretty(&rows)?)
                    .with_context(|| format!("writing {}", file.display()))?;
                out(
                    serde_json::json!({"ok": true, "exported": rows.len(), "file": file}),
                    format!(
                        "exported {} quarantined changes to {}",
                        rows.len(),
                        file.display()
                    ),
                );
            } else {
                let text = rows
                    .iter()
                    .map(|q| {
                        format!(
                            "{} {} {}: {} — {}",
                            q.at, q.doc, q.rule, q.reason, q.summary
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                out(serde_json::to_value(&rows)?, text);
            }
        }
    }
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn parse_material(s: &str) -> anyhow::Result<Material> {
    let mut parts = s.rsplitn(3, ':');
    let fen = parts.next().context("material needs NAME:QTY:FEN")?;
    let qty = parts.next().context("material needs NAME:QTY:FEN")?;
    let name = parts.next().context("material needs NAME:QTY:FEN")?;
    Ok(Material {
        name: name.to_owned(),
        qty: qty.parse().context("material quantity")?,
        unit_fen: Fen::new(fen.parse().context("material unit cost in fen")?),
    })
}

fn mime_of(path: &std::path::Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("heic") => "image/heic",
        _ => "application/octet-stream",
    }
}
