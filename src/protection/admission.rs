//! Admission: how many requests run at once, and whose turn is next.
//!
//! Work-conserving fair queuing by client address, in the spirit of
//! Kubernetes API Priority and Fairness:
//!
//! - Requests run at once up to a level's capacity. Below it a request runs
//!   immediately, whoever sent it: one address alone (a school, an office,
//!   a load generator behind one NAT) may use the whole machine.
//! - At capacity, requests wait in a queue of their own address. A freed
//!   slot goes straight to the next address in round-robin order, so an
//!   address with one request waiting is served after at most one request of
//!   each other waiting address, however many a flood has queued.
//! - Refusals say whose the limit is. When the queues are full, the address
//!   with the most requests waiting loses its newest one: 429 (that address
//!   is over its share while others wait), or 503 when it waits alone. When
//!   the wait a new request faces (the requests ahead of it over the rate
//!   slots are freeing) is longer than the level allows, it gets 503 at once
//!   with that wait as `Retry-After`, rather than timing out in the queue.
//!
//! Two levels, each with its own slots and queues: requests that hash a
//! password (sign-in, sign-up, password reset; a few per core, tens of
//! milliseconds each) and everything else, so logins queueing for the
//! hashing threads never take the slots reads need.
//!
//! IPv6 clients are grouped by /64, the block one subscriber usually holds.
//! Every operation is O(1) or O(log n) in the addresses waiting.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use super::fair_queue::FairQueue;
pub use super::fair_queue::{LevelFigures, LevelLimits, Refusal, Ticket};
use crate::config::{AuthConfig, ServerConfig};

/// Which set of slots a request takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Everything that does not hash a password.
    Cheap,
    /// Sign-in, sign-up and password reset: bound by the hashing threads.
    Hashing,
}

impl Lane {
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Cheap => "cheap",
            Lane::Hashing => "hashing",
        }
    }
}

/// Both levels.
pub struct Admission {
    cheap: Arc<FairQueue>,
    hashing: Arc<FairQueue>,
}

impl Admission {
    pub fn new(server: &ServerConfig, auth: &AuthConfig) -> Self {
        let queue_max = server.queue_max as usize;
        let cheap = LevelLimits {
            capacity: server.max_in_flight as usize,
            queue_max,
            max_wait: Duration::from_millis(server.queue_timeout_ms),
        };
        // Two per hashing thread: one hashing, one doing its database work
        // around the hash, so a thread never idles between logins.
        let hashing = LevelLimits {
            capacity: auth.effective_hash_concurrency() * 2,
            queue_max,
            max_wait: Duration::from_millis(auth.hash_queue_timeout_ms),
        };
        Self {
            cheap: Arc::new(FairQueue::new(cheap)),
            hashing: Arc::new(FairQueue::new(hashing)),
        }
    }

    fn level(&self, lane: Lane) -> &Arc<FairQueue> {
        match lane {
            Lane::Cheap => &self.cheap,
            Lane::Hashing => &self.hashing,
        }
    }

    /// Waits for `client`'s turn in `lane` (see the module doc).
    pub async fn admit(&self, client: Option<IpAddr>, lane: Lane) -> Result<Ticket, Refusal> {
        let flow = client.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), group);
        self.level(lane).admit(flow).await
    }

    pub fn figures(&self, lane: Lane) -> LevelFigures {
        self.level(lane).figures()
    }
}

tokio::task_local! {
    /// The slot of the request running on this task, while it holds one.
    static HELD: std::cell::RefCell<Option<Ticket>>;
}

/// Runs a request's handling holding `ticket`, so that [`step_aside`] can
/// give the slot back early.
pub async fn holding<F: Future>(ticket: Ticket, handling: F) -> F::Output {
    HELD.scope(std::cell::RefCell::new(Some(ticket)), handling)
        .await
}

/// Gives back the slot of the request running on this task, if it holds
/// one: for a wait on another service (the payment provider), which costs
/// this machine nothing, so a slow provider cannot take every slot and
/// stall reads. The caller bounds those waits itself.
pub fn step_aside() {
    let _ = HELD.try_with(|held| held.borrow_mut().take());
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

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn sign_ins_have_slots_of_their_own() {
        let admission = Admission::new(
            &ServerConfig {
                max_in_flight: 1,
                ..ServerConfig::default()
            },
            &AuthConfig {
                hash_concurrency: 1,
                ..AuthConfig::default()
            },
        );
        let client = Some(ip("10.0.0.1"));
        // Two per hashing thread, both taken by sign-ins...
        let _first = admission.admit(client, Lane::Hashing).await.unwrap();
        let _second = admission.admit(client, Lane::Hashing).await.unwrap();
        assert_eq!(admission.figures(Lane::Hashing).running, 2);
        // ...and a read of the same address runs at once.
        let read = admission.admit(client, Lane::Cheap).await;
        assert!(read.is_ok());
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
