//! The one delivery path. SMTP (inbound and the local part of a submission), the webmail's
//! sends, bounces and IMAP APPEND all store mail through [`Store::deliver`] (or
//! [`Store::deliver_atomic`]):
//!
//! 1. the caller's task parses the message once (`mime::analyze`) and hashes it, outside any
//!    transaction;
//! 2. the delivery joins the **group commit**: one writer task takes every delivery waiting at
//!    that moment and stores them all in one write transaction, each inside its own savepoint
//!    (so one failing delivery never spoils the others): check each target's quota, add the
//!    body (or a reference to the identical body already stored) with its parsed form and search
//!    text, give each copy its mailbox's next UID and MODSEQ, count the bytes against the quota;
//! 3. one commit, fsynced (`synchronous=FULL`), then every caller gets its answer and the new
//!    messages are announced on the change bus.
//!
//! Why group commit: a durable commit costs one fsync (about 2 ms here), which capped delivery at
//! ~500 messages/s whatever the concurrency (`cargo bench --bench deliver`, before). Sharing the
//! fsync among everything that arrived meanwhile keeps each reply after its commit and lets
//! throughput grow with concurrency. A lone delivery is not delayed: the writer never waits for
//! company, it only takes what is already queued.

use sha2::{Digest, Sha256};
use sqlx::{Sqlite, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::messages::Flags;
use super::{Change, ChangeBus, Result, StoreError, blobs, now};
use crate::mime::{self, Analysis};

/// Messages above this size are parsed on the blocking pool so a big attachment does not stall
/// a runtime thread.
const PARSE_INLINE_MAX: usize = 256 * 1024;
/// Bounds on one group commit: deliveries, and bytes of message data.
const BATCH_MAX: usize = 256;
const BATCH_MAX_BYTES: usize = 64 << 20;

/// Where one copy goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub account_id: i64,
    /// `None` means the account's INBOX.
    pub mailbox_id: Option<i64>,
    pub flags: Flags,
    pub keywords: Vec<String>,
}

impl Target {
    pub fn inbox(account_id: i64) -> Target {
        Target {
            account_id,
            mailbox_id: None,
            flags: Flags::default(),
            keywords: Vec::new(),
        }
    }
}

/// One message to store.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub raw: &'a [u8],
    /// Unix seconds; `None` means now.
    pub internal_date: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub account_id: i64,
    pub mailbox_id: i64,
    pub uid: u32,
    pub modseq: u64,
}

#[derive(Debug, Default)]
pub struct DeliveryReport {
    /// In the order of the targets that were stored.
    pub delivered: Vec<Delivered>,
    /// Targets refused, each with its reason (over quota).
    pub refused: Vec<(Target, StoreError)>,
}

/// A delivery parsed and waiting for the writer.
struct Job {
    raw: Vec<u8>,
    analysis: Analysis,
    hash: String,
    internal_date: i64,
    targets: Vec<Target>,
    /// All targets or none: a refused target fails the whole delivery.
    atomic: bool,
    reply: oneshot::Sender<Result<DeliveryReport>>,
}

/// The handle callers use to reach the writer task.
#[derive(Clone)]
pub(super) struct Deliverer(mpsc::Sender<Job>);

impl Deliverer {
    /// Starts the writer task on `writer`, announcing on `bus`.
    pub(super) fn spawn(writer: sqlx::SqlitePool, bus: ChangeBus) -> Deliverer {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(writer_task(writer, bus, rx));
        Deliverer(tx)
    }
}

impl super::Store {
    /// Stores one message for each target; a target over quota is refused without failing the
    /// others. The report says which.
    pub async fn deliver(
        &self,
        delivery: Delivery<'_>,
        targets: &[Target],
    ) -> Result<DeliveryReport> {
        self.enqueue(delivery, targets, false).await
    }

    /// Stores one message for every target, or for none: when a target is over quota nothing is
    /// stored and the error says whose mailbox is full. SMTP uses this so a `250` means every
    /// recipient has the message.
    pub async fn deliver_atomic(
        &self,
        delivery: Delivery<'_>,
        targets: &[Target],
    ) -> Result<Vec<Delivered>> {
        Ok(self.enqueue(delivery, targets, true).await?.delivered)
    }

    async fn enqueue(
        &self,
        delivery: Delivery<'_>,
        targets: &[Target],
        atomic: bool,
    ) -> Result<DeliveryReport> {
        if targets.is_empty() {
            return Ok(DeliveryReport::default());
        }
        let analysis = analyze(delivery.raw).await?;
        let (reply, answer) = oneshot::channel();
        let job = Job {
            raw: delivery.raw.to_vec(),
            analysis,
            hash: hex(&Sha256::digest(delivery.raw)),
            internal_date: delivery.internal_date.unwrap_or_else(now),
            targets: targets.to_vec(),
            atomic,
            reply,
        };
        self.deliverer
            .0
            .send(job)
            .await
            .map_err(|_| StoreError::Corrupt("the delivery writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Corrupt("the delivery writer has stopped".into()))?
    }
}

async fn writer_task(writer: sqlx::SqlitePool, bus: ChangeBus, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let mut bytes = batch[0].raw.len();
        while batch.len() < BATCH_MAX && bytes < BATCH_MAX_BYTES {
            match rx.try_recv() {
                Ok(job) => {
                    bytes += job.raw.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        commit_batch(&writer, &bus, batch).await;
    }
}

/// Stores a batch in one transaction and answers every job.
async fn commit_batch(writer: &sqlx::SqlitePool, bus: &ChangeBus, batch: Vec<Job>) {
    let mut results: Vec<Result<DeliveryReport>> = Vec::with_capacity(batch.len());
    let outcome: Result<()> = async {
        let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
        for job in &batch {
            // A savepoint per delivery: its failure rolls back only its own writes.
            let mut sp = sqlx::Acquire::begin(&mut *tx).await?;
            match store_one(&mut sp, job).await {
                Ok(report) => {
                    sp.commit().await?;
                    results.push(Ok(report));
                }
                Err(e) => {
                    sp.rollback().await?;
                    results.push(Err(e));
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => {
            for (job, result) in batch.into_iter().zip(results) {
                if let Ok(report) = &result {
                    for d in &report.delivered {
                        bus.announce(Change::Appended {
                            account_id: d.account_id,
                            mailbox_id: d.mailbox_id,
                            uid: d.uid,
                            modseq: d.modseq,
                        });
                    }
                }
                let _ = job.reply.send(result);
            }
        }
        Err(e) => {
            // Nothing of the batch was committed; every caller learns so.
            tracing::error!("delivery commit failed: {e}");
            let text = e.to_string();
            for job in batch {
                let _ = job
                    .reply
                    .send(Err(StoreError::Corrupt(format!("commit failed: {text}"))));
            }
        }
    }
}

/// One delivery inside its savepoint.
async fn store_one(tx: &mut Transaction<'_, Sqlite>, job: &Job) -> Result<DeliveryReport> {
    let size = job.raw.len() as i64;
    // Quotas first, so the body is only stored if someone takes it.
    let mut report = DeliveryReport::default();
    let mut accepted = Vec::with_capacity(job.targets.len());
    // Bytes already promised to each account in this delivery.
    let mut pending: Vec<(i64, i64)> = Vec::new();
    for target in &job.targets {
        let (address, quota, used): (String, i64, i64) =
            sqlx::query_as("SELECT address, quota_bytes, used_bytes FROM accounts WHERE id = ?")
                .bind(target.account_id)
                .fetch_optional(&mut **tx)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("account {}", target.account_id)))?;
        let promised = pending
            .iter()
            .find(|(id, _)| *id == target.account_id)
            .map_or(0, |(_, b)| *b);
        let needed = used + promised + size;
        if quota > 0 && needed > quota {
            let err = StoreError::QuotaExceeded {
                address,
                needed: needed as u64,
                quota: quota as u64,
            };
            if job.atomic {
                return Err(err);
            }
            report.refused.push((target.clone(), err));
            continue;
        }
        match pending.iter_mut().find(|(id, _)| *id == target.account_id) {
            Some(p) => p.1 += size,
            None => pending.push((target.account_id, size)),
        }
        accepted.push(target);
    }
    if accepted.is_empty() {
        return Ok(report);
    }

    let blob_id = blobs::acquire(
        tx,
        &job.hash,
        &job.raw,
        &job.analysis,
        accepted.len() as i64,
    )
    .await?;
    for target in accepted {
        let mailbox: Option<(i64, u32, i64)> = match target.mailbox_id {
            Some(id) => sqlx::query_as(
                "UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1
                 WHERE id = ? AND account_id = ? RETURNING id, uidnext - 1, highestmodseq",
            )
            .bind(id)
            .bind(target.account_id),
            None => sqlx::query_as(
                "UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1
                 WHERE account_id = ? AND name = 'INBOX' RETURNING id, uidnext - 1, highestmodseq",
            )
            .bind(target.account_id),
        }
        .fetch_optional(&mut **tx)
        .await?;
        let (mailbox_id, uid, modseq) = mailbox.ok_or_else(|| {
            StoreError::NotFound(format!("mailbox of account {}", target.account_id))
        })?;
        sqlx::query(
            "INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internal_date, size, blob_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(mailbox_id)
        .bind(uid)
        .bind(modseq)
        .bind(target.flags.bits())
        .bind(target.keywords.join(" "))
        .bind(job.internal_date)
        .bind(size)
        .bind(blob_id)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "UPDATE accounts SET used_bytes = used_bytes + ?, message_count = message_count + 1 WHERE id = ?",
        )
        .bind(size)
        .bind(target.account_id)
        .execute(&mut **tx)
        .await?;
        report.delivered.push(Delivered {
            account_id: target.account_id,
            mailbox_id,
            uid,
            modseq: modseq as u64,
        });
    }
    Ok(report)
}

async fn analyze(raw: &[u8]) -> Result<Analysis> {
    if raw.len() <= PARSE_INLINE_MAX {
        return Ok(mime::analyze(raw));
    }
    let owned = raw.to_vec();
    tokio::task::spawn_blocking(move || mime::analyze(&owned))
        .await
        .map_err(|e| StoreError::Corrupt(format!("message parser failed: {e}")))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
