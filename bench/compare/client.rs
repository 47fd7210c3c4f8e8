//! The client side, written once and pointed at either server: minimal SMTP, IMAP and POP3
//! clients over plain TCP, with a timeout on every read so a stuck server fails the run
//! instead of hanging it.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::corpus::literal_len;

/// Longest wait for one line (or literal) of a reply. Generous: SEARCH BODY over 10,000 files
/// on a busy machine can take seconds.
const READ_TIMEOUT: Duration = Duration::from_secs(300);

/// Where one server listens, and the password every bench account shares.
#[derive(Clone, Debug)]
pub struct Endpoints {
    pub smtp: SocketAddr,
    pub imap: SocketAddr,
    pub pop3: SocketAddr,
    /// The submission listener (SMTP with AUTH), where the outbound rows send; None when it
    /// is not configured (the outbound group not selected).
    pub submission: Option<SocketAddr>,
    pub password: String,
}

async fn read_line(s: &mut BufReader<TcpStream>, line: &mut Vec<u8>, what: &str) -> Result<()> {
    line.clear();
    let n = timeout(READ_TIMEOUT, s.read_until(b'\n', line))
        .await
        .map_err(|_| anyhow!("no reply within {READ_TIMEOUT:?} ({what})"))?
        .with_context(|| format!("reading ({what})"))?;
    if n == 0 {
        bail!("connection closed by the server ({what})");
    }
    Ok(())
}

async fn connect(addr: SocketAddr) -> Result<BufReader<TcpStream>> {
    let tcp = timeout(Duration::from_secs(30), TcpStream::connect(addr))
        .await
        .map_err(|_| anyhow!("connecting to {addr} timed out"))?
        .with_context(|| format!("connecting to {addr}"))?;
    tcp.set_nodelay(true).ok();
    Ok(BufReader::new(tcp))
}

// ---------------------------------------------------------------------------------------
// IMAP

pub struct Imap {
    s: BufReader<TcpStream>,
    n: u32,
    line: Vec<u8>,
}

impl Imap {
    pub async fn connect(addr: SocketAddr) -> Result<Imap> {
        let mut c = Imap {
            s: connect(addr).await?,
            n: 0,
            line: Vec::new(),
        };
        read_line(&mut c.s, &mut c.line, "IMAP greeting").await?;
        if !c.line.starts_with(b"* OK") {
            bail!(
                "IMAP greeting: {}",
                String::from_utf8_lossy(&c.line).trim_end()
            );
        }
        Ok(c)
    }

    /// Connects and logs in.
    pub async fn login(addr: SocketAddr, user: &str, password: &str) -> Result<Imap> {
        let mut c = Imap::connect(addr).await?;
        c.cmd(&format!("LOGIN {user} \"{password}\""))
            .await
            .with_context(|| format!("IMAP LOGIN {user}"))?;
        Ok(c)
    }

    /// Sends a command and reads to its tagged OK (literals skipped by length); returns the
    /// number of response bytes.
    pub async fn cmd(&mut self, command: &str) -> Result<usize> {
        Ok(self.cmd_keep(command, "").await?.0)
    }

    /// As `cmd`, also returning the untagged lines that start with `keep` (nothing when empty).
    pub async fn cmd_keep(&mut self, command: &str, keep: &str) -> Result<(usize, Vec<String>)> {
        self.send(format!("{command}\r\n").as_bytes(), command, keep)
            .await
    }

    /// APPEND of one message to INBOX as a non-synchronizing literal (LITERAL+).
    pub async fn append(&mut self, message: &[u8]) -> Result<()> {
        let mut data = format!("APPEND INBOX {{{}+}}\r\n", message.len()).into_bytes();
        data.extend_from_slice(message);
        data.extend_from_slice(b"\r\n");
        self.send(&data, "APPEND", "").await.map(|_| ())
    }

    async fn send(
        &mut self,
        after_tag: &[u8],
        what: &str,
        keep: &str,
    ) -> Result<(usize, Vec<String>)> {
        self.n += 1;
        let tag = format!("b{}", self.n);
        let mut data = format!("{tag} ").into_bytes();
        data.extend_from_slice(after_tag);
        self.s
            .get_mut()
            .write_all(&data)
            .await
            .with_context(|| format!("sending {what}"))?;
        let mut total = 0;
        let mut kept = Vec::new();
        loop {
            read_line(&mut self.s, &mut self.line, what).await?;
            total += self.line.len();
            if !keep.is_empty() && self.line.starts_with(keep.as_bytes()) {
                kept.push(String::from_utf8_lossy(&self.line).trim_end().to_string());
            }
            if let Some(len) = literal_len(&self.line) {
                let mut skip = vec![0u8; len];
                timeout(READ_TIMEOUT, self.s.read_exact(&mut skip))
                    .await
                    .map_err(|_| anyhow!("literal timed out ({what})"))?
                    .with_context(|| format!("reading a literal ({what})"))?;
                total += len;
                continue;
            }
            if self.line.starts_with(tag.as_bytes()) {
                let text = String::from_utf8_lossy(&self.line);
                if !text.starts_with(&format!("{tag} OK")) {
                    bail!("{what}: {}", text.trim_end());
                }
                return Ok((total, kept));
            }
        }
    }

    /// STATUS INBOX (MESSAGES).
    pub async fn messages(&mut self) -> Result<usize> {
        let (_, lines) = self.cmd_keep("STATUS INBOX (MESSAGES)", "* STATUS").await?;
        lines
            .iter()
            .find_map(|l| {
                l.split("MESSAGES ")
                    .nth(1)?
                    .trim_end_matches(')')
                    .trim()
                    .parse()
                    .ok()
            })
            .ok_or_else(|| anyhow!("no MESSAGES in the STATUS reply: {lines:?}"))
    }

    /// Selects INBOX and enters IDLE (waits for the continuation).
    pub async fn idle(&mut self) -> Result<()> {
        self.cmd("SELECT INBOX").await?;
        self.s
            .get_mut()
            .write_all(b"i IDLE\r\n")
            .await
            .context("sending IDLE")?;
        read_line(&mut self.s, &mut self.line, "IDLE").await?;
        if !self.line.starts_with(b"+") {
            bail!("IDLE: {}", String::from_utf8_lossy(&self.line).trim_end());
        }
        Ok(())
    }
}

/// The number of UIDs in `* SEARCH ...` lines.
pub fn search_hits(lines: &[String]) -> usize {
    lines
        .iter()
        .map(|l| l.split_whitespace().skip(2).count())
        .sum()
}

// ---------------------------------------------------------------------------------------
// POP3

pub struct Pop3 {
    s: BufReader<TcpStream>,
    line: Vec<u8>,
}

impl Pop3 {
    pub async fn login(addr: SocketAddr, user: &str, password: &str) -> Result<Pop3> {
        let mut c = Pop3 {
            s: connect(addr).await?,
            line: Vec::new(),
        };
        c.status("POP3 greeting").await?;
        c.cmd(&format!("USER {user}")).await?;
        c.cmd(&format!("PASS {password}"))
            .await
            .with_context(|| format!("POP3 login of {user}"))?;
        Ok(c)
    }

    async fn status(&mut self, what: &str) -> Result<String> {
        read_line(&mut self.s, &mut self.line, what).await?;
        let line = String::from_utf8_lossy(&self.line).trim_end().to_string();
        if !line.starts_with("+OK") {
            bail!("{what}: {line}");
        }
        Ok(line)
    }

    pub async fn cmd(&mut self, command: &str) -> Result<String> {
        self.s
            .get_mut()
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .with_context(|| format!("sending {command}"))?;
        self.status(command).await
    }

    /// Reads a multi-line body; returns its octets on the wire.
    pub async fn body(&mut self, what: &str) -> Result<usize> {
        let mut total = 0;
        loop {
            read_line(&mut self.s, &mut self.line, what).await?;
            if self.line == b".\r\n" {
                return Ok(total);
            }
            total += self.line.len();
        }
    }
}

// ---------------------------------------------------------------------------------------
// SMTP

pub struct Smtp {
    s: BufReader<TcpStream>,
    line: Vec<u8>,
}

impl Smtp {
    pub async fn connect(addr: SocketAddr) -> Result<Smtp> {
        let mut c = Smtp {
            s: connect(addr).await?,
            line: Vec::new(),
        };
        c.expect(220, "SMTP greeting").await?;
        c.s.get_mut()
            .write_all(b"EHLO client.example.net\r\n")
            .await?;
        c.expect(250, "EHLO").await?;
        Ok(c)
    }

    async fn expect(&mut self, code: u16, what: &str) -> Result<()> {
        loop {
            read_line(&mut self.s, &mut self.line, what).await?;
            if self.line.get(3) != Some(&b'-') {
                let got = String::from_utf8_lossy(&self.line);
                if got.get(..3) != Some(&code.to_string()) {
                    bail!("{what}: expected {code}, got {}", got.trim_end());
                }
                return Ok(());
            }
        }
    }

    /// AUTH PLAIN (RFC 4954), as a mail client on the submission port does after EHLO.
    pub async fn auth_plain(&mut self, user: &str, password: &str) -> Result<()> {
        use base64::Engine;
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        self.s
            .get_mut()
            .write_all(format!("AUTH PLAIN {token}\r\n").as_bytes())
            .await?;
        self.expect(235, "AUTH PLAIN").await
    }

    /// One transaction the way an MTA with PIPELINING sends it: MAIL, RCPT and DATA in one
    /// write, then the message (already dot-stuffed and ending in CRLF). Returns once the
    /// final 250 is in.
    pub async fn send(&mut self, from: &str, to: &str, message: &[u8]) -> Result<()> {
        let head = format!("MAIL FROM:<{from}>\r\nRCPT TO:<{to}>\r\nDATA\r\n");
        self.s.get_mut().write_all(head.as_bytes()).await?;
        self.expect(250, "MAIL").await?;
        self.expect(250, "RCPT").await?;
        self.expect(354, "DATA").await?;
        let mut data = message.to_vec();
        data.extend_from_slice(b".\r\n");
        self.s.get_mut().write_all(&data).await?;
        self.expect(250, "end of data").await
    }

    pub async fn quit(mut self) {
        let _ = self.s.get_mut().write_all(b"QUIT\r\n").await;
    }
}
