//! Free space on the database's disk, and what a full disk looks like from SQLite.
//!
//! New mail is refused (`StoreError::StorageFull`, which SMTP answers with `452 4.3.1`) while
//! the disk holding the database has less free space than
//!
//! - the configured reserve (`[limits] min_free_space`): room for what must still work on a
//!   nearly full disk (flag changes, expunges, which are how users free space, web sessions);
//! - plus the length of the WAL file: a checkpoint copies the WAL's pages into the database
//!   file, which grows by up to that much. A checkpoint that cannot finish never resets the
//!   WAL, so every later write (deletions included) makes it longer, and each attempt spends
//!   whatever space was freed on a partial copy: on a 20 MB disk filled completely, freeing
//!   4 MB gave one more delivery, then the next checkpoint took the 4 MB;
//! - plus what the message will take (`MESSAGE_FACTOR` times its size).
//!
//! When the WAL is what stands in the way and a checkpoint can finish in the space that is
//! free, the store runs one (`PRAGMA wal_checkpoint(TRUNCATE)`) and asks again, so the disk
//! can fill with mail up to the reserve rather than to half of it.
//!
//! Free space is sampled (`statvfs` and the WAL's length) at most once per second while there
//! is plenty of room; between samples each admitted message is counted against the last one.
//!
//! Without a reserve (0) nothing is checked before a delivery; SQLite's own `SQLITE_FULL` is
//! then the signal, and every later delivery simply tries again, which is how the store
//! recovers once space returns.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a `statvfs` sample is trusted, while the room left is at least `HEADROOM` (nearer
/// the limit, every delivery samples afresh: two system calls, a few microseconds).
const SAMPLE_TTL: Duration = Duration::from_secs(1);
const HEADROOM: u64 = 16 << 20;
/// What storing a message takes, as a multiple of its size: its body, its search text, the
/// full-text index and the pages each commit rewrites. Measured: 64 KB plain-text messages
/// took 220 KB of WAL each.
const MESSAGE_FACTOR: u64 = 4;
/// A checkpoint to make room is worth it from this WAL length on, and needs this much more
/// free space than the WAL's length.
const CHECKPOINT_WORTH: u64 = 1 << 20;
const CHECKPOINT_SLACK: u64 = 1 << 20;
/// After a delivery failed for lack of space, `/healthz` reports healthy again once at least
/// this much more space is free than at the failure (or a delivery succeeds).
const RECOVERED_MARGIN: u64 = 1 << 20;

/// SQLite's primary result code for "database or disk is full".
const SQLITE_FULL: i64 = 13;
/// SQLite's extended code for a shared-memory file that could not grow (ENOSPC on the -shm).
const SQLITE_IOERR_SHMSIZE: i64 = 4874;

pub(super) struct Space {
    /// The directory holding the database (statvfs asks about its file system).
    dir: PathBuf,
    /// The database's WAL file.
    wal: PathBuf,
    /// Bytes to keep free; 0 turns the check off.
    reserve: AtomicU64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The last sample.
    sample: Option<Sample>,
    /// Set when a delivery failed for lack of space: the bytes free at that moment.
    full_at: Option<u64>,
}

#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    /// Bytes available.
    free: u64,
    /// Length of the WAL file.
    wal: u64,
    /// Bytes admitted since (they take free space and lengthen the WAL).
    spent: u64,
}

impl Sample {
    /// (free space, WAL length) as they are expected to be now.
    fn now(&self) -> (u64, u64) {
        (
            self.free.saturating_sub(self.spent),
            self.wal.saturating_add(self.spent),
        )
    }

    /// Room left for new mail beyond the reserve and a checkpoint's worth.
    fn margin(&self, reserve: u64) -> u64 {
        let (free, wal) = self.now();
        free.saturating_sub(reserve.saturating_add(wal))
    }
}

/// Why new mail cannot be taken now.
pub(super) enum Refusal {
    /// The disk is short of space; the text says how short.
    Short(String),
    /// The WAL is what takes the room, and a checkpoint can finish in the space that is free:
    /// it would copy the WAL into the database and give its file back.
    Checkpoint(String),
}

impl Space {
    pub(super) fn new(database: &Path) -> Space {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        let dir = database
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        Space {
            dir,
            wal: PathBuf::from(wal),
            reserve: AtomicU64::new(0),
            state: Mutex::default(),
        }
    }

    pub(super) fn set_reserve(&self, bytes: u64) {
        self.reserve.store(bytes, Ordering::Relaxed);
    }

    pub(super) fn reserve(&self) -> u64 {
        self.reserve.load(Ordering::Relaxed)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain numbers behind: still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes available now on the database's file system (`None` when it cannot be asked).
    pub(super) fn available(&self) -> Option<u64> {
        match available(&self.dir) {
            Ok(free) => Some(free),
            Err(e) => {
                tracing::warn!("cannot read the free space of {}: {e}", self.dir.display());
                None
            }
        }
    }

    /// A fresh sample (free space and WAL length), or `None` when the system cannot say.
    fn sample(&self) -> Option<Sample> {
        let free = self.available()?;
        let wal = self.wal_len();
        Some(Sample {
            at: Instant::now(),
            free,
            wal,
            spent: 0,
        })
    }

    /// The WAL file's length now.
    pub(super) fn wal_len(&self) -> u64 {
        std::fs::metadata(&self.wal).map_or(0, |m| m.len())
    }

    /// Forgets the last sample (after a checkpoint changed the WAL).
    pub(super) fn forget(&self) {
        self.state().sample = None;
    }

    /// Whether a new message of `size` bytes fits; `count` it against the sample when it does
    /// (a delivery), or only look (`/healthz`).
    pub(super) fn check(&self, size: u64, count: bool) -> Result<(), Refusal> {
        let reserve = self.reserve();
        if reserve == 0 {
            return Ok(());
        }
        let message = size.saturating_mul(MESSAGE_FACTOR);
        let mut state = self.state();
        let sample = match state.sample {
            Some(s)
                if s.at.elapsed() < SAMPLE_TTL
                    && s.margin(reserve) >= message.saturating_add(HEADROOM) =>
            {
                s
            }
            _ => match self.sample() {
                Some(s) => s,
                // Not knowing is no reason to refuse mail; SQLite still says when it is full.
                None => return Ok(()),
            },
        };
        let (free, wal) = sample.now();
        if free >= reserve.saturating_add(wal).saturating_add(message) {
            state.sample = Some(Sample {
                spent: sample.spent.saturating_add(if count { message } else { 0 }),
                ..sample
            });
            return Ok(());
        }
        state.sample = Some(sample);
        let why = short(free, reserve, wal);
        // A checkpoint grows the database file by at most the WAL's length, then truncates
        // the WAL: worth trying when the WAL is long and that growth fits in what is free (it
        // may use the reserve: that is what the reserve is for).
        if wal >= CHECKPOINT_WORTH && free >= wal.saturating_add(CHECKPOINT_SLACK) {
            return Err(Refusal::Checkpoint(why));
        }
        Err(Refusal::Short(why))
    }

    /// A delivery failed for lack of space: remember how much was free then, and sample
    /// afresh next time.
    pub(super) fn failed_full(&self) {
        let free = self.available().unwrap_or(0);
        let mut state = self.state();
        state.full_at = Some(free);
        state.sample = None;
    }

    /// A delivery was committed: whatever failed before has passed.
    pub(super) fn committed(&self) {
        let mut state = self.state();
        if state.full_at.is_some() {
            tracing::info!("deliveries succeed again: the data disk has room");
            state.full_at = None;
        }
    }

    /// For `/healthz` (beside [`Space::check`]): a delivery failed with the disk full, and no
    /// delivery succeeded nor did space come free since.
    pub(super) fn failed_recently(&self) -> Result<(), String> {
        let mut state = self.state();
        let Some(then) = state.full_at else {
            return Ok(());
        };
        let free = self.available().unwrap_or(0);
        if free < then.saturating_add(RECOVERED_MARGIN) {
            return Err(format!(
                "the last delivery failed with the disk full, and {} is free now",
                mib(free)
            ));
        }
        state.full_at = None;
        Ok(())
    }
}

fn short(free: u64, reserve: u64, wal: u64) -> String {
    format!(
        "{} free on the data disk, less than the reserve ({}, min_free_space) and room to \
         checkpoint the WAL ({}); new mail is refused",
        mib(free),
        mib(reserve),
        mib(wal)
    )
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

/// `statvfs(2)`: the bytes an unprivileged process may still write on `dir`'s file system.
#[cfg(unix)]
fn available(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: statvfs only writes into the struct we pass, which is plain data (all zeroes is
    // a valid value), and reads the NUL-terminated path that lives across the call.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // The field types differ between platforms (u32 on some 32-bit ones).
    #[allow(clippy::unnecessary_cast)]
    Ok((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

#[cfg(not(unix))]
fn available(_dir: &Path) -> std::io::Result<u64> {
    Ok(u64::MAX)
}

/// Whether `e` means the disk (or SQLite's page limit) is full.
pub(super) fn is_full(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i64>().ok())
            .is_some_and(|code| code & 0xff == SQLITE_FULL || code == SQLITE_IOERR_SHMSIZE),
        sqlx::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(libc::ENOSPC)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(r: Result<(), Refusal>) -> Option<String> {
        match r {
            Ok(()) => None,
            Err(Refusal::Short(why) | Refusal::Checkpoint(why)) => Some(why),
        }
    }

    #[test]
    fn no_reserve_admits_everything() {
        let space = Space::new(Path::new("/nonexistent/dir/m.db"));
        assert!(space.check(u64::MAX / 4, true).is_ok());
    }

    #[test]
    fn a_reserve_larger_than_the_disk_refuses_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let space = Space::new(&dir.path().join("m.db"));
        space.set_reserve(u64::MAX / 2);
        let why = refused(space.check(10, true)).expect("refused");
        assert!(why.contains("reserve"), "{why}");
        assert!(matches!(space.check(0, false), Err(Refusal::Short(_))));
    }

    #[test]
    fn admitted_mail_counts_until_the_next_sample() {
        let dir = tempfile::tempdir().unwrap();
        let space = Space::new(&dir.path().join("m.db"));
        space.set_reserve(1);
        let spent = |space: &Space| space.state().sample.map(|s| s.spent);
        assert!(space.check(1000, false).is_ok());
        assert_eq!(spent(&space), Some(0), "only looking counts nothing");
        assert!(space.check(1000, true).is_ok());
        assert!(space.check(1000, true).is_ok());
        assert_eq!(spent(&space), Some(2 * 1000 * MESSAGE_FACTOR));
        space.forget();
        assert!(space.check(1000, false).is_ok());
        assert_eq!(
            spent(&space),
            Some(0),
            "a new sample starts from what the disk says"
        );
    }

    #[test]
    fn near_the_reserve_every_check_samples_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let space = Space::new(&dir.path().join("m.db"));
        let free = space.available().unwrap();
        // Room for 20 MiB, messages of 1 MiB counted 4 times: after the first, the room left
        // is below the headroom, so the second takes a new sample (and counts only itself).
        space.set_reserve(free - (20 << 20));
        assert!(space.check(1 << 20, true).is_ok());
        assert!(space.check(1 << 20, true).is_ok());
        assert_eq!(
            space.state().sample.map(|s| s.spent),
            Some(MESSAGE_FACTOR << 20)
        );
    }

    #[test]
    fn a_long_wal_that_a_checkpoint_can_copy_asks_for_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("m.db");
        let space = Space::new(&db);
        // A sparse WAL file of 1 TiB: longer than the disk is free, so no checkpoint can help.
        let wal = std::fs::File::create(dir.path().join("m.db-wal")).unwrap();
        wal.set_len(1 << 40).unwrap();
        space.set_reserve(1);
        assert!(matches!(space.check(1, true), Err(Refusal::Short(_))));
        // 8 MiB of WAL on a disk with more free: a checkpoint is worth a try.
        wal.set_len(8 << 20).unwrap();
        let free = space.available().unwrap();
        space.set_reserve(free - (4 << 20));
        space.forget();
        assert!(matches!(space.check(1, true), Err(Refusal::Checkpoint(_))));
    }

    #[test]
    fn a_failure_for_lack_of_space_shows_until_space_returns_or_mail_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let space = Space::new(&dir.path().join("m.db"));
        space.failed_full();
        assert!(space.failed_recently().is_err());
        space.committed();
        assert!(space.failed_recently().is_ok());
    }
}
