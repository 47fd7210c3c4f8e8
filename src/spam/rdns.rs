//! Forward-confirmed reverse DNS (FCrDNS): the client's address has a PTR name, and that name's
//! addresses include the client's. Mail servers nearly always have it; botnets on home
//! connections mostly do not (their PTR, if any, is the provider's generic name, often
//! confirmed too, which is why this is one signal among several).

use std::net::IpAddr;
use std::time::Duration;

use crate::dns::{Dns, DnsError};

/// PTR names whose addresses are looked up, at most (a PTR record set is usually one name).
pub const MAX_NAMES: usize = 3;
/// The whole check (PTR, then the names' addresses at once) ends by then: [`Rdns::Unknown`].
pub const DEADLINE: Duration = Duration::from_secs(4);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rdns {
    /// This PTR name has the address among its own.
    Verified(String),
    /// PTR names exist, but none of the first [`MAX_NAMES`] has the address.
    Mismatch,
    /// The address has no PTR name.
    Missing,
    /// DNS did not answer in time or failed (nothing to hold against the client).
    Unknown,
}

/// Checks `ip`'s reverse DNS, forward-confirmed, within [`DEADLINE`].
pub async fn fcrdns(dns: &Dns, ip: IpAddr) -> Rdns {
    let ip = ip.to_canonical();
    tokio::time::timeout(DEADLINE, confirm(dns, ip))
        .await
        .unwrap_or(Rdns::Unknown)
}

async fn confirm(dns: &Dns, ip: IpAddr) -> Rdns {
    let names = match dns.ptr(ip).await {
        Ok(names) => names,
        Err(e) => {
            tracing::debug!("rdns: {e}");
            return Rdns::Unknown;
        }
    };
    if names.is_empty() {
        return Rdns::Missing;
    }
    // A PTR "name" spelled as an address would confirm itself without any lookup.
    let names = names
        .into_iter()
        .filter(|name| name.parse::<IpAddr>().is_err())
        .take(MAX_NAMES);
    let answers = futures::future::join_all(names.map(|name| async move {
        let found = dns.addresses(&name).await;
        (name, found)
    }))
    .await;
    let mut failed = false;
    for (name, found) in answers {
        match found {
            Ok(addresses) if addresses.iter().any(|a| a.to_canonical() == ip) => {
                return Rdns::Verified(name);
            }
            Ok(_) | Err(DnsError::NoSuchDomain(_) | DnsError::NullMx(_)) => {}
            Err(DnsError::Temporary(..)) => failed = true,
        }
    }
    if failed {
        Rdns::Unknown
    } else {
        Rdns::Mismatch
    }
}
