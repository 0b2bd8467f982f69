//! The servers under test as child processes (the relay's release binary and
//! the JavaScript automerge-repo sync server on Node), and what `/proc` says
//! about them: CPU seconds, resident and peak memory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A server the bench talks to, running as a child process.
pub(crate) struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub(crate) url: String,
    /// When the process was spawned.
    pub(crate) spawned: Instant,
}

impl Server {
    /// Starts the relay (`serve`) on an existing data directory.
    pub(crate) fn relay(bin: &Path, data: &Path) -> Result<Self> {
        let mut cmd = Command::new(bin);
        // 1,000 phones from one address: no rate limits (what is measured is
        // the sync path; the limits have their own tests).
        cmd.args(["serve", "--data"])
            .arg(data)
            .args(["--listen", "127.0.0.1:0", "--no-limits"])
            .env("RUST_LOG", "warn");
        Self::spawn(cmd, "listening on ", |rest| {
            rest.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned()
        })
    }

    /// Starts `node server.mjs 0 DATA` in `dir` (the bench's npm package).
    pub(crate) fn peer(dir: &Path, data: &Path) -> Result<Self> {
        let mut cmd = Command::new("node");
        cmd.current_dir(dir).arg("server.mjs").arg("0").arg(data);
        Self::spawn(cmd, "listening on ", |rest| {
            format!("http://127.0.0.1:{}", rest.trim())
        })
    }

    fn spawn(mut cmd: Command, marker: &str, url_of: impl Fn(&str) -> String) -> Result<Self> {
        let spawned = Instant::now();
        // The relay says where it listens on stderr, the peer on stdout: read both.
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {cmd:?}"))?;
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let out = child.stdout.take().context("no stdout")?;
        let err = child.stderr.take().context("no stderr")?;
        for pipe in [
            Box::new(out) as Box<dyn std::io::Read + Send>,
            Box::new(err) as Box<dyn std::io::Read + Send>,
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => {
                    let _ = child.kill();
                    bail!(
                        "{cmd:?} did not start listening; it said:\n{}",
                        seen.join("\n")
                    )
                }
            };
            if let Some(rest) = line.split(marker).nth(1) {
                let url = url_of(rest);
                // Keep draining so the child never blocks on a full pipe;
                // PROPSYNC_BENCH_VERBOSE=1 shows what the servers say.
                let verbose = std::env::var_os("PROPSYNC_BENCH_VERBOSE").is_some();
                std::thread::spawn(move || {
                    for line in rx {
                        if verbose {
                            eprintln!("server: {line}");
                        }
                    }
                });
                return Ok(Self {
                    child,
                    url,
                    spawned,
                });
            }
            seen.push(line);
        }
    }

    /// The process id, for `/proc`.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU seconds (user + system) so far.
    pub(crate) fn cpu_secs(&self) -> Result<f64> {
        cpu_secs(self.pid())
    }

    /// Resident memory now and at its peak, in bytes.
    pub(crate) fn memory(&self) -> Result<Memory> {
        memory(self.pid())
    }

    /// Stops the process (SIGKILL; both servers keep their data durable or do
    /// not claim to) and waits for it.
    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Resident memory of a process.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Memory {
    /// `VmRSS`, bytes.
    pub(crate) rss: u64,
    /// `VmHWM` (peak resident), bytes.
    pub(crate) peak: u64,
}

fn memory(pid: u32) -> Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    Ok(Memory {
        rss: field("VmRSS:"),
        peak: field("VmHWM:"),
    })
}

fn cpu_secs(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name may hold spaces: fields are counted after its ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> u64 { fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0) };
    // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
    let total = ticks(11) + ticks(12);
    Ok(ticks_to_secs(total))
}

fn ticks_to_secs(ticks: u64) -> f64 {
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    let hz = *HZ.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .unwrap_or(100.0)
    });
    ticks as f64 / hz
}

/// The open-files limit of this process (children inherit it).
pub(crate) fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The machine: CPUs and memory, for the report.
pub(crate) fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!(
        "{cpus} CPUs ({model}), {:.1} GiB memory",
        mem as f64 / 1024.0 / 1024.0
    )
}

/// Finds a binary next to this executable (the release build puts the bench
/// and the relay in the same directory).
pub(crate) fn sibling(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding this executable")?;
    let dir = exe.parent().context("the executable has no directory")?;
    for candidate in [dir.join(name), dir.join("..").join(name)] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "no {name} next to {}: build with `cargo build --release -p propsync-tests --bins`",
        exe.display()
    )
}
