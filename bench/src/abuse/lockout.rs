//! Part a: password guessing on one account from many addresses. Every
//! guess comes from a fresh loopback address, so no per-address budget or
//! per-address lockout ever runs out: only the lockout of the addresses the
//! account never signed in from (summed over them) can stop it.
//!
//! The owner first signs in from a home address. The attacker guesses until
//! the server refuses; then the correct password is tried from a new
//! address (it must be refused too, or the lock would tell the attacker
//! nothing) and from the owner's home (it must get in: guesses from
//! elsewhere cannot lock the owner out); then the first lockout is waited
//! out with further wrong guesses, one every 50 ms, until one is checked
//! again, which locks for twice as long; that second lockout is waited out
//! with the correct password from new addresses, until it gets in.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use super::http::{Addresses, Answer, Refusal, login_from};
use super::limits::Limits;

/// The account under attack: a demo account no other part uses.
pub const ACCOUNT: &str = "student1@test.com";
const PASSWORD: &str = "password123";
const WRONG: &str = "password124";
/// The second octet of this part's addresses: 127.10.x.y.
const BLOCK: u8 = 10;
/// Wrong guesses sent past the expected lock while waiting for the first
/// refusal.
const EXTRA_GUESSES: usize = 10;
/// How often a locked account is tried while the lock is waited out.
const PROBE_EVERY: Duration = Duration::from_millis(50);

#[derive(Debug, Serialize)]
pub struct Lockout {
    pub account: String,
    /// The wrong guesses until the first refusal, in order.
    pub guesses: Vec<Answer>,
    /// How many of them the server checked (401) before refusing one.
    pub checked_before_refusal: usize,
    /// The owner's sign-in from home before the attack.
    pub owner_before: Option<Answer>,
    /// The correct password from a new address, right after the first refusal.
    pub correct_while_locked: Option<Answer>,
    /// The correct password from the owner's home, right after that.
    pub owner_while_locked: Option<Answer>,
    /// The first lockout, waited out with wrong guesses.
    pub first_lock: Option<LockWindow>,
    /// The lockout the first guess after it caused, waited out with the
    /// correct password.
    pub second_lock: Option<LockWindow>,
    /// Source addresses used, one per request.
    pub addresses: usize,
}

/// A lockout as the client saw it, timed from the answer to the failure that
/// caused it (the server locks just before it sends that answer).
#[derive(Debug, Clone, Serialize)]
pub struct LockWindow {
    /// The lockout the limits say this is, in seconds.
    pub expected_s: f64,
    /// Tries sent while waiting, each from its own address.
    pub tries: usize,
    /// When the last refused try was sent, in seconds.
    pub last_refused_s: Option<f64>,
    /// When the first try that got through was sent, in seconds.
    pub through_s: Option<f64>,
    /// That try's answer.
    pub through: Option<Answer>,
}

impl LockWindow {
    /// Whether the lock ended when expected: tries were refused until at
    /// least `expected - slack` and got through by `expected + slack`
    /// (slack covers the 50 ms between tries and scheduling).
    pub fn ended_on_time(&self, slack: f64) -> bool {
        let Some(through) = self.through_s else {
            return false;
        };
        let refused_until = self.last_refused_s.unwrap_or(0.0);
        refused_until >= self.expected_s - slack - PROBE_EVERY.as_secs_f64()
            && through <= self.expected_s + slack + PROBE_EVERY.as_secs_f64()
    }
}

pub async fn run(base_url: &str, limits: &Limits) -> Result<Lockout> {
    let mut addresses = Addresses::new(BLOCK);
    let home = addresses.next();
    let owner_before = Some(login_from(home, base_url, ACCOUNT, PASSWORD).await?);
    let mut guesses = Vec::new();
    let mut last_checked = None;
    for _ in 0..limits.login_unfamiliar_free_failures as usize + EXTRA_GUESSES {
        let answer = login_from(addresses.next(), base_url, ACCOUNT, WRONG).await?;
        if answer.is(401) {
            last_checked = Some(Instant::now());
        }
        let refused = answer.is(429);
        guesses.push(answer);
        if refused {
            break;
        }
    }
    let checked_before_refusal = guesses.iter().filter(|a| a.is(401)).count();
    let mut lockout = Lockout {
        account: ACCOUNT.into(),
        guesses,
        checked_before_refusal,
        owner_before,
        correct_while_locked: None,
        owner_while_locked: None,
        first_lock: None,
        second_lock: None,
        addresses: 0,
    };
    let locked = lockout
        .guesses
        .last()
        .is_some_and(|a| a.refused_by(Refusal::AccountLocked));
    if let (true, Some(locked_at)) = (locked, last_checked) {
        lockout.correct_while_locked =
            Some(login_from(addresses.next(), base_url, ACCOUNT, PASSWORD).await?);
        lockout.owner_while_locked = Some(login_from(home, base_url, ACCOUNT, PASSWORD).await?);
        let (first, relocked_at) = wait_out(
            &mut addresses,
            base_url,
            WRONG,
            locked_at,
            limits.lockout(1),
        )
        .await?;
        let relocked = first.through.as_ref().is_some_and(|a| a.is(401));
        lockout.first_lock = Some(first);
        if relocked {
            let (second, _) = wait_out(
                &mut addresses,
                base_url,
                PASSWORD,
                relocked_at,
                limits.lockout(2),
            )
            .await?;
            lockout.second_lock = Some(second);
        }
    }
    lockout.addresses = addresses.used();
    Ok(lockout)
}

/// Tries `password` every [`PROBE_EVERY`], each time from a new address,
/// until the account no longer refuses it or twice the expected lockout and
/// 5 s have passed. Returns the window and when the last answer came.
async fn wait_out(
    addresses: &mut Addresses,
    base_url: &str,
    password: &str,
    locked_at: Instant,
    expected: Duration,
) -> Result<(LockWindow, Instant)> {
    let give_up = expected * 2 + Duration::from_secs(5);
    let mut window = LockWindow {
        expected_s: expected.as_secs_f64(),
        tries: 0,
        last_refused_s: None,
        through_s: None,
        through: None,
    };
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        let sent = locked_at.elapsed();
        let answer = login_from(addresses.next(), base_url, ACCOUNT, password).await?;
        let answered = Instant::now();
        window.tries += 1;
        if !answer.refused_by(Refusal::AccountLocked) {
            window.through_s = Some(sent.as_secs_f64());
            window.through = Some(answer);
            return Ok((window, answered));
        }
        window.last_refused_s = Some(sent.as_secs_f64());
        if sent > give_up {
            return Ok((window, answered));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(last_refused_s: Option<f64>, through_s: Option<f64>) -> LockWindow {
        LockWindow {
            expected_s: 1.0,
            tries: 20,
            last_refused_s,
            through_s,
            through: None,
        }
    }

    #[test]
    fn a_lock_that_ends_at_its_time_is_on_time() {
        assert!(window(Some(0.98), Some(1.03)).ended_on_time(0.1));
    }

    #[test]
    fn a_lock_that_ends_early_or_late_or_never_is_not() {
        assert!(!window(None, Some(0.05)).ended_on_time(0.1), "no lock");
        assert!(!window(Some(0.4), Some(0.45)).ended_on_time(0.1), "early");
        assert!(!window(Some(2.0), Some(2.05)).ended_on_time(0.1), "late");
        assert!(!window(Some(7.0), None).ended_on_time(0.1), "never");
    }
}
