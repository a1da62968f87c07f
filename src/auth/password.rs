//! Argon2id password hashing, stored as PHC strings. Hashing is expensive by
//! design (19 MiB and tens of milliseconds each), so it runs on a few
//! dedicated threads, at most a configured number at once; a burst queues for
//! a slot, and past a bounded wait the caller gets a 503 instead of a hang.
//!
//! Each hashing thread owns its Argon2 working memory ([`Memory`]) and reuses
//! it for every hash. Allocating 19 MiB per hash costs a page fault for every
//! 4 KiB of it, about a third of the hash's time on a small VPS, and the
//! allocator then either keeps the freed block anyway or returns it only to
//! fault it in again on the next login. With the memory owned by the thread,
//! the server's resident memory for hashing is fixed: threads x 19 MiB.

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

use crate::config::AuthConfig;
use crate::error::Error;

/// The Argon2id instance for the configured parameters.
pub fn argon2(config: &AuthConfig) -> Argon2<'static> {
    // Config::validate already checked these parameters.
    let params = Params::new(
        config.argon2_memory_kib,
        config.argon2_iterations,
        config.argon2_parallelism,
        None,
    )
    .unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Argon2 working memory, grown to the largest parameters seen and reused.
#[derive(Default)]
struct Memory(Vec<Block>);

impl Memory {
    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let count = params.block_count();
        if self.0.len() < count {
            self.0.resize(count, Block::default());
        }
        &mut self.0[..count]
    }
}

fn argon2_failed(e: impl std::fmt::Display) -> Error {
    Error::internal(anyhow::anyhow!("argon2 hash failed: {e}"))
}

/// Hashes a password into a PHC string with a fresh random salt. Blocking.
fn hash(argon: &Argon2<'_>, password: &str, memory: &mut Memory) -> Result<String, Error> {
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon
        .hash_password_into_with_memory(
            password.as_bytes(),
            &salt,
            &mut out,
            memory.blocks(argon.params()),
        )
        .map_err(argon2_failed)?;
    let salt = SaltString::encode_b64(&salt).map_err(argon2_failed)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon.params()).map_err(argon2_failed)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(argon2_failed)?),
    };
    Ok(phc.to_string())
}

/// Checks a password against a stored PHC string, with the algorithm,
/// version and parameters recorded in that string. Blocking.
fn verify(phc: &str, password: &str, memory: &mut Memory) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    // Also takes the output length from the stored hash.
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params);
    let mut out = [0u8; 64];
    let out = &mut out[..expected.len()];
    if argon
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt,
            out,
            memory.blocks(argon.params()),
        )
        .is_err()
    {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::new(out).is_ok_and(|computed| computed == expected)
}

type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// Puts the calling hashing thread below the request workers (nice 10 on
/// Linux): a request that needs microseconds of CPU then takes a core from a
/// hash in progress at once instead of waiting out its time slice, so logins
/// do not add milliseconds to everything else, and a hash still gets every
/// cycle nobody else wants. Where the system refuses, hashing runs at normal
/// priority.
fn lower_priority() {
    use thread_priority::{ThreadPriority, ThreadPriorityValue};
    // The crate's 0..=99 scale maps 22 to nice 10 under SCHED_OTHER.
    let below_normal = ThreadPriorityValue::try_from(22u8).map(ThreadPriority::Crossplatform);
    if let Err(e) = below_normal
        .map_err(|e| e.to_string())
        .and_then(|p| thread_priority::set_current_thread_priority(p).map_err(|e| format!("{e:?}")))
    {
        tracing::debug!(error = %e, "hashing thread keeps normal priority");
    }
}

/// Starts `threads` hashing threads fed by one queue and waits until each
/// has set its priority; they end when the returned sender is dropped.
fn spawn_workers(threads: usize) -> Result<mpsc::Sender<Job>, Error> {
    let (jobs, queue) = mpsc::channel::<Job>();
    let queue = Arc::new(Mutex::new(queue));
    let (ready, started) = mpsc::channel();
    for i in 0..threads {
        let queue = queue.clone();
        let ready = ready.clone();
        std::thread::Builder::new()
            .name(format!("wemaster-hash-{i}"))
            .spawn(move || {
                lower_priority();
                let _ = ready.send(());
                let mut memory = Memory::default();
                loop {
                    let job = match queue.lock() {
                        Ok(queue) => match queue.recv() {
                            Ok(job) => job,
                            Err(_) => return,
                        },
                        Err(_) => return,
                    };
                    job(&mut memory);
                }
            })
            .map_err(|e| Error::internal(anyhow::anyhow!("cannot start a hashing thread: {e}")))?;
    }
    for _ in 0..threads {
        started
            .recv()
            .map_err(|_| Error::internal(anyhow::anyhow!("a hashing thread did not start")))?;
    }
    Ok(jobs)
}

/// Bounded, off-runtime hashing and verification.
#[derive(Clone)]
pub struct PasswordHasher {
    argon: Arc<Argon2<'static>>,
    /// One permit per hashing thread: holding one guarantees a free thread.
    slots: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
    queue_timeout: Duration,
    /// Verified against when the account does not exist, so an unknown email
    /// costs the same time as a wrong password.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    /// Builds the hasher and starts its threads; computes the dummy hash
    /// once (blocking).
    pub fn new(config: &AuthConfig) -> Result<Self, Error> {
        let threads = config.effective_hash_concurrency();
        let mut hasher = Self {
            argon: Arc::new(argon2(config)),
            slots: Arc::new(Semaphore::new(threads)),
            jobs: spawn_workers(threads)?,
            queue_timeout: Duration::from_millis(config.hash_queue_timeout_ms),
            dummy_hash: Arc::from(""),
        };
        let dummy = hasher.hash_blocking(vec!["not a real password, only for timing".into()])?;
        hasher.dummy_hash = dummy.concat().into();
        Ok(hasher)
    }

    /// Hashes passwords on the hashing threads, all of them at once, and
    /// waits for the PHC strings, in order. For work outside the async
    /// runtime with no requests being served (start-up, the demo seed, the
    /// CLI), so it takes no slot: the threads' memory serves these hashes
    /// too instead of each caller allocating its own 19 MiB.
    pub fn hash_blocking(&self, passwords: Vec<String>) -> Result<Vec<String>, Error> {
        let stopped = || Error::internal(anyhow::anyhow!("the hashing threads stopped"));
        let mut results = Vec::with_capacity(passwords.len());
        for password in passwords {
            let argon = self.argon.clone();
            let (done, result) = mpsc::sync_channel(1);
            self.jobs
                .send(Box::new(move |memory: &mut Memory| {
                    let _ = done.send(hash(&argon, &password, memory));
                }))
                .map_err(|_| stopped())?;
            results.push(result);
        }
        results
            .into_iter()
            .map(|result| result.recv().map_err(|_| stopped())?)
            .collect()
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: String) -> Result<String, Error> {
        let argon = self.argon.clone();
        self.run(move |memory| hash(&argon, &password, memory))
            .await
    }

    /// Checks `password` against `phc`, or against the dummy hash when the
    /// account does not exist (then the answer is always false).
    pub async fn verify(&self, phc: Option<String>, password: String) -> Result<bool, Error> {
        let dummy = self.dummy_hash.clone();
        self.run(move |memory| {
            Ok(match phc {
                Some(phc) => verify(&phc, &password, memory),
                None => {
                    let _ = verify(&dummy, &password, memory);
                    false
                }
            })
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Memory) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        use crate::metrics::{HASH_DURATION, HASH_WAIT, HASH_WAITING};
        let queued = std::time::Instant::now();
        metrics::gauge!(HASH_WAITING).increment(1.0);
        let permit =
            tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned()).await;
        metrics::gauge!(HASH_WAITING).decrement(1.0);
        metrics::histogram!(HASH_WAIT).record(queued.elapsed().as_secs_f64());
        let permit = permit
            .map_err(|_| Error::overloaded("too many sign-ins at once, retry shortly", 1))?
            .map_err(|_| Error::unavailable("the server is shutting down", 1))?;
        let (done, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |memory: &mut Memory| {
                let started = std::time::Instant::now();
                let outcome = work(memory);
                metrics::histogram!(HASH_DURATION).record(started.elapsed().as_secs_f64());
                drop(permit);
                let _ = done.send(outcome);
            }))
            .map_err(|_| Error::unavailable("the server is shutting down", 1))?;
        result
            .await
            .map_err(|_| Error::internal(anyhow::anyhow!("a hashing thread stopped")))?
    }
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;

    fn small() -> Argon2<'static> {
        Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(64, 1, 1, None).unwrap(),
        )
    }

    #[test]
    fn our_hashes_are_standard_phc_strings() {
        let argon = small();
        let phc = hash(&argon, "correct horse", &mut Memory::default()).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(argon.verify_password(b"correct horse", &parsed).is_ok());
        assert!(argon.verify_password(b"wrong horse", &parsed).is_err());
    }

    #[test]
    fn standard_hashes_verify_with_their_own_parameters() {
        let mut memory = Memory::default();
        // Stored with other parameters than the configured ones (as after a
        // change of argon2_memory_kib): the string's parameters apply.
        for params in [
            Params::new(64, 1, 1, None),
            Params::new(256, 2, 2, Some(16)),
        ] {
            let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.unwrap());
            let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
            let phc = argon.hash_password(b"pw-12345", &salt).unwrap().to_string();
            assert!(verify(&phc, "pw-12345", &mut memory), "{phc}");
            assert!(!verify(&phc, "pw-12346", &mut memory), "{phc}");
        }
        // Memory grown for the larger hash still serves the smaller one.
        let phc = hash(&small(), "again", &mut memory).unwrap();
        assert!(verify(&phc, "again", &mut memory));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn hashing_threads_run_below_normal_priority() {
        let config = AuthConfig {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            hash_concurrency: 2,
            ..AuthConfig::default()
        };
        let hasher = PasswordHasher::new(&config).unwrap();
        let mut niceness = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let task = task.unwrap().path();
            let name = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
            if name.starts_with("wemaster-hash") {
                // Field 19 of stat is the nice value; the name (field 2) may
                // hold spaces, so count from its closing parenthesis.
                let stat = std::fs::read_to_string(task.join("stat")).unwrap();
                let after_name = &stat[stat.rfind(')').unwrap() + 2..];
                niceness.push(after_name.split(' ').nth(16).unwrap().to_string());
            }
        }
        assert!(niceness.len() >= 2, "{niceness:?}");
        assert!(niceness.iter().all(|n| n == "10"), "{niceness:?}");
        drop(hasher);
    }

    #[test]
    fn malformed_stored_hashes_never_verify() {
        let mut memory = Memory::default();
        let good = hash(&small(), "pw", &mut memory).unwrap();
        let no_hash = good.rsplit_once('$').unwrap().0.to_string();
        for phc in ["", "plain text", "$argon2id$v=19$m=64,t=1,p=1$", &no_hash] {
            assert!(!verify(phc, "pw", &mut memory), "{phc:?}");
        }
    }
}
