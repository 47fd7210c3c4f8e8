//! `mailroom init`: the production configuration, the domain, the admin account, and the DNS
//! records to publish.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use mailroom::auth::password;
use mailroom::config::{self, Config};
use mailroom::store::{Audit, NewAccount};

use super::open_with;

#[derive(clap::Args)]
pub struct InitArgs {
    /// The server's name, e.g. mail.example.org (it needs A/AAAA records pointing here).
    #[arg(long)]
    hostname: String,
    /// The first mail domain, e.g. example.org.
    #[arg(long)]
    domain: String,
    /// Where the database is created (the package makes this directory, owned by the
    /// `mailroom` user; run as root, init hands what it creates there to that owner).
    #[arg(long, default_value = "/var/lib/mailroom")]
    data_dir: PathBuf,
    /// Overwrite an existing configuration file.
    #[arg(long)]
    force: bool,
}

pub async fn init(path: Option<&Path>, args: InitArgs) -> anyhow::Result<()> {
    let path = path.unwrap_or(Path::new(super::SYSTEM_CONFIG));
    if path.exists() && !args.force {
        bail!(
            "{} already exists; use --force to overwrite it",
            path.display()
        );
    }
    let text = config::production_toml(&args.hostname, &args.domain, &args.data_dir)
        .map_err(|e| anyhow::anyhow!("cannot make the configuration: {e}"))?;
    let config = Config::parse(&text, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let store = open_with(&config).await?;
    if store.domain(&config.domain).await?.is_none() {
        let d = store.add_domain(&config.domain).await?;
        store.audit(cli("domain.create", &d.name, "init")).await?;
    }
    let admin = format!("admin@{}", config.domain);
    let password = if store.account_by_address(&admin).await?.is_none() {
        let pw = password::generate();
        store
            .create_account(NewAccount {
                address: &admin,
                password_hash: &password::hash(&pw).await?,
                quota_bytes: 0,
                is_admin: true,
            })
            .await?;
        store
            .audit(cli(
                "account.create",
                &admin,
                "init: admin, password generated",
            ))
            .await?;
        Some(pw)
    } else {
        None
    };
    store
        .set_meta("initialized", &mailroom::store::now().to_string())
        .await?;
    store.ensure_dkim_keys().await?;
    let keys = store.dkim_keys(&config.domain).await?;
    let records =
        mailroom::records::domain_records(&config.hostname, &config.domain, keys.as_ref())?;
    store.close().await;
    super::owner::give_to_owner(&config.data_dir)?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    super::owner::readable_by_service(path)?;

    println!("Wrote {}.", path.display());
    match password {
        Some(pw) => println!("Admin login: {admin}  password: {pw}  (shown once)"),
        None => println!("Admin login: {admin} (already existed; password unchanged)"),
    }
    println!();
    let host = &config.hostname;
    println!(
        "Publish these DNS records (`mailroom domain dns {}` prints them again):",
        config.domain
    );
    println!("{host}.  A/AAAA  <this server's addresses>");
    print!("{}", mailroom::records::zone_file(&records));
    println!("and a PTR record for the server's addresses naming {host}.");
    println!();
    println!("Next:");
    println!(
        "  1. Publish the records above at your DNS provider (and the PTR record at your host)."
    );
    if path == Path::new(super::SYSTEM_CONFIG) {
        println!("  2. Start the server:  systemctl enable --now mailroom");
    } else {
        println!(
            "  2. Start the server:  mailroom serve --config {}",
            path.display()
        );
    }
    println!("  3. Sign in at https://{host}/admin as {admin}.");
    println!("  4. Check that all is well:  mailroom status");
    Ok(())
}

/// An audit entry for what `init` did, as the other commands record theirs.
fn cli<'a>(action: &'a str, target: &'a str, detail: &'a str) -> Audit<'a> {
    Audit {
        actor: "cli",
        ip: "",
        action,
        target,
        detail,
    }
}
