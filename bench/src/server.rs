//! The server under test: build it, start it on a fresh database, wait until
//! it is ready, read its peak memory, stop it with SIGTERM.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

/// How long the server may take to answer /readyz (migrations, demo seed).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long SIGTERM may take before SIGKILL: the server's default grace plus slack.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// Builds the release server at `repo_root` (`cargo build --release`) and
/// returns the binary's path, as cargo reports it.
pub fn build_release(repo_root: &Path) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--bin",
            "wemaster",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(repo_root)
        .stdout(Stdio::piped())
        .spawn()
        .context("running cargo build --release for the server")?;
    let stdout = child.stdout.take().context("cargo's stdout")?;
    let mut executable = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo's output")?;
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if message["reason"] == "compiler-artifact"
            && message["target"]["name"] == "wemaster"
            && let Some(path) = message["executable"].as_str()
        {
            executable = Some(PathBuf::from(path));
        }
    }
    let status = child.wait().context("waiting for cargo build")?;
    if !status.success() {
        bail!("cargo build --release of the server failed ({status})");
    }
    executable.context("cargo build reported no wemaster executable")
}

/// A free loopback port: bound, read, released. The server binds it a moment
/// later; nothing else on this machine races for ports in that window.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A running server. Dropping it without [`Server::stop`] still sends SIGTERM.
pub struct Server {
    child: Option<Child>,
    pub pid: u32,
    pub addr: String,
    pub log: PathBuf,
}

/// A ready server on a fresh database in a temporary folder, which is
/// deleted after the server has stopped (fields drop in this order).
pub struct Fresh {
    pub server: Server,
    /// How long the server took to answer /readyz.
    pub ready: Duration,
    /// Its database file, in the temporary folder.
    pub database: PathBuf,
    /// Held only to be deleted when this is dropped.
    _workdir: tempfile::TempDir,
}

/// Starts `binary` with `config` on a free loopback port and a fresh database
/// (the demo data seeded on it), its output in `log`, and waits until it is
/// ready.
pub async fn start_fresh(
    binary: &Path,
    config: &Path,
    limits: Option<bool>,
    log: PathBuf,
) -> Result<Fresh> {
    start_fresh_with(binary, config, limits, 0, log).await
}

/// [`start_fresh`] with `/metrics` on `metrics_port` (0: any free port,
/// which the bench does not read).
pub async fn start_fresh_with(
    binary: &Path,
    config: &Path,
    limits: Option<bool>,
    metrics_port: u16,
    log: PathBuf,
) -> Result<Fresh> {
    let workdir = tempfile::Builder::new()
        .prefix("wemaster-bench-")
        .tempdir()
        .context("creating the temporary database folder")?;
    let database = workdir.path().join("bench.db");
    let mut server = Server::start(Launch {
        binary,
        config,
        database: &database,
        port: free_port()?,
        metrics_port,
        limits,
        log,
        workdir: workdir.path(),
    })?;
    let ready = server.wait_ready().await?;
    Ok(Fresh {
        server,
        ready,
        database,
        _workdir: workdir,
    })
}

/// How the server stopped.
#[derive(Debug, serde::Serialize)]
pub struct Stopped {
    /// The exit code, or None when a signal ended it.
    pub exit_code: Option<i32>,
    /// Seconds from SIGTERM to exit.
    pub seconds: f64,
    /// Whether it had to be killed after [`STOP_TIMEOUT`].
    pub killed: bool,
}

pub struct Launch<'a> {
    pub binary: &'a Path,
    pub config: &'a Path,
    pub database: &'a Path,
    pub port: u16,
    /// `/metrics` apart from the API on this port; 0 for any free one.
    pub metrics_port: u16,
    /// `rate_limit.enabled` forced on or off; `None` leaves it to the
    /// configuration (and to `WEMASTER_*` in the bench's environment).
    pub limits: Option<bool>,
    pub log: PathBuf,
    pub workdir: &'a Path,
}

impl Server {
    /// Starts `wemaster --config <bench config> serve` with the address and
    /// database overridden, output to the log file.
    pub fn start(launch: Launch<'_>) -> Result<Server> {
        let addr = format!("127.0.0.1:{}", launch.port);
        let log = File::create(&launch.log)
            .with_context(|| format!("creating {}", launch.log.display()))?;
        let mut command = Command::new(launch.binary);
        command
            .arg("--config")
            .arg(launch.config)
            .arg("serve")
            .env("WEMASTER_SERVER__ADDR", &addr)
            .env("WEMASTER_DATABASE__PATH", launch.database)
            // /metrics listens apart from the API (127.0.0.1:9102 by
            // default); a port of its own keeps a running server from
            // stopping the bench.
            .env(
                "WEMASTER_METRICS__ADDR",
                format!("127.0.0.1:{}", launch.metrics_port),
            )
            .current_dir(launch.workdir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(limits) = launch.limits {
            command.env("WEMASTER_RATE_LIMIT__ENABLED", limits.to_string());
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", launch.binary.display()))?;
        Ok(Server {
            pid: child.id(),
            child: Some(child),
            addr,
            log: launch.log,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits until GET /readyz answers 200 through `deploy/launch.py`, the
    /// one readiness wait of every tool that starts a server (the bench,
    /// contract/, deploy/); fails with the end of the log when the server
    /// exits first or takes longer than [`READY_TIMEOUT`].
    pub async fn wait_ready(&mut self) -> Result<Duration> {
        let started = Instant::now();
        let launch = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/launch.py");
        let mut wait = Command::new("python3");
        wait.arg(launch)
            .args(["wait", &self.base_url(), &self.pid.to_string()])
            .arg(&self.log)
            .arg(READY_TIMEOUT.as_secs().to_string());
        let out = tokio::task::spawn_blocking(move || wait.output())
            .await
            .context("waiting for the server")?
            .context("running python3 deploy/launch.py")?;
        if !out.status.success() {
            bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(started.elapsed())
    }

    /// The peak resident set size so far, in bytes (VmHWM).
    pub fn peak_rss_bytes(&self) -> Result<u64> {
        self.proc_status_bytes("VmHWM:")
    }

    /// The resident set size now, in bytes (VmRSS).
    pub fn rss_bytes(&self) -> Result<u64> {
        self.proc_status_bytes("VmRSS:")
    }

    /// A `<field> <n> kB` line of /proc/<pid>/status, in bytes.
    fn proc_status_bytes(&self, field: &str) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .context("reading the server's /proc status")?;
        let kib = status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .with_context(|| format!("no {field} in the server's /proc status"))?;
        Ok(kib * 1024)
    }

    /// SIGTERM, then wait; SIGKILL after [`STOP_TIMEOUT`].
    pub fn stop(&mut self) -> Result<Stopped> {
        let mut child = self
            .child
            .take()
            .context("the server was already stopped")?;
        let started = Instant::now();
        terminate(self.pid);
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(Stopped {
                    exit_code: status.code(),
                    seconds: started.elapsed().as_secs_f64(),
                    killed: false,
                });
            }
            if started.elapsed() > STOP_TIMEOUT {
                child.kill()?;
                let status = child.wait()?;
                return Ok(Stopped {
                    exit_code: status.code(),
                    seconds: started.elapsed().as_secs_f64(),
                    killed: true,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(self.pid);
            let _ = child.wait();
        }
    }
}

fn terminate(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        // The child is ours and not yet reaped, so the pid is still its own.
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
}

/// The server's CPU time over a run, from /proc/PID/stat.
pub struct Usage {
    pid: u32,
    ticks: u64,
    started: Instant,
}

impl Usage {
    pub fn start(pid: u32) -> Self {
        Self {
            pid,
            ticks: cpu_ticks(pid),
            started: Instant::now(),
        }
    }

    /// The cores the server used on average since the start.
    pub fn cores(&self) -> f64 {
        self.cpu_seconds() / self.started.elapsed().as_secs_f64().max(f64::EPSILON)
    }

    fn cpu_seconds(&self) -> f64 {
        // Linux counts CPU time in ticks of 1/100 s (USER_HZ).
        cpu_ticks(self.pid).saturating_sub(self.ticks) as f64 / 100.0
    }

    /// One line: the server's peak RSS and the cores it used on average.
    pub fn finish(self, server: &Server) -> String {
        let cpu = self.cpu_seconds();
        let wall = self.started.elapsed().as_secs_f64();
        let peak = server.peak_rss_bytes().unwrap_or(0) as f64 / 1_048_576.0;
        format!(
            "server: peak RSS {peak:.1} MB; CPU {cpu:.1} s over {wall:.0} s ({:.2} cores on average)",
            cpu / wall.max(f64::EPSILON)
        )
    }
}

/// User plus system CPU time of `pid` in ticks (fields 14 and 15 of stat,
/// counted after the command name, which may hold spaces).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}
