//! The configuration: one TOML file, every key documented in [`DEFAULT_TOML`].
//!
//! Decisions:
//! - Unknown keys are an error (serde `deny_unknown_fields`), reported with the key's name and
//!   its line, so a typo never silently falls back to a default.
//! - With no file, the embedded default ([`Config::embedded`]) runs a local trial: everything on
//!   127.0.0.1 and unprivileged ports, a self-signed certificate, data in `./data`.
//! - Sizes accept a byte count or a string with a K/M/G/T suffix (powers of 1024), so the same
//!   parser serves `[limits] max_message_size` here and `--quota` on the command line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

/// The fully documented default configuration. `mailroom print-config` prints it, and
/// [`Config::embedded`] parses it, so the documentation and the behaviour cannot drift apart.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The name this server gives itself in SMTP greetings, Received headers and certificates.
    #[serde(default = "default_hostname")]
    pub hostname: String,
    /// The mail domain created on first start, together with `admin@<domain>`. Left out: the
    /// hostname without its first label (`mail.example.org` gives `example.org`).
    #[serde(default)]
    pub domain: String,
    /// Where the database (and the self-signed certificate, the ACME cache) live.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default)]
    pub listen: Listen,
    #[serde(default)]
    pub tls: TlsConfig,
    #[serde(default)]
    pub dns: DnsConfig,
    #[serde(default)]
    pub queue: QueueConfig,
    #[serde(default)]
    pub inbound: InboundConfig,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub web: WebConfig,
    #[serde(default)]
    pub check: CheckConfig,
}

/// The self-check (`mailroom check`, `/admin/check`): what it asks of the outside world.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckConfig {
    /// Whose MX a test connection to port 25 goes to (skipped while a smarthost is set).
    pub port25_domain: String,
    /// DNS lists asked about our addresses.
    pub ip_blocklists: Vec<String>,
    /// DNS lists asked about our domains.
    pub domain_blocklists: Vec<String>,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            port25_domain: "gmail.com".into(),
            ip_blocklists: vec![
                "zen.spamhaus.org".into(),
                "bl.spamcop.net".into(),
                "b.barracudacentral.org".into(),
            ],
            domain_blocklists: vec!["dbl.spamhaus.org".into()],
        }
    }
}

/// The web listeners' own settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// The bearer token that lets other machines read `/metrics`; loopback clients need none.
    pub metrics_token: Option<String>,
}

fn default_hostname() -> String {
    "localhost".into()
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}

/// The documented default domain for `hostname`: without its first label when it has three
/// or more (`mail.example.org` gives `example.org`), else the hostname itself.
fn default_domain(hostname: &str) -> String {
    let labels: Vec<&str> = hostname.trim_end_matches('.').split('.').collect();
    match labels.split_first() {
        Some((_, rest)) if rest.len() >= 2 => rest.join("."),
        _ => hostname.trim_end_matches('.').to_string(),
    }
}

/// One address list per protocol; an empty list turns the listener off, port 0 picks a port.
/// A key left out gets the documented trial default (loopback, unprivileged port).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    pub smtp: Vec<SocketAddr>,
    pub submission: Vec<SocketAddr>,
    pub submissions: Vec<SocketAddr>,
    pub imap: Vec<SocketAddr>,
    pub imaps: Vec<SocketAddr>,
    pub pop3: Vec<SocketAddr>,
    pub pop3s: Vec<SocketAddr>,
    pub managesieve: Vec<SocketAddr>,
    pub http: Vec<SocketAddr>,
    pub https: Vec<SocketAddr>,
}

impl Default for Listen {
    /// The listeners of `default.toml`: each on 127.0.0.1 on an unprivileged port, no HTTPS
    /// (a test keeps the two equal).
    fn default() -> Self {
        let at = |port: u16| vec![SocketAddr::from(([127, 0, 0, 1], port))];
        Listen {
            smtp: at(2525),
            submission: at(2587),
            submissions: at(2465),
            imap: at(2143),
            imaps: at(2993),
            pop3: at(2110),
            pop3s: at(2995),
            managesieve: at(24190),
            http: at(8080),
            https: Vec::new(),
        }
    }
}

impl Listen {
    /// Every listener kind with its addresses, in a fixed order.
    pub fn all(&self) -> [(&'static str, &[SocketAddr]); 10] {
        [
            ("smtp", &self.smtp),
            ("submission", &self.submission),
            ("submissions", &self.submissions),
            ("imap", &self.imap),
            ("imaps", &self.imaps),
            ("pop3", &self.pop3),
            ("pop3s", &self.pop3s),
            ("managesieve", &self.managesieve),
            ("http", &self.http),
            ("https", &self.https),
        ]
    }

    /// The same listeners, each on port 0 of 127.0.0.1: what tests use.
    pub fn ephemeral() -> Listen {
        let any: Vec<SocketAddr> = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
        Listen {
            smtp: any.clone(),
            submission: any.clone(),
            submissions: any.clone(),
            imap: any.clone(),
            imaps: any.clone(),
            pop3: any.clone(),
            pop3s: any.clone(),
            managesieve: any.clone(),
            http: any.clone(),
            https: any,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// A certificate generated once into `data_dir/tls/`, for a local trial.
    #[default]
    SelfSigned,
    /// PEM files named by `cert` and `key`, reloaded on SIGHUP.
    Files,
    /// Certificates from an ACME CA (Let's Encrypt by default) by TLS-ALPN-01.
    Acme,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    pub mode: TlsMode,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub acme_directory: String,
    pub acme_contact: Option<String>,
    /// Names to request; empty means `[hostname]`.
    pub acme_domains: Vec<String>,
    /// A PEM CA bundle to trust when talking to the ACME directory (a test CA such as pebble).
    pub acme_ca_file: Option<PathBuf>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            mode: TlsMode::SelfSigned,
            cert: None,
            key: None,
            acme_directory: "https://acme-v02.api.letsencrypt.org/directory".into(),
            acme_contact: None,
            acme_domains: Vec::new(),
            acme_ca_file: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Resolvers to ask (UDP and TCP); empty means the system's `/etc/resolv.conf`.
    pub nameservers: Vec<SocketAddr>,
    /// DNSSEC trust anchor for DANE: a file of DNSKEY records (zone-file form); none means the
    /// IANA root keys. For private roots and tests.
    pub trust_anchor: Option<std::path::PathBuf>,
}

/// Checks on mail arriving from other servers (port 25).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboundConfig {
    /// Check SPF, DKIM and DMARC and record the results in `Authentication-Results:`.
    pub verify: bool,
    /// Refuse (`550 5.7.1`) mail that fails DMARC for a domain publishing `p=reject`.
    pub dmarc_reject: bool,
    /// Refused recipients (unknown users, relaying) one client network may cause in
    /// `refused_rcpt_window_secs` before its RCPTs get `450 4.7.1`; 0 turns the limit off.
    pub refused_rcpt_limit: u32,
    pub refused_rcpt_window_secs: u64,
}

impl Default for InboundConfig {
    fn default() -> Self {
        InboundConfig {
            verify: true,
            dmarc_reject: true,
            refused_rcpt_limit: 50,
            refused_rcpt_window_secs: 900,
        }
    }
}

/// The outbound queue: how mail for other servers is delivered and retried.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// The port of other servers' MX (25 on the internet; tests point it at a local peer).
    pub smtp_port: u16,
    /// Seconds before the first retry; each later retry waits twice as long ...
    pub retry_first_secs: u64,
    /// ... up to this many seconds.
    pub retry_max_secs: u64,
    /// Seconds after which an undelivered message is given up and bounced to its sender.
    pub give_up_secs: u64,
    /// Destinations delivered to at once.
    pub concurrency: usize,
    /// Seconds to wait for a connection or for any reply of the peer.
    pub timeout_secs: u64,
    /// Refuse to deliver without TLS (and with a certificate that does not verify). Off by
    /// default, as everywhere on the internet: STARTTLS is used whenever offered.
    pub require_tls: bool,
    /// A PEM file of extra CA certificates trusted, beside the WebPKI roots, wherever outbound
    /// TLS is verified (MTA-STS policy fetches and MX certificates under an MTA-STS policy or
    /// `require_tls`): for a private CA, and for tests.
    pub ca_file: Option<PathBuf>,
    /// The HTTPS port of MTA-STS policy hosts (443 on the internet; tests point it at a local
    /// server).
    pub mta_sts_port: u16,
    /// DANE (RFC 7672): where a destination's MX host publishes DNSSEC-signed TLSA records,
    /// deliver only over TLS with a certificate they match.
    pub dane: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            smtp_port: 25,
            retry_first_secs: 300,
            retry_max_secs: 4 * 3600,
            give_up_secs: 5 * 24 * 3600,
            concurrency: 16,
            timeout_secs: 300,
            require_tls: false,
            ca_file: None,
            mta_sts_port: 443,
            dane: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Connections open at once, over every listener.
    pub max_connections: usize,
    /// Connections open at once from one IP address.
    pub max_connections_per_ip: usize,
    /// The largest message accepted by SMTP, APPEND and the webmail.
    #[serde(deserialize_with = "de_size")]
    pub max_message_size: u64,
    /// Quota given to new accounts when `--quota` is not given; 0 means unlimited.
    #[serde(deserialize_with = "de_size")]
    pub default_quota: u64,
    /// Bytes of messages being received (SMTP DATA/BDAT, IMAP APPEND) held in memory at once
    /// across all sessions, beyond 64 KiB per message; past it new data gets a temporary error.
    #[serde(deserialize_with = "de_size")]
    pub max_message_memory: u64,
    /// Seconds a web request may take.
    pub http_timeout_secs: u64,
    /// Seconds a client may take to send a request's header (and to send the next one on a
    /// kept-alive connection).
    pub http_header_timeout_secs: u64,
    /// Seconds an IMAP, POP3 or submission client may take to log in before it is disconnected.
    pub login_timeout_secs: u64,
    /// Seconds a session given to a protocol may stay open after shutdown begins.
    pub shutdown_grace_secs: u64,
    /// Free space kept on the data directory's disk: new mail that would leave less is refused
    /// with a temporary error (SMTP `452 4.3.1`). 0 turns the reserve off.
    #[serde(deserialize_with = "de_size")]
    pub min_free_space: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1000,
            max_connections_per_ip: 100,
            max_message_size: 50 << 20,
            default_quota: 0,
            max_message_memory: 128 << 20,
            http_timeout_secs: 60,
            http_header_timeout_secs: 30,
            login_timeout_secs: 180,
            shutdown_grace_secs: 10,
            min_free_space: 100 << 20,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Allow passwords over connections without TLS (never needed on the public internet).
    pub allow_plaintext: bool,
    /// Failed logins from one address for one account after which its replies slow down.
    pub slow_after: u32,
    /// Failed logins from one address for one account after which that address is refused
    /// for that account for `lock_secs`; also the failures of an account from all addresses
    /// after which addresses it has not signed in from are slowed (never refused).
    pub lock_after: u32,
    pub lock_secs: u64,
    /// Failed logins from one address (an IPv6 /64), over all accounts, after which it is
    /// refused for every account for `lock_secs`.
    pub ip_lock_after: u32,
    /// The longest a slowed reply waits.
    pub max_delay_secs: u64,
    /// A failure count is forgotten this many seconds after its last failure.
    pub window_secs: u64,
    /// How long a verified password is remembered for the mail protocols' logins (see
    /// `auth::cache`); 0 turns the credentials cache off.
    pub cache_secs: u64,
    /// The most verified passwords remembered at once (a few dozen bytes each).
    pub cache_entries: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            allow_plaintext: false,
            slow_after: 3,
            lock_after: 10,
            lock_secs: 900,
            ip_lock_after: 30,
            max_delay_secs: 10,
            window_secs: 900,
            cache_secs: 300,
            cache_entries: 10_000,
        }
    }
}

impl Config {
    /// The embedded default: the documented default file, parsed.
    pub fn embedded() -> Config {
        match Config::parse(DEFAULT_TOML, Path::new("<embedded default>")) {
            Ok(config) => config,
            // The default is a constant tested by `embedded_default_parses`.
            Err(e) => unreachable!("embedded default config is invalid: {e}"),
        }
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// The file if given, the embedded default otherwise.
    pub fn load_or_default(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            Some(p) => Config::load(p),
            None => Ok(Config::embedded()),
        }
    }

    /// Parses a configuration file; keys it leaves out get their documented defaults.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: describe_toml_error(text, &e),
        })?;
        if config.domain.is_empty() {
            config.domain = default_domain(&config.hostname);
        }
        config.validate().map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if self.hostname.trim().is_empty() {
            return Err("hostname must not be empty".into());
        }
        crate::address::validate_domain(&self.domain)
            .map_err(|e| format!("domain {:?}: {e}", self.domain))?;
        if self.tls.mode == TlsMode::Files && (self.tls.cert.is_none() || self.tls.key.is_none()) {
            return Err("[tls] mode = \"files\" needs both `cert` and `key`".into());
        }
        if self.limits.max_connections == 0 || self.limits.max_connections_per_ip == 0 {
            return Err("[limits] connection limits must be at least 1".into());
        }
        if self.limits.login_timeout_secs == 0 || self.limits.http_header_timeout_secs == 0 {
            return Err(
                "[limits] login_timeout_secs and http_header_timeout_secs must be at least 1"
                    .into(),
            );
        }
        if self.auth.lock_after == 0 {
            return Err("[auth] lock_after must be at least 1".into());
        }
        if let Some(token) = &self.web.metrics_token
            && (token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(
                "[web] metrics_token must be at least 16 visible ASCII characters (no spaces)"
                    .into(),
            );
        }
        Ok(())
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("mailroom.db")
    }
}

/// A toml error as one line: "line 4, column 1: unknown field `smtpp`, expected one of …".
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().to_string();
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// Parses "1048576", "512K", "50M", "1G", "2T" (powers of 1024; a trailing "B" or "iB" is
/// allowed) and "unlimited" (0).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("unlimited") {
        return Ok(0);
    }
    let upper = t.to_ascii_uppercase();
    let upper = upper
        .strip_suffix("IB")
        .or_else(|| upper.strip_suffix('B'))
        .unwrap_or(&upper);
    let (digits, shift) = match upper.chars().last() {
        Some('K') => (&upper[..upper.len() - 1], 10),
        Some('M') => (&upper[..upper.len() - 1], 20),
        Some('G') => (&upper[..upper.len() - 1], 30),
        Some('T') => (&upper[..upper.len() - 1], 40),
        _ => (upper, 0),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a size (examples: 1048576, 500M, 2G, unlimited)"))?;
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Formats a byte count the way [`parse_size`] reads it back, for lists and messages.
pub fn format_size(n: u64) -> String {
    const UNITS: [(&str, u32); 4] = [("T", 40), ("G", 30), ("M", 20), ("K", 10)];
    for (unit, shift) in UNITS {
        let scale = 1u64 << shift;
        if n >= scale {
            return if n.is_multiple_of(scale) {
                format!("{}{unit}", n / scale)
            } else {
                format!("{:.1}{unit}", n as f64 / scale as f64)
            };
        }
    }
    format!("{n}B")
}

fn de_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Number(u64),
        Text(String),
    }
    match Size::deserialize(d)? {
        Size::Number(n) => Ok(n),
        Size::Text(s) => parse_size(&s).map_err(serde::de::Error::custom),
    }
}

/// The production configuration `mailroom init` writes: the embedded default ([`DEFAULT_TOML`],
/// comments and all) with the keys below set for this server. Made from the one default so the
/// two cannot drift; a key this function sets that is missing from the default is an error
/// (the `production_config_*` tests catch it), never silently left out.
pub fn production_toml(hostname: &str, domain: &str, data_dir: &Path) -> Result<String, String> {
    let dual_stack = |port: u16| format!("[\"[::]:{port}\"]");
    let edits: Vec<(&str, &str, String)> = vec![
        ("", "hostname", toml_string(hostname)),
        ("", "domain", toml_string(domain)),
        ("", "data_dir", toml_string(&data_dir.display().to_string())),
        ("listen", "smtp", dual_stack(25)),
        ("listen", "submission", dual_stack(587)),
        ("listen", "submissions", dual_stack(465)),
        ("listen", "imap", dual_stack(143)),
        ("listen", "imaps", dual_stack(993)),
        ("listen", "pop3", dual_stack(110)),
        ("listen", "pop3s", dual_stack(995)),
        ("listen", "managesieve", dual_stack(4190)),
        ("listen", "http", dual_stack(80)),
        ("listen", "https", dual_stack(443)),
        // Certificates from Let's Encrypt by TLS-ALPN-01 on port 443 (it must be reachable).
        ("tls", "mode", toml_string("acme")),
        (
            "tls",
            "acme_contact",
            toml_string(&format!("mailto:postmaster@{domain}")),
        ),
        (
            "tls",
            "acme_domains",
            format!(
                "[{}, {}]",
                toml_string(hostname),
                toml_string(&format!("autoconfig.{domain}"))
            ),
        ),
    ];
    let header = "# Mailroom configuration, written by `mailroom init`: the documented default\n\
                  # (`mailroom print-config`) with this server's names, the standard ports and\n\
                  # ACME certificates. \"[::]\" listens on IPv6 and IPv4 (Linux dual stack); use\n\
                  # \"0.0.0.0\" on a host without IPv6.\n";
    // The default's opening comment describes the local trial; the rest of it stays.
    let body = DEFAULT_TOML
        .split_once("\n\n")
        .map_or(DEFAULT_TOML, |(_, rest)| rest);
    let edited = set_keys(body, &edits)?;
    Ok(format!("{header}\n{edited}"))
}

/// Sets `key = value` in `text` for each (section, key, value); "" is the top level. The key's
/// line (or its commented-out example, `# key = …`) must occur exactly once in that section;
/// a comment after the value is kept.
fn set_keys(text: &str, edits: &[(&str, &str, String)]) -> Result<String, String> {
    let mut used = vec![0usize; edits.len()];
    let mut section = String::new();
    let mut out = String::with_capacity(text.len() + 256);
    for line in text.lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
        }
        let uncommented = line.strip_prefix("# ").unwrap_or(line);
        let key = uncommented
            .split_once(" =")
            .map(|(k, _)| k)
            .filter(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        let edit = key.and_then(|k| {
            edits
                .iter()
                .position(|(s, name, _)| *s == section && *name == k)
        });
        match edit {
            Some(i) => {
                let (Some((_, name, value)), Some(count)) = (edits.get(i), used.get_mut(i)) else {
                    continue;
                };
                *count += 1;
                out.push_str(&format!("{name} = {value}"));
                // A trailing comment (two spaces then '#') on an active line is kept.
                if uncommented.len() == line.len()
                    && let Some(at) = line.find("  #")
                {
                    let comment = &line[at..];
                    let width = name.len() + 3 + value.len();
                    let pad = at.saturating_sub(width).max(1);
                    out.push_str(&" ".repeat(pad));
                    out.push_str(comment.trim_start());
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    for ((section, name, _), count) in edits.iter().zip(used) {
        if count != 1 {
            let section = if section.is_empty() {
                "the top level"
            } else {
                section
            };
            return Err(format!(
                "the default configuration has {count} lines for `{name}` in {section}, expected 1"
            ));
        }
    }
    Ok(out)
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_out_keys_get_the_documented_defaults() {
        let c = Config::parse("hostname = \"mail.example.org\"\n", Path::new("t")).unwrap();
        assert_eq!(c.domain, "example.org");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        let e = Config::embedded();
        let same = |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| {
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
        };
        same(&c.listen, &e.listen);
        same(&c.tls, &e.tls);
        same(&c.dns, &e.dns);
        same(&c.queue, &e.queue);
        same(&c.inbound, &e.inbound);
        same(&c.limits, &e.limits);
        same(&c.auth, &e.auth);
        same(&c.web, &e.web);
        let c = Config::parse("[listen]\nsmtp = []\n", Path::new("t")).unwrap();
        assert_eq!(
            (c.hostname.as_str(), c.domain.as_str()),
            ("localhost", "localhost")
        );
        assert!(c.listen.smtp.is_empty());
        same(&c.listen.imap, &e.listen.imap);
        assert_eq!(default_domain("example.org"), "example.org");
        assert_eq!(default_domain("a.b.example.org."), "b.example.org");
    }

    #[test]
    fn embedded_default_parses() {
        let c = Config::embedded();
        assert_eq!(c.hostname, "localhost");
        assert_eq!(c.domain, "localhost");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.listen.smtp, vec!["127.0.0.1:2525".parse().unwrap()]);
        assert_eq!(c.listen.submission, vec!["127.0.0.1:2587".parse().unwrap()]);
        assert_eq!(
            c.listen.submissions,
            vec!["127.0.0.1:2465".parse().unwrap()]
        );
        assert_eq!(c.listen.imap, vec!["127.0.0.1:2143".parse().unwrap()]);
        assert_eq!(c.listen.imaps, vec!["127.0.0.1:2993".parse().unwrap()]);
        assert_eq!(c.listen.pop3, vec!["127.0.0.1:2110".parse().unwrap()]);
        assert_eq!(c.listen.pop3s, vec!["127.0.0.1:2995".parse().unwrap()]);
        assert_eq!(
            c.listen.managesieve,
            vec!["127.0.0.1:24190".parse().unwrap()]
        );
        assert_eq!(c.listen.http, vec!["127.0.0.1:8080".parse().unwrap()]);
        assert!(c.listen.https.is_empty());
        assert_eq!(c.tls.mode, TlsMode::SelfSigned);
        assert_eq!(c.limits.max_message_size, 50 << 20);
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let text =
            "hostname = \"a\"\ndomain = \"a.org\"\ndata_dir = \"d\"\n\n[listen]\nsmtpp = []\n";
        let err = Config::parse(text, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("smtpp"), "{err}");
        assert!(err.contains("line 6"), "{err}");
        assert!(err.starts_with("x.toml: "), "{err}");
    }

    #[test]
    fn files_mode_needs_cert_and_key() {
        let text =
            "hostname = \"a\"\ndomain = \"a.org\"\ndata_dir = \"d\"\n[tls]\nmode = \"files\"\n";
        let err = Config::parse(text, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cert"), "{err}");
    }

    #[test]
    fn metrics_tokens_are_long() {
        let base = "hostname = \"a\"\ndomain = \"a.org\"\ndata_dir = \"d\"\n[web]\n";
        let ok = format!("{base}metrics_token = \"0123456789abcdef\"\n");
        let c = Config::parse(&ok, Path::new("x.toml")).unwrap();
        assert_eq!(c.web.metrics_token.as_deref(), Some("0123456789abcdef"));
        for bad in ["short", "has spaces in it, long enough"] {
            let text = format!("{base}metrics_token = \"{bad}\"\n");
            let err = Config::parse(&text, Path::new("x.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("metrics_token"), "{err}");
        }
        assert!(Config::embedded().web.metrics_token.is_none());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("1K"), Ok(1024));
        assert_eq!(parse_size("50M"), Ok(50 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("10MB"), Ok(10 << 20));
        assert_eq!(parse_size("unlimited"), Ok(0));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("-1G").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert_eq!(format_size(1 << 30), "1G");
        assert_eq!(format_size(1536), "1.5K");
        assert_eq!(format_size(12), "12B");
    }

    #[test]
    fn sizes_in_config_take_strings_or_numbers() {
        let text = "hostname = \"a\"\ndomain = \"a.org\"\ndata_dir = \"d\"\n[limits]\nmax_message_size = \"10M\"\ndefault_quota = 4096\n";
        let c = Config::parse(text, Path::new("x.toml")).unwrap();
        assert_eq!(c.limits.max_message_size, 10 << 20);
        assert_eq!(c.limits.default_quota, 4096);
        let bad = text.replace("\"10M\"", "\"ten\"");
        let err = Config::parse(&bad, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 5"), "{err}");
    }

    #[test]
    fn production_config_differs_from_the_default_only_in_its_keys() {
        let text = production_toml(
            "mail.example.org",
            "example.org",
            Path::new("/var/lib/mailroom"),
        )
        .unwrap();
        let config = Config::parse(&text, Path::new("production")).unwrap();
        assert_eq!(config.hostname, "mail.example.org");
        assert_eq!(config.domain, "example.org");
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/mailroom"));
        assert_eq!(config.listen.smtp, vec!["[::]:25".parse().unwrap()]);
        assert_eq!(config.listen.https, vec!["[::]:443".parse().unwrap()]);
        assert_eq!(config.tls.mode, TlsMode::Acme);
        assert_eq!(
            config.tls.acme_contact.as_deref(),
            Some("mailto:postmaster@example.org")
        );
        assert_eq!(
            config.tls.acme_domains,
            ["mail.example.org", "autoconfig.example.org"]
        );

        // Everything else is the default's, key by key.
        let mut produced: toml::Table = toml::from_str(&text).unwrap();
        let mut default: toml::Table = toml::from_str(DEFAULT_TOML).unwrap();
        for key in ["hostname", "domain", "data_dir", "listen"] {
            assert!(produced.remove(key).is_some(), "{key}");
            assert!(default.remove(key).is_some(), "{key}");
        }
        for (table, set) in [(&mut produced, true), (&mut default, false)] {
            let Some(toml::Value::Table(tls)) = table.get_mut("tls") else {
                panic!("no [tls]");
            };
            for key in ["mode", "acme_contact", "acme_domains"] {
                // acme_contact is only a comment in the default.
                assert_eq!(
                    tls.remove(key).is_some(),
                    set || key != "acme_contact",
                    "{key}"
                );
            }
        }
        assert_eq!(produced, default);
        // And every listener of the default was set.
        let listen: toml::Table = toml::from_str::<toml::Table>(&text).unwrap()["listen"]
            .as_table()
            .unwrap()
            .clone();
        let default_listen: toml::Table =
            toml::from_str::<toml::Table>(DEFAULT_TOML).unwrap()["listen"]
                .as_table()
                .unwrap()
                .clone();
        assert_eq!(
            listen.keys().collect::<Vec<_>>(),
            default_listen.keys().collect::<Vec<_>>()
        );
    }

    #[test]
    fn production_config_fails_loudly_on_a_key_the_default_lacks() {
        let err = set_keys(DEFAULT_TOML, &[("listen", "smtpp", "[]".to_string())]).unwrap_err();
        assert!(err.contains("`smtpp`") && err.contains("listen"), "{err}");
        // In another section it is another key.
        assert!(set_keys(DEFAULT_TOML, &[("tls", "smtp", "[]".into())]).is_err());
        // Quotes and backslashes in a path stay one TOML string.
        let text = production_toml(
            "mail.example.org",
            "example.org",
            Path::new("/srv/a \"b\"\\c"),
        )
        .unwrap();
        let config = Config::parse(&text, Path::new("production")).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/srv/a \"b\"\\c"));
    }
}
