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
    /// Serve Prometheus metrics at http://ADDR/metrics, on their own address
    /// (keep it private: 127.0.0.1:9464 or an internal interface).
    #[arg(long, env = "PROPSYNC_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
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
            tuning.metrics(&relay).await?;
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
            if !data.join("propsync.sqlite3").exists() {
                anyhow::bail!(
                    "{} holds no property; create one with `propsync-server demo` or the admin commands",
                    data.display()
                );
            }
            let relay = crate::open(tuning.config(data.clone(), listen))
                .await
                .context("opening the data directory")?;
            let listener = TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            tuning.metrics(&relay).await?;
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
