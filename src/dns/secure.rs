//! DNSSEC-validated lookups, for DANE (RFC 7672) only.
//!
//! A second hickory resolver beside [`super::Dns`]'s, asking the same servers with the DO bit
//! and validating every answer itself from a trust anchor (the IANA root keys, or
//! `[dns] trust_anchor`): no validating system resolver is needed. It is kept apart because a
//! validating resolver fails (bogus) every lookup when the servers it asks strip DNSSEC
//! records; SPF, DKIM, DMARC, DNS lists and the MX lookup itself must keep working there.
//! Only DANE needs to know whether an answer is secure, and [`Validating::works`] tells it
//! whether validation can work at all.

use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::dnssec::{Proof, TrustAnchors};
use hickory_resolver::proto::rr::{RData, Record, RecordType};

use crate::config::DnsConfig;

/// Whether an answer (records or their absence) was proven by DNSSEC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// A chain of signatures from the trust anchor proves it (RFC 4035 §4.3 "secure").
    Secure,
    /// The zone is provably unsigned, or nothing could be proven (RFC 4035 "insecure" and
    /// "indeterminate"): the answer is used, but cannot authenticate anything.
    Insecure,
}

/// A validated lookup that gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecureError {
    /// The signatures do not validate (RFC 4035 "bogus"): an attack or a broken zone.
    #[error("{0}: DNSSEC validation failed (bogus)")]
    Bogus(String),
    /// Timeouts, SERVFAIL, …: worth retrying.
    #[error("DNSSEC-validated lookup for {0} failed: {1}")]
    Temporary(String, String),
}

/// The records of one validated lookup: their data and how secure they are. No records is a
/// valid answer (the name or type does not exist), proven or not.
#[derive(Debug, Clone)]
pub struct Secured {
    pub records: Vec<RData>,
    pub security: Security,
}

/// The validating resolver.
#[derive(Clone)]
pub struct Validating {
    resolver: TokioResolver,
}

impl Validating {
    /// Reads the trust anchor (`[dns] trust_anchor`: a file of DNSKEY records in zone-file
    /// form; empty: the IANA root keys hickory carries) and builds the resolver. Asks the
    /// configured nameservers, or those of `/etc/resolv.conf`.
    pub fn new(config: &DnsConfig) -> anyhow::Result<Validating> {
        let anchors = match &config.trust_anchor {
            Some(path) if !path.as_os_str().is_empty() => TrustAnchors::from_file(path)
                .map_err(|e| anyhow::anyhow!("[dns] trust_anchor {}: {e}", path.display()))?,
            _ => TrustAnchors::default(),
        };
        let provider = TokioRuntimeProvider::default();
        let mut builder = if config.nameservers.is_empty() {
            match TokioResolver::builder(provider.clone()) {
                Ok(builder) => builder,
                // `Dns::new` has said so already; DANE then finds nothing secure.
                Err(_) => TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(Vec::new()),
                    provider,
                ),
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
        options.ndots = 0;
        options.validate = true;
        Ok(Validating {
            resolver: builder.with_trust_anchor(Arc::new(anchors)).build()?,
        })
    }

    /// True when the root's keys validate through the servers we ask: DNSSEC works here. A
    /// resolver that strips signatures (or a test server without any) makes every validated
    /// answer bogus; DANE is then left off rather than deferring all mail.
    pub async fn works(&self) -> bool {
        match self.resolver.lookup(".", RecordType::DNSKEY).await {
            Ok(lookup) => security(lookup.answers()) == Some(Security::Secure),
            Err(_) => false,
        }
    }

    /// The records of `record_type` at `name`, with their security.
    pub async fn lookup(
        &self,
        name: &str,
        record_type: RecordType,
    ) -> Result<Secured, SecureError> {
        let absolute = if name.ends_with('.') {
            name.to_string()
        } else {
            format!("{name}.")
        };
        match self.resolver.lookup(absolute.as_str(), record_type).await {
            Ok(lookup) => {
                let answers = lookup.answers();
                let security = match security(answers) {
                    Some(s) => s,
                    None if answers.iter().any(|r| r.proof == Proof::Bogus) => {
                        return Err(SecureError::Bogus(name.to_string()));
                    }
                    None => Security::Insecure,
                };
                Ok(Secured {
                    records: answers
                        .iter()
                        .filter(|r| r.record_type() == record_type)
                        .map(|r| r.data.clone())
                        .collect(),
                    security,
                })
            }
            Err(e) => negative(name, &e),
        }
    }
}

/// The security of an RRset: `Secure` only when every record (signatures aside) is; `None`
/// when one is bogus or there are none.
fn security(records: &[Record]) -> Option<Security> {
    let mut all_secure = None;
    for record in records {
        if record.record_type() == RecordType::RRSIG {
            continue;
        }
        match record.proof {
            Proof::Secure => {
                all_secure.get_or_insert(true);
            }
            Proof::Bogus => return None,
            Proof::Insecure | Proof::Indeterminate => all_secure = Some(false),
        }
    }
    all_secure.map(|secure| {
        if secure {
            Security::Secure
        } else {
            Security::Insecure
        }
    })
}

/// A lookup error: a proven or unproven "no such records", bogus, or a failure.
fn negative(name: &str, e: &NetError) -> Result<Secured, SecureError> {
    let empty = |security| {
        Ok(Secured {
            records: Vec::new(),
            security,
        })
    };
    match e {
        // A negative answer with NSEC/NSEC3 records: the proof's verdict.
        NetError::Dns(HickoryDnsError::Nsec { proof, .. }) => match proof {
            Proof::Secure => empty(Security::Secure),
            Proof::Bogus => Err(SecureError::Bogus(name.to_string())),
            Proof::Insecure | Proof::Indeterminate => empty(Security::Insecure),
        },
        NetError::Dns(HickoryDnsError::DnssecBogus) => Err(SecureError::Bogus(name.to_string())),
        // Reached only when the zone was found to be unsigned.
        e if e.is_no_records_found() => empty(Security::Insecure),
        e => Err(SecureError::Temporary(name.to_string(), e.to_string())),
    }
}
