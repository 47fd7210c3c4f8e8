//! Delivery through a smarthost (a relay we log in to) instead of the recipients' MX hosts:
//! for hosts whose provider blocks outbound port 25. The relay is the sending domain's own,
//! else the global one (`Store::smarthost_for`); without one, mail goes by MX.
//!
//! Failures that are our configuration's (the relay unreachable, its certificate, refused
//! credentials) defer with the reason, never bounce; only the relay's own permanent answers
//! to the envelope (MAIL, RCPT, DATA) fail recipients.

use std::net::{IpAddr, SocketAddr};

use crate::dns::Dns;
use crate::smtp::client::{Client, ClientError, ClientSettings, Envelope, Outcome};
use crate::store::{Smarthost, Store};

/// Addresses of the relay tried in one attempt.
const MAX_ADDRESSES: usize = 4;

/// The relay for mail from `sender` (its domain's, else the global one), if any. The null
/// sender (bounces) uses the global relay. A store error means "by MX" for this attempt,
/// logged.
pub async fn relay_for(store: &Store, sender: &str) -> Option<Smarthost> {
    let domain = sender.rsplit_once('@').map_or("", |(_, d)| d);
    match store.smarthost_for(domain).await {
        Ok(relay) => relay,
        Err(e) => {
            tracing::error!("queue: cannot read the smarthost settings: {e}");
            None
        }
    }
}

/// Sends `envelope` through `relay`: the outcome of each recipient, in order. Each message
/// gets its own connection (messages of one destination may have relays of different sending
/// domains).
pub async fn attempt(
    dns: &Dns,
    settings: &ClientSettings,
    relay: &Smarthost,
    envelope: &Envelope<'_>,
) -> Vec<Outcome> {
    let all = |o: Outcome| vec![o; envelope.recipients.len()];
    let ips: Vec<IpAddr> = match relay.host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => match dns.addresses(&relay.host).await {
            Ok(ips) => ips,
            Err(e) => return all(Outcome::Deferred(format!("smarthost {}: {e}", relay.host))),
        },
    };
    let mut last_error = format!("smarthost {} has no address", relay.host);
    for ip in ips.into_iter().take(MAX_ADDRESSES) {
        let addr = SocketAddr::new(ip, relay.port);
        let mut client = match Client::connect_relay(settings, addr, &relay.host, relay.tls).await {
            Ok(c) => c,
            Err(e) => {
                last_error = format!("smarthost {}:{} [{addr}]: {e}", relay.host, relay.port);
                continue;
            }
        };
        if let Err(e) = client.authenticate(&relay.username, &relay.password).await {
            client.quit().await;
            let why = match e {
                ClientError::AuthRefused(_) => format!(
                    "{e} (user {}; check the smarthost's username and password)",
                    relay.username
                ),
                other => other.to_string(),
            };
            tracing::warn!("queue: smarthost {}: {why}", relay.host);
            return all(Outcome::Deferred(format!(
                "smarthost {}: {why}",
                relay.host
            )));
        }
        let outcomes = match client.send(envelope).await {
            Ok(outcomes) => outcomes,
            Err(e) if e.is_permanent() => all(Outcome::Failed(e.to_string())),
            Err(e) => all(Outcome::Deferred(format!("smarthost {}: {e}", relay.host))),
        };
        client.quit().await;
        return outcomes;
    }
    all(Outcome::Deferred(last_error))
}
