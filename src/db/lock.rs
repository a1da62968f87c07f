//! The serve lock: an advisory lock on `<db>.lock` that a serving process
//! holds, so a second server or a restore keeps off a live database.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Held by a serving process: `restore` refuses to overwrite a database
/// whose lock is taken, and a second server refuses to start on it.
pub struct ServeLock {
    _file: File,
}

fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl ServeLock {
    pub fn acquire(db: &Path) -> anyhow::Result<Self> {
        let path = lock_path(db);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open lock file {}", path.display()))?;
        if file.try_lock().is_err() {
            bail!(
                "{} is in use by a running wemaster (lock {} is held)",
                db.display(),
                path.display()
            );
        }
        Ok(Self { _file: file })
    }
}
