//! The abuse profile's verdict: for each part, whether the server stopped
//! the abuse and kept serving the honest. Pure: figures in, checks out.

use super::flood::FloodPart;
use super::http::Refusal;
use super::limits::Limits;
use super::lockout::{LockWindow, Lockout};
use super::stuffing::Stuffing;
use crate::verdict::{Check, Status};

/// c: the honest client's p95 under the flood, at most this many times its
/// p95 without it.
pub const P95_RATIO_MAX: f64 = 3.0;
/// a: how far a lockout's end, as the client sees it, may be from the
/// configured time, besides the 50 ms between tries.
const LOCK_SLACK_S: f64 = 0.15;
/// The peak RSS the other profiles hold the server to, in MB; informative here.
const PEAK_RSS_MB: f64 = 150.0;

pub struct Inputs<'a> {
    pub limits: &'a Limits,
    pub lockout: &'a Lockout,
    pub stuffing: &'a Stuffing,
    pub flood: &'a FloodPart,
    pub peak_rss_bytes: Option<u64>,
}

pub fn judge(inputs: &Inputs<'_>) -> Vec<Check> {
    let mut checks = Vec::new();
    lockout(inputs.limits, inputs.lockout, &mut checks);
    stuffing(inputs.limits, inputs.stuffing, &mut checks);
    flood(inputs.flood, &mut checks);
    let rss_mb = inputs.peak_rss_bytes.map(|b| b as f64 / 1e6);
    checks.push(Check {
        source: "abuse",
        rule: format!("server peak RSS < {PEAK_RSS_MB} MB"),
        metric: "server.peak_rss".into(),
        observed: rss_mb,
        unit: "MB",
        status: Status::of(rss_mb.is_some_and(|mb| mb < PEAK_RSS_MB)),
        gating: false,
        note: "VmHWM of the server process at the end of the run".into(),
    });
    checks
}

fn check(part: &'static str, rule: String, metric: &str, pass: bool) -> Check {
    Check {
        source: part,
        rule,
        metric: metric.into(),
        observed: None,
        unit: "",
        status: Status::of(pass),
        gating: true,
        note: String::new(),
    }
}

fn lockout(limits: &Limits, a: &Lockout, checks: &mut Vec<Check>) {
    let free = limits.login_unfamiliar_free_failures as usize;
    let locked = a
        .guesses
        .last()
        .is_some_and(|g| g.refused_by(Refusal::AccountLocked));
    // The server counts `free` failures as free and locks on the next one,
    // which it still checks: the first refused guess is the (free + 2)th.
    // The check takes either reading of "free" and fails only an account
    // that locks earlier or later than that.
    checks.push(Check {
        observed: Some(a.checked_before_refusal as f64),
        unit: "count",
        note: format!(
            "guesses answered: {}",
            a.guesses
                .iter()
                .map(|g| g.status.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        ),
        ..check(
            "abuse a",
            format!(
                "unfamiliar addresses locked out after {free} to {} wrong guesses from as many addresses",
                free + 1
            ),
            "a.failures_before_lock",
            locked && (free..=free + 1).contains(&a.checked_before_refusal),
        )
    });
    let before = a.owner_before.as_ref();
    checks.push(Check {
        note: before.map_or("not tried".into(), |r| r.describe()),
        ..check(
            "abuse a",
            "the owner signs in from home before the attack".into(),
            "a.owner_before",
            before.is_some_and(|r| r.is(200)),
        )
    });
    let home = a.owner_while_locked.as_ref();
    checks.push(Check {
        note: home.map_or("not tried: nothing was locked".into(), |r| r.describe()),
        ..check(
            "abuse a",
            "the owner still signs in from home while other addresses are locked out".into(),
            "a.owner_while_locked",
            home.is_some_and(|r| r.is(200)),
        )
    });
    let refused = a.correct_while_locked.as_ref();
    checks.push(Check {
        note: refused.map_or("not tried: the account never locked".into(), |r| {
            r.describe()
        }),
        ..check(
            "abuse a",
            "the correct password from a new address is refused while locked".into(),
            "a.correct_while_locked",
            refused.is_some_and(|r| r.refused_by(Refusal::AccountLocked)),
        )
    });
    let window = |lock: Option<&LockWindow>, expected_status: u16, rule: String, metric| {
        let pass = lock.is_some_and(|w| {
            w.ended_on_time(LOCK_SLACK_S)
                && w.through.as_ref().is_some_and(|t| t.is(expected_status))
        });
        Check {
            observed: lock.and_then(|w| w.through_s),
            unit: "s",
            note: lock.map_or("not measured".into(), |w| {
                format!(
                    "refused until {}, through at {} ({}), {} tries",
                    seconds(w.last_refused_s),
                    seconds(w.through_s),
                    w.through.as_ref().map_or("none".into(), |t| t.describe()),
                    w.tries
                )
            }),
            ..check("abuse a", rule, metric, pass)
        }
    };
    checks.push(window(
        a.first_lock.as_ref(),
        401,
        format!(
            "the first lockout lasts {:.1} s, then a guess is checked again",
            limits.lockout(1).as_secs_f64()
        ),
        "a.first_lockout",
    ));
    checks.push(window(
        a.second_lock.as_ref(),
        200,
        format!(
            "that guess doubles it to {:.1} s, then the correct password gets in",
            limits.lockout(2).as_secs_f64()
        ),
        "a.second_lockout",
    ));
}

fn seconds(value: Option<f64>) -> String {
    value.map_or("—".into(), |s| format!("{s:.2} s"))
}

fn stuffing(limits: &Limits, b: &Stuffing, checks: &mut Vec<Check>) {
    let burst = limits.failures.burst as usize;
    // The budget refills while the attack runs; a token or two may come back.
    let refilled = (f64::from(limits.failures.per_minute) * b.seconds / 60.0).ceil() as usize;
    let throttled = b
        .refusal
        .as_ref()
        .is_some_and(|r| r.refused_by(Refusal::AddressThrottled));
    checks.push(Check {
        observed: Some(b.failures_before_refusal as f64),
        unit: "count",
        note: format!(
            "{} accounts tried in {:.2} s; then {}",
            b.tries,
            b.seconds,
            b.refusal
                .as_ref()
                .map_or("no refusal".into(), |r| r.describe())
        ),
        ..check(
            "abuse b",
            format!("one address is refused after its {burst} failures, across many accounts"),
            "b.failures_before_throttle",
            throttled && (burst..=burst + refilled).contains(&b.failures_before_refusal),
        )
    });
    let answered = |rule: &str, metric, answer: &super::http::Answer, pass: bool| Check {
        observed: Some(f64::from(answer.status)),
        unit: "status",
        note: answer.describe(),
        ..check("abuse b", rule.into(), metric, pass)
    };
    checks.push(answered(
        "the attacker's address is refused a correct password (429)",
        "b.correct_login_from_attacker",
        &b.correct_login_from_attacker,
        b.correct_login_from_attacker
            .refused_by(Refusal::AddressThrottled),
    ));
    checks.push(answered(
        "the attacker's address still reads the catalogue (200)",
        "b.catalogue_from_attacker",
        &b.catalogue_from_attacker,
        b.catalogue_from_attacker.is(200),
    ));
    checks.push(answered(
        "a demo account still signs in from another address (200)",
        "b.login_from_other_address",
        &b.login_from_other_address,
        b.login_from_other_address.is(200),
    ));
}

fn flood(c: &FloodPart, checks: &mut Vec<Check>) {
    checks.push(Check {
        observed: c.p95_ratio,
        unit: "ratio",
        note: format!(
            "p95 {:.2} ms flooded vs {:.2} ms quiet; flood {:.0} req/s, {} x 429, {} x 503",
            c.flooded.latency.p95,
            c.quiet.latency.p95,
            c.flood.per_second,
            c.flood.count(429),
            c.flood.count(503)
        ),
        ..check(
            "abuse c",
            format!(
                "honest p95 under a {}-connection flood <= {P95_RATIO_MAX} x its p95 without",
                c.flood.connections
            ),
            "c.honest_p95_ratio",
            c.p95_ratio.is_some_and(|r| r <= P95_RATIO_MAX),
        )
    });
    let failed =
        c.quiet.requests + c.flooded.requests - ok(&c.quiet.statuses) - ok(&c.flooded.statuses);
    checks.push(Check {
        observed: Some(failed as f64),
        unit: "count",
        note: format!(
            "{failed} of {} honest requests not 2xx",
            c.quiet.requests + c.flooded.requests
        ),
        ..check(
            "abuse c",
            "the honest client got only 2xx answers, with and without the flood".into(),
            "c.honest_not_2xx",
            c.quiet.all_ok() && c.flooded.all_ok(),
        )
    });
    let niced =
        !c.flood.thread_nice.is_empty() && c.flood.thread_nice.iter().all(|n| *n == Some(19));
    checks.push(Check {
        gating: false,
        note: format!("thread nice values read back: {:?}", c.flood.thread_nice),
        ..check(
            "abuse c",
            "the flood generator ran at the lowest priority (nice 19)".into(),
            "c.flood_nice",
            niced,
        )
    });
}

fn ok(statuses: &std::collections::BTreeMap<u16, usize>) -> usize {
    statuses
        .iter()
        .filter(|(s, _)| (200..300).contains(*s))
        .map(|(_, n)| n)
        .sum()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::Ipv4Addr;

    use super::super::flood::{Browsing, Flood};
    use super::super::http::Answer;
    use super::super::limits::Bucket;
    use super::*;
    use crate::figures::Latency;

    fn limits() -> Limits {
        Limits {
            login_free_failures: 5,
            login_unfamiliar_free_failures: 20,
            login_lockout_base_ms: 1000,
            login_lockout_max_seconds: 900,
            failures: Bucket {
                per_minute: 10,
                burst: 30,
            },
        }
    }

    fn answer(status: u16, refusal: Option<Refusal>) -> Answer {
        Answer {
            status,
            refusal,
            retry_after: None,
            code: None,
            ms: 1.0,
        }
    }

    fn window(expected_s: f64, through: u16) -> LockWindow {
        LockWindow {
            expected_s,
            tries: 20,
            last_refused_s: Some(expected_s - 0.02),
            through_s: Some(expected_s + 0.03),
            through: Some(answer(through, None)),
        }
    }

    fn lockout(checked: usize) -> Lockout {
        let mut guesses = vec![answer(401, None); checked];
        guesses.push(answer(429, Some(Refusal::AccountLocked)));
        Lockout {
            account: "a@x".into(),
            guesses,
            checked_before_refusal: checked,
            owner_before: Some(answer(200, None)),
            correct_while_locked: Some(answer(429, Some(Refusal::AccountLocked))),
            owner_while_locked: Some(answer(200, None)),
            first_lock: Some(window(1.0, 401)),
            second_lock: Some(window(2.0, 200)),
            addresses: 70,
        }
    }

    fn stuffing(failures: usize) -> Stuffing {
        Stuffing {
            attacker: Ipv4Addr::new(127, 20, 0, 1),
            tries: failures + 1,
            failures_before_refusal: failures,
            refusal: Some(answer(429, Some(Refusal::AddressThrottled))),
            seconds: 0.8,
            correct_login_from_attacker: answer(429, Some(Refusal::AddressThrottled)),
            catalogue_from_attacker: answer(200, None),
            other_address: Ipv4Addr::new(127, 20, 0, 2),
            login_from_other_address: answer(200, None),
        }
    }

    fn browsing(p95: f64, statuses: &[(u16, usize)]) -> Browsing {
        Browsing {
            requests: statuses.iter().map(|(_, n)| n).sum(),
            latency: Latency {
                p95,
                ..Latency::default()
            },
            statuses: statuses.iter().copied().collect(),
            no_answer: 0,
            seconds: 30.0,
        }
    }

    fn flood(quiet_p95: f64, flooded_p95: f64, flooded: &[(u16, usize)]) -> FloodPart {
        FloodPart {
            honest_address: Ipv4Addr::new(127, 30, 0, 2),
            flood_address: Ipv4Addr::new(127, 30, 0, 1),
            think_ms: 100,
            quiet: browsing(quiet_p95, &[(200, 300)]),
            flooded: browsing(flooded_p95, flooded),
            flood: Flood {
                connections: 64,
                thread_nice: vec![Some(19), Some(19)],
                seconds: 33.0,
                requests: 900_000,
                per_second: 27_000.0,
                statuses: BTreeMap::from([(200, 900_000)]),
                no_answer: 0,
            },
            p95_ratio: Some(flooded_p95 / quiet_p95),
            rounds: 3,
            cpu_quiet: None,
            cpu_flooded: None,
        }
    }

    fn verdicts(a: &Lockout, b: &Stuffing, c: &FloodPart) -> Vec<(String, Status)> {
        judge(&Inputs {
            limits: &limits(),
            lockout: a,
            stuffing: b,
            flood: c,
            peak_rss_bytes: Some(80_000_000),
        })
        .into_iter()
        .map(|c| (c.metric, c.status))
        .collect()
    }

    fn status_of(verdicts: &[(String, Status)], metric: &str) -> Status {
        verdicts
            .iter()
            .find(|(m, _)| m == metric)
            .map(|(_, s)| *s)
            .expect("the check exists")
    }

    #[test]
    fn a_server_that_stops_every_abuse_passes_every_check() {
        let verdicts = verdicts(&lockout(21), &stuffing(30), &flood(1.0, 1.4, &[(200, 300)]));
        assert!(
            verdicts.iter().all(|(_, s)| *s == Status::Pass),
            "{verdicts:?}"
        );
    }

    #[test]
    fn an_account_locked_too_late_or_never_fails_part_a() {
        let late = verdicts(&lockout(23), &stuffing(30), &flood(1.0, 1.0, &[(200, 300)]));
        assert_eq!(status_of(&late, "a.failures_before_lock"), Status::Fail);
        let mut never = lockout(30);
        never.guesses.pop();
        let never = verdicts(&never, &stuffing(30), &flood(1.0, 1.0, &[(200, 300)]));
        assert_eq!(status_of(&never, "a.failures_before_lock"), Status::Fail);
    }

    #[test]
    fn a_correct_password_let_in_while_locked_fails_part_a() {
        let mut a = lockout(21);
        a.correct_while_locked = Some(answer(200, None));
        let verdicts = verdicts(&a, &stuffing(30), &flood(1.0, 1.0, &[(200, 300)]));
        assert_eq!(status_of(&verdicts, "a.correct_while_locked"), Status::Fail);
    }

    #[test]
    fn an_owner_locked_out_of_home_fails_part_a() {
        let mut a = lockout(21);
        a.owner_while_locked = Some(answer(429, Some(Refusal::AccountLocked)));
        let verdicts = verdicts(&a, &stuffing(30), &flood(1.0, 1.0, &[(200, 300)]));
        assert_eq!(status_of(&verdicts, "a.owner_while_locked"), Status::Fail);
    }

    #[test]
    fn an_address_throttled_late_or_locking_out_others_fails_part_b() {
        let late = verdicts(&lockout(21), &stuffing(45), &flood(1.0, 1.0, &[(200, 300)]));
        assert_eq!(status_of(&late, "b.failures_before_throttle"), Status::Fail);
        let mut collateral = stuffing(30);
        collateral.login_from_other_address = answer(429, Some(Refusal::AddressThrottled));
        let collateral = verdicts(&lockout(21), &collateral, &flood(1.0, 1.0, &[(200, 300)]));
        assert_eq!(
            status_of(&collateral, "b.login_from_other_address"),
            Status::Fail
        );
    }

    #[test]
    fn a_slowed_or_refused_honest_client_fails_part_c() {
        let slow = verdicts(&lockout(21), &stuffing(30), &flood(1.0, 3.5, &[(200, 300)]));
        assert_eq!(status_of(&slow, "c.honest_p95_ratio"), Status::Fail);
        let refused = verdicts(
            &lockout(21),
            &stuffing(30),
            &flood(1.0, 1.0, &[(200, 299), (429, 1)]),
        );
        assert_eq!(status_of(&refused, "c.honest_not_2xx"), Status::Fail);
    }
}
