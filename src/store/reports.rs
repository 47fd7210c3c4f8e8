//! DMARC and TLS reports (migration 0018): the reports received at postmaster@ (parsed by
//! `reports::intake`), what we saw of other domains' mail for the DMARC reports we send
//! (`dmarc_seen`, one row per day and distinct combination, counted), and the reports we sent.
//! Everything is bounded here, whatever the caller passes: rows per report, rows seen per
//! day, reports kept.

use sqlx::Row;

use super::{Result, Store};

/// Rows of one received report that are kept (the report's own total is kept beside them).
pub const MAX_ROWS: usize = 2_000;
/// Distinct rows of `dmarc_seen` per UTC day; past it, messages are not counted.
pub const MAX_SEEN_PER_DAY: i64 = 10_000;
/// Received reports kept of each kind (DMARC, TLS), the newest; and sent ones listed.
pub const MAX_KEPT: i64 = 5_000;
/// Characters kept of any text a report sender controls.
pub const MAX_TEXT: usize = 200;

/// A DMARC aggregate report as received, about one of our domains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DmarcReport {
    pub id: i64,
    pub domain: String,
    pub org: String,
    pub report_id: String,
    pub email: String,
    pub begin: i64,
    pub end: i64,
    /// The policy published, as `p=… sp=… adkim=… aspf=…`.
    pub policy: String,
    pub received: i64,
    /// Rows in the report; at most [`MAX_ROWS`] of them are in `rows`.
    pub rows_total: i64,
    pub rows: Vec<DmarcRow>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DmarcRow {
    pub source_ip: String,
    pub count: i64,
    /// none, quarantine or reject.
    pub disposition: String,
    /// The DMARC-aligned results: pass or fail.
    pub dkim: String,
    pub spf: String,
    pub header_from: String,
    pub envelope_from: String,
    /// `domain=result` per DKIM signature, space-separated.
    pub dkim_auth: String,
    /// `domain=result` per SPF check, space-separated.
    pub spf_auth: String,
}

/// A TLS report as received (RFC 8460), with its policies about our domains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsReport {
    pub id: i64,
    pub org: String,
    pub report_id: String,
    pub contact: String,
    pub begin: i64,
    pub end: i64,
    pub received: i64,
    pub policies: Vec<TlsPolicy>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsPolicy {
    pub domain: String,
    /// sts, tlsa, no-policy-found.
    pub policy_type: String,
    pub mx_hosts: String,
    pub successes: i64,
    pub failures: i64,
    /// `(result type, sessions, receiving ip)` per failure detail.
    pub details: Vec<(String, i64, String)>,
}

/// One distinct combination seen in a day, for the DMARC report to the policy domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DmarcSeen {
    /// Start of the UTC day (unix seconds).
    pub day: i64,
    pub domain: String,
    pub policy: String,
    /// The report addresses (`mailto:` URIs), space-separated.
    pub rua: String,
    pub source_ip: String,
    pub disposition: String,
    pub dkim: String,
    pub spf: String,
    pub reason: String,
    pub header_from: String,
    pub envelope_from: String,
    pub auth: String,
    pub count: i64,
}

/// A report we sent (or meant to send: `note` says what was not sent and why).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportSent {
    /// dmarc or tls.
    pub kind: String,
    pub domain: String,
    pub recipients: String,
    pub rows: i64,
    pub day: i64,
    pub sent: i64,
    pub note: String,
}

/// `text` cut to [`MAX_TEXT`] characters.
pub fn bounded(text: &str) -> String {
    text.chars().take(MAX_TEXT).collect()
}

impl Store {
    /// Stores a received DMARC report; `false` when one with the same organisation and report
    /// id is stored already (a report sent twice is stored once). At most [`MAX_ROWS`] rows.
    pub async fn add_dmarc_report(&self, r: &DmarcReport, now: i64) -> Result<bool> {
        let mut tx = self.write().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO dmarc_reports
                (domain, org, report_id, email, begin, end, policy, received, rows_total)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (org, report_id) DO NOTHING RETURNING id",
        )
        .bind(bounded(&r.domain))
        .bind(bounded(&r.org))
        .bind(bounded(&r.report_id))
        .bind(bounded(&r.email))
        .bind(r.begin)
        .bind(r.end)
        .bind(bounded(&r.policy))
        .bind(now)
        .bind(r.rows_total)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else {
            return Ok(false);
        };
        for row in r.rows.iter().take(MAX_ROWS) {
            sqlx::query(
                "INSERT INTO dmarc_report_rows (report, source_ip, count, disposition, dkim, spf,
                    header_from, envelope_from, dkim_auth, spf_auth)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(bounded(&row.source_ip))
            .bind(row.count)
            .bind(bounded(&row.disposition))
            .bind(bounded(&row.dkim))
            .bind(bounded(&row.spf))
            .bind(bounded(&row.header_from))
            .bind(bounded(&row.envelope_from))
            .bind(bounded(&row.dkim_auth))
            .bind(bounded(&row.spf_auth))
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "DELETE FROM dmarc_reports WHERE id IN
                (SELECT id FROM dmarc_reports ORDER BY received DESC, id DESC LIMIT -1 OFFSET ?)",
        )
        .bind(MAX_KEPT)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Stores a received TLS report; `false` when it is stored already.
    pub async fn add_tls_report(&self, r: &TlsReport, now: i64) -> Result<bool> {
        let mut tx = self.write().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO tls_reports (org, report_id, contact, begin, end, received)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (org, report_id) DO NOTHING RETURNING id",
        )
        .bind(bounded(&r.org))
        .bind(bounded(&r.report_id))
        .bind(bounded(&r.contact))
        .bind(r.begin)
        .bind(r.end)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else {
            return Ok(false);
        };
        for p in r.policies.iter().take(MAX_ROWS) {
            let details: String = p
                .details
                .iter()
                .take(MAX_ROWS)
                .map(|(kind, n, ip)| format!("{} {n} {}\n", one_word(kind), one_word(ip)))
                .collect();
            sqlx::query(
                "INSERT INTO tls_report_policies
                    (report, domain, policy_type, mx_hosts, successes, failures, details)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(bounded(&p.domain))
            .bind(bounded(&p.policy_type))
            .bind(bounded(&p.mx_hosts))
            .bind(p.successes)
            .bind(p.failures)
            .bind(details)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "DELETE FROM tls_reports WHERE id IN
                (SELECT id FROM tls_reports ORDER BY received DESC, id DESC LIMIT -1 OFFSET ?)",
        )
        .bind(MAX_KEPT)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Received DMARC reports, newest period first: `limit` of them from `offset`, with their
    /// rows, and how many there are in all.
    pub async fn dmarc_reports(&self, offset: i64, limit: i64) -> Result<(Vec<DmarcReport>, i64)> {
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dmarc_reports")
            .fetch_one(&self.reader)
            .await?;
        let rows = sqlx::query(
            "SELECT id, domain, org, report_id, email, begin, end, policy, received, rows_total
             FROM dmarc_reports ORDER BY begin DESC, id DESC LIMIT ? OFFSET ?",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.reader)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: i64 = r.try_get("id")?;
            let lines = sqlx::query(
                "SELECT source_ip, count, disposition, dkim, spf, header_from, envelope_from,
                        dkim_auth, spf_auth
                 FROM dmarc_report_rows WHERE report = ? ORDER BY count DESC, rowid",
            )
            .bind(id)
            .fetch_all(&self.reader)
            .await?;
            let mut rows = Vec::with_capacity(lines.len());
            for l in lines {
                rows.push(DmarcRow {
                    source_ip: l.try_get("source_ip")?,
                    count: l.try_get("count")?,
                    disposition: l.try_get("disposition")?,
                    dkim: l.try_get("dkim")?,
                    spf: l.try_get("spf")?,
                    header_from: l.try_get("header_from")?,
                    envelope_from: l.try_get("envelope_from")?,
                    dkim_auth: l.try_get("dkim_auth")?,
                    spf_auth: l.try_get("spf_auth")?,
                });
            }
            out.push(DmarcReport {
                id,
                domain: r.try_get("domain")?,
                org: r.try_get("org")?,
                report_id: r.try_get("report_id")?,
                email: r.try_get("email")?,
                begin: r.try_get("begin")?,
                end: r.try_get("end")?,
                policy: r.try_get("policy")?,
                received: r.try_get("received")?,
                rows_total: r.try_get("rows_total")?,
                rows,
            });
        }
        Ok((out, total))
    }

    /// Received TLS reports, newest period first, with their policies.
    pub async fn tls_reports(&self, offset: i64, limit: i64) -> Result<(Vec<TlsReport>, i64)> {
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tls_reports")
            .fetch_one(&self.reader)
            .await?;
        let rows = sqlx::query(
            "SELECT id, org, report_id, contact, begin, end, received
             FROM tls_reports ORDER BY begin DESC, id DESC LIMIT ? OFFSET ?",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.reader)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: i64 = r.try_get("id")?;
            let lines = sqlx::query(
                "SELECT domain, policy_type, mx_hosts, successes, failures, details
                 FROM tls_report_policies WHERE report = ? ORDER BY rowid",
            )
            .bind(id)
            .fetch_all(&self.reader)
            .await?;
            let mut policies = Vec::with_capacity(lines.len());
            for l in lines {
                let details: String = l.try_get("details")?;
                policies.push(TlsPolicy {
                    domain: l.try_get("domain")?,
                    policy_type: l.try_get("policy_type")?,
                    mx_hosts: l.try_get("mx_hosts")?,
                    successes: l.try_get("successes")?,
                    failures: l.try_get("failures")?,
                    details: details
                        .lines()
                        .filter_map(|line| {
                            let mut words = line.split(' ');
                            let kind = words.next()?.to_string();
                            let n = words.next()?.parse().ok()?;
                            let ip = words.next().unwrap_or("").to_string();
                            Some((kind, n, ip))
                        })
                        .collect(),
                });
            }
            out.push(TlsReport {
                id,
                org: r.try_get("org")?,
                report_id: r.try_get("report_id")?,
                contact: r.try_get("contact")?,
                begin: r.try_get("begin")?,
                end: r.try_get("end")?,
                received: r.try_get("received")?,
                policies,
            });
        }
        Ok((out, total))
    }

    /// Counts one message in `seen.day` (its `count` is ignored: this adds 1). `false` when the
    /// day has [`MAX_SEEN_PER_DAY`] distinct rows already and this one is new (not counted).
    pub async fn note_dmarc_seen(&self, seen: &DmarcSeen) -> Result<bool> {
        let mut tx = self.write().await?;
        let updated = sqlx::query(
            "UPDATE dmarc_seen SET count = count + 1
             WHERE day = ? AND domain = ? AND policy = ? AND rua = ? AND source_ip = ?
               AND disposition = ? AND dkim = ? AND spf = ? AND reason = ? AND header_from = ?
               AND envelope_from = ? AND auth = ?",
        )
        .bind(seen.day)
        .bind(&seen.domain)
        .bind(&seen.policy)
        .bind(&seen.rua)
        .bind(&seen.source_ip)
        .bind(&seen.disposition)
        .bind(&seen.dkim)
        .bind(&seen.spf)
        .bind(&seen.reason)
        .bind(&seen.header_from)
        .bind(&seen.envelope_from)
        .bind(&seen.auth)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dmarc_seen WHERE day = ?")
                .bind(seen.day)
                .fetch_one(&mut *tx)
                .await?;
            if rows >= MAX_SEEN_PER_DAY {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO dmarc_seen (day, domain, policy, rua, source_ip, disposition, dkim,
                    spf, reason, header_from, envelope_from, auth, count)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
            )
            .bind(seen.day)
            .bind(&seen.domain)
            .bind(&seen.policy)
            .bind(&seen.rua)
            .bind(&seen.source_ip)
            .bind(&seen.disposition)
            .bind(&seen.dkim)
            .bind(&seen.spf)
            .bind(&seen.reason)
            .bind(&seen.header_from)
            .bind(&seen.envelope_from)
            .bind(&seen.auth)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Every row seen on the UTC day starting at `day`, by policy domain.
    pub async fn dmarc_seen_of_day(&self, day: i64) -> Result<Vec<DmarcSeen>> {
        let rows = sqlx::query(
            "SELECT day, domain, policy, rua, source_ip, disposition, dkim, spf, reason,
                    header_from, envelope_from, auth, count
             FROM dmarc_seen WHERE day = ? ORDER BY domain, count DESC",
        )
        .bind(day)
        .fetch_all(&self.reader)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(DmarcSeen {
                day: r.try_get("day")?,
                domain: r.try_get("domain")?,
                policy: r.try_get("policy")?,
                rua: r.try_get("rua")?,
                source_ip: r.try_get("source_ip")?,
                disposition: r.try_get("disposition")?,
                dkim: r.try_get("dkim")?,
                spf: r.try_get("spf")?,
                reason: r.try_get("reason")?,
                header_from: r.try_get("header_from")?,
                envelope_from: r.try_get("envelope_from")?,
                auth: r.try_get("auth")?,
                count: r.try_get("count")?,
            });
        }
        Ok(out)
    }

    /// Forgets what was seen on the days up to and including the one starting at `day` (after
    /// their reports went out).
    pub async fn forget_dmarc_seen_through(&self, day: i64) -> Result<u64> {
        let mut tx = self.write().await?;
        let n = sqlx::query("DELETE FROM dmarc_seen WHERE day <= ?")
            .bind(day)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// Records a report sent; a year of them is kept, at most [`MAX_KEPT`].
    pub async fn record_report_sent(&self, r: &ReportSent) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO reports_sent (kind, domain, recipients, rows, day, sent, note)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&r.kind)
        .bind(bounded(&r.domain))
        .bind(bounded(&r.recipients))
        .bind(r.rows)
        .bind(r.day)
        .bind(r.sent)
        .bind(bounded(&r.note))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM reports_sent WHERE sent < ? OR id IN
                (SELECT id FROM reports_sent ORDER BY sent DESC, id DESC LIMIT -1 OFFSET ?)",
        )
        .bind(r.sent - 366 * 86_400)
        .bind(MAX_KEPT)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The reports sent most recently, newest first.
    pub async fn reports_sent(&self, limit: i64) -> Result<Vec<ReportSent>> {
        let rows = sqlx::query(
            "SELECT kind, domain, recipients, rows, day, sent, note
             FROM reports_sent ORDER BY sent DESC, id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(ReportSent {
                kind: r.try_get("kind")?,
                domain: r.try_get("domain")?,
                recipients: r.try_get("recipients")?,
                rows: r.try_get("rows")?,
                day: r.try_get("day")?,
                sent: r.try_get("sent")?,
                note: r.try_get("note")?,
            });
        }
        Ok(out)
    }
}

/// `text` as one word of at most [`MAX_TEXT`] characters (the details column is split on
/// spaces and lines).
fn one_word(text: &str) -> String {
    let word: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(MAX_TEXT)
        .collect();
    if word.is_empty() { "-".into() } else { word }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.db")).await.unwrap();
        (store, dir)
    }

    #[tokio::test]
    async fn a_report_sent_twice_is_stored_once() {
        let (store, _dir) = store().await;
        let r = DmarcReport {
            domain: "example.org".into(),
            org: "big.test".into(),
            report_id: "r1".into(),
            rows_total: 1,
            rows: vec![DmarcRow {
                source_ip: "192.0.2.1".into(),
                count: 3,
                ..DmarcRow::default()
            }],
            ..DmarcReport::default()
        };
        assert!(store.add_dmarc_report(&r, 1).await.unwrap());
        assert!(!store.add_dmarc_report(&r, 2).await.unwrap());
        let (list, total) = store.dmarc_reports(0, 10).await.unwrap();
        assert_eq!(total, 1);
        assert_eq!(list[0].rows.len(), 1);
        assert_eq!(list[0].rows[0].count, 3);
    }

    #[tokio::test]
    async fn seen_rows_are_counted_and_forgotten() {
        let (store, _dir) = store().await;
        let seen = DmarcSeen {
            day: 86_400,
            domain: "sender.test".into(),
            source_ip: "192.0.2.1".into(),
            ..DmarcSeen::default()
        };
        assert!(store.note_dmarc_seen(&seen).await.unwrap());
        assert!(store.note_dmarc_seen(&seen).await.unwrap());
        let rows = store.dmarc_seen_of_day(86_400).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].count, 2);
        assert_eq!(store.forget_dmarc_seen_through(86_400).await.unwrap(), 1);
        assert!(store.dmarc_seen_of_day(86_400).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn tls_details_come_back() {
        let (store, _dir) = store().await;
        let r = TlsReport {
            org: "big.test".into(),
            report_id: "t1".into(),
            policies: vec![TlsPolicy {
                domain: "example.org".into(),
                policy_type: "sts".into(),
                successes: 10,
                failures: 2,
                details: vec![("certificate-expired".into(), 2, "".into())],
                ..TlsPolicy::default()
            }],
            ..TlsReport::default()
        };
        assert!(store.add_tls_report(&r, 1).await.unwrap());
        let (list, _) = store.tls_reports(0, 10).await.unwrap();
        assert_eq!(
            list[0].policies[0].details,
            vec![("certificate-expired".into(), 2, "-".into())]
        );
    }
}
