//! The aggregate report's XML, written to the schema of RFC 7489 Appendix C (committed as
//! `tests/dmarc/rua.xsd`; the integration test validates with `xmllint --schema`). Written
//! here rather than by mail-auth 0.13's `Report::to_xml`, which writes the DMARCbis format
//! (RFC 9990: a namespace, `testing` and `np` instead of `pct`, no `version`) that RFC 7489's
//! schema refuses.

use std::fmt::Write;
use std::net::IpAddr;

use crate::store::DmarcSeen;

/// The report's metadata.
#[derive(Debug, Clone)]
pub struct Meta<'a> {
    /// Who reports: our host name.
    pub org_name: &'a str,
    /// Where questions about the report go.
    pub email: &'a str,
    pub report_id: &'a str,
    pub begin: i64,
    pub end: i64,
    /// The policy domain.
    pub domain: &'a str,
    /// `p=… sp=… adkim=… aspf=… pct=… fo=…` (`observe::Observation::policy`).
    pub policy: &'a str,
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A tag of the policy string, when it is one of the words the schema allows.
fn tag<'a>(policy: &'a str, name: &str, allowed: &[&'a str]) -> Option<&'a str> {
    policy
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .and_then(|v| allowed.iter().find(|a| **a == v).copied())
}

/// `source_ip` in the form the schema's `IPAddress` pattern takes: IPv4 dotted, IPv6 as eight
/// groups (the pattern has no `::`).
fn schema_ip(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => v6
            .segments()
            .iter()
            .map(|s| format!("{s:x}"))
            .collect::<Vec<_>>()
            .join(":"),
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => "0.0.0.0".into(),
    }
}

const DISPOSITIONS: &[&str] = &["none", "quarantine", "reject"];
const ALIGNMENTS: &[&str] = &["r", "s"];
const DKIM_RESULTS: &[&str] = &[
    "none",
    "pass",
    "fail",
    "policy",
    "neutral",
    "temperror",
    "permerror",
];
const SPF_RESULTS: &[&str] = &[
    "none",
    "neutral",
    "pass",
    "fail",
    "softfail",
    "temperror",
    "permerror",
];

/// The report about `meta.domain` with `rows` (all of that domain).
pub fn aggregate(meta: &Meta<'_>, rows: &[DmarcSeen]) -> String {
    let mut x = String::with_capacity(512 + rows.len() * 600);
    let p = tag(meta.policy, "p", DISPOSITIONS).unwrap_or("none");
    let sp = tag(meta.policy, "sp", DISPOSITIONS).unwrap_or(p);
    let pct: u8 = meta
        .policy
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("pct="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let fo = meta
        .policy
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("fo="))
        .unwrap_or("0");
    let _ = writeln!(x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let _ = writeln!(x, "<feedback>");
    let _ = writeln!(x, "  <version>1.0</version>");
    let _ = writeln!(x, "  <report_metadata>");
    let _ = writeln!(x, "    <org_name>{}</org_name>", escape(meta.org_name));
    let _ = writeln!(x, "    <email>{}</email>", escape(meta.email));
    let _ = writeln!(x, "    <report_id>{}</report_id>", escape(meta.report_id));
    let _ = writeln!(
        x,
        "    <date_range>\n      <begin>{}</begin>\n      <end>{}</end>\n    </date_range>",
        meta.begin, meta.end
    );
    let _ = writeln!(x, "  </report_metadata>");
    let _ = writeln!(x, "  <policy_published>");
    let _ = writeln!(x, "    <domain>{}</domain>", escape(meta.domain));
    if let Some(a) = tag(meta.policy, "adkim", ALIGNMENTS) {
        let _ = writeln!(x, "    <adkim>{a}</adkim>");
    }
    if let Some(a) = tag(meta.policy, "aspf", ALIGNMENTS) {
        let _ = writeln!(x, "    <aspf>{a}</aspf>");
    }
    let _ = writeln!(x, "    <p>{p}</p>\n    <sp>{sp}</sp>\n    <pct>{pct}</pct>");
    let _ = writeln!(x, "    <fo>{}</fo>", escape(fo));
    let _ = writeln!(x, "  </policy_published>");
    for r in rows {
        let disposition = DISPOSITIONS
            .iter()
            .find(|d| **d == r.disposition)
            .unwrap_or(&"none");
        let aligned = |v: &str| if v == "pass" { "pass" } else { "fail" };
        let _ = writeln!(x, "  <record>\n    <row>");
        let _ = writeln!(
            x,
            "      <source_ip>{}</source_ip>",
            schema_ip(&r.source_ip)
        );
        let _ = writeln!(x, "      <count>{}</count>", r.count);
        let _ = writeln!(x, "      <policy_evaluated>");
        let _ = writeln!(x, "        <disposition>{disposition}</disposition>");
        let _ = writeln!(x, "        <dkim>{}</dkim>", aligned(&r.dkim));
        let _ = writeln!(x, "        <spf>{}</spf>", aligned(&r.spf));
        if !r.reason.is_empty() {
            let _ = writeln!(
                x,
                "        <reason>\n          <type>{}</type>\n        </reason>",
                escape(&r.reason)
            );
        }
        let _ = writeln!(x, "      </policy_evaluated>\n    </row>");
        let _ = writeln!(x, "    <identifiers>");
        let _ = writeln!(
            x,
            "      <envelope_from>{}</envelope_from>",
            escape(&r.envelope_from)
        );
        let _ = writeln!(
            x,
            "      <header_from>{}</header_from>",
            escape(&r.header_from)
        );
        let _ = writeln!(x, "    </identifiers>\n    <auth_results>");
        let mut spf_written = false;
        // DKIM results first, then SPF: the schema's AuthResultType is a sequence.
        for kind in ["dkim", "spf"] {
            for line in r.auth.lines() {
                let f: Vec<&str> = line.split(' ').collect();
                match (kind, f.as_slice()) {
                    ("dkim", ["dkim", domain, selector, result]) => {
                        let result = DKIM_RESULTS
                            .iter()
                            .find(|v| *v == result)
                            .unwrap_or(&"none");
                        let _ = writeln!(
                            x,
                            "      <dkim>\n        <domain>{}</domain>\n        <selector>{}</selector>\n        <result>{result}</result>\n      </dkim>",
                            escape(domain),
                            escape(selector)
                        );
                    }
                    ("spf", ["spf", domain, scope, result]) => {
                        let scope = if *scope == "helo" { "helo" } else { "mfrom" };
                        let result = SPF_RESULTS.iter().find(|v| *v == result).unwrap_or(&"none");
                        let _ = writeln!(
                            x,
                            "      <spf>\n        <domain>{}</domain>\n        <scope>{scope}</scope>\n        <result>{result}</result>\n      </spf>",
                            escape(domain)
                        );
                        spf_written = true;
                    }
                    _ => {}
                }
            }
        }
        if !spf_written {
            // The schema wants at least one SPF result.
            let _ = writeln!(
                x,
                "      <spf>\n        <domain>{}</domain>\n        <scope>mfrom</scope>\n        <result>none</result>\n      </spf>",
                escape(&r.envelope_from)
            );
        }
        let _ = writeln!(x, "    </auth_results>\n  </record>");
    }
    let _ = writeln!(x, "</feedback>");
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_is_written_as_eight_groups() {
        assert_eq!(schema_ip("2001:db8::1"), "2001:db8:0:0:0:0:0:1");
        assert_eq!(schema_ip("192.0.2.1"), "192.0.2.1");
    }

    #[test]
    fn the_report_parses_back_with_mail_auth() {
        let meta = Meta {
            org_name: "mx.example.org",
            email: "noreply-dmarc@example.org",
            report_id: "r<1>",
            begin: 86_400,
            end: 172_799,
            domain: "sender.test",
            policy: "p=reject sp=quarantine adkim=s aspf=r pct=100 fo=1",
        };
        let row = DmarcSeen {
            source_ip: "192.0.2.1".into(),
            count: 4,
            disposition: "reject".into(),
            dkim: "fail".into(),
            spf: "pass".into(),
            header_from: "sender.test".into(),
            envelope_from: "sender.test".into(),
            auth: "dkim sender.test s1 fail\nspf sender.test mfrom pass\n".into(),
            ..DmarcSeen::default()
        };
        let xml = aggregate(&meta, &[row]);
        let parsed = mail_auth::report::Report::parse_xml(xml.as_bytes()).unwrap();
        assert_eq!(parsed.report_metadata.report_id, "r<1>");
        assert_eq!(parsed.record.len(), 1);
        assert_eq!(parsed.record[0].row.count, 4);
        assert_eq!(parsed.record[0].auth_results.dkim[0].selector, "s1");
    }
}
