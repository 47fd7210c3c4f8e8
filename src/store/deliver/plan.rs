//! The pure half of a group commit: given what the batch's transaction read, decide every
//! delivery (mailboxes, quota, UIDs and MODSEQs, bodies, queue entries) before anything is
//! written. No I/O, so every rule here is unit-tested on plain values.

use std::collections::HashMap;

use super::{Delivered, DeliveryReport, Target};
use crate::store::{Flags, Result, StoreError, quota};

/// What [`plan`] needs to know of one job.
#[derive(Debug, Clone, Copy)]
pub(super) struct Request<'a> {
    pub(super) size: i64,
    /// Of the body: copies of equal content share one stored body.
    pub(super) hash: &'a str,
    pub(super) targets: &'a [Target],
    pub(super) atomic: bool,
    /// The job carries an outbound queue entry.
    pub(super) queue: bool,
    /// The all-or-nothing group the job belongs to ([`Store::deliver_all`]: the messages of one
    /// IMAP MULTIAPPEND), whose jobs are consecutive in the batch; `None` for a lone job.
    ///
    /// [`Store::deliver_all`]: crate::store::Store::deliver_all
    pub(super) group: Option<usize>,
}

/// An account as the batch's transaction found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AccountState {
    pub(super) address: String,
    pub(super) quota: i64,
    pub(super) used: i64,
}

/// A mailbox as the batch's transaction found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct MailboxState {
    pub(super) account_id: i64,
    pub(super) uidnext: i64,
    pub(super) highestmodseq: i64,
}

/// What the batch's reads found: every account its targets name, every mailbox they name and
/// the INBOX of every account.
#[derive(Debug, Default)]
pub(super) struct Known {
    pub(super) accounts: HashMap<i64, AccountState>,
    pub(super) mailboxes: HashMap<i64, MailboxState>,
    /// account -> its INBOX.
    pub(super) inbox: HashMap<i64, i64>,
    /// account -> its Junk mailbox, for the accounts with a Junk target.
    pub(super) junk: HashMap<i64, i64>,
}

/// One copy to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PlannedCopy {
    pub(super) job: usize,
    pub(super) account_id: i64,
    pub(super) mailbox_id: i64,
    pub(super) uid: u32,
    pub(super) modseq: i64,
    pub(super) flags: Flags,
    pub(super) keywords: String,
}

/// Everything a batch writes, decided before the first write.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// Per job, in order: its report (copies stored, targets refused) or why it fails whole.
    pub(super) outcomes: Vec<Result<DeliveryReport>>,
    /// The copies, in the order of the jobs and their targets.
    pub(super) copies: Vec<PlannedCopy>,
    /// One per distinct body among the copies: (first job with it, number of copies).
    pub(super) bodies: Vec<(usize, i64)>,
    /// (mailbox, new uidnext, new highestmodseq), each mailbox advanced once.
    pub(super) mailboxes: Vec<(i64, i64, i64)>,
    /// (account, bytes added, messages added).
    pub(super) accounts: Vec<(i64, i64, i64)>,
    /// The jobs whose queue entry is written (those that did not fail).
    pub(super) queued: Vec<usize>,
}

/// Decides a batch: for each job's targets, the mailbox (the INBOX, or the named one if the
/// account owns it; otherwise the job fails), the quota ([`quota::fits`], counting the copies
/// planned before it; over quota, an atomic job fails whole and another refuses that target),
/// then the UID and MODSEQ of each copy (consecutive per mailbox, in job order) and one body
/// per distinct hash. A failed job takes nothing: no quota, no UIDs, no queue entry.
pub(super) fn plan(requests: &[Request], known: &Known) -> Result<Plan> {
    let mut plan = Plan::default();
    let mut usage: HashMap<i64, i64> = known.accounts.iter().map(|(id, a)| (*id, a.used)).collect();
    // Copies decided so far: (job, target index, mailbox).
    let mut chosen: Vec<(usize, usize, i64)> = Vec::new();
    let mut first = 0;
    while first < requests.len() {
        // The group starting here: a lone job, or the jobs of one all-or-nothing group, which
        // are decided together (the quota counts the earlier ones) and fail together.
        let group = requests.get(first).and_then(|r| r.group);
        let end = match group {
            None => first + 1,
            Some(_) => (first + 1..requests.len())
                .find(|&k| requests.get(k).and_then(|r| r.group) != group)
                .unwrap_or(requests.len()),
        };
        let mut reports: Vec<DeliveryReport> = Vec::new();
        let mut planned: Vec<(usize, usize, i64)> = Vec::new();
        let mut promised: HashMap<i64, i64> = HashMap::new();
        let mut failed: Option<(usize, StoreError)> = None;
        'group: for (j, request) in requests.iter().enumerate().take(end).skip(first) {
            let mut report = DeliveryReport::default();
            for (t, target) in request.targets.iter().enumerate() {
                let Some(account) = known.accounts.get(&target.account_id) else {
                    failed = Some((
                        j,
                        StoreError::NotFound(format!("account {}", target.account_id)),
                    ));
                    break 'group;
                };
                let mailbox = match target.mailbox_id {
                    Some(id) => known
                        .mailboxes
                        .get(&id)
                        .filter(|m| m.account_id == target.account_id)
                        .map(|_| id),
                    None if target.junk => known
                        .junk
                        .get(&target.account_id)
                        .or_else(|| known.inbox.get(&target.account_id))
                        .copied(),
                    None => known.inbox.get(&target.account_id).copied(),
                };
                let Some(mailbox_id) = mailbox else {
                    failed = Some((
                        j,
                        StoreError::NotFound(format!("mailbox of account {}", target.account_id)),
                    ));
                    break 'group;
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
                        failed = Some((j, err));
                        break 'group;
                    }
                    report.refused.push((target.clone(), err));
                    continue;
                }
                *promised.entry(target.account_id).or_default() += request.size;
                planned.push((j, t, mailbox_id));
            }
            reports.push(report);
        }
        match failed {
            Some((failing, e)) => {
                for j in first..end {
                    plan.outcomes.push(Err(if j == failing {
                        e.same()
                    } else {
                        group_failed(&e)
                    }));
                }
            }
            None => {
                for (account, bytes) in promised {
                    *usage.entry(account).or_default() += bytes;
                }
                chosen.extend(planned);
                for (j, report) in (first..end).zip(reports) {
                    if requests.get(j).is_some_and(|r| r.queue) {
                        plan.queued.push(j);
                    }
                    plan.outcomes.push(Ok(report));
                }
            }
        }
        first = end;
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

/// The answer of the other jobs of a group one of whose jobs failed with `e`: the same reason
/// (a caller answers with the first failure it finds, whichever job it is).
fn group_failed(e: &StoreError) -> StoreError {
    e.same()
}

impl StoreError {
    /// The errors [`plan`] makes, again (`StoreError` holds sqlx's errors, which do not clone).
    fn same(&self) -> StoreError {
        match self {
            StoreError::NotFound(w) => StoreError::NotFound(w.clone()),
            StoreError::QuotaExceeded {
                address,
                needed,
                quota,
            } => StoreError::QuotaExceeded {
                address: address.clone(),
                needed: *needed,
                quota: *quota,
            },
            other => StoreError::Conflict(format!("not stored: {other}")),
        }
    }
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
            // Bob's Sent stands in for a Junk mailbox; Carol has none.
            junk: HashMap::from([(BOB, BOB_SENT)]),
        }
    }

    #[test]
    fn junk_goes_to_the_junk_mailbox_or_else_the_inbox() {
        let targets = [Target::junk(BOB), Target::junk(CAROL)];
        let requests = [request(1, "a", &targets, true)];
        let plan = plan(&requests, &known()).unwrap();
        assert_eq!(uids(&plan, 0), [(BOB_SENT, 1, 4), (CAROL_INBOX, 7, 8)]);
    }

    fn request<'a>(size: i64, hash: &'a str, targets: &'a [Target], atomic: bool) -> Request<'a> {
        Request {
            size,
            hash,
            targets,
            atomic,
            queue: false,
            group: None,
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
            junk: false,
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
    fn a_group_is_stored_whole_or_not_at_all() {
        let bob = [Target::inbox(BOB)];
        let carol = [Target::inbox(CAROL)];
        let grouped = |size, hash, targets, group| Request {
            group: Some(group),
            ..request(size, hash, targets, true)
        };
        // Bob: 400 of 1000 used. The group's third message does not fit after the first two,
        // so none is stored; the lone job after it takes the first free UID.
        let requests = [
            request(10, "c0", &carol, true),
            grouped(200, "a", &bob, 1),
            grouped(200, "b", &bob, 1),
            grouped(300, "c", &bob, 1),
            request(100, "d", &bob, true),
            grouped(50, "e", &bob, 5),
            grouped(50, "f", &bob, 5),
        ];
        let plan = plan(&requests, &known()).unwrap();
        assert_eq!(uids(&plan, 0), [(CAROL_INBOX, 7, 8)]);
        for j in 1..=3 {
            assert!(
                matches!(
                    plan.outcomes[j],
                    Err(StoreError::QuotaExceeded { needed: 1100, .. })
                ),
                "job {j}: {:?}",
                plan.outcomes[j]
            );
        }
        assert_eq!(uids(&plan, 4), [(BOB_INBOX, 5, 11)]);
        // A group that fits: consecutive UIDs, the quota counted across it.
        assert_eq!(uids(&plan, 5), [(BOB_INBOX, 6, 12)]);
        assert_eq!(uids(&plan, 6), [(BOB_INBOX, 7, 13)]);
        assert_eq!(plan.accounts, [(CAROL, 10, 1), (BOB, 200, 3)]);
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
}
