//! Issue 23, reports. Received: DMARC aggregate and TLS reports to postmaster@ our domains,
//! parsed and stored (`intake`, bounded by `unpack`), shown on `/admin/reports`. Sent: what we
//! saw of other domains' mail (`observe`, counted per day by the store) as daily DMARC
//! aggregate reports (`dmarc_xml`, RFC 7489 Appendix C), and our outbound TLS results as
//! daily TLS reports (RFC 8460), each DKIM-signed and queued by [`Reporter`].
//!
//! The reports we send come From `noreply-dmarc@<our first domain>` (or `noreply-tlsrpt@`):
//! the first domain is the one made at first start, so it has DKIM keys and its records are
//! published, and the report passes DMARC at the receiver through DKIM. They go out with the
//! null envelope sender (RFC 3834's habit for automatic mail), so a report that cannot be
//! delivered bounces to nobody.

pub mod dmarc_xml;
pub mod intake;
pub mod observe;
pub mod tlsrpt;
pub mod unpack;

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use mail_builder::MessageBuilder;
use mail_builder::headers::raw::Raw;

use crate::dkim::Signer;
use crate::dns::Dns;
use crate::shutdown::Shutdown;
use crate::store::{DmarcSeen, ReportSent, Store, StoreError};

pub use intake::{Intake, for_reports, intake};
pub use observe::{Counter, Observation};

/// The first daily run comes this long after the start (so a restart loop does not send).
const FIRST_RUN: Duration = Duration::from_secs(5 * 60);
/// Each later run this long after UTC midnight.
const AFTER_MIDNIGHT: i64 = 5 * 60;
const DAY: i64 = 86_400;

/// What one day's run queued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaySent {
    /// DMARC aggregate reports queued.
    pub dmarc: usize,
    /// TLS reports queued.
    pub tls: usize,
}

/// Sends the daily reports. Cheap to clone.
#[derive(Clone)]
pub struct Reporter {
    store: Store,
    dns: Dns,
    hostname: String,
    signer: Signer,
}

impl Reporter {
    pub fn new(store: Store, dns: Dns, hostname: String) -> Reporter {
        Reporter {
            signer: Signer::new(store.clone()),
            store,
            dns,
            hostname,
        }
    }

    /// The daily task: the previous UTC day's reports [`FIRST_RUN`] after the start, then
    /// shortly after each UTC midnight. A day's rows are forgotten once its reports are
    /// queued, so a second run for the same day (a restart) sends nothing twice.
    pub async fn run(self, shutdown: Shutdown) {
        let mut wait = FIRST_RUN;
        loop {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.wait() => return,
            }
            let now = crate::store::now();
            let today = now - now.rem_euclid(DAY);
            if let Err(e) = self.send_day(today - DAY).await {
                tracing::warn!("cannot send the daily reports: {e}");
            }
            let next = today + DAY + AFTER_MIDNIGHT;
            let secs = u64::try_from((next - crate::store::now()).max(60)).unwrap_or(3600);
            wait = Duration::from_secs(secs);
        }
    }

    /// Queues the reports of the UTC day starting at `day_start` (unix seconds, a multiple of
    /// 86400) and forgets what they were made of.
    pub async fn send_day(&self, day_start: i64) -> Result<DaySent, StoreError> {
        let day = day_start - day_start.rem_euclid(DAY);
        let dmarc = self.send_dmarc(day).await?;
        let tls = self.send_tls(day).await?;
        Ok(DaySent { dmarc, tls })
    }

    /// The domain our reports come from: the first domain made (it has DKIM keys).
    async fn sender_domain(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .store
            .domains()
            .await?
            .into_iter()
            .min_by_key(|d| d.id)
            .map(|d| d.name))
    }

    async fn send_dmarc(&self, day: i64) -> Result<usize, StoreError> {
        let rows = self.store.dmarc_seen_of_day(day).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let Some(from_domain) = self.sender_domain().await? else {
            return Ok(0);
        };
        let mut by_domain: BTreeMap<String, Vec<DmarcSeen>> = BTreeMap::new();
        for row in rows {
            by_domain.entry(row.domain.clone()).or_default().push(row);
        }
        let mut queued = 0;
        for (domain, rows) in by_domain {
            match self
                .send_dmarc_report(day, &from_domain, &domain, &rows)
                .await
            {
                Ok(true) => queued += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!("cannot send the DMARC report to {domain}: {e}"),
            }
        }
        self.store.forget_dmarc_seen_through(day).await?;
        Ok(queued)
    }

    /// One policy domain's report; `false` when no address may have it.
    async fn send_dmarc_report(
        &self,
        day: i64,
        from_domain: &str,
        domain: &str,
        rows: &[DmarcSeen],
    ) -> Result<bool, StoreError> {
        // The policy most of the day's mail met (rows come most counted first).
        let policy = rows.first().map_or("", |r| r.policy.as_str());
        let mut rua: Vec<(String, usize)> = Vec::new();
        for r in rows {
            for uri in r.rua.split_whitespace() {
                let (address, size) = match uri.split_once('!') {
                    Some((a, n)) => (a, n.parse().unwrap_or(0)),
                    None => (uri, 0),
                };
                if rua.len() < observe::MAX_RUA && !rua.iter().any(|(a, _)| a == address) {
                    rua.push((address.to_string(), size));
                }
            }
        }
        let from = format!("noreply-dmarc@{from_domain}");
        let report_id = format!("{day}.{domain}@{}", self.hostname);
        let meta = dmarc_xml::Meta {
            org_name: &self.hostname,
            email: &from,
            report_id: &report_id,
            begin: day,
            end: day + DAY - 1,
            domain,
            policy,
        };
        let xml = dmarc_xml::aggregate(&meta, rows);
        let gz = gzip(xml.as_bytes()).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut recipients = Vec::new();
        let mut notes = Vec::new();
        for (address, max_size) in rua {
            match self.may_receive(domain, &address).await {
                Ok(()) if max_size != 0 && gz.len() > max_size => {
                    notes.push(format!("{address}: the report is larger than its !size"))
                }
                Ok(()) => recipients.push(address),
                Err(why) => notes.push(format!("{address}: {why}")),
            }
        }
        let rows_n = i64::try_from(rows.len()).unwrap_or(i64::MAX);
        let mut sent = ReportSent {
            kind: "dmarc".into(),
            domain: domain.to_string(),
            recipients: recipients.join(" "),
            rows: rows_n,
            day,
            sent: crate::store::now(),
            note: notes.join("; "),
        };
        if recipients.is_empty() {
            self.store.record_report_sent(&sent).await?;
            return Ok(false);
        }
        let submitter = self.hostname.as_str();
        let subject =
            format!("Report Domain: {domain} Submitter: {submitter} Report-ID: <{report_id}>");
        let filename = format!("{submitter}!{domain}!{}!{}.xml.gz", day, day + DAY - 1);
        let raw = MessageBuilder::new()
            .from(("DMARC reports", from.as_str()))
            .to(recipients.iter().map(String::as_str).collect::<Vec<_>>())
            .subject(subject)
            .message_id(format!("{}@{submitter}", crate::mime::unique_id()))
            .header("Auto-Submitted", Raw::new("auto-generated"))
            .text_body(format!(
                "DMARC aggregate report from {submitter}\r\n\r\nReport Domain: {domain}\r\n\
                 Submitter: {submitter}\r\nReport-ID: {report_id}\r\n"
            ))
            .attachment("application/gzip", filename, gz)
            .write_to_vec()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.queue(from_domain, &recipients, &raw).await?;
        sent.sent = crate::store::now();
        self.store.record_report_sent(&sent).await?;
        self.store.count_event("reports_sent");
        Ok(true)
    }

    async fn send_tls(&self, day: i64) -> Result<usize, StoreError> {
        let rows = self.store.tls_results_of_day(day).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let Some(from_domain) = self.sender_domain().await? else {
            return Ok(0);
        };
        let mut by_domain: BTreeMap<String, Vec<&crate::store::TlsResultRow>> = BTreeMap::new();
        for row in &rows {
            by_domain
                .entry(row.policy_domain.to_ascii_lowercase())
                .or_default()
                .push(row);
        }
        let mut queued = 0;
        for (domain, rows) in by_domain {
            match self
                .send_tls_report(day, &from_domain, &domain, &rows)
                .await
            {
                Ok(true) => queued += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!("cannot send the TLS report to {domain}: {e}"),
            }
        }
        self.store.forget_tls_results_before(day + DAY).await?;
        Ok(queued)
    }

    /// One policy domain's TLS report, when it publishes a TLS-RPT record with a `mailto:`
    /// address; `false` otherwise (an `https:`-only record is recorded as not sent).
    async fn send_tls_report(
        &self,
        day: i64,
        from_domain: &str,
        domain: &str,
        rows: &[&crate::store::TlsResultRow],
    ) -> Result<bool, StoreError> {
        let records = self
            .dns
            .txt(&format!("_smtp._tls.{domain}"))
            .await
            .unwrap_or_default();
        let Some(wanted) = tlsrpt::wanted(&records) else {
            // The domain asks for no reports.
            return Ok(false);
        };
        let rows_n = i64::try_from(rows.len()).unwrap_or(i64::MAX);
        let mut sent = ReportSent {
            kind: "tls".into(),
            domain: domain.to_string(),
            recipients: wanted.mailto.join(" "),
            rows: rows_n,
            day,
            sent: crate::store::now(),
            note: match wanted.https {
                true => "https: report URIs are not used (mail only)".into(),
                false => String::new(),
            },
        };
        if wanted.mailto.is_empty() {
            self.store.record_report_sent(&sent).await?;
            return Ok(false);
        }
        let from = format!("noreply-tlsrpt@{from_domain}");
        let report = tlsrpt::report(&self.hostname, &from, domain, day, rows);
        let mut raw = Vec::new();
        report
            .write_rfc5322(
                domain,
                &self.hostname,
                from.as_str(),
                wanted.mailto.iter().map(String::as_str),
                &mut raw,
            )
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.queue(from_domain, &wanted.mailto, &raw).await?;
        sent.sent = crate::store::now();
        self.store.record_report_sent(&sent).await?;
        self.store.count_event("reports_sent");
        Ok(true)
    }

    /// DKIM-signs `raw` as `from_domain` and queues it from the null sender.
    async fn queue(&self, from_domain: &str, to: &[String], raw: &[u8]) -> Result<(), StoreError> {
        let signed = self
            .signer
            .sign_as(from_domain, raw)
            .await
            .map_err(|e| StoreError::Invalid(format!("cannot sign the report: {e}")))?;
        self.store.queue_add("", to, &signed).await?;
        Ok(())
    }

    /// RFC 7489 §7.1: a report address outside the policy domain must be authorised by a
    /// `<policy domain>._report._dmarc.<its domain>` TXT record starting `v=DMARC1`, or any
    /// domain could have reports about it sent to a third party.
    async fn may_receive(&self, policy_domain: &str, address: &str) -> Result<(), String> {
        let Ok(parsed) = crate::address::Address::parse(address) else {
            return Err("not an address".into());
        };
        let rua_domain = parsed.domain.to_ascii_lowercase();
        let policy_domain = policy_domain.to_ascii_lowercase();
        let related = rua_domain == policy_domain
            || rua_domain.ends_with(&format!(".{policy_domain}"))
            || policy_domain.ends_with(&format!(".{rua_domain}"));
        if related {
            return Ok(());
        }
        let name = format!("{policy_domain}._report._dmarc.{rua_domain}");
        match self.dns.txt(&name).await {
            Ok(records)
                if records.iter().any(|r| {
                    r.trim_start()
                        .get(..8)
                        .is_some_and(|v| v.eq_ignore_ascii_case("v=DMARC1"))
                }) =>
            {
                Ok(())
            }
            Ok(_) => Err(format!("not authorised by {name} (RFC 7489 7.1)")),
            Err(e) => Err(format!("not authorised: {name}: {e}")),
        }
    }
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data)?;
    e.finish()
}
