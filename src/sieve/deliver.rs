//! Sieve at local delivery: each recipient account's active script turns the copy it would
//! get (its INBOX, or Junk by the spam verdict) into the copies, redirects, refusal and
//! vacation reply the script asks for. The MX (`smtp/inbound.rs`) and the submission path
//! (`submission.rs`) call [`Rules::apply`] before their one delivery transaction and carry out
//! the rest after it.
//!
//! A script never loses mail (DESIGN.md §8): a script that cannot be read or compiled, a
//! run-time error, a folder that cannot be made, a redirect the domain forbids: each keeps the
//! message in the copy it would have had without a script, and the error is recorded for the
//! rules page.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{Action, Context, Limits, Message, Script, Vacation};
use crate::dkim::Signer;
use crate::store::{Flags, Store, StoreError, Target};

/// Compiled scripts kept in memory, by account (past this, the cache starts again).
const CACHED_SCRIPTS: usize = 4096;

/// Sieve at delivery, shared by every session.
#[derive(Clone)]
pub struct Rules {
    store: Store,
    signer: Signer,
    hostname: String,
    limits: Arc<Limits>,
    /// Each account's active script (or none) as read at a `Store::sieve_generation`.
    cache: Arc<Mutex<HashMap<i64, (u64, Found)>>>,
    /// The error last recorded per account and when: a broken script fails for every
    /// message, and each would otherwise cost a write and a log line.
    /// (Kept with the scripts' generation: a changed script's first error is recorded.)
    recorded: Arc<Mutex<HashMap<i64, Recorded>>>,
}

/// An error, the scripts' generation it happened under, and when it was recorded.
type Recorded = (String, u64, std::time::Instant);

/// How long the same error of an account is not recorded again.
const RECORD_AGAIN: std::time::Duration = std::time::Duration::from_secs(60);

/// An account's active script: its name and compiled form, or none.
type Found = Option<(String, Arc<Script>)>;

/// One delivery, as the account's script sees it.
pub struct Arrival<'a> {
    /// The message as it will be stored (trace fields included).
    pub raw: &'a [u8],
    /// MAIL FROM, "" for the null sender.
    pub envelope_from: &'a str,
    /// The address the account was reached by.
    pub envelope_to: &'a str,
    /// The submitting user, on the submission path.
    pub auth: Option<&'a str>,
    /// The spam filter's score as a percentage of certainty (`spamtest`), when it judged.
    pub spam_percent: Option<u8>,
}

/// What an account's script made of one delivery.
#[derive(Debug, Default)]
pub struct Applied {
    /// The account's copies (none: discarded, or refused).
    pub targets: Vec<Target>,
    /// Addresses to send the message on to (with the caller's SRS sender).
    pub redirects: Vec<String>,
    /// `reject`/`ereject`: the reason. The caller refuses in SMTP when every recipient
    /// refuses, and otherwise sends [`Rules::send_refusal`].
    pub reject: Option<String>,
    /// A reply to send after the delivery is committed ([`Rules::send_vacation`]).
    pub vacation: Option<Vacation>,
}

impl Rules {
    pub fn new(store: Store, hostname: String) -> Rules {
        Rules {
            signer: Signer::new(store.clone()),
            store,
            hostname,
            limits: Arc::new(Limits::default()),
            cache: Arc::default(),
            recorded: Arc::default(),
        }
    }

    /// The account's script applied to `arrival`, whose copy without a script is `default`.
    /// Never fails: whatever goes wrong keeps `default` and is recorded.
    pub async fn apply(&self, account_id: i64, default: Target, arrival: &Arrival<'_>) -> Applied {
        let (name, script) = match self.script(account_id).await {
            Ok(Some(found)) => found,
            Ok(None) => return kept(default),
            Err((name, why)) => {
                self.failed(account_id, &name, &why).await;
                return kept(default);
            }
        };
        // Read only what the script can use: the account's addresses for vacation's
        // "addressed to me", its folders for `mailboxexists` (each is a database read per
        // message).
        let own = match script.required().iter().any(|e| e.starts_with("vacation")) {
            true => self.own_addresses(account_id, arrival.envelope_to).await,
            false => Vec::new(),
        };
        let folders = match script.asks_mailboxes() {
            false => Vec::new(),
            true => match self.store.mailboxes(account_id).await {
                Ok(list) => list.into_iter().map(|m| m.name).collect::<Vec<_>>(),
                Err(e) => {
                    self.failed(account_id, &name, &format!("cannot list the folders: {e}"))
                        .await;
                    return kept(default);
                }
            },
        };
        let exists = move |name: &str| {
            folders.iter().any(|f| {
                f == name || (f.eq_ignore_ascii_case("INBOX") && name.eq_ignore_ascii_case("INBOX"))
            })
        };
        let message = Message {
            raw: arrival.raw,
            envelope_from: arrival.envelope_from,
            envelope_to: arrival.envelope_to,
            auth: arrival.auth,
            spam_percent: arrival.spam_percent,
        };
        let ctx = Context {
            now: time::OffsetDateTime::now_utc(),
            own_addresses: &own,
            mailbox_exists: &exists,
            limits: &self.limits,
        };
        let outcome = super::run(&script, &message, &ctx);
        if let Some(error) = &outcome.error {
            self.failed(account_id, &name, error).await;
        }
        let mut applied = Applied::default();
        for action in outcome.actions {
            match action {
                Action::Keep { flags } => {
                    push(&mut applied.targets, flagged(default.clone(), &flags))
                }
                Action::FileInto {
                    mailbox,
                    flags,
                    create,
                } => {
                    let target = match self.folder(account_id, &mailbox, create).await {
                        Ok(target) => target,
                        Err(why) => {
                            self.failed(account_id, &name, &why).await;
                            default.clone()
                        }
                    };
                    push(&mut applied.targets, flagged(target, &flags));
                }
                Action::Redirect { address }
                    if redirected_before(arrival.raw, arrival.envelope_to) =>
                {
                    let why = format!(
                        "redirect to {address}: the message came back from an earlier redirect of this account (a loop); kept"
                    );
                    self.failed(account_id, &name, &why).await;
                    push(&mut applied.targets, default.clone());
                }
                Action::Redirect { address } => match self.redirect(account_id, &address).await {
                    Ok(onward) => {
                        for target in onward.local {
                            push(&mut applied.targets, target);
                        }
                        for address in onward.remote {
                            if !applied
                                .redirects
                                .iter()
                                .any(|a| a.eq_ignore_ascii_case(&address))
                            {
                                applied.redirects.push(address);
                            }
                        }
                    }
                    Err(why) => {
                        self.failed(account_id, &name, &why).await;
                        push(&mut applied.targets, default.clone());
                    }
                },
                Action::Reject { reason, .. } => applied.reject = Some(reason),
                Action::Discard => {}
                Action::Vacation(v) => applied.vacation = Some(v),
            }
        }
        applied
    }

    /// The account's active script (its name and compiled form), from memory while no
    /// script changed in the store since it was read (`Store::sieve_generation`; "no
    /// script" is remembered too, so an account without rules costs no read), else from
    /// its stored compiled form, else compiled again from the source (a form stored by
    /// another version). An error comes with the script's name and is not remembered.
    async fn script(&self, account_id: i64) -> Result<Found, (String, String)> {
        // Read before the store: a change after this makes the next delivery read again.
        let generation = self.store.sieve_generation();
        if let Ok(cache) = self.cache.lock()
            && let Some((read_at, found)) = cache.get(&account_id)
            && *read_at == generation
        {
            return Ok(found.clone());
        }
        let active = self
            .store
            .active_sieve(account_id)
            .await
            .map_err(|e| (String::new(), format!("cannot read the active script: {e}")))?;
        let found = match active {
            None => None,
            Some(active) => {
                let script = match Script::from_stored(&active.compiled) {
                    Some(script) => script,
                    None => super::compile(&active.source).map_err(|e| {
                        (
                            active.name.clone(),
                            format!("the script does not compile: {e}"),
                        )
                    })?,
                };
                Some((active.name, Arc::new(script)))
            }
        };
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHED_SCRIPTS {
                cache.clear();
            }
            cache.insert(account_id, (generation, found.clone()));
        }
        Ok(found)
    }

    /// The account's own addresses, for vacation's "addressed to me": its address and the
    /// one it was reached by (an alias).
    async fn own_addresses(&self, account_id: i64, reached_as: &str) -> Vec<String> {
        let mut own: Vec<String> = Some(reached_as.to_ascii_lowercase())
            .filter(|a| !a.is_empty())
            .into_iter()
            .collect();
        if let Ok(Some(account)) = self.store.account(account_id).await
            && !own.contains(&account.address.to_ascii_lowercase())
        {
            own.push(account.address.to_ascii_lowercase());
        }
        own
    }

    /// `fileinto`'s target: the account's folder of that name, made first with `:create`.
    async fn folder(&self, account_id: i64, name: &str, create: bool) -> Result<Target, String> {
        if name.eq_ignore_ascii_case("INBOX") {
            return Ok(Target::inbox(account_id));
        }
        let found = self
            .store
            .mailbox(account_id, name)
            .await
            .map_err(|e| format!("fileinto {name:?}: {e}"))?;
        let mailbox = match found {
            Some(m) => m,
            None if create => match self.store.create_mailbox_path(account_id, name).await {
                Ok(m) => {
                    // A folder the rules made is one the user sees in their client.
                    let _ = self.store.subscribe_name(account_id, name).await;
                    m
                }
                // Made meanwhile by another delivery.
                Err(StoreError::Conflict(_)) => self
                    .store
                    .mailbox(account_id, name)
                    .await
                    .ok()
                    .flatten()
                    .ok_or_else(|| format!("fileinto {name:?}: the folder cannot be made"))?,
                Err(e) => return Err(format!("fileinto {name:?}: {e}")),
            },
            None => {
                return Err(format!(
                    "fileinto {name:?}: no such folder (the message was kept)"
                ));
            }
        };
        Ok(Target::mailbox(&mailbox))
    }

    /// Where `redirect` sends the message: a local address's accounts get it in their INBOX
    /// here (without running their rules, so two scripts cannot bounce a message between
    /// them; an alias's remote members join the remote addresses); a remote address goes
    /// through the queue, when the account's domain lets its users forward outside.
    async fn redirect(&self, account_id: i64, address: &str) -> Result<Onward, String> {
        let Some((_, domain)) = address.rsplit_once('@') else {
            return Err(format!("redirect to {address:?}: not an address"));
        };
        let fail = |e: StoreError| format!("redirect to {address}: {e}");
        if self.store.is_local_domain(domain).await.map_err(fail)? {
            let expansion = self
                .store
                .expand_recipient(address)
                .await
                .map_err(fail)?
                .ok_or_else(|| format!("redirect to {address}: no such local address"))?;
            if !expansion.remote.is_empty() && !self.outside_allowed(account_id).await? {
                return Err(forbidden(address));
            }
            return Ok(Onward {
                local: expansion
                    .local
                    .iter()
                    .map(|a| Target::inbox(a.id))
                    .collect(),
                remote: expansion.remote,
            });
        }
        match self.outside_allowed(account_id).await? {
            true => Ok(Onward {
                local: Vec::new(),
                remote: vec![address.to_string()],
            }),
            false => Err(forbidden(address)),
        }
    }

    async fn outside_allowed(&self, account_id: i64) -> Result<bool, String> {
        self.store
            .account_may_forward_externally(account_id)
            .await
            .map_err(|e| format!("cannot read the domain's forwarding rule: {e}"))
    }

    /// Sends `vacation`'s reply for the account `account_id`, unless one went to the same
    /// sender with the same handle within its period. After the delivery's commit; a failure
    /// is logged and recorded, and loses no mail (the message itself is stored).
    pub async fn send_vacation(&self, account_id: i64, vacation: &Vacation) {
        if let Err(why) = self.try_vacation(account_id, vacation).await {
            let why = format!("vacation reply to {}: {why}", vacation.to);
            self.failed(account_id, "", &why).await;
        }
    }

    async fn try_vacation(&self, account_id: i64, v: &Vacation) -> Result<(), String> {
        let account = self
            .store
            .account(account_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the account is gone")?;
        let due = self
            .store
            .vacation_reply_due(
                account_id,
                &v.handle,
                &v.to.to_ascii_lowercase(),
                v.period_secs,
                crate::store::now(),
            )
            .await
            .map_err(|e| e.to_string())?;
        if !due {
            return Ok(());
        }
        let from = v.from.clone().unwrap_or_else(|| account.address.clone());
        let raw = super::replies::vacation(&self.hostname, &from, v);
        self.send_reply(&account.address, &v.to, raw).await
    }

    /// Tells `sender` the account refused `original` (when it could not be refused in SMTP).
    pub async fn send_refusal(&self, account_id: i64, sender: &str, original: &[u8], reason: &str) {
        if sender.is_empty() {
            return;
        }
        let result = async {
            let account = self
                .store
                .account(account_id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("the account is gone")?;
            let raw =
                super::replies::refusal(&self.hostname, &account.address, sender, original, reason);
            self.send_reply(&account.address, sender, raw).await
        }
        .await;
        if let Err(why) = result {
            self.failed(account_id, "", &format!("refusal to {sender}: {why}"))
                .await;
        }
    }

    /// An automatic reply from `author` to `to`, with the null envelope sender: into the
    /// INBOX of a local recipient (without running their rules: replies to replies are how
    /// loops start), else DKIM-signed for the author's domain into the outbound queue.
    async fn send_reply(&self, author: &str, to: &str, raw: Vec<u8>) -> Result<(), String> {
        let expansion = self
            .store
            .expand_recipient(to)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(expansion) = expansion.filter(|e| !e.local.is_empty()) {
            let targets: Vec<Target> = expansion
                .local
                .iter()
                .map(|a| Target::inbox(a.id))
                .collect();
            let delivery = crate::store::Delivery {
                raw: &raw,
                internal_date: None,
            };
            self.store
                .deliver(delivery, &targets)
                .await
                .map_err(|e| e.to_string())?;
            return Ok(());
        }
        let signed = match crate::dkim::domain_of(author) {
            Some(domain) => self
                .signer
                .sign_as(&domain, &raw)
                .await
                .map_err(|e| e.to_string())?,
            None => raw,
        };
        self.store
            .queue_add("", &[to.to_string()], &signed)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Records a problem with the account's rules (of its script `script`, when known) where
    /// the rules page shows it.
    async fn failed(&self, account_id: i64, script: &str, why: &str) {
        self.store.count_event("sieve_errors");
        let generation = self.store.sieve_generation();
        if let Ok(mut recorded) = self.recorded.lock() {
            if let Some((last, read_at, at)) = recorded.get(&account_id)
                && last == why
                && *read_at == generation
                && at.elapsed() < RECORD_AGAIN
            {
                return;
            }
            if recorded.len() >= CACHED_SCRIPTS {
                recorded.clear();
            }
            recorded.insert(
                account_id,
                (why.to_string(), generation, std::time::Instant::now()),
            );
        }
        tracing::warn!("sieve: account {account_id}: {why}");
        let recorded = self
            .store
            .record_sieve_error(account_id, script, why, crate::store::now())
            .await;
        if let Err(e) = recorded {
            tracing::warn!("sieve: cannot record the error of account {account_id}: {e}");
        }
    }
}

/// The field our MX adds to mail a script redirects, naming the address whose rules did it
/// (RFC 5228 §4.2 asks for loop protection; `Received` counting stops a loop only after 30
/// hops).
pub const LOOP_FIELD: &str = "X-Mailroom-Redirected-By";

/// Whether `raw` carries our redirect mark for `address` (in its first 64 KiB of header).
fn redirected_before(raw: &[u8], address: &str) -> bool {
    if address.is_empty() {
        return false;
    }
    let head = crate::mime::header_section(raw.get(..raw.len().min(64 << 10)).unwrap_or(raw));
    crate::mime::raw_header(head).fields.iter().any(|f| {
        f.name.eq_ignore_ascii_case(LOOP_FIELD.as_bytes())
            && String::from_utf8_lossy(f.value)
                .trim()
                .eq_ignore_ascii_case(address)
    })
}

/// Where a redirect goes: copies for local accounts, addresses for the queue.
struct Onward {
    local: Vec<Target>,
    remote: Vec<String>,
}

fn forbidden(address: &str) -> String {
    format!(
        "redirect to {address}: this domain does not let its users forward mail outside (the message was kept)"
    )
}

/// The copy without a script.
fn kept(default: Target) -> Applied {
    Applied {
        targets: vec![default],
        ..Applied::default()
    }
}

/// `target` with the flags of `:flags` or the imap4flags variable: the system flags by
/// name, the others as keywords.
fn flagged(target: Target, flags: &[String]) -> Target {
    if flags.is_empty() {
        return target;
    }
    let mut system = target.flags;
    let mut keywords = target.keywords.clone();
    for flag in flags {
        let bit = match flag.to_ascii_lowercase().as_str() {
            "\\seen" => Some(Flags::SEEN),
            "\\answered" => Some(Flags::ANSWERED),
            "\\flagged" => Some(Flags::FLAGGED),
            "\\deleted" => Some(Flags::DELETED),
            "\\draft" => Some(Flags::DRAFT),
            _ => None,
        };
        match bit {
            Some(bit) => system = system.union(bit),
            // Other backslash names are not ours to set (RFC 3501 §2.3.2).
            None if flag.starts_with('\\') => {}
            None => {
                if !keywords.iter().any(|k| k.eq_ignore_ascii_case(flag)) {
                    keywords.push(flag.clone());
                }
            }
        }
    }
    target.with_flags(system, keywords)
}

/// Adds `target` unless the same folder already has a copy (its flags then join).
fn push(targets: &mut Vec<Target>, target: Target) {
    match targets.iter_mut().find(|t| t.same_place(&target)) {
        Some(existing) => {
            existing.flags = existing.flags.union(target.flags);
            for k in target.keywords {
                if !existing.keywords.contains(&k) {
                    existing.keywords.push(k);
                }
            }
        }
        None => targets.push(target),
    }
}

/// The spam filter's points as `spamtest`'s percentage (RFC 5235): the junk threshold is
/// 50%, twice it or more 100%, no points or fewer 0%.
pub fn spam_percent(points: f64, junk_threshold: f64) -> u8 {
    if junk_threshold <= 0.0 || !points.is_finite() {
        return 0;
    }
    (points / junk_threshold * 50.0).clamp(0.0, 100.0).round() as u8
}
