//! The one submission path: what an authenticated user sends, from an SMTP client (587/465)
//! or the webmail, goes through [`Submission::submit`]:
//!
//! 1. the envelope sender must be the account's own address or an alias that delivers to it
//!    (never a catch-all: owning `@example.org` mail does not make every address yours);
//! 2. the header must be one that every reader splits and reads the same way (see
//!    [`authors`]): no control characters (NUL, bare CR, ...), at most one `From:` and one
//!    `Sender:`, each a strict mailbox list, a `Sender:` when `From:` names several mailboxes
//!    (RFC 5322 §3.6), and no field hidden after a line that ends the header early. Otherwise
//!    the check below would read one author and a mail client another;
//! 3. every mailbox of `From:` and `Sender:` in one of our domains must be an address the
//!    account owns too, since the message is then DKIM-signed for that domain (otherwise any
//!    user could have a colleague's mail signed). Mailboxes of other domains are left alone:
//!    we never sign for them, and their owners' DMARC decides;
//! 4. `Date:` and `Message-ID:` are added when missing (RFC 6409 §8);
//! 5. the message is DKIM-signed when its (first) From: domain is ours (RSA and Ed25519);
//! 6. local recipients (after aliases) get the message through the one delivery path, all or
//!    none;
//! 7. remote recipients (and remote targets of local aliases) go to the outbound queue in the
//!    same transaction as the local copies (`Store::deliver_and_queue`), committed before
//!    `submit` returns.

use crate::address::Address;
use crate::dkim::{Signer, domain_of};
use crate::mime::{Mailbox, rfc5322_now, unique_id};
use crate::store::{Account, Delivered, Delivery, Outbound, Store, StoreError, Target};

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("{0} is not one of your addresses")]
    NotYourAddress(String),
    #[error("{0}")]
    BadRecipient(String),
    /// The header is malformed in a way that would let readers disagree on who sent it.
    #[error("Malformed header: {0}")]
    Malformed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dkim(#[from] crate::dkim::DkimError),
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
    /// The recipients' rules (Sieve), run at every local delivery: here and at the MX.
    rules: crate::sieve::deliver::Rules,
}

impl Submission {
    pub fn new(store: Store, hostname: String) -> Submission {
        Submission {
            signer: Signer::new(store.clone()),
            rules: crate::sieve::deliver::Rules::new(store.clone(), hostname.clone()),
            store,
            hostname,
        }
    }

    /// The recipients' rules, shared with the MX so both use one script cache.
    pub fn rules(&self) -> &crate::sieve::deliver::Rules {
        &self.rules
    }

    /// The DKIM keys' signer, shared with the MX for sealing forwarded mail (ARC).
    pub fn signer(&self) -> &Signer {
        &self.signer
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
    /// `Return-Path:`/`Received:` lines, or nothing) on top. Local copies and the queue entry
    /// for remote recipients are committed together or not at all. Returns the stored copies.
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
        sent: Option<&crate::store::Mailbox>,
    ) -> Result<Vec<Delivered>, SubmitError> {
        if !self.may_send_as(account, from).await? {
            return Err(SubmitError::NotYourAddress(from.to_string()));
        }
        let authors = authors(message).map_err(SubmitError::Malformed)?;
        let mut sign_for = None;
        for (i, mailbox) in authors.from.iter().chain(&authors.sender).enumerate() {
            let Some(domain) = domain_of(&mailbox.address) else {
                continue;
            };
            if !self.store.is_local_domain(&domain).await? {
                continue;
            }
            if !self.may_send_as(account, &mailbox.address).await? {
                return Err(SubmitError::NotYourAddress(mailbox.address.clone()));
            }
            // DKIM (and DMARC after it) goes by the first author.
            if i == 0 {
                sign_for = Some(domain);
            }
        }
        // Only the MX writes the spam filter's field: a user's copy must not plant one in a
        // colleague's mailbox (their "why" line, what their filter learns of the sender).
        let message = &crate::mime::drop_fields(message, crate::spam::verdict::is_field);
        let content = complete_headers(message, &self.hostname);
        let content = match sign_for {
            Some(domain) => self.signer.sign_as(&domain, &content).await?,
            // Not ours to sign.
            None => content,
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
        // Each local recipient's rules (Sieve) turn its INBOX copy into what its script asks.
        let stored = [trace, &content].concat();
        let mut targets: Vec<Target> = Vec::new();
        let mut after = Vec::new();
        for account_id in accounts {
            let arrival = crate::sieve::deliver::Arrival {
                raw: &stored,
                envelope_from: from,
                envelope_to: "",
                auth: Some(&account.address),
                spam_percent: None,
            };
            let applied = self
                .rules
                .apply(account_id, Target::inbox(account_id), &arrival)
                .await;
            targets.extend(applied.targets);
            for address in applied.redirects {
                if !remote.iter().any(|a| a.eq_ignore_ascii_case(&address)) {
                    remote.push(address);
                }
            }
            if applied.reject.is_some() || applied.vacation.is_some() {
                after.push((account_id, applied.reject, applied.vacation));
            }
        }
        if let Some(mailbox) = sent {
            targets
                .push(Target::mailbox(mailbox).with_flags(crate::store::Flags::SEEN, Vec::new()));
        }
        // Return-Path belongs to final delivery; the next server adds its own.
        let outbound =
            (!remote.is_empty()).then(|| [without_return_path(trace), &content].concat());
        // Local copies and the queue entry in one transaction: a failure stores neither, so
        // the client's retry cannot deliver the local copies twice.
        let report = self
            .store
            .deliver_and_queue(
                Delivery {
                    raw: &stored,
                    internal_date: None,
                },
                &targets,
                outbound.as_deref().map(|raw| Outbound {
                    sender: from,
                    recipients: &remote,
                    raw,
                }),
            )
            .await?;
        // People the user writes to are known good to the user's spam filter (counted in
        // memory, written with the event counts).
        let written_to: Vec<(String, i64, i64)> = remote
            .iter()
            .map(|a| (crate::spam::reputation::correspondent_key(a), 0, 1))
            .collect();
        self.store.note_reputation(account.id, &written_to);
        // After the commit, off the reply's path: the recipients' vacation replies and the
        // refusals of their scripts (a submission is never refused by a recipient's rules).
        if !after.is_empty() {
            let rules = self.rules.clone();
            let sender = from.to_string();
            tokio::spawn(async move {
                for (account_id, reject, vacation) in after {
                    if let Some(reason) = reject {
                        rules
                            .send_refusal(account_id, &sender, &stored, &reason)
                            .await;
                    }
                    if let Some(v) = vacation {
                        rules.send_vacation(account_id, &v).await;
                    }
                }
            });
        }
        Ok(report.delivered)
    }
}

/// Who a message says it is from: the mailboxes of its `From:` and `Sender:` fields.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Authors {
    pub from: Vec<Mailbox>,
    pub sender: Option<Mailbox>,
}

/// Reads the authors of a submitted message, refusing (with the reason, for the sender) a
/// header that readers could split or read differently. The ownership check must see what
/// IMAP's ENVELOPE, the webmail and the receiving server's DMARC will see, and those use
/// different parsers (ours for ENVELOPE, mail-parser for the webmail, anything elsewhere): a
/// second `From:` (mail-parser reads the last one, ENVELOPE the first), a mailbox after the
/// first, a NUL or bare CR that one parser takes as a line end, or a field after a stray line
/// all once let a user have a colleague's address signed. So: no control characters in the
/// header section (tab, and CR LF as line ends, aside), no field after a line that ended the
/// header, at most one `From:` and one `Sender:`, both strict mailbox lists of valid
/// addresses without invisible characters, a `Sender:` of one mailbox when `From:` has
/// several (RFC 5322 §3.6.2), and mail-parser must read the same addresses as we do.
pub fn authors(message: &[u8]) -> Result<Authors, String> {
    let header = crate::mime::raw_header(message);
    let section = message.get(..header.body_start).unwrap_or(message);
    for (i, &b) in section.iter().enumerate() {
        let bare_cr = b == b'\r' && section.get(i + 1) != Some(&b'\n');
        if bare_cr || (b.is_ascii_control() && !matches!(b, b'\t' | b'\r' | b'\n')) {
            let line = section.get(..i).unwrap_or_default();
            let line = line.iter().filter(|&&c| c == b'\n').count() + 1;
            return Err(format!(
                "control character 0x{b:02X} in line {line} of the header"
            ));
        }
    }
    if header.stray_field {
        return Err(
            "a line that is neither a header field nor its continuation, followed by more fields \
             (end the header with an empty line)"
                .into(),
        );
    }
    let mut authors = Authors::default();
    let (mut froms, mut senders) = (0, 0);
    for field in &header.fields {
        let from = field.name.eq_ignore_ascii_case(b"from");
        let sender = field.name.eq_ignore_ascii_case(b"sender");
        if !from && !sender {
            continue;
        }
        let name = if from { "From" } else { "Sender" };
        let count = if from { &mut froms } else { &mut senders };
        *count += 1;
        if *count > 1 {
            return Err(format!(
                "more than one {name}: field (RFC 5322 §3.6 allows one)"
            ));
        }
        let list = crate::mime::mailboxes(field.value).map_err(|e| format!("{name}: {e}"))?;
        for m in &list {
            check_author_address(&m.address).map_err(|e| format!("{name}: {e}"))?;
        }
        if from {
            if list.is_empty() {
                return Err("From: names no mailbox".into());
            }
            authors.from = list;
        } else {
            let mut list = list.into_iter();
            match (list.next(), list.next()) {
                (Some(one), None) => authors.sender = Some(one),
                _ => return Err("Sender: must name exactly one mailbox".into()),
            }
        }
    }
    if authors.from.len() > 1 && authors.sender.is_none() {
        return Err(
            "From: names several mailboxes, so a Sender: field must say which one sent it \
             (RFC 5322 §3.6.2)"
                .into(),
        );
    }
    // A second opinion: the parser the webmail (and many others) read with must agree.
    let theirs = mail_parser::MessageParser::new().parse_headers(message);
    let list = |a: Option<&mail_parser::Address<'_>>| -> Vec<String> {
        a.map(|a| {
            a.iter()
                .map(|m| m.address().unwrap_or_default().to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default()
    };
    let ours = |list: &[Mailbox]| -> Vec<String> {
        list.iter()
            .map(|m| m.address.to_ascii_lowercase())
            .collect()
    };
    let (their_from, their_sender) = match &theirs {
        Some(m) => (list(m.from()), list(m.sender())),
        None => (Vec::new(), Vec::new()),
    };
    if their_from != ours(&authors.from) || their_sender != ours(authors.sender.as_slice()) {
        return Err("From: or Sender: can be read in more than one way".into());
    }
    Ok(authors)
}

/// An author's address must be one a person could type and see: a valid address (so no
/// control characters and an ASCII domain), without white space or invisible or
/// direction-changing characters in the local part that would make it look like someone
/// else's (`Address::parse` trims white space, so it must be refused before).
fn check_author_address(address: &str) -> Result<(), String> {
    Address::parse(address)?;
    let invisible = |c: char| {
        c.is_control()
            || c.is_whitespace()
            || matches!(c,
                '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
                | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}')
    };
    match address.chars().find(|&c| invisible(c)) {
        Some(c) => Err(format!("{address:?} has the invisible character {c:?}")),
        None => Ok(()),
    }
}

/// `trace` (or a whole message) without a leading `Return-Path:` field: it belongs to final
/// delivery, so what we pass on to another server must not carry ours.
pub(crate) fn without_return_path(trace: &[u8]) -> &[u8] {
    if trace
        .get(..12)
        .is_some_and(|name| name.eq_ignore_ascii_case(b"return-path:"))
    {
        match trace.windows(2).position(|w| w == b"\r\n") {
            Some(end) => trace.get(end + 2..).unwrap_or_default(),
            None => &[],
        }
    } else {
        trace
    }
}

/// Adds `Date:` and `Message-ID:` at the top when the header lacks them, and makes every line
/// end CRLF (what is signed must be what is sent: [`crate::wire::dot::crlf_line_ends`]).
pub fn complete_headers(message: &[u8], hostname: &str) -> Vec<u8> {
    let message = crate::wire::dot::crlf_line_ends(message);
    let message = message.as_ref();
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

    #[test]
    fn authors_are_read_once_and_strictly() {
        let a = authors(b"From: A <a@x.org>, b@x.org\r\nSender: a@x.org\r\n\r\nbody").unwrap();
        assert_eq!(a.from.len(), 2);
        assert_eq!(a.sender.map(|s| s.address).as_deref(), Some("a@x.org"));
        assert_eq!(
            authors(b"Subject: none\r\n\r\n").unwrap(),
            Authors::default()
        );
        // A NUL in the body is not the header's business.
        assert!(authors(b"From: a@x.org\r\n\r\nbody \0 and \x01\r\n").is_ok());
        for (bad, why) in [
            (
                &b"From: a@x.org\r\nFrom: b@x.org\r\n\r\n"[..],
                "more than one From",
            ),
            (
                b"Sender: a@x.org\r\nSENDER: b@x.org\r\n\r\n",
                "more than one Sender",
            ),
            (b"From: a@x.org, b@x.org\r\n\r\n", "Sender: field must say"),
            (
                b"From: a@x.org\r\nSender: a@x.org, b@x.org\r\n\r\n",
                "exactly one",
            ),
            (b"From:\r\n\r\n", "no mailbox"),
            (b"From: a@x.org\r\nX: \0\r\n\r\n", "0x00 in line 2"),
            (b"From: a@x.org\rFrom: b@x.org\r\n\r\n", "0x0D"),
            (
                b"From: a@x.org\r\nbogus\r\nFrom: b@x.org\r\n\r\n",
                "neither a header",
            ),
            ("From: a\u{200B}@x.org\r\n\r\n".as_bytes(), "invisible"),
            (
                "From: a@x.org\u{200B}\r\n\r\n".as_bytes(),
                "may not contain",
            ),
            (b"From: <a@x.org> b@y.org\r\n\r\n", "after the closing"),
        ] {
            let err = authors(bad).expect_err(&String::from_utf8_lossy(bad));
            assert!(
                err.contains(why),
                "{:?}: {err}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
