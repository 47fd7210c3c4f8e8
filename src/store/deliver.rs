//! The one delivery path. SMTP (inbound and the local part of a submission), the webmail's
//! sends, bounces and IMAP APPEND all store mail through [`Store::deliver`]:
//!
//! 1. parse once (`mime::analyze`) and hash the content, outside any transaction;
//! 2. in one write transaction: check each target's quota, add the body (or a reference to the
//!    identical body already stored) with its parsed form and search text, give each copy the
//!    mailbox's next UID and MODSEQ, count the bytes against the quota;
//! 3. commit (fsynced: `synchronous=FULL`), and only then announce the new messages.
//!
//! A target over quota is refused without failing the others; the caller decides the reply.

use sha2::{Digest, Sha256};

use super::messages::Flags;
use super::{Change, Result, Store, StoreError, blobs, now};
use crate::mime::{self, Analysis};

/// Messages above this size are parsed on the blocking pool so a big attachment does not stall
/// a runtime thread.
const PARSE_INLINE_MAX: usize = 256 * 1024;

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

impl Store {
    pub async fn deliver(
        &self,
        delivery: Delivery<'_>,
        targets: &[Target],
    ) -> Result<DeliveryReport> {
        let analysis = analyze(delivery.raw).await?;
        let hash = hex(&Sha256::digest(delivery.raw));
        let size = delivery.raw.len() as i64;
        let internal_date = delivery.internal_date.unwrap_or_else(now);

        let mut tx = self.write().await?;
        // Quotas first, so the body is only stored if someone takes it.
        let mut report = DeliveryReport::default();
        let mut accepted = Vec::with_capacity(targets.len());
        // Bytes already promised to each account in this delivery.
        let mut pending: Vec<(i64, i64)> = Vec::new();
        for target in targets {
            let (address, quota, used): (String, i64, i64) = sqlx::query_as(
                "SELECT address, quota_bytes, used_bytes FROM accounts WHERE id = ?",
            )
            .bind(target.account_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("account {}", target.account_id)))?;
            let promised = pending
                .iter()
                .find(|(id, _)| *id == target.account_id)
                .map_or(0, |(_, b)| *b);
            let needed = used + promised + size;
            if quota > 0 && needed > quota {
                report.refused.push((
                    target.clone(),
                    StoreError::QuotaExceeded {
                        address,
                        needed: needed as u64,
                        quota: quota as u64,
                    },
                ));
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
            &mut tx,
            &hash,
            delivery.raw,
            &analysis,
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
            .fetch_optional(&mut *tx)
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
            .bind(internal_date)
            .bind(size)
            .bind(blob_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE accounts SET used_bytes = used_bytes + ?, message_count = message_count + 1 WHERE id = ?",
            )
            .bind(size)
            .bind(target.account_id)
            .execute(&mut *tx)
            .await?;
            report.delivered.push(Delivered {
                account_id: target.account_id,
                mailbox_id,
                uid,
                modseq: modseq as u64,
            });
        }
        tx.commit().await?;

        for d in &report.delivered {
            self.bus.announce(Change::Appended {
                account_id: d.account_id,
                mailbox_id: d.mailbox_id,
                uid: d.uid,
                modseq: d.modseq,
            });
        }
        Ok(report)
    }
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
