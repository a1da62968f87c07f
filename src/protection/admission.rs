//! Capacity protection that never rations honest traffic:
//!
//! - Fairness: each client address may have `server.client_max_in_flight`
//!   requests in progress; more wait their turn (a FIFO semaphore, so they
//!   wait parked, costing no CPU) for up to `server.client_queue_ms`, then
//!   get 429. Traffic with think time almost never has two requests in
//!   flight; a closed-loop flood has dozens, and while its extra requests
//!   wait, other clients' requests run beside only a few of its own.
//!   Requests that hash a password (sign-in, sign-up, password reset) have
//!   a lane of their own with the same cap: a hash takes tens of
//!   milliseconds, and on a busy machine hundreds, so a few logins of people
//!   behind one address (a school, an office) must not hold the slots their
//!   neighbours' cheap reads need. The hashing queue bounds them as a whole.
//! - Load shedding: past `server.max_in_flight` requests in progress across
//!   all clients, new ones get 503 `OVERLOADED` at once instead of queueing
//!   into timeouts.
//!
//! IPv6 clients are grouped by /64, the block one subscriber usually holds.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::ServerConfig;

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its address kept its slots busy for the whole wait.
    ClientBusy,
    /// The server as a whole has too much in progress.
    Overloaded,
}

/// Which of an address's slot sets a request takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Everything that does not hash a password.
    Cheap,
    /// Sign-in, sign-up and password reset: bound by the hashing pool.
    Hashing,
}

/// Held while a request is in progress; dropping it frees its slots.
#[derive(Debug)]
pub struct Ticket {
    _client: Option<OwnedSemaphorePermit>,
    _server: Option<OwnedSemaphorePermit>,
}

pub struct Admission {
    per_client: usize,
    client_wait: Duration,
    clients: Cache<(IpAddr, Lane), Arc<Semaphore>>,
    server: Option<Arc<Semaphore>>,
}

impl Admission {
    pub fn new(config: &ServerConfig, max_keys: u64) -> Self {
        Self {
            per_client: config.client_max_in_flight as usize,
            client_wait: Duration::from_millis(config.client_queue_ms),
            // An address idle this long has no request in progress.
            clients: Cache::builder()
                .max_capacity(max_keys)
                .time_to_idle(Duration::from_secs(120))
                .build(),
            server: (config.max_in_flight > 0)
                .then(|| Arc::new(Semaphore::new(config.max_in_flight as usize))),
        }
    }

    /// Waits for a slot of `client` (when known) in `lane`, then takes one
    /// of the server's or refuses at once.
    pub async fn admit(&self, client: Option<IpAddr>, lane: Lane) -> Result<Ticket, Refusal> {
        let client_permit = match client.filter(|_| self.per_client > 0) {
            Some(ip) => {
                let slots = self.clients.get_with((group(ip), lane), || {
                    Arc::new(Semaphore::new(self.per_client))
                });
                match slots.clone().try_acquire_owned() {
                    Ok(permit) => Some(permit),
                    Err(_) => {
                        match tokio::time::timeout(self.client_wait, slots.acquire_owned()).await {
                            Ok(Ok(permit)) => Some(permit),
                            _ => return Err(Refusal::ClientBusy),
                        }
                    }
                }
            }
            None => None,
        };
        let server_permit = match &self.server {
            Some(server) => Some(
                server
                    .clone()
                    .try_acquire_owned()
                    .map_err(|_| Refusal::Overloaded)?,
            ),
            None => None,
        };
        Ok(Ticket {
            _client: client_permit,
            _server: server_permit,
        })
    }
}

/// The key an address is counted under: itself, or its /64 for IPv6.
pub fn group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max_in_flight: u32, per_client: u32, wait_ms: u64) -> Admission {
        Admission::new(
            &ServerConfig {
                max_in_flight,
                client_max_in_flight: per_client,
                client_queue_ms: wait_ms,
                ..ServerConfig::default()
            },
            1_000,
        )
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_past_its_slots_waits_its_turn_then_is_refused() {
        let gate = admission(0, 2, 100);
        let first = gate.admit(ip("10.0.0.1"), Lane::Cheap).await.unwrap();
        let _second = gate.admit(ip("10.0.0.1"), Lane::Cheap).await.unwrap();
        // Another address is not held up.
        let other = gate.admit(ip("10.0.0.2"), Lane::Cheap).await;
        assert!(other.is_ok());
        // The third waits, and gets the first's slot when it is freed.
        let waiting = gate.admit(ip("10.0.0.1"), Lane::Cheap);
        let (third, ()) = tokio::join!(waiting, async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(first);
        });
        assert!(third.is_ok());
        // Nothing frees a slot now: after 100 ms, 429.
        assert_eq!(
            gate.admit(ip("10.0.0.1"), Lane::Cheap).await.unwrap_err(),
            Refusal::ClientBusy
        );
    }

    #[tokio::test(start_paused = true)]
    async fn logins_in_progress_leave_an_address_s_cheap_slots_free() {
        let gate = admission(0, 1, 100);
        let _login = gate.admit(ip("10.0.0.1"), Lane::Hashing).await.unwrap();
        // A read of the same address goes on at once.
        let read = gate.admit(ip("10.0.0.1"), Lane::Cheap).await;
        assert!(read.is_ok());
        // A second login of that address waits for the first, then 429.
        assert_eq!(
            gate.admit(ip("10.0.0.1"), Lane::Hashing).await.unwrap_err(),
            Refusal::ClientBusy
        );
    }

    #[tokio::test]
    async fn past_the_server_cap_requests_are_shed_at_once() {
        let gate = admission(2, 0, 100);
        let _a = gate.admit(ip("10.0.0.1"), Lane::Cheap).await.unwrap();
        let b = gate.admit(ip("10.0.0.2"), Lane::Cheap).await.unwrap();
        assert_eq!(
            gate.admit(ip("10.0.0.3"), Lane::Cheap).await.unwrap_err(),
            Refusal::Overloaded
        );
        drop(b);
        assert!(gate.admit(ip("10.0.0.3"), Lane::Cheap).await.is_ok());
    }

    #[test]
    fn ipv6_clients_are_grouped_by_64() {
        let a = group("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = group("2001:db8:1:2:bbbb::9".parse().unwrap());
        let c = group("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(group("10.0.0.1".parse().unwrap()).to_string(), "10.0.0.1");
    }
}
