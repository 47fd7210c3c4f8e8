//! The `mailroom` command: the server and its administration.
//!
//! Every admin command opens the same database the server uses (SQLite allows it while the
//! server runs) and calls the same store functions as the admin panel. Errors print one line
//! on stderr and exit with status 1; nothing is half-written because each command is one
//! store transaction.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use mailroom::address::Address;
use mailroom::auth::password;
use mailroom::config::{self, Config};
use mailroom::store::{NewAccount, Store};

#[derive(Parser)]
#[command(
    name = "mailroom",
    version,
    about = "A mail server in one binary: SMTP, IMAP, POP3, webmail, admin"
)]
struct Cli {
    /// Configuration file; without it, the embedded default (a local trial in ./data).
    #[arg(long, short, global = true, env = "MAILROOM_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Write a production configuration, create the domain and an admin account.
    Init(InitArgs),
    /// Check the configuration file and report the first error.
    CheckConfig,
    /// Print the fully documented default configuration.
    PrintConfig,
    /// Mail domains.
    #[command(subcommand)]
    Domain(DomainCmd),
    /// Accounts.
    #[command(subcommand)]
    User(UserCmd),
    /// Aliases and catch-alls.
    #[command(subcommand)]
    Alias(AliasCmd),
    /// The outbound queue (mail waiting for other servers).
    #[command(subcommand)]
    Queue(QueueCmd),
    /// Copy the database to DEST while the server runs, then check the copy.
    Backup { dest: PathBuf },
    /// Replace the database with the backup SRC (refused while the server runs).
    Restore { src: PathBuf },
    /// Import mail into an account from an mbox file, a directory of mbox files, or a Maildir
    /// tree; messages already there are skipped, so it can be run again.
    Import {
        address: String,
        path: PathBuf,
        /// For one mbox file, the mailbox to fill (default INBOX); for a directory, the mailbox
        /// its folders go under (default: the top level).
        #[arg(long)]
        mailbox: Option<String>,
    },
    /// Write every mailbox of an account as an mbox file under DIR (INBOX.mbox, Work/2026.mbox, ...).
    Export { address: String, dir: PathBuf },
}

#[derive(Subcommand)]
enum QueueCmd {
    /// List queued messages with their recipients, attempts and last errors.
    List,
    /// Try message ID again now (the running server picks it up within a minute).
    Retry { id: i64 },
    /// Remove message ID from the queue without delivering or bouncing it.
    Drop { id: i64 },
}

#[derive(clap::Args)]
struct InitArgs {
    /// The server's name, e.g. mail.example.org (it needs A/AAAA records pointing here).
    #[arg(long)]
    hostname: String,
    /// The first mail domain, e.g. example.org.
    #[arg(long)]
    domain: String,
    /// Where the data lives.
    #[arg(long, default_value = "/var/lib/mailroom")]
    data_dir: PathBuf,
    /// Overwrite an existing configuration file.
    #[arg(long)]
    force: bool,
}

#[derive(Subcommand)]
enum DomainCmd {
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
enum UserCmd {
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
enum AliasCmd {
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

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(matches!(cli.command, Command::Serve));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(serving: bool) {
    // The server logs at info; admin commands only say what went wrong.
    let default = if serving { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::PrintConfig => {
            print!("{}", config::DEFAULT_TOML);
            Ok(())
        }
        Command::CheckConfig => {
            let config = Config::load_or_default(cli.config.as_deref())?;
            let source = cli
                .config
                .as_deref()
                .map_or("the embedded default".to_string(), |p| {
                    p.display().to_string()
                });
            println!(
                "{source}: ok (hostname {}, data in {})",
                config.hostname,
                config.data_dir.display()
            );
            Ok(())
        }
        Command::Serve => serve(Config::load_or_default(cli.config.as_deref())?).await,
        Command::Init(args) => init(cli.config.as_deref(), args).await,
        Command::Domain(cmd) => {
            let config = Config::load_or_default(cli.config.as_deref())?;
            domain(&open_with(&config).await?, &config, cmd).await
        }
        Command::User(cmd) => {
            let config = Config::load_or_default(cli.config.as_deref())?;
            user(&open_with(&config).await?, &config, cmd).await
        }
        Command::Alias(cmd) => alias(&open(cli.config.as_deref()).await?, cmd).await,
        Command::Queue(cmd) => queue(&open(cli.config.as_deref()).await?, cmd).await,
        Command::Backup { dest } => {
            let store = open(cli.config.as_deref()).await?;
            let summary = mailroom::backup::backup(&store, &dest).await?;
            store.close().await;
            println!(
                "backed up {} messages ({}) to {}; integrity check ok",
                summary.messages,
                config::format_size(summary.bytes),
                dest.display()
            );
            Ok(())
        }
        Command::Import {
            address,
            path,
            mailbox,
        } => {
            let store = open(cli.config.as_deref()).await?;
            let result = import(&store, &address, &path, mailbox.as_deref()).await;
            store.close().await;
            result
        }
        Command::Export { address, dir } => {
            let store = open(cli.config.as_deref()).await?;
            let result = mailroom::mailbox_files::export(&store, &address, &dir).await;
            store.close().await;
            let summary = result?;
            println!(
                "exported {} messages ({}) from {} mailboxes of {} to {}",
                summary.messages,
                config::format_size(summary.bytes),
                summary.mailboxes,
                address.trim(),
                dir.display()
            );
            Ok(())
        }
        Command::Restore { src } => {
            let config = Config::load_or_default(cli.config.as_deref())?;
            let summary = mailroom::backup::restore(&config, &src).await?;
            println!(
                "restored {} messages from {} into {}",
                summary.messages,
                src.display(),
                config.database_path().display()
            );
            Ok(())
        }
    }
}

async fn open(path: Option<&Path>) -> anyhow::Result<Store> {
    open_with(&Config::load_or_default(path)?).await
}

async fn open_with(config: &Config) -> anyhow::Result<Store> {
    let path = config.database_path();
    let store = Store::open(&path)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    store.set_min_free_space(config.limits.min_free_space);
    Ok(store)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Handlers first: a SIGTERM during start-up must still mean a clean stop.
    let stop = stop_signal()?;
    let running = mailroom::app::start(config).await?;
    if let Some(login) = &running.first_login {
        // Printed once, on stdout, never logged.
        println!();
        println!("  First start: an admin account was created.");
        println!("    login:    {}", login.address);
        println!("    password: {}", login.password);
        println!("  Keep it now; it is not shown again (change it with `mailroom user passwd`).");
        println!();
        let _ = std::io::stdout().flush();
    }
    // Every listener is bound: tell systemd (Type=notify) the service is up.
    notify_systemd("READY=1\nSTATUS=serving mail");
    stop.await;
    tracing::info!("shutting down");
    notify_systemd("STOPPING=1");
    running.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// Sends `state` to systemd's notification socket when there is one (`Type=notify` units;
/// sd_notify(3) protocol: one datagram to `$NOTIFY_SOCKET`, `@` meaning the abstract namespace).
fn notify_systemd(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = (|| -> std::io::Result<()> {
        let socket = std::os::unix::net::UnixDatagram::unbound()?;
        let bytes = path.as_encoded_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(state.as_bytes(), &addr)?;
        } else {
            socket.send_to(state.as_bytes(), &path)?;
        }
        Ok(())
    })();
    if let Err(e) = sent {
        tracing::warn!("cannot notify systemd: {e}");
    }
}

/// Resolves on SIGTERM or SIGINT.
fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// The production configuration `init` writes.
fn production_config(hostname: &str, domain: &str, data_dir: &Path) -> String {
    let data_dir = data_dir
        .display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    format!(
        r#"# Mailroom configuration, written by `mailroom init`.
# Every key is documented in `mailroom print-config`.

hostname = "{hostname}"
domain = "{domain}"
data_dir = "{data_dir}"

# "[::]" listens on IPv6 and IPv4 (Linux dual stack); use "0.0.0.0" on a host without IPv6.
[listen]
smtp = ["[::]:25"]
submission = ["[::]:587"]
submissions = ["[::]:465"]
imap = ["[::]:143"]
imaps = ["[::]:993"]
pop3 = ["[::]:110"]
pop3s = ["[::]:995"]
http = ["[::]:80"]
https = ["[::]:443"]

[tls]
# Certificates from Let's Encrypt by TLS-ALPN-01 on port 443 (it must be reachable).
mode = "acme"
acme_contact = "mailto:postmaster@{domain}"
acme_domains = ["{hostname}", "autoconfig.{domain}"]
"#
    )
}

async fn init(path: Option<&Path>, args: InitArgs) -> anyhow::Result<()> {
    let path = path.unwrap_or(Path::new("/etc/mailroom/mailroom.toml"));
    if path.exists() && !args.force {
        bail!(
            "{} already exists; use --force to overwrite it",
            path.display()
        );
    }
    let text = production_config(&args.hostname, &args.domain, &args.data_dir);
    let config = Config::parse(&text, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let store = open_with(&config).await?;
    if store.domain(&config.domain).await?.is_none() {
        store.add_domain(&config.domain).await?;
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
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;

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
    println!("Then: systemctl enable --now mailroom");
    Ok(())
}

async fn domain(store: &Store, config: &Config, cmd: DomainCmd) -> anyhow::Result<()> {
    match cmd {
        DomainCmd::Add { name } => {
            let d = store.add_domain(&name).await?;
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
            println!("removed domain {}", name.trim().to_lowercase());
        }
        DomainCmd::Dns { name } => {
            let Some(domain) = store.domain(&name).await? else {
                bail!("no domain {} here", name.trim());
            };
            // Domains from before DKIM get their keys on first use, as at server start.
            store.ensure_dkim_keys().await?;
            let keys = store.dkim_keys(&domain.name).await?;
            let records =
                mailroom::records::domain_records(&config.hostname, &domain.name, keys.as_ref())?;
            print!("{}", mailroom::records::zone_file(&records));
        }
    }
    Ok(())
}

async fn user(store: &Store, config: &Config, cmd: UserCmd) -> anyhow::Result<()> {
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
            let (pw, generated) = obtain_password(password_stdin)?;
            let account = store
                .create_account(NewAccount {
                    address: &parsed.to_string(),
                    password_hash: &password::hash(&pw).await?,
                    quota_bytes: quota,
                    is_admin: admin,
                })
                .await?;
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
            if store.account_by_address(&address).await?.is_none() {
                bail!("account {} not found", address.trim());
            }
            let (pw, generated) = obtain_password(password_stdin)?;
            store
                .set_password_hash(&address, &password::hash(&pw).await?)
                .await?;
            println!("password changed for {}", address.trim());
            if generated {
                println!("password: {pw}");
            }
        }
        UserCmd::Remove { address } => {
            store.remove_account(&address).await?;
            println!("removed {} and its mail", address.trim());
        }
    }
    Ok(())
}

fn quota_text(quota: i64) -> String {
    match u64::try_from(quota) {
        Ok(0) | Err(_) => "unlimited".into(),
        Ok(q) => config::format_size(q),
    }
}

/// The password from stdin's first line, or a generated one (second value true).
fn obtain_password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
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
    if pw.len() > password::MAX_PASSWORD_LEN {
        bail!(
            "the password is longer than {} bytes",
            password::MAX_PASSWORD_LEN
        );
    }
    Ok((pw, false))
}

async fn alias(store: &Store, cmd: AliasCmd) -> anyhow::Result<()> {
    match cmd {
        AliasCmd::Add { source, targets } => {
            let a = store.add_alias(&source, &targets).await?;
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
            match target {
                Some(t) => println!("removed {} -> {}", source.trim(), t.trim()),
                None => println!("removed alias {}", source.trim()),
            }
        }
    }
    Ok(())
}

async fn queue(store: &Store, cmd: QueueCmd) -> anyhow::Result<()> {
    match cmd {
        QueueCmd::List => {
            let queued = store.queue_list().await?;
            if queued.is_empty() {
                println!("the queue is empty");
            }
            let now = mailroom::store::now();
            for m in queued {
                let sender = if m.sender.is_empty() { "<>" } else { &m.sender };
                println!(
                    "{:>6}  from {sender}, {}, queued {} ago",
                    m.id,
                    config::format_size(u64::try_from(m.size).unwrap_or(0)),
                    ago(now - m.created_at)
                );
                for r in m.recipients {
                    let next = if r.next_attempt <= now {
                        "due now".to_string()
                    } else {
                        format!("next try in {}", ago(r.next_attempt - now))
                    };
                    println!("        to {} ({} attempts, {next})", r.address, r.attempts);
                    if let Some(e) = r.last_error {
                        println!("          last error: {e}");
                    }
                }
            }
        }
        QueueCmd::Retry { id } => {
            if !store.queue_retry(id).await? {
                bail!("no queued message {id}");
            }
            println!("message {id} will be retried now");
        }
        QueueCmd::Drop { id } => {
            if !store.queue_drop(id).await? {
                bail!("no queued message {id}");
            }
            println!("message {id} removed from the queue");
        }
    }
    Ok(())
}

/// `mailroom import`: a progress line rewritten in place on a terminal, a summary at the end.
async fn import(
    store: &Store,
    address: &str,
    path: &Path,
    into: Option<&str>,
) -> anyhow::Result<()> {
    use std::time::{Duration, Instant};
    let tty = std::io::stdout().is_terminal();
    let mut shown = false;
    let mut last: Option<Instant> = None;
    let mut progress = |p: mailroom::mailbox_files::Progress<'_>| {
        if !tty || last.is_some_and(|t| t.elapsed() < Duration::from_millis(100)) {
            return;
        }
        last = Some(Instant::now());
        shown = true;
        // \r and "erase to end of line": the line is rewritten, not appended.
        print!(
            "\r\x1b[K{}: {} imported, {} already there",
            p.mailbox, p.imported, p.skipped
        );
        let _ = std::io::stdout().flush();
    };
    let result = mailroom::mailbox_files::import(store, address, path, into, &mut progress).await;
    if shown {
        print!("\r\x1b[K");
    }
    let summary = result?;
    println!(
        "imported {} messages ({}) into {}; {} were already there",
        summary.imported,
        config::format_size(summary.bytes),
        address.trim(),
        summary.skipped
    );
    if !summary.created.is_empty() {
        println!("created mailboxes: {}", summary.created.join(", "));
    }
    for failed in &summary.failed {
        eprintln!("cannot read {failed}");
    }
    if !summary.failed.is_empty() {
        bail!(
            "{} files could not be read (run the import again to retry them)",
            summary.failed.len()
        );
    }
    Ok(())
}

/// A duration in seconds, roughly, for people.
fn ago(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        0..120 => format!("{secs} s"),
        120..7200 => format!("{} min", secs / 60),
        7200..172800 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86400),
    }
}
