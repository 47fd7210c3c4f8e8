//! DANE for outbound SMTP (RFC 7672): which MX hosts of a destination must be reached over
//! TLS with a certificate their DNSSEC-signed TLSA records match.
//!
//! For each attempt, [`Dane::destination`] asks whether the destination's MX RRset is secure
//! (RFC 7672 §2.2: only then are the MX host names trustworthy); for each MX host,
//! [`Dane::host`] whether its address records are secure (§2.2.2) and then its TLSA records
//! at `_<port>._tcp.<host>` (§2.2.1). Usable records (DANE-TA, DANE-EE) make STARTTLS
//! mandatory with [`crate::smtp::dane::DaneVerifier`]; a secure RRset of only unusable records
//! makes STARTTLS mandatory without a certificate check (§2.2: "encrypt"); bogus or failed
//! lookups of a secure host skip that host. Unsigned destinations and hosts, and secure ones
//! without TLSA records, take the normal path (opportunistic TLS, MTA-STS). The lookups go
//! through [`crate::dns::secure::Validating`]; while it cannot validate the root's keys at all
//! (the resolvers strip DNSSEC), DANE stays off, re-checked every [`PROBE_EVERY`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hickory_resolver::proto::rr::{RData, RecordType};
use rustls::ClientConfig;

use crate::dns::secure::{SecureError, Security, Validating};
use crate::smtp::client::{Client, ClientError, ClientSettings, config_with_verifier};
use crate::smtp::dane::{DaneVerifier, MAX_RECORDS, Tlsa};
use crate::store::{TlsAttempt, TlsPolicyType, now};

/// How often DANE asks again whether DNSSEC validation works, while it has not yet.
pub const PROBE_EVERY: Duration = Duration::from_secs(300);

/// DANE's view of one destination's MX RRset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// DANE is off (configured off, or DNSSEC cannot be validated here).
    Off,
    /// The MX RRset (or its absence) is not proven: no DANE for any of its hosts.
    Unsigned,
    /// The MX RRset is secure: each host's TLSA records decide.
    Signed,
    /// The MX lookup is bogus or failed when validated: nothing is sent (RFC 7672 §2.1.1).
    Refused(String),
}

/// DANE's verdict for one MX host of a signed destination.
#[derive(Clone)]
pub enum Host {
    /// No DANE for this host: the normal path.
    NotApplicable,
    /// Usable TLSA records: STARTTLS is required and the certificate must match them.
    Authenticate {
        config: Arc<ClientConfig>,
        verifier: Arc<DaneVerifier>,
        records: Vec<String>,
    },
    /// A secure TLSA RRset with no usable record: STARTTLS required, certificate unchecked.
    Encrypt { records: Vec<String> },
    /// Bogus or failed lookups for a host that should be authenticated: skip it.
    Refused {
        result_type: &'static str,
        why: String,
    },
}

impl Host {
    /// The TLSA records as text (the TLS report's policy strings); empty when DANE does not
    /// apply.
    pub fn policy_strings(&self) -> &[String] {
        match self {
            Host::Authenticate { records, .. } | Host::Encrypt { records } => records,
            Host::NotApplicable | Host::Refused { .. } => &[],
        }
    }

    /// True when this host is reached only under DANE's rules (TLS required, no fallback).
    pub fn applies(&self) -> bool {
        !matches!(self, Host::NotApplicable)
    }

    /// The RFC 8460 result type and a detail of a failed DANE connection (`error` from the
    /// client): the verifier's verdict on the chain when it refused one.
    pub fn failure_of(&self, error: &ClientError) -> (&'static str, String) {
        if let Host::Authenticate { verifier, .. } = self
            && let Some(mismatch) = verifier.mismatch()
        {
            return (mismatch.result_type, mismatch.detail);
        }
        // Not about TLS (the connection failed, say): the session could not be validated.
        let result_type = error.tls_result_type().unwrap_or("validation-failure");
        (result_type, error.to_string())
    }
}

/// The DANE part of the outbound queue.
#[derive(Clone)]
pub struct Dane {
    validating: Validating,
    enabled: bool,
    /// The port TLSA records are looked up for (`_<port>._tcp`): the port connected to.
    port: u16,
    /// Set once the root's keys have validated: from then on DANE stays on, so a resolver
    /// that later fails cannot switch it off (a downgrade).
    works: Arc<AtomicBool>,
    /// When validation was last found not to work; held across the probe so that concurrent
    /// deliveries wait for its answer instead of going without DANE.
    last_probe: Arc<tokio::sync::Mutex<Option<Instant>>>,
}

impl Dane {
    pub fn new(validating: Validating, enabled: bool, port: u16) -> Dane {
        Dane {
            validating,
            enabled,
            port,
            works: Arc::new(AtomicBool::new(false)),
            last_probe: Arc::new(tokio::sync::Mutex::new(None)),
        }
    }

    /// True when DANE is on and DNSSEC validation works through our resolvers.
    async fn active(&self) -> bool {
        if !self.enabled {
            return false;
        }
        if self.works.load(Ordering::Relaxed) {
            return true;
        }
        let mut last = self.last_probe.lock().await;
        if self.works.load(Ordering::Relaxed) {
            return true;
        }
        if last.is_some_and(|t| t.elapsed() < PROBE_EVERY) {
            return false;
        }
        let works = self.validating.works().await;
        if works {
            self.works.store(true, Ordering::Relaxed);
            tracing::info!("queue: DNSSEC validation works; DANE is on");
        } else {
            *last = Some(Instant::now());
            tracing::warn!(
                "queue: DANE is off for now: the root's DNSSEC keys do not validate through the \
                 configured resolvers (they may strip DNSSEC records); asking again in {} s",
                PROBE_EVERY.as_secs()
            );
        }
        works
    }

    /// Whether DANE can apply to `domain`'s MX hosts (RFC 7672 §2.2).
    pub async fn destination(&self, domain: &str) -> Destination {
        if !self.active().await {
            return Destination::Off;
        }
        match self.validating.lookup(domain, RecordType::MX).await {
            Ok(answer) if answer.security == Security::Secure => Destination::Signed,
            Ok(_) => Destination::Unsigned,
            Err(e) => Destination::Refused(format!("DANE: the MX records of {e}")),
        }
    }

    /// DANE's verdict for `host`, an MX host of a [`Destination::Signed`] `domain`.
    pub async fn host(&self, domain: &str, host: &str) -> Host {
        // RFC 7672 §2.2.2: TLSA records count only for a host whose addresses are secure.
        match self.address_security(host).await {
            Ok(Security::Secure) => {}
            Ok(Security::Insecure) => return Host::NotApplicable,
            Err(e) => {
                return Host::Refused {
                    result_type: "dnssec-invalid",
                    why: format!("DANE: the address of {e}"),
                };
            }
        }
        let name = format!("_{}._tcp.{}", self.port, host.trim_end_matches('.'));
        let answer = match self.validating.lookup(&name, RecordType::TLSA).await {
            Ok(answer) => answer,
            Err(e) => {
                return Host::Refused {
                    result_type: "dnssec-invalid",
                    why: format!("DANE: the TLSA records at {e}"),
                };
            }
        };
        if answer.security != Security::Secure {
            return Host::NotApplicable;
        }
        let records: Vec<Tlsa> = answer
            .records
            .iter()
            .filter_map(|data| match data {
                RData::TLSA(tlsa) => Some(Tlsa {
                    usage: u8::from(tlsa.cert_usage),
                    selector: u8::from(tlsa.selector),
                    matching: u8::from(tlsa.matching),
                    data: tlsa.cert_data.clone(),
                }),
                _ => None,
            })
            .take(MAX_RECORDS)
            .collect();
        if records.is_empty() {
            return Host::NotApplicable;
        }
        let strings = records.iter().map(Tlsa::to_string).collect();
        let usable: Vec<Tlsa> = records.into_iter().filter(Tlsa::is_usable).collect();
        if usable.is_empty() {
            return Host::Encrypt { records: strings };
        }
        let verifier = Arc::new(DaneVerifier::new(usable, &[host, domain]));
        match config_with_verifier(verifier.clone()) {
            Some(config) => Host::Authenticate {
                config,
                verifier,
                records: strings,
            },
            None => Host::Refused {
                result_type: "validation-failure",
                why: "DANE: no TLS configuration".to_string(),
            },
        }
    }

    /// The security of `host`'s address records: its A records, or its AAAA records when it
    /// has none.
    async fn address_security(&self, host: &str) -> Result<Security, SecureError> {
        if host.parse::<std::net::IpAddr>().is_ok() {
            return Ok(Security::Insecure);
        }
        let v4 = self.validating.lookup(host, RecordType::A).await?;
        if !v4.records.is_empty() || v4.security == Security::Insecure {
            return Ok(v4.security);
        }
        Ok(self
            .validating
            .lookup(host, RecordType::AAAA)
            .await?
            .security)
    }
}

impl Dane {
    /// Connects to `addr` under `host`'s DANE rules: STARTTLS required, the certificate
    /// checked by the TLSA records (or, for [`Host::Encrypt`], not at all).
    pub async fn connect(
        &self,
        host: &Host,
        settings: &ClientSettings,
        addr: SocketAddr,
        mx_host: &str,
    ) -> Result<Client, ClientError> {
        let config = match host {
            Host::Authenticate { config, .. } => config.clone(),
            Host::Encrypt { .. } => settings.opportunistic_config(),
            Host::NotApplicable | Host::Refused { .. } => {
                return Err(ClientError::Tls("DANE does not apply".into()));
            }
        };
        Client::connect_authenticated(settings, addr, mx_host, config).await
    }
}

impl super::Outbound {
    /// Records one DANE attempt for the TLS reports (RFC 8460): the TLSA records, the host,
    /// and `failure`'s result type and detail, or success.
    pub(super) async fn dane_report(
        &self,
        domain: &str,
        host: &Host,
        mx_host: &str,
        ip: Option<IpAddr>,
        failure: Option<(&str, &str)>,
    ) {
        let records = host.policy_strings();
        if let Some((kind, why)) = failure {
            tracing::info!(
                "queue: DANE with {mx_host} ({domain}{}) failed: {kind}: {why}",
                ip.map(|ip| format!(", {ip}")).unwrap_or_default()
            );
        }
        let attempt = TlsAttempt {
            policy_domain: domain,
            policy_type: TlsPolicyType::Tlsa,
            policy_strings: records,
            mx_host,
            receiving_ip: ip,
            failure,
        };
        if let Err(e) = self.store.note_tls_attempt(&attempt, now()).await {
            tracing::warn!("queue: cannot record a TLS result: {e}");
        }
    }
}
