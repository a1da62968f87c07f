//! Replication as Litestream sees it, read from its control socket
//! (`socket:` in deploy/litestream.yml). Only asked when
//! `health.litestream_socket` is set: a plain `wemaster serve` never
//! touches Litestream.

use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::model::{CheckStatus, ReplicationCheck};

/// Litestream answers from memory; a slower answer means it is wedged.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(1);

/// One database in Litestream's `GET /list` answer.
#[derive(Debug, Deserialize)]
struct ListedDatabase {
    path: PathBuf,
    /// `replicating`, `open` or `stopped`.
    status: String,
    /// When the replica last confirmed it holds everything synced so far.
    last_sync_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct List {
    databases: Vec<ListedDatabase>,
}

/// Reports how far behind the replica of `db_path` is, asking Litestream at
/// `socket`. Never `down`: the server serves without a replica, so a
/// missing or lagging one is `degraded`.
pub async fn check(socket: &Path, db_path: &Path, degraded_after: u64) -> ReplicationCheck {
    let started = std::time::Instant::now();
    let listed = tokio::time::timeout(SOCKET_TIMEOUT, list(socket)).await;
    let response_time = super::elapsed_ms(started);
    let unknown = |message: String| ReplicationCheck {
        status: CheckStatus::Degraded,
        response_time,
        state: "unknown".into(),
        last_sync_at: None,
        lag_seconds: None,
        message,
    };
    let databases = match listed {
        Ok(Ok(list)) => list.databases,
        Ok(Err(e)) => {
            return unknown(format!(
                "cannot ask Litestream at {}: {e:#}",
                socket.display()
            ));
        }
        Err(_) => {
            return unknown(format!(
                "Litestream at {} did not answer within {} ms",
                socket.display(),
                SOCKET_TIMEOUT.as_millis()
            ));
        }
    };
    let ours = canonical(db_path).await;
    let mut found = None;
    for d in databases {
        if canonical(&d.path).await == ours {
            found = Some(d);
            break;
        }
    }
    let Some(db) = found else {
        return unknown(format!(
            "Litestream does not replicate {}",
            db_path.display()
        ));
    };
    let last_sync = db
        .last_sync_at
        .as_deref()
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
    let lag = last_sync.map(|t| {
        let seconds = (OffsetDateTime::now_utc() - t).as_seconds_f64().max(0.0);
        (seconds * 1_000.0).round() / 1_000.0
    });
    let (status, message) = match (db.status.as_str(), lag) {
        ("replicating", Some(lag)) if lag <= degraded_after as f64 => {
            (CheckStatus::Up, "ok".to_string())
        }
        ("replicating", Some(_)) => (
            CheckStatus::Degraded,
            format!("last upload to the replica is older than {degraded_after} s"),
        ),
        ("replicating", None) => (
            CheckStatus::Degraded,
            "nothing uploaded to the replica yet".to_string(),
        ),
        (other, _) => (
            CheckStatus::Degraded,
            format!("Litestream reports the database {other}"),
        ),
    };
    ReplicationCheck {
        status,
        response_time,
        state: db.status,
        last_sync_at: last_sync.and_then(|t| t.format(&Rfc3339).ok()),
        lag_seconds: lag,
        message,
    }
}

/// `GET /list` on Litestream's control socket.
async fn list(socket: &Path) -> anyhow::Result<List> {
    let stream = tokio::net::UnixStream::connect(socket).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let connection = tokio::spawn(connection);
    let request = hyper::Request::get("/list")
        .header(hyper::header::HOST, "litestream")
        .body(Empty::<bytes::Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    connection.abort();
    anyhow::ensure!(status.is_success(), "GET /list answered {status}");
    Ok(serde_json::from_slice(&body)?)
}

/// Litestream names databases by absolute path; ours may be relative.
async fn canonical(path: &Path) -> PathBuf {
    tokio::fs::canonicalize(path)
        .await
        .unwrap_or_else(|_| path.to_path_buf())
}
