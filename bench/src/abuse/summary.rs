//! The abuse run's text summary: what each part did and saw, then the checks.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::AbuseRun;
use super::cpu::CoresBusy;
use super::flood::Browsing;
use super::lockout::LockWindow;
use crate::report::{dotted, latency_line, megabytes, thresholds};

pub fn text(run: &AbuseRun) -> String {
    let mut out = String::new();
    let w = &mut out;
    let limits = &run.limits;
    let _ = writeln!(
        w,
        "WeMaster bench · profile abuse · shipped rate limits · {} cores · {}",
        run.cores, run.started_utc
    );
    let _ = writeln!(w, "command: {}", run.command);
    let _ = writeln!(
        w,
        "clients: each part from loopback addresses of its own (a 127.10.x.y, b 127.20.x.y, c 127.30.x.y), no X-Forwarded-For"
    );
    let _ = writeln!(
        w,
        "server: {} (ready in {:.1} s, RSS then {}), peak RSS over the run {}",
        run.server_binary,
        run.server_ready_seconds,
        megabytes(run.server_rss_at_ready),
        megabytes(run.peak_rss_bytes)
    );
    let _ = writeln!(
        w,
        "limits: {} free failed logins per account and address, {} per account from unfamiliar \
         addresses, then a lockout of {} ms doubling up to {} s; per address {} failures at once, \
         {} more a minute",
        limits.login_free_failures,
        limits.login_unfamiliar_free_failures,
        limits.login_lockout_base_ms,
        limits.login_lockout_max_seconds,
        limits.failures.burst,
        limits.failures.per_minute
    );

    let a = &run.lockout;
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "█ a: password guessing on {} from many addresses ({} addresses, one per request)",
        a.account, a.addresses
    );
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "  {} {}",
        dotted("wrong guesses answered"),
        a.guesses
            .iter()
            .map(|g| g.status.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let _ = writeln!(
        w,
        "  {} {} checked (401), then {}",
        dotted("until refused"),
        a.checked_before_refusal,
        a.guesses.last().map_or("nothing".into(), |g| g.describe())
    );
    for (what, answer) in [
        ("owner from home, before", &a.owner_before),
        ("correct password while locked", &a.correct_while_locked),
        ("owner from home while locked", &a.owner_while_locked),
    ] {
        let _ = writeln!(
            w,
            "  {} {}",
            dotted(what),
            answer.as_ref().map_or("not tried".into(), |c| c.describe())
        );
    }
    lock_line(w, "first lockout, wrong guesses", a.first_lock.as_ref());
    lock_line(w, "second lockout, right password", a.second_lock.as_ref());

    let b = &run.stuffing;
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "█ b: credential stuffing from {} across many accounts (made-up emails)",
        b.attacker
    );
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "  {} {} failures over {} accounts in {:.2} s, then {}",
        dotted("until refused"),
        b.failures_before_refusal,
        b.tries,
        b.seconds,
        b.refusal
            .as_ref()
            .map_or("nothing".into(), |r| r.describe())
    );
    let _ = writeln!(
        w,
        "  {} {}",
        dotted("its correct-password login"),
        b.correct_login_from_attacker.describe()
    );
    let _ = writeln!(
        w,
        "  {} {}",
        dotted("its GET /api/v1/offerings"),
        b.catalogue_from_attacker.describe()
    );
    let _ = writeln!(
        w,
        "  {} {}",
        dotted(&format!("demo login from {}", b.other_address)),
        b.login_from_other_address.describe()
    );

    let c = &run.flood;
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "█ c: {} connections from {} hammering GET /api/v1/offerings, no think time, generator at nice 19; \
         honest client on {}: list or detail, {} ms after each answer; alone and flooded in turn, {} rounds",
        c.flood.connections, c.flood_address, c.honest_address, c.think_ms, c.rounds
    );
    let _ = writeln!(w);
    browsing_lines(w, "honest, no flood", &c.quiet);
    browsing_lines(w, "honest, under the flood", &c.flooded);
    let _ = writeln!(
        w,
        "  {} {}",
        dotted("p95 under the flood / without"),
        c.p95_ratio.map_or("—".into(), |r| format!(
            "{r:.2} (target <= {})",
            super::judge::P95_RATIO_MAX
        ))
    );
    let _ = writeln!(
        w,
        "  {} {} requests in {:.1} s = {:.0} req/s; {}; no answer {}",
        dotted("flood"),
        c.flood.requests,
        c.flood.seconds,
        c.flood.per_second,
        statuses(&c.flood.statuses),
        c.flood.no_answer
    );
    let _ = writeln!(
        w,
        "  {} {} x 429, {} x 503",
        dotted("flood refused"),
        c.flood.count(429),
        c.flood.count(503)
    );
    let _ = writeln!(
        w,
        "  {} {} alone; {} under the flood (of {} cores)",
        dotted("cores busy"),
        cores(c.cpu_quiet.as_ref()),
        cores(c.cpu_flooded.as_ref()),
        run.cores
    );
    let _ = writeln!(
        w,
        "  {} {}",
        dotted("flood threads' nice"),
        c.flood
            .thread_nice
            .iter()
            .map(|n| n.map_or("?".into(), |n| n.to_string()))
            .collect::<Vec<_>>()
            .join(" ")
    );

    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "server RSS after a / b / c: {} / {} / {}; peak (VmHWM) {}",
        megabytes(run.rss_after[0]),
        megabytes(run.rss_after[1]),
        megabytes(run.rss_after[2]),
        megabytes(run.peak_rss_bytes)
    );
    let _ = writeln!(w);
    out.push_str(&thresholds(&run.checks));
    out
}

fn lock_line(w: &mut String, label: &str, lock: Option<&LockWindow>) {
    let line = lock.map_or("not measured".into(), |l| {
        format!(
            "expected {:.1} s; refused until {}, through at {} with {} ({} tries, 50 ms apart, timed from the locking answer)",
            l.expected_s,
            l.last_refused_s.map_or("—".into(), |s| format!("{s:.2} s")),
            l.through_s.map_or("—".into(), |s| format!("{s:.2} s")),
            l.through.as_ref().map_or("nothing".into(), |t| t.describe()),
            l.tries
        )
    });
    let _ = writeln!(w, "  {} {line}", dotted(label));
}

fn browsing_lines(w: &mut String, label: &str, b: &Browsing) {
    let _ = writeln!(
        w,
        "  {} {} requests in {:.1} s; {}; no answer {}",
        dotted(label),
        b.requests,
        b.seconds,
        statuses(&b.statuses),
        b.no_answer
    );
    let _ = writeln!(w, "  {} {}", dotted(""), latency_line(&b.latency));
}

fn cores(busy: Option<&CoresBusy>) -> String {
    busy.map_or("unknown".into(), |b| {
        format!(
            "server {:.2}, bench {:.2}, other processes {:.2}",
            b.server, b.bench, b.others
        )
    })
}

fn statuses(statuses: &BTreeMap<u16, usize>) -> String {
    statuses
        .iter()
        .map(|(code, count)| format!("{code}x{count}"))
        .collect::<Vec<_>>()
        .join(" ")
}
