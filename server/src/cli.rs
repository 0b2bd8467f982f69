// Long file: the command line, every subcommand's flags beside the code that runs it.
//! The `propsync-server` command line: `demo`, `serve` and the admin
//! commands. The binary's `main` only calls [`run`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::{Config, schema};
use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(name = "propsync-server", about = "The propsync relay", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How the relay behaves, beyond where it keeps its data and listens.
#[derive(clap::Args)]
struct Tuning {
    /// Seconds a document nobody syncs or writes stays in memory.
    #[arg(long, env = "PROPSYNC_DOC_IDLE_SECS", default_value_t = 10)]
    doc_idle_secs: u64,
    /// Turn every rate limit and the login lock-out off (load tests and
    /// benchmarks that drive hundreds of phones from one address).
    #[arg(long, env = "PROPSYNC_NO_LIMITS")]
    no_limits: bool,
    /// Requests per second one client address may make on average (0: no limit).
    #[arg(long, env = "PROPSYNC_RATE_PER_ADDRESS")]
    rate_per_address: Option<u32>,
    /// The burst one client address may make at once.
    #[arg(long, env = "PROPSYNC_BURST_PER_ADDRESS")]
    burst_per_address: Option<u32>,
    /// Failed logins in a row that lock a user name out (0: never).
    #[arg(long, env = "PROPSYNC_LOCKOUT_AFTER")]
    lockout_after: Option<u32>,
    /// A reverse proxy whose X-Forwarded-For names the client (repeatable;
    /// in the environment, comma separated).
    #[arg(
        long = "trusted-proxy",
        env = "PROPSYNC_TRUSTED_PROXY",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<std::net::IpAddr>,
    /// Mark the session cookie Secure (the relay is reached over HTTPS).
    #[arg(long, env = "PROPSYNC_SECURE_COOKIES")]
    secure_cookies: bool,
    /// MiB of photos one device may upload per UTC day.
    #[arg(long, env = "PROPSYNC_BLOB_QUOTA_MIB")]
    blob_quota_mib: Option<u64>,
    /// The built field app to serve at /app/ (client-core/web/build.sh's
    /// output; by default this checkout's target/field-app).
    #[arg(long, env = "PROPSYNC_APP_DIR")]
    app_dir: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics, on their own address
    /// (keep it private: 127.0.0.1:9464 or an internal interface).
    #[arg(long, env = "PROPSYNC_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Take a backup this often while serving (`30m`, `6h`, `1d`), into
    /// `--backup-dir`.
    #[arg(long, env = "PROPSYNC_BACKUP_EVERY", value_parser = parse_every, requires = "backup_dir")]
    backup_every: Option<std::time::Duration>,
    /// Where scheduled backups go (`propsync-YYYYMMDDTHHMMSSZ.tar.gz`).
    #[arg(long, env = "PROPSYNC_BACKUP_DIR")]
    backup_dir: Option<PathBuf>,
    /// How many scheduled backups to keep (the oldest are deleted).
    #[arg(long, env = "PROPSYNC_BACKUP_KEEP", default_value_t = 8)]
    backup_keep: usize,
    /// A TOML file of settings: each key is a flag's name with `_` for `-`
    /// (`doc_idle_secs = 10`, `trusted_proxy = ["127.0.0.1"]`, `data = "/var/lib/propsync"`).
    /// A flag on the command line wins over the environment (`PROPSYNC_*`),
    /// which wins over the file.
    #[arg(long, env = "PROPSYNC_CONFIG")]
    config: Option<PathBuf>,
}

/// `30s`, `30m`, `6h`, `1d`.
fn parse_every(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?}: a number and a unit (s, m, h, d), such as 6h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" | "" => n * 3_600,
        "d" => n * 86_400,
        _ => return Err(format!("{s:?}: the unit is one of s, m, h, d")),
    };
    if secs == 0 {
        return Err("the interval must be more than zero".into());
    }
    Ok(std::time::Duration::from_secs(secs))
}

/// The command line with the settings of `--config FILE` (or
/// `PROPSYNC_CONFIG`) added as flags, for each setting not already given as
/// a flag or in its environment variable. Unknown keys are refused.
fn args_with_config(mut args: Vec<std::ffi::OsString>) -> anyhow::Result<Vec<std::ffi::OsString>> {
    use clap::CommandFactory;
    let text: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut path = text.iter().enumerate().find_map(|(i, a)| {
        if a == "--config" {
            text.get(i + 1).cloned()
        } else {
            a.strip_prefix("--config=").map(str::to_owned)
        }
    });
    if path.is_none() {
        path = std::env::var("PROPSYNC_CONFIG").ok();
    }
    let Some(path) = path else { return Ok(args) };
    let Some(sub) = text.iter().skip(1).find(|a| !a.starts_with('-')) else {
        return Ok(args);
    };
    let cli = Cli::command();
    let Some(cmd) = cli.find_subcommand(sub) else {
        return Ok(args);
    };
    let body = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the configuration {path}"))?;
    let table: toml::Table = body
        .parse()
        .with_context(|| format!("the configuration {path} is not valid TOML"))?;
    let known: Vec<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_long().map(|l| l.replace('-', "_")))
        .filter(|k| k != "config")
        .collect();
    for (key, value) in table {
        let long = key.replace('_', "-");
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()) && long != "config")
            .with_context(|| {
                format!(
                    "{path}: unknown setting {key:?}; the settings are {}",
                    known.join(", ")
                )
            })?;
        let flag = format!("--{long}");
        let given = text
            .iter()
            .any(|a| *a == flag || a.starts_with(&format!("{flag}=")));
        let in_env = arg.get_env().is_some_and(|e| std::env::var_os(e).is_some());
        if given || in_env {
            continue;
        }
        let values = match value {
            toml::Value::Array(items) => items,
            one => vec![one],
        };
        for v in values {
            match v {
                toml::Value::Boolean(true) => args.push(flag.clone().into()),
                toml::Value::Boolean(false) => {}
                toml::Value::String(s) => {
                    args.push(flag.clone().into());
                    args.push(s.into());
                }
                toml::Value::Integer(_) | toml::Value::Float(_) => {
                    args.push(flag.clone().into());
                    args.push(v.to_string().into());
                }
                other => anyhow::bail!("{path}: {key} = {other} is not a value it takes"),
            }
        }
    }
    Ok(args)
}

impl Tuning {
    /// Starts the metrics address, if one is set.
    async fn metrics(&self, relay: &crate::Relay) -> anyhow::Result<()> {
        let Some(addr) = self.metrics_listen else {
            return Ok(());
        };
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the metrics address {addr}"))?;
        eprintln!("metrics on http://{}/metrics", listener.local_addr()?);
        let relay = relay.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::metrics::serve(listener, relay).await {
                tracing::error!(error = %e, "the metrics address failed");
            }
        });
        Ok(())
    }

    /// Starts the scheduled backups of `--backup-every`, if asked: the first
    /// one an interval after start, each followed by pruning to `--backup-keep`.
    fn schedule_backups(&self, data: &std::path::Path) -> anyhow::Result<()> {
        let (Some(every), Some(dir)) = (self.backup_every, self.backup_dir.clone()) else {
            return Ok(());
        };
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the backup directory {}", dir.display()))?;
        let (data, keep) = (data.to_owned(), self.backup_keep);
        eprintln!(
            "backups every {} s into {}, keeping {keep}",
            every.as_secs(),
            dir.display()
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let (data, dir) = (data.clone(), dir.clone());
                let done = tokio::task::spawn_blocking(move || {
                    let out = dir.join(crate::ops::backup_name(chrono::Utc::now()));
                    let m = crate::ops::backup(&data, &out, &mut |_| {})?;
                    let pruned = crate::ops::prune_backups(&dir, keep)?;
                    Ok::<_, crate::ops::OpsError>((out, m, pruned))
                })
                .await;
                match done {
                    Ok(Ok((out, m, pruned))) => tracing::info!(
                        archive = %out.display(),
                        tickets = m.counts.tickets,
                        blobs = m.counts.blobs,
                        pruned,
                        "scheduled backup written"
                    ),
                    Ok(Err(e)) => tracing::error!(error = %e, "scheduled backup failed"),
                    Err(e) => tracing::error!(error = %e, "scheduled backup stopped"),
                }
            }
        });
        Ok(())
    }

    fn config(&self, data: PathBuf, listen: SocketAddr) -> Config {
        let mut c = Config::new(data, listen);
        c.doc_idle = std::time::Duration::from_secs(self.doc_idle_secs.max(1));
        if self.no_limits {
            c.limits = crate::Limits::off();
        }
        if let Some(n) = self.rate_per_address {
            c.limits.per_address_per_second = n;
        }
        if let Some(n) = self.burst_per_address {
            c.limits.per_address_burst = n;
        }
        if let Some(n) = self.lockout_after {
            c.limits.lockout_after = n;
        }
        c.limits
            .trusted_proxies
            .extend(self.trusted_proxies.iter().copied());
        c.secure_cookies = self.secure_cookies;
        if let Some(mib) = self.blob_quota_mib {
            c.blob_quota_per_day = mib.saturating_mul(1024 * 1024);
        }
        if let Some(dir) = &self.app_dir {
            c.app_dir.clone_from(dir);
        }
        c
    }
}

#[derive(Subcommand)]
enum Command {
    /// Create a demo property on first start (users, devices, households), write
    /// DATA/demo-credentials.json, then serve.
    Demo {
        #[arg(long, env = "PROPSYNC_DATA", default_value = "./demo-data")]
        data: PathBuf,
        #[arg(long, env = "PROPSYNC_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[command(flatten)]
        tuning: Tuning,
    },
    /// Serve an existing property.
    Serve {
        /// The data directory (database and blobs).
        #[arg(long, env = "PROPSYNC_DATA")]
        data: PathBuf,
        /// The address to listen on (behind a TLS proxy: a loopback address).
        #[arg(long, env = "PROPSYNC_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[command(flatten)]
        tuning: Tuning,
    },
    /// Administer a property (the relay may be running).
    Admin {
        /// The data directory (for `restore`: the empty directory to restore into).
        #[arg(long, global = true, env = "PROPSYNC_DATA")]
        data: Option<PathBuf>,
        #[command(subcommand)]
        action: AdminAction,
    },
}

#[derive(Subcommand)]
enum AdminAction {
    /// Back up the property (database and blobs) into one .tar.gz with a
    /// manifest of counts and SHA-256s, while the relay serves.
    Backup {
        /// The archive to write (written beside it first, then renamed).
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore a backup into an empty directory, check it against its
    /// manifest, give it a new storage epoch and verify it.
    Restore {
        /// The archive `admin backup` wrote.
        #[arg(long)]
        from: PathBuf,
    },
    /// Check a data directory: every document loads, ledgers match the
    /// documents, serial series have no gap, blobs match their hashes.
    /// Exit code 0 when sound, 1 when anything is wrong.
    Verify,
    /// Create a user.
    CreateUser {
        #[arg(long)]
        username: String,
        #[arg(long)]
        password: String,
        /// front_desk, supervisor, dispatcher, engineer, engineering_supervisor,
        /// department_staff, cashier, manager.
        #[arg(long)]
        role: String,
        #[arg(long)]
        department: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Enroll a device for a user and print its token.
    EnrollDevice {
        #[arg(long)]
        username: String,
        #[arg(long)]
        device: String,
        #[arg(long, default_value = "phone")]
        label: String,
    },
    /// Revoke a device: its token stops working at once.
    RevokeDevice {
        #[arg(long)]
        device: String,
    },
    /// Make a new signing key and retire the old ones (every token must be reissued).
    RotateKey,
    /// Set the property's time zone (an IANA name such as Asia/Shanghai): it
    /// decides the day in reports, the serial number's year and every time
    /// people see. Unknown names are refused.
    SetTimeZone {
        /// The IANA zone name.
        zone: String,
    },
    /// Set the property up once: its name, time zone and units (a CSV file
    /// `building,unit,area_m2` with a header line; areas to 0.01 m²).
    SetupProperty {
        #[arg(long)]
        name: String,
        /// The IANA time zone.
        #[arg(long, default_value = "Asia/Shanghai")]
        time_zone: String,
        /// The units CSV.
        #[arg(long)]
        units: PathBuf,
        /// The user setting it up (recorded on the property).
        #[arg(long, default_value = "admin")]
        by: String,
    },
    /// Import household files from a CSV or XLSX file: checked whole, then
    /// (with --commit) written in one transaction, or refused naming every
    /// bad row and column.
    ImportHouseholds {
        file: PathBuf,
        /// Write; without it the import is only checked.
        #[arg(long)]
        commit: bool,
        #[arg(long, default_value = "admin")]
        by: String,
    },
    /// Add or change a charge item: per_area (fen per m² per month),
    /// per_space (fen per parking space per month), metered or one_off.
    SetChargeItem {
        #[arg(long)]
        code: String,
        #[arg(long)]
        name_zh: String,
        #[arg(long)]
        name_en: String,
        #[arg(long)]
        kind: String,
        #[arg(long, default_value_t = 0)]
        rate_fen: i64,
    },
    /// Bill a period (YYYY-MM) for every household: repeating it bills nothing twice.
    BillRun {
        period: String,
        #[arg(long, default_value = "admin")]
        by: String,
    },
    /// Write a year of history for load tests: N tickets received over the
    /// past --days days and moved through their lifecycles by the property's
    /// people (the demo property's, made first on a fresh directory), through
    /// the relay's own judging and numbering. Progress on stderr. Never on a
    /// real property: every step is a real, numbered record.
    SeedHistory {
        #[arg(long)]
        tickets: usize,
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Per cent of tickets left part way through their lifecycle.
        #[arg(long, default_value_t = 4)]
        open_percent: u32,
    },
    /// Write the whole per-change sync ledger as CSV (and, with `--sessions`,
    /// every sync session with its counters).
    ExportSyncLog {
        #[arg(long)]
        out: PathBuf,
        /// Also write the sessions (one per connection) to this CSV file.
        #[arg(long)]
        sessions: Option<PathBuf>,
    },
}

/// Runs the command line: reads the arguments, opens the relay's state,
/// binds and serves until Ctrl-C, or runs an admin command.
///
/// # Errors
/// Bad arguments, a data directory that cannot be opened, a port in use.
pub async fn run() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse_from(args_with_config(std::env::args_os().collect())?);
    match cli.command {
        Command::Demo {
            data,
            listen,
            tuning,
        } => {
            let relay = crate::open(tuning.config(data.clone(), listen))
                .await
                .context("opening the data directory")?;
            let listener = TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            let addr = listener.local_addr()?;
            if let Some(creds) = crate::demo::seed(&relay)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                let path = data.join("demo-credentials.json");
                let body = serde_json::json!({ "relay": format!("http://{addr}"), "users": creds });
                std::fs::write(&path, serde_json::to_vec_pretty(&body)?)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("demo property created; credentials in {}", path.display());
            }
            tuning.metrics(&relay).await?;
            eprintln!(
                "propsync relay listening on http://{addr} (data in {})",
                data.display()
            );
            tuning.schedule_backups(&data)?;
            crate::serve(listener, relay, shutdown()).await?;
        }
        Command::Serve {
            data,
            listen,
            tuning,
        } => {
            let relay = crate::open(tuning.config(data.clone(), listen))
                .await
                .context("opening the data directory")?;
            let set_up = relay.db.read(crate::property::property).await?.is_some();
            if !set_up {
                let d = data.display();
                eprintln!(
                    "{d} holds no property yet. To set one up (or see README.md, \"A property on day one\"):\n\
                     \x20 1. propsync-server admin --data {d} create-user --username admin --password … --role manager\n\
                     \x20 2. propsync-server admin --data {d} setup-property --name … --units units.csv   (building,unit,area_m2)\n\
                     \x20 3. propsync-server admin --data {d} import-households households.xlsx --commit\n\
                     \x20 or sign in to the dashboard as that manager: it opens the set-up form, then Import and Fees"
                );
            }
            let finished = crate::property::materialise_pending(&relay)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if finished > 0 {
                eprintln!("wrote the documents of {finished} household files left by a stop");
            }
            let listener = TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            tuning.metrics(&relay).await?;
            eprintln!(
                "propsync relay listening on http://{} (data in {})",
                listener.local_addr()?,
                data.display()
            );
            tuning.schedule_backups(&data)?;
            crate::serve(listener, relay, shutdown()).await?;
        }
        Command::Admin { data, action } => {
            let data = data.context("--data DIR (or PROPSYNC_DATA) is required")?;
            match action {
                AdminAction::Backup { out } => return ops_backup(&data, &out),
                AdminAction::Restore { from } => return ops_restore(&from, &data),
                AdminAction::Verify => return ops_verify(&data),
                AdminAction::SeedHistory {
                    tickets,
                    days,
                    open_percent,
                } => return seed_history(&data, tickets, days, open_percent).await,
                _ => {}
            }
            let relay = crate::open(Config::new(data, "127.0.0.1:0".parse()?))
                .await
                .context("opening the data directory")?;
            admin(&relay, action).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn ops_backup(data: &std::path::Path, out: &std::path::Path) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let m = crate::ops::backup(data, out, &mut crate::ops::stderr_progress())?;
    let size = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "备份完成 / backup written: {} ({} KiB, {:.1} s): {} tickets, {} serials, {} documents, {} changes, {} blobs",
        out.display(),
        size / 1024,
        started.elapsed().as_secs_f64(),
        m.counts.tickets,
        m.counts.serials,
        m.counts.documents,
        m.counts.changes,
        m.counts.blobs
    );
    Ok(ExitCode::SUCCESS)
}

fn ops_restore(from: &std::path::Path, data: &std::path::Path) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let r = crate::ops::restore(from, data, &mut crate::ops::stderr_progress())?;
    let c = &r.manifest.counts;
    eprintln!(
        "恢复完成 / restored {} (taken {}) into {} in {:.1} s: {} files checked against the manifest; \
         {} tickets, {} serials, {} documents, {} changes, {} blobs; new storage epoch {}",
        from.display(),
        r.manifest.taken_at,
        data.display(),
        started.elapsed().as_secs_f64(),
        r.files_checked,
        c.tickets,
        c.serials,
        c.documents,
        c.changes,
        c.blobs,
        r.epoch
    );
    Ok(report_verify(&r.verify))
}

async fn seed_history(
    data: &std::path::Path,
    tickets: usize,
    days: u32,
    open_percent: u32,
) -> anyhow::Result<ExitCode> {
    let opts = crate::history::Options {
        days,
        open_percent,
        ..crate::history::Options::new(tickets)
    };
    let s = crate::history::seed_data_dir(data, &opts, &|p: &crate::history::Progress| {
        eprintln!(
            "历史 / history: {}/{} steps, {} tickets, {:.0} steps/s",
            p.steps_done,
            p.steps_total,
            p.tickets_created,
            p.steps_done as f64 / p.elapsed.as_secs_f64().max(1e-9)
        );
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!(
        "历史 / history: {} tickets, {} steps in {:.1} s ({:.0} tickets/s); {} open; by kind {:?}; by status {:?}; {} refused, {} not as planned",
        s.tickets,
        s.steps,
        s.took.as_secs_f64(),
        s.tickets as f64 / s.took.as_secs_f64().max(1e-9),
        s.open,
        s.by_kind,
        s.by_status,
        s.refused,
        s.not_as_planned
    );
    Ok(if s.refused == 0 && s.not_as_planned == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn ops_verify(data: &std::path::Path) -> anyhow::Result<ExitCode> {
    let r = crate::ops::verify(data, &mut crate::ops::stderr_progress())?;
    Ok(report_verify(&r))
}

fn report_verify(r: &crate::ops::VerifyReport) -> ExitCode {
    #[allow(clippy::print_stdout, reason = "the problems are the command's output")]
    for p in &r.problems {
        println!("{p}");
    }
    eprintln!(
        "校验 / verify: {} documents loaded, {} ledger changes found in their documents, \
         {} serial numbers checked, {} blobs hashed: {}",
        r.documents_loaded,
        r.changes_checked,
        r.serials_checked,
        r.blobs_hashed,
        if r.ok() {
            "无问题 / sound".to_owned()
        } else {
            format!(
                "{} 个问题 / {} problems",
                r.problems.len(),
                r.problems.len()
            )
        }
    );
    if r.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn admin(relay: &crate::Relay, action: AdminAction) -> anyhow::Result<()> {
    let e = |e: crate::error::AppError| anyhow::anyhow!("{e}");
    match action {
        AdminAction::CreateUser {
            username,
            password,
            role,
            department,
            display_name,
        } => {
            let user = schema::UserId::new(&username)?;
            let role: schema::Role = role.parse()?;
            let department = department
                .map(|d| d.parse::<schema::Department>())
                .transpose()?;
            let display = display_name.unwrap_or_else(|| username.clone());
            crate::admin::create_user(relay, &user, &display, &password, role, department)
                .await
                .map_err(e)?;
            eprintln!("created user {user} ({role})");
        }
        AdminAction::EnrollDevice {
            username,
            device,
            label,
        } => {
            let token = crate::admin::enroll_device(
                relay,
                &schema::UserId::new(username)?,
                &schema::DeviceId::new(device)?,
                &label,
            )
            .await
            .map_err(e)?;
            #[allow(clippy::print_stdout, reason = "the token is the command's output")]
            {
                println!("{token}");
            }
        }
        AdminAction::RevokeDevice { device } => {
            let revoked =
                crate::admin::revoke_device(relay, &schema::DeviceId::new(device.clone())?)
                    .await
                    .map_err(e)?;
            eprintln!(
                "{}",
                if revoked {
                    format!("revoked {device}")
                } else {
                    format!("{device} was not active")
                }
            );
        }
        AdminAction::RotateKey => {
            let kid = crate::admin::rotate_key(relay).await.map_err(e)?;
            eprintln!("new signing key {kid}; every earlier token is retired");
        }
        AdminAction::SetTimeZone { zone } => {
            let tz = crate::settings::set_time_zone(relay, &zone)
                .await
                .map_err(e)?;
            eprintln!("the property's time zone is now {}", tz.name());
        }
        // Backup, restore, verify and the history open the data directory
        // themselves: handled in `run`.
        AdminAction::Backup { .. }
        | AdminAction::Restore { .. }
        | AdminAction::Verify
        | AdminAction::SeedHistory { .. } => {}
        AdminAction::SetupProperty {
            name,
            time_zone,
            units,
            by,
        } => {
            let text = std::fs::read_to_string(&units)
                .with_context(|| format!("reading {}", units.display()))?;
            let units = crate::property::parse_units_csv(&text).map_err(e)?;
            let mut buildings: Vec<crate::property::BuildingSpec> = Vec::new();
            for u in &units {
                if !buildings.iter().any(|b| b.code == u.building) {
                    buildings.push(crate::property::BuildingSpec {
                        code: u.building.clone(),
                        name: String::new(),
                    });
                }
            }
            let (nb, nu) = (buildings.len(), units.len());
            let spec = crate::property::PropertySpec {
                name,
                time_zone: Some(time_zone),
                buildings,
                units,
            };
            crate::property::setup_property(relay, spec, &schema::UserId::new(by)?)
                .await
                .map_err(e)?;
            eprintln!("the property is set up: {nb} buildings, {nu} units");
        }
        AdminAction::ImportHouseholds { file, commit, by } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let format = crate::property::import::Format::guess(&file.to_string_lossy());
            let p = schema::Principal::new(
                schema::UserId::new(by)?,
                schema::Role::Manager,
                crate::admin::web_device(&schema::UserId::new("admin")?),
            );
            eprintln!("read {} bytes; checking every row", bytes.len());
            let started = std::time::Instant::now();
            match crate::property::http::import_bytes(
                relay,
                &bytes,
                format,
                commit,
                &p,
                &|_, _, _| {},
            )
            .await
            {
                Ok(v) => eprintln!(
                    "{} {} households in {:.1} s",
                    if commit {
                        "imported"
                    } else {
                        "checked (nothing written; add --commit)"
                    },
                    v["rows"],
                    started.elapsed().as_secs_f64()
                ),
                Err(crate::error::AppError::Invalid { message, details }) => {
                    for d in details["errors"].as_array().into_iter().flatten() {
                        eprintln!(
                            "row {}, column {}: {}",
                            d["row"],
                            d["column"].as_str().unwrap_or(""),
                            d["message"].as_str().unwrap_or("")
                        );
                    }
                    anyhow::bail!("{message}");
                }
                Err(other) => return Err(e(other)),
            }
        }
        AdminAction::SetChargeItem {
            code,
            name_zh,
            name_en,
            kind,
            rate_fen,
        } => {
            crate::fees::http::set_item(relay, code, name_zh, name_en, &kind, rate_fen)
                .await
                .map_err(e)?;
            eprintln!("charge item set");
        }
        AdminAction::BillRun { period, by } => {
            let r = crate::fees::http::run_bills(relay, &period, &by)
                .await
                .map_err(e)?;
            eprintln!("{r}");
        }
        AdminAction::ExportSyncLog { out, sessions } => {
            let csv = crate::admin::export_sync_log(relay).await.map_err(e)?;
            std::fs::write(&out, csv).with_context(|| format!("writing {}", out.display()))?;
            eprintln!("wrote {}", out.display());
            if let Some(path) = sessions {
                let csv = crate::admin::export_sync_sessions(relay).await.map_err(e)?;
                std::fs::write(&path, csv)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
        }
    }
    Ok(())
}

async fn shutdown() {
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    fn strings(a: Vec<OsString>) -> Vec<String> {
        a.into_iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn the_configuration_file_adds_the_settings_the_command_line_does_not_give() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let file = dir.path().join("relay.toml");
        std::fs::write(
            &file,
            "data = \"/srv/p\"\nlisten = \"127.0.0.1:9\"\nno_limits = true\nsecure_cookies = false\n\
             trusted_proxy = [\"10.0.0.1\", \"10.0.0.2\"]\nbackup_keep = 3\n",
        )
        .expect("written");
        let path = file.to_string_lossy().into_owned();
        let got = strings(
            super::args_with_config(args(&[
                "propsync-server",
                "serve",
                "--config",
                &path,
                "--listen",
                "0.0.0.0:1",
            ]))
            .expect("read"),
        );
        let tail = got[5..].join(" ");
        assert!(tail.contains("--data /srv/p"), "{tail}");
        assert!(
            !tail.contains("127.0.0.1:9"),
            "the command line wins: {tail}"
        );
        assert!(tail.contains("--no-limits"));
        assert!(!tail.contains("--secure-cookies"), "false adds nothing");
        assert!(tail.contains("--trusted-proxy 10.0.0.1 --trusted-proxy 10.0.0.2"));
        assert!(tail.contains("--backup-keep 3"));
        // And clap takes the result.
        assert!(<super::Cli as clap::Parser>::try_parse_from(got).is_ok());
    }

    #[test]
    fn an_unknown_setting_is_refused_with_the_known_ones() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let file = dir.path().join("relay.toml");
        std::fs::write(&file, "no_limit = true\n").expect("written");
        let path = file.to_string_lossy().into_owned();
        let e = super::args_with_config(args(&["propsync-server", "serve", "--config", &path]))
            .expect_err("unknown");
        let msg = e.to_string();
        assert!(
            msg.contains("\"no_limit\"") && msg.contains("no_limits"),
            "{msg}"
        );
    }

    #[test]
    fn backup_intervals_read_with_their_unit() {
        assert_eq!(
            super::parse_every("6h"),
            Ok(std::time::Duration::from_secs(6 * 3_600))
        );
        assert_eq!(
            super::parse_every("30m"),
            Ok(std::time::Duration::from_secs(1_800))
        );
        assert_eq!(
            super::parse_every("1d"),
            Ok(std::time::Duration::from_secs(86_400))
        );
        assert!(super::parse_every("0h").is_err());
        assert!(super::parse_every("6w").is_err());
        assert!(super::parse_every("h").is_err());
    }
}
