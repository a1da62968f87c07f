//! Memory and probe latency with many idle keep-alive connections open:
//! opens CONNECTIONS (default 10,000) connections, completes one GET /livez
//! on each so it is an established keep-alive connection, then, with all of
//! them open and idle, reads the server's resident memory and times /livez
//! and /api/v1/healthz on fresh connections.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::server::Server;

/// Connections opened at once.
const BATCH: usize = 500;

pub async fn run(server: &Server) -> Result<()> {
    let connections: usize = std::env::var("CONNECTIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    // Every connection is a file descriptor: raise the soft limit to the hard one.
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    let before = server.rss_bytes()?;
    probes(&server.addr, "0 idle").await?;
    let started = Instant::now();
    let mut opened = Vec::with_capacity(connections);
    while opened.len() < connections {
        let batch = BATCH.min(connections - opened.len());
        let tasks: Vec<_> = (0..batch)
            .map(|_| tokio::spawn(keep_alive(server.addr.clone())))
            .collect();
        for task in tasks {
            opened.push(task.await.context("a connection task")??);
        }
    }
    let took = started.elapsed().as_secs_f64();
    let after = server.rss_bytes()?;
    println!(
        "idle keep-alive connections: {} opened in {took:.1} s",
        opened.len()
    );
    probes(&server.addr, &format!("{} idle", opened.len())).await?;
    let mb = |bytes: u64| bytes as f64 / 1_048_576.0;
    println!(
        "server RSS: {:.1} MB before, {:.1} MB with {} open ({:.1} KiB each)",
        mb(before),
        mb(after),
        opened.len(),
        after.saturating_sub(before) as f64 / 1024.0 / opened.len().max(1) as f64
    );
    Ok(())
}

/// A connection that has had one answer and stays open.
async fn keep_alive(addr: String) -> Result<TcpStream> {
    let mut stream = TcpStream::connect(&addr).await?;
    stream
        .write_all(b"GET /livez HTTP/1.1\r\nhost: bench\r\n\r\n")
        .await?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 512];
    while !answer.ends_with(br#"{"status":"up"}"#) {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("closed before answering");
        }
        answer.extend_from_slice(&chunk[..n]);
    }
    Ok(stream)
}

/// Times each probe 20 times on a fresh connection and prints p50 and max.
async fn probes(addr: &str, label: &str) -> Result<()> {
    for path in ["/livez", "/api/v1/healthz"] {
        let mut times = Vec::with_capacity(20);
        for _ in 0..20 {
            let (status, took) = exchange(addr, path).await?;
            if status != "200" {
                bail!("{path} answered {status}");
            }
            times.push(took);
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "  {label}: {path:16} p50 {:.2} ms, max {:.2} ms",
            ms(times[times.len() / 2]),
            ms(times[times.len() - 1])
        );
    }
    Ok(())
}

async fn exchange(addr: &str, path: &str) -> Result<(String, Duration)> {
    let mut stream = TcpStream::connect(addr).await?;
    let started = Instant::now();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let took = started.elapsed();
    let status = String::from_utf8_lossy(&answer)
        .split(' ')
        .nth(1)
        .unwrap_or("")
        .to_string();
    Ok((status, took))
}
