//! The one delivery path. SMTP (inbound and the local part of a submission), the webmail's
//! sends, bounces and IMAP APPEND all store mail through [`Store::deliver`] (or
//! [`Store::deliver_atomic`], or [`Store::deliver_and_queue`] when the message also leaves for
//! other servers, or [`Store::deliver_all`] for several messages all or none, IMAP
//! MULTIAPPEND):
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

use std::sync::Arc;

use sha2::{Digest, Sha256};
use sqlx::{QueryBuilder, Sqlite};
use tokio::sync::{Notify, mpsc, oneshot};

use super::messages::Flags;
use super::queue::{self, Outbound};
use super::space::Space;
use super::{Change, ChangeBus, Result, StoreError, blobs, now};
use crate::mime::{self, Analysis};

mod plan;
use plan::{AccountState, Known, MailboxState, Plan, PlannedCopy, Request, plan};

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

/// Where one copy goes: an account's INBOX, or a mailbox the caller holds a handle of. The
/// account and mailbox are private, so a copy cannot be aimed at a mailbox by bare id (the
/// plan still checks that a mailbox belongs to the target's account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    account_id: i64,
    /// `None` means the account's INBOX (or its Junk, with `junk`).
    mailbox_id: Option<i64>,
    /// The account's Junk mailbox (special use `\Junk`), or its INBOX if it has none: the
    /// spam filter's verdict never loses a message to a missing folder.
    junk: bool,
    pub flags: Flags,
    pub keywords: Vec<String>,
}

impl Target {
    pub fn inbox(account_id: i64) -> Target {
        Target {
            account_id,
            mailbox_id: None,
            junk: false,
            flags: Flags::default(),
            keywords: Vec::new(),
        }
    }

    /// A copy into the account's Junk mailbox (its INBOX when it has none).
    pub fn junk(account_id: i64) -> Target {
        Target {
            junk: true,
            ..Target::inbox(account_id)
        }
    }

    /// A copy into `mailbox`, for its owner.
    pub fn mailbox(mailbox: &super::Mailbox) -> Target {
        Target {
            account_id: mailbox.account_id(),
            mailbox_id: Some(mailbox.id()),
            junk: false,
            flags: Flags::default(),
            keywords: Vec::new(),
        }
    }

    /// The same target, stored with these flags and keywords.
    pub fn with_flags(self, flags: Flags, keywords: Vec<String>) -> Target {
        Target {
            flags,
            keywords,
            ..self
        }
    }

    pub fn account_id(&self) -> i64 {
        self.account_id
    }

    /// Whether `other` is a copy into the same mailbox (flags aside).
    pub fn same_place(&self, other: &Target) -> bool {
        self.account_id == other.account_id
            && self.mailbox_id == other.mailbox_id
            && self.junk == other.junk
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
    /// Set by the writer: the all-or-nothing group ([`Store::deliver_all`]) of the job.
    ///
    /// [`Store::deliver_all`]: super::Store::deliver_all
    group: Option<usize>,
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
            group: self.group,
        }
    }
}

/// The handle callers use to reach the writer task. Each item is one delivery, or the
/// deliveries of one [`Store::deliver_all`], which the writer keeps together in one batch.
///
/// [`Store::deliver_all`]: super::Store::deliver_all
#[derive(Clone)]
pub(super) struct Deliverer(mpsc::Sender<Vec<Job>>);

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

    /// Stores several messages, each for its targets, all or none: in one transaction, and
    /// when any target of any message is refused (over quota: the account's usage counts the
    /// messages before it) nothing is stored and the error is the first refusal. IMAP
    /// MULTIAPPEND (RFC 3502) uses it. The messages of one account's mailbox get consecutive
    /// UIDs, in order. Returns each message's copies, in order.
    pub async fn deliver_all(
        &self,
        deliveries: &[(Delivery<'_>, Vec<Target>)],
    ) -> Result<Vec<Vec<Delivered>>> {
        Ok(self.deliver_all_and_queue(deliveries, None).await?.0)
    }

    /// [`Store::deliver_all`], and `outbound` into the outbound queue in the same transaction
    /// (all or nothing, as [`Store::deliver_and_queue`]); with the queue item. The MX uses it
    /// when the spam filter gives recipients different copies (each its own explanation).
    pub async fn deliver_all_and_queue(
        &self,
        deliveries: &[(Delivery<'_>, Vec<Target>)],
        outbound: Option<Outbound<'_>>,
    ) -> Result<(Vec<Vec<Delivered>>, Option<i64>)> {
        let mut jobs = Vec::with_capacity(deliveries.len() + 1);
        let mut answers = Vec::with_capacity(deliveries.len() + 1);
        for (delivery, targets) in deliveries {
            if let Some((job, answer)) = self.job(*delivery, targets, true, None).await? {
                jobs.push(job);
                answers.push(answer);
            }
        }
        // The queue entry as a job of its own with no local copy, in the same group.
        let queue_answer = match outbound {
            None => None,
            Some(o) => {
                let empty = Delivery {
                    raw: &[],
                    internal_date: None,
                };
                match self.job(empty, &[], true, Some(o)).await? {
                    Some((job, answer)) => {
                        jobs.push(job);
                        Some(answer)
                    }
                    None => None,
                }
            }
        };
        if jobs.is_empty() {
            return Ok((Vec::new(), None));
        }
        self.deliverer
            .0
            .send(jobs)
            .await
            .map_err(|_| writer_stopped())?;
        let mut reports = Vec::with_capacity(answers.len());
        for answer in answers {
            reports.push(answer.await.map_err(|_| writer_stopped()));
        }
        let queued = match queue_answer {
            Some(answer) => answer.await.map_err(|_| writer_stopped())??.queued,
            None => None,
        };
        let mut delivered = Vec::with_capacity(reports.len());
        for report in reports {
            delivered.push(report??.delivered);
        }
        self.count_events(
            "delivered",
            delivered.iter().map(Vec::len).sum::<usize>() as i64,
        );
        Ok((delivered, queued))
    }

    async fn enqueue(
        &self,
        delivery: Delivery<'_>,
        targets: &[Target],
        atomic: bool,
        outbound: Option<Outbound<'_>>,
    ) -> Result<DeliveryReport> {
        let Some((job, answer)) = self.job(delivery, targets, atomic, outbound).await? else {
            return Ok(DeliveryReport::default());
        };
        self.deliverer
            .0
            .send(vec![job])
            .await
            .map_err(|_| writer_stopped())?;
        let report = answer.await.map_err(|_| writer_stopped())??;
        self.count_events("delivered", report.delivered.len() as i64);
        Ok(report)
    }

    /// A delivery admitted (free space), parsed and hashed, ready for the writer, and where its
    /// answer will come; `None` when there is nothing to store.
    async fn job(
        &self,
        delivery: Delivery<'_>,
        targets: &[Target],
        atomic: bool,
        outbound: Option<Outbound<'_>>,
    ) -> Result<Option<(Job, oneshot::Receiver<Result<DeliveryReport>>)>> {
        if let Some(o) = &outbound {
            o.check()?;
        }
        if targets.is_empty() && outbound.is_none() {
            return Ok(None);
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
            group: None,
            reply,
        };
        Ok(Some((job, answer)))
    }
}

async fn writer_task(
    writer: sqlx::SqlitePool,
    bus: ChangeBus,
    space: Arc<Space>,
    queue_wake: Arc<Notify>,
    mut rx: mpsc::Receiver<Vec<Job>>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch: Vec<Job> = Vec::new();
        let (mut bytes, mut copies) = (0, 0);
        let mut next = Some(first);
        while let Some(item) = next.take() {
            // A group stays whole in one batch, and so in one transaction, whatever the
            // bounds: its caller bounds its size. Its id is where it starts in the batch.
            let group = (item.len() > 1).then_some(batch.len());
            for mut job in item {
                bytes += job.bytes();
                copies += job.targets.len();
                job.group = group;
                batch.push(job);
            }
            if batch.len() < BATCH_MAX && bytes < BATCH_MAX_BYTES && copies < BATCH_MAX_COPIES {
                next = rx.try_recv().ok();
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
    let mut junk_of: Vec<i64> = requests
        .iter()
        .flat_map(|r| r.targets.iter().filter(|t| t.junk).map(|t| t.account_id))
        .collect();
    junk_of.sort_unstable();
    junk_of.dedup();
    for chunk in junk_of.chunks(VARS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT id, account_id, uidnext, highestmodseq FROM mailboxes
             WHERE special_use = '\\Junk' AND account_id IN (",
        );
        push_list(&mut q, chunk);
        for row in q
            .build_query_as::<(i64, i64, i64, i64)>()
            .fetch_all(&mut *tx)
            .await?
        {
            known.junk.insert(row.1, row.0);
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
