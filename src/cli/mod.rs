//! The `mailroom` command line: one file per group of commands.
//!
//! - `serve.rs`: `serve` (signals: SIGTERM/SIGINT stop, SIGHUP reloads TLS files; systemd
//!   notification);
//! - `init.rs`: `init` (the production configuration from `config::production_toml`, the
//!   domain, the admin account, the DNS records to publish);
//! - `config.rs`: `check-config`, `print-config`;
//! - `accounts.rs`: `domain`, `user`, `alias`;
//! - `queue.rs`: `queue list|retry|drop`;
//! - `data.rs`: `backup`, `restore`, `import`, `export`.
//!
//! Every admin command opens the same database the server uses (SQLite allows it while the
//! server runs) and calls the same store functions as the admin panel. Errors print one line
//! on stderr and exit with status 1; nothing is half-written because each command is one
//! store transaction.

mod accounts;
mod config;
mod data;
mod init;
mod queue;
mod serve;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};

use mailroom::config::Config;
use mailroom::store::Store;

use accounts::{AliasCmd, DomainCmd, UserCmd};
use init::InitArgs;
use queue::QueueCmd;

#[derive(Parser)]
#[command(
    name = "mailroom",
    version,
    about = "A mail server in one binary: SMTP, IMAP, POP3, webmail, admin"
)]
pub struct Cli {
    /// Configuration file; without it, the embedded default (a local trial in ./data).
    #[arg(long, short, global = true, env = "MAILROOM_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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

/// Runs one command to its end.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let path = cli.config.as_deref();
    match cli.command {
        Command::PrintConfig => config::print(),
        Command::CheckConfig => config::check(path),
        Command::Serve => serve::serve(Config::load_or_default(path)?).await,
        Command::Init(args) => init::init(path, args).await,
        Command::Domain(cmd) => {
            let config = Config::load_or_default(path)?;
            accounts::domain(&open_with(&config).await?, &config, cmd).await
        }
        Command::User(cmd) => {
            let config = Config::load_or_default(path)?;
            accounts::user(&open_with(&config).await?, &config, cmd).await
        }
        Command::Alias(cmd) => accounts::alias(&open(path).await?, cmd).await,
        Command::Queue(cmd) => queue::queue(&open(path).await?, cmd).await,
        Command::Backup { dest } => data::backup(path, &dest).await,
        Command::Restore { src } => data::restore(path, &src).await,
        Command::Import {
            address,
            path: from,
            mailbox,
        } => data::import(path, &address, &from, mailbox.as_deref()).await,
        Command::Export { address, dir } => data::export(path, &address, &dir).await,
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
