//! The TLS reports we send (RFC 8460 §4): a day of our outbound TLS results
//! (`Store::tls_results_of_day`, counted by the queue) as one JSON report per policy domain
//! that publishes `_smtp._tls.<domain>` TXT `v=TLSRPTv1; rua=mailto:…`. The report is built
//! and framed by mail-auth (`TlsReport::write_rfc5322`: gzip, `application/tlsrpt+gzip` in a
//! `multipart/report; report-type=tlsrpt` with `TLS-Report-Domain` and
//! `TLS-Report-Submitter`). `https:` report URIs are not used: only mail is sent, and the
//! report page says so.

use std::collections::BTreeMap;

use mail_auth::report::tlsrpt::{
    DateRange, FailureDetails, Policy, PolicyDetails, PolicyType, ResultType, Summary, TlsReport,
};

use crate::store::{TlsPolicyType, TlsResultRow};

/// Failure details per policy in one report, at most.
const MAX_DETAILS: usize = 1_000;
/// Policies per report, at most.
const MAX_POLICIES: usize = 100;

/// What a domain's TLS-RPT record asks for: its `mailto:` addresses, and whether it also
/// named `https:` URIs (which we do not post to).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    pub mailto: Vec<String>,
    pub https: bool,
}

/// The report addresses of `_smtp._tls.<domain>`'s TXT records (RFC 8460 §3): the first
/// record that starts `v=TLSRPTv1`, its `rua=` URIs split on commas.
pub fn wanted(records: &[String]) -> Option<Wanted> {
    let record = records.iter().find(|r| {
        r.trim_start()
            .get(..10)
            .is_some_and(|v| v.eq_ignore_ascii_case("v=TLSRPTv1"))
    })?;
    let mut out = Wanted::default();
    for field in record.split(';') {
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        if !key.trim().eq_ignore_ascii_case("rua") {
            continue;
        }
        for uri in value.split(',').map(str::trim) {
            match uri.get(..7) {
                Some(scheme) if scheme.eq_ignore_ascii_case("mailto:") => {
                    let address = uri.get(7..).unwrap_or_default();
                    let address = address.split('?').next().unwrap_or_default();
                    if crate::address::Address::parse(address).is_ok()
                        && out.mailto.len() < super::observe::MAX_RUA
                    {
                        out.mailto.push(address.to_string());
                    }
                }
                _ if uri.to_ascii_lowercase().starts_with("https:") => out.https = true,
                _ => {}
            }
        }
    }
    Some(out)
}

fn result_type(name: &str) -> ResultType {
    serde_json::from_value(serde_json::Value::String(name.to_string())).unwrap_or(ResultType::Other)
}

/// The report about `domain` from its rows of the day starting at `day`.
pub fn report(
    hostname: &str,
    contact: &str,
    domain: &str,
    day: i64,
    rows: &[&TlsResultRow],
) -> TlsReport {
    // One policy object per (type, policy strings); its MX hosts and counts summed.
    let mut policies: BTreeMap<(&'static str, Vec<String>), Policy> = BTreeMap::new();
    for row in rows {
        let key = (row.policy_type.as_str(), row.policy_strings.clone());
        if !policies.contains_key(&key) && policies.len() >= MAX_POLICIES {
            continue;
        }
        let policy = policies.entry(key).or_insert_with(|| Policy {
            policy: PolicyDetails {
                policy_type: match row.policy_type {
                    TlsPolicyType::Sts => PolicyType::Sts,
                    TlsPolicyType::Tlsa => PolicyType::Tlsa,
                    TlsPolicyType::NoPolicyFound => PolicyType::NoPolicyFound,
                },
                policy_string: row.policy_strings.clone(),
                policy_domain: domain.to_string(),
                mx_host: Vec::new(),
            },
            summary: Summary {
                total_success: 0,
                total_failure: 0,
            },
            failure_details: Vec::new(),
        });
        if !policy.policy.mx_host.contains(&row.mx_host) {
            policy.policy.mx_host.push(row.mx_host.clone());
        }
        let n = u32::try_from(row.count.max(0)).unwrap_or(u32::MAX);
        match &row.result_type {
            None => policy.summary.total_success = policy.summary.total_success.saturating_add(n),
            Some(kind) => {
                policy.summary.total_failure = policy.summary.total_failure.saturating_add(n);
                if policy.failure_details.len() < MAX_DETAILS {
                    policy.failure_details.push(FailureDetails {
                        result_type: result_type(kind),
                        receiving_mx_hostname: Some(row.mx_host.clone()),
                        receiving_ip: row.receiving_ip.as_deref().and_then(|ip| ip.parse().ok()),
                        failed_session_count: n,
                        additional_information: row.detail.clone(),
                        ..FailureDetails::default()
                    });
                }
            }
        }
    }
    TlsReport {
        organization_name: Some(hostname.to_string()),
        date_range: DateRange::from_timestamps(day, day + 86_399),
        contact_info: Some(contact.to_string()),
        report_id: format!("{day}.{domain}@{hostname}"),
        policies: policies.into_values().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_gives_mailto_addresses_and_notes_https() {
        let w = wanted(&[
            "v=spf1 -all".into(),
            "v=TLSRPTv1; rua=mailto:tls@remote.test,https://reports.remote.test/tls".into(),
        ])
        .unwrap();
        assert_eq!(w.mailto, vec!["tls@remote.test".to_string()]);
        assert!(w.https);
        assert_eq!(wanted(&["v=DMARC1; p=none".into()]), None);
    }

    #[test]
    fn rows_become_policies_with_summaries() {
        let row = |result: Option<&str>, count| TlsResultRow {
            policy_domain: "remote.test".into(),
            policy_type: TlsPolicyType::Sts,
            policy_strings: vec!["version: STSv1".into(), "mode: enforce".into()],
            mx_host: "mx.remote.test".into(),
            receiving_ip: Some("192.0.2.9".into()),
            result_type: result.map(str::to_string),
            detail: None,
            count,
        };
        let rows = [row(None, 7), row(Some("certificate-expired"), 2)];
        let refs: Vec<&TlsResultRow> = rows.iter().collect();
        let r = report(
            "mx.example.org",
            "noreply-tlsrpt@example.org",
            "remote.test",
            0,
            &refs,
        );
        assert_eq!(r.policies.len(), 1);
        assert_eq!(r.policies[0].summary.total_success, 7);
        assert_eq!(r.policies[0].summary.total_failure, 2);
        assert_eq!(
            r.policies[0].failure_details[0].result_type,
            ResultType::CertificateExpired
        );
        let json = r.to_json();
        assert!(json.contains("\"certificate-expired\""), "{json}");
    }
}
