//! `mailroom smarthost set|show|clear`: the relay outbound mail goes through instead of MX
//! (global, or per sending domain). The password is read from stdin, never from the command
//! line (where `ps` would show it), and never printed. Changes are audited like the admin
//! panel's (`smarthost.set`, `smarthost.clear`, actor `cli`).

use std::io::BufRead;

use anyhow::{Context, bail};
use clap::Subcommand;

use mailroom::store::{RelayTls, Smarthost, Store};

use super::accounts::audit;

#[derive(Subcommand)]
pub enum SmarthostCmd {
    /// Send outbound mail through HOST:PORT with AUTH; the password is read from stdin (one
    /// line). Both TLS modes require a valid certificate.
    Set {
        /// host:port, e.g. smtp.relay.example:465
        relay: String,
        /// implicit (TLS from the first byte, port 465) or starttls (port 587).
        #[arg(long, default_value = "implicit")]
        tls: String,
        #[arg(long)]
        username: String,
        /// Only for mail from this domain (default: every domain without its own).
        #[arg(long)]
        domain: Option<String>,
    },
    /// List the smarthosts (without passwords).
    Show,
    /// Stop using the smarthost of --domain (or the global one).
    Clear {
        #[arg(long)]
        domain: Option<String>,
    },
}

pub async fn smarthost(store: &Store, cmd: SmarthostCmd) -> anyhow::Result<()> {
    match cmd {
        SmarthostCmd::Set {
            relay,
            tls,
            username,
            domain,
        } => {
            let Some((host, port)) = relay.rsplit_once(':') else {
                bail!("{relay:?}: expected host:port, e.g. smtp.relay.example:465");
            };
            let port: u16 = port
                .parse()
                .with_context(|| format!("{port:?} is not a port number"))?;
            let Some(tls) = RelayTls::parse(&tls) else {
                bail!("--tls must be implicit or starttls");
            };
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .context("cannot read the password from stdin")?;
            let password = password.trim_end_matches(['\r', '\n']).to_string();
            if password.is_empty() {
                bail!("give the relay's password on stdin (echo … | mailroom smarthost set …)");
            }
            let relay = Smarthost {
                domain,
                host: host.to_string(),
                port,
                tls,
                username,
                password,
            };
            store.set_smarthost(&relay).await?;
            let target = relay.domain.as_deref().unwrap_or("*");
            let detail = format!(
                "{}:{} {} user {}",
                relay.host,
                relay.port,
                relay.tls.as_str(),
                relay.username
            );
            audit(store, "smarthost.set", target, &detail).await?;
            println!(
                "mail from {} now goes through {}:{} (the password is stored in the database, \
                 readable by the service)",
                relay.domain.as_deref().unwrap_or("every domain"),
                relay.host,
                relay.port
            );
        }
        SmarthostCmd::Show => {
            let relays = store.smarthosts().await?;
            if relays.is_empty() {
                println!("no smarthost: mail goes to each recipient's MX");
            }
            for r in relays {
                println!(
                    "{:<20} {}:{} tls={} user={}",
                    r.domain.as_deref().unwrap_or("(every domain)"),
                    r.host,
                    r.port,
                    r.tls.as_str(),
                    r.username
                );
            }
        }
        SmarthostCmd::Clear { domain } => {
            if !store.clear_smarthost(domain.as_deref()).await? {
                bail!(
                    "no smarthost for {}",
                    domain.as_deref().unwrap_or("every domain")
                );
            }
            audit(
                store,
                "smarthost.clear",
                domain.as_deref().unwrap_or("*"),
                "",
            )
            .await?;
            println!("smarthost removed");
        }
    }
    Ok(())
}
