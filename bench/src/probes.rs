//! A load balancer beside the users: polls `GET /api/v1/healthz` and
//! `GET /livez` twice a second each, every probe on its own keep-alive
//! connection, and times every answer. A probe slower than its timeout, or
//! answered anything but 200, counts as failed (a balancer would take the
//! node out).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::figures::Latency;

pub const HEALTHZ: &str = "/api/v1/healthz";
pub const LIVEZ: &str = "/livez";
/// How often each probe is sent, as load balancers poll.
const INTERVAL: Duration = Duration::from_millis(500);
/// How long a balancer waits for an answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// One probe's figures over a phase.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeFigures {
    pub path: &'static str,
    pub polls: usize,
    /// Not 200, or no answer within the timeout.
    pub failed: usize,
    pub latency: Latency,
    pub status_codes: BTreeMap<u16, usize>,
}

/// Both probes' figures over a phase.
#[derive(Debug, Clone, Serialize)]
pub struct Probes {
    pub healthz: ProbeFigures,
    pub livez: ProbeFigures,
}

/// The pollers of one phase; [`Poller::finish`] stops them.
pub struct Poller {
    stop: watch::Sender<bool>,
    healthz: JoinHandle<ProbeFigures>,
    livez: JoinHandle<ProbeFigures>,
}

impl Poller {
    pub fn start(base_url: &str) -> anyhow::Result<Poller> {
        let (stop, stopped) = watch::channel(false);
        Ok(Poller {
            healthz: tokio::spawn(poll(base_url, HEALTHZ, stopped.clone())?),
            livez: tokio::spawn(poll(base_url, LIVEZ, stopped)?),
            stop,
        })
    }

    /// Only the polls answered (or timed out) up to now; a poll in flight is
    /// awaited.
    pub async fn finish(self) -> anyhow::Result<Probes> {
        let _ = self.stop.send(true);
        Ok(Probes {
            healthz: self.healthz.await?,
            livez: self.livez.await?,
        })
    }
}

/// The poll loop of one probe, to be spawned.
fn poll(
    base_url: &str,
    path: &'static str,
    mut stopped: watch::Receiver<bool>,
) -> anyhow::Result<impl Future<Output = ProbeFigures> + use<>> {
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .pool_max_idle_per_host(1)
        .build()?;
    let url = format!("{base_url}{path}");
    Ok(async move {
        let mut samples = Vec::new();
        let mut failed = 0;
        let mut status_codes = BTreeMap::new();
        let mut ticks = tokio::time::interval(INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stopped.changed() => break,
            }
            let sent = Instant::now();
            let status = match client.get(&url).send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    // The whole body, as a balancer reads it.
                    response.bytes().await.map_or(0, |_| status)
                }
                Err(_) => 0,
            };
            samples.push(sent.elapsed().as_secs_f64() * 1000.0);
            *status_codes.entry(status).or_insert(0) += 1;
            if status != 200 {
                failed += 1;
            }
        }
        ProbeFigures {
            path,
            polls: samples.len(),
            failed,
            latency: Latency::of_samples(&samples),
            status_codes,
        }
    })
}
