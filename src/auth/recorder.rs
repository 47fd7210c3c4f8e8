//! Writes what logins leave behind (the sign-in history, an app password's last use) in
//! batches, off the login path: a login hands its records to a bounded channel and returns; one
//! task writes whatever has queued up in one transaction.
//!
//! A login never waits for the database: when the channel is full (the disk is stuck, or an
//! attack produces failures faster than they are written) the record is dropped, counted in
//! the `sign_in_records_dropped` event (on `/metrics` and the dashboard) and logged (the first
//! drop, then every [`LOG_EVERY`]th). A batch the store refuses is logged with its size and
//! counted in `sign_in_records_unwritten`. Nothing is lost silently.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use crate::store::{AppPasswordUse, SignIn, Store};

/// Records waiting to be written, at most.
pub const QUEUE: usize = 4096;
/// Records written in one transaction, at most.
const BATCH: usize = 512;
/// Dropped records between two log lines about them.
const LOG_EVERY: u64 = 1000;

enum Record {
    SignIn(SignIn),
    Used(AppPasswordUse),
    /// Answered once everything queued before it is written.
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Record>,
    store: Store,
    dropped: Arc<AtomicU64>,
}

impl Recorder {
    /// A recorder whose writer runs on the current tokio runtime until every clone is gone.
    /// Without a runtime (a synchronous caller) nothing is written, and each record counts as
    /// dropped.
    pub fn start(store: Store) -> Recorder {
        let (tx, rx) = mpsc::channel(QUEUE);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(write_batches(store.clone(), rx));
        }
        Recorder {
            tx,
            store,
            dropped: Arc::default(),
        }
    }

    pub fn sign_in(&self, sign_in: SignIn) {
        self.send(Record::SignIn(sign_in));
    }

    pub fn used(&self, used: AppPasswordUse) {
        self.send(Record::Used(used));
    }

    fn send(&self, record: Record) {
        if self.tx.try_send(record).is_err() {
            self.store.count_event("sign_in_records_dropped");
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n == 1 || n.is_multiple_of(LOG_EVERY) {
                tracing::warn!(
                    target: "mailroom::auth",
                    "sign-in history: {n} records dropped so far (the writer is behind)"
                );
            }
        }
    }

    /// Records dropped since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every record queued before this call is written (tests, shutdown).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Record::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_batches(store: Store, mut rx: mpsc::Receiver<Record>) {
    let mut buffer = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut buffer, BATCH).await > 0 {
        let mut sign_ins = Vec::new();
        let mut uses = Vec::new();
        let mut flushes = Vec::new();
        for record in buffer.drain(..) {
            match record {
                Record::SignIn(s) => sign_ins.push(s),
                Record::Used(u) => uses.push(u),
                Record::Flush(done) => flushes.push(done),
            }
        }
        if let Err(e) = store.record_sign_ins(&sign_ins).await {
            store.count_events("sign_in_records_unwritten", sign_ins.len() as i64);
            tracing::error!(
                target: "mailroom::auth",
                "sign-in history: {} sign-ins not written: {e}",
                sign_ins.len()
            );
        }
        if let Err(e) = store.record_app_password_uses(&uses).await {
            store.count_events("sign_in_records_unwritten", uses.len() as i64);
            tracing::error!(
                target: "mailroom::auth",
                "app passwords: {} last uses not written: {e}",
                uses.len()
            );
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}
