//! What a message is: its kind, its language, its state in the queue, and
//! the outbox view of it.

use poem_openapi::types::Example;
use poem_openapi::{Enum, Object};

/// What a message is for; names its templates (`password_reset.txt`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MailKind {
    /// A link to choose a new password.
    PasswordReset,
    /// A link that proves the address is the account holder's.
    VerifyEmail,
    /// To the student: what they bought and paid.
    Receipt,
    /// To the tutor: what of theirs was sold.
    SaleNotice,
    /// To the student: money that went back.
    RefundNotice,
}

impl MailKind {
    pub const ALL: [MailKind; 5] = [
        MailKind::PasswordReset,
        MailKind::VerifyEmail,
        MailKind::Receipt,
        MailKind::SaleNotice,
        MailKind::RefundNotice,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::PasswordReset => "PASSWORD_RESET",
            MailKind::VerifyEmail => "VERIFY_EMAIL",
            MailKind::Receipt => "RECEIPT",
            MailKind::SaleNotice => "SALE_NOTICE",
            MailKind::RefundNotice => "REFUND_NOTICE",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// Whether the message carries a secret (a link with a token that
    /// takes the account over or verifies it): once sent, the copy kept
    /// has the link dropped, so the database, its backups and replicas
    /// and the admin outbox hold no live token.
    pub fn carries_secret(self) -> bool {
        matches!(self, MailKind::PasswordReset | MailKind::VerifyEmail)
    }

    /// What the log calls it.
    pub fn describe(self) -> &'static str {
        match self {
            MailKind::PasswordReset => "password reset",
            MailKind::VerifyEmail => "email verification",
            MailKind::Receipt => "receipt",
            MailKind::SaleNotice => "sale notice",
            MailKind::RefundNotice => "refund notice",
        }
    }

    /// The templates' file stem.
    pub fn template(self) -> &'static str {
        match self {
            MailKind::PasswordReset => "password_reset",
            MailKind::VerifyEmail => "verify_email",
            MailKind::Receipt => "receipt",
            MailKind::SaleNotice => "sale_notice",
            MailKind::RefundNotice => "refund_notice",
        }
    }
}

/// The language an account's mail is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Enum)]
pub enum Locale {
    /// English.
    #[default]
    #[oai(rename = "en")]
    En,
    /// Simplified Chinese.
    #[oai(rename = "zh-CN")]
    ZhCn,
}

impl Locale {
    pub const ALL: [Locale; 2] = [Locale::En, Locale::ZhCn];

    pub fn as_str(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::ZhCn => "zh-CN",
        }
    }

    /// A stored locale; anything unknown reads as English.
    pub fn parse(text: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(text))
            .unwrap_or_default()
    }

    /// The best match for an `Accept-Language` header: Chinese when the
    /// first language named is any Chinese, else English.
    pub fn from_accept_language(header: &str) -> Self {
        let first = header
            .split(',')
            .next()
            .and_then(|tag| tag.split(';').next())
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if first == "zh" || first.starts_with("zh-") {
            Locale::ZhCn
        } else {
            Locale::En
        }
    }
}

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MailStatus {
    /// Waiting to be sent (again, at `nextAttemptAt`).
    Queued,
    /// Accepted by the SMTP server.
    Sent,
    /// Given up after too many attempts or too long; `lastError` says why.
    /// An admin may send it again.
    Dead,
    /// Kept in the outbox (`mail.transport = "outbox"`); never sent.
    Kept,
}

impl MailStatus {
    pub const ALL: [MailStatus; 4] = [
        MailStatus::Queued,
        MailStatus::Sent,
        MailStatus::Dead,
        MailStatus::Kept,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MailStatus::Queued => "QUEUED",
            MailStatus::Sent => "SENT",
            MailStatus::Dead => "DEAD",
            MailStatus::Kept => "KEPT",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A message to queue: who gets it, in which language, and what its
/// templates render.
#[derive(Debug, Clone)]
pub struct NewMail {
    pub kind: MailKind,
    pub recipient: String,
    pub locale: Locale,
    pub data: serde_json::Value,
}

/// A message in the queue or the outbox.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", example)]
pub struct OutboxMessage {
    pub id: String,
    /// What the mail is for, e.g. `PASSWORD_RESET`.
    pub kind: String,
    pub recipient: String,
    /// The language it is written in.
    pub locale: Locale,
    pub status: MailStatus,
    /// Delivery attempts made.
    pub attempts: u32,
    /// Filled in once the message is rendered (at once, by the delivery
    /// worker).
    #[oai(skip_serializing_if_is_none)]
    pub subject: Option<String>,
    /// The plain-text part.
    #[oai(skip_serializing_if_is_none)]
    pub body: Option<String>,
    /// Why the last attempt failed.
    #[oai(skip_serializing_if_is_none)]
    pub last_error: Option<String>,
    /// When the next attempt is due, while `QUEUED`.
    #[oai(skip_serializing_if_is_none)]
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    /// When the SMTP server accepted it.
    #[oai(skip_serializing_if_is_none)]
    pub sent_at: Option<String>,
}

impl Example for OutboxMessage {
    fn example() -> Self {
        Self {
            id: "01938a6e-7c3b-7d2e-9f41-2b6c8e0a1d77".into(),
            kind: "RECEIPT".into(),
            recipient: "student@test.com".into(),
            locale: Locale::En,
            status: MailStatus::Sent,
            attempts: 1,
            subject: Some("Your WeMaster receipt".into()),
            body: Some("Thank you for your purchase...".into()),
            last_error: None,
            next_attempt_at: None,
            created_at: "2026-01-15T09:30:00.000Z".into(),
            sent_at: Some("2026-01-15T09:30:00.412Z".into()),
        }
    }
}

/// The queue at a glance, for health and metrics.
#[derive(Debug, Clone, Default)]
pub struct QueueFigures {
    /// Messages waiting to be sent.
    pub queued: u64,
    /// Messages given up.
    pub dead: u64,
    /// When the oldest waiting message was queued.
    pub oldest_unsent: Option<String>,
}
