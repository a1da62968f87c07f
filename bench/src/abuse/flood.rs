//! Part c: a closed-loop flood of the cheap catalogue list from one address,
//! and an honest client on another address browsing with think time, which
//! measures its own latency without the flood and under it. The two
//! alternate, in [`ROUNDS`] rounds, so that load from outside the bench that
//! comes and goes on this shared machine weighs on both alike.
//!
//! The load generator shares the machine's cores with the server. A flood
//! generator at normal priority takes CPU from the server, and the honest
//! client's latency would measure that theft rather than how fairly the
//! server shares itself between addresses. So the flood runs on a tokio
//! runtime of its own whose threads are set to the lowest priority (nice 19):
//! it gets every cycle the server and the honest client leave idle, no more.
//! The honest client stays at normal priority, on the bench's own runtime.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::Value;
use thread_priority::{ThreadPriority, set_current_thread_priority};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use super::cpu::{self, CoresBusy};
use super::http::{Addresses, REQUEST_TIMEOUT, client_from, get};
use crate::figures::Latency;
use crate::flows;

/// The second octet of this part's addresses: 127.30.x.y.
const BLOCK: u8 = 30;
/// The flood's connections, each a closed loop without think time.
pub const FLOOD_CONNECTIONS: usize = 64;
/// The honest client's requests without the flood, and again under it.
pub const HONEST_REQUESTS: usize = 300;
/// Rounds of (honest alone, honest under the flood).
pub const ROUNDS: usize = 3;
/// The honest client's pause after each answer.
pub const THINK: Duration = Duration::from_millis(100);
/// How long the flood runs each round before the honest client measures.
const WARM_UP: Duration = Duration::from_secs(1);

#[derive(Debug, Serialize)]
pub struct FloodPart {
    pub honest_address: Ipv4Addr,
    pub flood_address: Ipv4Addr,
    pub think_ms: u64,
    /// Rounds of (honest alone, honest under the flood).
    pub rounds: usize,
    /// The honest client alone.
    pub quiet: Browsing,
    /// The honest client while the flood runs.
    pub flooded: Browsing,
    pub flood: Flood,
    /// The honest client's p95 under the flood over its p95 without it.
    pub p95_ratio: Option<f64>,
    /// Cores busy while the honest client browsed alone.
    pub cpu_quiet: Option<CoresBusy>,
    /// Cores busy while it browsed under the flood.
    pub cpu_flooded: Option<CoresBusy>,
}

/// The honest client's browsing: alternately the catalogue list and an
/// offering's detail, [`THINK`] after each answer.
#[derive(Debug, Serialize)]
pub struct Browsing {
    pub requests: usize,
    pub latency: Latency,
    pub statuses: BTreeMap<u16, usize>,
    /// Requests that got no answer (connection error, timeout).
    pub no_answer: usize,
    pub seconds: f64,
}

impl Browsing {
    /// Whether every request was answered 2xx.
    pub fn all_ok(&self) -> bool {
        self.requests > 0
            && self.no_answer == 0
            && self.statuses.keys().all(|s| (200..300).contains(s))
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Flood {
    pub connections: usize,
    /// The nice value of each of the flood runtime's threads, read back from
    /// /proc after setting it (None: could not be set or read).
    pub thread_nice: Vec<Option<i32>>,
    /// From the flood's start until its last connection stopped.
    pub seconds: f64,
    pub requests: usize,
    pub per_second: f64,
    pub statuses: BTreeMap<u16, usize>,
    pub no_answer: usize,
}

impl Flood {
    pub fn count(&self, status: u16) -> usize {
        self.statuses.get(&status).copied().unwrap_or(0)
    }

    /// Adds one round's flood.
    fn add(&mut self, round: Flood) {
        self.connections = self.connections.max(round.connections);
        self.thread_nice.extend(round.thread_nice);
        self.seconds += round.seconds;
        self.requests += round.requests;
        for (status, count) in round.statuses {
            *self.statuses.entry(status).or_insert(0) += count;
        }
        self.no_answer += round.no_answer;
        self.per_second = if self.seconds > 0.0 {
            self.requests as f64 / self.seconds
        } else {
            0.0
        };
    }
}

pub async fn run(base_url: &str, server_pid: u32) -> Result<FloodPart> {
    let mut addresses = Addresses::new(BLOCK);
    let flood_address = addresses.next();
    let honest_address = addresses.next();
    let honest = client_from(honest_address)?;
    // Also opens the honest client's connection, so no round pays for it.
    let slugs = offering_slugs(&honest, base_url).await?;

    let per_round = HONEST_REQUESTS / ROUNDS;
    let (mut quiet, mut flooded) = (Browser::default(), Browser::default());
    let (mut cpu_quiet, mut cpu_flooded) = (cpu::Windows::default(), cpu::Windows::default());
    let mut flood = Flood::default();
    for _ in 0..ROUNDS {
        cpu_quiet
            .measure(
                server_pid,
                quiet.browse(&honest, base_url, &slugs, per_round),
            )
            .await;
        let running = Running::start(base_url, flood_address)?;
        tokio::time::sleep(WARM_UP).await;
        cpu_flooded
            .measure(
                server_pid,
                flooded.browse(&honest, base_url, &slugs, per_round),
            )
            .await;
        flood.add(running.stop().await?);
    }

    let (quiet, flooded) = (quiet.figures(), flooded.figures());
    let p95_ratio = (quiet.latency.p95 > 0.0).then(|| flooded.latency.p95 / quiet.latency.p95);
    Ok(FloodPart {
        honest_address,
        flood_address,
        think_ms: THINK.as_millis() as u64,
        rounds: ROUNDS,
        quiet,
        flooded,
        flood,
        p95_ratio,
        cpu_quiet: cpu_quiet.cores(),
        cpu_flooded: cpu_flooded.cores(),
    })
}

async fn offering_slugs(client: &reqwest::Client, base_url: &str) -> Result<Vec<String>> {
    let list: Value = client
        .get(format!("{base_url}{}", flows::OFFERINGS))
        .send()
        .await
        .context("listing the catalogue")?
        .json()
        .await
        .context("reading the catalogue")?;
    let slugs: Vec<String> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o.get("slug")?.as_str().map(str::to_owned))
        .collect();
    if slugs.is_empty() {
        bail!("GET {} listed no offerings", flows::OFFERINGS);
    }
    Ok(slugs)
}

/// The honest client's answers, over the rounds of one condition.
#[derive(Default)]
struct Browser {
    samples_ms: Vec<f64>,
    statuses: BTreeMap<u16, usize>,
    no_answer: usize,
    seconds: f64,
}

impl Browser {
    /// `requests` requests: the list and an offering's detail in turn.
    async fn browse(
        &mut self,
        client: &reqwest::Client,
        base_url: &str,
        slugs: &[String],
        requests: usize,
    ) {
        let started = Instant::now();
        for i in 0..requests {
            let path = if i % 2 == 0 {
                flows::OFFERINGS.to_owned()
            } else {
                let slug = &slugs[(self.samples_ms.len() / 2) % slugs.len()];
                format!("{}/{slug}", flows::OFFERINGS)
            };
            let answer = get(client, base_url, &path).await;
            self.samples_ms.push(answer.ms);
            match answer.status {
                0 => self.no_answer += 1,
                status => *self.statuses.entry(status).or_insert(0) += 1,
            }
            tokio::time::sleep(THINK).await;
        }
        self.seconds += started.elapsed().as_secs_f64();
    }

    fn figures(self) -> Browsing {
        Browsing {
            requests: self.samples_ms.len(),
            latency: Latency::of_samples(&self.samples_ms),
            statuses: self.statuses,
            no_answer: self.no_answer,
            seconds: self.seconds,
        }
    }
}

/// What one flood connection saw.
#[derive(Default)]
struct Tally {
    statuses: BTreeMap<u16, usize>,
    no_answer: usize,
}

/// The flood, running on its own lowest-priority runtime.
struct Running {
    runtime: Runtime,
    connections: Vec<JoinHandle<Tally>>,
    stop: Arc<AtomicBool>,
    started: Instant,
    thread_nice: Arc<Mutex<Vec<Option<i32>>>>,
}

impl Running {
    fn start(base_url: &str, address: Ipv4Addr) -> Result<Running> {
        // A client each: 64 connections, not a pool that might share fewer.
        // Built before the runtime, which must not be dropped on an error
        // here (a runtime may not be dropped inside another).
        let clients = (0..FLOOD_CONNECTIONS)
            .map(|_| {
                reqwest::Client::builder()
                    .local_address(IpAddr::V4(address))
                    .timeout(REQUEST_TIMEOUT)
                    // The flood asks for gzip but never unzips: it reads the
                    // bytes and drops them, spending as little as it can.
                    .gzip(false)
                    .build()
                    .context("building a flood client")
            })
            .collect::<Result<Vec<_>>>()?;
        let thread_nice = Arc::new(Mutex::new(Vec::new()));
        let runtime = lowest_priority_runtime(Arc::clone(&thread_nice))?;
        let stop = Arc::new(AtomicBool::new(false));
        let url = format!("{base_url}{}", flows::OFFERINGS);
        let connections = clients
            .into_iter()
            .map(|client| runtime.spawn(hammer(client, url.clone(), Arc::clone(&stop))))
            .collect();
        Ok(Running {
            runtime,
            connections,
            stop,
            started: Instant::now(),
            thread_nice,
        })
    }

    async fn stop(self) -> Result<Flood> {
        self.stop.store(true, Ordering::Relaxed);
        let mut tallies = Vec::with_capacity(self.connections.len());
        for connection in self.connections {
            tallies.push(connection.await);
        }
        let seconds = self.started.elapsed().as_secs_f64();
        // Its threads are idle now; a runtime may not be dropped (joined)
        // inside another, so it is let go in the background.
        self.runtime.shutdown_background();
        let mut flood = Flood {
            connections: tallies.len(),
            seconds,
            thread_nice: self
                .thread_nice
                .lock()
                .map(|nice| nice.clone())
                .unwrap_or_default(),
            ..Flood::default()
        };
        for tally in tallies {
            let tally = tally.context("a flood connection panicked")?;
            for (status, count) in tally.statuses {
                *flood.statuses.entry(status).or_insert(0) += count;
            }
            flood.no_answer += tally.no_answer;
        }
        flood.requests = flood.statuses.values().sum::<usize>() + flood.no_answer;
        flood.per_second = flood.requests as f64 / flood.seconds;
        Ok(flood)
    }
}

/// `GET url` in a closed loop until `stop`.
async fn hammer(client: reqwest::Client, url: String, stop: Arc<AtomicBool>) -> Tally {
    let mut tally = Tally::default();
    while !stop.load(Ordering::Relaxed) {
        let response = client
            .get(&url)
            .header(reqwest::header::ACCEPT_ENCODING, "gzip")
            .send()
            .await;
        match response {
            Ok(response) => {
                let status = response.status().as_u16();
                if response.bytes().await.is_ok() {
                    *tally.statuses.entry(status).or_insert(0) += 1;
                } else {
                    tally.no_answer += 1;
                }
            }
            Err(_) => {
                tally.no_answer += 1;
                // A server that is gone must not turn this into a busy loop.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    tally
}

/// A runtime with one worker per core, every thread of it (workers and
/// blocking pool) at the lowest scheduling priority, nice 19 on Linux. Each
/// thread reads its nice value back into `thread_nice` as it starts.
fn lowest_priority_runtime(thread_nice: Arc<Mutex<Vec<Option<i32>>>>) -> Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
        .thread_name("flood")
        .enable_all()
        .on_thread_start(move || {
            let nice = set_current_thread_priority(ThreadPriority::Min)
                .ok()
                .and_then(|()| std::fs::read_to_string("/proc/thread-self/stat").ok())
                .and_then(|stat| nice_of_stat(&stat));
            if let Ok(mut all) = thread_nice.lock() {
                all.push(nice);
            }
        })
        .build()
        .context("building the flood's runtime")
}

/// The nice value in a /proc/<pid>/task/<tid>/stat line: field 19, counting
/// from the pid; the command name (field 2) may hold spaces and parentheses,
/// so fields are counted after its closing parenthesis.
fn nice_of_stat(stat: &str) -> Option<i32> {
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(16)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_is_read_after_the_command_name() {
        let stat = "4242 (flood (x) 1) S 1 4242 4242 0 -1 4194368 100 0 0 0 5 3 0 0 39 19 \
                    4 0 12345 1000000 200 18446744073709551615";
        assert_eq!(nice_of_stat(stat), Some(19));
        assert_eq!(nice_of_stat("garbage"), None);
    }

    fn browsing(statuses: &[(u16, usize)], no_answer: usize) -> Browsing {
        Browsing {
            requests: statuses.iter().map(|(_, n)| n).sum::<usize>() + no_answer,
            latency: Latency::default(),
            statuses: statuses.iter().copied().collect(),
            no_answer,
            seconds: 1.0,
        }
    }

    #[test]
    fn browsing_is_ok_only_when_every_answer_is_2xx() {
        assert!(browsing(&[(200, 300)], 0).all_ok());
        assert!(!browsing(&[(200, 299), (429, 1)], 0).all_ok());
        assert!(!browsing(&[(200, 299)], 1).all_ok());
        assert!(!browsing(&[], 0).all_ok());
    }
}
