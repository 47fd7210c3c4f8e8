//! The one delivery path. SMTP (inbound and the local part of a submission), the webmail's
//! sends, bounces and IMAP APPEND all store mail through [`Store::deliver`] (or
//! [`Store::deliver_atomic`], or [`Store::deliver_and_queue`] when the message also leaves for
//! other servers):
//!
//! 1. the caller's task parses the message once (`mime::analyze`) and hashes it, outside any
//!    transaction (on the blocking pool when it is large);
//! 2. the delivery joins the **group commit**: one writer task takes every delivery waiting at
//!    that moment and stores them all in one write transaction. Two reads find the accounts
//!    (quota, usage) and mailboxes (owner, next UID and MODSEQ) the batch touches; [`plan`], a
//!    pure function, then decides everything: each target's mailbox, its quota (a refusal
//!    concerns only its own delivery), the UID and MODSEQ of each copy, one body per distinct
//!    content; `write` carries the plan out (bodies with their parsed form and search text,
//!    messages, mailbox counters, usage) and inserts the outbound queue entries of the batch's
//!    deliveries in the same transaction;
//! 3. one commit, fsynced (`synchronous=FULL`), then every caller gets its answer, the new
//!    messages are announced on the change bus and the queue worker is woken if anything was
//!    queued.
//!
//! A batch whose commit fails is answered with the error by every caller in it, and nothing of
//! it is stored: neither local copies nor queue entries, so a client told to retry never gets
//! a second local copy. When the failure is a full disk the answer is
//! [`StoreError::StorageFull`] (a temporary failure for the peer), the writer connection is
//! replaced if SQLite's automatic rollback left it inside a transaction (see the store's
//! `after_release` check), and the next batch simply tries again: that is how deliveries resume
//! once space returns. Before a message joins the queue, the free-space reserve is checked
//! (`space`).
//!
//! Why group commit: a durable commit costs one fsync (about 2 ms here), which capped delivery at
//! ~500 messages/s whatever the concurrency (`cargo bench --bench deliver`, before). Sharing the
//! fsync among everything that arrived meanwhile keeps each reply after its commit and lets
//! throughput grow with concurrency. A lone delivery is not delayed: the writer never waits for
//! company, it only takes what is already queued.

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use sqlx::{QueryBuilder, Sqlite};
use tokio::sync::{Notify, mpsc, oneshot};

use super::messages::Flags;
use super::queue::{self, Outbound};
use super::space::Space;
use super::{Change, ChangeBus, Result, StoreError, blobs, now, quota};
use crate::mime::{self, Analysis};

/// Messages above this size are parsed and hashed on the blocking pool, so a big attachment
/// does not stall a runtime thread (parsing and SHA-256 of 50 MiB take tens of milliseconds
/// to seconds). Smaller ones stay inline: handing work to the pool and back costs two thread
/// wake-ups and a copy of the message, more than parsing a typical message of a few KiB.
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
    /// The outbound queue item committed with the copies ([`Store::deliver_and_queue`]).
    pub queued: Option<i64>,
}

/// A message parsed and hashed, ready to be stored.
struct Parsed {
    raw: Vec<u8>,
    analysis: Analysis,
    hash: String,
}

impl Parsed {
    fn new(raw: Vec<u8>) -> Parsed {
        Parsed {
            analysis: mime::analyze(&raw),
            hash: hex(&Sha256::digest(&raw)),
            raw,
        }
    }
}

/// An outbound queue entry owned by its job.
struct Queued {
    sender: String,
    recipients: Vec<String>,
    raw: Vec<u8>,
}

impl Queued {
    fn borrow(&self) -> Outbound<'_> {
        Outbound {
            sender: &self.sender,
            recipients: &self.recipients,
            raw: &self.raw,
        }
    }
}

/// A delivery parsed and waiting for the writer.
struct Job {
    /// `None` when there is no local target (a message only queued).
    body: Option<Parsed>,
    internal_date: i64,
    targets: Vec<Target>,
    /// All targets or none: a refused target fails the whole delivery (and its queue entry).
    atomic: bool,
    /// Remote recipients, queued in the same transaction as the copies.
    queue: Option<Queued>,
    reply: oneshot::Sender<Result<DeliveryReport>>,
}

impl Job {
    fn size(&self) -> i64 {
        self.body.as_ref().map_or(0, |b| b.raw.len() as i64)
    }

    fn hash(&self) -> &str {
        self.body.as_ref().map_or("", |b| b.hash.as_str())
    }

    /// Bytes of message data the job brings to a batch.
    fn bytes(&self) -> usize {
        self.body.as_ref().map_or(0, |b| b.raw.len())
            + self.queue.as_ref().map_or(0, |q| q.raw.len())
    }

    fn request(&self) -> Request<'_> {
        Request {
            size: self.size(),
            hash: self.hash(),
            targets: &self.targets,
            atomic: self.atomic,
            queue: self.queue.is_some(),
        }
    }
}

/// The handle callers use to reach the writer task.
#[derive(Clone)]
pub(super) struct Deliverer(mpsc::Sender<Job>);

impl Deliverer {
    /// Starts the writer task on `writer`, announcing on `bus`, telling `space` when the disk
    /// was full and when deliveries succeed again, and waking the queue worker through
    /// `queue_wake` after committing queue entries.
    pub(super) fn spawn(
        writer: sqlx::SqlitePool,
        bus: ChangeBus,
        space: Arc<Space>,
        queue_wake: Arc<Notify>,
    ) -> Deliverer {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(writer_task(writer, bus, space, queue_wake, rx));
        Deliverer(tx)
    }
}

fn writer_stopped() -> StoreError {
    StoreError::Unavailable("the delivery writer has stopped".into())
}

impl super::Store {
    /// Stores one message for each target; a target over quota is refused without failing the
    /// others. The report says which.
    pub async fn deliver(
        &self,
        delivery: Delivery<'_>,
        targets: &[Target],
    ) -> Result<DeliveryReport> {
        self.enqueue(delivery, targets, false, None).await
    }

    /// Stores one message for every target, or for none: when a target is over quota nothing is
    /// stored and the error says whose mailbox is full. SMTP uses this so a `250` means every
    /// recipient has the message.
    pub async fn deliver_atomic(
        &self,
        delivery: Delivery<'_>,
        targets: &[Target],
    ) -> Result<Vec<Delivered>> {
        Ok(self.enqueue(delivery, targets, true, None).await?.delivered)
    }

    /// [`Store::deliver_atomic`], and `outbound` (the message for remote recipients) into the
    /// outbound queue in the same transaction: both are committed or neither, so a failure
    /// leaves nothing behind for the sender's retry to duplicate. `targets` may be empty (a
    /// message only forwarded). The report's `queued` is the queue item.
    pub async fn deliver_and_queue(
        &self,
        delivery: Delivery<'_>,
        targets: &[Target],
        outbound: Option<Outbound<'_>>,
    ) -> Result<DeliveryReport> {
        self.enqueue(delivery, targets, true, outbound).await
    }

    async fn enqueue(
        &self,
        delivery: Delivery<'_>,
        targets: &[Target],
        atomic: bool,
        outbound: Option<Outbound<'_>>,
    ) -> Result<DeliveryReport> {
        if let Some(o) = &outbound {
            o.check()?;
        }
        if targets.is_empty() && outbound.is_none() {
            return Ok(DeliveryReport::default());
        }
        // The body is stored once whatever the number of targets.
        let body = match targets.is_empty() {
            true => None,
            false => {
                self.admit(delivery.raw.len()).await?;
                Some(parse(delivery.raw).await?)
            }
        };
        let queue = match outbound {
            None => None,
            Some(o) => {
                self.admit(o.raw.len()).await?;
                Some(Queued {
                    sender: o.sender.to_string(),
                    recipients: o.recipients.to_vec(),
                    raw: o.raw.to_vec(),
                })
            }
        };
        let (reply, answer) = oneshot::channel();
        let job = Job {
            body,
            internal_date: delivery.internal_date.unwrap_or_else(now),
            targets: targets.to_vec(),
            atomic,
            queue,
            reply,
        };
        self.deliverer
            .0
            .send(job)
            .await
            .map_err(|_| writer_stopped())?;
        let report = answer.await.map_err(|_| writer_stopped())??;
        self.count_events("delivered", report.delivered.len() as i64);
        Ok(report)
    }
}

async fn writer_task(
    writer: sqlx::SqlitePool,
    bus: ChangeBus,
    space: Arc<Space>,
    queue_wake: Arc<Notify>,
    mut rx: mpsc::Receiver<Job>,
) {
    while let Some(first) = rx.recv().await {
        let mut bytes = first.bytes();
        let mut copies = first.targets.len();
        let mut batch = vec![first];
        while batch.len() < BATCH_MAX && bytes < BATCH_MAX_BYTES && copies < BATCH_MAX_COPIES {
            match rx.try_recv() {
                Ok(job) => {
                    bytes += job.bytes();
                    copies += job.targets.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        commit_batch(&writer, &bus, &space, &queue_wake, batch).await;
    }
}

/// Stores a batch in one transaction and answers every job.
async fn commit_batch(
    writer: &sqlx::SqlitePool,
    bus: &ChangeBus,
    space: &Space,
    queue_wake: &Notify,
    batch: Vec<Job>,
) {
    match store_batch(writer, &batch).await {
        Ok(results) => {
            space.committed();
            let mut queued = false;
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
                    queued |= report.queued.is_some();
                }
                let _ = job.reply.send(result);
            }
            if queued {
                queue_wake.notify_one();
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
            // A broken invariant stays corruption; anything else (an I/O error, a busy or
            // failing database) is a passing failure the caller may retry.
            tracing::error!("delivery commit failed: {e}");
            for job in batch {
                let answer = match &e {
                    StoreError::Corrupt(why) => StoreError::Corrupt(why.clone()),
                    other => StoreError::Unavailable(format!("commit failed: {other}")),
                };
                let _ = job.reply.send(Err(answer));
            }
        }
    }
}

/// Stores a whole batch with a handful of statements, whatever its size: the reads, the
/// [`plan`] that decides every delivery in Rust (so the writes cannot fail for one delivery
/// alone and need no savepoints), then the [`write`]. Each statement is a round trip to
/// SQLite's thread, which is what a delivery used to spend its time on, so they are counted
/// per batch rather than per message.
async fn store_batch(
    writer: &sqlx::SqlitePool,
    batch: &[Job],
) -> Result<Vec<Result<DeliveryReport>>> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let requests: Vec<Request> = batch.iter().map(Job::request).collect();
    let known = read(&mut tx, &requests).await?;
    let mut plan = plan(&requests, &known)?;
    write(&mut tx, batch, &mut plan).await?;
    tx.commit().await?;
    Ok(plan.outcomes)
}

/// What [`plan`] needs to know of one job.
#[derive(Debug, Clone, Copy)]
struct Request<'a> {
    size: i64,
    /// Of the body: copies of equal content share one stored body.
    hash: &'a str,
    targets: &'a [Target],
    atomic: bool,
    /// The job carries an outbound queue entry.
    queue: bool,
}

/// An account as the batch's transaction found it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AccountState {
    address: String,
    quota: i64,
    used: i64,
}

/// A mailbox as the batch's transaction found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MailboxState {
    account_id: i64,
    uidnext: i64,
    highestmodseq: i64,
}

/// What the batch's reads found: every account its targets name, every mailbox they name and
/// the INBOX of every account.
#[derive(Debug, Default)]
struct Known {
    accounts: HashMap<i64, AccountState>,
    mailboxes: HashMap<i64, MailboxState>,
    /// account -> its INBOX.
    inbox: HashMap<i64, i64>,
}

/// One copy to store.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PlannedCopy {
    job: usize,
    account_id: i64,
    mailbox_id: i64,
    uid: u32,
    modseq: i64,
    flags: Flags,
    keywords: String,
}

/// Everything a batch writes, decided before the first write.
#[derive(Debug, Default)]
struct Plan {
    /// Per job, in order: its report (copies stored, targets refused) or why it fails whole.
    outcomes: Vec<Result<DeliveryReport>>,
    /// The copies, in the order of the jobs and their targets.
    copies: Vec<PlannedCopy>,
    /// One per distinct body among the copies: (first job with it, number of copies).
    bodies: Vec<(usize, i64)>,
    /// (mailbox, new uidnext, new highestmodseq), each mailbox advanced once.
    mailboxes: Vec<(i64, i64, i64)>,
    /// (account, bytes added, messages added).
    accounts: Vec<(i64, i64, i64)>,
    /// The jobs whose queue entry is written (those that did not fail).
    queued: Vec<usize>,
}

/// Decides a batch: for each job's targets, the mailbox (the INBOX, or the named one if the
/// account owns it; otherwise the job fails), the quota ([`quota::fits`], counting the copies
/// planned before it; over quota, an atomic job fails whole and another refuses that target),
/// then the UID and MODSEQ of each copy (consecutive per mailbox, in job order) and one body
/// per distinct hash. A failed job takes nothing: no quota, no UIDs, no queue entry.
fn plan(requests: &[Request], known: &Known) -> Result<Plan> {
    let mut plan = Plan::default();
    let mut usage: HashMap<i64, i64> = known.accounts.iter().map(|(id, a)| (*id, a.used)).collect();
    // Copies decided so far: (job, target index, mailbox).
    let mut chosen: Vec<(usize, usize, i64)> = Vec::new();
    for (j, request) in requests.iter().enumerate() {
        let mut report = DeliveryReport::default();
        let mut planned: Vec<(usize, usize, i64)> = Vec::new();
        let mut promised: HashMap<i64, i64> = HashMap::new();
        let mut failed: Option<StoreError> = None;
        for (t, target) in request.targets.iter().enumerate() {
            let Some(account) = known.accounts.get(&target.account_id) else {
                failed = Some(StoreError::NotFound(format!(
                    "account {}",
                    target.account_id
                )));
                break;
            };
            let mailbox = match target.mailbox_id {
                Some(id) => known
                    .mailboxes
                    .get(&id)
                    .filter(|m| m.account_id == target.account_id)
                    .map(|_| id),
                None => known.inbox.get(&target.account_id).copied(),
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
            if !quota::fits(before, request.size, account.quota) {
                let err = StoreError::QuotaExceeded {
                    address: account.address.clone(),
                    needed: before.saturating_add(request.size) as u64,
                    quota: account.quota as u64,
                };
                if request.atomic {
                    failed = Some(err);
                    break;
                }
                report.refused.push((target.clone(), err));
                continue;
            }
            *promised.entry(target.account_id).or_default() += request.size;
            planned.push((j, t, mailbox_id));
        }
        match failed {
            Some(e) => plan.outcomes.push(Err(e)),
            None => {
                for (account, bytes) in promised {
                    *usage.entry(account).or_default() += bytes;
                }
                chosen.extend(planned);
                if request.queue {
                    plan.queued.push(j);
                }
                plan.outcomes.push(Ok(report));
            }
        }
    }

    // UIDs and MODSEQs: each mailbox's copies take the next ones in order.
    // mailbox -> (next uid to give, last modseq given)
    let mut next: HashMap<i64, (i64, i64)> = HashMap::new();
    for (j, t, mailbox_id) in chosen {
        let (Some(request), Some(state)) = (requests.get(j), known.mailboxes.get(&mailbox_id))
        else {
            continue;
        };
        let Some(target) = request.targets.get(t) else {
            continue;
        };
        let slot = next.entry(mailbox_id).or_insert_with(|| {
            plan.mailboxes.push((mailbox_id, 0, 0));
            (state.uidnext, state.highestmodseq)
        });
        let uid = slot.0;
        slot.0 += 1;
        slot.1 += 1;
        let modseq = slot.1;
        let uid = u32::try_from(uid)
            .map_err(|_| StoreError::Corrupt(format!("UID {uid} out of range")))?;
        let delivered = Delivered {
            account_id: target.account_id,
            mailbox_id,
            uid,
            modseq: modseq as u64,
        };
        if let Some(Ok(report)) = plan.outcomes.get_mut(j) {
            report.delivered.push(delivered);
        }
        match plan
            .bodies
            .iter_mut()
            .find(|(b, _)| requests.get(*b).map(|r| r.hash) == Some(request.hash))
        {
            Some(body) => body.1 += 1,
            None => plan.bodies.push((j, 1)),
        }
        match plan.accounts.iter_mut().find(|a| a.0 == target.account_id) {
            Some(a) => {
                a.1 += request.size;
                a.2 += 1;
            }
            None => plan.accounts.push((target.account_id, request.size, 1)),
        }
        plan.copies.push(PlannedCopy {
            job: j,
            account_id: target.account_id,
            mailbox_id,
            uid,
            modseq,
            flags: target.flags,
            keywords: target.keywords.join(" "),
        });
    }
    for m in &mut plan.mailboxes {
        if let Some((uidnext, highest)) = next.get(&m.0) {
            (m.1, m.2) = (*uidnext, *highest);
        }
    }
    Ok(plan)
}

/// The batch's reads, inside its transaction: the accounts its targets name (quota, usage),
/// the mailboxes they name and every such account's INBOX (owner, next UID, MODSEQ).
async fn read(tx: &mut sqlx::SqliteConnection, requests: &[Request<'_>]) -> Result<Known> {
    let mut known = Known::default();
    let mut account_ids: Vec<i64> = requests
        .iter()
        .flat_map(|r| r.targets.iter().map(|t| t.account_id))
        .collect();
    account_ids.sort_unstable();
    account_ids.dedup();
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
            known.accounts.insert(
                id,
                AccountState {
                    address,
                    quota,
                    used,
                },
            );
        }
    }
    let mut explicit: Vec<i64> = requests
        .iter()
        .flat_map(|r| r.targets.iter().filter_map(|t| t.mailbox_id))
        .collect();
    explicit.sort_unstable();
    explicit.dedup();
    let mut found = Vec::new();
    for chunk in explicit.chunks(VARS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT id, account_id, uidnext, highestmodseq FROM mailboxes WHERE id IN (",
        );
        push_list(&mut q, chunk);
        found.extend(
            q.build_query_as::<(i64, i64, i64, i64)>()
                .fetch_all(&mut *tx)
                .await?,
        );
    }
    for chunk in account_ids.chunks(VARS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT id, account_id, uidnext, highestmodseq FROM mailboxes
             WHERE name = 'INBOX' AND account_id IN (",
        );
        push_list(&mut q, chunk);
        for row in q
            .build_query_as::<(i64, i64, i64, i64)>()
            .fetch_all(&mut *tx)
            .await?
        {
            known.inbox.insert(row.1, row.0);
            found.push(row);
        }
    }
    for (id, account_id, uidnext, highestmodseq) in found {
        known.mailboxes.insert(
            id,
            MailboxState {
                account_id,
                uidnext,
                highestmodseq,
            },
        );
    }
    Ok(known)
}

/// Carries out `plan` in the batch's transaction: bodies (new, or one more reference), the
/// messages, each mailbox's counters, each account's usage, and the queue entries, whose ids
/// go into the jobs' reports.
async fn write(tx: &mut sqlx::SqliteConnection, batch: &[Job], plan: &mut Plan) -> Result<()> {
    for &j in &plan.queued {
        let (Some(entry), Some(Ok(report))) = (
            batch.get(j).and_then(|job| job.queue.as_ref()),
            plan.outcomes.get_mut(j),
        ) else {
            continue;
        };
        report.queued = Some(queue::insert(&mut *tx, entry.borrow()).await?);
    }
    if plan.copies.is_empty() {
        return Ok(());
    }

    // Bodies: one row per distinct content, referenced once per copy.
    let bodies: Vec<blobs::Body> = plan
        .bodies
        .iter()
        .filter_map(|(j, refs)| {
            let body = batch.get(*j)?.body.as_ref()?;
            Some(blobs::Body {
                hash: &body.hash,
                raw: &body.raw,
                analysis: &body.analysis,
                refs: *refs,
            })
        })
        .collect();
    let blob_ids = blobs::acquire_many(&mut *tx, &bodies).await?;

    // UIDs and MODSEQs: each mailbox advances once, to what the plan gave out.
    for chunk in plan.mailboxes.chunks(VARS_PER_STATEMENT / 6) {
        let uidnext: Vec<(i64, i64)> = chunk.iter().map(|(m, u, _)| (*m, *u)).collect();
        let highest: Vec<(i64, i64)> = chunk.iter().map(|(m, _, h)| (*m, *h)).collect();
        let mut q = QueryBuilder::<Sqlite>::new("UPDATE mailboxes SET uidnext = ");
        push_case(&mut q, &uidnext);
        q.push(", highestmodseq = ");
        push_case(&mut q, &highest);
        q.push(" WHERE id IN (");
        push_list(
            &mut q,
            &chunk.iter().map(|(m, _, _)| *m).collect::<Vec<_>>(),
        );
        q.build().execute(&mut *tx).await?;
    }

    // The messages, in the order of the jobs and their targets.
    let mut rows: Vec<(&PlannedCopy, &Job, i64)> = Vec::with_capacity(plan.copies.len());
    for c in &plan.copies {
        let job = batch
            .get(c.job)
            .ok_or_else(|| StoreError::Corrupt("a planned copy has no delivery".into()))?;
        let blob_id = blob_ids
            .get(job.hash())
            .copied()
            .ok_or_else(|| StoreError::Corrupt("a stored body has no id".into()))?;
        rows.push((c, job, blob_id));
    }
    for chunk in rows.chunks(VARS_PER_STATEMENT / 8) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internal_date, size, blob_id) ",
        );
        q.push_values(chunk, |mut row, (c, job, blob_id)| {
            row.push_bind(c.mailbox_id)
                .push_bind(c.uid)
                .push_bind(c.modseq)
                .push_bind(c.flags.bits())
                .push_bind(c.keywords.as_str())
                .push_bind(job.internal_date)
                .push_bind(job.size())
                .push_bind(*blob_id);
        });
        q.build().execute(&mut *tx).await?;
    }

    // Quota usage, in the same transaction as the messages it counts.
    for chunk in plan.accounts.chunks(VARS_PER_STATEMENT / 6) {
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
    Ok(())
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

/// Parses and hashes `raw`, on the blocking pool above [`PARSE_INLINE_MAX`].
async fn parse(raw: &[u8]) -> Result<Parsed> {
    if raw.len() <= PARSE_INLINE_MAX {
        return Ok(Parsed::new(raw.to_vec()));
    }
    let owned = raw.to_vec();
    tokio::task::spawn_blocking(move || Parsed::new(owned))
        .await
        .map_err(|e| match e.is_cancelled() {
            // The runtime is shutting down.
            true => StoreError::Unavailable(format!("message parser stopped: {e}")),
            // A panic in the parser: a bug, which retrying will not mend.
            false => StoreError::Corrupt(format!("message parser failed: {e}")),
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    const BOB: i64 = 1;
    const CAROL: i64 = 2;
    const BOB_INBOX: i64 = 10;
    const BOB_SENT: i64 = 11;
    const CAROL_INBOX: i64 = 20;

    /// Bob (quota 1000, 400 used) and Carol (unlimited), with their mailboxes.
    fn known() -> Known {
        let account = |address: &str, quota, used| AccountState {
            address: address.into(),
            quota,
            used,
        };
        let mailbox = |account_id, uidnext, highestmodseq| MailboxState {
            account_id,
            uidnext,
            highestmodseq,
        };
        Known {
            accounts: HashMap::from([
                (BOB, account("bob@example.org", 1000, 400)),
                (CAROL, account("carol@example.org", 0, 0)),
            ]),
            mailboxes: HashMap::from([
                (BOB_INBOX, mailbox(BOB, 5, 10)),
                (BOB_SENT, mailbox(BOB, 1, 3)),
                (CAROL_INBOX, mailbox(CAROL, 7, 7)),
            ]),
            inbox: HashMap::from([(BOB, BOB_INBOX), (CAROL, CAROL_INBOX)]),
        }
    }

    fn request<'a>(size: i64, hash: &'a str, targets: &'a [Target], atomic: bool) -> Request<'a> {
        Request {
            size,
            hash,
            targets,
            atomic,
            queue: false,
        }
    }

    fn uids(plan: &Plan, job: usize) -> Vec<(i64, u32, u64)> {
        match plan.outcomes.get(job) {
            Some(Ok(r)) => r
                .delivered
                .iter()
                .map(|d| (d.mailbox_id, d.uid, d.modseq))
                .collect(),
            other => panic!("job {job}: {other:?}"),
        }
    }

    #[test]
    fn the_quota_takes_an_exact_fit_and_refuses_one_byte_more() {
        let bob = [Target::inbox(BOB)];
        // 400 used of 1000: 600 fits exactly, then nothing more.
        let requests = [
            request(600, "a", &bob, false),
            request(1, "b", &bob, false),
            request(1, "c", &bob, true),
        ];
        let plan = plan(&requests, &known()).unwrap();
        assert_eq!(uids(&plan, 0), [(BOB_INBOX, 5, 11)]);
        match &plan.outcomes[1] {
            Ok(r) => {
                assert!(r.delivered.is_empty());
                assert!(matches!(
                    r.refused.as_slice(),
                    [(
                        _,
                        StoreError::QuotaExceeded {
                            needed: 1001,
                            quota: 1000,
                            ..
                        }
                    )]
                ));
            }
            Err(e) => panic!("a plain delivery refuses the target only: {e}"),
        }
        assert!(matches!(
            plan.outcomes[2],
            Err(StoreError::QuotaExceeded { needed: 1001, .. })
        ));
        assert_eq!(plan.accounts, [(BOB, 600, 1)]);

        // One byte over in a single delivery.
        let plan = super::plan(&[request(601, "a", &bob, false)], &known()).unwrap();
        assert!(plan.copies.is_empty());
        assert!(plan.accounts.is_empty() && plan.mailboxes.is_empty());
    }

    #[test]
    fn uids_and_modseqs_follow_each_other_across_the_jobs_of_a_batch() {
        let sent = Target {
            account_id: BOB,
            mailbox_id: Some(BOB_SENT),
            flags: Flags::SEEN,
            keywords: vec!["$Sent".into(), "x".into()],
        };
        let first = [Target::inbox(BOB), Target::inbox(CAROL)];
        let second = [Target::inbox(CAROL), sent.clone()];
        let third = [Target::inbox(BOB)];
        let requests = [
            request(10, "a", &first, true),
            request(10, "b", &second, true),
            request(10, "c", &third, false),
        ];
        let plan = plan(&requests, &known()).unwrap();
        assert_eq!(uids(&plan, 0), [(BOB_INBOX, 5, 11), (CAROL_INBOX, 7, 8)]);
        assert_eq!(uids(&plan, 1), [(CAROL_INBOX, 8, 9), (BOB_SENT, 1, 4)]);
        assert_eq!(uids(&plan, 2), [(BOB_INBOX, 6, 12)]);
        assert_eq!(
            plan.mailboxes,
            [(BOB_INBOX, 7, 12), (CAROL_INBOX, 9, 9), (BOB_SENT, 2, 4)],
            "each mailbox advanced once, past what was given"
        );
        assert_eq!(plan.accounts, [(BOB, 30, 3), (CAROL, 20, 2)]);
        let sent_copy = plan
            .copies
            .iter()
            .find(|c| c.mailbox_id == BOB_SENT)
            .unwrap();
        assert_eq!(
            (sent_copy.flags, sent_copy.keywords.as_str()),
            (Flags::SEEN, "$Sent x")
        );
    }

    #[test]
    fn equal_bodies_are_stored_once_with_a_reference_per_copy() {
        let both = [Target::inbox(BOB), Target::inbox(CAROL)];
        let carol = [Target::inbox(CAROL)];
        let requests = [
            request(10, "same", &both, false),
            request(10, "other", &carol, false),
            request(10, "same", &carol, false),
        ];
        let plan = plan(&requests, &known()).unwrap();
        assert_eq!(plan.bodies, [(0, 3), (1, 1)]);
        assert_eq!(plan.copies.len(), 4);
    }

    #[test]
    fn a_failed_delivery_takes_no_uid_quota_or_queue_entry() {
        let stranger = Target {
            mailbox_id: Some(CAROL_INBOX),
            ..Target::inbox(BOB)
        };
        let bad_mailbox = [Target::inbox(CAROL), stranger];
        let unknown = [Target::inbox(99)];
        let carol = [Target::inbox(CAROL)];
        let mut failing = request(10, "a", &bad_mailbox, true);
        failing.queue = true;
        let mut queued = request(10, "c", &carol, true);
        queued.queue = true;
        let requests = [failing, request(10, "b", &unknown, false), queued];
        let plan = plan(&requests, &known()).unwrap();
        assert!(matches!(&plan.outcomes[0], Err(StoreError::NotFound(w)) if w.contains("mailbox")));
        assert!(
            matches!(&plan.outcomes[1], Err(StoreError::NotFound(w)) if w.contains("account 99"))
        );
        assert_eq!(
            uids(&plan, 2),
            [(CAROL_INBOX, 7, 8)],
            "the first UID is still free"
        );
        assert_eq!(plan.queued, [2]);
        assert_eq!(plan.accounts, [(CAROL, 10, 1)]);
    }

    #[test]
    fn a_uid_past_u32_fails_the_batch() {
        let mut known = known();
        if let Some(m) = known.mailboxes.get_mut(&CAROL_INBOX) {
            m.uidnext = i64::from(u32::MAX) + 1;
        }
        let carol = [Target::inbox(CAROL)];
        assert!(matches!(
            plan(&[request(1, "a", &carol, false)], &known),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[tokio::test]
    async fn a_stopped_writer_is_a_passing_failure_not_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = crate::store::Store::open(&dir.path().join("m.db"))
            .await
            .unwrap();
        // A writer that has gone away, as during shutdown: nobody receives.
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        store.deliverer = Deliverer(tx);
        let err = store
            .deliver(
                Delivery {
                    raw: b"Subject: x\r\n\r\nx\r\n",
                    internal_date: None,
                },
                &[Target::inbox(1)],
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    }

    #[tokio::test]
    async fn large_messages_are_parsed_and_hashed_like_small_ones() {
        let mut raw = b"Subject: big\r\nContent-Type: text/plain\r\n\r\n".to_vec();
        raw.resize(PARSE_INLINE_MAX + 10, b'x');
        let parsed = parse(&raw).await.unwrap();
        let inline = Parsed::new(raw.clone());
        assert_eq!(parsed.hash, inline.hash);
        assert_eq!(parsed.analysis, inline.analysis);
        assert_eq!(parsed.raw, raw);
    }
}
