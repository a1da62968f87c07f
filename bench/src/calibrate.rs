//! The yardsticks measured before the load: one Argon2id verification timed
//! in-process, and a few sequential logins against the idle server.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::flows;

/// The server's password-hash parameters, read from the bench config.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
pub struct Argon2Params {
    #[serde(rename = "argon2_memory_kib")]
    pub memory_kib: u32,
    #[serde(rename = "argon2_iterations")]
    pub iterations: u32,
    #[serde(rename = "argon2_parallelism")]
    pub parallelism: u32,
}

/// One Argon2id verification, timed in this process on one thread with its
/// working memory already in place, as the server's hashing threads keep
/// theirs. (Allocating the 19 MiB per verification, as a plain
/// `verify_password` does, adds a page fault per 4 KiB: on this machine that
/// nearly doubled the figure and made the login target twice as loose.)
#[derive(Debug, Serialize)]
pub struct Argon2Timing {
    pub params: Argon2Params,
    /// The fastest of the timed verifications, in milliseconds: nothing makes
    /// a verification faster than its cost, while a busy machine (a compiler
    /// next door) makes some slower, so the fastest is the steadiest estimate.
    pub verify_ms: f64,
    /// Their median, for comparison.
    pub median_ms: f64,
    pub samples_ms: Vec<f64>,
    /// 1000 / verify_ms: what one core verifies per second.
    pub per_second_single_thread: f64,
}

const VERIFICATIONS: usize = 15;

/// Hashes once, verifies once to warm up, then times [`VERIFICATIONS`]
/// verifications. Run while nothing else is busy.
pub fn time_argon2(params: Argon2Params) -> Result<Argon2Timing> {
    let argon2 = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|e| anyhow!("argon2 parameters: {e}"))?,
    );
    let mut memory = vec![Block::default(); argon2.params().block_count()];
    // A fixed salt: the cost of a verification does not depend on it.
    let salt = b"wemaster-bench-salt";
    let mut stored = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2
        .hash_password_into_with_memory(b"password123", salt, &mut stored, &mut memory)
        .map_err(|e| anyhow!("hashing: {e}"))?;
    let mut verify = || {
        let mut computed = [0u8; Params::DEFAULT_OUTPUT_LEN];
        argon2
            .hash_password_into_with_memory(b"password123", salt, &mut computed, &mut memory)
            .map_err(|e| anyhow!("verifying: {e}"))?;
        if computed != stored {
            return Err(anyhow!("verifying: the hash differs"));
        }
        Ok(())
    };
    verify()?;
    let mut samples_ms = Vec::with_capacity(VERIFICATIONS);
    for _ in 0..VERIFICATIONS {
        let started = Instant::now();
        verify()?;
        samples_ms.push(millis(started.elapsed()));
    }
    let verify_ms = samples_ms.iter().copied().fold(f64::INFINITY, f64::min);
    Ok(Argon2Timing {
        params,
        verify_ms,
        median_ms: median(&samples_ms),
        samples_ms,
        per_second_single_thread: 1000.0 / verify_ms,
    })
}

/// Sequential logins against the idle server: informational, what one login
/// costs end to end (HTTP, database, Argon2id, token) without contention.
/// From 127.0.0.1 and without a forwarding header, like every request of the
/// bench's default.
#[derive(Debug, Serialize)]
pub struct LoginProbe {
    pub samples_ms: Vec<f64>,
    pub statuses: Vec<u16>,
    pub median_ms: f64,
}

const PROBE_LOGINS: usize = 3;

pub async fn probe_logins(client: &reqwest::Client, base_url: &str) -> LoginProbe {
    let (email, password) = flows::ACCOUNTS[0];
    let mut samples_ms = Vec::with_capacity(PROBE_LOGINS);
    let mut statuses = Vec::with_capacity(PROBE_LOGINS);
    for _ in 0..PROBE_LOGINS {
        let started = Instant::now();
        let status = client
            .post(format!("{base_url}{}", flows::LOGIN))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .map_or(0, |response| response.status().as_u16());
        samples_ms.push(millis(started.elapsed()));
        statuses.push(status);
    }
    LoginProbe {
        median_ms: median(&samples_ms),
        samples_ms,
        statuses,
    }
}

/// What `GET /api/v1/offerings` answers before the load: status and, for a
/// JSON array, its length. Tells the reader early when the catalogue is not
/// there yet.
#[derive(Debug, Serialize)]
pub struct CatalogueProbe {
    pub status: u16,
    pub offerings: Option<usize>,
}

pub async fn probe_catalogue(client: &reqwest::Client, base_url: &str) -> CatalogueProbe {
    let response = client
        .get(format!("{base_url}{}", flows::OFFERINGS))
        .send()
        .await;
    match response {
        Ok(response) => {
            let status = response.status().as_u16();
            let offerings = response
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|v| v.as_array().map(Vec::len));
            CatalogueProbe { status, offerings }
        }
        Err(_) => CatalogueProbe {
            status: 0,
            offerings: None,
        },
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
