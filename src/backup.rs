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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub messages: i64,
    pub bytes: u64,
    /// Each account's address and message count.
    pub accounts: Vec<(String, i64)>,
}

/// A backup written by [`backup_into`]: where, what it holds, and the older ones removed.
#[derive(Debug, Clone)]
pub struct Written {
    pub path: PathBuf,
    pub summary: Summary,
    pub removed: Vec<PathBuf>,
}

/// The name of a dated backup: `mailroom-<UTC date and time>.db`, so names sort by age.
const PREFIX: &str = "mailroom-";
const SUFFIX: &str = ".db";

/// Writes a checked backup into `dir` (created if needed) as
/// `mailroom-YYYYMMDD-HHMMSS-mmm.db` (UTC, milliseconds)
/// and keeps the newest `keep` of the dated backups there (0: all). Only files named that way
/// are ever removed.
pub async fn backup_into(store: &Store, dir: &Path, keep: usize) -> anyhow::Result<Written> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let format = time::macros::format_description!(
        "[year][month][day]-[hour][minute][second]-[subsecond digits:3]"
    );
    let stamp = time::OffsetDateTime::now_utc()
        .format(&format)
        .context("cannot format the date")?;
    let path = dir.join(format!("{PREFIX}{stamp}{SUFFIX}"));
    let summary = backup(store, &path).await?;
    let mut removed = Vec::new();
    if keep > 0 {
        let mut dated = dated_backups(dir)?;
        // Newest first: names sort by time.
        dated.sort_by(|a, b| b.cmp(a));
        for old in dated.into_iter().skip(keep) {
            std::fs::remove_file(&old)
                .with_context(|| format!("cannot remove {}", old.display()))?;
            removed.push(old);
        }
    }
    Ok(Written {
        path,
        summary,
        removed,
    })
}

/// The dated backups in `dir` (see [`backup_into`]).
pub fn dated_backups(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let dated = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.strip_suffix(SUFFIX))
            .is_some_and(|stamp| {
                stamp.len() == 19
                    && stamp.bytes().enumerate().all(|(i, b)| {
                        if i == 8 || i == 15 {
                            b == b'-'
                        } else {
                            b.is_ascii_digit()
                        }
                    })
            });
        if dated && entry.file_type()?.is_file() {
            found.push(entry.path());
        }
    }
    Ok(found)
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

/// Checks a database file: SQLite's integrity check, then counts its messages and accounts.
pub async fn check(path: &Path) -> anyhow::Result<Summary> {
    let contents = Store::check_file(path).await?;
    let bytes = std::fs::metadata(path)?.len();
    Ok(Summary {
        messages: contents.messages,
        bytes,
        accounts: contents.accounts,
    })
}

/// Files of the data at rest that others than the owner may read: the data directory, the
/// database and its WAL, and the backups in `backups` (the last backup's directory).
pub fn exposed(config: &Config, backups: Option<&Path>) -> Vec<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let db = config.database_path();
    let mut paths = vec![
        config.data_dir.clone(),
        db.clone(),
        PathBuf::from(format!("{}-wal", db.display())),
    ];
    if let Some(dir) = backups {
        paths.extend(dated_backups(dir).unwrap_or_default());
    }
    paths
        .into_iter()
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o077 != 0))
        .collect()
}

/// Replaces the database of `config` with the backup `src`, after checking it and asking
/// `confirm` with what it holds (false: nothing is replaced). The data directory must exist
/// (`mailroom init` makes it); the current database is kept beside it as
/// `mailroom.db.before-restore-<unix time>`.
pub async fn restore(
    config: &Config,
    src: &Path,
    confirm: impl FnOnce(&Summary) -> anyhow::Result<bool>,
) -> anyhow::Result<Summary> {
    if !config.data_dir.is_dir() {
        bail!(
            "there is no data directory {}: run `mailroom init` first, or give the \
             configuration of the server you mean with --config",
            config.data_dir.display()
        );
    }
    let _lock = ServerLock::acquire(&config.data_dir).map_err(|_| {
        anyhow::anyhow!(
            "a Mailroom server is running on {}; stop it first (systemctl stop mailroom)",
            config.data_dir.display()
        )
    })?;
    let summary = check(src)
        .await
        .with_context(|| format!("{} is not a usable backup", src.display()))?;
    if !confirm(&summary)? {
        bail!("nothing was replaced");
    }
    let db = config.database_path();
    // The restored file is one the server never closed: checked at the next start.
    crate::store::clean_stop::forget(&config.data_dir)?;
    let kept = PathBuf::from(format!(
        "{}.before-restore-{}",
        db.display(),
        crate::store::now()
    ));
    if db.exists() {
        std::fs::rename(&db, &kept)
            .with_context(|| format!("cannot move {} aside", db.display()))?;
    }
    // The old WAL belongs to the old file: applied to the restored one it would corrupt it,
    // and after a crash it holds committed mail the file lacks. It goes aside with its file
    // (SQLite applies `<kept>-wal` when the kept copy is opened).
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", db.display()));
        if side.exists() {
            let beside = PathBuf::from(format!("{}{suffix}", kept.display()));
            std::fs::rename(&side, &beside)
                .with_context(|| format!("cannot move {} aside", side.display()))?;
        }
    }
    let partial = PathBuf::from(format!("{}.restoring", db.display()));
    std::fs::copy(src, &partial).with_context(|| format!("cannot copy {}", src.display()))?;
    // `copy` keeps the backup's mode; the live database is the owner's only.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600))?;
    }
    File::open(&partial)?.sync_all()?;
    std::fs::rename(&partial, &db)?;
    File::open(&config.data_dir)?.sync_all()?;
    Ok(summary)
}

/// The meta key under which the last backup's time and place are kept (for the dashboard).
pub const LAST_BACKUP: &str = "last_backup";

/// The last backup's time (unix seconds) and file, as [`backup`] recorded them.
pub async fn last_backup(store: &Store) -> anyhow::Result<Option<(i64, PathBuf)>> {
    Ok(store.meta(LAST_BACKUP).await?.and_then(|v| {
        let (t, place) = v.split_once(' ')?;
        Some((t.parse().ok()?, PathBuf::from(place)))
    }))
}

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
