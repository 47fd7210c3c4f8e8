//! Backups that restore: an online, consistent copy of the one database file, checked before it
//! is called a backup; and a restore that refuses to run under a live server.
//!
//! The copy is SQLite's `VACUUM INTO` on a read connection: a snapshot of one read transaction,
//! so it holds every commit made before it started (every `250` and `OK` already sent) and no
//! half of a later one, while the server goes on writing. A running server holds an exclusive
//! lock on `<data_dir>/mailroom.lock`; restore takes the same lock, so it cannot swap the
//! database under a server.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::config::Config;
use crate::store::Store;

/// What a backup (or a restore) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub messages: i64,
    pub bytes: u64,
}

/// Makes `dest` a checked copy of the live database. `dest` must not exist.
pub async fn backup(store: &Store, dest: &Path) -> anyhow::Result<Summary> {
    if dest.exists() {
        bail!("{} exists; choose a new file name", dest.display());
    }
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    store.copy_into(dest).await?;
    let summary = check(dest)
        .await
        .with_context(|| format!("the copy in {} does not check out", dest.display()))?;
    store
        .set_meta(
            LAST_BACKUP,
            &format!("{} {}", crate::store::now(), dest.display()),
        )
        .await?;
    Ok(summary)
}

/// Checks a database file: SQLite's integrity check, then counts its messages.
pub async fn check(path: &Path) -> anyhow::Result<Summary> {
    let messages = Store::check_file(path).await?;
    let bytes = std::fs::metadata(path)?.len();
    Ok(Summary { messages, bytes })
}

/// Replaces the database of `config` with the backup `src`, after checking it. The current
/// database is kept beside it as `mailroom.db.before-restore-<unix time>`.
pub async fn restore(config: &Config, src: &Path) -> anyhow::Result<Summary> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let _lock = ServerLock::acquire(&config.data_dir).map_err(|_| {
        anyhow::anyhow!(
            "a Mailroom server is running on {}; stop it first (systemctl stop mailroom)",
            config.data_dir.display()
        )
    })?;
    let summary = check(src)
        .await
        .with_context(|| format!("{} is not a usable backup", src.display()))?;
    let db = config.database_path();
    if db.exists() {
        let kept = PathBuf::from(format!(
            "{}.before-restore-{}",
            db.display(),
            crate::store::now()
        ));
        std::fs::rename(&db, &kept)
            .with_context(|| format!("cannot move {} aside", db.display()))?;
    }
    // The old WAL belongs to the old file: applied to the restored one it would corrupt it.
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", db.display()));
        if side.exists() {
            std::fs::remove_file(&side)
                .with_context(|| format!("cannot remove {}", side.display()))?;
        }
    }
    let partial = PathBuf::from(format!("{}.restoring", db.display()));
    std::fs::copy(src, &partial).with_context(|| format!("cannot copy {}", src.display()))?;
    File::open(&partial)?.sync_all()?;
    std::fs::rename(&partial, &db)?;
    Ok(summary)
}

/// The meta key under which the last backup's time and place are kept (for the dashboard).
pub const LAST_BACKUP: &str = "last_backup";

/// An exclusive lock on `<data_dir>/mailroom.lock`, held by a running server.
pub struct ServerLock {
    _file: File,
}

impl ServerLock {
    /// Takes the lock, or fails at once when another process holds it.
    pub fn acquire(data_dir: &Path) -> std::io::Result<ServerLock> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(data_dir.join("mailroom.lock"))?;
        file.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => {
                std::io::Error::new(std::io::ErrorKind::WouldBlock, "locked by another process")
            }
            std::fs::TryLockError::Error(e) => e,
        })?;
        Ok(ServerLock { _file: file })
    }
}
