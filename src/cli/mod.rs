//! The `mailroom` command line: one file per group of commands.
//!
//! - `serve.rs`: `serve` (signals: SIGTERM/SIGINT stop, SIGHUP reloads TLS files; systemd
//!   notification);
//! - `init.rs`: `init` (the production configuration from `config::production_toml`, the
//!   domain, the admin account, the DNS records to publish);
//! - `config.rs`: `check-config`, `print-config`;
//! - `accounts.rs`: `domain`, `user`, `alias`;
//! - `queue.rs`: `queue list|retry|drop`;
//! - `data.rs`: `backup`, `restore`, `import`, `export`;
//! - `status.rs`: `status`.
//!
//! Every command but `serve` and `init` finds its configuration with [`locate`] and says
//! which configuration and database it uses; none of them creates a database.
//!
//! Every admin command opens the same database the server uses (SQLite allows it while the
//! server runs) and calls the same store functions as the admin panel. Errors print one line
//! on stderr and exit with status 1; nothing is half-written because each command is one
//! store transaction.

mod accounts;
mod check;
mod config;
mod data;
mod init;
mod owner;
mod queue;
mod serve;
mod smarthost;
mod status;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use mailroom::config::Config;
use mailroom::store::Store;

use accounts::{AliasCmd, DomainCmd, UserCmd};
use init::InitArgs;
use queue::QueueCmd;
use smarthost::SmarthostCmd;

#[derive(Parser)]
#[command(
    name = "mailroom",
    version,
    about = "A mail server in one binary: SMTP, IMAP, POP3, webmail, admin"
)]
pub struct Cli {
    /// Configuration file. Without it: /etc/mailroom/mailroom.toml if it exists, else the
    /// embedded trial default (data in ./data), which only `serve` creates.
    #[arg(long, short, global = true, env = "MAILROOM_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the server.
    Serve,
    /// Set up a production server: write the configuration (/etc/mailroom/mailroom.toml, or
    /// --config), create the database in --data-dir (/var/lib/mailroom), the domain and an
    /// admin account, and print the DNS records to publish and the steps left.
    Init(InitArgs),
    /// Check the configuration: syntax, then meaning (data directory, listeners, certificate
    /// files, ACME, nameservers); every problem on its own line.
    CheckConfig,
    /// Is the server running, and does anything need attention? Exit status 1 if so.
    Status,
    /// Print the fully documented default configuration.
    PrintConfig,
    /// Test what other mail servers see of this one (addresses, reverse DNS, port 25, DNS
    /// blocklists, DNS records, certificate, MTA-STS) and say how to fix each problem. Exit
    /// status 1 if a problem is found.
    Check,
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
    /// The relay outbound mail goes through when port 25 is blocked.
    #[command(subcommand)]
    Smarthost(SmarthostCmd),
    /// Write a checked copy of the database into DIR as mailroom-<date>.db while the server
    /// runs, and keep the newest --keep of them.
    Backup {
        dir: PathBuf,
        /// How many backups to keep in DIR (0: all).
        #[arg(long, default_value_t = 7)]
        keep: usize,
    },
    /// Replace the database with the backup SRC (refused while the server runs), after
    /// saying what the backup holds.
    Restore {
        src: PathBuf,
        /// Do not ask before replacing the database.
        #[arg(long)]
        yes: bool,
    },
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

/// Where the production configuration lives: the package installs it and `init` writes it.
pub const SYSTEM_CONFIG: &str = "/etc/mailroom/mailroom.toml";

/// The configuration a command acts on, and where it came from (said to the user).
pub struct Located {
    pub config: Config,
    pub source: String,
}

/// Finds the configuration the way the service does: `--config` (or `MAILROOM_CONFIG`), then
/// [`SYSTEM_CONFIG`] if it exists, then the embedded trial default, but that only for `serve`
/// (`trial`) or where a trial's `./data` already exists. Anything else is refused: an admin
/// command run from the wrong directory must not act on an empty trial database while
/// production is untouched.
pub fn locate(given: Option<&Path>, trial: bool) -> anyhow::Result<Located> {
    if let Some(path) = given {
        return Ok(Located {
            config: Config::load(path)?,
            source: path.display().to_string(),
        });
    }
    let system = Path::new(SYSTEM_CONFIG);
    if system.exists() {
        return Ok(Located {
            config: Config::load(system)?,
            source: SYSTEM_CONFIG.to_string(),
        });
    }
    let config = Config::embedded();
    if trial || config.data_dir.exists() {
        return Ok(Located {
            config,
            source: "the embedded trial configuration".to_string(),
        });
    }
    bail!(
        "no configuration found: {SYSTEM_CONFIG} does not exist and there is no trial data \
         (./data) here; give --config FILE (or set MAILROOM_CONFIG), or run `mailroom init` first"
    )
}

/// Runs one command to its end.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let path = cli.config.as_deref();
    match cli.command {
        Command::PrintConfig => config::print(),
        Command::CheckConfig => config::check(path).await,
        Command::Serve => serve::serve(locate(path, true)?).await,
        Command::Init(args) => init::init(path, args).await,
        Command::Status => status::status(path).await,
        Command::Check => check::check(path).await,
        Command::Domain(cmd) => {
            let (store, config) = open_config(path).await?;
            accounts::domain(&store, &config, cmd).await
        }
        Command::User(cmd) => {
            let (store, config) = open_config(path).await?;
            accounts::user(&store, &config, cmd).await
        }
        Command::Alias(cmd) => accounts::alias(&open(path).await?, cmd).await,
        Command::Queue(cmd) => queue::queue(&open(path).await?, cmd).await,
        Command::Smarthost(cmd) => smarthost::smarthost(&open(path).await?, cmd).await,
        Command::Backup { dir, keep } => data::backup(path, &dir, keep).await,
        Command::Restore { src, yes } => data::restore(path, &src, yes).await,
        Command::Import {
            address,
            path: from,
            mailbox,
        } => data::import(path, &address, &from, mailbox.as_deref()).await,
        Command::Export { address, dir } => data::export(path, &address, &dir).await,
    }
}

/// The configuration and the existing database an admin command acts on, both named on
/// stderr (stdout stays the command's own output, for scripts).
async fn open_config(path: Option<&Path>) -> anyhow::Result<(Store, Config)> {
    let located = locate(path, false)?;
    let store = open_existing(&located).await?;
    Ok((store, located.config))
}

async fn open(path: Option<&Path>) -> anyhow::Result<Store> {
    Ok(open_config(path).await?.0)
}

/// Opens the database of `located`, which must exist: only `serve` and `init` create one.
async fn open_existing(located: &Located) -> anyhow::Result<Store> {
    let path = located.config.database_path();
    eprintln!(
        "mailroom: configuration {}, database {}",
        located.source,
        path.display()
    );
    if !path.exists() {
        bail!(
            "there is no database at {}: run `mailroom init` (or `mailroom serve`) first, or \
             give the configuration of the server you mean with --config",
            path.display()
        );
    }
    owner::act_as_owner(&located.config.data_dir)?;
    open_with(&located.config).await
}

/// Opens (or, for `init`, creates) the database of `config`.
async fn open_with(config: &Config) -> anyhow::Result<Store> {
    let path = config.database_path();
    let store = Store::open(&path)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    store.set_min_free_space(config.limits.min_free_space);
    Ok(store)
}

/// An error as one line: each cause once, even where a message already quotes its source
/// (`cannot open X: file is not a database`, not that plus the cause twice more).
pub fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}
