//! The DNS records a mail domain publishes so that mail reaches this server, is accepted
//! elsewhere as really from it, and clients configure themselves.
//!
//! [`domain_records`] returns them as data (the admin panel shows them as a table);
//! [`zone_file`] renders them as zone-file lines, the form `mailroom domain dns` prints and a
//! DNS provider's import accepts.
//!
//! Choices: SPF `v=spf1 mx -all` (only the MX host sends for the domain, which is this
//! server); DMARC `p=quarantine` with aggregate reports to postmaster@ (a safe start that still
//! protects the domain; `p=reject` is the owner's call once reports look clean); SRV records for
//! the implicit-TLS ports only (RFC 8314 prefers them to STARTTLS).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

// The record types live with the lookups (`dns` must not import this module); re-exported
// because a published record is described by its kind.
pub use crate::dns::RecordKind;
use crate::store::{DkimKeys, MtaStsMode, Result};

/// One record to publish. `name` is absolute (ends with a dot). `value` is the record data as
/// a provider's web form wants it: for TXT the text itself, unquoted and unsplit; for the
/// others the zone-file data (`10 mail.example.org.`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    pub name: String,
    pub kind: RecordKind,
    pub value: String,
}

impl DnsRecord {
    fn new(name: String, kind: RecordKind, value: String) -> DnsRecord {
        DnsRecord { name, kind, value }
    }
}

/// An absolute name: lower case, one trailing dot.
fn absolute(name: &str) -> String {
    format!(
        "{}.",
        name.trim().trim_end_matches('.').to_ascii_lowercase()
    )
}

/// The records for `domain` served by `hostname`, with the DKIM key records when `keys` is
/// given. Fails only when a stored key cannot be read.
pub fn domain_records(
    hostname: &str,
    domain: &str,
    keys: Option<&DkimKeys>,
) -> Result<Vec<DnsRecord>> {
    let host = absolute(hostname);
    let dom = absolute(domain);
    let bare = dom.trim_end_matches('.');
    let mut out = vec![
        DnsRecord::new(dom.clone(), RecordKind::Mx, format!("10 {host}")),
        DnsRecord::new(dom.clone(), RecordKind::Txt, "v=spf1 mx -all".into()),
    ];
    if let Some(keys) = keys {
        out.push(DnsRecord::new(
            format!("{}._domainkey.{dom}", keys.rsa_selector()),
            RecordKind::Txt,
            format!(
                "v=DKIM1; k=rsa; p={}",
                BASE64.encode(keys.rsa_public_key_der()?)
            ),
        ));
        out.push(DnsRecord::new(
            format!("{}._domainkey.{dom}", keys.ed25519_selector()),
            RecordKind::Txt,
            format!(
                "v=DKIM1; k=ed25519; p={}",
                BASE64.encode(keys.ed25519_public_key()?)
            ),
        ));
    }
    out.push(DnsRecord::new(
        format!("_dmarc.{dom}"),
        RecordKind::Txt,
        format!("v=DMARC1; p=quarantine; rua=mailto:postmaster@{bare}"),
    ));
    // TLS-RPT (RFC 8460): where senders report their TLS results to us; postmaster@ always
    // exists (the required addresses).
    out.push(DnsRecord::new(
        format!("_smtp._tls.{dom}"),
        RecordKind::Txt,
        format!("v=TLSRPTv1; rua=mailto:postmaster@{bare}"),
    ));
    out.push(DnsRecord::new(
        format!("autoconfig.{dom}"),
        RecordKind::Cname,
        host.clone(),
    ));
    for (service, port) in [("submissions", 465), ("imaps", 993), ("pop3s", 995)] {
        out.push(DnsRecord::new(
            format!("_{service}._tcp.{dom}"),
            RecordKind::Srv,
            format!("0 1 {port} {host}"),
        ));
    }
    Ok(out)
}

/// How long senders may cache our MTA-STS policy (RFC 8461 §3.2): a week once enforced, a day
/// while testing, so a mistake found in testing is forgotten quickly.
pub fn mta_sts_max_age(mode: MtaStsMode) -> u32 {
    match mode {
        MtaStsMode::Enforce => 604_800,
        MtaStsMode::Testing | MtaStsMode::Off => 86_400,
    }
}

/// The MTA-STS policy file of a domain served by `hostname` (RFC 8461 §3.2), the same for
/// every domain we serve: our hostname is the one MX. `None` when publishing is off.
pub fn mta_sts_policy(hostname: &str, mode: MtaStsMode) -> Option<String> {
    if mode == MtaStsMode::Off {
        return None;
    }
    let host = hostname.trim().trim_end_matches('.').to_ascii_lowercase();
    Some(format!(
        "version: STSv1\r\nmode: {}\r\nmx: {host}\r\nmax_age: {}\r\n",
        mode.as_str(),
        mta_sts_max_age(mode)
    ))
}

/// The policy's `id` (RFC 8461 §3.1: 1 to 32 letters and digits): a digest of the policy text,
/// so it changes exactly when the policy does (mode or hostname) and needs no storage.
pub fn mta_sts_id(policy: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(policy.as_bytes());
    digest.iter().take(10).map(|b| format!("{b:02x}")).collect()
}

/// The records MTA-STS publishing adds for `domain` (none when it is off): `mta-sts.<domain>`
/// as a CNAME to our hostname (its addresses are already published, and its certificate gets
/// the name in ACME mode), and the `_mta-sts` TXT record with the policy's id.
pub fn mta_sts_records(hostname: &str, domain: &str, mode: MtaStsMode) -> Vec<DnsRecord> {
    let Some(policy) = mta_sts_policy(hostname, mode) else {
        return Vec::new();
    };
    let dom = absolute(domain);
    vec![
        DnsRecord::new(
            format!("mta-sts.{dom}"),
            RecordKind::Cname,
            absolute(hostname),
        ),
        DnsRecord::new(
            format!("_mta-sts.{dom}"),
            RecordKind::Txt,
            format!("v=STSv1; id={}", mta_sts_id(&policy)),
        ),
    ]
}

/// Everything `domain` publishes as stored: [`domain_records`] with its DKIM keys, and the
/// MTA-STS records when publishing is on. The one list the CLI, the admin panel and the
/// self-check show.
pub async fn for_domain(
    store: &crate::store::Store,
    hostname: &str,
    domain: &str,
) -> Result<Vec<DnsRecord>> {
    let keys = store.dkim_keys(domain).await?;
    let mut out = domain_records(hostname, domain, keys.as_ref())?;
    out.extend(mta_sts_records(
        hostname,
        domain,
        store.mta_sts_mode(domain).await?,
    ));
    Ok(out)
}

/// TXT data as zone-file character-strings: quoted, `"` and `\` escaped, and cut into pieces
/// of at most 255 bytes (the limit of one character-string, RFC 1035 §3.3; a DKIM RSA key is
/// longer). Verifiers join the pieces without a separator (RFC 6376 §3.6.2.2).
pub fn txt_strings(text: &str) -> String {
    if text.is_empty() {
        return "\"\"".into();
    }
    text.as_bytes()
        .chunks(255)
        .map(|chunk| {
            let mut s = String::with_capacity(chunk.len() + 2);
            s.push('"');
            for &b in chunk {
                match b {
                    b'"' | b'\\' => {
                        s.push('\\');
                        s.push(char::from(b));
                    }
                    // Printable ASCII as is; anything else (not in our records) as \DDD.
                    0x20..=0x7e => s.push(char::from(b)),
                    _ => s.push_str(&format!("\\{b:03}")),
                }
            }
            s.push('"');
            s
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Zone-file lines, one per record, with a TTL of one hour.
pub fn zone_file(records: &[DnsRecord]) -> String {
    let width = records.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for r in records {
        let data = match r.kind {
            RecordKind::Txt => txt_strings(&r.value),
            _ => r.value.clone(),
        };
        out.push_str(&format!(
            "{:<width$} 3600 IN {:<5} {data}\n",
            r.name,
            r.kind.as_str()
        ));
    }
    out
}

/// What the DNS says about one record we ask the domain to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// There, as we would write it.
    Found,
    /// Nothing of its kind at the name.
    Missing,
    /// Something of its kind is there, but not this (what was found is given).
    Different(Vec<String>),
    /// The lookup failed (timeout, SERVFAIL); says nothing about the record.
    Unknown(String),
}

/// Looks `record` up and compares it with what is published. Names compare without case;
/// TXT records compare by content, whitespace aside. For a TXT record of a kind that allows only
/// one per name (SPF, DMARC), any record of that kind that differs counts as different; for MX
/// and SRV, the same target host counts as found whatever the preference or weight.
pub async fn check(dns: &crate::dns::Dns, record: &DnsRecord) -> Published {
    let found = match dns.records(&record.name, record.kind).await {
        Ok(found) => found,
        Err(e) => return Published::Unknown(e.to_string()),
    };
    compare(record, &found)
}

fn compare(record: &DnsRecord, found: &[String]) -> Published {
    let squash = |s: &str| s.split_whitespace().collect::<String>();
    let target = |s: &str| {
        s.split_whitespace()
            .last()
            .unwrap_or("")
            .trim_end_matches('.')
            .to_ascii_lowercase()
    };
    // The tag that says what a TXT record is: "v=spf1", "v=DMARC1", "v=DKIM1".
    let tag = record
        .value
        .split([' ', ';'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let is_txt = record.kind == RecordKind::Txt;
    let same = |f: &str| {
        if is_txt {
            squash(f) == squash(&record.value)
        } else {
            target(f) == target(&record.value)
        }
    };
    let related = |f: &str| !is_txt || f.to_ascii_lowercase().starts_with(&tag);
    if found.iter().any(|f| same(f)) {
        return Published::Found;
    }
    let others: Vec<String> = found.iter().filter(|f| related(f)).cloned().collect();
    if others.is_empty() {
        Published::Missing
    } else {
        Published::Different(others)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_without_keys() {
        let records = domain_records("Mail.Example.org", "example.org.", None).unwrap();
        let zone = zone_file(&records);
        // Columns are padded for reading; compare with single spaces.
        let lines: Vec<String> = zone
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(
            lines,
            [
                "example.org. 3600 IN MX 10 mail.example.org.",
                "example.org. 3600 IN TXT \"v=spf1 mx -all\"",
                "_dmarc.example.org. 3600 IN TXT \"v=DMARC1; p=quarantine; rua=mailto:postmaster@example.org\"",
                "_smtp._tls.example.org. 3600 IN TXT \"v=TLSRPTv1; rua=mailto:postmaster@example.org\"",
                "autoconfig.example.org. 3600 IN CNAME mail.example.org.",
                "_submissions._tcp.example.org. 3600 IN SRV 0 1 465 mail.example.org.",
                "_imaps._tcp.example.org. 3600 IN SRV 0 1 993 mail.example.org.",
                "_pop3s._tcp.example.org. 3600 IN SRV 0 1 995 mail.example.org.",
            ]
        );
        assert_eq!(records[0].kind, RecordKind::Mx);
        assert_eq!(records[1].value, "v=spf1 mx -all");
    }

    #[test]
    fn mta_sts_records_follow_the_mode() {
        assert!(mta_sts_records("mail.example.org", "example.org", MtaStsMode::Off).is_empty());
        let testing = mta_sts_records("Mail.Example.org.", "example.org", MtaStsMode::Testing);
        let enforce = mta_sts_records("mail.example.org", "example.org", MtaStsMode::Enforce);
        assert_eq!(testing[0].name, "mta-sts.example.org.");
        assert_eq!(testing[0].kind, RecordKind::Cname);
        assert_eq!(testing[0].value, "mail.example.org.");
        assert_eq!(testing[1].name, "_mta-sts.example.org.");
        assert!(testing[1].value.starts_with("v=STSv1; id="));
        assert_ne!(
            testing[1].value, enforce[1].value,
            "the id changes with the policy"
        );
        let id = testing[1].value.trim_start_matches("v=STSv1; id=");
        assert!(id.len() <= 32 && id.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(
            mta_sts_policy("mail.example.org", MtaStsMode::Enforce).unwrap(),
            "version: STSv1\r\nmode: enforce\r\nmx: mail.example.org\r\nmax_age: 604800\r\n"
        );
    }

    #[test]
    fn long_txt_is_split_at_255_bytes_and_escaped() {
        let text = "a".repeat(300);
        assert_eq!(
            txt_strings(&text),
            format!("\"{}\" \"{}\"", "a".repeat(255), "a".repeat(45))
        );
        assert_eq!(
            txt_strings(&"b".repeat(255)),
            format!("\"{}\"", "b".repeat(255))
        );
        assert_eq!(txt_strings(r#"say "hi" \o/"#), r#""say \"hi\" \\o/""#);
        assert_eq!(txt_strings(""), "\"\"");
    }
}

#[cfg(test)]
mod compare_tests {
    use super::*;

    fn rec(kind: RecordKind, value: &str) -> DnsRecord {
        DnsRecord::new("example.org.".into(), kind, value.into())
    }

    #[test]
    fn txt_records_compare_by_content_and_kind() {
        let spf = rec(RecordKind::Txt, "v=spf1 mx -all");
        assert_eq!(compare(&spf, &["v=spf1  mx -all".into()]), Published::Found);
        assert_eq!(
            compare(&spf, &["google-site-verification=x".into()]),
            Published::Missing
        );
        assert_eq!(
            compare(&spf, &["v=spf1 a ~all".into(), "other".into()]),
            Published::Different(vec!["v=spf1 a ~all".into()])
        );
        assert_eq!(compare(&spf, &[]), Published::Missing);
    }

    #[test]
    fn host_records_compare_by_target() {
        let mx = rec(RecordKind::Mx, "10 mail.example.org.");
        assert_eq!(
            compare(&mx, &["20 MAIL.example.org.".into()]),
            Published::Found
        );
        assert_eq!(
            compare(&mx, &["10 mx.elsewhere.net.".into()]),
            Published::Different(vec!["10 mx.elsewhere.net.".into()])
        );
        let srv = rec(RecordKind::Srv, "0 1 993 mail.example.org.");
        assert_eq!(
            compare(&srv, &["5 0 993 mail.example.org.".into()]),
            Published::Found
        );
    }
}
