//! The `mailroom` command: the server and its administration. The commands are in `cli/`.

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    // Everything Mailroom writes holds mail, password hashes, DKIM keys or sessions: the data
    // directory is created 0700 and the database, its WAL, certificates and backups 0600,
    // whoever runs the command (the systemd unit sets the same UMask).
    // SAFETY: umask only swaps the process's file-creation mask; no threads exist yet.
    unsafe {
        libc::umask(0o077);
    }
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
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", cli::one_line(&e));
            ExitCode::from(1)
        }
    }
}

fn init_logging(serving: bool) {
    // The server logs at info; admin commands only say what went wrong. rustls warns of every
    // malformed ClientHello extension, most often an IP address sent as SNI (invalid by RFC
    // 6066 but common): a WARN line per connection that nobody here can act on, so its parser
    // logs only errors unless RUST_LOG asks for more. html5ever (under ammonia, sanitizing a
    // message's HTML) warns "foster parenting not implemented" for every malformed table: that
    // is about the sender's HTML, not the server (its warnings come through `log`, at WARN,
    // whatever we would rather call them), so its target logs only errors by default too.
    let default = if serving {
        "info,rustls::msgs::handshake=error,html5ever=error"
    } else {
        "warn,rustls::msgs::handshake=error,html5ever=error"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
