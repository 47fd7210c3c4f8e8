//! `mailroom domain`, `user` and `alias`. Each change is recorded in the admin audit log with
//! the actor `cli`, as the admin panel records its own.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, bail};
use clap::Subcommand;

use mailroom::address::Address;
use mailroom::auth::password;
use mailroom::config::{self, Config};
use mailroom::store::{Audit, NewAccount, Store};

#[derive(Subcommand)]
pub enum DomainCmd {
    /// Add a domain to receive mail for.
    Add { name: String },
    /// List domains with their account and alias counts.
    List,
    /// Remove a domain (refused while it has accounts).
    Remove { name: String },
    /// Print the DNS records to publish for a domain (zone-file lines): MX, SPF, DKIM, DMARC
    /// and the client autoconfiguration names.
    Dns { name: String },
}

#[derive(Subcommand)]
pub enum UserCmd {
    /// Create an account (a random password is generated and printed unless --password-stdin).
    Add {
        address: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Storage quota, e.g. 500M or 2G; 0 or "unlimited" for none.
        #[arg(long)]
        quota: Option<String>,
        /// Allow this account into the admin panel.
        #[arg(long)]
        admin: bool,
    },
    /// List accounts with their usage.
    List {
        /// Only accounts of this domain.
        #[arg(long)]
        domain: Option<String>,
    },
    /// Set a new password (random and printed unless --password-stdin).
    Passwd {
        address: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove an account and all its mail.
    Remove { address: String },
}

#[derive(Subcommand)]
pub enum AliasCmd {
    /// Send mail for SOURCE (an address, or @domain for a catch-all) to one or more targets.
    Add {
        source: String,
        #[arg(required = true)]
        targets: Vec<String>,
    },
    /// List aliases.
    List {
        #[arg(long)]
        domain: Option<String>,
    },
    /// Remove an alias, or only one of its targets.
    Remove {
        source: String,
        target: Option<String>,
    },
}

pub async fn domain(store: &Store, config: &Config, cmd: DomainCmd) -> anyhow::Result<()> {
    match cmd {
        DomainCmd::Add { name } => {
            let d = store.add_domain(&name).await?;
            audit(store, "domain.create", &d.name, "").await?;
            println!("added domain {}", d.name);
        }
        DomainCmd::List => {
            let domains = store.domains().await?;
            if domains.is_empty() {
                println!("no domains");
            }
            for d in domains {
                println!(
                    "{:<40} {:>5} accounts {:>5} aliases",
                    d.name, d.accounts, d.aliases
                );
            }
        }
        DomainCmd::Remove { name } => {
            store.remove_domain(&name).await?;
            let name = name.trim().to_lowercase();
            audit(store, "domain.remove", &name, "").await?;
            println!("removed domain {name}");
        }
        DomainCmd::Dns { name } => {
            let Some(domain) = store.domain(&name).await? else {
                bail!("no domain {} here", name.trim());
            };
            // Domains from before DKIM get their keys on first use, as at server start.
            store.ensure_dkim_keys().await?;
            let records =
                mailroom::records::for_domain(store, &config.hostname, &domain.name).await?;
            print!("{}", mailroom::records::zone_file(&records));
        }
    }
    Ok(())
}

pub async fn user(store: &Store, config: &Config, cmd: UserCmd) -> anyhow::Result<()> {
    match cmd {
        UserCmd::Add {
            address,
            password_stdin,
            quota,
            admin,
        } => {
            // Check everything before reading a password or hashing, so nothing half-happens.
            let parsed = Address::parse(&address).map_err(anyhow::Error::msg)?;
            let quota = match quota {
                Some(q) => config::parse_size(&q).map_err(|e| anyhow::anyhow!("--quota: {e}"))?,
                None => config.limits.default_quota,
            };
            if !store.is_local_domain(&parsed.domain).await? {
                bail!(
                    "unknown domain {} (add it first: mailroom domain add {})",
                    parsed.domain,
                    parsed.domain
                );
            }
            if store
                .account_by_address(&parsed.to_string())
                .await?
                .is_some()
            {
                bail!("account {parsed} already exists");
            }
            let (pw, generated) = obtain_password(password_stdin, &[&parsed.to_string()])?;
            let account = store
                .create_account(NewAccount {
                    address: &parsed.to_string(),
                    password_hash: &password::hash(&pw).await?,
                    quota_bytes: quota,
                    is_admin: admin,
                })
                .await?;
            let detail = format!(
                "quota {}{}, password {}",
                quota_text(account.quota_bytes),
                if admin { ", admin" } else { "" },
                if generated { "generated" } else { "chosen" }
            );
            audit(store, "account.create", &account.address, &detail).await?;
            println!(
                "added {}{} (quota {})",
                account.address,
                if admin { " as admin" } else { "" },
                quota_text(account.quota_bytes)
            );
            if generated {
                println!("password: {pw}");
            }
        }
        UserCmd::List { domain } => {
            let accounts = store.accounts(domain.as_deref()).await?;
            if accounts.is_empty() {
                println!("no accounts");
            }
            for a in accounts {
                let mut notes = Vec::new();
                if a.is_admin {
                    notes.push("admin");
                }
                if a.disabled {
                    notes.push("disabled");
                }
                println!(
                    "{:<40} {:>8} / {:<9} {:>6} messages  {}",
                    a.address,
                    config::format_size(u64::try_from(a.used_bytes).unwrap_or(0)),
                    quota_text(a.quota_bytes),
                    a.message_count,
                    notes.join(", ")
                );
            }
        }
        UserCmd::Passwd {
            address,
            password_stdin,
        } => {
            let Some(account) = store.account_by_address(&address).await? else {
                bail!("account {} not found", address.trim());
            };
            let (pw, generated) =
                obtain_password(password_stdin, &[&account.address, &account.display_name])?;
            store
                .set_password_hash(&address, &password::hash(&pw).await?)
                .await?;
            let detail = if generated { "generated" } else { "chosen" };
            audit(store, "account.password", &account.address, detail).await?;
            println!("password changed for {}", address.trim());
            if generated {
                println!("password: {pw}");
            }
        }
        UserCmd::Remove { address } => {
            store.remove_account(&address).await?;
            let address = address.trim().to_lowercase();
            audit(store, "account.remove", &address, "").await?;
            println!("removed {address} and its mail");
        }
    }
    Ok(())
}

/// Records a change made from the command line in the admin audit log.
pub(crate) async fn audit(
    store: &Store,
    action: &str,
    target: &str,
    detail: &str,
) -> anyhow::Result<()> {
    store
        .audit(Audit {
            actor: "cli",
            ip: "",
            action,
            target,
            detail,
        })
        .await?;
    Ok(())
}

fn quota_text(quota: i64) -> String {
    match u64::try_from(quota) {
        Ok(0) | Err(_) => "unlimited".into(),
        Ok(q) => config::format_size(q),
    }
}

/// The password from stdin's first line, held to the password rule with `user_inputs` (the
/// address, the name), or a generated one (second value true).
fn obtain_password(from_stdin: bool, user_inputs: &[&str]) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        return Ok((password::generate(), true));
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password: ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let pw = line.trim_end_matches(['\r', '\n']).to_string();
    if pw.is_empty() {
        bail!("the password read from stdin is empty");
    }
    password::check_strength(&pw, user_inputs).map_err(anyhow::Error::msg)?;
    Ok((pw, false))
}

pub async fn alias(store: &Store, cmd: AliasCmd) -> anyhow::Result<()> {
    match cmd {
        AliasCmd::Add { source, targets } => {
            let a = store.add_alias(&source, &targets).await?;
            audit(store, "alias.create", &a.source, &a.targets.join(", ")).await?;
            println!("{} -> {}", a.source, a.targets.join(", "));
        }
        AliasCmd::List { domain } => {
            let aliases = store.aliases(domain.as_deref()).await?;
            if aliases.is_empty() {
                println!("no aliases");
            }
            for a in aliases {
                println!("{:<40} -> {}", a.source, a.targets.join(", "));
            }
        }
        AliasCmd::Remove { source, target } => {
            store.remove_alias(&source, target.as_deref()).await?;
            let detail = target
                .as_deref()
                .map_or_else(|| "all targets".to_string(), |t| t.trim().to_string());
            audit(store, "alias.remove", source.trim(), &detail).await?;
            match target {
                Some(t) => println!("removed {} -> {}", source.trim(), t.trim()),
                None => println!("removed alias {}", source.trim()),
            }
        }
    }
    Ok(())
}
