//! The self-check (issue 23): one list of findings that `mailroom check` prints and the admin
//! panel's `/admin/check` shows, each a status, what was found and the fix in plain words.
//!
//! What it looks at: the server's addresses (the source addresses the system would use to
//! reach the internet, found by a UDP `connect`, which sends nothing, and the hostname's A/AAAA
//! records) and their reverse DNS, forward-confirmed and matching the hostname; whether
//! outbound port 25 is open (one TCP connection to an MX of `[check] port25_domain`, skipped
//! while a smarthost is set); our addresses and domains on DNS blocklists (and whether a list
//! refuses our resolver); every DNS record of every domain (`records::check`); the
//! certificate's validity and names; the MTA-STS policy of the domains that publish one; the
//! last DMARC/TLS report summary. Nothing but DNS and that one connection leaves the machine.
//! Every check runs at once, each bounded; the whole within [`DEADLINE`].

mod probes;

use std::time::Duration;

use crate::config::CheckConfig;
use crate::dns::Dns;
use crate::store::Store;
use crate::tls::CertStatus;

/// The whole check's time limit.
pub const DEADLINE: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok,
    Warning,
    Problem,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Problem => "problem",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub status: Status,
    /// What was looked at: "Reverse DNS of 203.0.113.5".
    pub topic: String,
    /// What was found.
    pub found: String,
    /// What to do about it (empty when all is well).
    pub fix: String,
}

impl Finding {
    pub fn ok(topic: impl Into<String>, found: impl Into<String>) -> Finding {
        Finding {
            status: Status::Ok,
            topic: topic.into(),
            found: found.into(),
            fix: String::new(),
        }
    }

    pub fn warning(
        topic: impl Into<String>,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            status: Status::Warning,
            topic: topic.into(),
            found: found.into(),
            fix: fix.into(),
        }
    }

    pub fn problem(
        topic: impl Into<String>,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            status: Status::Problem,
            topic: topic.into(),
            found: found.into(),
            fix: fix.into(),
        }
    }
}

/// What the check needs of the running server (or of the CLI's view of it).
pub struct Context<'a> {
    pub store: &'a Store,
    pub dns: &'a Dns,
    pub hostname: &'a str,
    pub settings: &'a CheckConfig,
    /// The certificate as loaded; `None` when it could not be read.
    pub certificate: Option<CertStatus>,
    /// The port of other servers' MX (`[queue] smtp_port`).
    pub smtp_port: u16,
}

/// Runs every check at once; findings in a stable order, problems first within none (the
/// order of the sections is the order of the list).
pub async fn run(cx: &Context<'_>) -> Vec<Finding> {
    let all = async {
        let (addresses, port25, records, certificate, mta_sts, reports) = tokio::join!(
            probes::addresses(cx),
            probes::port25(cx),
            probes::records(cx),
            async { probes::certificate(cx) },
            probes::mta_sts(cx),
            probes::reports(cx),
        );
        let domains = probes::domain_lists(cx).await;
        [
            addresses,
            port25,
            domains,
            records,
            certificate,
            mta_sts,
            reports,
        ]
        .concat()
    };
    match tokio::time::timeout(DEADLINE, all).await {
        Ok(findings) => findings,
        Err(_) => vec![Finding::problem(
            "Self-check",
            format!("did not finish within {} seconds", DEADLINE.as_secs()),
            "The DNS resolver may be slow or unreachable: check [dns] nameservers.",
        )],
    }
}

/// The worst status among `findings` (`Ok` for none).
pub fn worst(findings: &[Finding]) -> Status {
    findings
        .iter()
        .map(|f| f.status)
        .max()
        .unwrap_or(Status::Ok)
}
