//! The spam filter at the end of DATA: gathers what the decision needs (the sender's keys, the
//! message's tokens, each recipient account's Bayes counts, reputation, lists and thresholds)
//! and asks [`verdict::decide`] for each account. Everything here fails open: a store error
//! leaves the message unjudged, and it goes to the INBOX (DESIGN.md §8: the filter never loses
//! mail).

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::rdns::{self, Rdns};
use super::reputation::{self, Key, Sender};
use super::verdict::{self, Auth, Decision, Outcome, Personal, ReverseDns, Shared, Thresholds};
use super::{bayes, dnsbl, tokens};
use crate::dns::Dns;
use crate::store::{SpamHam, SpamPolicy, Store, StoreError, Zone};

/// A message at the end of DATA, as the filter sees it.
#[derive(Debug, Clone)]
pub struct Inbound<'a> {
    /// The message as the client sent it (before our trace fields).
    pub raw: &'a [u8],
    pub ip: IpAddr,
    /// The envelope sender (empty for the null sender).
    pub mail_from: &'a str,
    /// The addresses (lower case) each recipient account was reached by, and its own.
    pub addressed_as: &'a [(i64, String)],
    pub tls: bool,
    pub auth: Auth,
    pub dkim_domains: Vec<String>,
    pub spf_domain: Option<String>,
}

/// What the filter decided for one account.
#[derive(Debug, Clone)]
pub struct Judged {
    pub account_id: i64,
    /// `None`: not judged (the filter is off for the account's domain, or it failed).
    pub decision: Option<Decision>,
    /// The `X-Mailroom-Spam:` field to add (empty when not judged).
    pub field: String,
}

/// The decision's I/O: the store (counts, reputation, lists, thresholds) and DNS.
#[derive(Clone)]
pub struct Filter {
    store: Store,
    dns: Dns,
    /// The DNS list zones as last read, and when: read again at most every
    /// [`ZONES_FRESH`], not for every message.
    zones: Arc<Mutex<Option<ReadZones>>>,
}

/// Zones and when they were read.
type ReadZones = (Instant, Vec<Zone>);

/// Messages up to this size are tokenized on the session's own thread.
const INLINE_TOKENIZE: usize = 16 * 1024;

/// How long the zones read from the store are used before they are read again (an admin's
/// change takes effect within this).
const ZONES_FRESH: Duration = Duration::from_secs(10);

impl Filter {
    pub fn new(store: Store, dns: Dns) -> Filter {
        Filter {
            store,
            dns,
            zones: Arc::default(),
        }
    }

    /// The DNS list zones, from memory when read less than [`ZONES_FRESH`] ago.
    async fn zones(&self) -> Vec<Zone> {
        if let Ok(cached) = self.zones.lock()
            && let Some((at, zones)) = cached.as_ref()
            && at.elapsed() < ZONES_FRESH
        {
            return zones.clone();
        }
        match self.store.spam_zones().await {
            Ok(zones) => {
                if let Ok(mut cached) = self.zones.lock() {
                    *cached = Some((Instant::now(), zones.clone()));
                }
                zones
            }
            Err(e) => {
                tracing::warn!("spam filter: cannot read the DNS list zones: {e}");
                Vec::new()
            }
        }
    }

    /// Judges `message` for each of `accounts`; never fails (an error leaves an account
    /// unjudged, logged and counted as `spam_errors`). `shared` brings what the session
    /// knows (authentication, TLS); the DNS lists and reverse DNS are asked here, once, and
    /// only when some account has the filter on.
    pub async fn judge(
        &self,
        message: &Inbound<'_>,
        mut shared: Shared,
        accounts: &[i64],
    ) -> Vec<Judged> {
        let mut policies = Vec::with_capacity(accounts.len());
        for &account_id in accounts {
            policies.push(match self.store.spam_policy(account_id).await {
                Ok(p) => Some(p).filter(|p| p.enabled),
                Err(e) => {
                    self.failed(account_id, &e);
                    None
                }
            });
        }
        if policies.iter().all(Option::is_none) {
            return accounts
                .iter()
                .map(|&account_id| Judged {
                    account_id,
                    decision: None,
                    field: String::new(),
                })
                .collect();
        }
        let header = Header::read(message.raw);
        let sender = Sender {
            from: header.from.clone(),
            from_verified: message.auth.dmarc == Outcome::Pass,
            dkim: message.dkim_domains.clone(),
            spf: message.spf_domain.clone(),
            ip: Some(message.ip),
        };
        let keys = sender.keys();
        let recorded: Vec<String> = keys.iter().map(|k| k.key.clone()).collect();
        // Tokenizing parses up to 256 KiB: on the blocking pool, once for every account,
        // while DNS answers.
        // An account that has learned too little has no Bayes verdict: with none among the
        // recipients, the message is not tokenized at all.
        let learned = |p: &SpamPolicy| {
            p.trained.spam >= bayes::MIN_TRAINED && p.trained.ham >= bayes::MIN_TRAINED
        };
        let any_learned = policies.iter().flatten().any(learned);
        let tokenize = async move {
            if !any_learned {
                return Vec::new();
            }
            // A small message (most mail) tokenizes in well under 0.1 ms: here, without the
            // trip to the blocking pool and back.
            if message.raw.len() <= INLINE_TOKENIZE {
                return tokens::hashed(message.raw);
            }
            let head = message
                .raw
                .get(..message.raw.len().min(tokens::MAX_INPUT))
                .unwrap_or(message.raw)
                .to_vec();
            tokio::task::spawn_blocking(move || tokens::hashed(&head))
                .await
                .unwrap_or_default()
        };
        let (hashed, (listing, rdns)) = tokio::join!(tokenize, self.ask_dns(message.ip));
        shared.dnsbl = listing.points;
        shared.dnsbl_zones = listing.listed;
        shared.rdns = rdns;
        let mut out = Vec::with_capacity(accounts.len());
        for (&account_id, policy) in accounts.iter().zip(policies) {
            let decision = match policy {
                None => None,
                Some(policy) => {
                    let hashed = if learned(&policy) {
                        hashed.as_slice()
                    } else {
                        &[]
                    };
                    // One of the addresses this account was reached by is in To or Cc.
                    let addressed = message
                        .addressed_as
                        .iter()
                        .filter(|(a, _)| *a == account_id)
                        .any(|(_, name)| header.recipients.iter().any(|r| r == name));
                    let personal = self
                        .personal(account_id, policy.trained, message, &sender, &keys, hashed)
                        .await;
                    match personal {
                        Ok(personal) => {
                            let personal = Personal {
                                addressed,
                                ..personal
                            };
                            Some(verdict::decide(&shared, &personal, thresholds(&policy)))
                        }
                        Err(e) => {
                            self.failed(account_id, &e);
                            None
                        }
                    }
                }
            };
            if let Some(d) = &decision {
                self.count(account_id, d, &keys);
            }
            let field = decision
                .as_ref()
                .map(|d| d.field(&recorded))
                .unwrap_or_default();
            out.push(Judged {
                account_id,
                decision,
                field,
            });
        }
        out
    }

    fn failed(&self, account_id: i64, e: &StoreError) {
        self.store.count_event("spam_errors");
        tracing::warn!("spam filter: no verdict for account {account_id}: {e}");
    }

    /// The DNS lists' listing of the client and its reverse DNS, asked at the same time, each
    /// within its own deadline. Reverse DNS of a private or loopback address says nothing.
    async fn ask_dns(&self, ip: IpAddr) -> (dnsbl::Listing, ReverseDns) {
        let zones = self.zones().await;
        let listing = async {
            match zones.is_empty() {
                true => dnsbl::Listing::default(),
                false => dnsbl::check(&self.dns, &self.store, ip, &zones).await,
            }
        };
        let reverse = async {
            if !public(ip) {
                return ReverseDns::Unknown;
            }
            match rdns::fcrdns(&self.dns, ip).await {
                Rdns::Verified(_) => ReverseDns::Verified,
                Rdns::Mismatch => ReverseDns::Mismatch,
                Rdns::Missing => ReverseDns::Missing,
                Rdns::Unknown => ReverseDns::Unknown,
            }
        };
        tokio::join!(listing, reverse)
    }

    /// What the account's own memory says of the message: one read of the store for its
    /// tokens' counts, the sender's reputation and the account's lists. (Whether it was
    /// addressed to the account is the caller's to fill in.)
    async fn personal(
        &self,
        account_id: i64,
        trained: SpamHam,
        message: &Inbound<'_>,
        sender: &Sender,
        keys: &[Key],
        hashed: &[u64],
    ) -> Result<Personal, StoreError> {
        let mut wanted: Vec<String> = keys.iter().map(|k| k.key.clone()).collect();
        let correspondent = sender.correspondent();
        wanted.extend(correspondent.clone());
        let candidates = list_candidates(message, sender);
        let names: Vec<String> = candidates.iter().map(|(c, _)| c.clone()).collect();
        let memory = self
            .store
            .spam_memory(account_id, hashed, &wanted, &names)
            .await?;
        // No tokens: the account has learned too little for a verdict (see `judge`).
        let bayes = match hashed.is_empty() {
            true => None,
            false => {
                let counts: Vec<bayes::Counts> = memory
                    .tokens
                    .iter()
                    .map(|c| bayes::Counts {
                        spam: c.spam,
                        ham: c.ham,
                    })
                    .collect();
                let totals = bayes::Totals {
                    spam: trained.spam,
                    ham: trained.ham,
                };
                bayes::classify(&counts, totals).map(|v| v.probability)
            }
        };
        let found = &memory.reputation;
        let wrote_to = correspondent
            .as_ref()
            .is_some_and(|c| found.iter().any(|(k, n)| k == c && n.ham > 0));
        let reputation = reputation::points(keys, found, wrote_to, sender.from_verified);
        // Candidates are most specific first; the first entry that may count decides.
        let list = candidates.iter().find_map(|(c, trusted)| {
            memory
                .lists
                .iter()
                .find(|e| &e.entry == c && (!e.allow || *trusted))
                .map(|e| (e.allow, e.entry.clone()))
        });
        Ok(Personal {
            bayes,
            reputation,
            list,
            addressed: false,
        })
    }

    /// Counts the classification against the sender's keys (in memory, written once a
    /// minute with the event counts).
    fn count(&self, account_id: i64, decision: &Decision, keys: &[Key]) {
        let junked = decision.verdict != verdict::Verdict::Inbox;
        let counts: Vec<(String, i64, i64)> = keys
            .iter()
            .filter_map(|k| reputation::classified(k, junked).map(|(s, h)| (k.key.clone(), s, h)))
            .collect();
        self.store.note_reputation(account_id, &counts);
        match decision.verdict {
            verdict::Verdict::Junk => self.store.count_event("spam_junked"),
            verdict::Verdict::Reject | verdict::Verdict::Inbox => {}
        }
    }
}

/// The names the account's lists may hold for the sender, the most specific first, each with
/// whether an allow entry for it may count: the `From:` address, then its domain and the
/// domains above it, then the envelope sender's. An allow entry counts only for a name that
/// was verified: the From's when DMARC passed, the envelope sender's when SPF passed for its
/// domain (or anything, when the admin turned the checks off): spammers forge the addresses
/// people allow.
fn list_candidates(message: &Inbound<'_>, sender: &Sender) -> Vec<(String, bool)> {
    let unchecked = !message.auth.checked;
    let envelope_domain = message
        .mail_from
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase());
    let spf_verified = envelope_domain.is_some() && envelope_domain == message.spf_domain;
    let mut candidates: Vec<(String, bool)> = Vec::new();
    for (address, verified) in [
        (sender.from.as_deref(), sender.from_verified),
        (Some(message.mail_from), spf_verified),
    ] {
        let Some(address) = address.filter(|a| !a.is_empty()) else {
            continue;
        };
        let address = address.to_ascii_lowercase();
        let Some((_, domain)) = address.rsplit_once('@') else {
            continue;
        };
        let trusted = unchecked || verified;
        let mut names = vec![address.clone(), domain.to_string()];
        let mut rest = domain;
        while let Some((_, parent)) = rest.split_once('.') {
            if parent.contains('.') {
                names.push(parent.to_string());
            }
            rest = parent;
        }
        for name in names {
            if !candidates.iter().any(|(c, _)| *c == name) {
                candidates.push((name, trusted));
            }
        }
    }
    candidates
}

/// The thresholds in force: the account's junk threshold, else the domain's, else the
/// default; the domain's reject threshold, else the default.
fn thresholds(policy: &SpamPolicy) -> Thresholds {
    Thresholds {
        junk: policy
            .account_junk
            .or(policy.domain_junk)
            .unwrap_or(verdict::DEFAULT_JUNK),
        reject: policy.domain_reject.unwrap_or(verdict::DEFAULT_REJECT),
    }
}

/// An address whose reverse DNS means something: not loopback, private, link-local or
/// unique-local.
fn public(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            !(v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified())
        }
        IpAddr::V6(v6) => {
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_unique_local()
                || v6.is_unicast_link_local())
        }
    }
}

/// What the filter reads from the message's header section.
struct Header {
    /// The first `From:` address, lower case.
    from: Option<String>,
    /// The `To:` and `Cc:` addresses.
    recipients: Vec<String>,
}

/// `To:` and `Cc:` addresses looked at, at most (a header with thousands is spam anyway).
const MAX_RECIPIENTS: usize = 100;

impl Header {
    fn read(raw: &[u8]) -> Header {
        // The header section is parsed on the runtime thread: its first 64 KiB only.
        let raw = raw.get(..raw.len().min(64 * 1024)).unwrap_or(raw);
        let header = crate::mime::raw_header(raw);
        let mut from = None;
        let mut recipients = Vec::new();
        for field in &header.fields {
            if from.is_none() && field.name.eq_ignore_ascii_case(b"from") {
                from = crate::mime::mailboxes(field.value)
                    .ok()
                    .and_then(|m| m.into_iter().next())
                    .map(|m| m.address.to_ascii_lowercase());
            } else if (field.name.eq_ignore_ascii_case(b"to")
                || field.name.eq_ignore_ascii_case(b"cc"))
                && recipients.len() < MAX_RECIPIENTS
            {
                recipients.extend(
                    crate::mime::addresses(field.value)
                        .into_iter()
                        .take(MAX_RECIPIENTS),
                );
            }
        }
        Header { from, recipients }
    }
}
