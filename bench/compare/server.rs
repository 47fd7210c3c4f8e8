//! What the two servers share: their memory figures and waiting for a listener.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use tokio::net::TcpStream;

use crate::procs::Mem;

/// A server's memory: every process of it, and the processes that serve IMAP (Mailroom's one
/// process; Dovecot's processes without Postfix's).
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    pub all: Mem,
    pub imap: Mem,
}

/// Waits until `addr` accepts connections; `exited` says whether the server died meanwhile.
/// Tries every 5 ms: the start-up rows are timed with it.
pub async fn wait_listening(
    addr: SocketAddr,
    mut exited: impl FnMut() -> Option<String>,
) -> Result<()> {
    let t = Instant::now();
    loop {
        if TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if let Some(why) = exited() {
            bail!("{why} before listening on {addr}");
        }
        // Long enough for a first start that checks a large database (the scale rows').
        if t.elapsed() > Duration::from_secs(900) {
            bail!("nothing listening on {addr} after 900 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
