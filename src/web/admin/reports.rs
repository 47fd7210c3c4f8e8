//! The reports page (`/admin/reports`): DMARC aggregate reports received about our domains,
//! per domain and day, in plain words (who sent mail as the domain, from which addresses, how
//! many messages, passing or failing SPF, DKIM and DMARC); the TLS reports received beside
//! them; and the reports we sent. Paged: [`PER_PAGE`] DMARC reports a page, the newest
//! [`TLS_SHOWN`] TLS reports and [`SENT_SHOWN`] sent ones; at most [`LINES_PER_REPORT`] lines
//! of a report are shown (the store keeps up to `MAX_ROWS`).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};

use super::super::{WebError, WebState};
use super::{Admin, Chrome, ListQuery, timestamp};
use crate::store::{DmarcReport, ReportSent, TlsReport};

const PER_PAGE: i64 = 20;
const TLS_SHOWN: i64 = 20;
const SENT_SHOWN: i64 = 50;
const LINES_PER_REPORT: usize = 50;

/// `n` with thousands separators: 1,204.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

fn messages(n: i64) -> String {
    match n {
        1 => "1 message".into(),
        n => format!("{} messages", thousands(n)),
    }
}

/// One line of a DMARC report, in words.
pub(super) struct Line {
    pub text: String,
    /// Failed DMARC (neither aligned SPF nor aligned DKIM passed).
    pub failed: bool,
}

/// The reports about one domain for one day.
pub(super) struct DayGroup {
    pub domain: String,
    pub day: String,
    pub reports: Vec<Report>,
}

pub(super) struct Report {
    pub org: String,
    pub report_id: String,
    pub period: String,
    pub policy: String,
    pub total: String,
    pub failed: String,
    pub lines: Vec<Line>,
    pub more: usize,
}

pub(super) struct TlsLine {
    pub org: String,
    pub period: String,
    pub domain: String,
    pub policy_type: String,
    pub successes: String,
    pub failures: String,
    pub failure_kinds: String,
}

pub(super) struct SentLine {
    pub sent: String,
    pub kind: &'static str,
    pub domain: String,
    pub recipients: String,
    pub rows: String,
    pub note: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/reports.html")]
pub(super) struct ReportsPage {
    chrome: Chrome,
    groups: Vec<DayGroup>,
    page: i64,
    pages: i64,
    dmarc_total: i64,
    tls: Vec<TlsLine>,
    tls_total: i64,
    sent: Vec<SentLine>,
    hostname: String,
}

impl ReportsPage {
    fn prev(&self) -> Option<i64> {
        (self.page > 1).then(|| self.page - 1)
    }
    fn next(&self) -> Option<i64> {
        (self.page < self.pages).then(|| self.page + 1)
    }
}

fn day_of(t: i64) -> String {
    timestamp(t).get(..10).unwrap_or_default().to_string()
}

/// Our own addresses, to tell the admin whether a sending address is one of ours: the
/// host name's A/AAAA records (within two seconds; none when DNS does not answer).
async fn our_addresses(state: &WebState) -> BTreeSet<IpAddr> {
    let lookup = state.dns.addresses(&state.hostname);
    match tokio::time::timeout(Duration::from_secs(2), lookup).await {
        Ok(Ok(list)) => list.into_iter().collect(),
        _ => BTreeSet::new(),
    }
}

fn line(row: &crate::store::DmarcRow, ours: &BTreeSet<IpAddr>) -> Line {
    let dkim_ok = row.dkim == "pass";
    let spf_ok = row.spf == "pass";
    let failed = !dkim_ok && !spf_ok;
    let whose = match row.source_ip.parse::<IpAddr>() {
        Ok(ip) if ours.contains(&ip) => " (one of your server's addresses)",
        Ok(_) if failed => " (not one of your server's addresses?)",
        _ => "",
    };
    let from = match row.header_from.is_empty() {
        true => String::new(),
        false => format!(" as {}", row.header_from),
    };
    let outcome = match (dkim_ok, spf_ok) {
        (true, true) => "passed DMARC: SPF and DKIM passed".to_string(),
        (true, false) => "passed DMARC through DKIM; SPF failed".to_string(),
        (false, true) => "passed DMARC through SPF; DKIM failed".to_string(),
        (false, false) => "failed DMARC: both SPF and DKIM failed".to_string(),
    };
    let done = match row.disposition.as_str() {
        "reject" => "; the receiver refused them",
        "quarantine" => "; the receiver put them in spam",
        _ if failed => "; the receiver delivered them anyway",
        _ => "",
    };
    let mut detail = Vec::new();
    if !row.dkim_auth.is_empty() {
        detail.push(format!("DKIM {}", row.dkim_auth));
    }
    if !row.spf_auth.is_empty() {
        detail.push(format!("SPF {}", row.spf_auth));
    }
    let detail = match detail.is_empty() {
        true => String::new(),
        false => format!(" ({})", detail.join(", ")),
    };
    Line {
        text: format!(
            "{} from {}{whose}{from} {outcome}{done}.{detail}",
            messages(row.count),
            if row.source_ip.is_empty() {
                "an unknown address"
            } else {
                &row.source_ip
            },
        ),
        failed,
    }
}

fn report(r: DmarcReport, ours: &BTreeSet<IpAddr>) -> Report {
    let total: i64 = r.rows.iter().map(|l| l.count).sum();
    let failed: i64 = r
        .rows
        .iter()
        .filter(|l| l.dkim != "pass" && l.spf != "pass")
        .map(|l| l.count)
        .sum();
    let shown = r.rows.len().min(LINES_PER_REPORT);
    let more = usize::try_from(r.rows_total)
        .unwrap_or(0)
        .saturating_sub(shown);
    Report {
        org: r.org,
        report_id: r.report_id,
        period: format!("{} to {}", timestamp(r.begin), timestamp(r.end)),
        policy: r.policy,
        total: messages(total),
        failed: thousands(failed),
        lines: r
            .rows
            .iter()
            .take(LINES_PER_REPORT)
            .map(|row| line(row, ours))
            .collect(),
        more,
    }
}

fn tls_lines(reports: Vec<TlsReport>) -> Vec<TlsLine> {
    let mut out = Vec::new();
    for r in reports {
        let period = format!("{} to {}", timestamp(r.begin), timestamp(r.end));
        for p in r.policies.into_iter().take(LINES_PER_REPORT) {
            let kinds: Vec<String> = p
                .details
                .iter()
                .take(10)
                .map(|(kind, n, ip)| match ip.as_str() {
                    "" | "-" => format!("{} × {kind}", thousands(*n)),
                    ip => format!("{} × {kind} at {ip}", thousands(*n)),
                })
                .collect();
            out.push(TlsLine {
                org: r.org.clone(),
                period: period.clone(),
                domain: p.domain,
                policy_type: match p.policy_type.as_str() {
                    "sts" => "MTA-STS".into(),
                    "tlsa" => "DANE".into(),
                    "no-policy-found" => "no policy".into(),
                    other => other.to_string(),
                },
                successes: thousands(p.successes),
                failures: thousands(p.failures),
                failure_kinds: kinds.join(", "),
            });
        }
    }
    out
}

fn sent_line(s: ReportSent) -> SentLine {
    SentLine {
        sent: timestamp(s.sent),
        kind: if s.kind == "tls" { "TLS" } else { "DMARC" },
        domain: s.domain,
        recipients: if s.recipients.is_empty() {
            "nobody".into()
        } else {
            s.recipients
        },
        rows: thousands(s.rows),
        note: s.note,
    }
}

pub(super) async fn page(
    admin: Admin,
    State(state): State<WebState>,
    Query(query): Query<ListQuery>,
) -> Result<ReportsPage, WebError> {
    let wanted = i64::try_from(query.page.unwrap_or(1).max(1)).unwrap_or(1);
    let (mut found, total) = state
        .store
        .dmarc_reports((wanted - 1).saturating_mul(PER_PAGE), PER_PAGE)
        .await?;
    let pages = ((total + PER_PAGE - 1) / PER_PAGE).max(1);
    let page = wanted.min(pages);
    if page != wanted {
        found = state
            .store
            .dmarc_reports((page - 1).saturating_mul(PER_PAGE), PER_PAGE)
            .await?
            .0;
    }
    let ours = our_addresses(&state).await;
    let mut groups: Vec<DayGroup> = Vec::new();
    for r in found {
        let (domain, day) = (r.domain.clone(), day_of(r.begin));
        let shown = report(r, &ours);
        match groups.last_mut() {
            Some(g) if g.domain == domain && g.day == day => g.reports.push(shown),
            _ => groups.push(DayGroup {
                domain,
                day,
                reports: vec![shown],
            }),
        }
    }
    let (tls, tls_total) = state.store.tls_reports(0, TLS_SHOWN).await?;
    let sent = state.store.reports_sent(SENT_SHOWN).await?;
    Ok(ReportsPage {
        chrome: Chrome::new(&state, &admin, "reports", query.done.as_deref()),
        groups,
        page,
        pages,
        dmarc_total: total,
        tls: tls_lines(tls),
        tls_total,
        sent: sent.into_iter().map(sent_line).collect(),
        hostname: state.hostname.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_with_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1204), "1,204");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn a_failing_line_says_why() {
        let row = crate::store::DmarcRow {
            source_ip: "203.0.113.5".into(),
            count: 1204,
            disposition: "none".into(),
            dkim: "fail".into(),
            spf: "fail".into(),
            header_from: "example.org".into(),
            ..Default::default()
        };
        let l = line(&row, &BTreeSet::new());
        assert!(l.failed);
        assert_eq!(
            l.text,
            "1,204 messages from 203.0.113.5 (not one of your server's addresses?) as \
             example.org failed DMARC: both SPF and DKIM failed; the receiver delivered them \
             anyway."
        );
    }
}
