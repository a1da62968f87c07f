//! The fair queue of one admission level: slots up to its capacity, then
//! a queue per client address served round-robin, with the refusals of
//! `admission.rs` when the queues are full or the wait is too long. Every
//! operation is O(1) or O(log n) in the addresses waiting.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its address has the most requests waiting while the queues are full
    /// and other addresses wait too: 429.
    OverShare { retry_after: u64 },
    /// The server has no room for it within the time the level allows: 503.
    Busy { retry_after: u64 },
}

/// Capacity and queue bounds of one level.
#[derive(Debug, Clone, Copy)]
pub struct LevelLimits {
    /// Requests running at once; 0 = no limit (nothing ever waits).
    pub capacity: usize,
    /// Requests waiting at once, across all addresses.
    pub queue_max: usize,
    /// Longest wait: a request that would wait longer is refused at once,
    /// and one still waiting after it is refused then.
    pub max_wait: Duration,
}

/// Figures for the health report and metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct LevelFigures {
    pub capacity: usize,
    pub running: usize,
    pub queued: usize,
    /// Refusals since start.
    pub refused: u64,
    /// When the last refusal happened, if any.
    pub last_refusal: Option<Instant>,
}

/// Held while a request runs; dropping it hands its slot to the next turn.
#[derive(Debug)]
pub struct Ticket {
    queue: Option<Arc<FairQueue>>,
    admitted: Instant,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(queue) = self.queue.take() {
            queue.release(self.admitted.elapsed());
        }
    }
}

/// What a waiting request is told.
#[derive(Debug)]
enum Turn {
    /// A slot is now its own.
    Run,
    /// Pushed out of a full queue: its address had the most waiting.
    OverShare,
}

/// The requests one address has waiting, oldest first. Requests that gave
/// up stay in place (their sender fails) until they reach the front.
struct Flow {
    waiters: VecDeque<oneshot::Sender<Turn>>,
    /// Requests still waiting.
    live: usize,
}

struct State {
    running: usize,
    /// Requests still waiting, all addresses.
    queued: usize,
    /// Every address with a waiter entry, each exactly once in `ring`.
    flows: HashMap<IpAddr, Flow>,
    ring: VecDeque<IpAddr>,
    /// Addresses by requests still waiting, to find the longest queue.
    by_length: BTreeSet<(usize, IpAddr)>,
    held: HoldTime,
    refused: u64,
    last_refusal: Option<Instant>,
}

impl State {
    fn set_live(&mut self, ip: IpAddr, old: usize, new: usize) {
        if old > 0 {
            self.by_length.remove(&(old, ip));
        }
        if new > 0 {
            self.by_length.insert((new, ip));
        }
    }

    fn refuse(&mut self, refusal: Refusal) -> Refusal {
        self.refused += 1;
        self.last_refusal = Some(Instant::now());
        refusal
    }

    /// How long a new request would wait: the requests queued ahead of it
    /// and itself, each holding a slot for the average time, over the
    /// slots; `None` before any request has ended.
    fn expected_wait(&self, capacity: usize) -> Option<Duration> {
        let held = self.held.seconds?;
        let wait = (self.queued + 1) as f64 * held / capacity.max(1) as f64;
        Some(Duration::from_secs_f64(wait.min(3_600.0)))
    }

    fn retry_after(&self, capacity: usize) -> u64 {
        self.expected_wait(capacity)
            .map_or(1, |wait| wait.as_secs_f64().ceil() as u64)
            .clamp(1, 60)
    }
}

/// How long requests hold their slots: a moving average of the last few
/// dozen, which with the capacity tells how fast a queue moves.
#[derive(Debug, Default)]
struct HoldTime {
    seconds: Option<f64>,
}

impl HoldTime {
    fn record(&mut self, held: Duration) {
        let sample = held.as_secs_f64();
        self.seconds = Some(match self.seconds {
            Some(average) => average * 0.9 + sample * 0.1,
            None => sample,
        });
    }
}

/// One level's slots and its queues per address.
pub struct FairQueue {
    limits: LevelLimits,
    state: Mutex<State>,
}

impl std::fmt::Debug for FairQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FairQueue")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl FairQueue {
    pub fn new(limits: LevelLimits) -> Self {
        Self {
            limits,
            state: Mutex::new(State {
                running: 0,
                queued: 0,
                flows: HashMap::new(),
                ring: VecDeque::new(),
                by_length: BTreeSet::new(),
                held: HoldTime::default(),
                refused: 0,
                last_refusal: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change below leaves the state whole before it can panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn figures(&self) -> LevelFigures {
        let state = self.lock();
        LevelFigures {
            capacity: self.limits.capacity,
            running: state.running,
            queued: state.queued,
            refused: state.refused,
            last_refusal: state.last_refusal,
        }
    }

    pub async fn admit(self: &Arc<Self>, flow: IpAddr) -> Result<Ticket, Refusal> {
        if self.limits.capacity == 0 {
            return Ok(Ticket {
                queue: None,
                admitted: Instant::now(),
            });
        }
        let turn = {
            let mut state = self.lock();
            if state.running < self.limits.capacity && state.queued == 0 {
                state.running += 1;
                return Ok(self.ticket());
            }
            if state
                .expected_wait(self.limits.capacity)
                .is_some_and(|wait| wait > self.limits.max_wait)
            {
                let retry_after = state.retry_after(self.limits.capacity);
                return Err(state.refuse(Refusal::Busy { retry_after }));
            }
            if state.queued >= self.limits.queue_max {
                self.make_room(&mut state, flow)?;
            }
            let (tx, rx) = oneshot::channel();
            let live = match state.flows.get_mut(&flow) {
                Some(entry) => {
                    entry.waiters.push_back(tx);
                    entry.live += 1;
                    entry.live
                }
                None => {
                    state.flows.insert(
                        flow,
                        Flow {
                            waiters: VecDeque::from([tx]),
                            live: 1,
                        },
                    );
                    state.ring.push_back(flow);
                    1
                }
            };
            state.set_live(flow, live - 1, live);
            state.queued += 1;
            Waiting {
                queue: self.clone(),
                flow,
                rx: Some(rx),
            }
        };
        turn.wait(self.limits.max_wait).await
    }

    fn ticket(self: &Arc<Self>) -> Ticket {
        Ticket {
            queue: Some(self.clone()),
            admitted: Instant::now(),
        }
    }

    /// With the queues full: pushes out the newest waiter of the address
    /// with the most waiting, unless that is `flow` itself, which is then
    /// refused.
    fn make_room(&self, state: &mut State, flow: IpAddr) -> Result<(), Refusal> {
        let own = state.flows.get(&flow).map_or(0, |f| f.live);
        let longest = state.by_length.last().copied();
        let others_wait = state.by_length.len() > usize::from(own > 0);
        let retry_after = state.retry_after(self.limits.capacity);
        match longest {
            Some((length, victim)) if victim != flow && length > own + 1 => {
                let entry = state
                    .flows
                    .get_mut(&victim)
                    .expect("every address in by_length has a flow");
                while let Some(tx) = entry.waiters.pop_back() {
                    if tx.send(Turn::OverShare).is_ok() {
                        entry.live -= 1;
                        break;
                    }
                }
                let live = entry.live;
                state.set_live(victim, length, live);
                state.queued -= 1;
                let _ = state.refuse(Refusal::OverShare { retry_after });
                Ok(())
            }
            _ if others_wait => Err(state.refuse(Refusal::OverShare { retry_after })),
            _ => Err(state.refuse(Refusal::Busy { retry_after })),
        }
    }

    /// A request ended: its slot goes to the next address's oldest waiter
    /// in round-robin order, or is freed when nobody waits.
    fn release(&self, held: Duration) {
        let mut state = self.lock();
        state.held.record(held);
        Self::hand_on(&mut state);
    }

    fn hand_on(state: &mut State) {
        while let Some(ip) = state.ring.pop_front() {
            let Some(entry) = state.flows.get_mut(&ip) else {
                continue;
            };
            let mut handed = false;
            while let Some(tx) = entry.waiters.pop_front() {
                if tx.send(Turn::Run).is_ok() {
                    entry.live -= 1;
                    handed = true;
                    break;
                }
            }
            let (live, more) = (entry.live, !entry.waiters.is_empty());
            if more {
                state.ring.push_back(ip);
            } else {
                state.flows.remove(&ip);
            }
            if handed {
                state.set_live(ip, live + 1, live);
                state.queued -= 1;
                return;
            }
        }
        state.running -= 1;
    }
}

/// A request in a queue; dropped before its turn (the client went away, or
/// the wait ran out), it leaves the queue.
struct Waiting {
    queue: Arc<FairQueue>,
    flow: IpAddr,
    rx: Option<oneshot::Receiver<Turn>>,
}

impl Waiting {
    async fn wait(mut self, max_wait: Duration) -> Result<Ticket, Refusal> {
        let rx = self.rx.as_mut().expect("a waiter has its receiver");
        let turn = tokio::time::timeout(max_wait, rx).await;
        match turn {
            Ok(Ok(Turn::Run)) => {
                self.rx = None;
                Ok(self.queue.ticket())
            }
            Ok(Ok(Turn::OverShare)) => {
                self.rx = None;
                let retry_after = self.queue.lock().retry_after(self.queue.limits.capacity);
                Err(Refusal::OverShare { retry_after })
            }
            // The wait ran out (the sender is never dropped unsent).
            Ok(Err(_)) | Err(_) => {
                let queue = self.queue.clone();
                let mut state = queue.lock();
                self.leave(&mut state);
                let retry_after = state.retry_after(queue.limits.capacity);
                Err(state.refuse(Refusal::Busy { retry_after }))
            }
        }
    }

    /// Leaves the queue under the lock: a turn handed over meanwhile is
    /// passed on; otherwise the waiter stops counting.
    fn leave(&mut self, state: &mut State) {
        let Some(mut rx) = self.rx.take() else {
            return;
        };
        // Closed under the lock: no turn can be handed to it any more.
        rx.close();
        match rx.try_recv() {
            Ok(Turn::Run) => FairQueue::hand_on(state),
            Ok(Turn::OverShare) => {}
            Err(_) => {
                if let Some(entry) = state.flows.get_mut(&self.flow) {
                    let live = entry.live;
                    entry.live -= 1;
                    state.set_live(self.flow, live, live - 1);
                    state.queued -= 1;
                }
            }
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.rx.is_some() {
            let queue = self.queue.clone();
            let mut state = queue.lock();
            self.leave(&mut state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(capacity: usize, queue_max: usize, wait_ms: u64) -> Arc<FairQueue> {
        Arc::new(FairQueue::new(LevelLimits {
            capacity,
            queue_max,
            max_wait: Duration::from_millis(wait_ms),
        }))
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// Starts `admit` for `flow` and lets it reach the queue.
    async fn queued(
        q: &Arc<FairQueue>,
        flow: &str,
    ) -> tokio::task::JoinHandle<Result<Ticket, Refusal>> {
        let q = q.clone();
        let flow = ip(flow);
        let task = tokio::spawn(async move { q.admit(flow).await });
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        task
    }

    #[tokio::test(start_paused = true)]
    async fn one_address_alone_may_take_every_slot() {
        let q = queue(3, 10, 1_000);
        let tickets: Vec<_> = admit_n(&q, "10.0.0.1", 3).await;
        assert_eq!(q.figures().running, 3);
        drop(tickets);
        assert_eq!(q.figures().running, 0);
    }

    async fn admit_n(q: &Arc<FairQueue>, flow: &str, n: usize) -> Vec<Ticket> {
        let mut tickets = Vec::new();
        for _ in 0..n {
            tickets.push(q.admit(ip(flow)).await.unwrap());
        }
        tickets
    }

    #[tokio::test(start_paused = true)]
    async fn freed_slots_go_round_robin_across_waiting_addresses() {
        let q = queue(1, 100, 60_000);
        let running = q.admit(ip("10.0.0.1")).await.unwrap();
        // A flood queues five, then an honest address queues one.
        let mut flood = Vec::new();
        for _ in 0..5 {
            flood.push(queued(&q, "10.0.0.1").await);
        }
        let honest = queued(&q, "10.0.0.2").await;
        assert_eq!(q.figures().queued, 6);
        // The first freed slot goes to the flood's oldest, the next one to
        // the honest address, ahead of the flood's other four.
        drop(running);
        let first = flood.remove(0).await.unwrap().unwrap();
        assert!(!honest.is_finished());
        drop(first);
        let turn = honest.await.unwrap().unwrap();
        assert_eq!(q.figures().queued, 4);
        drop(turn);
        for waiting in flood {
            drop(waiting.await.unwrap().unwrap());
        }
        let figures = q.figures();
        assert_eq!((figures.running, figures.queued), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_pushes_out_the_longest_address_not_a_newcomer() {
        let q = queue(1, 3, 60_000);
        let _running = q.admit(ip("10.0.0.1")).await.unwrap();
        let flood: Vec<_> = [
            queued(&q, "10.0.0.1").await,
            queued(&q, "10.0.0.1").await,
            queued(&q, "10.0.0.1").await,
        ]
        .into();
        // Full: a newcomer takes the flood's newest place, which gets 429.
        let newcomer = queued(&q, "10.0.0.2").await;
        let mut flood = flood;
        let pushed_out = flood.pop().unwrap().await.unwrap();
        assert!(matches!(pushed_out, Err(Refusal::OverShare { .. })));
        assert!(!newcomer.is_finished());
        // The flood asking for more while others wait: 429 at once.
        let more = q.admit(ip("10.0.0.1")).await;
        assert!(matches!(more, Err(Refusal::OverShare { .. })));
        assert_eq!(q.figures().queued, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_of_one_address_alone_is_the_server_s_limit() {
        let q = queue(1, 2, 60_000);
        let _running = q.admit(ip("10.0.0.1")).await.unwrap();
        let _a = queued(&q, "10.0.0.1").await;
        let _b = queued(&q, "10.0.0.1").await;
        let refused = q.admit(ip("10.0.0.1")).await;
        assert!(matches!(refused, Err(Refusal::Busy { .. })), "{refused:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_that_runs_out_is_503_and_leaves_the_queue() {
        let q = queue(1, 10, 100);
        let running = q.admit(ip("10.0.0.1")).await.unwrap();
        let refused = q.admit(ip("10.0.0.2")).await;
        assert!(matches!(refused, Err(Refusal::Busy { .. })), "{refused:?}");
        assert_eq!(q.figures().queued, 0);
        assert_eq!(q.figures().refused, 1);
        // A waiter that went away is skipped: the slot is free again.
        let gone = queued(&q, "10.0.0.3").await;
        gone.abort();
        let _ = gone.await;
        assert_eq!(q.figures().queued, 0);
        drop(running);
        assert_eq!(q.figures().running, 0);
        assert!(q.admit(ip("10.0.0.4")).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_queue_longer_than_the_allowed_wait_is_refused_at_once() {
        let q = queue(1, 100, 1_000);
        // Requests hold their slot 100 ms.
        for _ in 0..10 {
            let ticket = q.admit(ip("10.0.0.1")).await.unwrap();
            tokio::time::advance(Duration::from_millis(100)).await;
            drop(ticket);
        }
        let _running = q.admit(ip("10.0.0.1")).await.unwrap();
        let mut waiting = Vec::new();
        for _ in 0..10 {
            waiting.push(queued(&q, "10.0.0.1").await);
        }
        // Ten waiting at 100 ms each: a second; the eleventh would wait
        // longer than allowed and is refused without waiting.
        let before = Instant::now();
        let refused = q.admit(ip("10.0.0.2")).await;
        assert_eq!(Instant::now(), before);
        assert!(
            matches!(refused, Err(Refusal::Busy { retry_after }) if retry_after >= 1),
            "{refused:?}"
        );
    }
}
