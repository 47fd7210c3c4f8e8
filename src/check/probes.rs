//! The self-check's probes, one function per section of the list.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Context, Finding};
use crate::dns::DnsError;
use crate::records::{self, Published};
use crate::spam::dnsbl::{self, Answer};
use crate::spam::rdns::{self, Rdns};

/// One network step (a connection, a fetch) at most this long.
const STEP: Duration = Duration::from_secs(5);
/// Certificates expiring sooner than this are a warning.
const EXPIRY_WARNING_SECS: i64 = 14 * 86_400;
/// The most of an MTA-STS policy read back (RFC 8461 §3.3 allows 64 KiB).
const MAX_POLICY: u64 = 64 * 1024;
/// Addresses looked at (the system's and the hostname's).
const MAX_ADDRESSES: usize = 8;

fn lower(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Whether an address can be reached from the internet at all.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_documentation()
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            let [first, ..] = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// The source address the system would use towards the internet, per family. A UDP `connect`
/// only picks a route: nothing is sent.
async fn system_address(v6: bool) -> Option<IpAddr> {
    let (bind, towards): (SocketAddr, SocketAddr) = if v6 {
        (
            (Ipv6Addr::UNSPECIFIED, 0).into(),
            (
                Ipv6Addr::new(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888),
                53,
            )
                .into(),
        )
    } else {
        (
            (Ipv4Addr::UNSPECIFIED, 0).into(),
            (Ipv4Addr::new(8, 8, 8, 8), 53).into(),
        )
    };
    let socket = tokio::net::UdpSocket::bind(bind).await.ok()?;
    socket.connect(towards).await.ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

/// Addresses, their reverse DNS and their DNS blocklist listings.
pub(super) async fn addresses(cx: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut ips: Vec<IpAddr> = Vec::new();
    for v6 in [false, true] {
        let Some(ip) = system_address(v6).await else {
            continue;
        };
        if is_public(ip) {
            out.push(Finding::ok("This machine's address", ip.to_string()));
        } else {
            out.push(Finding::warning(
                "This machine's address",
                format!("{ip} is a private address: the server is behind NAT or a firewall"),
                "Forward ports 25, 465, 587, 993 (and 80/443) from the public address to this \
                 machine; the checks below use the addresses your hostname points to.",
            ));
        }
        ips.push(ip);
    }
    match cx.dns.addresses(cx.hostname).await {
        Ok(found) if !found.is_empty() => {
            out.push(Finding::ok(
                format!("Addresses of {}", cx.hostname),
                found
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            ));
            ips.extend(found);
        }
        Ok(_) | Err(DnsError::NoSuchDomain(_) | DnsError::NullMx(_)) => out.push(Finding::problem(
            format!("Addresses of {}", cx.hostname),
            "the hostname has no A or AAAA record",
            format!(
                "Publish an A record (and AAAA for IPv6) for {} with this server's public address.",
                cx.hostname
            ),
        )),
        Err(e) => out.push(Finding::warning(
            format!("Addresses of {}", cx.hostname),
            e.to_string(),
            "Check that the DNS resolver in [dns] nameservers answers.",
        )),
    }
    let mut seen = Vec::new();
    ips.retain(|ip| {
        let keep = is_public(*ip) || ip.is_loopback();
        keep && !seen.contains(ip) && {
            seen.push(*ip);
            true
        }
    });
    ips.truncate(MAX_ADDRESSES);
    let per_ip = futures::future::join_all(ips.iter().map(|ip| one_address(cx, *ip))).await;
    out.extend(per_ip.into_iter().flatten());
    out
}

async fn one_address(cx: &Context<'_>, ip: IpAddr) -> Vec<Finding> {
    let topic = format!("Reverse DNS of {ip}");
    let host = lower(cx.hostname);
    let mut out = vec![match rdns::fcrdns(cx.dns, ip).await {
        Rdns::Verified(name) if lower(&name) == host => {
            Finding::ok(topic, format!("{name}, confirmed"))
        }
        Rdns::Verified(name) => Finding::problem(
            topic,
            format!("{name}, not the hostname {host}"),
            format!(
                "Ask whoever runs the address (your hosting provider's panel) to set its PTR \
                 record to {host}; receivers compare it with the name the server greets with."
            ),
        ),
        Rdns::Mismatch => Finding::problem(
            topic,
            "its PTR name does not point back to the address (mismatch)",
            format!("Set the PTR record to {host} and give {host} this address."),
        ),
        Rdns::Missing => Finding::problem(
            topic,
            "no PTR record",
            format!(
                "Ask your hosting provider to set the PTR record of {ip} to {host}: big \
                 receivers refuse mail from addresses without one."
            ),
        ),
        Rdns::Unknown => Finding::warning(
            topic,
            "the DNS did not answer",
            "Try again; check [dns] nameservers.",
        ),
    }];
    for zone in &cx.settings.ip_blocklists {
        let Some(name) = dnsbl::query_name(ip, zone) else {
            continue;
        };
        out.extend(listing(cx, &format!("{ip} on {zone}"), &name, zone).await);
    }
    out
}

/// One DNS list lookup as a finding (none when not listed, which the summary line says).
async fn listing(cx: &Context<'_>, topic: &str, name: &str, zone: &str) -> Option<Finding> {
    let answer = match tokio::time::timeout(dnsbl::DEADLINE, cx.dns.ipv4(name)).await {
        Ok(Ok(found)) => dnsbl::answer(&found),
        Ok(Err(DnsError::NoSuchDomain(_) | DnsError::NullMx(_))) => Answer::NotListed,
        Ok(Err(e)) => {
            return Some(Finding::warning(
                topic,
                format!("the list did not answer: {e}"),
                "Try again later.",
            ));
        }
        Err(_) => {
            return Some(Finding::warning(
                topic,
                "the list did not answer in time",
                "Try again later.",
            ));
        }
    };
    Some(match answer {
        Answer::NotListed => Finding::ok(topic, "not listed"),
        Answer::Listed => Finding::problem(
            topic,
            format!("listed on {zone}"),
            format!(
                "Find out why on the list's web site (look the address or domain up there), fix \
                 the cause (an open relay, a hacked account, a sending script) and ask {zone} \
                 for removal."
            ),
        ),
        Answer::Refused => Finding::warning(
            topic,
            format!("{zone} refused your resolver (it answers 127.255.255.x)"),
            "Lists such as Spamhaus refuse queries through big public resolvers. Run your own \
             resolver (unbound) and set it in [dns] nameservers; until then this check tells \
             nothing.",
        ),
    })
}

/// Our domains on the domain blocklists.
pub(super) async fn domain_lists(cx: &Context<'_>) -> Vec<Finding> {
    let Ok(domains) = cx.store.domains().await else {
        return Vec::new();
    };
    let mut lookups = Vec::new();
    for d in &domains {
        for zone in &cx.settings.domain_blocklists {
            let zone = zone.trim().trim_matches('.');
            let topic = format!("{} on {zone}", d.name);
            let name = format!("{}.{zone}.", d.name);
            lookups.push(async move { listing(cx, &topic, &name, zone).await });
        }
    }
    futures::future::join_all(lookups)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Whether outbound port 25 is open: one connection to an MX of `port25_domain`.
pub(super) async fn port25(cx: &Context<'_>) -> Vec<Finding> {
    let topic = "Outbound port 25";
    if let Ok(relays) = cx.store.smarthosts().await
        && let Some(r) = relays.first()
    {
        return vec![Finding::ok(
            topic,
            format!(
                "not tested: mail goes through the smarthost {}:{}",
                r.host, r.port
            ),
        )];
    }
    let domain = cx.settings.port25_domain.trim();
    let host = match cx.dns.mx(domain).await {
        Ok(hosts) => match hosts.into_iter().next() {
            Some(mx) => mx.host,
            None => domain.to_string(),
        },
        Err(e) => {
            return vec![Finding::warning(
                topic,
                format!("not tested: the MX of {domain} could not be looked up ({e})"),
                "Check [dns] nameservers, or set [check] port25_domain to a domain that exists.",
            )];
        }
    };
    let Some(ip) = cx
        .dns
        .addresses(&host)
        .await
        .ok()
        .and_then(|a| a.into_iter().next())
    else {
        return vec![Finding::warning(
            topic,
            format!("not tested: {host} has no address"),
            "Set [check] port25_domain to a domain whose mail servers resolve.",
        )];
    };
    let addr = SocketAddr::new(ip, cx.smtp_port);
    match tokio::time::timeout(STEP, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => vec![Finding::ok(
            topic,
            format!("open: connected to {host} [{addr}]"),
        )],
        Ok(Err(e)) => vec![Finding::problem(
            topic,
            format!("cannot connect to {host} [{addr}]: {e}"),
            "Your provider probably blocks outgoing port 25 (many VPS hosts do). Ask them to \
             open it, or set a smarthost (Deliverability page, `mailroom smarthost set`).",
        )],
        Err(_) => vec![Finding::problem(
            topic,
            format!("no answer from {host} [{addr}] within {} s", STEP.as_secs()),
            "Your provider probably blocks outgoing port 25 (many VPS hosts do). Ask them to \
             open it, or set a smarthost (Deliverability page, `mailroom smarthost set`).",
        )],
    }
}

/// Every record of every domain, as `domain dns` prints them.
pub(super) async fn records(cx: &Context<'_>) -> Vec<Finding> {
    let Ok(domains) = cx.store.domains().await else {
        return vec![Finding::problem(
            "DNS records",
            "the domains could not be read",
            "See the server log.",
        )];
    };
    let mut out = Vec::new();
    for d in domains {
        let Ok(list) = records::for_domain(cx.store, cx.hostname, &d.name).await else {
            continue;
        };
        let checks = futures::future::join_all(list.iter().map(|r| records::check(cx.dns, r)));
        let Ok(results) = tokio::time::timeout(Duration::from_secs(8), checks).await else {
            out.push(Finding::warning(
                format!("DNS records of {}", d.name),
                "the DNS did not answer in time",
                "Try again; check [dns] nameservers.",
            ));
            continue;
        };
        let mut all_found = true;
        for (record, result) in list.iter().zip(results) {
            let topic = format!("{} {} record {}", d.name, record.kind, record.name);
            let wanted = format!(
                "Publish {} {} \"{}\"",
                record.name, record.kind, record.value
            );
            match result {
                Published::Found => {}
                Published::Missing => {
                    all_found = false;
                    out.push(Finding::problem(topic, "missing", format!("{wanted}.")));
                }
                Published::Different(found) => {
                    all_found = false;
                    out.push(Finding::problem(
                        topic,
                        format!("different: {}", found.join(" | ")),
                        format!("{wanted} in place of what is there."),
                    ));
                }
                Published::Unknown(e) => {
                    all_found = false;
                    out.push(Finding::warning(topic, e, "Try again later."));
                }
            }
        }
        if all_found {
            out.push(Finding::ok(
                format!("DNS records of {}", d.name),
                format!("all {} published as they should be", list.len()),
            ));
        }
    }
    out
}

/// The certificate: valid, not soon expiring, covering the hostname (and the MTA-STS names
/// in ACME mode).
pub(super) fn certificate(cx: &Context<'_>) -> Vec<Finding> {
    let topic = "TLS certificate";
    let Some(status) = &cx.certificate else {
        return vec![Finding::problem(
            topic,
            "could not be loaded",
            "Run `mailroom check-config`, which says what is wrong with it.",
        )];
    };
    let mut out = Vec::new();
    let host = lower(cx.hostname);
    let covers = |name: &str| {
        status.names.iter().any(|n| {
            let n = lower(n);
            n == name
                || n.strip_prefix("*.")
                    .is_some_and(|base| name.split_once('.').is_some_and(|(_, rest)| rest == base))
        })
    };
    if status.source == "self-signed" {
        out.push(Finding::warning(
            topic,
            "self-signed: mail clients and MTA-STS senders will not trust it",
            "Use ACME ([tls] mode = \"acme\") or your own certificate files.",
        ));
    } else if !covers(&host) {
        out.push(Finding::problem(
            topic,
            format!("does not cover {host} (names: {})", status.names.join(", ")),
            format!("Get a certificate for {host}."),
        ));
    }
    if let Some(not_after) = status.not_after {
        let left = not_after - crate::store::now();
        if left <= 0 {
            out.push(Finding::problem(topic, "expired", "Renew the certificate."));
        } else if left < EXPIRY_WARNING_SECS {
            out.push(Finding::warning(
                topic,
                format!("expires in {} days", left / 86_400),
                "Renew it (ACME renews by itself; see its errors in the log).",
            ));
        } else if status.source != "self-signed" {
            out.push(Finding::ok(
                topic,
                format!("valid for {} more days", left / 86_400),
            ));
        }
    }
    if let Some(error) = &status.error {
        out.push(Finding::warning(
            topic,
            format!("the last renewal failed: {error}"),
            "See the ACME lines in the log.",
        ));
    }
    out
}

/// The MTA-STS policy of every domain that publishes one, fetched as senders do.
pub(super) async fn mta_sts(cx: &Context<'_>) -> Vec<Finding> {
    let Ok(domains) = cx.store.mta_sts_domains().await else {
        return Vec::new();
    };
    let fetches = domains.into_iter().map(|(domain, mode)| async move {
        let topic = format!("MTA-STS policy of {domain}");
        let expected = records::mta_sts_policy(cx.hostname, mode).unwrap_or_default();
        match tokio::time::timeout(STEP * 2, fetch_policy(cx, &domain)).await {
            Ok(Ok(body)) if body == expected => {
                Finding::ok(topic, format!("served ({})", mode.as_str()))
            }
            Ok(Ok(_)) => Finding::problem(
                topic,
                "https://mta-sts.<domain>/.well-known/mta-sts.txt answers something else",
                "Point mta-sts.<domain> at this server (the CNAME on the domain's page).",
            ),
            Ok(Err(why)) => Finding::problem(
                topic,
                format!("not reachable: {why}"),
                format!(
                    "Publish mta-sts.{domain} as a CNAME to {} and make sure the certificate \
                     covers it (in ACME mode: restart after switching MTA-STS on).",
                    cx.hostname
                ),
            ),
            Err(_) => Finding::problem(
                topic,
                "no answer in time",
                format!("Publish mta-sts.{domain} as a CNAME to {}.", cx.hostname),
            ),
        }
    });
    futures::future::join_all(fetches).await
}

/// GET the policy over verified HTTPS (public roots), HTTP/1.0, at most [`MAX_POLICY`].
async fn fetch_policy(cx: &Context<'_>, domain: &str) -> Result<String, String> {
    let host = format!("mta-sts.{domain}");
    let ip = cx
        .dns
        .addresses(&host)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let tcp = tokio::net::TcpStream::connect(SocketAddr::new(ip, 443))
        .await
        .map_err(|e| format!("cannot connect to {host}: {e}"))?;
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS with {host}: {e}"))?;
    let request = format!(
        "GET /.well-known/mta-sts.txt HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    );
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    (&mut tls)
        .take(MAX_POLICY + 4096)
        .read_to_end(&mut raw)
        .await
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP answer")?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        return Err(format!("HTTP status {status}"));
    }
    Ok(body.to_string())
}

/// The last DMARC and TLS report summary: what the receivers who sent the newest reports say
/// about mail sent as our domains (a failure there is mail of ours that was, or will be,
/// refused or junked), and whether our TLS is what senders expect.
pub(super) async fn reports(cx: &Context<'_>) -> Vec<Finding> {
    const TOPIC: &str = "DMARC and TLS reports";
    let mut out = Vec::new();
    match cx.store.dmarc_reports(0, 1).await {
        Ok((reports, _)) => match reports.first() {
            None => out.push(Finding::ok(
                TOPIC,
                "no DMARC report received yet (receivers send them daily to the rua address \
                 of your DMARC record, postmaster@ by default)",
            )),
            Some(r) => {
                let total: i64 = r.rows.iter().map(|row| row.count).sum();
                let failed: i64 = r
                    .rows
                    .iter()
                    .filter(|row| row.dkim != "pass" && row.spf != "pass")
                    .map(|row| row.count)
                    .sum();
                let found = format!(
                    "the latest DMARC report, from {} about {}: {total} messages, {failed} \
                     failing DMARC",
                    r.org, r.domain
                );
                out.push(if failed > 0 {
                    Finding::warning(
                        TOPIC,
                        found,
                        "see Reports for the sending addresses: mail from your own servers \
                         that fails needs SPF (add the address to the SPF record) or DKIM \
                         (send through this server); other addresses are forging your domain",
                    )
                } else {
                    Finding::ok(TOPIC, found)
                });
            }
        },
        Err(e) => out.push(Finding::warning(
            TOPIC,
            format!("the stored DMARC reports cannot be read: {e}"),
            "see the server log",
        )),
    }
    if let Ok((reports, _)) = cx.store.tls_reports(0, 1).await
        && let Some(r) = reports.first()
    {
        let (ok, failed): (i64, i64) = r
            .policies
            .iter()
            .fold((0, 0), |(s, f), p| (s + p.successes, f + p.failures));
        let found = format!(
            "the latest TLS report, from {}: {ok} TLS sessions to us succeeded, {failed} failed",
            r.org
        );
        out.push(if failed > 0 {
            Finding::warning(
                TOPIC,
                found,
                "see Reports for the failure types: a certificate that does not match the MX \
                 name, or an MTA-STS policy that names other hosts, makes senders defer or \
                 refuse",
            )
        } else {
            Finding::ok(TOPIC, found)
        });
    }
    out
}
