//! MTA-STS (RFC 8461) for outbound delivery, and the TLS result of every outbound session.
//!
//! For each destination domain [`MtaSts::lookup`] reads the `_mta-sts.<domain>` TXT record
//! (`v=STSv1; id=…`, parsed by mail-auth), and when its id differs from the cached policy's
//! (or nothing is cached) fetches `https://mta-sts.<domain>/.well-known/mta-sts.txt`: a
//! verified WebPKI certificate for that name, no redirects, `200` with `text/plain`, at most
//! [`MAX_POLICY_BYTES`], within [`FETCH_TIMEOUT`]. The policy ([`parse_policy`]) is cached in
//! the store (`Store::put_mta_sts_policy`) until `fetched_at + max_age`, so it survives
//! restarts. RFC 8461 §5.1: a policy past half its life is fetched again in the background
//! while deliveries use it; a failed fetch, a missing TXT record or a DNS failure keeps a
//! cached, unexpired policy; without one, delivery goes on as if the domain had no policy (and
//! the failure is counted for TLS reports).
//!
//! [`MtaSts::connect`] opens a session to one MX address under what the lookup found:
//! - `enforce`: only MX hosts the policy lists ([`Policy::matches`]), STARTTLS required, the
//!   certificate verified for the MX host's name (`smtp::client`'s verified configuration,
//!   with `[queue] ca_file`); anything else refuses that MX with a reason naming MTA-STS;
//! - `testing`: verified first; a failure is counted and the session made as without a
//!   policy (opportunistic STARTTLS);
//! - no policy (or `mode: none`): opportunistic STARTTLS as before.
//!
//! Every session's result goes through `Store::note_tls_attempt` (RFC 8460 data): success,
//! `starttls-not-supported`, the certificate failures, `validation-failure` (MX not in the
//! policy, or another handshake failure), `sts-policy-fetch-error`, `sts-policy-invalid`,
//! `sts-webpki-invalid`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use mail_auth::common::parse::TxtRecordParser;
use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls_pki_types::pem::PemObject;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::dns::Dns;
use crate::smtp::client::{Client, ClientError, ClientSettings};
use crate::store::{CachedStsPolicy, Store, TlsAttempt, TlsPolicyType, now};

/// The largest policy file accepted (RFC 8461 §3.3 suggests 64 KiB).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
/// The whole policy fetch: DNS, connection, TLS, request and body.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(20);
/// The largest `max_age` honoured (RFC 8461 §3.2: "up to 31557600", a year).
pub const MAX_MAX_AGE: i64 = 31_557_600;
/// `mx` patterns kept from a policy, at most.
pub const MAX_MX_PATTERNS: usize = 64;
/// Lines of a policy kept for TLS reports, at most.
const MAX_POLICY_LINES: usize = 100;
/// Addresses of the policy host tried, at most.
const MAX_POLICY_ADDRESSES: usize = 3;

/// A policy's mode (RFC 8461 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    Testing,
    None,
}

/// A parsed policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    /// MX patterns in lower case: host names, or `*.` and a domain (one label).
    pub mx: Vec<String>,
    /// Seconds, bounded to [`MAX_MAX_AGE`].
    pub max_age: i64,
    /// The policy's lines as served, for TLS reports ("policy-string").
    pub strings: Vec<String>,
}

/// Parses a policy file (RFC 8461 §3.2): `key: value` lines separated by CRLF or LF; `version`
/// must be `STSv1`, `mode` one of `enforce`, `testing`, `none`, `max_age` a number (bounded to
/// a year), `mx` repeated, at least one unless the mode is `none`. A field given twice counts
/// once (the first), `mx` excepted; unknown fields are ignored.
pub fn parse_policy(text: &str) -> Result<Policy, String> {
    let mut version = None;
    let mut mode = None;
    let mut max_age = None;
    let mut mx = Vec::new();
    let mut strings = Vec::new();
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r').trim();
        if line.is_empty() {
            continue;
        }
        if strings.len() < MAX_POLICY_LINES {
            strings.push(line.to_string());
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(format!("not a `key: value` line: {:?}", cut(line)));
        };
        let value = value.trim();
        match key.trim() {
            "version" => {
                version.get_or_insert(value);
            }
            "mode" => {
                mode.get_or_insert(value);
            }
            "max_age" => {
                max_age.get_or_insert(value);
            }
            "mx" if mx.len() < MAX_MX_PATTERNS => mx.push(mx_pattern(value)?),
            _ => {}
        }
    }
    if version != Some("STSv1") {
        return Err("version is not STSv1".into());
    }
    let mode = match mode {
        Some("enforce") => Mode::Enforce,
        Some("testing") => Mode::Testing,
        Some("none") => Mode::None,
        Some(other) => return Err(format!("unknown mode {:?}", cut(other))),
        None => return Err("no mode".into()),
    };
    let max_age = match max_age {
        // At most 10 digits (RFC 8461 §3.2); a longer number is still a year at most.
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
            v.parse::<i64>().unwrap_or(MAX_MAX_AGE).min(MAX_MAX_AGE)
        }
        Some(v) => return Err(format!("max_age is not a number: {:?}", cut(v))),
        None => return Err("no max_age".into()),
    };
    if mx.is_empty() && mode != Mode::None {
        return Err("no mx".into());
    }
    Ok(Policy {
        mode,
        mx,
        max_age,
        strings,
    })
}

fn cut(text: &str) -> String {
    text.chars().take(60).collect()
}

/// An `mx` value: a host name or `*.` and a domain, in lower case, without a trailing dot.
fn mx_pattern(value: &str) -> Result<String, String> {
    let pattern = value.trim_end_matches('.').to_ascii_lowercase();
    let host = pattern.strip_prefix("*.").unwrap_or(&pattern);
    let valid = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if valid {
        Ok(pattern)
    } else {
        Err(format!("invalid mx {:?}", cut(value)))
    }
}

impl Policy {
    /// Whether the MX host `host` is one the policy lists (RFC 8461 §4.1): the same name, or
    /// under a `*.` pattern with exactly one more label on the left.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(parent) => host
                    .split_once('.')
                    .is_some_and(|(first, rest)| !first.is_empty() && rest == parent),
                None => *pattern == host,
            })
    }
}

/// The id of a domain's `_mta-sts` TXT records (RFC 8461 §3.1): exactly one record starting
/// `v=STSv1`, with an id of 1 to 32 letters and digits; otherwise none.
pub fn record_id(records: &[String]) -> Option<String> {
    let mut sts = records
        .iter()
        .filter(|r| r.trim_start().starts_with("v=STSv1"));
    let record = sts.next()?;
    if sts.next().is_some() {
        return None;
    }
    let id = mail_auth::mta_sts::MtaSts::parse(record.as_bytes())
        .ok()?
        .id;
    (!id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then_some(id)
}

/// What governs the sessions of one delivery attempt to a domain.
#[derive(Debug, Clone)]
pub enum Applied {
    /// The domain publishes no policy, or one in mode `none`.
    NoPolicy,
    /// A policy in `enforce` or `testing` mode.
    Policy(Arc<Policy>),
    /// A TXT record but no usable policy and none cached: delivery goes on as without a
    /// policy, and each session is counted with this failure.
    Unusable {
        result_type: &'static str,
        detail: String,
    },
}

impl Applied {
    fn of(policy: Policy) -> Applied {
        match policy.mode {
            Mode::None => Applied::NoPolicy,
            _ => Applied::Policy(Arc::new(policy)),
        }
    }

    /// True when the policy is enforced.
    pub fn enforced(&self) -> bool {
        matches!(self, Applied::Policy(p) if p.mode == Mode::Enforce)
    }
}

/// Why a policy fetch failed: the RFC 8460 result type and a detail.
type FetchFailure = (&'static str, String);

/// MTA-STS lookups and the sessions they govern.
#[derive(Clone)]
pub struct MtaSts {
    store: Store,
    dns: Dns,
    /// The verified TLS configuration (WebPKI roots and `[queue] ca_file`).
    https: Arc<ClientConfig>,
    port: u16,
    /// Domains whose policy is being fetched in the background.
    refreshing: Arc<Mutex<HashSet<String>>>,
}

impl MtaSts {
    pub fn new(store: Store, dns: Dns, https: Arc<ClientConfig>, port: u16) -> MtaSts {
        MtaSts {
            store,
            dns,
            https,
            port,
            refreshing: Arc::default(),
        }
    }

    /// The policy that applies to delivery to `domain` now (see the module doc).
    pub async fn lookup(&self, domain: &str) -> Applied {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let now = now();
        let cached = match self.store.mta_sts_policy(&domain).await {
            Ok(cached) => cached.filter(|c| c.expires_at > now).and_then(|c| {
                let policy = parse_policy(&c.policy).ok()?;
                Some((c, policy))
            }),
            Err(e) => {
                tracing::warn!("MTA-STS: cannot read the cached policy of {domain}: {e}");
                None
            }
        };
        let id = match self.dns.txt(&format!("_mta-sts.{domain}")).await {
            Ok(records) => record_id(&records),
            Err(e) => {
                tracing::debug!("MTA-STS: TXT lookup for {domain} failed: {e}");
                None
            }
        };
        let Some(id) = id else {
            // No record (or the lookup failed): a cached policy stays in force until it
            // expires (RFC 8461 §5.1).
            return cached.map_or(Applied::NoPolicy, |(_, p)| Applied::of(p));
        };
        if let Some((entry, policy)) = cached {
            if entry.id == id {
                if now >= entry.fetched_at + (entry.expires_at - entry.fetched_at) / 2 {
                    self.refresh_in_background(&domain, &id);
                }
                return Applied::of(policy);
            }
            return match self.refresh(&domain, &id).await {
                Ok(policy) => Applied::of(policy),
                Err((kind, why)) => {
                    tracing::info!(
                        "MTA-STS: new policy of {domain} not fetched ({kind}: {why}); \
                         the cached one stays in force"
                    );
                    Applied::of(policy)
                }
            };
        }
        match self.refresh(&domain, &id).await {
            Ok(policy) => Applied::of(policy),
            Err((result_type, detail)) => {
                tracing::info!("MTA-STS: no policy of {domain} ({result_type}: {detail})");
                Applied::Unusable {
                    result_type,
                    detail,
                }
            }
        }
    }

    /// Fetches, parses and caches the policy of `domain` under the TXT `id`.
    async fn refresh(&self, domain: &str, id: &str) -> Result<Policy, FetchFailure> {
        let text = match tokio::time::timeout(FETCH_TIMEOUT, self.fetch(domain)).await {
            Ok(fetched) => fetched?,
            Err(_) => return Err(("sts-policy-fetch-error", "timed out".into())),
        };
        let policy = parse_policy(&text).map_err(|e| ("sts-policy-invalid", e))?;
        let fetched_at = now();
        let entry = CachedStsPolicy {
            id: id.to_string(),
            policy: text,
            fetched_at,
            expires_at: fetched_at.saturating_add(policy.max_age),
        };
        if let Err(e) = self.store.put_mta_sts_policy(domain, &entry).await {
            tracing::warn!("MTA-STS: cannot cache the policy of {domain}: {e}");
        }
        Ok(policy)
    }

    /// Refreshes a policy still in force without holding up delivery; one fetch per domain
    /// at a time.
    fn refresh_in_background(&self, domain: &str, id: &str) {
        let Ok(mut refreshing) = self.refreshing.lock() else {
            return;
        };
        if !refreshing.insert(domain.to_string()) {
            return;
        }
        drop(refreshing);
        let this = self.clone();
        let (domain, id) = (domain.to_string(), id.to_string());
        tokio::spawn(async move {
            if let Err((kind, why)) = this.refresh(&domain, &id).await {
                tracing::info!("MTA-STS: refreshing the policy of {domain} failed ({kind}: {why})");
            }
            if let Ok(mut refreshing) = this.refreshing.lock() {
                refreshing.remove(&domain);
            }
        });
    }

    /// GET `https://mta-sts.<domain>/.well-known/mta-sts.txt` (RFC 8461 §3.3).
    async fn fetch(&self, domain: &str) -> Result<String, FetchFailure> {
        let fetch_error = |why: String| ("sts-policy-fetch-error", why);
        let host = format!("mta-sts.{domain}");
        let ips = self
            .dns
            .addresses(&host)
            .await
            .map_err(|e| fetch_error(e.to_string()))?;
        let mut last = fetch_error(format!("{host} has no address"));
        for ip in ips.into_iter().take(MAX_POLICY_ADDRESSES) {
            let addr = SocketAddr::new(ip, self.port);
            match self.fetch_from(&host, addr).await {
                Ok(text) => return Ok(text),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn fetch_from(&self, host: &str, addr: SocketAddr) -> Result<String, FetchFailure> {
        let fetch_error = |why: String| ("sts-policy-fetch-error", why);
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| fetch_error(format!("cannot connect to {host} [{addr}]: {e}")))?;
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| fetch_error(format!("{host}: {e}")))?;
        let tls = TlsConnector::from(self.https.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| {
                let certificate = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                    .is_some_and(|e| matches!(e, rustls::Error::InvalidCertificate(_)));
                let kind = if certificate {
                    "sts-webpki-invalid"
                } else {
                    "sts-policy-fetch-error"
                };
                (kind, format!("TLS with {host} [{addr}]: {e}"))
            })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| fetch_error(format!("HTTP with {host}: {e}")))?;
        let request = hyper::Request::get("/.well-known/mta-sts.txt")
            .header(hyper::header::HOST, host)
            .header(hyper::header::USER_AGENT, "mailroom")
            .body(Empty::<Bytes>::new())
            .map_err(|e| fetch_error(e.to_string()))?;
        let exchange = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| fetch_error(format!("HTTP with {host}: {e}")))?;
            let status = response.status();
            if status != hyper::StatusCode::OK {
                // Redirects included: RFC 8461 §3.3 forbids following them.
                return Err(fetch_error(format!("{host} answered {status}")));
            }
            let media_type = response
                .headers()
                .get(hyper::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .map(|v| v.trim().to_ascii_lowercase());
            if media_type.as_deref() != Some("text/plain") {
                return Err((
                    "sts-policy-invalid",
                    format!(
                        "{host} served the policy as {}, not text/plain",
                        media_type.as_deref().unwrap_or("no media type")
                    ),
                ));
            }
            let body = Limited::new(response.into_body(), MAX_POLICY_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    (
                        "sts-policy-invalid",
                        format!("policy of {host}: {e} (at most 64 KiB)"),
                    )
                })?
                .to_bytes();
            String::from_utf8(body.to_vec()).map_err(|_| {
                (
                    "sts-policy-invalid",
                    format!("policy of {host} is not UTF-8"),
                )
            })
        };
        // The connection is driven beside the exchange; if it ends first (the peer closed
        // after its answer), the exchange finishes on what was received.
        let mut exchange = std::pin::pin!(exchange);
        let mut conn = std::pin::pin!(conn);
        tokio::select! {
            result = &mut exchange => result,
            _ = &mut conn => exchange.await,
        }
    }

    /// Opens a session with the MX `mx_host` at `addr` for mail to `domain` under `applied`,
    /// and counts its TLS result. `Err` is the reason this address was not used (for the
    /// deferral text when no MX takes the mail).
    pub async fn connect(
        &self,
        applied: &Applied,
        domain: &str,
        settings: &ClientSettings,
        mx_host: &str,
        addr: SocketAddr,
    ) -> Result<Client, String> {
        let where_ = format!("{mx_host} [{addr}]");
        let (policy_type, strings): (TlsPolicyType, &[String]) = match applied {
            Applied::NoPolicy => (TlsPolicyType::NoPolicyFound, &[]),
            Applied::Policy(p) => (TlsPolicyType::Sts, &p.strings),
            Applied::Unusable { .. } => (TlsPolicyType::Sts, &[]),
        };
        let session = TlsAttempt {
            policy_domain: domain,
            policy_type,
            policy_strings: strings,
            mx_host,
            receiving_ip: Some(addr.ip()),
            failure: None,
        };
        // What the domain's trouble was, if it had any before the session.
        let prior: Option<(&str, String)> = match applied {
            Applied::Policy(p) if !p.matches(mx_host) => Some((
                "validation-failure",
                format!("MX host {mx_host} is not listed in the MTA-STS policy"),
            )),
            Applied::Unusable {
                result_type,
                detail,
            } => Some((result_type, detail.clone())),
            _ => None,
        };
        if applied.enforced()
            && let Some((kind, why)) = &prior
        {
            self.note(&session, Some((kind, why))).await;
            return Err(format!(
                "{where_}: MTA-STS policy of {domain} (enforce): {why}"
            ));
        }
        let verify = matches!(applied, Applied::Policy(_)) || settings.require_tls;
        if verify {
            let mut strict = settings.clone();
            strict.require_tls = true;
            match Client::connect(&strict, addr, mx_host, true).await {
                Ok(client) => {
                    let (kind, why) = prior.as_ref().map_or((None, ""), |(k, w)| (Some(*k), w));
                    self.note(&session, kind.map(|k| (k, why))).await;
                    return Ok(client);
                }
                Err(e) => {
                    let Some(kind) = e.tls_result_type() else {
                        return Err(format!("{where_}: {e}"));
                    };
                    let (kind, why) = match &prior {
                        Some((k, w)) => (*k, w.clone()),
                        None => (kind, e.to_string()),
                    };
                    self.note(&session, Some((kind, &why))).await;
                    if applied.enforced() {
                        return Err(format!(
                            "{where_}: MTA-STS policy of {domain} (enforce): {e}"
                        ));
                    }
                    if settings.require_tls {
                        return Err(format!("{where_}: {e}"));
                    }
                    tracing::info!(
                        "queue: {where_} failed the MTA-STS policy of {domain} (testing): {e}; \
                         delivering as without a policy"
                    );
                    return opportunistic(settings, addr, mx_host)
                        .await
                        .map(|(client, _)| client)
                        .map_err(|e| format!("{where_}: {e}"));
                }
            }
        }
        match opportunistic(settings, addr, mx_host).await {
            Ok((client, tls_failure)) => {
                let failure = match (&prior, &tls_failure, &client.tls) {
                    (Some((kind, why)), _, _) => Some((*kind, why.clone())),
                    (None, Some(e), _) => Some(("validation-failure", e.clone())),
                    (None, None, None) => Some((
                        "starttls-not-supported",
                        "the MX does not offer STARTTLS".to_string(),
                    )),
                    (None, None, Some(_)) => None,
                };
                self.note(&session, failure.as_ref().map(|(k, w)| (*k, w.as_str())))
                    .await;
                Ok(client)
            }
            Err(e) => Err(format!("{where_}: {e}")),
        }
    }
}

impl MtaSts {
    /// Counts one session's TLS result; a store error is logged, never in delivery's way.
    async fn note(&self, session: &TlsAttempt<'_>, failure: Option<(&str, &str)>) {
        let attempt = TlsAttempt {
            failure,
            ..*session
        };
        if let Err(e) = self.store.note_tls_attempt(&attempt, now()).await {
            tracing::warn!("queue: cannot count a TLS result: {e}");
        }
    }
}

/// Opportunistic TLS: STARTTLS when offered, any certificate; a failed handshake is tried
/// again without TLS, as delivery must not stop for it. Also returns the failed handshake's
/// error.
async fn opportunistic(
    settings: &ClientSettings,
    addr: SocketAddr,
    mx_host: &str,
) -> Result<(Client, Option<String>), ClientError> {
    match Client::connect(settings, addr, mx_host, true).await {
        Err(ClientError::Tls(e)) | Err(ClientError::Certificate(_, e)) => {
            tracing::info!("queue: TLS with {mx_host} failed ({e}); trying without");
            let client = Client::connect(settings, addr, mx_host, false).await?;
            Ok((client, Some(e)))
        }
        Err(e) => Err(e),
        Ok(client) => Ok((client, None)),
    }
}

/// The certificates of `[queue] ca_file`, PEM; an error names the file.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("[queue] ca_file {}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("[queue] ca_file {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "[queue] ca_file {}: no certificate in it",
            path.display()
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n\
                        mx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n";

    #[test]
    fn parses_the_rfc_example() {
        let p = parse_policy(GOOD).unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(
            p.mx,
            ["mail.example.com", "*.example.net", "backupmx.example.com"]
        );
        assert_eq!(p.max_age, 604_800);
        assert_eq!(p.strings.len(), 6);
        assert_eq!(p.strings[0], "version: STSv1");
        // LF only, spaces, unknown fields, a repeated field (the first counts).
        let p = parse_policy(
            "version:STSv1\nmode : testing\nmode: enforce\nextension: yes\nmx:MX.Example.ORG.\nmax_age:  86400  \n\n",
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Testing);
        assert_eq!(p.mx, ["mx.example.org"]);
        assert_eq!(p.max_age, 86_400);
        // mode none needs no mx.
        let p = parse_policy("version: STSv1\nmode: none\nmax_age: 1\n").unwrap();
        assert_eq!(p.mode, Mode::None);
        // max_age is bounded to a year.
        let p = parse_policy("version: STSv1\nmode: testing\nmx: a.test\nmax_age: 99999999999\n")
            .unwrap();
        assert_eq!(p.max_age, MAX_MAX_AGE);
    }

    #[test]
    fn refuses_bad_policies() {
        for bad in [
            "",
            "version: STSv2\nmode: enforce\nmx: a.test\nmax_age: 1\n",
            "mode: enforce\nmx: a.test\nmax_age: 1\n",
            "version: STSv1\nmode: strict\nmx: a.test\nmax_age: 1\n",
            "version: STSv1\nmx: a.test\nmax_age: 1\n",
            "version: STSv1\nmode: enforce\nmax_age: 1\n",
            "version: STSv1\nmode: enforce\nmx: a.test\n",
            "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: -1\n",
            "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 1 day\n",
            "version: STSv1\nmode: enforce\nmx: a..test\nmax_age: 1\n",
            "version: STSv1\nmode: enforce\nmx: *.\nmax_age: 1\n",
            "version: STSv1\nmode: enforce\nmx: a_b.test\nmax_age: 1\n",
            "version: STSv1\nmode: enforce\nno colon here\nmx: a.test\nmax_age: 1\n",
            "<html>Not found</html>",
        ] {
            assert!(parse_policy(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn matches_mx_hosts() {
        let p = parse_policy(GOOD).unwrap();
        assert!(p.matches("mail.example.com"));
        assert!(p.matches("MAIL.example.com."));
        assert!(p.matches("mx1.example.net"));
        assert!(p.matches("backupmx.example.com"));
        // A wildcard covers exactly one label.
        assert!(!p.matches("example.net"));
        assert!(!p.matches("a.b.example.net"));
        assert!(!p.matches(".example.net"));
        assert!(!p.matches("mail.example.com.evil.test"));
        assert!(!p.matches("other.example.com"));
        assert!(!p.matches("xmail.example.com"));
    }

    #[test]
    fn reads_the_txt_record() {
        let id = |records: &[&str]| {
            record_id(&records.iter().map(|r| r.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(
            id(&["v=STSv1; id=20160831085700Z;"]).as_deref(),
            Some("20160831085700Z")
        );
        assert_eq!(
            id(&["v=spf1 -all", "v=STSv1;id=abc"]).as_deref(),
            Some("abc")
        );
        assert_eq!(id(&[]), None);
        assert_eq!(id(&["v=spf1 -all"]), None);
        // Two STS records: no policy (RFC 8461 §3.1).
        assert_eq!(id(&["v=STSv1; id=a", "v=STSv1; id=b"]), None);
        // Ids are 1 to 32 letters and digits.
        assert_eq!(id(&["v=STSv1; id=a-b"]), None);
        assert_eq!(id(&[&format!("v=STSv1; id={}", "a".repeat(33))]), None);
        assert_eq!(id(&["v=STSv1;"]), None);
    }
}
