//! What the connection loop and the cap share: the count of open
//! connections, and each connection's activity (requests in progress,
//! since when idle, whether an answer is being written).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::Poll;

use std::time::Instant;

/// The number of client connections open, counted by the server loop and
/// read by the health report: no walk over sockets, whatever their number.
#[derive(Debug, Clone, Default)]
pub struct ConnectionGauge(pub(super) Arc<AtomicUsize>);

impl ConnectionGauge {
    pub fn open(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Whether a connection has requests in progress, and since when it has not.
#[derive(Debug)]
pub(super) struct Activity {
    /// Requests in progress (more than one only with HTTP/2).
    pub(super) in_progress: AtomicUsize,
    /// Whether the socket refused the last write (the client is not reading
    /// as fast as answers are written): busy too, though every handler is
    /// done and hyper holds the rest of an answer in its buffer.
    pub(super) writing: AtomicBool,
    /// When the last request ended, or the connection opened: milliseconds
    /// since the registry's epoch.
    pub(super) idle_since_ms: AtomicU64,
    /// When the first byte arrived since then ([`Activity::NOTHING_HEARD`]
    /// while silent): a request on its way has the header timeout to arrive.
    pub(super) heard_since_ms: AtomicU64,
    /// Whether a request has been answered: from then on, silence between
    /// requests is keep-alive.
    pub(super) answered: AtomicBool,
    /// Whether the answer of the requests in progress has started going out:
    /// bytes read from then on belong to a next request (a fast client's, or
    /// a pipelined one), while hyper may not yet have let go of the answer.
    pub(super) responding: AtomicBool,
    /// Wakes the connection's timer when a next request starts arriving.
    pub(super) heard_now: tokio::sync::Notify,
    pub(super) epoch: Instant,
}

impl Activity {
    const NOTHING_HEARD: u64 = u64::MAX;

    pub(super) fn new(epoch: Instant) -> Self {
        let activity = Self {
            in_progress: AtomicUsize::new(0),
            writing: AtomicBool::new(false),
            idle_since_ms: AtomicU64::new(0),
            heard_since_ms: AtomicU64::new(Self::NOTHING_HEARD),
            answered: AtomicBool::new(false),
            responding: AtomicBool::new(false),
            heard_now: tokio::sync::Notify::new(),
            epoch,
        };
        activity
            .idle_since_ms
            .store(activity.now_ms(), Ordering::Release);
        activity
    }

    pub(super) fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A request has arrived whole: its bytes no longer run the header
    /// timeout.
    pub(super) fn begin(self: &Arc<Self>) -> Busy {
        self.in_progress.fetch_add(1, Ordering::AcqRel);
        self.responding.store(false, Ordering::Release);
        self.heard_since_ms
            .store(Self::NOTHING_HEARD, Ordering::Release);
        Busy(self.clone())
    }

    /// Milliseconds since its epoch that it has waited without a request in
    /// progress since, or `None` when one is in progress.
    pub(super) fn waiting_since(&self) -> Option<u64> {
        (self.in_progress.load(Ordering::Acquire) == 0 && !self.writing.load(Ordering::Acquire))
            .then(|| self.idle_since_ms.load(Ordering::Acquire))
    }

    /// Since when bytes of a next request have been arriving, if any have
    /// since the connection last became idle.
    pub(super) fn heard_since(&self) -> Option<u64> {
        let heard = self.heard_since_ms.load(Ordering::Acquire);
        (heard != Self::NOTHING_HEARD).then_some(heard)
    }

    /// Notes bytes read off the socket: the first while idle, or once the
    /// answer in progress has started going out, starts the header timeout.
    /// (Bytes read before that are the body of the request in progress.)
    pub(super) fn heard(&self) {
        if self.in_progress.load(Ordering::Acquire) == 0 || self.responding.load(Ordering::Acquire)
        {
            let first = self.heard_since_ms.compare_exchange(
                Self::NOTHING_HEARD,
                self.now_ms(),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            if first.is_ok() {
                self.heard_now.notify_one();
            }
        }
    }

    /// Notes whether a write went through; the end of a stalled write
    /// restarts the idle clock.
    pub(super) fn wrote<T>(&self, result: &Poll<T>) {
        let stalled = result.is_pending();
        if !stalled && self.in_progress.load(Ordering::Acquire) > 0 {
            self.responding.store(true, Ordering::Release);
        }
        if self.writing.swap(stalled, Ordering::AcqRel) && !stalled {
            self.idle_since_ms.store(self.now_ms(), Ordering::Release);
        }
    }
}

/// A request in progress on a connection; its end makes the connection idle.
pub(super) struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let activity = &self.0;
        activity
            .idle_since_ms
            .store(activity.now_ms(), Ordering::Release);
        activity.answered.store(true, Ordering::Release);
        activity.in_progress.fetch_sub(1, Ordering::AcqRel);
    }
}
