//! The one delivery path. SMTP (inbound and the local part of a submission), the webmail's
//! sends, bounces and IMAP APPEND all store mail through [`Store::deliver`] (or
//! [`Store::deliver_atomic`]):
//!
//! 1. the caller's task parses the message once (`mime::analyze`) and hashes it, outside any
//!    transaction;
//! 2. the delivery joins the **group commit**: one writer task takes every delivery waiting at
//!    that moment and stores them all in one write transaction: check each target's quota (a
//!    refusal concerns only its own delivery), add the body (or a reference to the identical
//!    body already stored) with its parsed form and search text, give each copy its mailbox's
//!    next UID and MODSEQ, count the bytes against the quota;
//! 3. one commit, fsynced (`synchronous=FULL`), then every caller gets its answer and the new
//!    messages are announced on the change bus.
//!
//! A batch whose commit fails is answered with the error by every caller in it, and nothing of
//! it is stored. When the failure is a full disk the answer is [`StoreError::StorageFull`] (a
//! temporary failure for the peer), the writer connection is replaced if SQLite's automatic
//! rollback left it inside a transaction (see the store's `after_release` check), and the next
//! batch simply tries again: that is how deliveries resume once space returns. Before a message
//! joins the queue, the free-space reserve is checked (`space`).
//!
//! Why group commit: a durable commit costs one fsync (about 2 ms here), which capped delivery at
//! ~500 messages/s whatever the concurrency (`cargo bench --bench deliver`, before). Sharing the
//! fsync among everything that arrived meanwhile keeps each reply after its commit and lets
//! throughput grow with concurrency. A lone delivery is not delayed: the writer never waits for
//! company, it only takes what is already queued.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use sqlx::{QueryBuilder, Sqlite};
use tokio::sync::{mpsc, oneshot};

use super::messages::Flags;
use super::space::Space;
use super::{Change, ChangeBus, Result, StoreError, blobs, now};
use crate::mime::{self, Analysis};

/// Messages above this size are parsed on the blocking pool so a big attachment does not stall
/// a runtime thread.
const PARSE_INLINE_MAX: usize = 256 * 1024;
/// Bounds on one group commit: deliveries, copies, and bytes of message data.
const BATCH_MAX: usize = 256;
const BATCH_MAX_COPIES: usize = 4096;
const BATCH_MAX_BYTES: usize = 64 << 20;
/// Bound variables per statement, well under SQLite's 32766.
const VARS_PER_STATEMENT: usize = 8000;

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
    /// Starts the writer task on `writer`, announcing on `bus` and telling `space` when the
    /// disk was full and when deliveries succeed again.
    pub(super) fn spawn(
        writer: sqlx::SqlitePool,
        bus: ChangeBus,
        space: std::sync::Arc<Space>,
    ) -> Deliverer {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(writer_task(writer, bus, space, rx));
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
        // The body is stored once whatever the number of targets.
        self.admit(delivery.raw.len()).await?;
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
        let report = answer
            .await
            .map_err(|_| StoreError::Corrupt("the delivery writer has stopped".into()))??;
        self.count_events("delivered", report.delivered.len() as i64);
        Ok(report)
    }
}

async fn writer_task(
    writer: sqlx::SqlitePool,
    bus: ChangeBus,
    space: std::sync::Arc<Space>,
    mut rx: mpsc::Receiver<Job>,
) {
    while let Some(first) = rx.recv().await {
        let mut bytes = first.raw.len();
        let mut copies = first.targets.len();
        let mut batch = vec![first];
        while batch.len() < BATCH_MAX && bytes < BATCH_MAX_BYTES && copies < BATCH_MAX_COPIES {
            match rx.try_recv() {
                Ok(job) => {
                    bytes += job.raw.len();
                    copies += job.targets.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        commit_batch(&writer, &bus, &space, batch).await;
    }
}

/// Stores a batch in one transaction and answers every job.
async fn commit_batch(writer: &sqlx::SqlitePool, bus: &ChangeBus, space: &Space, batch: Vec<Job>) {
    match store_batch(writer, &batch).await {
        Ok(results) => {
            space.committed();
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
        Err(StoreError::StorageFull(why)) => {
            // Nothing of the batch was committed; every caller learns that the disk is full
            // (SMTP answers 452 4.3.1) and the next batch tries again.
            tracing::warn!(
                "delivery of {} messages failed for lack of space: {why}",
                batch.len()
            );
            space.failed_full();
            for job in batch {
                let _ = job.reply.send(Err(StoreError::StorageFull(why.clone())));
            }
        }
        Err(e) => {
            // Nothing of the batch was committed; every caller learns so (SMTP answers 451).
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

/// One stored copy: which job and target it serves, where it goes.
struct Copy {
    job: usize,
    account_id: i64,
    mailbox_id: i64,
    flags: Flags,
    keywords: String,
}

/// Stores a whole batch with a handful of statements, whatever its size: every check that can
/// refuse a single delivery (unknown account or mailbox, quota) is decided here in Rust from
/// two reads, so the writes cannot fail for one delivery alone and need no savepoints. Each
/// statement is a round trip to SQLite's thread, which is what a delivery used to spend its time
/// on, so they are counted per batch rather than per message.
async fn store_batch(
    writer: &sqlx::SqlitePool,
    batch: &[Job],
) -> Result<Vec<Result<DeliveryReport>>> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;

    // What the batch touches: accounts (with their quotas) and mailboxes (with their owners).
    let mut account_ids: Vec<i64> = batch
        .iter()
        .flat_map(|j| j.targets.iter().map(|t| t.account_id))
        .collect();
    account_ids.sort_unstable();
    account_ids.dedup();
    let mut accounts: HashMap<i64, (String, i64, i64)> = HashMap::new();
    for chunk in account_ids.chunks(VARS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT id, address, quota_bytes, used_bytes FROM accounts WHERE id IN (",
        );
        push_list(&mut q, chunk);
        for (id, address, quota, used) in q
            .build_query_as::<(i64, String, i64, i64)>()
            .fetch_all(&mut *tx)
            .await?
        {
            accounts.insert(id, (address, quota, used));
        }
    }
    let mut explicit: Vec<i64> = batch
        .iter()
        .flat_map(|j| j.targets.iter().filter_map(|t| t.mailbox_id))
        .collect();
    explicit.sort_unstable();
    explicit.dedup();
    let mut owner: HashMap<i64, i64> = HashMap::new();
    let mut inbox: HashMap<i64, i64> = HashMap::new();
    for chunk in explicit.chunks(VARS_PER_STATEMENT) {
        let mut q =
            QueryBuilder::<Sqlite>::new("SELECT id, account_id FROM mailboxes WHERE id IN (");
        push_list(&mut q, chunk);
        for (id, account) in q.build_query_as::<(i64, i64)>().fetch_all(&mut *tx).await? {
            owner.insert(id, account);
        }
    }
    for chunk in account_ids.chunks(VARS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT id, account_id FROM mailboxes WHERE name = 'INBOX' AND account_id IN (",
        );
        push_list(&mut q, chunk);
        for (id, account) in q.build_query_as::<(i64, i64)>().fetch_all(&mut *tx).await? {
            inbox.insert(account, id);
        }
    }

    // Decide every delivery: which copies are stored, which refused.
    let mut usage: HashMap<i64, i64> = accounts.iter().map(|(id, a)| (*id, a.2)).collect();
    let mut outcomes: Vec<Result<DeliveryReport>> = Vec::with_capacity(batch.len());
    let mut copies: Vec<Copy> = Vec::new();
    for (j, job) in batch.iter().enumerate() {
        let size = job.raw.len() as i64;
        let mut report = DeliveryReport::default();
        let mut planned: Vec<Copy> = Vec::new();
        let mut promised: HashMap<i64, i64> = HashMap::new();
        let mut failed: Option<StoreError> = None;
        for target in &job.targets {
            let Some((address, quota, _)) = accounts.get(&target.account_id) else {
                failed = Some(StoreError::NotFound(format!(
                    "account {}",
                    target.account_id
                )));
                break;
            };
            let mailbox = match target.mailbox_id {
                Some(id) => owner
                    .get(&id)
                    .filter(|a| **a == target.account_id)
                    .map(|_| id),
                None => inbox.get(&target.account_id).copied(),
            };
            let Some(mailbox_id) = mailbox else {
                failed = Some(StoreError::NotFound(format!(
                    "mailbox of account {}",
                    target.account_id
                )));
                break;
            };
            let before = usage.get(&target.account_id).copied().unwrap_or(0)
                + promised.get(&target.account_id).copied().unwrap_or(0);
            let needed = before + size;
            if *quota > 0 && needed > *quota {
                let err = StoreError::QuotaExceeded {
                    address: address.clone(),
                    needed: needed as u64,
                    quota: *quota as u64,
                };
                if job.atomic {
                    failed = Some(err);
                    break;
                }
                report.refused.push((target.clone(), err));
                continue;
            }
            *promised.entry(target.account_id).or_default() += size;
            planned.push(Copy {
                job: j,
                account_id: target.account_id,
                mailbox_id,
                flags: target.flags,
                keywords: target.keywords.join(" "),
            });
        }
        match failed {
            Some(e) => outcomes.push(Err(e)),
            None => {
                for (account, bytes) in promised {
                    *usage.entry(account).or_default() += bytes;
                }
                copies.extend(planned);
                outcomes.push(Ok(report));
            }
        }
    }
    if copies.is_empty() {
        tx.commit().await?;
        return Ok(outcomes);
    }

    // Bodies: one row per distinct content, referenced once per copy.
    let mut refs: Vec<(&str, usize, i64)> = Vec::new(); // (hash, first job, references)
    for c in &copies {
        let hash = batch.get(c.job).map_or("", |j| j.hash.as_str());
        match refs.iter_mut().find(|(h, _, _)| *h == hash) {
            Some(r) => r.2 += 1,
            None => refs.push((hash, c.job, 1)),
        }
    }
    let bodies: Vec<blobs::Body> = refs
        .iter()
        .filter_map(|(hash, job, refs)| {
            batch.get(*job).map(|j| blobs::Body {
                hash,
                raw: &j.raw,
                analysis: &j.analysis,
                refs: *refs,
            })
        })
        .collect();
    let blob_ids = blobs::acquire_many(&mut tx, &bodies).await?;

    // UIDs and MODSEQs: each mailbox advances once by its number of new messages.
    let mut per_mailbox: Vec<(i64, i64)> = Vec::new();
    for c in &copies {
        match per_mailbox.iter_mut().find(|(m, _)| *m == c.mailbox_id) {
            Some(p) => p.1 += 1,
            None => per_mailbox.push((c.mailbox_id, 1)),
        }
    }
    // mailbox -> (next uid to give, next modseq to give)
    let mut next: HashMap<i64, (i64, i64)> = HashMap::new();
    for chunk in per_mailbox.chunks(VARS_PER_STATEMENT / 6) {
        let mut q = QueryBuilder::<Sqlite>::new("UPDATE mailboxes SET uidnext = uidnext + ");
        push_case(&mut q, chunk);
        q.push(", highestmodseq = highestmodseq + ");
        push_case(&mut q, chunk);
        q.push(" WHERE id IN (");
        push_list(&mut q, &chunk.iter().map(|(m, _)| *m).collect::<Vec<_>>());
        q.push(" RETURNING id, uidnext, highestmodseq");
        for (id, uidnext, highest) in q
            .build_query_as::<(i64, i64, i64)>()
            .fetch_all(&mut *tx)
            .await?
        {
            let n = chunk.iter().find(|(m, _)| *m == id).map_or(0, |(_, n)| *n);
            next.insert(id, (uidnext - n, highest - n + 1));
        }
    }

    // The messages, in the order of the jobs and their targets.
    let mut delivered: Vec<(usize, Delivered)> = Vec::with_capacity(copies.len());
    let mut rows: Vec<(&Copy, i64, i64, i64)> = Vec::with_capacity(copies.len());
    for c in &copies {
        let Some(slot) = next.get_mut(&c.mailbox_id) else {
            return Err(StoreError::Corrupt(format!(
                "mailbox {} vanished",
                c.mailbox_id
            )));
        };
        let (uid, modseq) = *slot;
        slot.0 += 1;
        slot.1 += 1;
        let hash = batch.get(c.job).map_or("", |j| j.hash.as_str());
        let blob_id = blob_ids
            .get(hash)
            .copied()
            .ok_or_else(|| StoreError::Corrupt("a stored body has no id".into()))?;
        rows.push((c, uid, modseq, blob_id));
        delivered.push((
            c.job,
            Delivered {
                account_id: c.account_id,
                mailbox_id: c.mailbox_id,
                uid: u32::try_from(uid)
                    .map_err(|_| StoreError::Corrupt(format!("UID {uid} out of range")))?,
                modseq: modseq as u64,
            },
        ));
    }
    for chunk in rows.chunks(VARS_PER_STATEMENT / 8) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internal_date, size, blob_id) ",
        );
        q.push_values(chunk, |mut row, (c, uid, modseq, blob_id)| {
            let job = batch.get(c.job);
            row.push_bind(c.mailbox_id)
                .push_bind(*uid)
                .push_bind(*modseq)
                .push_bind(c.flags.bits())
                .push_bind(c.keywords.as_str())
                .push_bind(job.map_or(0, |j| j.internal_date))
                .push_bind(job.map_or(0, |j| j.raw.len() as i64))
                .push_bind(*blob_id);
        });
        q.build().execute(&mut *tx).await?;
    }

    // Quota usage, in the same transaction as the messages it counts.
    let mut per_account: Vec<(i64, i64, i64)> = Vec::new(); // (account, bytes, messages)
    for c in &copies {
        let size = batch.get(c.job).map_or(0, |j| j.raw.len() as i64);
        match per_account.iter_mut().find(|(a, _, _)| *a == c.account_id) {
            Some(p) => {
                p.1 += size;
                p.2 += 1;
            }
            None => per_account.push((c.account_id, size, 1)),
        }
    }
    for chunk in per_account.chunks(VARS_PER_STATEMENT / 6) {
        let bytes: Vec<(i64, i64)> = chunk.iter().map(|(a, b, _)| (*a, *b)).collect();
        let counts: Vec<(i64, i64)> = chunk.iter().map(|(a, _, n)| (*a, *n)).collect();
        let mut q = QueryBuilder::<Sqlite>::new("UPDATE accounts SET used_bytes = used_bytes + ");
        push_case(&mut q, &bytes);
        q.push(", message_count = message_count + ");
        push_case(&mut q, &counts);
        q.push(" WHERE id IN (");
        push_list(
            &mut q,
            &chunk.iter().map(|(a, _, _)| *a).collect::<Vec<_>>(),
        );
        q.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;

    for (job, d) in delivered {
        if let Some(Ok(report)) = outcomes.get_mut(job) {
            report.delivered.push(d);
        }
    }
    Ok(outcomes)
}

/// Appends `?, ?, …)` binding `ids`.
fn push_list(q: &mut QueryBuilder<Sqlite>, ids: &[i64]) {
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(*id);
    }
    q.push(")");
}

/// Appends `CASE id WHEN ? THEN ? … END` mapping each id to its value.
fn push_case(q: &mut QueryBuilder<Sqlite>, pairs: &[(i64, i64)]) {
    q.push("CASE id");
    for (id, value) in pairs {
        q.push(" WHEN ")
            .push_bind(*id)
            .push(" THEN ")
            .push_bind(*value);
    }
    q.push(" END");
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

pub(super) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
