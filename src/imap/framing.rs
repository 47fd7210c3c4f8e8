//! Reading one IMAP command off the wire: the fragmentizer (imap-codec) fed from the
//! connection, the limits on what an unauthenticated or authenticated peer may send (line
//! length, literal size, the whole command before login, the memory budget for literals),
//! literal announcements answered (`+`, `NO [TOOBIG]`, `BYE`), and over-long lines skipped to
//! their end without buffering them. The protocol state machine is in `session.rs`.

use std::io;

use imap_codec::fragmentizer::{FragmentInfo, LiteralAnnouncement};
use imap_codec::imap_types::core::LiteralMode;
use tokio::io::AsyncReadExt;

use super::Imap;
use super::response::Status;
use super::session::{MAX_BAD_IN_ROW, Session};
use crate::net::Transport;

/// Longest command line (without literals).
pub(super) const MAX_LINE: usize = 64 * 1024;
/// Largest literal before login (a LOGIN password, an AUTHENTICATE response).
pub(super) const MAX_PRE_AUTH_LITERAL: u64 = 64 * 1024;
/// Largest non-synchronizing literal before login: there the server offers LITERAL- (RFC 7888
/// §5), not LITERAL+, since a peer that has not logged in may not make us read more than
/// this without a `+` from us (and a synchronizing literal over the limit is refused before
/// it is sent, which a non-synchronizing one cannot be).
pub(super) const MAX_PRE_AUTH_NON_SYNC: u64 = 4096;
/// Largest whole command before login, literals included: without it, one command of many
/// small literals could make an anonymous peer hold `max_message_size`.
pub(super) const MAX_PRE_AUTH_COMMAND: u64 = 128 * 1024;
pub(super) const READ_BUF: usize = 8 * 1024;
/// Room for a read while no command is under way: most whole commands, and IDLE's `DONE`.
const SMALL_READ: usize = 256;

/// Where reads land. The [`READ_BUF`] buffer exists only while a command is being read: a
/// session waiting for its next command (most sessions, most of the time, and every one in
/// IDLE) holds only the small buffer inside itself, nothing on the heap. A longer command
/// simply arrives over several reads.
pub(super) struct ReadBuf {
    small: [u8; SMALL_READ],
    big: Vec<u8>,
    last_big: bool,
}

impl ReadBuf {
    pub(super) fn new() -> ReadBuf {
        ReadBuf {
            small: [0; SMALL_READ],
            big: Vec::new(),
            last_big: false,
        }
    }

    /// Room for the next read; `waiting`: no command is under way, so the big buffer goes.
    pub(super) fn room(&mut self, waiting: bool) -> &mut [u8] {
        self.last_big = !waiting;
        if waiting {
            self.big = Vec::new();
            &mut self.small
        } else {
            if self.big.is_empty() {
                self.big = vec![0; READ_BUF];
            }
            &mut self.big
        }
    }

    /// The `n` bytes the last read put into [`ReadBuf::room`].
    pub(super) fn filled(&self, n: usize) -> &[u8] {
        let room: &[u8] = if self.last_big {
            &self.big
        } else {
            &self.small
        };
        room.get(..n).unwrap_or_default()
    }
}
/// What a session signed in with an app password is told when that app password is revoked.
pub(super) const REVOKED_BYE: &str = "BYE the app password of this session was revoked";

/// Which limit a command that is being skipped passed.
#[derive(Debug, Clone, Copy)]
pub(super) enum TooLong {
    Line,
    /// The whole command, before login.
    Command,
}

pub(super) fn pre_auth_command_too_long() -> String {
    format!("[TOOBIG] commands before login are limited to {MAX_PRE_AUTH_COMMAND} octets")
}

/// What reading the next message gave.
pub(super) enum Input {
    Message,
    Closed,
}

impl<T: Transport> Session<T> {
    /// Whether no command is under way (nothing of one read yet); if so, the fragmentizer is
    /// replaced by a fresh one, which lets go of the room the last command took (an APPEND's
    /// literal would otherwise stay allocated for the rest of the session).
    pub(super) fn waiting_for_command(&mut self) -> bool {
        let waiting =
            self.frag.message_bytes().is_empty() && !self.in_literal && self.discarding.is_none();
        if waiting {
            self.frag = imap_codec::fragmentizer::Fragmentizer::new(fragment_limit(&self.imap));
        }
        waiting
    }

    pub(super) fn literal_limit(&self) -> u64 {
        if self.account.is_some() {
            self.imap.max_message_size
        } else {
            MAX_PRE_AUTH_LITERAL
        }
    }

    /// Reads until the fragmentizer holds one complete message, answering literal
    /// announcements on the way: `+` for an accepted synchronizing literal, `NO [TOOBIG]` for
    /// one too large (the client then does not send it), and `BYE` for a too-large
    /// non-synchronizing one (its bytes are already on their way and cannot be skipped).
    pub(super) async fn next_message(&mut self) -> io::Result<Input> {
        // The previous command is done with: its literals no longer count.
        self.claim.release();
        loop {
            match self.frag.progress() {
                Some(FragmentInfo::Line {
                    start,
                    end,
                    announcement: Some(LiteralAnnouncement { mode, length }),
                    ..
                }) => {
                    self.too_long |= end - start > MAX_LINE;
                    self.in_literal = true;
                    self.line_start = end;
                    // A SETMETADATA value over its limit is refused before it is sent.
                    let non_sync_over = mode == LiteralMode::NonSync
                        && self.account.is_none()
                        && u64::from(length) > MAX_PRE_AUTH_NON_SYNC;
                    let refusal = if non_sync_over {
                        Some(format!(
                            "[TOOBIG] non-synchronizing literals before login are limited to \
                             {MAX_PRE_AUTH_NON_SYNC} octets (LITERAL-)"
                        ))
                    } else {
                        self.refuse_literal(u64::from(length))
                    }
                    .or_else(|| {
                        (mode == LiteralMode::Sync)
                            .then(|| {
                                super::metadata::refuse_literal(
                                    self.frag.message_bytes(),
                                    u64::from(length),
                                )
                            })
                            .flatten()
                    });
                    if let Some(text) = refusal {
                        if mode == LiteralMode::NonSync {
                            // Its bytes are on their way and cannot be told apart from
                            // commands without buffering them: end the connection, with the
                            // command refused by a tagged BAD (RFC 7888 §4, §5).
                            self.out.untagged(&format!("BYE {text}"));
                            if let Some(tag) = self.frag.decode_tag() {
                                let tag = tag.as_ref().to_string();
                                self.out.tagged(&tag, Status::Bad, &text);
                            }
                            self.flush().await?;
                            return Ok(Input::Closed);
                        }
                        let tag = self.frag.decode_tag().map(|t| t.as_ref().to_string());
                        self.frag.skip_message();
                        self.claim.release();
                        self.in_literal = false;
                        self.line_start = 0;
                        match tag {
                            Some(tag) => self.out.tagged(&tag, Status::No, &text),
                            None => self.out.untagged(&format!("BAD {text}")),
                        };
                        self.flush().await?;
                        continue;
                    }
                    if mode == LiteralMode::Sync {
                        self.out.text("+ Ready for literal data").crlf();
                        self.flush().await?;
                    }
                }
                Some(FragmentInfo::Literal { end, .. }) => {
                    self.in_literal = false;
                    self.line_start = end;
                }
                Some(FragmentInfo::Line { start, end, .. }) => {
                    self.too_long |= end - start > MAX_LINE;
                    self.in_literal = false;
                    self.line_start = 0;
                    return Ok(Input::Message);
                }
                None => {
                    // Each line is bounded, and before login the whole command too.
                    let held = self.frag.message_bytes().len();
                    let passed = if held.saturating_sub(self.line_start) > MAX_LINE {
                        Some(TooLong::Line)
                    } else if self.account.is_none() && held as u64 > MAX_PRE_AUTH_COMMAND {
                        Some(TooLong::Command)
                    } else {
                        None
                    };
                    if let Some(limit) = passed.filter(|_| !self.in_literal)
                        && self.discarding.is_none()
                    {
                        // Stop buffering: the rest of the line is read and dropped, then the
                        // command is refused and the session goes on.
                        let tag = self.frag.decode_tag().map(|t| t.as_ref().to_string());
                        self.frag.skip_message();
                        self.line_start = 0;
                        self.too_long = false;
                        self.discarding = Some((tag, limit));
                    }
                    let waiting = self.waiting_for_command();
                    let room = self.rbuf.room(waiting);
                    let n = tokio::select! {
                        read = self.io.read(room) => read?,
                        _ = self.shutdown.wait() => {
                            self.out.untagged("BYE server shutting down");
                            self.flush().await?;
                            return Ok(Input::Closed);
                        }
                        _ = self.revoked.wait() => {
                            self.out.untagged(REVOKED_BYE);
                            self.flush().await?;
                            return Ok(Input::Closed);
                        }
                    };
                    if n == 0 {
                        return Ok(Input::Closed);
                    }
                    let data = self.rbuf.filled(n);
                    match &self.discarding {
                        None => self.frag.enqueue_bytes(data),
                        Some((tag, limit)) => {
                            if let Some(nl) = data.iter().position(|&b| b == b'\n') {
                                let (tag, limit) = (tag.clone(), *limit);
                                self.frag
                                    .enqueue_bytes(data.get(nl + 1..).unwrap_or_default());
                                self.discarding = None;
                                self.refuse_long_line(tag, limit);
                                self.flush().await?;
                                if self.bad_in_row >= MAX_BAD_IN_ROW {
                                    return Ok(Input::Closed);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Why a literal of `length` octets announced now is refused (a response code and text),
    /// or `None` when it may come: within the literal limit, within the whole-command limit
    /// before login, and within the memory budget (claimed here for the whole command so far).
    pub(super) fn refuse_literal(&mut self, length: u64) -> Option<String> {
        let limit = self.literal_limit();
        if length > limit {
            return Some(format!(
                "[TOOBIG] literal of {length} octets is larger than the limit of {limit}"
            ));
        }
        let command = (self.frag.message_bytes().len() as u64).saturating_add(length);
        if self.account.is_none() && command > MAX_PRE_AUTH_COMMAND {
            return Some(pre_auth_command_too_long());
        }
        // The literals of one command together (a MULTIAPPEND's messages) stay within one
        // message's limit and a line: refused before they are sent, rather than read and
        // dropped by the fragmentizer (whose own bound is a little above this).
        let whole = limit.saturating_add(MAX_LINE as u64);
        if command > whole {
            return Some(format!(
                "[TOOBIG] the literals of one command are limited to {whole} octets in all"
            ));
        }
        if !self
            .claim
            .grow_to(usize::try_from(command).unwrap_or(usize::MAX))
        {
            tracing::warn!(
                "imap: memory budget for mail in flight spent ({} bytes); literal of {length} octets refused for now",
                self.imap.budget.limit()
            );
            return Some("[UNAVAILABLE] too much mail in flight; try again later".into());
        }
        None
    }

    pub(super) fn refuse_long_line(&mut self, tag: Option<String>, limit: TooLong) {
        let text = match limit {
            TooLong::Line => format!("[TOOBIG] command line longer than {MAX_LINE} octets"),
            TooLong::Command => pre_auth_command_too_long(),
        };
        match tag {
            Some(tag) => self.out.tagged(&tag, Status::Bad, &text),
            None => self.out.untagged(&format!("BAD {text}")),
        };
        self.bad_in_row += 1;
    }
}

pub(super) fn fragment_limit(imap: &Imap) -> u32 {
    u32::try_from(imap.max_message_size.saturating_add(MAX_LINE as u64 * 2)).unwrap_or(u32::MAX)
}
