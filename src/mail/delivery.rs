//! The delivery worker: takes due messages from the queue, renders them,
//! and sends them (or, with the outbox transport, keeps them). It runs
//! beside the server, never on a request's path: a request only inserts a
//! row and wakes it.
//!
//! At least once: a message is marked SENT after the SMTP server accepted
//! it, so a crash between the two sends it again after the restart (each
//! time with the same Message-ID, by which receiving servers and clients
//! recognise a repeat). A failed attempt (server down, a 4xx answer, a
//! timeout) is tried again after `retry_base_seconds`, doubling up to
//! `retry_max_seconds`, each wait drawn between its half and its whole so
//! that a backlog does not retry in lockstep; a 5xx answer (the address
//! does not exist) gives up at once.

use std::time::Duration;

use futures_util::StreamExt;
use lettre::AsyncTransport;
use lettre::message::{Mailbox, Message, MultiPart};
use rand::Rng;

use super::model::{MailKind, MailStatus};
use super::queue::{self, Due};
use super::templates::Rendered;
use crate::state::AppState;

/// How often the queue is looked at when nobody wakes the worker: retries
/// fall due on their own.
const POLL: Duration = Duration::from_secs(1);
/// Messages taken from the queue per look.
const BATCH: usize = 64;
/// How often old messages are deleted (`mail.keep_days`), and how many
/// per write transaction.
const PRUNE_EVERY: Duration = Duration::from_secs(3_600);
const PRUNE_BATCH: usize = 1_000;

/// Runs for as long as the server serves.
pub async fn deliver(state: AppState) {
    let mut pruned: Option<std::time::Instant> = None;
    loop {
        if pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            prune(&state).await;
            pruned = Some(std::time::Instant::now());
        }
        drain(&state).await;
        tokio::select! {
            () = state.mail.woken() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Deletes finished messages older than `mail.keep_days`, a batch per
/// transaction.
async fn prune(state: &AppState) {
    let days = state.config.mail.keep_days;
    if days == 0 {
        return;
    }
    let before = state.clock.stamp_ago(Duration::from_secs(days * 86_400));
    let mut deleted = 0;
    loop {
        let before = before.clone();
        match state
            .db
            .write(move |conn| Ok(queue::prune(conn, &before, PRUNE_BATCH)?))
            .await
        {
            Ok(n) => {
                deleted += n;
                if n < PRUNE_BATCH {
                    break;
                }
            }
            Err(e) => {
                tracing::error!(error = %e.detail(), "cannot delete old mail");
                break;
            }
        }
    }
    if deleted > 0 {
        tracing::info!(deleted, days, "old mail deleted (mail.keep_days)");
    }
}

/// Attempts every message due now, `mail.concurrency` at a time.
async fn drain(state: &AppState) {
    loop {
        let now = state.clock.stamp();
        let batch = match state
            .db
            .read(move |conn| Ok(queue::due(conn, &now, BATCH)?))
            .await
        {
            Ok(batch) => batch,
            Err(e) => {
                tracing::error!(error = %e.detail(), "cannot read the mail queue");
                return;
            }
        };
        let full = batch.len() == BATCH;
        futures_util::stream::iter(batch)
            .for_each_concurrent(state.config.mail.concurrency, |due| attempt(state, due))
            .await;
        if !full {
            return;
        }
    }
}

/// What became of one attempt.
enum Outcome {
    Done(MailStatus, Rendered),
    /// Failed; `permanent` when trying again cannot help.
    Failed {
        error: String,
        permanent: bool,
    },
}

async fn attempt(state: &AppState, due: Due) {
    let kind = MailKind::parse(&due.kind);
    let kind_label = kind.map_or("UNKNOWN", MailKind::as_str);
    let outcome = match kind {
        None => Outcome::Failed {
            error: format!("unknown kind {}", due.kind),
            permanent: true,
        },
        Some(kind) => send(state, &due, kind).await,
    };
    let id = due.id.clone();
    let now = state.clock.stamp();
    let (result, label) = match outcome {
        Outcome::Done(status, rendered) => {
            if status == MailStatus::Kept {
                tracing::info!(
                    recipient = %due.recipient,
                    "{} mail kept in the outbox (GET {})",
                    kind.map_or("unknown", MailKind::describe),
                    crate::api_base::api_path("/admin/outbox")
                );
            }
            // A sent link's data is not kept (`send` dropped the link from
            // the text); the outbox transport's copy is the only one, so it
            // stays readable there.
            let secret = status == MailStatus::Sent && kind.is_some_and(MailKind::carries_secret);
            let result = state
                .db
                .write(move |conn| {
                    let done = queue::Finished {
                        status,
                        subject: &rendered.subject,
                        body: &rendered.text,
                        forget_data: secret,
                    };
                    Ok(queue::finish(conn, &id, &done, &now)?)
                })
                .await;
            (result, status.as_str())
        }
        Outcome::Failed { error, permanent } => {
            let retry_at = (!permanent).then(|| retry_at(state, &due)).flatten();
            let label = if retry_at.is_some() { "FAILED" } else { "DEAD" };
            if retry_at.is_some() {
                tracing::warn!(id = %due.id, kind = kind_label, attempts = due.attempts + 1, error = %error, "mail not sent; will try again");
            } else {
                tracing::error!(id = %due.id, kind = kind_label, attempts = due.attempts + 1, error = %error, "mail given up (DEAD); an admin may re-send it");
            }
            let result = state
                .db
                .write(move |conn| Ok(queue::failed(conn, &id, &error, retry_at.as_deref())?))
                .await;
            (result, label)
        }
    };
    match result {
        Ok(_) => crate::metrics::mail_outcome(kind_label, label),
        // Left QUEUED: the next look tries again (at least once).
        Err(e) => {
            tracing::error!(id = %due.id, error = %e.detail(), "cannot record a mail attempt")
        }
    }
}

/// Renders the message and sends it, or keeps it with the outbox transport.
async fn send(state: &AppState, due: &Due, kind: MailKind) -> Outcome {
    let data = serde_json::from_str(&due.data).unwrap_or(serde_json::Value::Null);
    let rendered = match state.mail.templates.render(kind, due.locale, &data) {
        Ok(rendered) => rendered,
        // A broken override template: fixed by its owner, then sent.
        Err(error) => {
            return Outcome::Failed {
                error,
                permanent: false,
            };
        }
    };
    let Some(smtp) = &state.mail.smtp else {
        return Outcome::Done(MailStatus::Kept, rendered);
    };
    let message = match compose(state, due, &rendered) {
        Ok(message) => message,
        Err(error) => {
            return Outcome::Failed {
                error,
                permanent: true,
            };
        }
    };
    match smtp.send(message).await {
        Ok(_) => {
            let mut kept = rendered;
            if kind.carries_secret() {
                kept.text = without_link(&kept.text, &data);
            }
            Outcome::Done(MailStatus::Sent, kept)
        }
        Err(e) => Outcome::Failed {
            error: e.to_string(),
            permanent: e.is_permanent(),
        },
    }
}

/// The MIME message: plain text and HTML alternatives, the same
/// Message-ID at every attempt, DKIM-signed when configured. lettre
/// encodes every header, so no value can start another.
fn compose(state: &AppState, due: &Due, rendered: &Rendered) -> Result<Message, String> {
    let to: Mailbox = due
        .recipient
        .parse()
        .map_err(|e| format!("recipient {}: {e}", due.recipient))?;
    let mut message = Message::builder()
        .from(state.mail.from.clone())
        .to(to)
        .subject(rendered.subject.clone())
        .message_id(Some(format!("<{}@{}>", due.id, state.mail.domain())))
        .multipart(MultiPart::alternative_plain_html(
            rendered.text.clone(),
            rendered.html.clone(),
        ))
        .map_err(|e| e.to_string())?;
    if let Some(dkim) = &state.mail.dkim {
        message.sign(dkim);
    }
    Ok(message)
}

/// The text without the message's link (`data.link`), which carries the
/// token, whatever shape `auth.reset_link` or `auth.verify_link` gives it.
fn without_link(text: &str, data: &serde_json::Value) -> String {
    match data["link"].as_str() {
        Some(link) if !link.is_empty() => text.replace(link, "(link sent; not kept)"),
        _ => text.to_string(),
    }
}

/// When to try again, or `None` when the message is to be given up: too
/// many attempts, or queued too long ago.
fn retry_at(state: &AppState, due: &Due) -> Option<String> {
    let config = &state.config.mail;
    let attempts = due.attempts + 1;
    if attempts >= config.max_attempts {
        return None;
    }
    let queued = crate::clock::parse(&due.queued_at)?;
    let age = state.clock.now() - queued;
    if age.whole_seconds() >= config.give_up_after_seconds as i64 {
        return None;
    }
    let wait = backoff(
        config.retry_base_seconds,
        config.retry_max_seconds,
        attempts,
        &mut rand::rng(),
    );
    Some(state.clock.stamp_in(wait))
}

/// The wait after the `attempts`th failure: `base` doubled per earlier
/// failure, capped at `max`, drawn between its half and its whole
/// ("equal jitter"). The queue's state is the attempt count in each row,
/// so the wait is computed from it rather than by an in-memory retry loop.
fn backoff(base: u64, max: u64, attempts: u32, rng: &mut impl Rng) -> Duration {
    let doubled = base.saturating_mul(1u64 << attempts.saturating_sub(1).min(32));
    let ms = doubled.min(max).saturating_mul(1_000);
    Duration::from_millis(rng.random_range(ms / 2..=ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_is_dropped_and_the_rest_kept() {
        let data = serde_json::json!({"link": "https://app.example/reset/abc-DEF_123"});
        let text = "Open https://app.example/reset/abc-DEF_123\nThe link works once.";
        assert_eq!(
            without_link(text, &data),
            "Open (link sent; not kept)\nThe link works once."
        );
        assert_eq!(without_link("no link", &serde_json::json!({})), "no link");
    }

    #[test]
    fn waits_double_from_the_base_up_to_the_cap_each_between_half_and_whole() {
        let mut rng = rand::rng();
        for (attempts, whole) in [
            (1, 30),
            (2, 60),
            (3, 120),
            (7, 1_920),
            (8, 3_600),
            (40, 3_600),
        ] {
            for _ in 0..50 {
                let wait = backoff(30, 3_600, attempts, &mut rng).as_millis() as u64;
                assert!(
                    (whole * 500..=whole * 1_000).contains(&wait),
                    "attempt {attempts}: {wait} ms"
                );
            }
        }
    }
}
