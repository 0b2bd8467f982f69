//! The `propsync-server` command line: `demo`, `serve` and the admin
//! commands. The binary's `main` only calls [`run`].

use std::net::SocketAddr;
use std::path::PathBuf;

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
    #[arg(long, default_value_t = 10)]
    doc_idle_secs: u64,
    /// Turn every rate limit and the login lock-out off (load tests and
    /// benchmarks that drive hundreds of phones from one address).
    #[arg(long)]
    no_limits: bool,
    /// Requests per second one client address may make on average (0: no limit).
    #[arg(long)]
    rate_per_address: Option<u32>,
    /// The burst one client address may make at once.
    #[arg(long)]
    burst_per_address: Option<u32>,
    /// Failed logins in a row that lock a user name out (0: never).
    #[arg(long)]
    lockout_after: Option<u32>,
    /// A reverse proxy whose X-Forwarded-For names the client (repeatable).
    #[arg(long = "trusted-proxy")]
    trusted_proxies: Vec<std::net::IpAddr>,
    /// Mark the session cookie Secure (the relay is reached over HTTPS).
    #[arg(long)]
    secure_cookies: bool,
    /// MiB of photos one device may upload per UTC day.
    #[arg(long)]
    blob_quota_mib: Option<u64>,
    /// The built field app to serve at /app/ (client-core/web/build.sh's
    /// output; by default this checkout's target/field-app).
    #[arg(long, env = "PROPSYNC_APP_DIR")]
    app_dir: Option<PathBuf>,
}

impl Tuning {
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
        #[arg(long, default_value = "./demo-data")]
        data: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[command(flatten)]
        tuning: Tuning,
    },
    /// Serve an existing property.
    Serve {
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[command(flatten)]
        tuning: Tuning,
    },
    /// Administer a property (the relay may be running).
    Admin {
        #[arg(long)]
        data: PathBuf,
        #[command(subcommand)]
        action: AdminAction,
    },
}

#[derive(Subcommand)]
enum AdminAction {
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
pub async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
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
            eprintln!(
                "propsync relay listening on http://{addr} (data in {})",
                data.display()
            );
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
                     \x20 or log in to the dashboard as the manager and POST /api/v1/property"
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
            eprintln!(
                "propsync relay listening on http://{} (data in {})",
                listener.local_addr()?,
                data.display()
            );
            crate::serve(listener, relay, shutdown()).await?;
        }
        Command::Admin { data, action } => {
            let relay = crate::open(Config::new(data, "127.0.0.1:0".parse()?))
                .await
                .context("opening the data directory")?;
            admin(&relay, action).await?;
        }
    }
    Ok(())
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
            match crate::property::http::import_bytes(relay, &bytes, format, commit, &p).await {
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
