//! The inbound (MX, port 25) policy: which recipients are accepted at RCPT (local accounts
//! after aliases, SRS bounces from the null sender, the quota), and what is done with the
//! message at the end of DATA (the one atomic delivery, forwarding of alias targets through the
//! queue, loop detection by `Received:` count).

use super::reply::Reply;
use super::session::{Envelope, Session};
use crate::address::Address;
use crate::net::Transport;
use crate::store::{Outbound, StoreError, Target};

impl<'a, T: Transport> Session<'a, T> {
    pub(super) async fn rcpt_inbound(
        &mut self,
        rcpt: &str,
        declared_size: usize,
        null_sender: bool,
    ) -> Reply {
        let Ok(address) = Address::parse(rcpt) else {
            return Reply::new(501, "5.1.3", "Bad recipient address syntax");
        };
        let store = &self.smtp.store;
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
            for account in expansion.local {
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
        let mut raw = self.trace_headers(env);
        if let Some(verifier) = &self.smtp.verifier {
            let helo = self.helo.as_deref().unwrap_or("unknown");
            let verdict = verifier
                .verify(self.peer.ip(), helo, &env.from, message)
                .await;
            if let Some(why) = verdict.reject {
                self.smtp.store.count_event("rejected:dmarc");
                return Reply::new(550, "5.7.1", why);
            }
            raw.extend_from_slice(verdict.header.as_bytes());
        }
        // Only we may state our verdicts, whether or not we checked.
        raw.extend_from_slice(&super::verify::strip_forged_results(
            message,
            &self.smtp.hostname,
        ));
        let targets: Vec<Target> = env.accounts.iter().map(|id| Target::inbox(*id)).collect();
        let delivery = crate::store::Delivery {
            raw: &raw,
            internal_date: None,
        };
        // Remote targets of aliases are queued in the same transaction as the local copies.
        let forward = self.forwarding(env, &raw);
        let outbound = forward.as_ref().map(|(sender, raw)| Outbound {
            sender,
            recipients: &env.forwards,
            raw,
        });
        match self
            .smtp
            .store
            .deliver_and_queue(delivery, &targets, outbound)
            .await
        {
            Ok(report) => match report.queued {
                None => Reply::new(250, "2.0.0", format!("OK: stored as {}", env.id)),
                Some(id) => Reply::new(
                    250,
                    "2.0.0",
                    format!("OK: stored as {}, forwarded as queue item {id}", env.id),
                ),
            },
            Err(StoreError::QuotaExceeded { address, .. }) if targets.len() == 1 => {
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

    /// For the remote targets of aliases (none: `None`), the envelope sender and message to
    /// queue: from an SRS address of the forwarding domain so SPF passes at the destination.
    fn forwarding<'r>(&self, env: &Envelope, raw: &'r [u8]) -> Option<(String, &'r [u8])> {
        if env.forwards.is_empty() {
            return None;
        }
        let domain = env
            .forward_domain
            .clone()
            .unwrap_or_else(|| self.smtp.hostname.clone());
        let sender = self.smtp.srs.forward(&env.from, &domain);
        // The Return-Path is ours to add only at final delivery; the next server adds its own.
        Some((sender, crate::submission::without_return_path(raw)))
    }
}

/// Received fields at which a message is refused as looping (Postfix uses 50, RFC 5321
/// suggests at least 100 is excessive; forwarding chains this long do not occur in practice).
const MAX_HOPS: usize = 30;

/// The number of `Received:` fields in the header section of `message`.
fn count_received(message: &[u8]) -> usize {
    crate::mime::header_fields(message)
        .filter(|name| name.eq_ignore_ascii_case(b"received"))
        .count()
}
