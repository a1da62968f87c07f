//! The open connections, for the cap: who is open, who is busy, and which
//! idle one makes room when a newcomer finds the server full (the longest
//! idle, never one still writing an answer).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::activity::{Activity, ConnectionGauge};

/// The open connections, for the cap.
pub(super) struct Connections {
    pub(super) max: usize,
    pub(super) gauge: ConnectionGauge,
    pub(super) epoch: Instant,
    pub(super) next_id: AtomicU64,
    pub(super) open: Mutex<Registry>,
    /// Signalled whenever a connection closes.
    pub(super) closed: Notify,
}

pub(super) struct Entry {
    pub(super) activity: Arc<Activity>,
    pub(super) evict: CancellationToken,
}

/// A connection's place in the registry; dropping it frees the place.
pub(super) struct Slot {
    pub(super) id: u64,
    pub(super) activity: Arc<Activity>,
    pub(super) evicted: CancellationToken,
    pub(super) connections: Arc<Connections>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.connections.lock().remove(&self.id).is_some() {
            self.connections.gauge.0.fetch_sub(1, Ordering::Relaxed);
        }
        self.connections.closed.notify_waiters();
    }
}

impl Connections {
    pub(super) fn new(max: usize, gauge: ConnectionGauge) -> Self {
        Self {
            max: max.max(1),
            gauge,
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(Registry::default()),
            closed: Notify::new(),
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        // A panic while holding this lock leaves a map that is still whole.
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn open(&self) -> usize {
        self.gauge.open()
    }

    /// A place for a new connection: at once below the cap; at the cap, by
    /// closing the connection that has waited longest without a request in
    /// progress; when every connection is busy, once one closes.
    pub(super) async fn admit(self: &Arc<Self>) -> Slot {
        loop {
            let closed = self.closed.notified();
            tokio::pin!(closed);
            // Registered before looking, so a close in between is not missed.
            closed.as_mut().enable();
            {
                let mut open = self.lock();
                if open.len() >= self.max
                    && let Some(id) = open.longest_idle()
                    && let Some(entry) = open.remove(&id)
                {
                    self.gauge.0.fetch_sub(1, Ordering::Relaxed);
                    entry.evict.cancel();
                    tracing::debug!(
                        "connection cap reached: closed the longest-waiting connection"
                    );
                }
                if open.len() < self.max {
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let activity = Arc::new(Activity::new(self.epoch));
                    let evict = CancellationToken::new();
                    open.insert(
                        id,
                        Entry {
                            activity: activity.clone(),
                            evict: evict.clone(),
                        },
                    );
                    self.gauge.0.fetch_add(1, Ordering::Relaxed);
                    return Slot {
                        id,
                        activity,
                        evicted: evict,
                        connections: self.clone(),
                    };
                }
            }
            closed.await;
        }
    }

    /// Resolves once no connection is open.
    pub(super) async fn all_closed(&self) {
        loop {
            let closed = self.closed.notified();
            tokio::pin!(closed);
            closed.as_mut().enable();
            if self.open() == 0 {
                return;
            }
            closed.await;
        }
    }
}

/// The open connections, in a vector for sampling at random and an index
/// by id for removal, both O(1).
#[derive(Default)]
pub(super) struct Registry {
    pub(super) entries: Vec<(u64, Entry)>,
    pub(super) index: HashMap<u64, usize>,
}

impl Registry {
    /// Connections looked at to find one to close at the cap; Redis's
    /// approximated LRU eviction works the same way.
    const SAMPLES: usize = 32;

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn insert(&mut self, id: u64, entry: Entry) {
        self.index.insert(id, self.entries.len());
        self.entries.push((id, entry));
    }

    pub(super) fn remove(&mut self, id: &u64) -> Option<Entry> {
        let at = self.index.remove(id)?;
        let (_, entry) = self.entries.swap_remove(at);
        if let Some((moved, _)) = self.entries.get(at) {
            self.index.insert(*moved, at);
        }
        Some(entry)
    }

    /// The connection idle longest, if any is idle: exactly among a few
    /// hundred, else among `SAMPLES` taken at random (and all of them when
    /// no sample is idle), so making room costs the same at any number of
    /// connections.
    pub(super) fn longest_idle(&self) -> Option<u64> {
        let idle = |(id, entry): &(u64, Entry)| Some((entry.activity.waiting_since()?, *id));
        let oldest = |candidates: &mut dyn Iterator<Item = &(u64, Entry)>| {
            candidates.filter_map(idle).min().map(|(_, id)| id)
        };
        if self.entries.len() <= Self::SAMPLES * 8 {
            return oldest(&mut self.entries.iter());
        }
        let mut sampled =
            (0..Self::SAMPLES).map(|_| &self.entries[rand::random_range(0..self.entries.len())]);
        oldest(&mut sampled).or_else(|| oldest(&mut self.entries.iter()))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn at_the_cap_the_longest_waiting_connection_makes_room() {
        let connections = Arc::new(Connections::new(2, ConnectionGauge::default()));
        let first = connections.admit().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let second = connections.admit().await;
        // A request in progress on the first: the second is the one to go.
        let busy = first.activity.begin();
        let third = connections.admit().await;
        assert!(second.evicted.is_cancelled());
        assert!(!first.evicted.is_cancelled());
        assert_eq!(connections.open(), 2);
        // Both busy: the next waits until one closes.
        let _busy_third = third.activity.begin();
        let waiting = tokio::spawn({
            let connections = connections.clone();
            async move { connections.admit().await.id }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        drop(busy);
        drop(first);
        let admitted = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("admitted once a connection closed")
            .unwrap();
        assert!(admitted > third.id);
        drop(second);
    }
}
