//! `check-config` and `print-config`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::bail;

use mailroom::config::{self, Config, TlsMode};

use super::locate;

/// Prints the fully documented default configuration.
pub fn print() -> anyhow::Result<()> {
    print!("{}", config::DEFAULT_TOML);
    Ok(())
}

/// Checks the configuration the server would use: its syntax (the first error, with its line),
/// then its meaning, every problem on its own line naming the key.
pub async fn check(path: Option<&Path>) -> anyhow::Result<()> {
    let located = locate(path, true)?;
    let config = &located.config;
    let problems = problems(config).await;
    if problems.is_empty() {
        println!(
            "{}: ok (hostname {}, domain {}, data in {})",
            located.source,
            config.hostname,
            config.domain,
            config.data_dir.display()
        );
        return Ok(());
    }
    for problem in &problems {
        println!("{}: {problem}", located.source);
    }
    bail!("{} problems in {}", problems.len(), located.source)
}

/// What would stop the server or break mail, each naming its key.
async fn problems(config: &Config) -> Vec<String> {
    let mut found = Vec::new();
    if let Err(e) = writable(&config.data_dir) {
        found.push(format!("data_dir {}: {e}", config.data_dir.display()));
    }
    found.extend(shared_addresses(config));
    match config.tls.mode {
        TlsMode::Files => {
            if let Err(e) =
                mailroom::tls::Tls::load(&config.tls, &config.hostname, &config.data_dir).await
            {
                found.push(format!("[tls] cert/key: {e}"));
            }
        }
        TlsMode::Acme => found.extend(acme_problems(config)),
        TlsMode::SelfSigned => {}
    }
    if let Err(e) = mailroom::dns::Dns::new(&config.dns) {
        found.push(format!("[dns] nameservers: {e}"));
    }
    found
}

/// Whether the data directory is (or can be made) a directory this user can write: an
/// existing one must take a new file; a missing one needs a writable ancestor.
fn writable(dir: &Path) -> Result<(), String> {
    if dir.exists() {
        if !dir.is_dir() {
            return Err("exists and is not a directory".into());
        }
        let probe = dir.join(format!(".check-config-{}", std::process::id()));
        std::fs::write(&probe, b"").map_err(|e| format!("cannot write a file in it ({e})"))?;
        let _ = std::fs::remove_file(&probe);
        return Ok(());
    }
    let mut ancestor = dir.parent();
    while let Some(a) = ancestor {
        let a = if a.as_os_str().is_empty() {
            Path::new(".")
        } else {
            a
        };
        if a.exists() {
            let md = std::fs::metadata(a).map_err(|e| format!("{}: {e}", a.display()))?;
            if md.permissions().readonly() || !md.is_dir() {
                return Err(format!("cannot be created in {}", a.display()));
            }
            // The permission bits do not say whether this user may write; a probe does.
            let probe = a.join(format!(".check-config-{}", std::process::id()));
            return match std::fs::create_dir(&probe) {
                Ok(()) => {
                    let _ = std::fs::remove_dir(&probe);
                    Ok(())
                }
                Err(e) => Err(format!("cannot be created in {} ({e})", a.display())),
            };
        }
        ancestor = a.parent();
    }
    Err("no existing parent directory".into())
}

/// Listeners that would collide: the same address twice, or a wildcard and a specific address
/// of the same family on one port (port 0 picks a free port, so it never collides).
fn shared_addresses(config: &Config) -> Vec<String> {
    let mut seen: HashMap<SocketAddr, &str> = HashMap::new();
    let mut found = Vec::new();
    for (kind, addrs) in config.listen.all() {
        for &addr in addrs {
            if addr.port() == 0 {
                continue;
            }
            let clash = seen.iter().find(|(other, _)| {
                other.port() == addr.port()
                    && (**other == addr
                        || (other.is_ipv4() == addr.is_ipv4()
                            && (other.ip().is_unspecified() || addr.ip().is_unspecified())))
            });
            if let Some((other, other_kind)) = clash {
                found.push(format!(
                    "[listen] {kind} = {addr} shares its address with {other_kind} = {other}"
                ));
            } else {
                seen.insert(addr, kind);
            }
        }
    }
    found
}

/// ACME needs a public name, the TLS-ALPN-01 challenge on port 443, an https directory and a
/// contact for the expiry mails.
fn acme_problems(config: &Config) -> Vec<String> {
    let mut found = Vec::new();
    let tls = &config.tls;
    if !tls.acme_directory.starts_with("https://") {
        found.push(format!(
            "[tls] acme_directory {:?} must be an https:// URL",
            tls.acme_directory
        ));
    }
    if tls
        .acme_contact
        .as_deref()
        .is_none_or(|c| c.trim().is_empty())
    {
        found.push(
            "[tls] acme_contact is not set: give an address (mailto:you@example.org) for \
             certificate expiry notices"
                .into(),
        );
    }
    let names: Vec<&str> = if tls.acme_domains.is_empty() {
        vec![config.hostname.as_str()]
    } else {
        tls.acme_domains.iter().map(String::as_str).collect()
    };
    for name in names {
        if !name.contains('.') || name.eq_ignore_ascii_case("localhost") {
            found.push(format!(
                "[tls] acme_domains: {name:?} is not a public name a certificate can be issued for"
            ));
        }
    }
    if !config.listen.https.iter().any(|a| a.port() == 443) {
        found.push(
            "[listen] https has no address on port 443, where ACME's TLS-ALPN-01 challenge \
             arrives"
                .into(),
        );
    }
    if let Some(ca) = &tls.acme_ca_file
        && let Err(e) = std::fs::read(ca)
    {
        found.push(format!("[tls] acme_ca_file {}: {e}", ca.display()));
    }
    found
}
