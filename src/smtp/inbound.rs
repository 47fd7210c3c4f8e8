//! The inbound (MX, port 25) policy: which recipients are accepted at RCPT (local accounts
//! after aliases, SRS bounces from the null sender, the quota), and what is done with the
//! message at the end of DATA (the one atomic delivery, forwarding of alias targets through the
//! queue, loop detection by `Received:` count).

use super::reply::Reply;
use super::session::{Envelope, Session};
use crate::address::Address;
use crate::net::Transport;
use crate::spam::check::{Inbound, Judged};
use crate::spam::verdict::{Shared, Verdict};
use crate::store::{Delivery, Outbound, StoreError, Target};

impl<'a, T: Transport> Session<'a, T> {
    pub(super) async fn rcpt_inbound(
        &mut self,
        rcpt: &str,
        declared_size: usize,
        null_sender: bool,
    ) -> Reply {
        let store = &self.smtp.store;
        // The bare `postmaster` (RFC 5321 §4.5.1: accepted without a domain, in any case) is
        // the postmaster of our primary domain.
        let bare;
        let rcpt = if rcpt.trim().eq_ignore_ascii_case("postmaster") {
            bare = match self.primary_domain().await {
                Ok(domain) => format!("postmaster@{domain}"),
                Err(e) => return self.store_error(e),
            };
            bare.as_str()
        } else {
            rcpt
        };
        let Ok(address) = Address::parse(rcpt) else {
            return Reply::new(501, "5.1.3", "Bad recipient address syntax");
        };
        // A bounce coming back to an address we rewrote when forwarding: pass it on to the
        // original sender. Only bounces (from the null sender) may use these addresses, or a
        // valid one would relay anyone's mail.
        if null_sender
            && let Some(original) = self.smtp.srs.reverse(&address.local)
            && matches!(store.is_local_domain(&address.domain).await, Ok(true))
        {
            if let Some(env) = &mut self.envelope {
                env.forwards.push(original);
                env.forward_domain.get_or_insert(address.domain.clone());
            }
            return Reply::new(250, "2.1.5", "Recipient OK");
        }
        let expansion = match store.expand_recipient(&address.to_string()).await {
            Ok(Some(e)) => e,
            Ok(None) => {
                return match store.is_local_domain(&address.domain).await {
                    Ok(true) => {
                        store.count_event("rejected:unknown_user");
                        Reply::new(550, "5.1.1", "No such user here")
                    }
                    Ok(false) => {
                        store.count_event("rejected:relay");
                        Reply::new(554, "5.7.1", "Relay access denied")
                    }
                    Err(e) => self.store_error(e),
                };
            }
            Err(e) => return self.store_error(e),
        };
        for account in &expansion.local {
            // Without SIZE= the message is still at least a byte: a full mailbox is refused.
            let adding = i64::try_from(declared_size.max(1)).unwrap_or(i64::MAX);
            if !crate::store::quota::fits(account.used_bytes, adding, account.quota_bytes) {
                store.count_event("rejected:quota");
                return Reply::new(452, "4.2.2", format!("Mailbox full: {address}"));
            }
        }
        // Greylisting (off unless the admin turns it on), once the recipient is known ours.
        use crate::spam::greylist;
        let accounts: Vec<i64> = expansion.local.iter().map(|a| a.id).collect();
        let recipient = address.to_string();
        let attempt = greylist::Attempt {
            ip: self.peer.ip(),
            sender: self.envelope.as_ref().map_or("", |env| env.from.as_str()),
            recipient: &recipient,
            accounts: &accounts,
            authenticated: self.account.is_some(),
        };
        if greylist::check(store, &attempt).await == greylist::Verdict::Defer {
            return Reply::new(451, "4.7.1", greylist::REPLY_TEXT);
        }
        if let Some(env) = &mut self.envelope {
            let reached_as = address.to_string().to_ascii_lowercase();
            for account in expansion.local {
                for name in [reached_as.clone(), account.address.to_ascii_lowercase()] {
                    if env.addressed_as.len() < MAX_ADDRESSED
                        && !env
                            .addressed_as
                            .iter()
                            .any(|(a, n)| *a == account.id && *n == name)
                    {
                        env.addressed_as.push((account.id, name));
                    }
                }
                if !env.accounts.contains(&account.id) {
                    env.accounts.push(account.id);
                }
            }
            for target in expansion.remote {
                if !env.forwards.contains(&target) {
                    env.forwards.push(target);
                }
                env.forward_domain.get_or_insert(address.domain.clone());
            }
        }
        Reply::new(250, "2.1.5", "Recipient OK")
    }

    /// The domain a bare `postmaster` belongs to: our hostname when it is one of our
    /// domains, else the first domain by name (the hostname when there is none: then nothing
    /// is local and the address is refused like any other).
    async fn primary_domain(&self) -> Result<String, StoreError> {
        let store = &self.smtp.store;
        let host = self.smtp.hostname.trim_end_matches('.');
        if store.is_local_domain(host).await? {
            return Ok(host.to_ascii_lowercase());
        }
        Ok(store
            .domains()
            .await?
            .into_iter()
            .next()
            .map_or_else(|| host.to_ascii_lowercase(), |d| d.name))
    }

    pub(super) async fn deliver_inbound(&mut self, env: &Envelope, message: &[u8]) -> Reply {
        // Each server adds a Received field: this many means the message is going round in
        // circles (two aliases forwarding to each other across servers, RFC 5321 §6.3).
        let hops = count_received(message);
        if hops >= MAX_HOPS {
            self.smtp.store.count_event("rejected:loop");
            return Reply::new(
                554,
                "5.4.6",
                format!("Too many hops ({hops} Received fields): a mail loop?"),
            );
        }
        let mut trace = self.trace_headers(env);
        let mut checked = None;
        if let Some(verifier) = &self.smtp.verifier {
            let helo = self.helo.as_deref().unwrap_or("unknown");
            let verdict = verifier
                .verify(self.peer.ip(), helo, &env.from, message)
                .await;
            if let Some(observation) = &verdict.observation {
                self.smtp
                    .dmarc_counts
                    .note(observation, verdict.reject.is_some());
            }
            if let Some(why) = &verdict.reject {
                self.smtp.store.count_event("rejected:dmarc");
                return Reply::new(550, "5.7.1", why.clone());
            }
            trace.extend_from_slice(verdict.header.as_bytes());
            checked = Some(verdict);
        }
        // Only we may state our verdicts, whether or not we checked.
        let message = super::verify::strip_forged(message, &self.smtp.hostname);
        if let Some(reply) = self.take_report(env, &message).await {
            return reply;
        }
        let judged = self.judge(env, &message, checked).await;
        if let Some(reply) = refusal(&judged) {
            self.smtp.store.count_event("rejected:spam");
            return reply;
        }
        // Each account's copy carries its own explanation; accounts with the same field share
        // one stored body. Distinct copies are bounded (memory, disk): past the bound, the
        // other accounts get a brief field per verdict.
        let most = (MAX_COPY_BYTES / message.len().max(1)).clamp(1, MAX_COPIES);
        // (field, [(account, its target, its spamtest percentage)])
        let mut fields: Vec<(String, Vec<Recipient>)> = Vec::new();
        for account_id in &env.accounts {
            let found = judged.iter().find(|j| j.account_id == *account_id);
            let decision = found.and_then(|j| j.decision.as_ref());
            let target = match decision.map(|d| d.verdict) {
                Some(Verdict::Junk | Verdict::Reject) => Target::junk(*account_id),
                Some(Verdict::Inbox) | None => Target::inbox(*account_id),
            };
            let percent = decision.map(|d| crate::sieve::deliver::spam_percent(d.score, d.junk));
            let mut field = found.map_or(String::new(), |j| j.field.clone());
            if !fields.iter().any(|(f, _)| *f == field) && fields.len() >= most {
                field = decision
                    .map(|d| d.verdict)
                    .map_or(String::new(), crate::spam::verdict::brief_field);
            }
            let account = (*account_id, target, percent);
            match fields.iter_mut().find(|(f, _)| *f == field) {
                Some((_, accounts)) => accounts.push(account),
                None => fields.push((field, vec![account])),
            }
        }
        // Each account's rules (Sieve) see its own copy and turn its one target into what
        // the script asks for.
        let mut copies: Vec<(Vec<u8>, Vec<Target>)> = Vec::new();
        let mut redirects: Vec<String> = Vec::new();
        let mut rejects: Vec<(i64, String)> = Vec::new();
        let mut vacations = Vec::new();
        // The domain that sends redirected mail on: the first redirecting account's (its
        // SRS address passes SPF at the destination).
        let mut redirect_domain: Option<String> = None;
        // The addresses whose rules sent it on: marked in the copies that leave, so a script
        // that meets its own redirect again keeps the message instead (a loop).
        let mut redirected_by: Vec<String> = Vec::new();
        for (field, accounts) in fields {
            let raw = [trace.as_slice(), field.as_bytes(), &message].concat();
            let mut targets = Vec::new();
            for (account_id, target, percent) in accounts {
                let reached_as = env
                    .addressed_as
                    .iter()
                    .find(|(a, _)| *a == account_id)
                    .map_or("", |(_, address)| address.as_str());
                let arrival = crate::sieve::deliver::Arrival {
                    raw: &raw,
                    envelope_from: &env.from,
                    envelope_to: reached_as,
                    auth: None,
                    spam_percent: percent,
                };
                let applied = self
                    .smtp
                    .submission
                    .rules()
                    .apply(account_id, target, &arrival)
                    .await;
                targets.extend(applied.targets);
                if !applied.redirects.is_empty() {
                    if redirect_domain.is_none() {
                        redirect_domain = reached_as.rsplit_once('@').map(|(_, d)| d.to_string());
                    }
                    redirected_by.push(reached_as.to_string());
                }
                for address in applied.redirects {
                    if !redirects.iter().any(|r| r.eq_ignore_ascii_case(&address)) {
                        redirects.push(address);
                    }
                }
                if let Some(reason) = applied.reject {
                    rejects.push((account_id, reason));
                }
                if let Some(v) = applied.vacation {
                    vacations.push((account_id, v));
                }
            }
            if !targets.is_empty() {
                copies.push((raw, targets));
            }
        }
        // Every recipient refused (and nothing goes on elsewhere): the sender learns it now,
        // in SMTP, rather than from a report later.
        if rejects.len() == env.accounts.len()
            && copies.is_empty()
            && redirects.is_empty()
            && env.forwards.is_empty()
            && let Some((_, reason)) = rejects.first()
        {
            self.smtp.store.count_event("rejected:sieve");
            return Reply::new(550, "5.7.1", one_line(reason));
        }
        // Forwarded copies carry the trace, never our spam verdict (it is the local user's).
        let mut onward = env.forwards.clone();
        for address in redirects {
            if !onward.iter().any(|a| a.eq_ignore_ascii_case(&address)) {
                onward.push(address);
            }
        }
        let forward_raw = match onward.is_empty() {
            true => Vec::new(),
            false => {
                let marks: String = redirected_by
                    .iter()
                    .map(|a| format!("{}: {a}\r\n", crate::sieve::deliver::LOOP_FIELD))
                    .collect();
                [trace.as_slice(), marks.as_bytes(), &message].concat()
            }
        };
        let forward = self.forwarding(env, &onward, redirect_domain, &forward_raw);
        let sealed = match &forward {
            Some((_, raw, domain)) => self.arc_sealed(env, raw, domain).await,
            None => None,
        };
        let outbound = forward.as_ref().map(|(sender, raw, _)| Outbound {
            sender,
            recipients: &onward,
            raw: sealed.as_deref().unwrap_or(raw),
        });
        let result = match copies.as_slice() {
            [] => match outbound {
                Some(outbound) => self
                    .smtp
                    .store
                    .deliver_and_queue(
                        Delivery {
                            raw: &forward_raw,
                            internal_date: None,
                        },
                        &[],
                        Some(outbound),
                    )
                    .await
                    .map(|r| r.queued),
                // Discarded or refused by every script: nothing to store.
                None => Ok(None),
            },
            [(raw, targets)] => self
                .smtp
                .store
                .deliver_and_queue(
                    Delivery {
                        raw,
                        internal_date: None,
                    },
                    targets,
                    outbound,
                )
                .await
                .map(|r| r.queued),
            several => {
                let deliveries: Vec<(Delivery, Vec<Target>)> = several
                    .iter()
                    .map(|(raw, targets)| {
                        (
                            Delivery {
                                raw,
                                internal_date: None,
                            },
                            targets.clone(),
                        )
                    })
                    .collect();
                self.smtp
                    .store
                    .deliver_all_and_queue(&deliveries, outbound)
                    .await
                    .map(|(_, queued)| queued)
            }
        };
        // After the commit, off the reply's path: vacation replies, and the refusals of
        // scripts that could not refuse in SMTP (others took the message).
        if result.is_ok() && (!vacations.is_empty() || !rejects.is_empty()) {
            let rules = self.smtp.submission.rules().clone();
            let sender = env.from.clone();
            let original = message.to_vec();
            tokio::spawn(async move {
                for (account_id, reason) in rejects {
                    rules
                        .send_refusal(account_id, &sender, &original, &reason)
                        .await;
                }
                for (account_id, v) in vacations {
                    rules.send_vacation(account_id, &v).await;
                }
            });
        }
        match result {
            Ok(None) => Reply::new(250, "2.0.0", format!("OK: stored as {}", env.id)),
            Ok(Some(id)) => Reply::new(
                250,
                "2.0.0",
                format!("OK: stored as {}, forwarded as queue item {id}", env.id),
            ),
            Err(StoreError::QuotaExceeded { address, .. }) if env.accounts.len() == 1 => {
                Reply::new(552, "5.2.2", format!("Mailbox full: {address}"))
            }
            Err(StoreError::QuotaExceeded { address, .. }) => Reply::new(
                452,
                "4.2.2",
                format!("Mailbox full: {address}; nothing was delivered, please retry"),
            ),
            Err(e) => self.store_error(e),
        }
    }

    /// A DMARC or TLS report to postmaster@ alone is stored and not delivered (it is on
    /// `/admin/reports`); anything else, a malformed report included, is delivered as mail.
    async fn take_report(&self, env: &Envelope, message: &[u8]) -> Option<Reply> {
        if !crate::reports::for_reports(&env.rcpts) {
            return None;
        }
        match crate::reports::intake(&self.smtp.store, message).await {
            crate::reports::Intake::Stored => Some(Reply::new(
                250,
                "2.0.0",
                format!("OK: report stored as {}", env.id),
            )),
            _ => None,
        }
    }

    /// The spam filter's verdict for each local account (none for a message only forwarded).
    async fn judge(
        &self,
        env: &Envelope,
        message: &[u8],
        checked: Option<super::verify::Verdict>,
    ) -> Vec<Judged> {
        if env.accounts.is_empty() {
            return Vec::new();
        }
        let (auth, dkim_domains, spf_domain) = match checked {
            Some(v) => (v.auth, v.dkim_domains, v.spf_domain),
            None => Default::default(),
        };
        let inbound = Inbound {
            raw: message,
            ip: self.peer.ip(),
            mail_from: &env.from,
            addressed_as: &env.addressed_as,
            tls: self.io.is_tls(),
            auth: auth.clone(),
            dkim_domains,
            spf_domain,
        };
        let shared = Shared {
            auth,
            tls: inbound.tls,
            ..Shared::default()
        };
        self.smtp
            .filter
            .judge(&inbound, shared, &env.accounts)
            .await
    }

    /// For the remote targets of aliases and redirects (`onward`; none: `None`), the envelope
    /// sender and message to queue: from an SRS address of the forwarding domain so SPF
    /// passes at the destination.
    fn forwarding<'r>(
        &self,
        env: &Envelope,
        onward: &[String],
        redirect_domain: Option<String>,
        raw: &'r [u8],
    ) -> Option<(String, &'r [u8], String)> {
        if onward.is_empty() {
            return None;
        }
        let domain = env
            .forward_domain
            .clone()
            .or(redirect_domain)
            .unwrap_or_else(|| self.smtp.hostname.clone());
        let sender = self.smtp.srs.forward(&env.from, &domain);
        // The Return-Path is ours to add only at final delivery; the next server adds its own.
        Some((sender, crate::submission::without_return_path(raw), domain))
    }

    /// `forwarded` with an ARC set of the forwarding `domain` on top (RFC 8617), so the next
    /// receiver can trust the SPF and DKIM results we saw even though forwarding breaks SPF
    /// (and a list footer would break DKIM); `None` (sent as it is) when checks are off, the
    /// domain has no DKIM key, or the chain cannot be sealed.
    async fn arc_sealed(&self, env: &Envelope, forwarded: &[u8], domain: &str) -> Option<Vec<u8>> {
        let verifier = self.smtp.verifier.as_ref()?;
        let key = match self.smtp.submission.signer().arc_key(domain).await {
            Ok(key) => key?,
            Err(e) => {
                tracing::warn!("inbound: no ARC key for {domain}: {e}");
                return None;
            }
        };
        let helo = self.helo.as_deref().unwrap_or("unknown");
        let set = verifier
            .seal(self.peer.ip(), helo, &env.from, forwarded, &key)
            .await?;
        Some([set.as_bytes(), forwarded].concat())
    }
}

/// The `550` for a message every local recipient's filter refuses, with the reasons of the
/// lowest score among them (the sender learns why; nothing is lost silently). A message some
/// recipient would take goes to the others' Junk instead.
fn refusal(judged: &[Judged]) -> Option<Reply> {
    let mut lowest: Option<&crate::spam::verdict::Decision> = None;
    for j in judged {
        let d = j.decision.as_ref()?;
        if d.verdict != Verdict::Reject {
            return None;
        }
        if lowest.is_none_or(|l| d.score < l.score) {
            lowest = Some(d);
        }
    }
    let d = lowest?;
    let reasons: Vec<&str> = d
        .parts
        .iter()
        .filter(|(_, points, _)| *points > 0.0)
        .map(|(name, _, _)| *name)
        .collect();
    Some(Reply::new(
        550,
        "5.7.1",
        format!(
            "Message refused as spam (score {:.1}: {})",
            d.score,
            reasons.join(", ")
        ),
    ))
}

/// An account, where its copy goes without rules, and the spam filter's certainty in percent.
type Recipient = (i64, Target, Option<u8>);

/// `text` on one line (a reason from a script goes into an SMTP reply).
fn one_line(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    line.chars().take(400).collect()
}

/// (account, address) pairs kept for "addressed to me" per transaction (the RCPT limit
/// bounds them already; this bounds the expansion of aliases with many members).
const MAX_ADDRESSED: usize = 1000;

/// Distinct copies of one message (each with its own `X-Mailroom-Spam:` field) at most, and
/// the bytes they may take together.
const MAX_COPIES: usize = 8;
const MAX_COPY_BYTES: usize = 64 << 20;

/// Received fields at which a message is refused as looping (Postfix uses 50, RFC 5321
/// suggests at least 100 is excessive; forwarding chains this long do not occur in practice).
const MAX_HOPS: usize = 30;

/// The number of `Received:` fields in the header section of `message`.
fn count_received(message: &[u8]) -> usize {
    crate::mime::header_fields(message)
        .filter(|name| name.eq_ignore_ascii_case(b"received"))
        .count()
}
