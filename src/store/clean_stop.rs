//! Whether the database must go through [`super::Store::quick_check`] before the server runs on
//! it.
//!
//! The check reads every page: seconds per gigabyte, minutes for a large mail store, on every
//! start. It is there for damage SQLite cannot prevent: a machine that crashed or lost power
//! while a disk held back writes it had acknowledged, or a file changed from outside. Two
//! cases cannot have that damage, and skip it:
//! - the last run closed the database cleanly, and the file's size and modification time are
//!   still what they were at the close: nothing has written to it since;
//! - the last run ended without closing it (killed, or it panicked) but the machine has not
//!   restarted since (the same kernel boot id): a killed process cannot damage a SQLite
//!   database, whose commits are atomic against exactly that, and the operating system still
//!   holds every write the process made.
//!
//! What this gives up: damage from outside that leaves the size and modification time alone
//! (a disk returning other bytes for a block it stored) is no longer found at a start after a
//! clean stop or a crash of the process alone; it is found at the first start after the
//! machine itself went down uncleanly, or when a read meets it.
//!
//! The record is `data_dir/mailroom.state`: `boot <id>` written at each start before the
//! database is opened, and `closed <size> <mtime-ns>` added by a clean stop. `mailroom
//! restore` removes it, as a restored file is one this server never closed.

use std::path::{Path, PathBuf};

const STATE: &str = "mailroom.state";

fn state_path(data_dir: &Path) -> PathBuf {
    data_dir.join(STATE)
}

/// This boot of the machine (Linux), if it can be told.
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The database's size and modification time (ns), as the clean stop recorded them.
fn fingerprint(db: &Path) -> Option<(u64, i128)> {
    let meta = std::fs::metadata(db).ok()?;
    let modified = meta.modified().ok()?;
    let ns = match modified.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    Some((meta.len(), ns))
}

/// Why the check may be skipped, or `None` when it must run. Reads the record the last run
/// left.
pub fn skip_reason(data_dir: &Path, db: &Path) -> Option<&'static str> {
    let text = std::fs::read_to_string(state_path(data_dir)).ok()?;
    let mut boot = None;
    let mut closed = None;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("boot") => boot = words.next().map(str::to_string),
            Some("closed") => {
                let len = words.next().and_then(|w| w.parse::<u64>().ok());
                let ns = words.next().and_then(|w| w.parse::<i128>().ok());
                closed = len.zip(ns);
            }
            _ => {}
        }
    }
    match closed {
        Some(recorded) => (fingerprint(db) == Some(recorded))
            .then_some("closed cleanly at the last stop and not written since"),
        None => (boot.is_some() && boot == boot_id())
            .then_some("the last run ended without a clean stop, but the machine did not restart"),
    }
}

fn write_state(data_dir: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let path = state_path(data_dir);
    let partial = data_dir.join(format!("{STATE}.new"));
    let mut f = std::fs::File::create(&partial)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&partial, &path)?;
    std::fs::File::open(data_dir)?.sync_all()
}

/// At start, before the database is opened: this run has not closed it yet.
pub fn starting(data_dir: &Path) -> std::io::Result<()> {
    let boot = boot_id().unwrap_or_else(|| "unknown".into());
    write_state(data_dir, &format!("boot {boot}\n"))
}

/// After the store is closed at a clean stop: the file as it was left.
pub fn closed(data_dir: &Path, db: &Path) -> std::io::Result<()> {
    let boot = boot_id().unwrap_or_else(|| "unknown".into());
    match fingerprint(db) {
        Some((len, ns)) => write_state(data_dir, &format!("boot {boot}\nclosed {len} {ns}\n")),
        None => Ok(()),
    }
}

/// Forgets the record (a restored database is checked at the next start).
pub fn forget(data_dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(state_path(data_dir)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_stop_skips_the_check_until_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("mailroom.db");
        std::fs::write(&db, b"0123456789").unwrap();
        // Nothing recorded: a database of unknown history is checked.
        assert_eq!(skip_reason(dir.path(), &db), None);
        closed(dir.path(), &db).unwrap();
        assert!(skip_reason(dir.path(), &db).is_some());
        // Written since (the length tells even within one tick of the clock).
        std::fs::write(&db, b"0123456789ab").unwrap();
        assert_eq!(skip_reason(dir.path(), &db), None);
        closed(dir.path(), &db).unwrap();
        forget(dir.path()).unwrap();
        assert_eq!(skip_reason(dir.path(), &db), None);
    }

    #[test]
    fn a_run_that_ended_without_a_stop_is_trusted_only_within_one_boot() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("mailroom.db");
        std::fs::write(&db, b"x").unwrap();
        starting(dir.path()).unwrap();
        // Killed, same boot (where the boot id can be read at all).
        assert_eq!(skip_reason(dir.path(), &db).is_some(), boot_id().is_some());
        // Another boot: the machine crashed or lost power while the server ran.
        std::fs::write(dir.path().join(STATE), "boot another-boot\n").unwrap();
        assert_eq!(skip_reason(dir.path(), &db), None);
        // A record that says nothing usable is no reason to skip.
        std::fs::write(dir.path().join(STATE), "closed x y\n").unwrap();
        assert_eq!(skip_reason(dir.path(), &db), None);
    }
}
