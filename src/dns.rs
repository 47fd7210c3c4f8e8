//! DNS for the outbound queue (and, through [`Dns::resolver`], for mail-auth's SPF, DKIM and
//! DMARC lookups): one hickory resolver, so every lookup shares one cache.
//!
//! `[dns] nameservers` points it at chosen servers (tests run a DNS server on loopback with
//! invented domains); empty means the system's `/etc/resolv.conf`.
//!
//! [`secure`]: a second, DNSSEC-validating resolver for DANE's lookups alone.

pub mod secure;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use rand::seq::SliceRandom;

use crate::config::DnsConfig;

/// The type of a record we publish and look up (`records`, the admin panel's live check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Mx,
    Txt,
    Cname,
    Srv,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Mx => "MX",
            RecordKind::Txt => "TXT",
            RecordKind::Cname => "CNAME",
            RecordKind::Srv => "SRV",
        }
    }
}

impl std::fmt::Display for RecordKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DnsError {
    /// The name does not exist: permanent.
    #[error("{0}: no such domain")]
    NoSuchDomain(String),
    /// The domain says it accepts no mail (RFC 7505): permanent.
    #[error("{0} accepts no mail (null MX)")]
    NullMx(String),
    /// Anything else (timeouts, SERVFAIL): worth retrying.
    #[error("DNS lookup for {0} failed: {1}")]
    Temporary(String, String),
}

impl DnsError {
    pub fn is_permanent(&self) -> bool {
        !matches!(self, DnsError::Temporary(..))
    }
}

/// One mail exchanger of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mx {
    pub preference: u16,
    /// The host name, without the trailing dot.
    pub host: String,
}

#[derive(Clone)]
pub struct Dns {
    resolver: TokioResolver,
    validating: secure::Validating,
}

impl Dns {
    pub fn new(config: &DnsConfig) -> anyhow::Result<Dns> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = if config.nameservers.is_empty() {
            match TokioResolver::builder(provider.clone()) {
                Ok(builder) => builder,
                Err(e) => {
                    // Local mail must keep working without DNS (a container with no
                    // resolv.conf); mail for other servers then waits in the queue.
                    tracing::warn!(
                        "no system DNS configuration ({e}); set [dns] nameservers to send mail to other servers"
                    );
                    TokioResolver::builder_with_config(
                        ResolverConfig::from_name_servers(Vec::new()),
                        provider,
                    )
                }
            }
        } else {
            let servers = config
                .nameservers
                .iter()
                .map(|addr| {
                    let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                    for connection in &mut server.connections {
                        connection.port = addr.port();
                    }
                    server
                })
                .collect();
            TokioResolver::builder_with_config(ResolverConfig::from_name_servers(servers), provider)
        };
        let options = builder.options_mut();
        options.timeout = Duration::from_secs(5);
        options.attempts = 2;
        // Names are always absolute here: never try them under a local search domain.
        options.ndots = 0;
        Ok(Dns {
            resolver: builder.build()?,
            validating: secure::Validating::new(config)?,
        })
    }

    /// The DNSSEC-validating resolver (same servers), for DANE.
    pub fn validating(&self) -> &secure::Validating {
        &self.validating
    }

    /// The resolver itself, for mail-auth (`MessageAuthenticator(dns.resolver().clone())`).
    pub fn resolver(&self) -> &TokioResolver {
        &self.resolver
    }

    /// Where mail for `domain` goes, in the order to try: by preference, shuffled among equal
    /// preferences (RFC 5321 §5.1), or the domain itself when it has no MX (implicit MX).
    pub async fn mx(&self, domain: &str) -> Result<Vec<Mx>, DnsError> {
        let name = absolute(domain);
        let lookup = match self.resolver.mx_lookup(name.as_str()).await {
            Ok(lookup) => lookup,
            Err(e) if e.is_nx_domain() => return Err(DnsError::NoSuchDomain(domain.to_string())),
            Err(e) if e.is_no_records_found() => {
                return Ok(vec![Mx {
                    preference: 0,
                    host: domain.trim_end_matches('.').to_string(),
                }]);
            }
            Err(e) => return Err(temporary(domain, &e)),
        };
        let mut hosts: Vec<Mx> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::MX(mx) => Some(Mx {
                    preference: mx.preference,
                    host: mx.exchange.to_ascii().trim_end_matches('.').to_string(),
                }),
                _ => None,
            })
            .collect();
        if hosts.len() == 1 && hosts.iter().any(|mx| mx.host.is_empty()) {
            return Err(DnsError::NullMx(domain.to_string()));
        }
        hosts.retain(|mx| !mx.host.is_empty());
        if hosts.is_empty() {
            return Ok(vec![Mx {
                preference: 0,
                host: domain.trim_end_matches('.').to_string(),
            }]);
        }
        hosts.shuffle(&mut rand::rng());
        hosts.sort_by_key(|mx| mx.preference);
        Ok(hosts)
    }

    /// The IPv4 and IPv6 addresses of `host`.
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        match self.resolver.lookup_ip(absolute(host).as_str()).await {
            Ok(lookup) => Ok(lookup.iter().collect()),
            Err(e) if e.is_nx_domain() || e.is_no_records_found() => {
                Err(DnsError::NoSuchDomain(host.to_string()))
            }
            Err(e) => Err(temporary(host, &e)),
        }
    }

    /// The TXT records at `name`, each joined from its character-strings.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        match self.resolver.txt_lookup(absolute(name).as_str()).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::TXT(txt) => Some(
                        txt.txt_data
                            .iter()
                            .map(|part| String::from_utf8_lossy(part))
                            .collect::<String>(),
                    ),
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_nx_domain() || e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(temporary(name, &e)),
        }
    }
}

impl Dns {
    /// The records of `kind` at `name` in the form [`crate::records::DnsRecord::value`] uses
    /// (MX `10 host.`, CNAME `host.`, SRV `0 1 993 host.`, TXT the joined text); empty when there
    /// are none. For the admin panel's check of the published records.
    pub async fn records(&self, name: &str, kind: RecordKind) -> Result<Vec<String>, DnsError> {
        if kind == RecordKind::Txt {
            return self.txt(name).await;
        }
        let record_type = match kind {
            RecordKind::Mx => RecordType::MX,
            RecordKind::Cname => RecordType::CNAME,
            RecordKind::Srv => RecordType::SRV,
            RecordKind::Txt => RecordType::TXT,
        };
        match self
            .resolver
            .lookup(absolute(name).as_str(), record_type)
            .await
        {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::MX(mx) => Some(format!("{} {}", mx.preference, mx.exchange.to_ascii())),
                    RData::CNAME(c) => Some(c.0.to_ascii()),
                    RData::SRV(srv) => Some(format!(
                        "{} {} {} {}",
                        srv.priority,
                        srv.weight,
                        srv.port,
                        srv.target.to_ascii()
                    )),
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_nx_domain() || e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(temporary(name, &e)),
        }
    }
}

impl Dns {
    /// The IPv4 addresses at `name` (A records only; a DNS list's answer); empty when the name
    /// or its A records do not exist.
    pub async fn ipv4(&self, name: &str) -> Result<Vec<Ipv4Addr>, DnsError> {
        match self.resolver.ipv4_lookup(absolute(name).as_str()).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::A(a) => Some(a.0),
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_nx_domain() || e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(temporary(name, &e)),
        }
    }

    /// The names the reverse zone gives `ip` (PTR records), without the trailing dot; empty
    /// when it has none.
    pub async fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, DnsError> {
        let name = reverse_name(ip);
        match self.resolver.reverse_lookup(name.as_str()).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::PTR(ptr) => Some(ptr.0.to_ascii().trim_end_matches('.').to_string()),
                    _ => None,
                })
                .filter(|host| !host.is_empty())
                .collect()),
            Err(e) if e.is_nx_domain() || e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(temporary(&name, &e)),
        }
    }
}

/// `ip` in the reversed form of the reverse zones and DNS lists (RFC 5782 §2.1, §2.4): an
/// IPv4 address's octets last to first (`4.3.2.1`), an IPv6 address's 32 nibbles last to
/// first (`b.a.9.8.…`). An IPv4-mapped IPv6 address is taken as the IPv4 address it maps.
pub fn reversed(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}")
        }
        IpAddr::V6(v6) => {
            let mut out = String::with_capacity(63);
            for byte in v6.octets().iter().rev() {
                for nibble in [byte & 0x0f, byte >> 4] {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
                }
            }
            out
        }
    }
}

/// The absolute PTR name of `ip` (`4.3.2.1.in-addr.arpa.`, `….ip6.arpa.`).
pub fn reverse_name(ip: IpAddr) -> String {
    let zone = match ip.to_canonical() {
        IpAddr::V4(_) => "in-addr.arpa.",
        IpAddr::V6(_) => "ip6.arpa.",
    };
    format!("{}.{zone}", reversed(ip))
}

fn absolute(name: &str) -> String {
    let name = name.trim();
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

fn temporary(name: &str, e: &NetError) -> DnsError {
    DnsError::Temporary(name.to_string(), e.to_string())
}

#[cfg(test)]
mod tests {
    use super::{reverse_name, reversed};

    #[test]
    fn reversed_forms() {
        assert_eq!(reversed("192.0.2.99".parse().unwrap()), "99.2.0.192");
        assert_eq!(
            reverse_name("192.0.2.99".parse().unwrap()),
            "99.2.0.192.in-addr.arpa."
        );
        // RFC 5782 §2.4's example.
        assert_eq!(
            reversed("2001:db8:1:2:3:4:567:89ab".parse().unwrap()),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2"
        );
        assert_eq!(
            reverse_name("::1".parse().unwrap()),
            format!("1{}.ip6.arpa.", ".0".repeat(31))
        );
        // A v4-mapped address is its IPv4 address.
        assert_eq!(reversed("::ffff:10.1.2.3".parse().unwrap()), "3.2.1.10");
    }
}
