//! The abuse profile: three attacks against the server with its
//! shipped limits, each measured from the outside, in one run.
//!
//! - a: password guessing on one account from many addresses ([`lockout`]);
//! - b: credential stuffing from one address across many accounts ([`stuffing`]);
//! - c: a closed-loop flood from one address while an honest client on
//!   another browses and times itself ([`flood`]).
//!
//! Every part connects from loopback addresses of its own (127.10.x.y,
//! 127.20.x.y, 127.30.x.y) and sends no X-Forwarded-For, so the server sees
//! each as its own client and no part spends another's budget. No goose
//! here: each part is a short sequence of requests whose order matters.

mod cpu;
mod flood;
mod http;
mod judge;
mod limits;
mod lockout;
mod stuffing;
mod summary;

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::server::{self, Stopped};
use crate::verdict::{self, Check};

pub use limits::Limits;

/// What the abuse run needs from the command line and the bench's files.
pub struct Setup<'a> {
    pub started: chrono::DateTime<chrono::Utc>,
    pub command: String,
    pub out_dir: &'a Path,
    pub binary: &'a Path,
    /// bench/wemaster.bench.toml, which the server runs with.
    pub config: &'a Path,
    pub limits: Limits,
}

/// Everything the abuse run measured; summary.json is this, serialized.
#[derive(Debug, Serialize)]
pub struct AbuseRun {
    pub started_utc: String,
    pub command: String,
    pub profile: &'static str,
    pub cores: usize,
    pub server_binary: String,
    pub server_ready_seconds: f64,
    pub server_rss_at_ready: Option<u64>,
    /// The limits the parts are judged against.
    pub limits: Limits,
    pub lockout: lockout::Lockout,
    pub stuffing: stuffing::Stuffing,
    pub flood: flood::FloodPart,
    /// The server's VmRSS after each part, bytes.
    pub rss_after: [Option<u64>; 3],
    /// The server's peak RSS over the run (VmHWM), bytes.
    pub peak_rss_bytes: Option<u64>,
    pub server_stop: Option<Stopped>,
    pub checks: Vec<Check>,
    pub passed: bool,
}

/// Starts the server with the shipped limits, runs the three parts, stops
/// it, judges, prints and writes summary.txt and summary.json.
pub async fn run(setup: Setup<'_>) -> Result<bool> {
    let mut fresh = server::start_fresh(
        setup.binary,
        setup.config,
        Some(true),
        setup.out_dir.join("server.log"),
    )
    .await?;
    let server = &mut fresh.server;
    let base_url = server.base_url();
    println!(
        "bench: server pid {} ready on {} in {:.1} s",
        server.pid,
        base_url,
        fresh.ready.as_secs_f64()
    );
    let rss_at_ready = server.rss_bytes().ok();

    println!(
        "bench: a: guessing the password of {} from a new address each time",
        lockout::ACCOUNT
    );
    let lockout = lockout::run(&base_url, &setup.limits).await?;
    let rss_a = server.rss_bytes().ok();
    println!("bench: b: credential stuffing from one address");
    let stuffing = stuffing::run(&base_url).await?;
    let rss_b = server.rss_bytes().ok();
    println!(
        "bench: c: the honest client alone and under a {}-connection flood at nice 19, in turn, {} rounds ({} requests each way, about {} s)",
        flood::FLOOD_CONNECTIONS,
        flood::ROUNDS,
        flood::HONEST_REQUESTS,
        2 * flood::HONEST_REQUESTS as u64 * flood::THINK.as_millis() as u64 / 1000
            + 2 * flood::ROUNDS as u64
    );
    let flood = flood::run(&base_url, server.pid).await?;
    let rss_c = server.rss_bytes().ok();

    let peak_rss_bytes = server.peak_rss_bytes().ok();
    let server_stop = server.stop().ok();
    let checks = judge::judge(&judge::Inputs {
        limits: &setup.limits,
        lockout: &lockout,
        stuffing: &stuffing,
        flood: &flood,
        peak_rss_bytes,
    });
    let passed = verdict::passed(&checks);
    let run = AbuseRun {
        started_utc: setup
            .started
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        command: setup.command,
        profile: "abuse",
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        server_binary: setup.binary.display().to_string(),
        server_ready_seconds: fresh.ready.as_secs_f64(),
        server_rss_at_ready: rss_at_ready,
        limits: setup.limits,
        lockout,
        stuffing,
        flood,
        rss_after: [rss_a, rss_b, rss_c],
        peak_rss_bytes,
        server_stop,
        checks,
        passed,
    };
    let text = summary::text(&run);
    println!();
    print!("{text}");
    println!();
    let write = |name: &str, contents: &str| {
        let path = setup.out_dir.join(name);
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))
    };
    write("summary.txt", &text)?;
    write("summary.json", &serde_json::to_string_pretty(&run)?)?;
    println!("bench: wrote {}", setup.out_dir.display());
    Ok(passed)
}
