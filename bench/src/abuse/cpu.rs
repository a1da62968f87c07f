//! Who kept the cores busy while the honest client browsed: the server, the
//! bench (the flood, mostly) and everything else on this shared machine,
//! from the kernel's counters in /proc.

use std::time::Instant;

use serde::Serialize;

/// USER_HZ, the unit of /proc's CPU times: 100 on every Linux this runs on.
const TICKS_PER_SECOND: f64 = 100.0;

/// Cores busy on average over some windows (CPU seconds per second).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CoresBusy {
    pub server: f64,
    pub bench: f64,
    /// Every other process on the machine (a compiler, another test...).
    pub others: f64,
}

/// CPU seconds used so far, at one instant.
struct Snapshot {
    at: Instant,
    server: f64,
    bench: f64,
    machine: f64,
}

impl Snapshot {
    fn take(server_pid: u32) -> Option<Snapshot> {
        let process = |pid: String| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            process_ticks(&stat)
        };
        let machine = machine_busy_ticks(&std::fs::read_to_string("/proc/stat").ok()?)?;
        Some(Snapshot {
            at: Instant::now(),
            server: process(server_pid.to_string())? as f64 / TICKS_PER_SECOND,
            bench: process("self".into())? as f64 / TICKS_PER_SECOND,
            machine: machine as f64 / TICKS_PER_SECOND,
        })
    }
}

/// CPU seconds and wall seconds summed over the windows measured.
#[derive(Default)]
pub struct Windows {
    wall: f64,
    server: f64,
    bench: f64,
    machine: f64,
    /// Whether a counter could not be read; then there is no figure.
    unreadable: bool,
}

impl Windows {
    /// Runs `work`, adding its window.
    pub async fn measure<T>(&mut self, server_pid: u32, work: impl Future<Output = T>) -> T {
        let start = Snapshot::take(server_pid);
        let out = work.await;
        match (start, Snapshot::take(server_pid)) {
            (Some(start), Some(end)) => {
                self.wall += end.at.duration_since(start.at).as_secs_f64();
                self.server += end.server - start.server;
                self.bench += end.bench - start.bench;
                self.machine += end.machine - start.machine;
            }
            _ => self.unreadable = true,
        }
        out
    }

    pub fn cores(&self) -> Option<CoresBusy> {
        if self.unreadable || self.wall <= 0.0 {
            return None;
        }
        Some(CoresBusy {
            server: self.server / self.wall,
            bench: self.bench / self.wall,
            others: ((self.machine - self.server - self.bench) / self.wall).max(0.0),
        })
    }
}

/// utime + stime of a /proc/<pid>/stat line (fields 14 and 15), counted
/// after the command name's closing parenthesis, since the name may hold
/// spaces and parentheses.
fn process_ticks(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// The busy ticks of all CPUs, from /proc/stat's first line: everything but
/// idle and iowait (guest time is already counted in user).
fn machine_busy_ticks(proc_stat: &str) -> Option<u64> {
    let line = proc_stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .map(|t| t.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    let busy = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| ticks.get(i))
        .sum();
    (ticks.len() >= 8).then_some(busy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_ticks_are_user_plus_system() {
        let stat = "4242 (wemaster (x)) S 1 4242 4242 0 -1 4194368 100 0 0 0 250 70 0 0 20 0 \
                    4 0 12345 1000000 200";
        assert_eq!(process_ticks(stat), Some(320));
        assert_eq!(process_ticks("4242 (x) S 1"), None);
    }

    #[test]
    fn machine_busy_ticks_leave_out_idle_and_iowait() {
        let stat = "cpu  100 20 30 1000 50 5 6 7 0 0\ncpu0 50 10 15 500 25 2 3 3 0 0\n";
        assert_eq!(machine_busy_ticks(stat), Some(100 + 20 + 30 + 5 + 6 + 7));
        assert_eq!(machine_busy_ticks("intr 1 2 3"), None);
    }
}
