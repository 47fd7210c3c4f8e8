//! The one submission path: what an authenticated user sends, from an SMTP client (587/465)
//! or the webmail, goes through [`Submission::submit`]:
//!
//! 1. the envelope sender must be the account's own address or an alias that delivers to it
//!    (never a catch-all: owning `@example.org` mail does not make every address yours);
//! 2. `Date:` and `Message-ID:` are added when missing (RFC 6409 §8); a `From:` header in one
//!    of our domains must name an address the account owns too, since the message is then
//!    DKIM-signed for that domain (otherwise any user could have a colleague's mail signed);
//! 3. the message is DKIM-signed when its From: domain is ours (RSA and Ed25519);
//! 4. local recipients (after aliases) get the message through the one delivery path, all or
//!    none;
//! 5. remote recipients (and remote targets of local aliases) go to the outbound queue, committed
//!    before `submit` returns.

use crate::address::Address;
use crate::queue::dkim::{Signer, author, domain_of};
use crate::store::{Account, Delivered, Delivery, Store, StoreError, Target};

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("{0} is not one of your addresses")]
    NotYourAddress(String),
    #[error("{0}")]
    BadRecipient(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dkim(#[from] crate::queue::dkim::DkimError),
}

/// Where one recipient of a submission goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// Local accounts (an alias may name several), and remote addresses an alias forwards to.
    Local(Vec<i64>, Vec<String>),
    /// An address on another server.
    Remote(String),
}

#[derive(Clone)]
pub struct Submission {
    store: Store,
    hostname: String,
    signer: Signer,
}

impl Submission {
    pub fn new(store: Store, hostname: String) -> Submission {
        Submission {
            signer: Signer::new(store.clone()),
            store,
            hostname,
        }
    }

    /// True when `account` may use `from` as its envelope or header sender.
    pub async fn may_send_as(&self, account: &Account, from: &str) -> Result<bool, StoreError> {
        if from.trim().eq_ignore_ascii_case(&account.address) {
            return Ok(true);
        }
        let Ok(parsed) = Address::parse(from) else {
            return Ok(false);
        };
        Ok(match self.store.alias(&parsed.to_string()).await? {
            Some(alias) => alias
                .targets
                .iter()
                .any(|t| t.eq_ignore_ascii_case(&account.address)),
            None => false,
        })
    }

    /// Decides, at RCPT time, where a recipient's mail would go.
    pub async fn check_recipient(&self, rcpt: &str) -> Result<Recipient, SubmitError> {
        let parsed = Address::parse(rcpt).map_err(SubmitError::BadRecipient)?;
        let address = parsed.to_string();
        if !self.store.is_local_domain(&parsed.domain).await? {
            return Ok(Recipient::Remote(address));
        }
        match self.store.expand_recipient(&address).await? {
            Some(e) => Ok(Recipient::Local(
                e.local.iter().map(|a| a.id).collect(),
                e.remote,
            )),
            None => Err(SubmitError::BadRecipient(format!(
                "{address}: no such mailbox here"
            ))),
        }
    }

    /// Submits `message` from `account` with envelope sender `from` to `recipients` (as
    /// resolved by [`Submission::check_recipient`]), with `trace` (the receiving protocol's
    /// `Return-Path:`/`Received:` lines, or nothing) on top. Local copies are stored (all or
    /// none) before remote recipients are queued; a failure to queue after local delivery is
    /// reported as an error, so the client's retry may deliver local copies twice but nothing is
    /// ever lost. Returns the stored copies.
    pub async fn submit(
        &self,
        account: &Account,
        from: &str,
        recipients: &[Recipient],
        trace: &[u8],
        message: &[u8],
    ) -> Result<Vec<Delivered>, SubmitError> {
        self.submit_keeping(account, from, recipients, trace, message, None)
            .await
    }

    /// [`Submission::submit`], also storing the message as sent (in mailbox `sent` of the
    /// account, marked seen) in the same commit as the local copies: the webmail's Send.
    pub async fn submit_keeping(
        &self,
        account: &Account,
        from: &str,
        recipients: &[Recipient],
        trace: &[u8],
        message: &[u8],
        sent: Option<i64>,
    ) -> Result<Vec<Delivered>, SubmitError> {
        if !self.may_send_as(account, from).await? {
            return Err(SubmitError::NotYourAddress(from.to_string()));
        }
        let content = complete_headers(message, &self.hostname);
        let from_header = author(message).and_then(|a| Some((domain_of(&a)?, a)));
        let content = match from_header {
            Some((domain, author)) if self.store.is_local_domain(&domain).await? => {
                if !self.may_send_as(account, &author).await? {
                    return Err(SubmitError::NotYourAddress(author));
                }
                self.signer.sign_as(&domain, &content).await?
            }
            // Not ours to sign.
            _ => content,
        };
        let mut accounts: Vec<i64> = Vec::new();
        let mut remote: Vec<String> = Vec::new();
        for r in recipients {
            let (ids, forwards) = match r {
                Recipient::Local(ids, forwards) => (ids.as_slice(), forwards.as_slice()),
                Recipient::Remote(address) => (&[][..], std::slice::from_ref(address)),
            };
            for id in ids {
                if !accounts.contains(id) {
                    accounts.push(*id);
                }
            }
            for address in forwards {
                if !remote.iter().any(|a| a.eq_ignore_ascii_case(address)) {
                    remote.push(address.clone());
                }
            }
        }
        let mut targets: Vec<Target> = accounts.into_iter().map(Target::inbox).collect();
        if let Some(mailbox) = sent {
            targets.push(Target {
                account_id: account.id,
                mailbox_id: Some(mailbox),
                flags: crate::store::Flags::SEEN,
                keywords: Vec::new(),
            });
        }
        let delivered = self
            .store
            .deliver_atomic(
                Delivery {
                    raw: &[trace, &content].concat(),
                    internal_date: None,
                },
                &targets,
            )
            .await?;
        if !remote.is_empty() {
            // Return-Path belongs to final delivery; the next server adds its own.
            let outbound = [without_return_path(trace), &content].concat();
            self.store.queue_add(from, &remote, &outbound).await?;
        }
        Ok(delivered)
    }
}

/// `trace` (or a whole message) without a leading `Return-Path:` field: it belongs to final
/// delivery, so what we pass on to another server must not carry ours.
pub(crate) fn without_return_path(trace: &[u8]) -> &[u8] {
    if trace.len() >= 12 && trace[..12].eq_ignore_ascii_case(b"return-path:") {
        match trace.windows(2).position(|w| w == b"\r\n") {
            Some(end) => trace.get(end + 2..).unwrap_or_default(),
            None => &[],
        }
    } else {
        trace
    }
}

/// Adds `Date:` and `Message-ID:` at the top when the header lacks them.
pub fn complete_headers(message: &[u8], hostname: &str) -> Vec<u8> {
    let mut added = String::new();
    if !has_header(message, "date") {
        added.push_str(&format!("Date: {}\r\n", rfc5322_now()));
    }
    if !has_header(message, "message-id") {
        added.push_str(&format!("Message-ID: <{}@{hostname}>\r\n", unique_id()));
    }
    let mut out = Vec::with_capacity(added.len() + message.len());
    out.extend_from_slice(added.as_bytes());
    out.extend_from_slice(message);
    out
}

/// True when the message's header section has a field `name` (case-insensitive).
pub fn has_header(message: &[u8], name: &str) -> bool {
    crate::mime::header_fields(message).any(|field| field.eq_ignore_ascii_case(name.as_bytes()))
}

/// The current time as an RFC 5322 date.
pub fn rfc5322_now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_else(|_| "Thu, 01 Jan 1970 00:00:00 +0000".into())
}

/// A random identifier for Message-IDs and SMTP transaction ids: 16 base32 characters.
pub fn unique_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut rng = rand::rng();
    (0..16)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_completed_only_when_missing() {
        let bare = b"Subject: hi\r\n\r\nbody with Date: in it\r\n";
        let done = String::from_utf8(complete_headers(bare, "mail.example.org")).unwrap();
        assert!(done.starts_with("Date: "), "{done}");
        assert!(done.contains("\r\nMessage-ID: <"), "{done}");
        assert!(
            done.contains("@mail.example.org>\r\nSubject: hi\r\n"),
            "{done}"
        );
        let full = b"date: Thu, 26 Nov 2026 10:00:00 +0000\r\nMESSAGE-ID: <a@b>\r\n\r\nx";
        assert_eq!(complete_headers(full, "h"), full.to_vec());
        assert!(has_header(b"X: 1\nSubject : y\n\nz", "subject"));
        assert!(!has_header(b"X: 1\n\nSubject: y", "subject"));
    }
}
