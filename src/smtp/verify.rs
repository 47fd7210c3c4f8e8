//! Inbound authentication on port 25: SPF (HELO and MAIL FROM), DKIM, ARC and DMARC through
//! mail-auth, on the same hickory resolver (and cache) as the outbound queue. The verdict is
//! recorded in an `Authentication-Results:` field (RFC 8601) added at delivery; a DMARC failure
//! of a domain that publishes `p=reject` is refused when `[inbound] dmarc_reject` says so.

use std::net::IpAddr;

use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimError;
use mail_auth::dmarc::Policy;
use mail_auth::{
    ArcOutput, AuthenticatedMessage, AuthenticationResults, DkimOutput, DkimResult, DmarcOutput,
    DmarcResult, Error, MessageAuthenticator, SpfOutput, SpfResult, dmarc::verify::DmarcParameters,
    spf::verify::SpfParameters,
};

use crate::dns::Dns;
use crate::spam::verdict::{Auth, Outcome};

/// What the checks found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The `Authentication-Results:` field, CRLF-terminated.
    pub header: String,
    /// Set when the message must be refused: the reason for the `550 5.7.1`.
    pub reject: Option<String>,
    /// What the spam filter weighs: the outcomes, the domains verified by DKIM, and the
    /// envelope sender's domain when SPF passed.
    pub auth: crate::spam::verdict::Auth,
    pub dkim_domains: Vec<String>,
    pub spf_domain: Option<String>,
}

#[derive(Clone)]
pub struct Verifier {
    authenticator: MessageAuthenticator,
    hostname: String,
    dmarc_reject: bool,
}

impl Verifier {
    pub fn new(dns: &Dns, hostname: String, dmarc_reject: bool) -> Verifier {
        Verifier {
            authenticator: MessageAuthenticator(dns.resolver().clone()),
            hostname,
            dmarc_reject,
        }
    }

    /// Checks `message` received from `ip`, which said `helo` and `MAIL FROM:<mail_from>`.
    pub async fn verify(&self, ip: IpAddr, helo: &str, mail_from: &str, message: &[u8]) -> Verdict {
        let spf = self.spf(ip, helo, mail_from).await;
        let spf_outcome = match spf.result() {
            SpfResult::Pass => Outcome::Pass,
            SpfResult::Fail | SpfResult::SoftFail => Outcome::Fail,
            _ => Outcome::None,
        };
        let spf_domain = (spf_outcome == Outcome::Pass).then(|| spf.domain().to_ascii_lowercase());
        let Some(parsed) = AuthenticatedMessage::parse(message) else {
            // Nothing to check DKIM or DMARC against (no header section worth the name).
            return Verdict {
                header: self.spf_results(&spf, ip, helo, mail_from).to_header(),
                reject: None,
                auth: Auth {
                    checked: true,
                    spf: spf_outcome,
                    ..Auth::default()
                },
                dkim_domains: Vec::new(),
                spf_domain,
            };
        };
        let checked = self.check(&spf, ip, helo, mail_from, &parsed).await;
        let (dkim, dmarc) = (&checked.dkim, &checked.dmarc);
        let header = checked.results.to_header();
        let failed = dmarc.dkim_result() != &DmarcResult::Pass
            && dmarc.spf_result() != &DmarcResult::Pass
            && matches!(dmarc.result(), DmarcResult::Fail(_));
        let reject = (self.dmarc_reject && failed && dmarc.policy() == Policy::Reject).then(|| {
            format!(
                "Message rejected: it fails the DMARC policy of {} (p=reject)",
                dmarc.domain()
            )
        });
        let dkim_domains: Vec<String> = dkim
            .iter()
            .filter(|o| o.result() == &DkimResult::Pass)
            .filter_map(|o| o.signature().map(|s| s.d.to_ascii_lowercase()))
            .collect();
        let dkim_outcome = if !dkim_domains.is_empty() {
            Outcome::Pass
        } else if dkim
            .iter()
            .any(|o| matches!(o.result(), DkimResult::Fail(_)))
        {
            Outcome::Fail
        } else {
            Outcome::None
        };
        let dmarc_outcome = match dmarc.result() {
            DmarcResult::Pass => Outcome::Pass,
            DmarcResult::Fail(_) => Outcome::Fail,
            _ => Outcome::None,
        };
        Verdict {
            header,
            reject,
            auth: Auth {
                checked: true,
                spf: spf_outcome,
                dkim: dkim_outcome,
                dmarc: dmarc_outcome,
            },
            dkim_domains,
            spf_domain,
        }
    }

    /// The ARC set (RFC 8617) to prepend to `forwarded`, the copy of a message from `ip` that
    /// we send on (an alias's remote target, a Sieve redirect), sealed with `key`, the
    /// forwarding domain's: the checks are made again on the copy (their DNS answers are
    /// cached from [`Verifier::verify`] moments before), since the sealed results must be
    /// ours about this very message. `None` when the copy cannot be sealed: no header
    /// section, or a chain that arrived already broken (§5.1.2: a failed chain is not
    /// sealed again).
    pub async fn seal(
        &self,
        ip: IpAddr,
        helo: &str,
        mail_from: &str,
        forwarded: &[u8],
        key: &crate::dkim::ArcKey,
    ) -> Option<String> {
        let parsed = AuthenticatedMessage::parse(forwarded)?;
        let spf = self.spf(ip, helo, mail_from).await;
        let checked = self.check(&spf, ip, helo, mail_from, &parsed).await;
        if !checked.arc.can_be_sealed() {
            return None;
        }
        match key.seal(&parsed, &checked.results, &checked.arc) {
            Ok(set) => Some(set),
            Err(e) => {
                tracing::warn!("inbound: cannot seal a forwarded message: {e}");
                None
            }
        }
    }

    async fn spf(&self, ip: IpAddr, helo: &str, mail_from: &str) -> SpfOutput {
        let host = self.hostname.as_str();
        if mail_from.is_empty() {
            self.authenticator
                .verify_spf(SpfParameters::verify_ehlo(ip, helo, host))
                .await
        } else {
            self.authenticator
                .verify_spf(SpfParameters::verify_mail_from(ip, helo, host, mail_from))
                .await
        }
    }

    fn spf_results(
        &self,
        spf: &SpfOutput,
        ip: IpAddr,
        helo: &str,
        mail_from: &str,
    ) -> AuthenticationResults<'_> {
        let results = AuthenticationResults::new(&self.hostname);
        if mail_from.is_empty() {
            results.with_spf_ehlo_result(spf, ip, helo)
        } else {
            results.with_spf_mailfrom_result(spf, ip, mail_from, helo)
        }
    }

    /// DKIM, ARC and DMARC of a parsed message, and every result in one
    /// `Authentication-Results` (SPF's from `spf`).
    async fn check<'a>(
        &'a self,
        spf: &SpfOutput,
        ip: IpAddr,
        helo: &str,
        mail_from: &str,
        parsed: &'a AuthenticatedMessage<'a>,
    ) -> Checked<'a> {
        let dkim: Vec<_> = self
            .authenticator
            .verify_dkim(parsed)
            .await
            .into_iter()
            .map(|output| body_hash_mismatch_fails(output, parsed))
            .collect();
        let arc = self.authenticator.verify_arc(parsed).await;
        let mail_from_domain = mail_from
            .rsplit_once('@')
            .map_or(helo, |(_, domain)| domain);
        let dmarc = self
            .authenticator
            .verify_dmarc(DmarcParameters::new(parsed, &dkim, mail_from_domain, spf))
            .await;
        let header_from = parsed.from.first().map_or("", |f| f.as_str());
        let results = self
            .spf_results(spf, ip, helo, mail_from)
            .with_dkim_results(&dkim, header_from)
            .with_arc_result(&arc, ip)
            .with_dmarc_result(&dmarc);
        Checked {
            results,
            dkim,
            arc,
            dmarc,
        }
    }
}

/// What [`Verifier::check`] found about one message.
struct Checked<'a> {
    results: AuthenticationResults<'a>,
    dkim: Vec<DkimOutput<'a>>,
    arc: ArcOutput<'a>,
    dmarc: DmarcOutput,
}

/// A body that does not match its signature's body hash is a failed verification (RFC 6376
/// §6.1.3: PERMFAIL), reported as `dkim=fail`; mail-auth reports it as `neutral`, which
/// filters and users read as "unsigned" rather than "altered".
fn body_hash_mismatch_fails<'x>(
    output: DkimOutput<'x>,
    message: &'x AuthenticatedMessage<'x>,
) -> DkimOutput<'x> {
    let mismatch = Error::Dkim(DkimError::FailedBodyHashMatch);
    if output.result() != &DkimResult::Neutral(mismatch.clone()) {
        return output;
    }
    // The same signature, borrowed from the message for as long as the output lives.
    let signature = output.signature().and_then(|s| {
        message
            .dkim_headers
            .iter()
            .map(|h| &h.header)
            .find(|h| *h == s)
    });
    match signature {
        Some(signature) => DkimOutput::fail(mismatch).with_signature(signature),
        None => output,
    }
}

/// `message` without the fields only we may write: `Authentication-Results:` fields whose
/// authserv-id is `hostname` (RFC 8601 §5) and the spam filter's `X-Mailroom-Spam:`. Such
/// fields from outside are forgeries.
pub fn strip_forged(message: &[u8], hostname: &str) -> Vec<u8> {
    crate::mime::drop_fields(message, |field| {
        is_our_results(field, hostname) || crate::spam::verdict::is_field(field)
    })
}

fn is_our_results(field: &[u8], hostname: &str) -> bool {
    let Some(colon) = field.iter().position(|b| *b == b':') else {
        return false;
    };
    let (name, value) = field.split_at(colon);
    if !name
        .trim_ascii()
        .eq_ignore_ascii_case(b"authentication-results")
    {
        return false;
    }
    let value = String::from_utf8_lossy(value.get(1..).unwrap_or_default());
    let authserv = value
        .split(';')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .next()
        .unwrap_or("");
    authserv.eq_ignore_ascii_case(hostname)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_results_for_our_name_are_removed_and_others_kept() {
        let m = b"Authentication-Results: mx.example.org;\r\n\tdkim=pass header.d=bank.test\r\n\
Authentication-Results: other.test; spf=fail\r\n\
authentication-results:MX.EXAMPLE.ORG 1; dmarc=pass\r\n\
Subject: hi\r\n\r\nAuthentication-Results: mx.example.org; in the body stays\r\n";
        let out = String::from_utf8(strip_forged(m, "mx.example.org")).unwrap();
        assert_eq!(
            out,
            "Authentication-Results: other.test; spf=fail\r\nSubject: hi\r\n\r\n\
Authentication-Results: mx.example.org; in the body stays\r\n"
        );
    }
}
