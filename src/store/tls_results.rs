//! Outbound TLS results (migration 0019 `tls_results`): the data of RFC 8460 TLS reports.
//! The queue counts every outbound TLS attempt here (`note_tls_attempt`: MTA-STS, DANE, or no
//! policy); the TLS-RPT reporter reads a day (`tls_results_of_day`) and forgets what it sent
//! (`forget_tls_results_before`).
//!
//! One row per UTC day, policy domain, policy type, policy strings, MX host, receiving IP and
//! result type (NULL for success), with a count. The nullable columns have no unique
//! constraint (SQLite's NULLs are all distinct there): the row is found with `IS` inside the
//! one write transaction, which the single writer makes atomic.
//!
//! Much of a row comes from remote parties (the MX names, the STS policy, the TLSA records), so
//! everything is bounded: [`MAX_ROWS_PER_DAY`] distinct rows a day (past it, attempts are not
//! counted, and a log line says so once a day), and each text field cut to a fixed length.

use std::sync::atomic::{AtomicI64, Ordering};

use super::{Result, Store, StoreError};

/// Distinct rows a day, at most: a hostile set of MX hosts cannot grow the table past it.
pub const MAX_ROWS_PER_DAY: i64 = 10_000;
/// Characters of a failure's detail kept.
pub const MAX_DETAIL: usize = 200;
/// Policy strings kept per row, and characters of each (an STS policy has a handful of lines;
/// a TLSA record as text is under 200 characters unless it carries a whole certificate).
pub const MAX_POLICY_STRINGS: usize = 32;
pub const MAX_POLICY_STRING: usize = 1024;
/// Characters of a host name or domain kept (a DNS name has at most 253).
const MAX_NAME: usize = 255;
const DAY: i64 = 86_400;

/// The last day whose row limit was logged, so the log line comes once a day.
static LIMIT_LOGGED: AtomicI64 = AtomicI64::new(i64::MIN);

/// RFC 8460 §4.3 "policy-type".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPolicyType {
    Sts,
    Tlsa,
    NoPolicyFound,
}

impl TlsPolicyType {
    /// The name RFC 8460 gives it (also what the table holds).
    pub fn as_str(self) -> &'static str {
        match self {
            TlsPolicyType::Sts => "sts",
            TlsPolicyType::Tlsa => "tlsa",
            TlsPolicyType::NoPolicyFound => "no-policy-found",
        }
    }

    fn parse(text: &str) -> Option<TlsPolicyType> {
        match text {
            "sts" => Some(TlsPolicyType::Sts),
            "tlsa" => Some(TlsPolicyType::Tlsa),
            "no-policy-found" => Some(TlsPolicyType::NoPolicyFound),
            _ => None,
        }
    }
}

/// One outbound TLS attempt, as the queue saw it.
#[derive(Debug, Clone, Copy)]
pub struct TlsAttempt<'a> {
    /// The recipient domain the policy belongs to.
    pub policy_domain: &'a str,
    pub policy_type: TlsPolicyType,
    /// The STS policy's lines, or the TLSA records as text.
    pub policy_strings: &'a [String],
    /// The MX host name tried.
    pub mx_host: &'a str,
    pub receiving_ip: Option<std::net::IpAddr>,
    /// None: the TLS session was established and met the policy.
    /// Some((result_type, detail)): an RFC 8460 §4.3 result type name, e.g.
    /// "starttls-not-supported", "certificate-host-mismatch", "certificate-expired",
    /// "certificate-not-trusted", "validation-failure", "tlsa-invalid", "dnssec-invalid",
    /// "dane-required", "sts-policy-fetch-error", "sts-policy-invalid", "sts-webpki-invalid",
    /// and a short free-text detail (at most 200 characters are kept).
    pub failure: Option<(&'a str, &'a str)>,
}

/// A counted row of one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsResultRow {
    pub policy_domain: String,
    pub policy_type: TlsPolicyType,
    pub policy_strings: Vec<String>,
    pub mx_host: String,
    pub receiving_ip: Option<String>,
    /// None: success.
    pub result_type: Option<String>,
    /// The latest failure's detail.
    pub detail: Option<String>,
    pub count: i64,
}

/// The start (unix seconds) of the UTC day holding `at`.
pub fn utc_day(at: i64) -> i64 {
    at - at.rem_euclid(DAY)
}

fn cut(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => text.get(..end).unwrap_or(text),
        None => text,
    }
}

fn policy_json(strings: &[String]) -> Result<String> {
    let kept: Vec<&str> = strings
        .iter()
        .take(MAX_POLICY_STRINGS)
        .map(|s| cut(s, MAX_POLICY_STRING))
        .collect();
    serde_json::to_string(&kept)
        .map_err(|e| StoreError::Invalid(format!("tls policy strings: {e}")))
}

type RawRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);

impl Store {
    /// Counts one attempt under the UTC day of `now` (an upsert adding 1). Past
    /// [`MAX_ROWS_PER_DAY`] distinct rows that day, an attempt that would need a new row is not
    /// counted (logged once a day).
    pub async fn note_tls_attempt(&self, a: &TlsAttempt<'_>, now: i64) -> Result<()> {
        let day = utc_day(now);
        let domain = cut(a.policy_domain, MAX_NAME).to_ascii_lowercase();
        let mx = cut(a.mx_host, MAX_NAME)
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let strings = policy_json(a.policy_strings)?;
        let ip = a.receiving_ip.map(|ip| ip.to_string());
        let result_type = a.failure.map(|(kind, _)| cut(kind, 64));
        let detail = a.failure.map(|(_, detail)| cut(detail, MAX_DETAIL));
        let mut tx = self.write().await?;
        let updated = sqlx::query(
            "UPDATE tls_results SET count = count + 1, detail = COALESCE(?, detail)
             WHERE day = ? AND policy_domain = ? AND mx_host = ? AND policy_type = ?
               AND policy_strings = ? AND receiving_ip IS ? AND result_type IS ?",
        )
        .bind(detail)
        .bind(day)
        .bind(&domain)
        .bind(&mx)
        .bind(a.policy_type.as_str())
        .bind(&strings)
        .bind(&ip)
        .bind(result_type)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tls_results WHERE day = ?")
                .bind(day)
                .fetch_one(&mut *tx)
                .await?;
            if rows >= MAX_ROWS_PER_DAY {
                if LIMIT_LOGGED.swap(day, Ordering::Relaxed) != day {
                    tracing::warn!(
                        "TLS results: {MAX_ROWS_PER_DAY} distinct rows today; \
                         further attempts are not counted until tomorrow (UTC)"
                    );
                }
                return Ok(());
            }
            sqlx::query(
                "INSERT INTO tls_results (day, policy_domain, policy_type, policy_strings,
                     mx_host, receiving_ip, result_type, detail, count)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
            )
            .bind(day)
            .bind(&domain)
            .bind(a.policy_type.as_str())
            .bind(&strings)
            .bind(&mx)
            .bind(&ip)
            .bind(result_type)
            .bind(detail)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every row of the UTC day that starts at `day_start` (unix seconds, a multiple of
    /// 86400), ordered by policy domain, MX host, then result (success first).
    pub async fn tls_results_of_day(&self, day_start: i64) -> Result<Vec<TlsResultRow>> {
        let raw: Vec<RawRow> = sqlx::query_as(
            "SELECT policy_domain, policy_type, policy_strings, mx_host, receiving_ip,
                    result_type, detail, count
             FROM tls_results WHERE day = ?
             ORDER BY policy_domain, mx_host, result_type IS NOT NULL, result_type, id",
        )
        .bind(day_start)
        .fetch_all(&self.reader)
        .await?;
        raw.into_iter()
            .map(
                |(domain, kind, strings, mx, ip, result_type, detail, count)| {
                    let policy_type = TlsPolicyType::parse(&kind).ok_or_else(|| {
                        StoreError::Corrupt(format!("tls_results: policy type {kind:?}"))
                    })?;
                    let policy_strings: Vec<String> =
                        serde_json::from_str(&strings).map_err(|e| {
                            StoreError::Corrupt(format!("tls_results: policy strings: {e}"))
                        })?;
                    Ok(TlsResultRow {
                        policy_domain: domain,
                        policy_type,
                        policy_strings,
                        mx_host: mx,
                        receiving_ip: ip,
                        result_type,
                        detail,
                        count,
                    })
                },
            )
            .collect()
    }

    /// Forgets days before `day_start` (called by the reporter after sending); returns the
    /// rows removed.
    pub async fn forget_tls_results_before(&self, day_start: i64) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM tls_results WHERE day < ?")
            .bind(day_start)
            .execute(&self.writer)
            .await?
            .rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_DETAIL, MAX_ROWS_PER_DAY, TlsAttempt, TlsPolicyType, utc_day};
    use crate::store::Store;

    fn attempt<'a>(
        mx: &'a str,
        strings: &'a [String],
        failure: Option<(&'a str, &'a str)>,
    ) -> TlsAttempt<'a> {
        TlsAttempt {
            policy_domain: "Example.ORG",
            policy_type: TlsPolicyType::Sts,
            policy_strings: strings,
            mx_host: mx,
            receiving_ip: Some("192.0.2.7".parse().unwrap()),
            failure,
        }
    }

    #[test]
    fn days_are_utc() {
        assert_eq!(utc_day(0), 0);
        assert_eq!(utc_day(86_399), 0);
        assert_eq!(utc_day(86_400), 86_400);
        assert_eq!(utc_day(-1), -86_400);
    }

    #[tokio::test]
    async fn attempts_are_counted_per_day_and_result() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.db")).await.unwrap();
        let day = 20_000 * 86_400;
        let policy = vec!["version: STSv1".to_string(), "mode: enforce".to_string()];
        let ok = attempt("mx.example.org", &policy, None);
        store.note_tls_attempt(&ok, day + 10).await.unwrap();
        store.note_tls_attempt(&ok, day + 86_399).await.unwrap();
        // The same MX, written differently, is the same row.
        let ok_upper = attempt("MX.example.org.", &policy, None);
        store.note_tls_attempt(&ok_upper, day + 20).await.unwrap();
        let bad = attempt(
            "mx.example.org",
            &policy,
            Some(("certificate-host-mismatch", "first")),
        );
        store.note_tls_attempt(&bad, day + 30).await.unwrap();
        let bad2 = attempt(
            "mx.example.org",
            &policy,
            Some(("certificate-host-mismatch", "second")),
        );
        store.note_tls_attempt(&bad2, day + 40).await.unwrap();
        // No receiving IP is its own row (NULL compared with IS).
        let no_ip = TlsAttempt {
            receiving_ip: None,
            ..bad
        };
        store.note_tls_attempt(&no_ip, day + 50).await.unwrap();
        store.note_tls_attempt(&no_ip, day + 60).await.unwrap();
        // The next day.
        store.note_tls_attempt(&ok, day + 86_400).await.unwrap();
        let none = TlsAttempt {
            policy_type: TlsPolicyType::NoPolicyFound,
            policy_strings: &[],
            ..ok
        };
        store.note_tls_attempt(&none, day + 86_401).await.unwrap();

        let rows = store.tls_results_of_day(day).await.unwrap();
        assert_eq!(rows.len(), 3, "{rows:?}");
        let success = &rows[0];
        assert_eq!(success.policy_domain, "example.org");
        assert_eq!(success.mx_host, "mx.example.org");
        assert_eq!(success.policy_type, TlsPolicyType::Sts);
        assert_eq!(success.policy_strings, policy);
        assert_eq!(success.receiving_ip.as_deref(), Some("192.0.2.7"));
        assert_eq!(success.result_type, None);
        assert_eq!(success.detail, None);
        assert_eq!(success.count, 3);
        let failures: Vec<_> = rows[1..]
            .iter()
            .map(|r| {
                (
                    r.result_type.as_deref(),
                    r.receiving_ip.as_deref(),
                    r.detail.as_deref(),
                    r.count,
                )
            })
            .collect();
        assert!(failures.contains(&(
            Some("certificate-host-mismatch"),
            Some("192.0.2.7"),
            Some("second"),
            2
        )));
        assert!(failures.contains(&(Some("certificate-host-mismatch"), None, Some("first"), 2)));

        let next = store.tls_results_of_day(day + 86_400).await.unwrap();
        assert_eq!(next.len(), 2);
        assert!(
            next.iter()
                .any(|r| r.policy_type == TlsPolicyType::NoPolicyFound
                    && r.policy_strings.is_empty())
        );

        assert_eq!(
            store.forget_tls_results_before(day + 86_400).await.unwrap(),
            3
        );
        assert!(store.tls_results_of_day(day).await.unwrap().is_empty());
        assert_eq!(
            store.tls_results_of_day(day + 86_400).await.unwrap().len(),
            2
        );
    }

    #[tokio::test]
    async fn details_are_cut_and_rows_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.db")).await.unwrap();
        let day = 20_001 * 86_400;
        let long = "é".repeat(500);
        let bad = attempt("mx.example.org", &[], Some(("validation-failure", &long)));
        store.note_tls_attempt(&bad, day).await.unwrap();
        let rows = store.tls_results_of_day(day).await.unwrap();
        assert_eq!(rows[0].detail.as_ref().unwrap().chars().count(), MAX_DETAIL);

        // Fill the day to the limit directly, then a new row is not counted but an existing
        // one still is.
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
             INSERT INTO tls_results (day, policy_domain, policy_type, policy_strings, mx_host,
                 receiving_ip, result_type, detail, count)
             SELECT ?, 'example.org', 'sts', '[]', 'mx' || i || '.example.org', NULL, NULL,
                 NULL, 1 FROM n",
        )
        .bind(MAX_ROWS_PER_DAY - 1)
        .bind(day)
        .execute(&store.writer)
        .await
        .unwrap();
        let fresh = attempt("new.example.org", &[], None);
        store.note_tls_attempt(&fresh, day + 1).await.unwrap();
        store.note_tls_attempt(&bad, day + 2).await.unwrap();
        let rows = store.tls_results_of_day(day).await.unwrap();
        assert_eq!(rows.len() as i64, MAX_ROWS_PER_DAY);
        assert!(!rows.iter().any(|r| r.mx_host == "new.example.org"));
        let counted = rows
            .iter()
            .find(|r| r.result_type.as_deref() == Some("validation-failure"))
            .unwrap();
        assert_eq!(counted.count, 2);
    }
}
