//! Health report shapes (API.md, Health).

use poem_openapi::types::Example;
use poem_openapi::{Enum, Object};

/// `up`, `degraded` (slower than its configured threshold) or `down`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Enum)]
#[oai(rename_all = "lowercase")]
pub enum CheckStatus {
    Up,
    Degraded,
    Down,
}

/// Full health report.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct Health {
    /// Worst status of all checks.
    pub status: CheckStatus,
    /// When this report was made (RFC 3339, UTC).
    #[oai(validator(max_length = 40))]
    pub timestamp: String,
    /// Seconds since the process started.
    pub uptime_seconds: u64,
    /// Server version.
    pub version: String,
    /// One entry per dependency.
    pub services: Services,
    /// Figures of this process.
    pub system: SystemFigures,
}

/// Process figures; absent where the platform does not tell.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct SystemFigures {
    /// Resident memory in bytes.
    #[oai(skip_serializing_if_is_none)]
    pub rss_bytes: Option<u64>,
    /// Client connections open now, as the server counts them.
    pub open_connections: u64,
    /// Password hashes computed at once at most.
    pub hash_slots: u64,
}

/// Per-dependency checks.
#[derive(Debug, Clone, Object)]
pub struct Services {
    pub database: DatabaseCheck,
    pub cache: CacheCheck,
    /// Off-site replication by Litestream; present only when
    /// `health.litestream_socket` names Litestream's control socket.
    #[oai(skip_serializing_if_is_none)]
    pub replication: Option<ReplicationCheck>,
    /// Requests running and waiting for a turn; `degraded` while requests
    /// are being refused for capacity (shedding).
    pub load: LoadCheck,
    /// The mail queue; `degraded` while a message has waited longer than
    /// `mail.degraded_after_seconds`.
    pub mail: MailCheck,
}

/// The mail queue. Never `down`: the server serves while mail waits.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct MailCheck {
    pub status: CheckStatus,
    /// `outbox` (kept for admins) or `smtp` (delivered).
    pub transport: String,
    /// Messages waiting to be sent.
    pub queued: u64,
    /// Messages given up (`GET /admin/outbox?status=DEAD`).
    pub dead: u64,
    /// How long the oldest waiting message has waited, in seconds.
    #[oai(skip_serializing_if_is_none)]
    pub oldest_unsent_seconds: Option<f64>,
    /// `ok`, or why the check is not `up`.
    pub message: String,
}

/// Admission: requests running and waiting, in the general slots and in
/// those of requests that hash a password. Never `down`: a server that
/// sheds load still serves.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct LoadCheck {
    /// `degraded` when requests were refused for capacity in the last 10 s.
    pub status: CheckStatus,
    /// Requests running now.
    pub running: u64,
    /// Requests that may run at once (`server.max_in_flight`; 0 = no cap).
    pub capacity: u64,
    /// Requests waiting for a turn.
    pub queued: u64,
    /// Requests refused since start (503 at capacity, 429 over an
    /// address's share).
    pub refused: u64,
    /// Sign-ins, sign-ups and resets running now.
    pub hashing_running: u64,
    /// Of those, how many may run at once.
    pub hashing_capacity: u64,
    /// Sign-ins, sign-ups and resets waiting for a turn.
    pub hashing_queued: u64,
    /// Sign-ins, sign-ups and resets refused since start.
    pub hashing_refused: u64,
    /// `ok`, or why the check is not `up`.
    pub message: String,
}

/// Replication of the database file by Litestream, as Litestream reports it.
/// Never `down`: the server serves without a replica, so a stopped,
/// unreachable or lagging replication is `degraded`.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct ReplicationCheck {
    pub status: CheckStatus,
    /// Time to ask Litestream, in milliseconds.
    pub response_time: f64,
    /// Litestream's word for the database: `replicating`, `open` or
    /// `stopped`; `unknown` when Litestream could not be asked or does not
    /// replicate this file.
    pub state: String,
    /// When the replica last confirmed it holds every change Litestream had
    /// read from the WAL (RFC 3339, UTC).
    #[oai(skip_serializing_if_is_none)]
    pub last_sync_at: Option<String>,
    /// Seconds since `lastSyncAt`: with Litestream's one-second WAL reads,
    /// changes older than this plus a second are off the machine.
    #[oai(skip_serializing_if_is_none)]
    pub lag_seconds: Option<f64>,
    /// `ok`, or why the check is not `up`.
    pub message: String,
}

/// Result of a timed database round-trip.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct DatabaseCheck {
    pub status: CheckStatus,
    /// Round-trip time in milliseconds, including waiting for a connection.
    pub response_time: f64,
    /// `ok`, or why the check is not `up`.
    pub message: String,
}

/// State of the in-process response cache.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct CacheCheck {
    pub status: CheckStatus,
    /// Time to read the cache's figures, in milliseconds.
    pub response_time: f64,
    pub message: String,
    /// Responses held right now.
    pub entries: u64,
    /// Hits over lookups since start, 0 to 1.
    pub hit_rate: f64,
}

/// Readiness to take traffic.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", example)]
pub struct Readiness {
    /// True when migrations ran and the database answers.
    pub ready: bool,
    /// Schema version found in the database file.
    pub schema_version: u64,
    pub message: String,
}

/// Liveness: the process serves.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct Liveness {
    /// Always `up`.
    pub status: CheckStatus,
}

impl Example for Readiness {
    fn example() -> Self {
        Readiness {
            ready: true,
            schema_version: 4,
            message: "ready".into(),
        }
    }
}

impl Example for Liveness {
    fn example() -> Self {
        Liveness {
            status: CheckStatus::Up,
        }
    }
}
