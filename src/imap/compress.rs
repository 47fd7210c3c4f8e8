//! COMPRESS=DEFLATE (RFC 4978): after the tagged OK, everything both ways is raw deflate
//! (RFC 1951, no zlib header). [`Stream`] wraps the connection (plain or TLS) for the whole
//! session and passes bytes through until [`Stream::start`].
//!
//! - Every flush of the session (each response, each `+` continuation) ends with a
//!   Z_SYNC_FLUSH, so the client can decode everything sent so far and never waits for more.
//! - Reading inflates at most what the session's read buffer holds: the line and literal
//!   limits of `framing.rs` count the decompressed bytes, so a decompression bomb meets the
//!   same limits as plain input and is never held whole.
//! - Memory of an idle session: the inflater must keep the client's 32 KiB window (the client
//!   may refer back to anything in it), about 43 KiB with miniz_oxide. The deflater (about
//!   300 KiB with its hash tables) lives only from a response's first write to its sync flush:
//!   a sync flush ends on a block boundary, and a new raw deflater's output continues the same
//!   stream (it only no longer refers back to earlier responses), so the client notices
//!   nothing, and sessions at rest hold none. The cost: a new deflater per response (its
//!   tables come zeroed from the allocator) and no back-references across responses.
//!   Buffers above [`KEEP`] are given back once drained.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use imap_codec::fragmentizer::Fragmentizer;

use super::framing::fragment_limit;
use super::response::Status as ReplyStatus;
use super::session::Session;
use crate::net::{TlsInfo, Transport};

/// Buffer capacity kept between responses.
const KEEP: usize = 16 * 1024;
/// Compressed input read at a time.
const INPUT_CHUNK: usize = 4 * 1024;

/// The connection, compressed or not.
pub struct Stream<T> {
    inner: T,
    z: Option<Box<Deflate>>,
}

struct Deflate {
    inflate: Decompress,
    /// Compressed input not yet inflated: `input[in_pos..]`.
    input: Vec<u8>,
    in_pos: usize,
    /// The last inflate filled the room it was given: it may hold more output even without
    /// more input.
    more: bool,
    /// `None` between responses (see the module documentation).
    deflate: Option<Compress>,
    /// Compressed output not yet written: `output[out_pos..]`.
    output: Vec<u8>,
    out_pos: usize,
}

fn corrupt(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("deflate: {e}"))
}

impl<T> Stream<T> {
    pub fn new(inner: T) -> Stream<T> {
        Stream { inner, z: None }
    }

    pub fn is_compressed(&self) -> bool {
        self.z.is_some()
    }

    /// Compresses from now on (the tagged OK has been written and flushed in clear).
    pub fn start(&mut self) {
        self.z = Some(Box::new(Deflate {
            inflate: Decompress::new(false),
            input: Vec::new(),
            in_pos: 0,
            more: false,
            deflate: None,
            output: Vec::new(),
            out_pos: 0,
        }));
    }
}

impl Deflate {
    /// Deflates `data` into `output` with `flush`, all of it.
    fn compress(&mut self, data: &[u8], flush: FlushCompress) -> io::Result<()> {
        let deflate = self
            .deflate
            .get_or_insert_with(|| Compress::new(Compression::fast(), false));
        let mut data = data;
        loop {
            self.output.reserve(data.len() / 2 + 128);
            let before_in = deflate.total_in();
            let before_out = deflate.total_out();
            deflate
                .compress_vec(data, &mut self.output, flush)
                .map_err(corrupt)?;
            let used = usize::try_from(deflate.total_in() - before_in).unwrap_or(usize::MAX);
            data = data.get(used..).unwrap_or_default();
            let produced = deflate.total_out() - before_out;
            // Done when the input is used up and (for a flush) the output did not fill the
            // room given, i.e. the compressor has nothing more to say.
            if data.is_empty() && self.output.len() < self.output.capacity() {
                return Ok(());
            }
            if used == 0 && produced == 0 && self.output.len() < self.output.capacity() {
                return Err(corrupt("compressor made no progress"));
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> Stream<T> {
    /// Writes out the pending compressed bytes.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(z) = self.z.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        while let Some(pending) = z.output.get(z.out_pos..).filter(|p| !p.is_empty()) {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            z.out_pos += n;
        }
        z.output.clear();
        z.out_pos = 0;
        if z.output.capacity() > KEEP {
            z.output = Vec::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Stream<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(z) = this.z.as_mut() else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        loop {
            if z.in_pos < z.input.len() || z.more {
                let room = buf.remaining();
                let before_in = z.inflate.total_in();
                let before_out = z.inflate.total_out();
                let status = z
                    .inflate
                    .decompress(
                        z.input.get(z.in_pos..).unwrap_or_default(),
                        buf.initialize_unfilled(),
                        FlushDecompress::Sync,
                    )
                    .map_err(corrupt)?;
                let used = usize::try_from(z.inflate.total_in() - before_in).unwrap_or(0);
                let made = usize::try_from(z.inflate.total_out() - before_out).unwrap_or(0);
                z.in_pos += used;
                z.more = made > 0 && made == room;
                if z.in_pos >= z.input.len() {
                    z.input.clear();
                    z.in_pos = 0;
                }
                if status == Status::StreamEnd {
                    // A final block: the client ends compression, which RFC 4978 has no
                    // way back from. Treated as the end of the connection.
                    buf.advance(made);
                    return Poll::Ready(Ok(()));
                }
                if made > 0 {
                    buf.advance(made);
                    return Poll::Ready(Ok(()));
                }
                if used > 0 {
                    continue;
                }
                // An incomplete symbol: more input is needed.
            }
            // Keep unconsumed bytes at the front, then read more.
            if z.in_pos > 0 {
                z.input.drain(..z.in_pos);
                z.in_pos = 0;
            }
            if z.input.len() > 64 * 1024 {
                return Poll::Ready(Err(corrupt("no progress in 64 KiB of input")));
            }
            let mut chunk = [0u8; INPUT_CHUNK];
            let mut rb = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    if rb.filled().is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                    z.input.extend_from_slice(rb.filled());
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    if z.input.is_empty() && z.input.capacity() > KEEP {
                        z.input = Vec::new();
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Stream<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.z.is_none() {
            return Pin::new(&mut this.inner).poll_write(cx, data);
        }
        // Earlier output first, so that what is held stays about one write's worth.
        ready!(this.drain(cx))?;
        if let Some(z) = this.z.as_mut() {
            z.compress(data, FlushCompress::None)?;
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(z) = this.z.as_mut()
            && z.deflate.is_some()
        {
            z.compress(&[], FlushCompress::Sync)?;
            // The response is complete: the deflater goes (a retried flush then only drains).
            z.deflate = None;
        }
        ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<T: Transport> Transport for Stream<T> {
    fn can_starttls(&self) -> bool {
        self.z.is_none() && self.inner.can_starttls()
    }
    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
    fn tls_info(&self) -> Option<TlsInfo> {
        self.inner.tls_info()
    }
    fn starttls(&mut self) -> impl Future<Output = io::Result<()>> + Send {
        self.inner.starttls()
    }
    fn set_idle_timeout(&mut self, idle: Duration) {
        self.inner.set_idle_timeout(idle);
    }
    fn authenticated(&mut self) {
        self.inner.authenticated();
    }
}

impl<T: Transport> Session<T> {
    /// COMPRESS DEFLATE: the tagged OK in clear, then deflate both ways. Anything the client
    /// sent after the command before reading the OK is dropped, as after STARTTLS.
    pub(super) async fn compress(&mut self, tag: &str) -> io::Result<()> {
        if self.account.is_none() {
            self.out
                .tagged(tag, ReplyStatus::Bad, "COMPRESS is only valid after login");
            self.bad_in_row += 1;
            return Ok(());
        }
        if self.io.is_compressed() {
            self.out.tagged(
                tag,
                ReplyStatus::No,
                "[COMPRESSIONACTIVE] DEFLATE is already active",
            );
            return Ok(());
        }
        self.out.tagged(tag, ReplyStatus::Ok, "DEFLATE active");
        self.flush().await?;
        self.frag = Fragmentizer::new(fragment_limit(&self.imap));
        self.line_start = 0;
        self.in_literal = false;
        self.io.start();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn deflate(c: &mut Compress, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 1024);
        c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
        out
    }

    fn inflate(d: &mut Decompress, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 << 20);
        d.decompress_vec(data, &mut out, FlushDecompress::Sync)
            .unwrap();
        out
    }

    /// Input that inflates to far more than the reader's buffer arrives whole, read a few
    /// bytes at a time: the inflater is drained before the socket is read again.
    #[tokio::test]
    async fn small_reads_of_highly_compressed_input() {
        let (client, server) = tokio::io::duplex(1 << 20);
        let mut s = Stream::new(server);
        s.start();
        let text: Vec<u8> = b"a NOOP\r\n".repeat(20_000);
        let mut c = Compress::new(Compression::default(), false);
        let mut client = client;
        client.write_all(&deflate(&mut c, &text)).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 7];
        while got.len() < text.len() {
            let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
                .await
                .expect("no stall")
                .unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got == text);
    }

    /// Each flush is a sync flush from a new deflater; the client's one inflater reads it all.
    #[tokio::test]
    async fn responses_from_successive_deflaters_make_one_stream() {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let mut s = Stream::new(server);
        s.start();
        let mut d = Decompress::new(false);
        for i in 0..50 {
            let response = format!("* {i} FETCH (FLAGS (\\Seen))\r\nt{i} OK done\r\n");
            s.write_all(response.as_bytes()).await.unwrap();
            s.flush().await.unwrap();
            assert!(s.z.as_ref().is_some_and(|z| z.deflate.is_none()), "dropped");
            let mut raw = vec![0u8; 4096];
            let n = client.read(&mut raw).await.unwrap();
            assert!(raw[..n].ends_with(&[0, 0, 0xff, 0xff]), "sync flush marker");
            assert_eq!(inflate(&mut d, &raw[..n]), response.as_bytes());
        }
    }
}
