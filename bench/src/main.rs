//! The WeMaster load test. One command builds the release server, starts it
//! on a temporary database with bench/wemaster.bench.toml, measures the
//! yardsticks, runs a profile and the /livez ceiling with goose, stops the
//! server with SIGTERM and writes the summary into bench/out/<timestamp>/.
//! The abuse profile attacks the server instead (src/abuse/).
//! See bench/README.md.

mod abuse;
mod baseline;
mod calibrate;
mod climb;
mod figures;
mod flows;
mod idle;
mod k6;
mod probes;
mod profile;
mod report;
mod server;
mod verdict;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use goose::config::GooseConfiguration;
use goose::prelude::*;
use serde::Deserialize;

use crate::calibrate::Argon2Params;
use crate::k6::K6Profile;
use crate::profile::{Phase, Profile};

/// The bench's crate folder; the repository root is its parent.
const BENCH_DIR: &str = env!("CARGO_MANIFEST_DIR");

#[derive(Debug, Parser)]
#[command(
    about = "Load test of the WeMaster server: the original mix, max throughput, the /livez ceiling"
)]
struct Args {
    /// original: the original's 24 min; quick: the same shape in 2 min;
    /// max: closed loops; smoke: half a minute, loose thresholds (CI);
    /// abuse: password guessing, credential stuffing and a flood;
    /// climb: 100 to 5,000 users from one address, shipped configuration.
    #[arg(long, value_enum, default_value_t = Profile::Quick)]
    profile: Profile,
    /// Run the original platform's own k6 test, or a profile built on it,
    /// with k6 against the shipped wemaster.toml, instead of a goose
    /// profile; fails when k6's thresholds fail.
    #[arg(long, value_enum)]
    k6: Option<K6Profile>,
    /// With --k6: the server's configuration instead of the shipped
    /// wemaster.toml (for a binary built from another tree).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Run with rate_limit.enabled = false (max always does).
    #[arg(long)]
    no_limits: bool,
    /// Each virtual user connects from its own loopback address,
    /// 127.<phase+1>.<hi>.<lo>, instead of all from 127.0.0.1 (still without
    /// any forwarding header).
    #[arg(long)]
    per_user_addresses: bool,
    /// Users of every closed loop: the max phases and the /livez ceiling.
    #[arg(long, default_value_t = 32)]
    closed_users: usize,
    /// With --profile climb: the levels of users, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = profile::CLIMB_LEVELS)]
    climb_levels: Vec<usize>,
    /// With --profile climb: seconds over which each level's users start.
    #[arg(long, default_value_t = 30)]
    climb_ramp: u64,
    /// With --profile climb: seconds each level is held and measured.
    #[arg(long, default_value_t = 60)]
    climb_hold: u64,
    /// Use this server binary instead of building the release one.
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// A summary.json stored from an earlier run of the same profile on this
    /// machine: the run is compared with it (as ratios to each run's /livez
    /// ceiling) and fails when a figure is worse by more than --tolerance.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// With --baseline: compare this stored summary.json instead of running.
    #[arg(long, requires = "baseline")]
    compare: Option<PathBuf>,
    /// With --baseline: how much worse a ratio may be before it is flagged
    /// (0.2 = 20 %).
    #[arg(long, default_value_t = 0.2)]
    tolerance: f64,
    /// Folder the run's folder is created in.
    #[arg(long, default_value_os_t = Path::new(BENCH_DIR).join("out"))]
    out: PathBuf,
}

/// The parts of bench/wemaster.bench.toml the load generator needs too.
#[derive(Debug, Deserialize)]
struct BenchConfig {
    auth: Argon2Params,
    payments: Payments,
}

#[derive(Debug, Deserialize)]
struct Payments {
    webhook_secret: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    // Smoke, the climb, every k6 run and a comparison with a baseline gate; the other
    // profiles report.
    let gates = matches!(args.profile, Profile::Smoke | Profile::Climb)
        || args.k6.is_some()
        || args.baseline.is_some();
    match run(args).await {
        Ok(passed) => {
            println!("BENCH {}", if passed { "PASS" } else { "FAIL" });
            if passed || !gates {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("bench: {error:#}");
            println!("BENCH FAIL");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<bool> {
    if let (Some(stored), Some(baseline)) = (&args.compare, &args.baseline) {
        let findings = baseline::compare(
            &baseline::read(baseline)?,
            &baseline::read(stored)?,
            args.tolerance,
        )?;
        print!("{}", baseline::text(&findings, args.tolerance));
        return Ok(findings.iter().all(|f| !f.worse));
    }
    let bench_dir = Path::new(BENCH_DIR);
    let repo_root = bench_dir
        .parent()
        .context("the bench crate has no parent folder")?;
    let config_path = if args.profile.runs_shipped_config() && args.k6.is_none() {
        repo_root.join("wemaster.toml")
    } else {
        bench_dir.join("wemaster.bench.toml")
    };
    let config: BenchConfig = toml::from_str(
        &std::fs::read_to_string(&config_path)
            .with_context(|| format!("reading {}", config_path.display()))?,
    )
    .with_context(|| format!("parsing {}", config_path.display()))?;
    flows::set_webhook_secret(&config.payments.webhook_secret);
    flows::set_per_user_addresses(args.per_user_addresses);

    let started = chrono::Utc::now();
    let out_dir = args.out.join(started.format("%Y%m%d-%H%M%S").to_string());
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    if let Some(profile) = args.k6 {
        return run_k6(&args, profile, repo_root, &out_dir).await;
    }
    if args.profile == Profile::Abuse {
        return run_abuse(&args, started, &out_dir, repo_root, &config_path).await;
    }
    let limits = !(args.no_limits || args.profile.forces_limits_off());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let climb_plan = profile::ClimbPlan {
        levels: args.climb_levels.clone(),
        ramp_seconds: args.climb_ramp,
        hold_seconds: args.climb_hold,
    };
    let phases = args.profile.phases(args.closed_users, &climb_plan);
    let planned: u64 = phases.iter().map(|p| p.shape.approx_seconds()).sum();
    println!(
        "bench: profile {}, rate limits {}{}, {}, {} phases, about {} s of load; output in {}",
        args.profile.name(),
        if limits { "on" } else { "off" },
        if args.profile.forces_limits_off() {
            " (max always runs without them)"
        } else {
            ""
        },
        addresses(args.per_user_addresses),
        phases.len(),
        planned,
        out_dir.display()
    );

    let binary = server_binary(&args, repo_root)?;

    // Before the server starts, so nothing else competes for the core.
    let argon2 = tokio::task::spawn_blocking(move || calibrate::time_argon2(config.auth))
        .await
        .context("timing Argon2id")??;
    println!(
        "bench: one Argon2id verification takes {:.1} ms here ({:.1}/s on one thread)",
        argon2.verify_ms, argon2.per_second_single_thread
    );

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let metrics_port = server::free_port()?;
    let mut fresh = server::start_fresh_with(
        &binary,
        &config_path,
        Some(limits),
        metrics_port,
        out_dir.join("server.log"),
    )
    .await?;
    let (server, ready) = (&mut fresh.server, fresh.ready);
    let base_url = server.base_url();
    println!(
        "bench: server pid {} ready on {} in {:.1} s",
        server.pid,
        base_url,
        ready.as_secs_f64()
    );

    let rss_at_ready = server.rss_bytes().ok();
    let login_probe = calibrate::probe_logins(&client, &base_url).await;
    let catalogue_probe = calibrate::probe_catalogue(&client, &base_url).await;
    if catalogue_probe.offerings.is_none() {
        println!(
            "bench: GET /api/v1/offerings answered {} without a JSON array: the catalogue, order and webhook scenarios will fail",
            catalogue_probe.status
        );
    }

    let climb = args.profile == Profile::Climb;
    if climb {
        let accounts = climb::create_accounts(&binary, &config_path, &fresh.database).await?;
        flows::set_account_pool(accounts);
    }
    let whole_run = server::Usage::start(server.pid);

    let figures = run_phases(&phases, server, &out_dir, climb).await?;

    let peak_rss_bytes = server.peak_rss_bytes().ok();
    let usage_line = whole_run.finish(server);
    println!("bench: {usage_line}");
    let after_load = if climb {
        Some(climb::after_load(&client, &base_url, metrics_port, &out_dir, usage_line).await)
    } else {
        None
    };
    let stopped = server.stop().ok();
    if let Some(stopped) = &stopped {
        println!(
            "bench: server stopped by SIGTERM in {:.1} s (exit {:?}{})",
            stopped.seconds,
            stopped.exit_code,
            if stopped.killed { ", killed" } else { "" }
        );
    }

    let checks = verdict::judge(&verdict::Inputs {
        profile: args.profile,
        phases: &phases,
        figures: &figures,
        argon2: &argon2,
        cores,
        peak_rss_bytes,
        complete: figures.len() == phases.len(),
        after_load: after_load.as_ref(),
        latency_gates: std::env::var("LATENCY_GATES").map_or(true, |v| v != "off"),
    });
    let passed = verdict::passed(&checks);
    let run = report::Run {
        started_utc: started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        profile: args.profile.name(),
        rate_limits: limits,
        client_addresses: addresses(args.per_user_addresses),
        cores,
        closed_loop_users: args.closed_users,
        server_binary: binary.display().to_string(),
        server_ready_seconds: ready.as_secs_f64(),
        server_rss_at_ready: rss_at_ready,
        argon2,
        login_probe,
        catalogue_probe,
        phases: figures,
        peak_rss_bytes,
        after_load,
        server_stop: stopped,
        checks,
        passed,
    };
    write_run(&args, &out_dir, &run)
}

/// Prints the run's summary, writes summary.txt, k6-summary.csv and
/// summary.json, and compares it with the baseline if one was given;
/// whether the run passed.
fn write_run(args: &Args, out_dir: &Path, run: &report::Run) -> Result<bool> {
    let summary = report::text(run);
    println!();
    print!("{summary}");
    println!();
    write(&out_dir.join("summary.txt"), &summary)?;
    write(&out_dir.join("k6-summary.csv"), &report::csv(run))?;
    let json = serde_json::to_string_pretty(run)?;
    write(&out_dir.join("summary.json"), &json)?;
    let passed = against_baseline(args, out_dir, &serde_json::from_str(&json)?, run.passed)?;
    println!("bench: wrote {}", out_dir.display());
    Ok(passed)
}

/// A k6 profile (or the idle one) against the shipped configuration, or
/// the one `--config` names.
async fn run_k6(args: &Args, profile: K6Profile, repo_root: &Path, out_dir: &Path) -> Result<bool> {
    let config = match &args.config {
        Some(path) => {
            std::fs::canonicalize(path).with_context(|| format!("finding {}", path.display()))?
        }
        None => repo_root.join("wemaster.toml"),
    };
    let binary = server_binary(args, repo_root)?;
    let passed = k6::run(k6::Setup {
        profile,
        binary: &binary,
        config: &config,
        bench_dir: Path::new(BENCH_DIR),
        out_dir,
    })
    .await?;
    // The idle profile runs no k6 and writes no summary.json: only a
    // comparison reads it.
    if args.baseline.is_none() {
        return Ok(passed);
    }
    let summary = baseline::read(&out_dir.join("summary.json"))?;
    against_baseline(args, out_dir, &summary, passed)
}

/// Runs `phases` one after the other against `server` (the climb's with
/// the probes polled beside), each phase's figures read as it ends; stops
/// early when goose is interrupted.
async fn run_phases(
    phases: &[Phase],
    server: &server::Server,
    out_dir: &Path,
    climb: bool,
) -> Result<Vec<figures::PhaseFigures>> {
    let base_url = server.base_url();
    let mut figures = Vec::new();
    for (index, phase) in phases.iter().enumerate() {
        println!(
            "bench: phase {}/{} {}: {} — {} (about {} s)",
            index + 1,
            phases.len(),
            phase.key,
            phase.title,
            phase.shape.describe(),
            phase.shape.approx_seconds()
        );
        // The second octet of this phase's per-user addresses, less one.
        flows::set_phase(u8::try_from(index).unwrap_or(u8::MAX - 1));
        let html = format!("report-{}.html", phase.key);
        let poller = if climb && phase.key != "ceiling" {
            Some(probes::Poller::start(&base_url)?)
        } else {
            None
        };
        let usage = server::Usage::start(server.pid);
        let metrics = run_phase(phase, &base_url, &out_dir.join(&html)).await?;
        let mut phase_figures = figures::collect(phase, &metrics, html);
        phase_figures.server_cores = Some(usage.cores());
        if let Some(poller) = poller {
            phase_figures.probes = Some(poller.finish().await?);
        }
        phase_figures.server_rss_after = server.rss_bytes().ok();
        phase_figures.server_peak_rss_after = server.peak_rss_bytes().ok();
        println!(
            "bench:   {} requests, {:.2}% failed, {} answered 429, {:.1} req/s, p95 {:.2} ms; server RSS {}, peak {}",
            phase_figures.all.requests,
            phase_figures.all.error_rate,
            phase_figures.rate_limited,
            phase_figures.all.rps,
            phase_figures.all.latency.p95,
            report::megabytes(phase_figures.server_rss_after),
            report::megabytes(phase_figures.server_peak_rss_after),
        );
        figures.push(phase_figures);
        if goose::is_killswitch_triggered() {
            println!("bench: interrupted; stopping after this phase");
            break;
        }
    }
    Ok(figures)
}

/// With --baseline, compares the run's summary with the stored one, prints
/// the table and writes it to comparison.txt; a figure flagged worse fails
/// the run.
fn against_baseline(
    args: &Args,
    out_dir: &Path,
    summary: &serde_json::Value,
    passed: bool,
) -> Result<bool> {
    let Some(path) = &args.baseline else {
        return Ok(passed);
    };
    let findings = baseline::compare(&baseline::read(path)?, summary, args.tolerance)?;
    let comparison = baseline::text(&findings, args.tolerance);
    print!("{comparison}");
    write(&out_dir.join("comparison.txt"), &comparison)?;
    Ok(passed && findings.iter().all(|f| !f.worse))
}

/// The abuse profile: the server with its shipped limits, attacked.
async fn run_abuse(
    args: &Args,
    started: chrono::DateTime<chrono::Utc>,
    out_dir: &Path,
    repo_root: &Path,
    config_path: &Path,
) -> Result<bool> {
    if args.no_limits {
        bail!("--no-limits makes no sense with --profile abuse, which measures the limits");
    }
    let limits = abuse::Limits::read(&repo_root.join("wemaster.toml"), config_path)?;
    println!(
        "bench: profile abuse, shipped rate limits on, clients from their own loopback addresses without X-Forwarded-For, about 75 s; output in {}",
        out_dir.display()
    );
    let binary = server_binary(args, repo_root)?;
    abuse::run(abuse::Setup {
        started,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        out_dir,
        binary: &binary,
        config: config_path,
        limits,
    })
    .await
}

/// The server binary to run: `--server-bin`, or the release build of the
/// repository at `repo_root`.
fn server_binary(args: &Args, repo_root: &Path) -> Result<PathBuf> {
    match &args.server_bin {
        // Absolute: the server runs in the temporary folder.
        Some(binary) => {
            std::fs::canonicalize(binary).with_context(|| format!("finding {}", binary.display()))
        }
        None => {
            println!("bench: cargo build --release in {}", repo_root.display());
            server::build_release(repo_root)
        }
    }
}

/// One goose run of `phase`, its HTML report written to `html`.
async fn run_phase(phase: &Phase, base_url: &str, html: &Path) -> Result<GooseMetrics> {
    let mut goose_args: Vec<String> = vec![
        "--host".into(),
        base_url.into(),
        "--quiet".into(),
        "--no-print-metrics".into(),
        // No controller: nothing needs to steer the run, and its port could clash.
        "--no-telnet".into(),
        "--timeout".into(),
        flows::REQUEST_TIMEOUT.as_secs().to_string(),
        "--report-file".into(),
        html.display().to_string(),
    ];
    goose_args.extend(phase.shape.goose_args());
    let configuration = GooseConfiguration::parse_args_default(&goose_args)
        .map_err(|e| anyhow!("goose configuration for {}: {e}", phase.key))?;
    GooseAttack::initialize_with_config(configuration)
        .map_err(|e| anyhow!("{e}"))?
        // The original's users pick a scenario by weight each time; goose runs
        // a user's weighted slots in one shuffled order instead, which keeps
        // the 3/2/2/1/1 mix exactly.
        .set_scheduler(GooseScheduler::Random)
        .register_scenario(phase.flow.scenario().map_err(|e| anyhow!("{e}"))?)
        .execute()
        .await
        .map_err(|e| anyhow!("goose run of {}: {e}", phase.key))
}

/// Where the virtual users connect from, in words.
fn addresses(per_user: bool) -> String {
    if per_user {
        "each user from its own address 127.<phase+1>.<hi>.<lo>, no X-Forwarded-For".into()
    } else {
        "every user from 127.0.0.1, no X-Forwarded-For".into()
    }
}

fn write(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}
