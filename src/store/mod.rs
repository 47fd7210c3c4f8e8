//! The store: the only place with SQL.
//!
//! One SQLite file in WAL mode with `synchronous=FULL`, so a commit is on disk when it returns
//! and a reply that says "stored" may be sent. Writes go through one writer connection (SQLite
//! has one writer anyway; queuing in our pool is cheaper than `SQLITE_BUSY` retries), reads
//! through a pool of read-only connections that WAL lets run beside the writer. Write
//! transactions start with `BEGIN IMMEDIATE` so that a CLI command running beside the server
//! waits on the busy timeout instead of failing half-way.
//!
//! Every change to mail is announced on the [`ChangeBus`] after its commit, so IMAP IDLE and the
//! webmail see it at once. The bus lives in the process: a CLI command changing accounts does
//! not announce (accounts and domains are looked up fresh on every use).
//!
//! A full disk is a temporary condition, not a broken store (issue 16): a write that runs out
//! of space fails with [`StoreError::StorageFull`] (which the protocols answer as a temporary
//! failure, SMTP with `452 4.3.1`), new mail is refused while free space is below a reserve
//! (see `space`), and the writer connection is replaced whenever a failed `COMMIT` or
//! `ROLLBACK` left it inside a transaction: SQLite rolls back by itself on `SQLITE_FULL` at
//! commit, sqlx then fails the `ROLLBACK` and keeps counting one open transaction, and every
//! later `BEGIN` on that connection failed until a restart.
//!
//! The API speaks domain types ([`Account`], [`Mailbox`], ...) and never leaks SQLite types, so
//! a PostgreSQL store can stand beside this one later (DESIGN.md §7).

mod accounts;
pub mod app_passwords;
mod audit;
mod blobs;
pub mod clean_stop;
pub mod contacts;
mod deliver;
pub mod deliverability;
mod dkim;
mod domains;
mod events;
mod fingerprints;
mod greylist;
mod listing;
mod mailboxes;
mod memory;
mod messages;
mod metadata;
mod mta_sts;
mod packed;
mod pending_sign_ins;
mod queue;
pub mod quota;
mod recent;
pub mod reports;
mod second_factor;
mod sessions;
pub mod sieve;
mod sign_ins;
mod space;
mod spam;
mod spam_policy;
mod special_use;
mod subscriptions;
mod threads;
mod tls_results;
// IMAP support: flags and change log, copy/move, mailbox management, FETCH views, search.
mod copy;
mod flags;
mod folders;
mod search;
mod views;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::broadcast;

pub use accounts::{Account, NewAccount};
pub use app_passwords::{AppPassword, AppPasswordUse};
pub use audit::{Audit, AuditEntry, AuditPage};
pub use contacts::{Contact, ContactFields, Suggestion};
pub use copy::{Copied, Transfer};
pub use deliver::{Delivered, Delivery, DeliveryReport, Target};
pub use deliverability::{MtaStsMode, RelayTls, RequiredRoute, Smarthost};
pub use dkim::DkimKeys;
pub use domains::{Alias, Domain};
pub use events::StorageTotals;
pub use fingerprints::Fingerprint;
pub use flags::{FlagOp, FlagOutcome, FlagState, MailboxChanges, SelectSummary, apply_flags};
pub use folders::MailboxCounts;
pub use greylist::{GREYLIST_KEEP_SECS, GREYLIST_RETRY_SECS, Triplet};
pub use listing::{ListEntry, MailQuery};
pub use mailboxes::{DEFAULT_MAILBOXES, Mailbox};
pub use messages::{Flags, MessageMeta};
pub use metadata::{
    MAX_ENTRIES as MAX_METADATA_ENTRIES, MAX_VALUE as MAX_METADATA_VALUE, MetadataLimit,
    MetadataOwner,
};
pub use mta_sts::{CachedStsPolicy, MAX_CACHED_POLICIES};
pub use pending_sign_ins::{MAX_ATTEMPTS, NewPending, PENDING_SECS, Pending};
pub use queue::{Outbound, QueueStats, QueuedMessage, QueuedRecipient};
pub use reports::{DmarcReport, DmarcRow, DmarcSeen, ReportSent, TlsPolicy, TlsReport};
pub use search::{HeaderField, SearchRow, TextField};
pub use second_factor::{NewPasskey, Passkey, REQUIRE_ADMINS, TotpSecret};
pub use sessions::{SessionInfo, WebSession, random_token};
pub use sieve::{ActiveSieve, SieveError, SieveRefusal, SieveScript, SieveScriptInfo};
pub use sign_ins::SignIn;
pub use spam::{SpamHam, Trained};
pub use spam_policy::{DomainSpamPolicy, MAX_ZONES, SenderEntry, SpamPolicy, Zone};
pub use special_use::{CREATABLE_SPECIAL_USES, creatable_special_use};
pub use threads::{MAX_THREADED, ThreadRow};
pub use tls_results::{
    MAX_ROWS_PER_DAY as MAX_TLS_RESULT_ROWS, TlsAttempt, TlsPolicyType, TlsResultRow, utc_day,
};
pub use views::{MessageView, ViewParts};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("mailbox full: {address} would use {needed} of {quota} bytes")]
    QuotaExceeded {
        address: String,
        needed: u64,
        quota: u64,
    },
    /// The disk is full, or free space is below the reserve: try again later.
    #[error("insufficient storage: {0}")]
    StorageFull(String),
    #[error("database error: {0}")]
    Db(sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Stored data that cannot be what we wrote (a damaged file, a broken invariant): retrying
    /// does not help, an administrator must look.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A passing failure on our side with nothing wrong in the data: the delivery writer has
    /// stopped (shutdown), a batch could not be committed, the database stayed busy. The
    /// protocols answer it as temporary (SMTP 451, IMAP `NO [UNAVAILABLE]`, web 503).
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
}

impl From<sqlx::Error> for StoreError {
    /// Database errors that mean "no space" become [`StoreError::StorageFull`], wherever they
    /// happen, so every caller can tell a full disk from a broken database.
    fn from(e: sqlx::Error) -> StoreError {
        if space::is_full(&e) {
            StoreError::StorageFull(e.to_string())
        } else if matches!(e, sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed) {
            // No connection in time (the writer busy for longer than the pool waits) or the
            // store shutting down: nothing is wrong with the data.
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Db(e)
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A change to mail, announced after its commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Appended {
        account_id: i64,
        mailbox_id: i64,
        uid: u32,
        modseq: u64,
    },
    FlagsChanged {
        account_id: i64,
        mailbox_id: i64,
        uids: Vec<u32>,
        modseq: u64,
    },
    Expunged {
        account_id: i64,
        mailbox_id: i64,
        uids: Vec<u32>,
        modseq: u64,
    },
    /// Mailboxes created, renamed or deleted.
    MailboxesChanged { account_id: i64 },
}

impl Change {
    /// The account whose mail changed.
    pub fn account_id(&self) -> i64 {
        match self {
            Change::Appended { account_id, .. }
            | Change::FlagsChanged { account_id, .. }
            | Change::Expunged { account_id, .. }
            | Change::MailboxesChanged { account_id } => *account_id,
        }
    }

    /// The mailbox whose messages changed; `None` for a change to the list of mailboxes.
    pub fn mailbox(&self) -> Option<i64> {
        match self {
            Change::Appended { mailbox_id, .. }
            | Change::FlagsChanged { mailbox_id, .. }
            | Change::Expunged { mailbox_id, .. } => Some(*mailbox_id),
            Change::MailboxesChanged { .. } => None,
        }
    }
}

/// The change bus: one broadcast channel for the process. A receiver that lags behind gets
/// `RecvError::Lagged` and must re-read what it shows; nothing blocks a delivery.
#[derive(Clone)]
pub struct ChangeBus {
    sender: broadcast::Sender<Change>,
    /// Every change counts as activity (see `memory.rs`).
    activity: memory::Activity,
}

impl ChangeBus {
    fn new() -> ChangeBus {
        ChangeBus {
            sender: broadcast::channel(4096).0,
            activity: Default::default(),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.sender.subscribe()
    }

    /// How many listeners are subscribed now (IMAP sessions in a mailbox, open webmail pages).
    pub fn listeners(&self) -> usize {
        self.sender.receiver_count()
    }

    fn announce(&self, change: Change) {
        self.activity.touch();
        // No receiver is not an error: nobody is watching.
        let _ = self.sender.send(change);
    }
}

#[derive(Clone)]
pub struct Store {
    writer: SqlitePool,
    reader: SqlitePool,
    bus: ChangeBus,
    deliverer: deliver::Deliverer,
    /// Wakes the outbound worker when something is queued.
    queue_wake: std::sync::Arc<tokio::sync::Notify>,
    /// Event counts not yet written (see `events`).
    events: events::Pending,
    /// Reputation counts from deliveries not yet written (see `spam_policy`).
    reputation: spam_policy::Pending,
    /// Raised after every change to Sieve scripts (see `sieve`), so delivery can keep
    /// accounts' active scripts in memory and read them again only after a change.
    sieve_changes: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Free space on the database's disk and the reserve kept there.
    space: std::sync::Arc<space::Space>,
    /// Held while a checkpoint runs to make room (see `space`).
    checkpointing: std::sync::Arc<tokio::sync::Mutex<()>>,
}

const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// The message `/healthz` checks there is room for.
const HEALTH_MESSAGE_SIZE: u64 = 1 << 20;
/// How long `/healthz` waits for the writer (it queues behind deliveries).
const HEALTH_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The writer pool's `after_release` check: a connection whose `COMMIT` or `ROLLBACK` failed
/// is still inside a transaction as far as sqlx knows, and every `BEGIN` on it would fail
/// ("attempted to call begin_with at non-zero transaction depth"). It is closed instead of
/// returned, and the pool opens a fresh one for the next write.
async fn replace_if_in_transaction(conn: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    use sqlx::Connection;
    // The rollback of a dropped transaction is queued on the connection's worker; the ping
    // answers after it has run, so the depth read next is the final one.
    conn.ping().await?;
    if conn.is_in_transaction() {
        tracing::warn!(
            "the database writer is left inside a failed transaction: replacing its connection"
        );
        return Ok(false);
    }
    Ok(true)
}

/// Refuses to open an existing database file of zero bytes. SQLite would take it for a new
/// database and the server would set up a fresh installation over it (a new admin password,
/// new DKIM keys), which is never what a truncated or half-copied database needs.
fn refuse_empty(path: &Path) -> Result<()> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    if !meta.is_file() || meta.len() > 0 {
        return Ok(());
    }
    let mut beside = Vec::new();
    let name = path.file_name().map(|n| n.to_string_lossy().to_string());
    if let (Some(dir), Some(name)) = (path.parent(), name) {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let other = entry.file_name().to_string_lossy().to_string();
                if other != name && other.starts_with(&name) {
                    let len = entry.metadata().map_or(0, |m| m.len());
                    beside.push(format!("{other} ({len} bytes)"));
                }
            }
        }
    }
    beside.sort();
    let beside = if beside.is_empty() {
        String::new()
    } else {
        format!(
            " Beside it: {}; keep them (a -wal file may hold the latest mail).",
            beside.join(", ")
        )
    };
    Err(StoreError::Corrupt(format!(
        "{} is empty (0 bytes). Refusing to start: on an empty file Mailroom would set up a new \
         installation (a new admin password, new DKIM keys) over what may be a truncated \
         database.{beside} Restore the last backup with `mailroom restore`, or delete the empty \
         file to start afresh.",
        path.display()
    )))
}

/// What a database file holds, for a backup's or a restore's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContents {
    pub messages: i64,
    /// Each account's address and message count.
    pub accounts: Vec<(String, i64)>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    /// An existing file of zero bytes is refused (see [`refuse_empty`]).
    pub async fn open(path: &Path) -> Result<Store> {
        refuse_empty(path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            use std::os::unix::fs::DirBuilderExt;
            // Mail, password hashes, keys: the owner's only, whatever the umask.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| {
                    StoreError::Invalid(format!("cannot create {}: {e}", dir.display()))
                })?;
        }
        let new = !path.exists();
        let url = format!("sqlite://{}", path.display());
        let base = SqliteConnectOptions::from_str(&url)?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("cache_size", "-16000")
            .pragma("temp_store", "memory")
            // Checkpoint every ~16 MB of WAL rather than 4 MB: pages rewritten by many commits
            // (mailbox counters, index and FTS segments) are copied back once, not four times.
            .pragma("wal_autocheckpoint", "4000")
            // After a checkpoint resets the WAL, shrink its file back to 64 MB: a big commit
            // (a batch of large messages) would otherwise keep its disk space for good, which
            // matters on a nearly full disk.
            .pragma("journal_size_limit", "67108864");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .after_release(|conn, _| Box::pin(replace_if_in_transaction(conn)))
            .connect_with(base.clone().create_if_missing(true))
            .await?;
        if new {
            // The WAL and shared-memory files SQLite makes later take the database's mode.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
                |e| StoreError::Invalid(format!("cannot restrict {}: {e}", path.display())),
            )?;
        }
        migrate(&writer, path).await?;
        let readers = std::thread::available_parallelism().map_or(4, |n| n.get().max(4));
        let reader = SqlitePoolOptions::new()
            .max_connections(readers as u32)
            .idle_timeout(None)
            .max_lifetime(None)
            // Smaller caches for readers: every commit invalidates each reader's cache, and
            // dropping it costs time in proportion to its size (pcache1TruncateUnsafe showed
            // in the SMTP profile); the OS page cache keeps the file warm anyway.
            .connect_with(base.read_only(true).pragma("cache_size", "-2000"))
            .await?;
        let bus = ChangeBus::new();
        let space = std::sync::Arc::new(space::Space::new(path));
        let queue_wake: std::sync::Arc<tokio::sync::Notify> = Default::default();
        Ok(Store {
            deliverer: deliver::Deliverer::spawn(
                writer.clone(),
                bus.clone(),
                space.clone(),
                queue_wake.clone(),
            ),
            space,
            checkpointing: Default::default(),
            writer,
            reader,
            bus,
            queue_wake,
            events: Default::default(),
            reputation: Default::default(),
            sieve_changes: Default::default(),
        })
    }

    pub fn changes(&self) -> &ChangeBus {
        &self.bus
    }

    /// Keeps `bytes` free on the database's disk: new mail is refused (temporarily) when
    /// storing it would leave less. 0 turns the check off (SQLite's own "disk full" remains).
    pub fn set_min_free_space(&self, bytes: u64) {
        self.space.set_reserve(bytes);
    }

    /// Bytes free on the database's disk, if the system says.
    pub fn free_space(&self) -> Option<u64> {
        self.space.available()
    }

    /// Whether a message of `size` bytes would be taken now, for a protocol to refuse early
    /// (SMTP at MAIL FROM) instead of after the whole message came.
    pub async fn room_for(&self, size: u64) -> Result<()> {
        self.room(size, false).await
    }

    /// Refuses new mail of `size` bytes while the disk is short of space.
    async fn admit(&self, size: usize) -> Result<()> {
        self.room(size as u64, true).await
    }

    /// Whether a message of `size` fits (`count`: and is about to be stored), after a
    /// checkpoint when the WAL is what takes the room (see `space`).
    async fn room(&self, size: u64, count: bool) -> Result<()> {
        match self.space.check(size, count) {
            Ok(()) => return Ok(()),
            Err(space::Refusal::Short(why)) => return Err(StoreError::StorageFull(why)),
            Err(space::Refusal::Checkpoint(_)) => {}
        }
        {
            // One checkpoint at a time; whoever waited checks again first.
            let _one = self.checkpointing.lock().await;
            if let Err(space::Refusal::Checkpoint(_)) = self.space.check(size, false) {
                let started = std::time::Instant::now();
                let before = self.space.wal_len();
                match sqlx::query_scalar::<_, i64>("PRAGMA wal_checkpoint(TRUNCATE)")
                    .fetch_one(&self.writer)
                    .await
                {
                    Ok(busy) => tracing::info!(
                        "disk short of space: WAL checkpoint in {:.0?}, WAL {before} -> {} bytes{}",
                        started.elapsed(),
                        self.space.wal_len(),
                        if busy != 0 {
                            " (readers kept it from finishing)"
                        } else {
                            ""
                        }
                    ),
                    Err(e) => tracing::warn!("disk short of space: WAL checkpoint failed: {e}"),
                }
                self.space.forget();
            }
        }
        match self.space.check(size, count) {
            Ok(()) => Ok(()),
            Err(space::Refusal::Short(why) | space::Refusal::Checkpoint(why)) => {
                Err(StoreError::StorageFull(why))
            }
        }
    }

    /// A write transaction that holds SQLite's write lock from its first statement.
    async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Closes both pools, checkpointing the WAL.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    pub async fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.reader)
            .await?)
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn delete_meta(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM meta WHERE key = ?")
            .bind(key)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}

/// Brings the schema up to date. Migrations are forward-only and sqlx runs each in a
/// transaction; before the first pending one touches a database that already holds data, a
/// copy is written next to it (`<db>.before-migration-<version>`), so an upgrade that goes
/// wrong can be undone with `mailroom restore`.
async fn migrate(writer: &SqlitePool, path: &Path) -> Result<()> {
    let migrator = sqlx::migrate!("./migrations");
    let has_table: bool = sqlx::query_scalar(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(writer)
    .await?;
    if has_table {
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = 1")
                .fetch_all(writer)
                .await?;
        let pending = migrator
            .iter()
            .any(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version));
        if pending {
            let current = applied.iter().max().copied().unwrap_or(0);
            let mut name = path.as_os_str().to_owned();
            name.push(format!(".before-migration-{current}"));
            let backup = std::path::PathBuf::from(name);
            if !backup.exists() {
                let dest = backup.to_str().ok_or_else(|| {
                    StoreError::Invalid(format!("{} is not UTF-8", backup.display()))
                })?;
                sqlx::query("VACUUM INTO ?")
                    .bind(dest)
                    .execute(writer)
                    .await?;
                tracing::info!(
                    "schema upgrade from version {current}: the database was copied to {} first",
                    backup.display()
                );
            }
        }
    }
    migrator.run(writer).await?;
    repack_envelopes(writer).await?;
    threads::fill_thread_refs(writer).await?;
    search::reindex_text(writer).await
}

/// The envelopes still stored as JSON, found through the partial index of migration 0005
/// (SQLite's planner prefers a scan of `blobs_envelope` over it, so it is named).
const JSON_ENVELOPES_INDEXED: &str = "SELECT id, envelope FROM blobs INDEXED BY blobs_json_envelope
     WHERE typeof(envelope) = 'text' LIMIT 1000";
/// The same without the index, should a later migration drop it (`INDEXED BY` a missing index
/// is an error, which stopped every start): one scan of the bodies per batch.
const JSON_ENVELOPES: &str =
    "SELECT id, envelope FROM blobs WHERE typeof(envelope) = 'text' LIMIT 1000";

/// Converts envelopes stored as JSON (before migration 0005) to the packed form, a batch per
/// transaction. Runs at every open; with nothing left to do it is one lookup in an empty index.
async fn repack_envelopes(writer: &SqlitePool) -> Result<()> {
    let mut done = 0usize;
    let indexed: bool = sqlx::query_scalar(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'index' AND name = 'blobs_json_envelope'",
    )
    .fetch_one(writer)
    .await?;
    let query = if indexed {
        JSON_ENVELOPES_INDEXED
    } else {
        JSON_ENVELOPES
    };
    loop {
        let rows: Vec<(i64, String)> = sqlx::query_as(query).fetch_all(writer).await?;
        if rows.is_empty() {
            break;
        }
        let mut tx = writer.begin().await?;
        for (id, json) in &rows {
            // An unreadable one (never written by us) becomes an empty envelope rather than
            // a server that does not start (FETCH of it failed before).
            let envelope = serde_json::from_str(json).unwrap_or_else(|e| {
                tracing::warn!("stored envelope of body {id} is unreadable ({e}): left empty");
                crate::mime::Envelope::default()
            });
            sqlx::query("UPDATE blobs SET envelope = ? WHERE id = ?")
                .bind(crate::mime::pack_envelope(&envelope))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        done += rows.len();
    }
    if done > 0 {
        tracing::info!("converted {done} stored envelopes to the packed form");
    }
    Ok(())
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Store {
    /// Writes a consistent copy of the database to `dest` (`VACUUM INTO`, on a read connection:
    /// one snapshot, while writers go on).
    pub async fn copy_into(&self, dest: &Path) -> Result<()> {
        let dest = dest
            .to_str()
            .ok_or_else(|| StoreError::Invalid(format!("{} is not UTF-8", dest.display())))?;
        sqlx::query("VACUUM INTO ?")
            .bind(dest)
            .execute(&self.reader)
            .await?;
        Ok(())
    }

    /// Checks the database file at `path` (SQLite's integrity check) and says what it holds.
    pub async fn check_file(path: &Path) -> Result<FileContents> {
        use sqlx::ConnectOptions;
        let mut conn = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .connect()
            .await?;
        let verdict: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut conn)
            .await?;
        if verdict != "ok" {
            return Err(StoreError::Invalid(format!("integrity check: {verdict}")));
        }
        let messages: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages")
            .fetch_one(&mut conn)
            .await?;
        let accounts: Vec<(String, i64)> =
            sqlx::query_as("SELECT address, message_count FROM accounts ORDER BY address")
                .fetch_all(&mut conn)
                .await?;
        Ok(FileContents { messages, accounts })
    }

    /// For `/healthz`: a read, a write transaction begun and rolled back (what failed on a
    /// writer wedged inside a transaction), and enough free space for new mail
    /// ([`StoreError::StorageFull`] says why not).
    pub async fn health(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        let probe = async {
            let tx = self.write().await?;
            tx.rollback().await?;
            Ok::<_, StoreError>(())
        };
        tokio::time::timeout(HEALTH_WRITE_TIMEOUT, probe)
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!(
                    "the writer could not begin a transaction within {HEALTH_WRITE_TIMEOUT:?}"
                ))
            })??;
        // Healthy means a message of ordinary size still fits: monitoring hears of a full disk
        // a little before the first small message is refused, not after.
        self.room(HEALTH_MESSAGE_SIZE, false).await?;
        self.space
            .failed_recently()
            .map_err(StoreError::StorageFull)
    }

    /// Runs SQLite's `PRAGMA quick_check` on the database at `path` (if it exists) before the
    /// server opens it, and says how long it took. Damage is refused with the first problems
    /// SQLite found: a server started on a damaged file fails later, message by message (a
    /// page overwritten in the middle showed only as `NO [SERVERBUG]` on FETCH), and every
    /// write onto it risks spreading the damage. `quick_check` reads every page and checks the
    /// b-tree structure (it skips only the comparison of indexes with their tables): on this
    /// project's machine 0.3 s for a 1 GB database in the page cache, 7 s read cold from disk.
    pub async fn quick_check(path: &Path) -> Result<Option<Duration>> {
        use sqlx::ConnectOptions;
        refuse_empty(path)?;
        if !path.exists() {
            return Ok(None);
        }
        let started = std::time::Instant::now();
        let damaged = |what: String| {
            StoreError::Corrupt(format!(
                "{} is damaged ({what}). Refusing to start on it: restore the last backup with \
                 `mailroom restore`, or salvage what is readable with `sqlite3 {} .recover`",
                path.display(),
                path.display()
            ))
        };
        // SQLITE_CORRUPT and SQLITE_NOTADB mean damage; anything else (permissions, a lock
        // held too long) is reported as it is.
        let fail = |e: sqlx::Error, doing: &str| {
            let code = e
                .as_database_error()
                .and_then(|d| d.code())
                .and_then(|c| c.parse::<i64>().ok());
            match code.map(|c| c & 0xff) {
                Some(11 | 26) => damaged(format!("{doing}: {e}")),
                _ => StoreError::from(e),
            }
        };
        let mut conn = SqliteConnectOptions::new()
            .filename(path)
            .busy_timeout(BUSY_TIMEOUT)
            .connect()
            .await
            .map_err(|e| fail(e, "opening it"))?;
        // Table by table, the virtual ones (the search index) left out: since SQLite 3.44 a
        // whole-file quick_check also runs FTS5's own integrity check, which compares the
        // index with every stored text and took 10x the b-tree walk (1.8 s against 0.16 s for
        // 8,000 messages), so start-up grew ten times faster than the mail. The index's own
        // tables (`blob_text_data`, ...) are ordinary tables and still have their pages and
        // b-trees checked; a wrong index is a wrong search, which `mailroom` can rebuild, not
        // lost mail. The names come from the schema, not from a peer; a pragma takes no
        // parameters, so each is quoted as an identifier.
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_schema WHERE type = 'table' \
             AND sql NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name",
        )
        .fetch_all(&mut conn)
        .await
        .map_err(|e| fail(e, "reading the schema"))?;
        let mut verdict: Vec<String> = Vec::new();
        for table in tables {
            let pragma = format!("PRAGMA quick_check(\"{}\")", table.replace('"', "\"\""));
            let found: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(pragma))
                .fetch_all(&mut conn)
                .await
                .map_err(|e| fail(e, "quick_check"))?;
            verdict.extend(found.into_iter().filter(|f| f != "ok"));
            if verdict.len() >= 20 {
                break;
            }
        }
        let _ = sqlx::Connection::close(conn).await;
        if !verdict.is_empty() {
            let found = verdict.join("; ").replace('\n', " ");
            return Err(damaged(format!("quick_check: {found}")));
        }
        Ok(Some(started.elapsed()))
    }
}

/// What the store's unit tests start from.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
pub(crate) mod testing {
    use super::{Delivery, NewAccount, Store, Target};

    /// A new store in a temporary directory (kept alive by the first element) with the
    /// domain example.org and an account for each address, whose ids come in the same order.
    pub async fn store_with_accounts(addresses: &[&str]) -> (tempfile::TempDir, Store, Vec<i64>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.db")).await.unwrap();
        store.add_domain("example.org").await.unwrap();
        let mut ids = Vec::new();
        for address in addresses {
            let account = store
                .create_account(NewAccount {
                    address,
                    password_hash: "x",
                    quota_bytes: 0,
                    is_admin: false,
                })
                .await
                .unwrap();
            ids.push(account.id);
        }
        (dir, store, ids)
    }

    /// Delivers `raw` to the account's INBOX; its UID.
    pub async fn deliver_to_inbox(store: &Store, account_id: i64, raw: &[u8]) -> u32 {
        let delivery = Delivery {
            raw,
            internal_date: None,
        };
        let report = store
            .deliver(delivery, &[Target::inbox(account_id)])
            .await
            .unwrap();
        report.delivered[0].uid
    }

    /// `n` small distinct messages (a subject and 100 bytes of body) delivered to the
    /// account's INBOX: the messages and their UIDs.
    pub async fn small_messages(
        store: &Store,
        account_id: i64,
        n: usize,
    ) -> (Vec<Vec<u8>>, Vec<u32>) {
        let raws: Vec<Vec<u8>> = (0..n)
            .map(|i| format!("Subject: {i}\r\n\r\n{}\r\n", "x".repeat(100)).into_bytes())
            .collect();
        let mut uids = Vec::new();
        for raw in &raws {
            uids.push(deliver_to_inbox(store, account_id, raw).await);
        }
        (raws, uids)
    }
}

#[cfg(test)]
mod tests {
    /// A body written before migration 0005: its envelope as JSON text.
    async fn old_body(store: &super::Store) {
        sqlx::query(
            "INSERT INTO blobs (hash, refcount, size, data, envelope, body_structure, subject,
                                from_display, to_display, cc_display, has_attachment, snippet)
             VALUES ('h', 1, 1, x'00', '{\"subject\":\"old\"}', '{}', '', '', '', '', 0, '')",
        )
        .execute(&store.writer)
        .await
        .unwrap();
    }

    async fn json_left(store: &super::Store) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM blobs WHERE typeof(envelope) = 'text'")
            .fetch_one(&store.writer)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn old_envelopes_are_converted_with_or_without_their_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::Store::open(&dir.path().join("m.db")).await.unwrap();
        old_body(&store).await;
        super::repack_envelopes(&store.writer).await.unwrap();
        assert_eq!(json_left(&store).await, 0);

        // A later migration may drop the index: the store still opens and converts.
        sqlx::query("DELETE FROM blobs")
            .execute(&store.writer)
            .await
            .unwrap();
        sqlx::query("DROP INDEX blobs_json_envelope")
            .execute(&store.writer)
            .await
            .unwrap();
        old_body(&store).await;
        super::repack_envelopes(&store.writer).await.unwrap();
        assert_eq!(json_left(&store).await, 0);
    }
}
