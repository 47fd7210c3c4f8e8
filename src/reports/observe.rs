//! What the DMARC aggregate reports we send are made of (RFC 7489 §7.2): for each message
//! received on port 25 whose From domain publishes a DMARC record with `rua`, the policy
//! domain and its published policy, the report addresses, the client's address, the
//! disposition we applied, the aligned DKIM/SPF outcomes and the raw results with their
//! domains. Built where `smtp/verify.rs` has the checks' outputs; counted per UTC day and
//! distinct combination by the store (`Store::note_dmarc_seen`, bounded per day).

use std::net::IpAddr;

use mail_auth::dmarc::{Alignment, Policy, Report as Fo};
use mail_auth::{DkimOutput, DkimResult, DmarcOutput, DmarcResult, SpfOutput, SpfResult};

use crate::store::reports::bounded;
use crate::store::{DmarcSeen, Store};

/// DKIM signatures recorded per message at most.
const MAX_SIGNATURES: usize = 8;
/// Report addresses kept per policy domain: RFC 7489 §6.2 asks receivers to support two.
pub const MAX_RUA: usize = 2;

/// One message's DMARC facts, before the disposition is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub domain: String,
    /// `p=… sp=… adkim=… aspf=… pct=… fo=…`, as the report's `policy_published` writes it.
    pub policy: String,
    /// `address` or `address!bytes` per `mailto:` report URI.
    pub rua: Vec<String>,
    pub source_ip: IpAddr,
    pub dkim_aligned: bool,
    pub spf_aligned: bool,
    /// The policy that applies to this message (p, or sp for a subdomain).
    pub applied: &'static str,
    pub header_from: String,
    pub envelope_from: String,
    /// `dkim <domain> <selector> <result>` and `spf <domain> <scope> <result>` lines.
    pub auth: String,
}

fn policy_word(p: Policy) -> &'static str {
    match p {
        Policy::Quarantine => "quarantine",
        Policy::Reject => "reject",
        Policy::None | Policy::Unspecified => "none",
    }
}

fn alignment_word(a: Alignment) -> &'static str {
    match a {
        Alignment::Strict => "s",
        Alignment::Relaxed => "r",
    }
}

fn fo_word(fo: &Fo) -> &'static str {
    match fo {
        Fo::All => "0",
        Fo::Any => "1",
        Fo::Dkim => "d",
        Fo::Spf => "s",
        Fo::DkimSpf => "d:s",
    }
}

/// RFC 7489 Appendix C's `DKIMResultType`.
fn dkim_word(r: &DkimResult) -> &'static str {
    match r {
        DkimResult::Pass => "pass",
        DkimResult::Neutral(_) => "neutral",
        DkimResult::Fail(_) => "fail",
        DkimResult::PermError(_) => "permerror",
        DkimResult::TempError(_) => "temperror",
        DkimResult::None => "none",
    }
}

/// RFC 7489 Appendix C's `SPFResultType`.
fn spf_word(r: SpfResult) -> &'static str {
    match r {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

/// A word for the one-word fields of `auth` (domains and selectors never hold spaces; a
/// hostile one is cut at its first).
fn word(text: &str) -> String {
    let w: String = text
        .split_whitespace()
        .next()
        .unwrap_or("")
        .chars()
        .take(100)
        .collect();
    if w.is_empty() {
        "-".into()
    } else {
        w.to_ascii_lowercase()
    }
}

impl Observation {
    /// The facts of one message, when its From domain asks for aggregate reports; `None`
    /// otherwise. `mail_from_domain` is the envelope sender's domain (the HELO name for the
    /// null sender), `header_from` the From address.
    pub fn from_checks(
        ip: IpAddr,
        mail_from_domain: &str,
        null_sender: bool,
        header_from: &str,
        spf: &SpfOutput,
        dkim: &[DkimOutput<'_>],
        dmarc: &DmarcOutput,
    ) -> Option<Observation> {
        let record = dmarc.dmarc_record()?;
        let rua: Vec<String> = record
            .rua
            .iter()
            .filter(|u| u.uri().contains('@'))
            .take(MAX_RUA)
            .map(|u| match u.max_size() {
                0 => word(u.uri()),
                n => format!("{}!{n}", word(u.uri())),
            })
            .collect();
        if rua.is_empty() || dmarc.domain().is_empty() {
            return None;
        }
        let sp = match record.sp {
            Policy::Unspecified => record.p,
            sp => sp,
        };
        // pct is not kept by mail-auth 0.13 (DMARCbis dropped it): every message is subject to
        // the policy, which is what pct=100 says; a testing record (t=y) is reported as 0.
        let pct = if record.t { 0 } else { 100 };
        let policy = format!(
            "p={} sp={} adkim={} aspf={} pct={pct} fo={}",
            policy_word(record.p),
            policy_word(sp),
            alignment_word(record.adkim),
            alignment_word(record.aspf),
            fo_word(&record.fo),
        );
        let mut auth = String::new();
        for o in dkim.iter().take(MAX_SIGNATURES) {
            if let Some(s) = o.signature() {
                auth.push_str(&format!(
                    "dkim {} {} {}\n",
                    word(&s.d),
                    word(&s.s),
                    dkim_word(o.result())
                ));
            }
        }
        let scope = if null_sender { "helo" } else { "mfrom" };
        let spf_domain = match spf.domain() {
            "" => mail_from_domain,
            d => d,
        };
        auth.push_str(&format!(
            "spf {} {scope} {}\n",
            word(spf_domain),
            spf_word(spf.result())
        ));
        let header_domain = header_from
            .rsplit_once('@')
            .map_or(header_from, |(_, d)| d)
            .trim_end_matches('>');
        Some(Observation {
            domain: word(dmarc.domain()),
            policy,
            rua,
            source_ip: ip,
            dkim_aligned: dmarc.dkim_result() == &DmarcResult::Pass,
            spf_aligned: dmarc.spf_result() == &DmarcResult::Pass,
            applied: policy_word(dmarc.policy()),
            header_from: word(header_domain),
            envelope_from: word(mail_from_domain),
            auth,
        })
    }

    /// The row counted for this message; `refused`: we refused it for its DMARC failure.
    pub fn seen(&self, refused: bool, now: i64) -> DmarcSeen {
        let failed = !self.dkim_aligned && !self.spf_aligned;
        // Failing mail of a domain that asks for quarantine or reject that we kept anyway: the
        // report says it was our choice (RFC 7489 §7.2 PolicyOverrideType "local_policy").
        let reason = if failed && !refused && self.applied != "none" {
            "local_policy"
        } else {
            ""
        };
        let pass = |aligned: bool| if aligned { "pass" } else { "fail" };
        DmarcSeen {
            day: now - now.rem_euclid(86_400),
            domain: self.domain.clone(),
            policy: self.policy.clone(),
            rua: self.rua.join(" "),
            source_ip: canonical_ip(self.source_ip),
            disposition: if refused { "reject" } else { "none" }.into(),
            dkim: pass(self.dkim_aligned).into(),
            spf: pass(self.spf_aligned).into(),
            reason: reason.into(),
            header_from: bounded(&self.header_from),
            envelope_from: bounded(&self.envelope_from),
            auth: self.auth.clone(),
            count: 1,
        }
    }
}

/// An IPv4-mapped IPv6 address as IPv4 (what the client really is).
fn canonical_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// Messages waiting to be counted, at most: past it a count is dropped
/// (`reports_seen_dropped`), never the SMTP reply delayed.
const QUEUE: usize = 4096;

/// Counts messages for the DMARC reports off the SMTP reply's path: one bounded queue and one
/// task that writes the counts, so a flood of mail from domains that ask for reports costs a
/// queue slot per message, not a task each racing for the store's writer. Cheap to clone.
#[derive(Clone)]
pub struct Counter {
    queue: tokio::sync::mpsc::Sender<DmarcSeen>,
    store: Store,
}

impl Counter {
    /// Starts the writing task (it ends when every `Counter` is dropped).
    pub fn start(store: Store) -> Counter {
        let (queue, mut waiting) = tokio::sync::mpsc::channel::<DmarcSeen>(QUEUE);
        let writer = store.clone();
        tokio::spawn(async move {
            while let Some(seen) = waiting.recv().await {
                match writer.note_dmarc_seen(&seen).await {
                    Ok(true) => {}
                    Ok(false) => writer.count_event("reports_seen_dropped"),
                    Err(e) => tracing::warn!("cannot count a message for DMARC reports: {e}"),
                }
            }
        });
        Counter { queue, store }
    }

    /// Counts the message (a failure only loses a count).
    pub fn note(&self, observation: &Observation, refused: bool) {
        let seen = observation.seen(refused, crate::store::now());
        if self.queue.try_send(seen).is_err() {
            self.store.count_event("reports_seen_dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observation() -> Observation {
        Observation {
            domain: "sender.test".into(),
            policy: "p=reject sp=reject adkim=r aspf=r pct=100 fo=0".into(),
            rua: vec!["dmarc@sender.test".into()],
            source_ip: "::ffff:192.0.2.1".parse().unwrap(),
            dkim_aligned: false,
            spf_aligned: false,
            applied: "reject",
            header_from: "sender.test".into(),
            envelope_from: "sender.test".into(),
            auth: "spf sender.test mfrom fail\n".into(),
        }
    }

    #[test]
    fn a_kept_failure_of_a_reject_policy_is_local_policy() {
        let seen = observation().seen(false, 86_400 * 3 + 5);
        assert_eq!(seen.day, 86_400 * 3);
        assert_eq!(seen.disposition, "none");
        assert_eq!(seen.reason, "local_policy");
        assert_eq!(seen.source_ip, "192.0.2.1");
        let refused = observation().seen(true, 10);
        assert_eq!(refused.disposition, "reject");
        assert_eq!(refused.reason, "");
    }
}
