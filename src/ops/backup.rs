//! Online backups through SQLite's backup API: a consistent copy of the live
//! database while the server keeps serving; restore with an integrity check;
//! optional scheduled backups with retention.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::db::lock::ServeLock;
use crate::state::AppState;

/// What a backup or restore did.
#[derive(Debug, Clone, Copy)]
pub struct CopyReport {
    pub pages: i32,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// Copies every page of `src` into `dst` in one step, so the copy is a
/// consistent snapshot even while others write; retries while busy.
fn copy(src: &Connection, dst: &mut Connection) -> anyhow::Result<i32> {
    let backup = Backup::new(src, dst).context("cannot start the backup")?;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        match backup.step(-1).context("backup step failed")? {
            StepResult::Done => return Ok(backup.progress().pagecount),
            StepResult::More => continue,
            StepResult::Busy | StepResult::Locked => {
                if Instant::now() > deadline {
                    bail!("the database stayed busy for 5 minutes; backup abandoned");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Writes a consistent copy of the database at `source` to `target`, which
/// must not exist yet, into a folder that must. Safe while the server runs.
pub fn backup(source: &Path, target: &Path) -> anyhow::Result<CopyReport> {
    let started = Instant::now();
    if target.exists() {
        bail!("{} exists; choose a new file name", target.display());
    }
    if !source.exists() {
        bail!("no database at {}", source.display());
    }
    // A typo in the path must not leave folders behind anywhere.
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.exists() {
            bail!(
                "folder {} does not exist; create it first",
                parent.display()
            );
        }
        if !parent.is_dir() {
            bail!("{} is not a folder", parent.display());
        }
    }
    let src = Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open {}", source.display()))?;
    src.busy_timeout(Duration::from_secs(5))?;
    let mut dst =
        Connection::open(target).with_context(|| format!("cannot create {}", target.display()))?;
    let pages = copy(&src, &mut dst)?;
    // A backup is one self-contained file.
    dst.pragma_update(None, "journal_mode", "DELETE")?;
    drop(dst);
    let bytes = std::fs::metadata(target).map(|m| m.len()).unwrap_or(0);
    Ok(CopyReport {
        pages,
        bytes,
        elapsed: started.elapsed(),
    })
}

/// Checks a backup file: SQLite's integrity check passes and its schema is
/// one this binary knows.
pub fn verify(path: &Path) -> anyhow::Result<usize> {
    // SQLite reports both as a bare "unable to open" or "disk I/O error".
    if !path.exists() {
        bail!("{} does not exist", path.display());
    }
    if path.is_dir() {
        bail!(
            "{} is a folder; name the backup file inside it",
            path.display()
        );
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .with_context(|| format!("{} is not a SQLite database", path.display()))?;
    if check != "ok" {
        bail!("{} fails its integrity check: {check}", path.display());
    }
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    let known = crate::db::schema_version();
    if version == 0 {
        bail!(
            "{} is not a wemaster backup: it is a SQLite database without wemaster's schema \
             (schema version 0)",
            path.display()
        );
    }
    if version > known {
        bail!(
            "{} was made by a newer wemaster: its schema version is {version}, this wemaster \
             knows versions 1 to {known}; restore it with a newer wemaster",
            path.display()
        );
    }
    Ok(version)
}

/// What a restore did: the copy, and where the database it replaced was kept.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    pub copy: CopyReport,
    /// The replaced database, copied beside it before it was overwritten;
    /// `None` when there was none.
    pub kept: Option<PathBuf>,
}

/// Replaces the database at `target` with the backup at `source`, after
/// verifying the backup, and only while no server holds the database. The
/// database it replaces is first copied beside it, named with the time
/// (`wemaster.replaced-20261201T101500Z.db`), so a restore can be undone.
pub fn restore(source: &Path, target: &Path) -> anyhow::Result<RestoreReport> {
    let started = Instant::now();
    verify(source)?;
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let _lock = ServeLock::acquire(target)
        .context("refusing to restore over a live database; stop the server first")?;
    let kept = keep_replaced(target)?;
    let src = Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut dst =
        Connection::open(target).with_context(|| format!("cannot open {}", target.display()))?;
    let pages = copy(&src, &mut dst)?;
    dst.pragma_update(None, "journal_mode", "WAL")?;
    drop(dst);
    verify(target)?;
    let bytes = std::fs::metadata(target).map(|m| m.len()).unwrap_or(0);
    Ok(RestoreReport {
        copy: CopyReport {
            pages,
            bytes,
            elapsed: started.elapsed(),
        },
        kept,
    })
}

/// Copies the database about to be replaced to a new file beside it, named
/// with the current UTC time; nothing when there is no database yet.
fn keep_replaced(target: &Path) -> anyhow::Result<Option<PathBuf>> {
    let exists = std::fs::metadata(target).is_ok_and(|m| m.len() > 0);
    if !exists {
        return Ok(None);
    }
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .context("cannot format the time")?;
    let stem = target
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "wemaster".into());
    // Two restores in one second get distinct names.
    let kept = (1..)
        .map(|n| {
            let suffix = if n == 1 {
                String::new()
            } else {
                format!("-{n}")
            };
            target.with_file_name(format!("{stem}.replaced-{stamp}{suffix}.db"))
        })
        .find(|p| !p.exists())
        .expect("an unused name");
    backup(target, &kept)
        .with_context(|| format!("cannot keep the replaced database as {}", kept.display()))?;
    Ok(Some(kept))
}

/// Takes a backup into `backup.dir` every `backup.interval_minutes` and
/// keeps the newest `backup.keep`.
pub async fn scheduled(state: AppState) {
    let config = state.config.backup.clone();
    if config.interval_minutes == 0 {
        return;
    }
    crate::metrics::backup_interval(config.interval_minutes * 60);
    let dir = config.dir.clone();
    if let Ok(Some(at)) = tokio::task::spawn_blocking(move || newest_backup_time(&dir)).await {
        crate::metrics::backup_done(Some(at));
    }
    let mut tick = tokio::time::interval(Duration::from_secs(config.interval_minutes * 60));
    tick.tick().await; // the first tick fires at once; start one period in
    loop {
        tick.tick().await;
        let source = state.db.path().to_path_buf();
        let dir = config.dir.clone();
        let keep = config.keep;
        let result =
            tokio::task::spawn_blocking(move || -> anyhow::Result<(PathBuf, CopyReport)> {
                let stamp = time::OffsetDateTime::now_utc()
                    .format(time::macros::format_description!(
                        "[year][month][day]-[hour][minute][second]"
                    ))
                    .unwrap_or_default();
                // Unlike `wemaster backup`, the configured folder is made
                // when missing: the configuration named it on purpose.
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                let target = dir.join(format!("wemaster-{stamp}.db"));
                let report = backup(&source, &target)?;
                prune(&dir, keep)?;
                Ok((target, report))
            })
            .await;
        let written = match result {
            Ok(Ok((path, report))) => {
                tracing::info!(
                    path = %path.display(),
                    bytes = report.bytes,
                    ms = report.elapsed.as_millis() as u64,
                    "scheduled backup written"
                );
                true
            }
            Ok(Err(e)) => {
                tracing::error!(error = %format!("{e:#}"), "scheduled backup failed");
                false
            }
            Err(e) => {
                tracing::error!(error = %e, "scheduled backup task failed");
                false
            }
        };
        crate::metrics::backup_done(written.then(|| state.clock.unix()));
    }
}

/// The scheduled backups in `dir`, oldest first (names carry a sortable
/// timestamp).
fn scheduled_backups(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("wemaster-") && n.ends_with(".db"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// When the newest scheduled backup in `dir` was written (Unix seconds),
/// so the "backup too old" alert knows it after a restart.
fn newest_backup_time(dir: &Path) -> Option<i64> {
    let newest = scheduled_backups(dir).ok()?.pop()?;
    let modified = std::fs::metadata(newest).ok()?.modified().ok()?;
    let since_epoch = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(since_epoch.as_secs()).ok()
}

/// Deletes all but the newest `keep` scheduled backups in `dir`.
fn prune(dir: &Path, keep: usize) -> anyhow::Result<()> {
    let files = scheduled_backups(dir)?;
    let excess = files.len().saturating_sub(keep);
    for old in &files[..excess] {
        std::fs::remove_file(old).with_context(|| format!("cannot delete {}", old.display()))?;
    }
    Ok(())
}
