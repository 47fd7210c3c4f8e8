//! The outbound SMTP client: one transaction (MAIL, RCPT..., DATA) to one peer, with STARTTLS
//! whenever the peer offers it and PIPELINING when it allows.
//!
//! Replies are bounded (line length and line count) and every read and write has a timeout, so a
//! hostile or stuck peer costs at most one worker slot for `timeout`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf,
};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::wire::dot::BareCr;

const MAX_REPLY_LINE: usize = 4096;
const MAX_REPLY_LINES: usize = 100;

/// A reply of the peer: its code and text lines joined by a space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

/// What went wrong talking to a peer, before any per-recipient answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Io(String),
    #[error("timed out {0}")]
    Timeout(&'static str),
    #[error("bad reply: {0}")]
    Protocol(String),
    /// The peer refused the session or the sender: the code says for how long.
    #[error("{0}")]
    Rejected(Reply),
    #[error("TLS: {0}")]
    Tls(String),
    /// TLS was required and the peer does not offer STARTTLS or refused it.
    #[error("TLS: {0}")]
    NoStartTls(String),
    /// The peer's certificate failed verification: the RFC 8460 result type and what rustls
    /// said.
    #[error("TLS: {1}")]
    Certificate(&'static str, String),
    /// A relay refused our AUTH: our configuration is at fault, so never a bounce.
    #[error("the smarthost refused our credentials: {0}")]
    AuthRefused(String),
}

impl ClientError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, ClientError::Rejected(r) if r.is_permanent())
    }

    /// The RFC 8460 §4.3 result type of a failed TLS negotiation (for TLS reports); None for
    /// errors that are not about TLS.
    pub fn tls_result_type(&self) -> Option<&'static str> {
        match self {
            ClientError::NoStartTls(_) => Some("starttls-not-supported"),
            ClientError::Certificate(kind, _) => Some(kind),
            ClientError::Tls(_) => Some("validation-failure"),
            _ => None,
        }
    }
}

/// "TLSv1_3 TLS13_AES_256_GCM_SHA384": the version and cipher of a session.
fn describe_tls(session: &rustls::ClientConnection) -> String {
    format!(
        "{} {}",
        session
            .protocol_version()
            .and_then(|v| v.as_str())
            .unwrap_or("TLS"),
        session
            .negotiated_cipher_suite()
            .and_then(|c| c.suite().as_str())
            .unwrap_or("")
    )
    .trim()
    .to_string()
}

/// A failed handshake as a [`ClientError`], certificate problems by their RFC 8460 name.
fn handshake_error(e: std::io::Error) -> ClientError {
    use rustls::CertificateError as C;
    let kind = match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(c)) => match c {
            C::NotValidForName | C::NotValidForNameContext { .. } => "certificate-host-mismatch",
            C::Expired
            | C::ExpiredContext { .. }
            | C::NotValidYet
            | C::NotValidYetContext { .. } => "certificate-expired",
            _ => "certificate-not-trusted",
        },
        _ => return ClientError::Tls(e.to_string()),
    };
    ClientError::Certificate(kind, e.to_string())
}

/// How the session went for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered(Reply),
    Deferred(String),
    Failed(String),
}

/// One message to send: envelope and content.
pub struct Envelope<'a> {
    pub sender: &'a str,
    pub recipients: &'a [String],
    pub message: &'a [u8],
    pub smtputf8: bool,
}

/// How to talk to peers.
#[derive(Clone)]
pub struct ClientSettings {
    /// Our name, said in EHLO.
    pub hostname: String,
    pub timeout: Duration,
    pub require_tls: bool,
    opportunistic: Arc<ClientConfig>,
    verified: Arc<ClientConfig>,
}

impl ClientSettings {
    pub fn new(hostname: String, timeout: Duration, require_tls: bool) -> ClientSettings {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let verified = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map(|b| b.with_root_certificates(roots).with_no_client_auth());
        let opportunistic = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map(|b| {
                b.dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                    .with_no_client_auth()
            });
        // Both builders fail only if ring offers no safe protocol version, which it always does.
        let (Ok(verified), Ok(opportunistic)) = (verified, opportunistic) else {
            unreachable!("ring supports TLS 1.2 and 1.3");
        };
        ClientSettings {
            hostname,
            timeout,
            require_tls,
            opportunistic: Arc::new(opportunistic),
            verified: Arc::new(verified),
        }
    }

    /// Also trusts `extra` (a private CA, or a test's) for verified TLS, beside the WebPKI
    /// roots. Certificates that are not CAs rustls can use are skipped.
    pub fn with_extra_roots(mut self, extra: &[CertificateDer<'static>]) -> ClientSettings {
        if extra.is_empty() {
            return self;
        }
        let mut roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        roots.add_parsable_certificates(extra.iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        if let Ok(builder) =
            ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions()
        {
            self.verified = Arc::new(builder.with_root_certificates(roots).with_no_client_auth());
        }
        self
    }

    /// The verified configuration (WebPKI roots and any extra ones): also what the MTA-STS
    /// policy fetch uses.
    pub fn verified_config(&self) -> Arc<ClientConfig> {
        self.verified.clone()
    }

    /// The configuration that encrypts without checking the certificate (opportunistic TLS;
    /// DANE's "encrypt" for hosts whose TLSA records are all unusable).
    pub fn opportunistic_config(&self) -> Arc<ClientConfig> {
        self.opportunistic.clone()
    }
}

/// How one connection treats STARTTLS, and with which client configuration.
enum Starttls {
    Skip,
    /// Used when the peer offers it; a refusal leaves the session in plain text.
    Offered(Arc<ClientConfig>),
    /// No session without it.
    Required(Arc<ClientConfig>),
}

/// A client configuration (ring, safe protocol versions) that checks server certificates
/// with `verifier` alone: DANE's.
pub fn config_with_verifier(verifier: Arc<dyn ServerCertVerifier>) -> Option<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()
        .map(|b| {
            Arc::new(
                b.dangerous()
                    .with_custom_certificate_verifier(verifier)
                    .with_no_client_auth(),
            )
        })
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The connection, plain or after STARTTLS.
struct Conn(Box<dyn Io>);

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

/// An SMTP session with one peer.
pub struct Client {
    conn: BufReader<Conn>,
    timeout: Duration,
    extensions: Vec<String>,
    /// The TLS version and cipher, when the session is encrypted.
    pub tls: Option<String>,
}

impl Client {
    /// Connects to `addr`, reads the greeting, says EHLO and upgrades with STARTTLS when the
    /// peer offers it (`peer_name` is checked against the certificate only with
    /// `require_tls`). With `try_tls` false STARTTLS is skipped: the caller's retry after a
    /// failed handshake, as opportunistic TLS must still deliver.
    pub async fn connect(
        settings: &ClientSettings,
        addr: std::net::SocketAddr,
        peer_name: &str,
        try_tls: bool,
    ) -> Result<Client, ClientError> {
        let tls = match (try_tls, settings.require_tls) {
            (_, true) => Starttls::Required(settings.verified.clone()),
            (true, false) => Starttls::Offered(settings.opportunistic.clone()),
            (false, false) => Starttls::Skip,
        };
        Client::open(settings, addr, peer_name, tls).await
    }

    /// Like [`Client::connect`], but STARTTLS is required and the peer's certificate is
    /// checked by `config` alone (DANE's verifier, whatever `require_tls` says): no session
    /// without it.
    pub async fn connect_authenticated(
        settings: &ClientSettings,
        addr: std::net::SocketAddr,
        peer_name: &str,
        config: Arc<ClientConfig>,
    ) -> Result<Client, ClientError> {
        Client::open(settings, addr, peer_name, Starttls::Required(config)).await
    }

    async fn open(
        settings: &ClientSettings,
        addr: std::net::SocketAddr,
        peer_name: &str,
        tls: Starttls,
    ) -> Result<Client, ClientError> {
        let tcp = tokio::time::timeout(settings.timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout("connecting"))?
            .map_err(|e| ClientError::Io(format!("cannot connect to {addr}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let mut client = Client {
            conn: BufReader::new(Conn(Box::new(tcp))),
            timeout: settings.timeout,
            extensions: Vec::new(),
            tls: None,
        };
        let greeting = client.reply("waiting for the greeting").await?;
        if !greeting.is_positive() {
            return Err(ClientError::Rejected(greeting));
        }
        client.ehlo(&settings.hostname).await?;
        let (config, required) = match tls {
            Starttls::Skip => return Ok(client),
            Starttls::Offered(config) => (config, false),
            Starttls::Required(config) => (config, true),
        };
        if client.has("STARTTLS") {
            let reply = client.command("STARTTLS\r\n", "after STARTTLS").await?;
            if reply.code != 220 {
                if required {
                    return Err(ClientError::NoStartTls(format!(
                        "STARTTLS refused: {reply}"
                    )));
                }
                return Ok(client);
            }
            client = client.upgrade(settings, config, peer_name).await?;
            client.ehlo(&settings.hostname).await?;
        } else if required {
            return Err(ClientError::NoStartTls(
                "the peer does not offer STARTTLS".into(),
            ));
        }
        Ok(client)
    }

    async fn upgrade(
        self,
        settings: &ClientSettings,
        config: Arc<ClientConfig>,
        peer_name: &str,
    ) -> Result<Client, ClientError> {
        if !self.conn.buffer().is_empty() {
            // Anything sent before the handshake would be injected into the TLS session.
            return Err(ClientError::Protocol(
                "data after the STARTTLS reply".into(),
            ));
        }
        let name = ServerName::try_from(peer_name.to_string())
            .map_err(|e| ClientError::Tls(format!("{peer_name}: {e}")))?;
        let inner = self.conn.into_inner();
        let tls = tokio::time::timeout(
            settings.timeout,
            TlsConnector::from(config).connect(name, inner),
        )
        .await
        .map_err(|_| ClientError::Timeout("in the TLS handshake"))?
        .map_err(handshake_error)?;
        let description = describe_tls(tls.get_ref().1);
        Ok(Client {
            conn: BufReader::new(Conn(Box::new(tls))),
            timeout: self.timeout,
            extensions: Vec::new(),
            tls: Some(description),
        })
    }

    /// Connects to a smarthost (a relay we log in to) at `addr`: TLS from the first byte, or
    /// STARTTLS required; either way the certificate must be valid for `host` (WebPKI roots
    /// and `[queue] ca_file`), whatever `require_tls` says, since the password follows.
    pub async fn connect_relay(
        settings: &ClientSettings,
        addr: std::net::SocketAddr,
        host: &str,
        tls: crate::store::RelayTls,
    ) -> Result<Client, ClientError> {
        if tls == crate::store::RelayTls::Starttls {
            let mut strict = settings.clone();
            strict.require_tls = true;
            return Client::connect(&strict, addr, host, true).await;
        }
        let tcp = tokio::time::timeout(settings.timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout("connecting"))?
            .map_err(|e| ClientError::Io(format!("cannot connect to {addr}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| ClientError::Tls(format!("{host}: {e}")))?;
        let stream = tokio::time::timeout(
            settings.timeout,
            TlsConnector::from(settings.verified.clone()).connect(name, tcp),
        )
        .await
        .map_err(|_| ClientError::Timeout("in the TLS handshake"))?
        .map_err(handshake_error)?;
        let description = describe_tls(stream.get_ref().1);
        let mut client = Client {
            conn: BufReader::new(Conn(Box::new(stream))),
            timeout: settings.timeout,
            extensions: Vec::new(),
            tls: Some(description),
        };
        let greeting = client.reply("waiting for the greeting").await?;
        if !greeting.is_positive() {
            return Err(ClientError::Rejected(greeting));
        }
        client.ehlo(&settings.hostname).await?;
        Ok(client)
    }

    /// Logs in with AUTH PLAIN, or LOGIN when the relay offers only that (RFC 4954). Any
    /// refusal is [`ClientError::AuthRefused`]: the credentials are ours to fix.
    pub async fn authenticate(
        &mut self,
        username: &str,
        password: &str,
    ) -> Result<(), ClientError> {
        use base64::Engine;
        use base64::engine::general_purpose::STANDARD as B64;
        let mechanisms: Vec<String> = self
            .extensions
            .iter()
            .find(|e| e.split(' ').next() == Some("AUTH"))
            .map(|e| e.split_whitespace().skip(1).map(str::to_string).collect())
            .unwrap_or_default();
        let refused = |reply: Reply| ClientError::AuthRefused(reply.to_string());
        if mechanisms.iter().any(|m| m == "PLAIN") {
            let token = B64.encode(format!("\0{username}\0{password}"));
            let reply = self
                .command(&format!("AUTH PLAIN {token}\r\n"), "after AUTH")
                .await?;
            return if reply.code == 235 {
                Ok(())
            } else {
                Err(refused(reply))
            };
        }
        if !mechanisms.iter().any(|m| m == "LOGIN") {
            return Err(ClientError::AuthRefused(
                "the relay offers neither AUTH PLAIN nor AUTH LOGIN".into(),
            ));
        }
        for step in ["AUTH LOGIN".to_string(), B64.encode(username)] {
            let reply = self.command(&format!("{step}\r\n"), "after AUTH").await?;
            if reply.code != 334 {
                return Err(refused(reply));
            }
        }
        let reply = self
            .command(&format!("{}\r\n", B64.encode(password)), "after AUTH")
            .await?;
        if reply.code == 235 {
            Ok(())
        } else {
            Err(refused(reply))
        }
    }

    async fn ehlo(&mut self, hostname: &str) -> Result<(), ClientError> {
        let reply = self
            .command(&format!("EHLO {hostname}\r\n"), "after EHLO")
            .await?;
        if reply.is_positive() {
            // The first line is the peer's name; the rest are extensions.
            self.extensions = reply
                .text
                .split('\n')
                .skip(1)
                .map(|l| l.trim().to_ascii_uppercase())
                .collect();
            return Ok(());
        }
        let reply = self
            .command(&format!("HELO {hostname}\r\n"), "after HELO")
            .await?;
        if !reply.is_positive() {
            return Err(ClientError::Rejected(reply));
        }
        self.extensions.clear();
        Ok(())
    }

    /// True when the peer's EHLO listed `extension` (a keyword, compared case-insensitively).
    pub fn has(&self, extension: &str) -> bool {
        self.extensions
            .iter()
            .any(|e| e.split(' ').next() == Some(extension))
    }

    /// Sends one message; the outcome for each recipient, in the order given. An error means
    /// the whole transaction failed before any recipient was decided.
    pub async fn send(&mut self, envelope: &Envelope<'_>) -> Result<Vec<Outcome>, ClientError> {
        if envelope.smtputf8 && !self.has("SMTPUTF8") {
            let why =
                "the receiving server does not support SMTPUTF8 (internationalised addresses)";
            return Ok(envelope
                .recipients
                .iter()
                .map(|_| Outcome::Failed(why.to_string()))
                .collect());
        }
        let mut mail = format!("MAIL FROM:<{}>", envelope.sender);
        if self.has("SIZE") {
            mail.push_str(&format!(" SIZE={}", envelope.message.len()));
        }
        if self.has("8BITMIME") && !envelope.message.is_ascii() {
            mail.push_str(" BODY=8BITMIME");
        }
        if envelope.smtputf8 {
            mail.push_str(" SMTPUTF8");
        }
        mail.push_str("\r\n");
        let rcpts: Vec<String> = envelope
            .recipients
            .iter()
            .map(|r| format!("RCPT TO:<{r}>\r\n"))
            .collect();

        let (mail_reply, rcpt_replies) = if self.has("PIPELINING") {
            // RFC 2920: MAIL and every RCPT in one write, then the replies in order.
            let batch = std::iter::once(mail.as_str())
                .chain(rcpts.iter().map(String::as_str))
                .collect::<String>();
            self.write(batch.as_bytes()).await?;
            let mail_reply = self.reply("after MAIL").await?;
            let mut replies = Vec::with_capacity(rcpts.len());
            for _ in &rcpts {
                replies.push(self.reply("after RCPT").await?);
            }
            (mail_reply, replies)
        } else {
            let mail_reply = self.command(&mail, "after MAIL").await?;
            let mut replies = Vec::with_capacity(rcpts.len());
            if mail_reply.is_positive() {
                for rcpt in &rcpts {
                    replies.push(self.command(rcpt, "after RCPT").await?);
                }
            }
            (mail_reply, replies)
        };
        if !mail_reply.is_positive() {
            let _ = self.command("RSET\r\n", "after RSET").await;
            return Err(ClientError::Rejected(mail_reply));
        }
        let mut outcomes: Vec<Option<Outcome>> = rcpt_replies
            .iter()
            .map(|r| match r.code {
                200..=299 => None,
                500.. => Some(Outcome::Failed(r.to_string())),
                _ => Some(Outcome::Deferred(r.to_string())),
            })
            .collect();
        if outcomes.iter().all(Option::is_some) {
            let _ = self.command("RSET\r\n", "after RSET").await;
            return Ok(outcomes.into_iter().flatten().collect());
        }
        let data = self.command("DATA\r\n", "after DATA").await?;
        let last = if data.code == 354 {
            // Bare CRs become line ends: see `BareCr::LineEnd` (SMTP smuggling).
            let payload = crate::wire::dot::dot_stuff(envelope.message, BareCr::LineEnd);
            self.write(&payload).await?;
            self.reply("after the message").await?
        } else {
            data
        };
        Ok(outcomes
            .iter_mut()
            .map(|o| {
                o.take().unwrap_or_else(|| match last.code {
                    200..=299 => Outcome::Delivered(last.clone()),
                    500.. => Outcome::Failed(last.to_string()),
                    _ => Outcome::Deferred(last.to_string()),
                })
            })
            .collect())
    }

    /// Ends the session politely; errors do not matter any more.
    pub async fn quit(mut self) {
        let _ = self.command("QUIT\r\n", "after QUIT").await;
    }

    async fn command(&mut self, line: &str, waiting: &'static str) -> Result<Reply, ClientError> {
        self.write(line.as_bytes()).await?;
        self.reply(waiting).await
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let conn = self.conn.get_mut();
        tokio::time::timeout(self.timeout, async {
            conn.write_all(bytes).await?;
            conn.flush().await
        })
        .await
        .map_err(|_| ClientError::Timeout("sending"))?
        .map_err(|e| ClientError::Io(e.to_string()))
    }

    /// Reads one (possibly multi-line) reply. Lines of a multi-line reply are joined by `\n`.
    async fn reply(&mut self, waiting: &'static str) -> Result<Reply, ClientError> {
        let mut text = String::new();
        for _ in 0..MAX_REPLY_LINES {
            let mut line = Vec::new();
            let read = tokio::time::timeout(
                self.timeout,
                AsyncReadExt::take(&mut self.conn, MAX_REPLY_LINE as u64)
                    .read_until(b'\n', &mut line),
            )
            .await
            .map_err(|_| ClientError::Timeout(waiting))?
            .map_err(|e| ClientError::Io(e.to_string()))?;
            if read == 0 {
                return Err(ClientError::Io(format!("connection closed {waiting}")));
            }
            if line.last() != Some(&b'\n') {
                return Err(ClientError::Protocol("reply line too long".into()));
            }
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\r', '\n']);
            let code = line
                .get(..3)
                .and_then(|c| c.parse::<u16>().ok())
                .filter(|c| (200..600).contains(c))
                .ok_or_else(|| ClientError::Protocol(format!("{line:?}")))?;
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(line.get(4..).unwrap_or(""));
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(Reply { code, text });
            }
        }
        Err(ClientError::Protocol("reply has too many lines".into()))
    }
}

/// Opportunistic TLS (RFC 7435): encrypt against passive listeners even when the peer's
/// certificate cannot be verified, as every MTA does without MTA-STS or DANE. The signature
/// checks still run, so the handshake itself is sound.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
