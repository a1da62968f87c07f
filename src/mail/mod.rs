//! Mail that reaches people. A message is queued in SQLite in the same
//! transaction as its cause ([`queue::enqueue`]), so it exists exactly
//! when its cause does; the delivery worker ([`delivery`]) renders it from
//! the templates in the account's language and, with `mail.transport =
//! "smtp"`, hands it to the SMTP server at least once, retrying with
//! backoff while the server is down and giving up (DEAD, re-sendable)
//! after `mail.max_attempts` or `mail.give_up_after_seconds`. With the
//! default `outbox` transport it is rendered and kept for admins to read.

pub mod delivery;
pub mod model;
pub mod queue;
pub mod templates;

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::dkim::{DkimConfig, DkimSigningAlgorithm, DkimSigningKey};
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use tokio::sync::Notify;

use crate::config::{MailConfig, MailTransport};
use templates::Templates;

/// The SMTP client the worker sends through.
pub type SmtpClient = AsyncSmtpTransport<Tokio1Executor>;

/// What the delivery worker sends with, built once at start.
pub struct Mailer {
    /// The messages' templates, compiled.
    pub templates: Templates,
    /// The SMTP client (pooled connections); `None` with the outbox transport.
    pub smtp: Option<SmtpClient>,
    /// The sender of every message.
    pub from: Mailbox,
    /// Signs each message when a DKIM key is configured.
    pub dkim: Option<DkimConfig>,
    /// Wakes the worker when a request has queued a message.
    wake: Notify,
}

impl Mailer {
    /// Builds the mailer from `[mail]`: compiles the templates, reads the
    /// DKIM key, and makes the SMTP client (which connects only on the
    /// first send). Fails with a one-line reason.
    pub fn new(config: &MailConfig) -> Result<Self, String> {
        let templates = Templates::load(&config.templates_dir)?;
        let from: Mailbox = config.from.parse().map_err(|e| format!("mail.from: {e}"))?;
        let smtp = match config.transport {
            MailTransport::Outbox => None,
            MailTransport::Smtp => Some(
                SmtpClient::from_url(config.smtp_url.expose())
                    .map_err(|e| format!("mail.smtp_url: {e}"))?
                    .timeout(Some(Duration::from_secs(config.send_timeout_seconds)))
                    .build(),
            ),
        };
        let dkim = if config.dkim_selector.is_empty() {
            None
        } else {
            Some(dkim_config(config, &from)?)
        };
        Ok(Self {
            templates,
            smtp,
            from,
            dkim,
            wake: Notify::new(),
        })
    }

    /// Tells the worker a message was queued (after its transaction
    /// committed), so it goes out now rather than at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Waits for [`wake`](Self::wake).
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// The domain of the sender's address, for Message-IDs and DKIM.
    pub fn domain(&self) -> &str {
        self.from.email.domain()
    }
}

/// Reads the DKIM key: an RSA key in PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`),
/// or an Ed25519 key as the base64 of its 32-byte seed.
fn dkim_config(config: &MailConfig, from: &Mailbox) -> Result<DkimConfig, String> {
    let path = &config.dkim_key_file;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("mail.dkim_key_file {}: {e}", path.display()))?;
    let algorithm = if text.contains("BEGIN RSA PRIVATE KEY") {
        DkimSigningAlgorithm::Rsa
    } else {
        DkimSigningAlgorithm::Ed25519
    };
    let key = DkimSigningKey::new(text.trim(), algorithm).map_err(|e| {
        format!(
            "mail.dkim_key_file {}: not an RSA PKCS#1 PEM key nor a base64 Ed25519 seed ({e})",
            path.display()
        )
    })?;
    Ok(DkimConfig::default_config(
        config.dkim_selector.clone(),
        from.email.domain().to_string(),
        key,
    ))
}
