//! Reports received at postmaster@ one of our domains (the `rua` address `domain dns` prints):
//! a DMARC aggregate report (RFC 7489 §7.2: XML, gzip or zip, attached or as the body) or a TLS
//! report (RFC 8460 §5.3: `multipart/report; report-type=tlsrpt`, JSON, gzip). Parsed on the
//! blocking pool with every size bounded (`unpack`), stored per domain the report is about, and
//! then not delivered as mail. Anything that looks like a report but does not parse is counted
//! (`reports_malformed`) and delivered as plain mail, as before.

use mail_auth::report::Report;
use mail_auth::report::tlsrpt::{PolicyType, TlsReport};
use mail_parser::{MessageParser, MimeHeaders, PartType};

use super::unpack::{self, MAX_UNPACKED};
use crate::store::reports::{MAX_ROWS, bounded};
use crate::store::{DmarcReport, DmarcRow, Store, TlsPolicy};

/// Parts of a message looked at for a report, at most.
const MAX_PARTS: usize = 16;

/// What became of a message to the report address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intake {
    /// Not a report (a person writing to postmaster): deliver it.
    NotAReport,
    /// A report about none of our domains: deliver it as mail.
    NotOurs,
    /// Stored (or stored before: the same organisation and report id).
    Stored,
    /// It looked like a report and did not parse: counted, delivered as mail.
    Malformed(String),
    /// It parsed but could not be stored now: deliver it as mail (nothing is lost).
    Unstored(String),
}

/// Whether every recipient of the transaction is a report address: `postmaster@` one of our
/// domains (RCPT accepted it, so the domain is ours) or the bare `postmaster`.
pub fn for_reports(rcpts: &[String]) -> bool {
    !rcpts.is_empty()
        && rcpts.iter().all(|r| {
            let local = r.rsplit_once('@').map_or(r.as_str(), |(local, _)| local);
            local.eq_ignore_ascii_case("postmaster")
        })
}

/// What a message holds, parsed.
#[derive(Debug)]
pub enum Parsed {
    NotAReport,
    Dmarc(Box<Report>),
    Tls(Box<TlsReport>),
    Malformed(String),
}

/// Parses `raw` (pure and CPU-bound: call it on the blocking pool).
pub fn parse(raw: &[u8]) -> Parsed {
    let Some(message) = MessageParser::new().parse(raw) else {
        return Parsed::NotAReport;
    };
    let tlsrpt = message.parts.first().is_some_and(|root| {
        root.content_type().is_some_and(|ct| {
            ct.ctype().eq_ignore_ascii_case("multipart")
                && ct
                    .subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("report"))
                && ct
                    .attribute("report-type")
                    .is_some_and(|t| t.eq_ignore_ascii_case("tlsrpt"))
        })
    });
    let mut problem: Option<String> = None;
    // One budget for the whole message, not per part: 16 small bombs would otherwise cost
    // 16 times the bound in CPU.
    let mut left = MAX_UNPACKED;
    for part in message.parts.iter().take(MAX_PARTS) {
        let (ctype, subtype) = part
            .content_type()
            .map_or((String::new(), String::new()), |ct| {
                (
                    ct.ctype().to_ascii_lowercase(),
                    ct.subtype().unwrap_or_default().to_ascii_lowercase(),
                )
            });
        let name = part
            .attachment_name()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let body: &[u8] = match &part.body {
            PartType::Text(text) => text.as_bytes(),
            PartType::Binary(b) | PartType::InlineBinary(b) => b,
            _ => continue,
        };
        if tlsrpt {
            let packed = match (ctype.as_str(), subtype.as_str()) {
                ("application", "tlsrpt+gzip") => true,
                ("application", "tlsrpt+json") => false,
                _ => continue,
            };
            let json = match packed {
                true => match unpack::gunzip(body, left) {
                    Ok(json) => json,
                    Err(e) => return Parsed::Malformed(format!("TLS report: {e}")),
                },
                false => body.to_vec(),
            };
            return match TlsReport::parse_json(&json) {
                Ok(report) => Parsed::Tls(Box::new(report)),
                Err(e) => Parsed::Malformed(format!("TLS report: {e:?}")),
            };
        }
        let xml = if subtype == "xml" || (name.ends_with(".xml") && !ctype.is_empty()) {
            Ok(body.to_vec())
        } else if subtype == "gzip" || subtype == "x-gzip" || name.ends_with(".gz") {
            unpack::gunzip(body, left)
        } else if subtype == "zip" || subtype == "x-zip-compressed" || name.ends_with(".zip") {
            unpack::unzip(body, left)
        } else {
            continue;
        };
        if let Ok(unpacked) = &xml {
            left = left.saturating_sub(unpacked.len());
        }
        match xml {
            Ok(xml) => match Report::parse_xml(&xml) {
                Ok(report) => return Parsed::Dmarc(Box::new(report)),
                Err(e) => problem = Some(format!("DMARC report: {}", bounded(&e))),
            },
            Err(e) => problem = Some(format!("DMARC report: {e}")),
        }
    }
    match problem {
        Some(why) => Parsed::Malformed(why),
        None => Parsed::NotAReport,
    }
}

/// Parses `raw` and stores the report it holds about our domains.
pub async fn intake(store: &Store, raw: &[u8]) -> Intake {
    // Anyone may send postmaster@ a report, and a parse takes up to `MAX_UNPACKED` of memory
    // and its CPU: one at a time, so a flood waits in SMTP (its own connections) instead of
    // filling the blocking pool's threads with 20 MiB each.
    static ONE_AT_A_TIME: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
    let _turn = ONE_AT_A_TIME.acquire().await;
    let owned = raw.to_vec();
    let parsed = match tokio::task::spawn_blocking(move || parse(&owned)).await {
        Ok(parsed) => parsed,
        Err(e) => Parsed::Malformed(format!("the parser stopped: {e}")),
    };
    let now = crate::store::now();
    let stored = match parsed {
        Parsed::NotAReport => return Intake::NotAReport,
        Parsed::Malformed(why) => {
            store.count_event("reports_malformed");
            tracing::info!("a report to postmaster did not parse: {why}");
            return Intake::Malformed(why);
        }
        Parsed::Dmarc(report) => {
            let domain = report.policy_published.domain.trim_end_matches('.');
            if !is_ours(store, domain).await {
                return Intake::NotOurs;
            }
            store.add_dmarc_report(&dmarc_record(&report), now).await
        }
        Parsed::Tls(report) => {
            let mut record = tls_record(&report);
            let mut ours = Vec::new();
            for p in record.policies.drain(..) {
                if is_ours(store, &p.domain).await {
                    ours.push(p);
                }
            }
            if ours.is_empty() {
                return Intake::NotOurs;
            }
            record.policies = ours;
            store.add_tls_report(&record, now).await
        }
    };
    match stored {
        Ok(_) => {
            store.count_event("reports_received");
            Intake::Stored
        }
        Err(e) => {
            tracing::warn!("cannot store a received report: {e}");
            Intake::Unstored(e.to_string())
        }
    }
}

/// Whether `domain` is one of ours, or a subdomain of one (a report about `sub.example.org`
/// under example.org's policy).
async fn is_ours(store: &Store, domain: &str) -> bool {
    let mut name = domain.trim_end_matches('.').to_ascii_lowercase();
    for _ in 0..8 {
        if name.is_empty() {
            return false;
        }
        if matches!(store.is_local_domain(&name).await, Ok(true)) {
            return true;
        }
        match name.split_once('.') {
            Some((_, parent)) if parent.contains('.') => name = parent.to_string(),
            _ => return false,
        }
    }
    false
}

fn seconds(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// The store's record of a parsed DMARC report (at most [`MAX_ROWS`] rows).
pub fn dmarc_record(r: &Report) -> DmarcReport {
    let m = &r.report_metadata;
    let p = &r.policy_published;
    let mut policy = format!("p={} sp={}", p.p, p.sp);
    if p.adkim != mail_auth::report::Alignment::Unspecified {
        policy.push_str(&format!(" adkim={}", p.adkim));
    }
    if p.aspf != mail_auth::report::Alignment::Unspecified {
        policy.push_str(&format!(" aspf={}", p.aspf));
    }
    let rows = r
        .record
        .iter()
        .take(MAX_ROWS)
        .map(|rec| {
            let pe = &rec.row.policy_evaluated;
            let words = |list: Vec<String>| bounded(&list.join(" "));
            DmarcRow {
                source_ip: rec
                    .row
                    .source_ip
                    .map(|ip| ip.to_string())
                    .unwrap_or_default(),
                count: i64::from(rec.row.count),
                disposition: pe.disposition.to_string(),
                dkim: pe.dkim.to_string(),
                spf: pe.spf.to_string(),
                header_from: bounded(&rec.identifiers.header_from),
                envelope_from: bounded(&rec.identifiers.envelope_from),
                dkim_auth: words(
                    rec.auth_results
                        .dkim
                        .iter()
                        .take(8)
                        .map(|d| format!("{}={}", d.domain, d.result))
                        .collect(),
                ),
                spf_auth: words(
                    rec.auth_results
                        .spf
                        .iter()
                        .take(8)
                        .map(|s| format!("{}={}", s.domain, s.result))
                        .collect(),
                ),
            }
        })
        .collect();
    DmarcReport {
        id: 0,
        domain: p.domain.trim_end_matches('.').to_ascii_lowercase(),
        org: bounded(&m.org_name),
        report_id: bounded(&m.report_id),
        email: bounded(&m.email),
        begin: seconds(m.date_range.begin),
        end: seconds(m.date_range.end),
        policy,
        received: 0,
        rows_total: i64::try_from(r.record.len()).unwrap_or(i64::MAX),
        rows,
    }
}

/// The name RFC 8460 §4.3 gives a result type, as serde writes it.
fn result_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value)
        .unwrap_or_default()
        .trim_matches('"')
        .to_string()
}

/// The store's record of a parsed TLS report.
pub fn tls_record(r: &TlsReport) -> crate::store::TlsReport {
    let policies = r
        .policies
        .iter()
        .take(MAX_ROWS)
        .map(|p| TlsPolicy {
            domain: p
                .policy
                .policy_domain
                .trim_end_matches('.')
                .to_ascii_lowercase(),
            policy_type: match p.policy.policy_type {
                PolicyType::Sts => "sts".into(),
                PolicyType::Tlsa => "tlsa".into(),
                PolicyType::NoPolicyFound => "no-policy-found".into(),
                PolicyType::Other => "other".into(),
            },
            mx_hosts: bounded(&p.policy.mx_host.join(" ")),
            successes: i64::from(p.summary.total_success),
            failures: i64::from(p.summary.total_failure),
            details: p
                .failure_details
                .iter()
                .take(100)
                .map(|d| {
                    (
                        result_name(&d.result_type),
                        i64::from(d.failed_session_count),
                        d.receiving_ip.map(|ip| ip.to_string()).unwrap_or_default(),
                    )
                })
                .collect(),
        })
        .collect();
    crate::store::TlsReport {
        id: 0,
        org: bounded(r.organization_name.as_deref().unwrap_or("")),
        report_id: bounded(&r.report_id),
        contact: bounded(r.contact_info.as_deref().unwrap_or("")),
        begin: r.date_range.start_datetime.to_timestamp(),
        end: r.date_range.end_datetime.to_timestamp(),
        received: 0,
        policies,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const XML: &str = "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>big.test</org_name>\
<email>r@big.test</email><report_id>42</report_id><date_range><begin>1000</begin><end>2000</end>\
</date_range></report_metadata><policy_published><domain>example.org</domain><p>none</p>\
<sp>none</sp><pct>100</pct></policy_published><record><row><source_ip>192.0.2.7</source_ip>\
<count>3</count><policy_evaluated><disposition>none</disposition><dkim>fail</dkim><spf>pass</spf>\
</policy_evaluated></row><identifiers><header_from>example.org</header_from></identifiers>\
<auth_results><spf><domain>example.org</domain><result>pass</result></spf></auth_results>\
</record></feedback>";

    fn with_attachment(ctype: &str, name: &str, data: &[u8]) -> Vec<u8> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(data);
        format!(
            "From: r@big.test\r\nTo: postmaster@example.org\r\nSubject: Report\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nreport\r\n\
--b\r\nContent-Type: {ctype}\r\nContent-Disposition: attachment; filename={name}\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b--\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn a_gzipped_report_parses() {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(XML.as_bytes()).unwrap();
        let m = with_attachment("application/gzip", "r.xml.gz", &e.finish().unwrap());
        let Parsed::Dmarc(r) = parse(&m) else {
            panic!("not parsed");
        };
        let rec = dmarc_record(&r);
        assert_eq!(rec.domain, "example.org");
        assert_eq!(rec.org, "big.test");
        assert_eq!(rec.rows[0].count, 3);
        assert_eq!(rec.rows[0].dkim, "fail");
    }

    #[test]
    fn a_gzip_bomb_is_malformed_not_a_crash() {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&vec![b' '; MAX_UNPACKED + 10]).unwrap();
        let m = with_attachment("application/gzip", "r.xml.gz", &e.finish().unwrap());
        assert!(matches!(parse(&m), Parsed::Malformed(_)));
    }

    #[test]
    fn the_unpacking_bound_is_for_the_whole_message_not_each_part() {
        use base64::Engine;
        // Two parts of 12 MiB each (not XML): each under the bound, together over it.
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&vec![b' '; 12 << 20]).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(e.finish().unwrap());
        let part = format!(
            "--b\r\nContent-Type: application/gzip\r\nContent-Disposition: attachment; \
filename=r.xml.gz\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n"
        );
        let m = format!(
            "From: r@big.test\r\nTo: postmaster@example.org\r\nSubject: Report\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n{part}{part}--b--\r\n"
        );
        let Parsed::Malformed(why) = parse(m.as_bytes()) else {
            panic!("not refused");
        };
        assert!(why.contains("more than"), "{why}");
    }

    #[test]
    fn plain_mail_is_not_a_report() {
        let m = b"From: a@b.test\r\nSubject: hello postmaster\r\n\r\nHi!\r\n";
        assert!(matches!(parse(m), Parsed::NotAReport));
    }

    #[test]
    fn recipients_are_report_addresses_only_when_all_are_postmaster() {
        let r = |v: &[&str]| for_reports(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(r(&["postmaster@example.org"]));
        assert!(r(&["PostMaster@example.org", "postmaster"]));
        assert!(!r(&["postmaster@example.org", "bob@example.org"]));
        assert!(!r(&[]));
    }
}
