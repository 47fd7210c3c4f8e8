//! DANE for SMTP (RFC 7672 §3, RFC 7671): which TLSA records are usable, whether a presented
//! certificate chain matches them, and the rustls verifier that makes a STARTTLS handshake
//! succeed only then. Pure (no DNS); the lookups and the policy are `queue/dane.rs`.

use std::sync::{Arc, Mutex};

use ring::digest;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// DANE-TA: the record names a trust anchor in the presented chain (RFC 7672 §3.1.2).
pub const USAGE_DANE_TA: u8 = 2;
/// DANE-EE: the record names the server's own certificate or key (RFC 7672 §3.1.1).
pub const USAGE_DANE_EE: u8 = 3;

/// TLSA records kept per MX host; more are ignored (a zone can publish any number).
pub const MAX_RECORDS: usize = 16;
/// Longest association data considered: a full certificate fits; longer records are unusable.
const MAX_DATA: usize = 16 * 1024;

/// One TLSA record (RFC 6698 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlsa {
    pub usage: u8,
    pub selector: u8,
    pub matching: u8,
    pub data: Vec<u8>,
}

impl Tlsa {
    /// Usable for SMTP: DANE-TA or DANE-EE (PKIX-TA and PKIX-EE are not, RFC 7672 §3.1.3),
    /// selector full certificate or SPKI, matching exact, SHA-256 or SHA-512, with data of
    /// the length that matching type implies.
    pub fn is_usable(&self) -> bool {
        let usage = matches!(self.usage, USAGE_DANE_TA | USAGE_DANE_EE);
        let selector = matches!(self.selector, 0 | 1);
        let length = match self.matching {
            0 => !self.data.is_empty() && self.data.len() <= MAX_DATA,
            1 => self.data.len() == 32,
            2 => self.data.len() == 64,
            _ => false,
        };
        usage && selector && length
    }

    /// True when `cert` (DER) is what this record names: the certificate or its public key
    /// (selector), as is or hashed (matching).
    pub fn matches(&self, cert: &[u8]) -> bool {
        let selected: &[u8] = match self.selector {
            0 => cert,
            1 => match x509_parser::parse_x509_certificate(cert) {
                Ok((_, parsed)) => parsed.tbs_certificate.subject_pki.raw,
                Err(_) => return false,
            },
            _ => return false,
        };
        match self.matching {
            0 => selected == self.data.as_slice(),
            1 => digest::digest(&digest::SHA256, selected).as_ref() == self.data.as_slice(),
            2 => digest::digest(&digest::SHA512, selected).as_ref() == self.data.as_slice(),
            _ => false,
        }
    }
}

impl std::fmt::Display for Tlsa {
    /// Presentation form (`3 1 1 ab12…`), as TLS reports list policy strings.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {} ", self.usage, self.selector, self.matching)?;
        for byte in &self.data {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// Why a chain did not satisfy the records: an RFC 8460 §4.3 result type and a detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub result_type: &'static str,
    pub detail: String,
}

/// Checks a presented chain against usable records: DANE-EE matches the end-entity
/// certificate, its names and dates ignored (RFC 7672 §3.1.1); DANE-TA matches a certificate
/// of the chain, which then must issue the end-entity certificate for one of `names` (the MX
/// host, the destination domain), within its validity (§3.1.2, §3.2.2).
pub fn check_chain(
    records: &[Tlsa],
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    names: &[ServerName<'static>],
    now: UnixTime,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<(), Mismatch> {
    let usable = || records.iter().filter(|r| r.is_usable());
    if usable().any(|r| r.usage == USAGE_DANE_EE && r.matches(end_entity)) {
        return Ok(());
    }
    let mut failure = Mismatch {
        result_type: "tlsa-invalid",
        detail: "no TLSA record matches the certificate".to_string(),
    };
    for anchor in intermediates.iter().take(MAX_RECORDS) {
        if !usable().any(|r| r.usage == USAGE_DANE_TA && r.matches(anchor)) {
            continue;
        }
        let mut roots = RootCertStore::empty();
        if roots.add(anchor.clone()).is_err() {
            continue;
        }
        let Ok(verifier) =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()
        else {
            continue;
        };
        for name in names {
            match verifier.verify_server_cert(end_entity, intermediates, name, &[], now) {
                Ok(_) => return Ok(()),
                Err(e) => failure = mismatch_of(&e),
            }
        }
    }
    Err(failure)
}

/// The RFC 8460 result type of a chain that a DANE-TA record's anchor did not validate.
fn mismatch_of(e: &rustls::Error) -> Mismatch {
    let result_type = match e {
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "certificate-expired",
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "certificate-host-mismatch",
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "certificate-not-trusted"
        }
        _ => "validation-failure",
    };
    let mut detail = format!("DANE-TA: {e}");
    detail.truncate(200);
    Mismatch {
        result_type,
        detail,
    }
}

/// The rustls verifier of a DANE-authenticated connection: the handshake succeeds only when
/// [`check_chain`] does. What failed is kept for the TLS report ([`DaneVerifier::mismatch`]),
/// since the handshake error itself is only text.
#[derive(Debug)]
pub struct DaneVerifier {
    records: Vec<Tlsa>,
    names: Vec<ServerName<'static>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    mismatch: Mutex<Option<Mismatch>>,
}

impl DaneVerifier {
    /// `names`: the MX host and the destination domain, for DANE-TA's name check (invalid
    /// names are left out).
    pub fn new(records: Vec<Tlsa>, names: &[&str]) -> DaneVerifier {
        DaneVerifier {
            records,
            names: names
                .iter()
                .filter_map(|n| ServerName::try_from(n.to_string()).ok())
                .collect(),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            mismatch: Mutex::new(None),
        }
    }

    /// Why the last handshake's chain was refused, if it was.
    pub fn mismatch(&self) -> Option<Mismatch> {
        self.mismatch.lock().ok().and_then(|m| m.clone())
    }
}

impl ServerCertVerifier for DaneVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match check_chain(
            &self.records,
            end_entity,
            intermediates,
            &self.names,
            now,
            &self.provider,
        ) {
            Ok(()) => Ok(ServerCertVerified::assertion()),
            Err(mismatch) => {
                let error = rustls::Error::General(format!("DANE: {}", mismatch.detail));
                if let Ok(mut slot) = self.mismatch.lock() {
                    *slot = Some(mismatch);
                }
                Err(error)
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn now() -> UnixTime {
        UnixTime::now()
    }

    fn names(list: &[&str]) -> Vec<ServerName<'static>> {
        list.iter()
            .map(|n| ServerName::try_from(n.to_string()).unwrap())
            .collect()
    }

    fn self_signed(name: &str) -> CertificateDer<'static> {
        let pair = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        pair.cert.der().clone()
    }

    fn spki(cert: &[u8]) -> Vec<u8> {
        let (_, parsed) = x509_parser::parse_x509_certificate(cert).unwrap();
        parsed.tbs_certificate.subject_pki.raw.to_vec()
    }

    fn record(usage: u8, selector: u8, matching: u8, selected: &[u8]) -> Tlsa {
        let data = match matching {
            0 => selected.to_vec(),
            1 => digest::digest(&digest::SHA256, selected).as_ref().to_vec(),
            _ => digest::digest(&digest::SHA512, selected).as_ref().to_vec(),
        };
        Tlsa {
            usage,
            selector,
            matching,
            data,
        }
    }

    /// A CA and a leaf for `leaf_name` it issued, valid until `not_after` (year).
    fn ca_and_leaf(
        leaf_name: &str,
        not_after: i32,
    ) -> (CertificateDer<'static>, CertificateDer<'static>) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Test DANE CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf_params = CertificateParams::new(vec![leaf_name.to_string()]).unwrap();
        leaf_params.not_after = rcgen::date_time_ymd(not_after, 1, 1);
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
        (ca.der().clone(), leaf.der().clone())
    }

    #[test]
    fn dane_ee_matches_certificate_or_key_in_every_matching_type() {
        let cert = self_signed("mx.example.net");
        for matching in 0..=2 {
            let by_cert = record(3, 0, matching, &cert);
            let by_key = record(3, 1, matching, &spki(&cert));
            assert!(by_cert.is_usable() && by_key.is_usable());
            assert!(by_cert.matches(&cert), "3 0 {matching}");
            assert!(by_key.matches(&cert), "3 1 {matching}");
        }
        let other = self_signed("mx.example.net");
        assert!(!record(3, 1, 1, &spki(&other)).matches(&cert));
        assert!(!record(3, 0, 1, &other).matches(&cert));
    }

    #[test]
    fn unusable_records() {
        let cert = self_signed("mx.example.net");
        let hash = spki(&cert);
        // PKIX-TA and PKIX-EE are not for SMTP (RFC 7672 §3.1.3).
        assert!(!record(0, 1, 1, &hash).is_usable());
        assert!(!record(1, 1, 1, &hash).is_usable());
        assert!(!record(4, 1, 1, &hash).is_usable());
        assert!(!record(3, 2, 1, &hash).is_usable());
        assert!(!record(3, 1, 3, &hash).is_usable());
        // A SHA-256 record of the wrong length.
        let mut short = record(3, 1, 1, &hash);
        short.data.pop();
        assert!(!short.is_usable());
        // Only unusable records: even a "matching" PKIX-EE one authenticates nothing.
        let pkix = record(1, 0, 1, &cert);
        assert!(pkix.matches(&cert));
        let result = check_chain(
            &[pkix],
            &cert,
            &[],
            &names(&["mx.example.net"]),
            now(),
            &provider(),
        );
        assert_eq!(result.unwrap_err().result_type, "tlsa-invalid");
    }

    #[test]
    fn dane_ee_ignores_names_and_dates() {
        // The certificate names another host and has expired: DANE-EE does not care.
        let (_, leaf) = ca_and_leaf("elsewhere.example.com", 2001);
        let records = [record(3, 1, 1, &spki(&leaf))];
        check_chain(
            &records,
            &leaf,
            &[],
            &names(&["mx.example.net"]),
            now(),
            &provider(),
        )
        .unwrap();
        let wrong = [record(3, 1, 1, &spki(&self_signed("x")))];
        let mismatch = check_chain(
            &wrong,
            &leaf,
            &[],
            &names(&["mx.example.net"]),
            now(),
            &provider(),
        )
        .unwrap_err();
        assert_eq!(mismatch.result_type, "tlsa-invalid");
    }

    #[test]
    fn dane_ta_needs_the_anchor_in_the_chain_a_name_and_dates() {
        let (ca, leaf) = ca_and_leaf("mx.example.net", 2090);
        let chain = [ca.clone()];
        let records = [record(2, 1, 1, &spki(&ca))];
        let mx = names(&["mx.example.net"]);
        check_chain(&records, &leaf, &chain, &mx, now(), &provider()).unwrap();
        check_chain(
            &[record(2, 0, 2, &ca)],
            &leaf,
            &chain,
            &mx,
            now(),
            &provider(),
        )
        .unwrap();
        // The destination domain is a second reference identifier.
        check_chain(
            &records,
            &leaf,
            &chain,
            &names(&["other.example.org", "mx.example.net"]),
            now(),
            &provider(),
        )
        .unwrap();
        // Not in the chain: the anchor cannot be found.
        let missing = check_chain(&records, &leaf, &[], &mx, now(), &provider()).unwrap_err();
        assert_eq!(missing.result_type, "tlsa-invalid");
        // Another name.
        let host = check_chain(
            &records,
            &leaf,
            &chain,
            &names(&["mx.example.org"]),
            now(),
            &provider(),
        )
        .unwrap_err();
        assert_eq!(host.result_type, "certificate-host-mismatch");
        // Expired.
        let (ca, leaf) = ca_and_leaf("mx.example.net", 2001);
        let expired = check_chain(
            &[record(2, 1, 1, &spki(&ca))],
            &leaf,
            &[ca],
            &mx,
            now(),
            &provider(),
        )
        .unwrap_err();
        assert_eq!(expired.result_type, "certificate-expired");
        // A DANE-TA record naming the leaf itself is not an anchor for it... but DANE-EE is.
        let (ca, leaf) = ca_and_leaf("mx.example.net", 2090);
        let as_ta = [record(2, 1, 1, &spki(&leaf))];
        assert!(check_chain(&as_ta, &leaf, &[ca], &mx, now(), &provider()).is_err());
    }

    #[test]
    fn presentation_form() {
        let r = Tlsa {
            usage: 3,
            selector: 1,
            matching: 1,
            data: vec![0xab, 0x01],
        };
        assert_eq!(r.to_string(), "3 1 1 ab01");
    }
}
