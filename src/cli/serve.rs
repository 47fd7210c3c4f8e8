//! `mailroom serve`: start the server, print the first login once, tell systemd, and handle the
//! process's signals in one place: SIGTERM and SIGINT stop the server (gracefully), SIGHUP
//! reloads the TLS certificate files ([`mailroom::tls::Tls::reload_logged`]; logged in every
//! mode, so a SIGHUP never terminates the server).

use std::io::Write;
use std::path::Path;

use tokio::signal::unix::{Signal, SignalKind, signal};

use mailroom::config::Config;

use super::Located;

pub async fn serve(located: Located) -> anyhow::Result<()> {
    // Handlers first: a SIGTERM during start-up must still mean a clean stop, and a SIGHUP
    // then must not end the process (its default action).
    let mut signals = Signals::new()?;
    let config = located.config;
    tracing::info!(
        "configuration {}, database {}",
        located.source,
        config.database_path().display()
    );
    let running = mailroom::app::start(config.clone()).await?;
    warn_exposed(&running, &config).await;
    if let Some(login) = &running.first_login {
        // Printed once, on stdout, never logged.
        println!();
        println!("  First start: an admin account was created.");
        println!("    login:    {}", login.address);
        println!("    password: {}", login.password);
        println!("  Keep it now; it is not shown again (change it with `mailroom user passwd`).");
        println!();
        if std::io::stdout().flush().is_ok() {
            running.first_login_shown().await?;
        }
    }
    // Every listener is bound: tell systemd (Type=notify) the service is up.
    notify_systemd("READY=1\nSTATUS=serving mail");
    signals.serve(&running.tls).await;
    tracing::info!("shutting down");
    notify_systemd("STOPPING=1");
    running.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// Warns of data at rest others may read (the data directory, the database and its WAL, the
/// last backup's directory): made before Mailroom set its umask, or changed by hand.
async fn warn_exposed(running: &mailroom::app::Running, config: &Config) {
    let last = mailroom::backup::last_backup(&running.store)
        .await
        .ok()
        .flatten();
    let backups = last.and_then(|(_, file)| file.parent().map(Path::to_path_buf));
    for path in mailroom::backup::exposed(config, backups.as_deref()) {
        tracing::warn!(
            "{} can be read by other users of this machine (it holds mail, password hashes or \
             keys): chmod go-rwx {}",
            path.display(),
            path.display()
        );
    }
}

/// The signals `serve` handles.
struct Signals {
    term: Signal,
    int: Signal,
    /// `None` when SIGHUP cannot be listened for: the server runs without certificate reloads.
    hup: Option<Signal>,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        let hup = match signal(SignalKind::hangup()) {
            Ok(hup) => Some(hup),
            Err(e) => {
                tracing::warn!("cannot listen for SIGHUP, certificate reload disabled: {e}");
                None
            }
        };
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup,
        })
    }

    /// Reloads TLS on each SIGHUP; returns on SIGTERM or SIGINT.
    async fn serve(&mut self, tls: &mailroom::tls::Tls) {
        loop {
            let hangup = async {
                match self.hup.as_mut() {
                    Some(hup) => hup.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.term.recv() => return,
                _ = self.int.recv() => return,
                received = hangup => match received {
                    Some(()) => tls.reload_logged().await,
                    // The stream ended (it cannot while we hold it): stop listening to it.
                    None => self.hup = None,
                },
            }
        }
    }
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
