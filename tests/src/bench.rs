//! What the load generators share: the real `homeward` binary as a child process on a test database,
//! its resident memory, and latency percentiles.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration as StdDuration;

use anyhow::{Context, bail, ensure};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::TestDatabase;

/// `--server-bin`, or `homeward` next to this program (target/release/homeward).
pub fn server_binary(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let bin = match given {
        Some(bin) => bin,
        None => std::env::current_exe()?
            .parent()
            .context("this program's directory")?
            .join(format!("homeward{}", std::env::consts::EXE_SUFFIX)),
    };
    if !bin.is_file() {
        bail!(
            "the homeward binary is not at {}: build it with `cargo build --release -p homeward-server --bin homeward` \
             or pass --server-bin",
            bin.display()
        );
    }
    Ok(bin)
}

/// The server binary with only this database's settings (none of the caller's `HOMEWARD_*`).
pub fn command(bin: &Path, db: &TestDatabase) -> Command {
    let mut command = Command::new(bin);
    for (var, _) in std::env::vars() {
        if var.starts_with("HOMEWARD_") || var == "DATABASE_URL" || var == "RUST_LOG" {
            command.env_remove(var);
        }
    }
    command
        .env("DATABASE_URL", &db.url)
        .env("HOMEWARD_DATA_DIR", &db.data_dir)
        // The load generators hand plain access tokens to clients of their own and run for longer than
        // a token lasts; renewal is tested elsewhere.
        .env("HOMEWARD_ACCESS_TOKEN_TTL_SECS", "86400")
        .current_dir(&db.data_dir)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// One admin command of the server binary (e.g. `create-school`); its standard output.
pub async fn run_cli(bin: &Path, db: &TestDatabase, args: &[&str]) -> anyhow::Result<String> {
    let output = command(bin, db).args(args).output().await?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    ensure!(
        output.status.success(),
        "homeward {args:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(stdout)
}

/// A child process that prints `listening on http://ADDR` when ready: `homeward serve`, or the bare
/// endpoint. Killed if dropped.
pub struct ServerProcess {
    child: Child,
    pub base: String,
}

impl ServerProcess {
    /// `homeward serve` on `db`, its log (stderr) to `log`; `env` adds settings.
    pub async fn start(
        bin: &Path,
        db: &TestDatabase,
        log: &Path,
        level: Option<&str>,
        env: &[(&str, &str)],
    ) -> anyhow::Result<ServerProcess> {
        let mut command = command(bin, db);
        if let Some(level) = level {
            command.env("RUST_LOG", level);
        }
        for (k, v) in env {
            command.env(k, v);
        }
        Self::spawn(command, log, "HOMEWARD_BIND").await
    }

    /// Spawn `command` with its address in the environment variable `bind_var` and wait until it listens.
    pub async fn spawn(mut command: Command, log: &Path, bind_var: &str) -> anyhow::Result<ServerProcess> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        command
            .env(bind_var, format!("127.0.0.1:{port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(log)?));
        let mut child = command.spawn().context("start the server")?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let expected = format!("listening on http://127.0.0.1:{port}");
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut ready_tx = Some(ready_tx);
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains(&expected)
                    && let Some(tx) = ready_tx.take()
                {
                    let _ = tx.send(());
                }
            }
        });
        match tokio::time::timeout(StdDuration::from_secs(60), ready).await {
            Ok(Ok(())) => Ok(ServerProcess { child, base: format!("http://127.0.0.1:{port}") }),
            _ => {
                let _ = child.kill().await;
                bail!("the server did not start; see {}", log.display())
            }
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The process's resident memory now and at its peak.
    pub fn memory(&self) -> Option<Memory> {
        Memory::of(self.pid()?)
    }

    /// SIGTERM, and SIGKILL if it has not stopped within ten seconds.
    pub async fn stop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status().await;
        }
        if tokio::time::timeout(StdDuration::from_secs(10), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

/// Resident memory of a process, from `/proc/<pid>/status`, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the peak resident size so far.
    pub peak_kib: u64,
}

impl Memory {
    pub fn of(pid: u32) -> Option<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        };
        Some(Memory { rss_kib: field("VmRSS:")?, peak_kib: field("VmHWM:")? })
    }

    pub fn mib(kib: u64) -> f64 {
        kib as f64 / 1024.0
    }
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RSS {:.0} MiB (peak {:.0} MiB)", Memory::mib(self.rss_kib), Memory::mib(self.peak_kib))
    }
}

/// Milliseconds, or `-` when there were none.
pub fn ms(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v < 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.0} ms")
    }
}

pub struct Stats {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// Nearest-rank percentiles of milliseconds.
pub fn stats(mut values: Vec<f64>) -> Stats {
    values.sort_by(f64::total_cmp);
    let rank = |p: f64| {
        if values.is_empty() { f64::NAN } else { values[((p * values.len() as f64).ceil() as usize).max(1) - 1] }
    };
    Stats { n: values.len(), p50: rank(0.50), p99: rank(0.99), max: values.last().copied().unwrap_or(f64::NAN) }
}

/// The machine's load averages (1, 5 and 15 minutes), as `uptime` prints them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}
