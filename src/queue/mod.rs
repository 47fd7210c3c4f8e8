//! The outbound queue: mail for other servers, delivered by MX with retries and bounces.
//!
//! - [`Outbound::run`] is the worker: it sleeps until the next recipient falls due (or new mail
//!   wakes it, or shutdown), claims due recipients, and delivers them grouped by message and
//!   destination domain, several destinations at once;
//! - [`dane`]: DANE (RFC 7672): which MX hosts need TLS with a certificate matching their
//!   DNSSEC-signed TLSA records;
//! - [`retry`]: the backoff schedule and expiry;
//! - [`dsn`]: the bounce (RFC 3464) sent to a local sender through the one delivery path;
//! - [`smarthost`]: delivery through a relay with AUTH instead of MX, when one is set;
//! - [`mta_sts`]: MTA-STS (RFC 8461) policies, and the TLS result of every session (RFC 8460
//!   data through `Store::note_tls_attempt`).
//!
//! The queue itself (durable before submission answers `250`) is in `store/queue.rs`.

pub mod dane;
pub mod dsn;
pub mod mta_sts;
pub mod retry;
pub mod smarthost;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::config::QueueConfig;
use crate::dns::Dns;
use crate::shutdown::Shutdown;
use crate::smtp::client::{Client, ClientSettings, Envelope, Outcome};
use crate::srs::Srs;
use crate::store::{Delivery, QueuedRecipient, Store, Target, now};

/// Recipients claimed per round.
const CLAIM_BATCH: i64 = 500;
/// The worker looks at the queue at least this often, for changes made by the CLI (another
/// process, which cannot wake it).
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// Addresses tried per destination in one attempt, over all its MX hosts.
const MAX_ADDRESSES: usize = 10;

/// Everything the worker needs.
#[derive(Clone)]
pub struct Outbound {
    store: Store,
    dns: Dns,
    config: Arc<QueueConfig>,
    client: ClientSettings,
    hostname: String,
    srs: Srs,
    dane: dane::Dane,
    mta_sts: mta_sts::MtaSts,
}

impl Outbound {
    pub fn new(
        store: Store,
        dns: Dns,
        config: QueueConfig,
        hostname: String,
        srs: Srs,
    ) -> Outbound {
        // `app::start` has read the file once already and refuses to start when it cannot.
        let extra_roots = match &config.ca_file {
            Some(path) => mta_sts::read_ca_file(path).unwrap_or_else(|e| {
                tracing::error!("queue: {e}");
                Vec::new()
            }),
            None => Vec::new(),
        };
        let client = ClientSettings::new(
            hostname.clone(),
            Duration::from_secs(config.timeout_secs.max(1)),
            config.require_tls,
        )
        .with_extra_roots(&extra_roots);
        let mta_sts = mta_sts::MtaSts::new(
            store.clone(),
            dns.clone(),
            client.verified_config(),
            config.mta_sts_port,
        );
        let dane = dane::Dane::new(dns.validating().clone(), config.dane, config.smtp_port);
        Outbound {
            store,
            dns,
            dane,
            config: Arc::new(config),
            client,
            hostname,
            srs,
            mta_sts,
        }
    }

    /// The worker loop, until `shutdown` turns true. Deliveries in flight are abandoned at
    /// shutdown: their recipients stay claimed for a lease and are retried after a restart.
    pub async fn run(self, shutdown: Shutdown) {
        let slots = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let mut running: JoinSet<()> = JoinSet::new();
        match self.store.queue_release_claims().await {
            Ok(0) => {}
            Ok(n) => tracing::info!("queue: {n} recipients interrupted by the last stop are due"),
            Err(e) => tracing::error!("queue: cannot release old claims: {e}"),
        }
        'work: loop {
            if shutdown.is_set() {
                break;
            }
            match self.store.queue_claim(CLAIM_BATCH).await {
                Ok(claimed) => {
                    for (domain, batch) in group(claimed) {
                        // Every slot may be held by slow peers for up to `timeout_secs`:
                        // shutdown is watched here too. The batches not started stay claimed
                        // until the next start releases them.
                        let permit = tokio::select! {
                            permit = slots.clone().acquire_owned() => permit,
                            _ = shutdown.wait() => break 'work,
                        };
                        let Ok(permit) = permit else {
                            break;
                        };
                        let this = self.clone();
                        running.spawn(async move {
                            this.deliver_domain(&domain, batch).await;
                            drop(permit);
                        });
                    }
                }
                Err(e) => tracing::error!("queue: cannot read the queue: {e}"),
            }
            while running.try_join_next().is_some() {}
            let sleep = match self.store.queue_next_due().await {
                Ok(Some(due)) => {
                    Duration::from_secs(u64::try_from(due - now()).unwrap_or(0)).min(MAX_SLEEP)
                }
                Ok(None) => MAX_SLEEP,
                Err(_) => Duration::from_secs(5),
            };
            // A finished delivery may have deferred recipients to a time before `sleep` ends.
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.store.queue_woken() => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
                _ = shutdown.wait() => break,
            }
        }
        running.abort_all();
    }

    /// Delivers claimed messages for one destination domain over one connection where the
    /// peer allows (as MTAs do), then records them as done in one transaction.
    async fn deliver_domain(&self, domain: &str, batch: Vec<(i64, Vec<QueuedRecipient>)>) {
        let mut session: Option<Client> = None;
        let mut finished = Vec::new();
        // Set when the destination could not be reached: the rest of the batch waits too,
        // rather than each message timing out on its own.
        let mut unreachable: Option<String> = None;
        for (message_id, recipients) in batch {
            let message = match self.store.queued_message(message_id).await {
                Ok(Some(m)) => m,
                Ok(None) => continue, // dropped meanwhile
                Err(e) => {
                    tracing::error!("queue: cannot read message {message_id}: {e}");
                    continue;
                }
            };
            let (sender, raw, created_at, smtputf8) = message;
            let addresses: Vec<String> = recipients.iter().map(|r| r.address.clone()).collect();
            let envelope = Envelope {
                sender: &sender,
                recipients: &addresses,
                message: &raw,
                smtputf8,
            };
            let outcomes = match (&unreachable, session.as_mut()) {
                (Some(why), _) => vec![Outcome::Deferred(why.clone()); addresses.len()],
                (None, Some(client)) => match client.send(&envelope).await {
                    Ok(outcomes) => outcomes,
                    Err(e) if e.is_permanent() => {
                        vec![Outcome::Failed(e.to_string()); addresses.len()]
                    }
                    // The connection went away between messages: start afresh.
                    Err(_) => {
                        session = None;
                        self.attempt(domain, &envelope, &mut session).await
                    }
                },
                (None, None) => self.attempt(domain, &envelope, &mut session).await,
            };
            if session.is_none()
                && let Some(Outcome::Deferred(why)) = outcomes.first()
                && outcomes.iter().all(|o| matches!(o, Outcome::Deferred(_)))
            {
                unreachable = Some(why.clone());
            }
            let done = self
                .record(message_id, &sender, &raw, created_at, &recipients, outcomes)
                .await;
            finished.extend(done);
        }
        if let Some(client) = session {
            client.quit().await;
        }
        if let Err(e) = self.store.queue_finish(&finished).await {
            tracing::error!("queue: cannot record deliveries to {domain}: {e}");
        }
    }

    /// Writes back the outcomes of one message: deferrals at once, a DSN for failures; returns
    /// the recipients that are done (delivered or bounced) for [`Store::queue_finish`].
    async fn record(
        &self,
        message_id: i64,
        sender: &str,
        raw: &[u8],
        created_at: i64,
        recipients: &[QueuedRecipient],
        outcomes: Vec<Outcome>,
    ) -> Vec<i64> {
        let now = now();
        let mut finished = Vec::new();
        let mut failures = Vec::new();
        for (recipient, outcome) in recipients.iter().zip(outcomes) {
            match outcome {
                Outcome::Delivered(reply) => {
                    tracing::info!(
                        "queue: delivered message {message_id} to {}: {reply}",
                        recipient.address
                    );
                    finished.push(recipient.id);
                }
                Outcome::Failed(why) => {
                    tracing::info!(
                        "queue: message {message_id} to {} failed: {why}",
                        recipient.address
                    );
                    finished.push(recipient.id);
                    failures.push(dsn::Failure {
                        recipient: recipient.address.clone(),
                        from_peer: starts_with_reply_code(&why),
                        diagnostic: why,
                    });
                }
                Outcome::Deferred(why) if retry::expired(&self.config, created_at, now) => {
                    tracing::info!(
                        "queue: giving up message {message_id} to {}: {why}",
                        recipient.address
                    );
                    finished.push(recipient.id);
                    failures.push(dsn::Failure {
                        recipient: recipient.address.clone(),
                        diagnostic: format!(
                            "gave up after {} attempts; the last said: {why}",
                            recipient.attempts + 1
                        ),
                        from_peer: false,
                    });
                }
                Outcome::Deferred(why) => {
                    let wait = retry::delay(&self.config, recipient.attempts + 1);
                    tracing::info!(
                        "queue: message {message_id} to {} deferred for {wait} s: {why}",
                        recipient.address
                    );
                    let next = now.saturating_add(i64::try_from(wait).unwrap_or(i64::MAX));
                    if let Err(e) = self.store.queue_defer(recipient.id, next, &why).await {
                        tracing::error!("queue: cannot record a deferral: {e}");
                    }
                }
            }
        }
        // The bounce is stored before the recipients leave the queue: a crash in between
        // means a second bounce at worst, never none.
        if !failures.is_empty()
            && let Err(e) = self.bounce(sender, raw, created_at, &failures).await
        {
            tracing::error!("queue: cannot bounce message {message_id} to {sender}: {e}");
            // They stay claimed until the next start, which tries again.
            return Vec::new();
        }
        finished
    }

    /// Tries the mail exchangers of `domain` in order until one decides; an outcome for every
    /// recipient, in order. The connection that decided is left in `session` for the next
    /// message to the same domain.
    async fn attempt(
        &self,
        domain: &str,
        envelope: &Envelope<'_>,
        session: &mut Option<Client>,
    ) -> Vec<Outcome> {
        let all = |o: Outcome| vec![o; envelope.recipients.len()];
        // A smarthost set for the sender's domain (or for all) takes the mail instead of MX.
        if let Some(relay) = smarthost::relay_for(&self.store, envelope.sender).await {
            return smarthost::attempt(&self.dns, &self.client, &relay, envelope).await;
        }
        let hosts = match self.dns.mx(domain).await {
            Ok(hosts) => hosts,
            Err(e) if e.is_permanent() => return all(Outcome::Failed(e.to_string())),
            Err(e) => return all(Outcome::Deferred(e.to_string())),
        };
        // DANE first: where it applies it decides how each host is reached (RFC 7672).
        let destination = self.dane.destination(domain).await;
        if let dane::Destination::Refused(why) = &destination {
            self.dane_report(
                domain,
                &dane::Host::NotApplicable,
                domain,
                None,
                Some(("dnssec-invalid", why)),
            )
            .await;
            return all(Outcome::Deferred(why.clone()));
        }
        // MTA-STS applies where DANE does not (RFC 8461 §2: DANE takes precedence).
        let sts = self.mta_sts.lookup(domain).await;
        let mut last_error = format!("no mail exchanger of {domain} could be reached");
        let mut tried = 0;
        for mx in &hosts {
            let dane_host = match destination {
                dane::Destination::Signed => self.dane.host(domain, &mx.host).await,
                _ => dane::Host::NotApplicable,
            };
            if let dane::Host::Refused { result_type, why } = &dane_host {
                self.dane_report(domain, &dane_host, &mx.host, None, Some((result_type, why)))
                    .await;
                last_error = format!("{}: {why}", mx.host);
                continue;
            }
            let ips = match self.dns.addresses(&mx.host).await {
                Ok(ips) => ips,
                Err(e) => {
                    last_error = e.to_string();
                    continue;
                }
            };
            for ip in ips {
                if tried >= MAX_ADDRESSES {
                    break;
                }
                tried += 1;
                let addr = SocketAddr::new(ip, self.config.smtp_port);
                let connected = if dane_host.applies() {
                    // No fallback: without the authenticated session, this host is skipped.
                    let connected = self
                        .dane
                        .connect(&dane_host, &self.client, addr, &mx.host)
                        .await;
                    let failure = connected.as_ref().err().map(|e| dane_host.failure_of(e));
                    let failure = failure.as_ref().map(|(kind, why)| (*kind, why.as_str()));
                    self.dane_report(domain, &dane_host, &mx.host, Some(ip), failure)
                        .await;
                    connected.map_err(|e| format!("{} [{addr}]: DANE: {e}", mx.host))
                } else {
                    // TLS as the domain's MTA-STS policy asks (opportunistic without one), the
                    // result counted for TLS reports.
                    self.mta_sts
                        .connect(&sts, domain, &self.client, &mx.host, addr)
                        .await
                };
                let mut client = match connected {
                    Ok(c) => c,
                    Err(why) => {
                        last_error = why;
                        continue;
                    }
                };
                match client.send(envelope).await {
                    Ok(outcomes) => {
                        *session = Some(client);
                        return outcomes;
                    }
                    Err(e) if e.is_permanent() => {
                        client.quit().await;
                        return all(Outcome::Failed(e.to_string()));
                    }
                    Err(e) => last_error = format!("{} [{addr}]: {e}", mx.host),
                }
            }
        }
        all(Outcome::Deferred(last_error))
    }

    /// Sends one DSN for `failures` to `sender`: into the local sender's INBOX through the one
    /// delivery path, or through the queue (from the null sender) when the sender is remote.
    /// Never to the null sender.
    async fn bounce(
        &self,
        sender: &str,
        raw: &[u8],
        created_at: i64,
        failures: &[dsn::Failure],
    ) -> Result<(), crate::store::StoreError> {
        if sender.is_empty() {
            return Ok(());
        }
        // Forwarded mail failed: the bounce belongs to the sender behind our SRS address.
        let mut sender = sender.to_string();
        if let Some((local, domain)) = sender.rsplit_once('@')
            && let Some(original) = self.srs.reverse(local)
            && self.store.is_local_domain(domain).await?
        {
            sender = original;
        }
        let sender = sender.as_str();
        let report = dsn::build(&self.hostname, sender, raw, created_at, failures);
        match self.store.expand_recipient(sender).await? {
            Some(expansion) if !expansion.local.is_empty() => {
                // Return-Path is added where a message is finally delivered: here.
                let message = [b"Return-Path: <>\r\n".as_slice(), &report].concat();
                let targets: Vec<Target> = expansion
                    .local
                    .iter()
                    .map(|a| Target::inbox(a.id))
                    .collect();
                let report = self
                    .store
                    .deliver(
                        Delivery {
                            raw: &message,
                            internal_date: None,
                        },
                        &targets,
                    )
                    .await?;
                for (target, why) in report.refused {
                    tracing::warn!(
                        "queue: bounce for {sender} not stored in account {}: {why}",
                        target.account_id()
                    );
                }
                Ok(())
            }
            _ => {
                self.store
                    .queue_add("", &[sender.to_string()], &report)
                    .await?;
                Ok(())
            }
        }
    }
}

fn starts_with_reply_code(s: &str) -> bool {
    s.get(..3)
        .is_some_and(|c| c.bytes().all(|b| b.is_ascii_digit()))
}

/// Claimed recipients grouped by destination domain (one connection each), and within it by
/// message (one SMTP transaction each), oldest message first.
fn group(claimed: Vec<QueuedRecipient>) -> BTreeMap<String, Vec<(i64, Vec<QueuedRecipient>)>> {
    let mut groups: BTreeMap<String, BTreeMap<i64, Vec<QueuedRecipient>>> = BTreeMap::new();
    for r in claimed {
        groups
            .entry(r.domain.to_ascii_lowercase())
            .or_default()
            .entry(r.message_id)
            .or_default()
            .push(r);
    }
    groups
        .into_iter()
        .map(|(domain, messages)| (domain, messages.into_iter().collect()))
        .collect()
}
