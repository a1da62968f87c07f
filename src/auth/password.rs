//! Argon2id password hashing, stored as PHC strings. Hashing is expensive by
//! design (19 MiB and tens of milliseconds each), so it runs on a few
//! dedicated threads, at most a configured number at once; a burst queues for
//! a slot, and past a bounded wait the caller gets a 503 instead of a hang.
//!
//! Dedicated threads rather than tokio's blocking pool: the allocator keeps
//! each thread's 19 MiB block for reuse, so hashing on whichever of dozens of
//! blocking threads happens to be free would pin 19 MiB per thread.

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
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

/// Hashes a password into a PHC string. Blocking.
pub fn hash(argon: &Argon2<'_>, password: &str) -> Result<String, Error> {
    let salt = SaltString::generate(&mut OsRng);
    argon
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(anyhow::anyhow!("argon2 hash failed: {e}")))
}

/// Checks a password against a stored PHC string, with the parameters
/// recorded in that string. Blocking.
pub fn verify(argon: &Argon2<'_>, phc: &str, password: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| argon.verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

type Job = Box<dyn FnOnce() + Send>;

/// Starts `threads` hashing threads fed by one queue; they end when the
/// returned sender is dropped.
fn spawn_workers(threads: usize) -> Result<mpsc::Sender<Job>, Error> {
    let (jobs, queue) = mpsc::channel::<Job>();
    let queue = Arc::new(Mutex::new(queue));
    for i in 0..threads {
        let queue = queue.clone();
        std::thread::Builder::new()
            .name(format!("wemaster-hash-{i}"))
            .spawn(move || {
                loop {
                    let job = match queue.lock() {
                        Ok(queue) => match queue.recv() {
                            Ok(job) => job,
                            Err(_) => return,
                        },
                        Err(_) => return,
                    };
                    job();
                }
            })
            .map_err(|e| Error::internal(anyhow::anyhow!("cannot start a hashing thread: {e}")))?;
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
    /// Builds the hasher; computes the dummy hash once (blocking).
    pub fn new(config: &AuthConfig) -> Result<Self, Error> {
        let argon = argon2(config);
        let dummy_hash = hash(&argon, "not a real password, only for timing")?;
        let threads = config.effective_hash_concurrency();
        Ok(Self {
            argon: Arc::new(argon),
            slots: Arc::new(Semaphore::new(threads)),
            jobs: spawn_workers(threads)?,
            queue_timeout: Duration::from_millis(config.hash_queue_timeout_ms),
            dummy_hash: dummy_hash.into(),
        })
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: String) -> Result<String, Error> {
        let argon = self.argon.clone();
        self.run(move || hash(&argon, &password)).await
    }

    /// Checks `password` against `phc`, or against the dummy hash when the
    /// account does not exist (then the answer is always false).
    pub async fn verify(&self, phc: Option<String>, password: String) -> Result<bool, Error> {
        let argon = self.argon.clone();
        let dummy = self.dummy_hash.clone();
        self.run(move || {
            Ok(match phc {
                Some(phc) => verify(&argon, &phc, &password),
                None => {
                    let _ = verify(&argon, &dummy, &password);
                    false
                }
            })
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        use crate::ops::metrics::{HASH_DURATION, HASH_WAIT, HASH_WAITING};
        let queued = std::time::Instant::now();
        metrics::gauge!(HASH_WAITING).increment(1.0);
        let permit =
            tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned()).await;
        metrics::gauge!(HASH_WAITING).decrement(1.0);
        metrics::histogram!(HASH_WAIT).record(queued.elapsed().as_secs_f64());
        let permit = permit
            .map_err(|_| Error::unavailable("too many sign-ins at once, retry shortly", 1))?
            .map_err(|_| Error::unavailable("the server is shutting down", 1))?;
        let (done, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let started = std::time::Instant::now();
                let outcome = work();
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
