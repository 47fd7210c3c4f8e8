//! `mailroom status`: what an operator (or a monitoring check) wants to know at a glance.
//! Each line is one fact; what needs attention is listed last, and then the exit status is 1.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::bail;

use mailroom::config::{Config, format_size};
use mailroom::store::{Store, now};

use super::{locate, open_existing};

/// Mail waiting this long in the queue needs a look (retries go on for days).
const QUEUE_OLD_SECS: i64 = 86_400;
/// A certificate closer than this to its end needs a look (ACME renews 30 days ahead).
const CERT_WARN_SECS: i64 = 14 * 86_400;
/// A daily backup older than this means the timer stopped (the dashboard warns the same).
const BACKUP_OLD_SECS: i64 = 7 * 86_400;

pub async fn status(path: Option<&Path>) -> anyhow::Result<()> {
    let located = locate(path, false)?;
    let store = open_existing(&located).await?;
    let config = &located.config;
    let result = report(&store, config).await;
    store.close().await;
    let attention = result?;
    if attention.is_empty() {
        println!("all well");
        return Ok(());
    }
    println!("needs attention:");
    for item in &attention {
        println!("  - {item}");
    }
    match attention.len() {
        1 => bail!("1 thing needs attention"),
        n => bail!("{n} things need attention"),
    }
}

/// Prints the facts; returns what needs attention.
async fn report(store: &Store, config: &Config) -> anyhow::Result<Vec<String>> {
    let mut attention = Vec::new();
    // A running server holds the data directory's lock.
    let running = mailroom::backup::ServerLock::acquire(&config.data_dir).is_err();
    println!(
        "server:      {}",
        if running { "running" } else { "not running" }
    );
    if !running {
        attention.push("the server is not running (systemctl start mailroom)".to_string());
    }
    for (kind, addrs) in config.listen.all() {
        for &addr in addrs {
            let answering = answers(addr).await;
            println!(
                "listener:    {kind} on {addr}: {}",
                if answering {
                    "answering"
                } else {
                    "not answering"
                }
            );
            if running && !answering {
                attention.push(format!("{kind} on {addr} does not answer"));
            }
        }
    }
    let queue = store.queue_stats().await?;
    match queue.oldest_created_at {
        Some(oldest) => {
            println!(
                "queue:       {} messages for {} recipients, the oldest {} old",
                queue.messages,
                queue.recipients,
                age(now() - oldest)
            );
            if now() - oldest > QUEUE_OLD_SECS {
                attention.push(format!(
                    "mail has waited in the queue for {} (mailroom queue list)",
                    age(now() - oldest)
                ));
            }
        }
        None => println!("queue:       empty"),
    }
    match mailroom::tls::Tls::load(&config.tls, &config.hostname, &config.data_dir).await {
        Ok(tls) => {
            let cert = tls.status();
            match cert.not_after {
                Some(end) => {
                    println!(
                        "certificate: {} for {}, expires in {}",
                        cert.source,
                        cert.names.join(", "),
                        age(end - now())
                    );
                    if end - now() < CERT_WARN_SECS {
                        attention.push(format!("the certificate expires in {}", age(end - now())));
                    }
                }
                None => println!("certificate: {} (no expiry known yet)", cert.source),
            }
            if let Some(error) = cert.error {
                attention.push(format!("certificate: {error}"));
            }
        }
        Err(e) => {
            println!("certificate: cannot be read");
            attention.push(format!("certificate: {e}"));
        }
    }
    match mailroom::backup::last_backup(store).await? {
        Some((t, place)) => {
            println!("last backup: {} ago, {}", age(now() - t), place.display());
            if now() - t > BACKUP_OLD_SECS {
                attention.push(format!("the last backup is {} old", age(now() - t)));
            }
        }
        None => {
            println!("last backup: never");
            attention.push("no backup was ever made (mailroom backup DIR)".to_string());
        }
    }
    let totals = store.storage_totals().await?;
    println!(
        "database:    {}, {} messages",
        format_size(u64::try_from(totals.database_bytes).unwrap_or(0)),
        totals.messages
    );
    if let Some(free) = store.free_space() {
        println!("free space:  {}", format_size(free));
        if free < config.limits.min_free_space {
            attention.push(format!(
                "only {} free on the data disk: new mail is refused",
                format_size(free)
            ));
        }
    }
    Ok(attention)
}

/// Whether something accepts TCP connections at `addr` (a wildcard address is tried on the
/// loopback of its family).
async fn answers(addr: SocketAddr) -> bool {
    let ip = match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let connect = tokio::net::TcpStream::connect(SocketAddr::new(ip, addr.port()));
    matches!(
        tokio::time::timeout(Duration::from_secs(2), connect).await,
        Ok(Ok(_))
    )
}

/// A duration in the largest whole unit: "3 days", "5 hours", "12 minutes".
fn age(secs: i64) -> String {
    let secs = secs.max(0);
    let (n, unit) = match secs {
        s if s >= 2 * 86_400 => (s / 86_400, "days"),
        s if s >= 2 * 3_600 => (s / 3_600, "hours"),
        s if s >= 120 => (s / 60, "minutes"),
        s => (s, "seconds"),
    };
    format!("{n} {unit}")
}
