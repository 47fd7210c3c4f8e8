//! MULTIAPPEND (RFC 3502): one APPEND with several messages, stored all or none.
//!
//! imap-codec's APPEND takes one message, so [`recognise`] looks at a complete APPEND first
//! (the fragmentizer's message: lines and the literals between them): when a message's
//! literal is followed by a space rather than the end of the line, it is a MULTIAPPEND and is
//! taken apart here; otherwise imap-codec decodes it as before. The mailbox and each message's
//! flag list and date are still checked by imap-codec: each is decoded from a one-message
//! APPEND made of its own bytes and a one-octet stand-in literal, so the grammar of those
//! parts is imap-codec's. The message data is cut from the literals as sent.
//!
//! Storing: the messages go through the one delivery path together
//! ([`crate::store::Store::deliver_all`]): one transaction, the quota counted across them,
//! and either every message is stored and the OK carries `[APPENDUID uidvalidity uid-set]`,
//! or none is and the NO says why. A literal the server refuses ends the command with a
//! tagged NO before anything is stored (RFC 3502 §6.3.11: the client sends no more).
//!
//! Bounds: at most [`MAX_MESSAGES`] messages; each literal is limited as an APPEND's
//! (`APPENDLIMIT`), and the whole command, like any command after login, by the memory
//! budget for mail in flight and by `framing.rs` to `APPENDLIMIT` plus 64 KiB: a literal that
//! would take it past that is refused (`NO [TOOBIG]`) before it is sent. The scan is linear
//! and never recurses.

use std::ops::Range;

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox as WireMailbox;

use super::mailbox::split_flags;
use super::seqset;
use super::session::{CmdResult, Reply, Session};
use crate::net::Transport;
use crate::store::{Delivery, Target};

/// Most messages in one MULTIAPPEND.
pub const MAX_MESSAGES: usize = 1000;

/// One message of a MULTIAPPEND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    pub flags: Vec<Flag<'static>>,
    pub date: Option<DateTime>,
    pub data: Vec<u8>,
}

/// A MULTIAPPEND taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiAppend {
    pub tag: String,
    pub mailbox: WireMailbox<'static>,
    pub messages: Vec<AppendMessage>,
}

/// What [`recognise`] found: `None` when the command is not a MULTIAPPEND (imap-codec decodes
/// it), `Some(Err((tag, text)))` for a MULTIAPPEND with a syntax error (BAD).
pub type Recognised = Option<Result<MultiAppend, (String, String)>>;

/// A forward scan over a command's bytes (shared with `create_special.rs`).
pub(super) struct Scan<'a> {
    pub(super) b: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Scan<'a> {
    pub(super) fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    pub(super) fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn until(&mut self, stop: impl Fn(u8) -> bool) -> Range<usize> {
        let start = self.pos;
        while self.peek().is_some_and(|b| !stop(b)) {
            self.pos += 1;
        }
        start..self.pos
    }

    pub(super) fn slice(&self, r: Range<usize>) -> &'a [u8] {
        self.b.get(r).unwrap_or_default()
    }

    /// A literal's announcement (`{n}`, `{n+}`, `~{n}`, `~{n+}`) and CRLF; its data's range.
    pub(super) fn literal(&mut self) -> Option<Range<usize>> {
        self.eat(b'~');
        if !self.eat(b'{') {
            return None;
        }
        let digits = self.until(|b| !b.is_ascii_digit());
        let n: usize = std::str::from_utf8(self.slice(digits)).ok()?.parse().ok()?;
        self.eat(b'+');
        if !(self.eat(b'}') && self.eat(b'\r') && self.eat(b'\n')) {
            return None;
        }
        let start = self.pos;
        let end = start.checked_add(n).filter(|&e| e <= self.b.len())?;
        self.pos = end;
        Some(start..end)
    }

    /// An astring as sent (atom, quoted string or literal): its raw bytes' range.
    pub(super) fn astring(&mut self) -> Option<Range<usize>> {
        let start = self.pos;
        match self.peek()? {
            b'"' => {
                self.pos += 1;
                loop {
                    match self.peek()? {
                        b'\\' => self.pos += 2,
                        b'"' => {
                            self.pos += 1;
                            break;
                        }
                        b'\r' | b'\n' => return None,
                        _ => self.pos += 1,
                    }
                }
            }
            b'{' | b'~' => {
                self.literal()?;
            }
            _ => {
                let atom = self.until(|b| b <= b' ' || matches!(b, b'(' | b')' | b'{' | b'"'));
                if atom.is_empty() {
                    return None;
                }
            }
        }
        Some(start..self.pos)
    }
}

/// Recognises a MULTIAPPEND in one complete command message (see the module doc).
pub fn recognise(message: &[u8]) -> Recognised {
    let mut s = Scan { b: message, pos: 0 };
    let tag_range = s.until(|b| b == b' ' || b == b'\r');
    let tag = String::from_utf8(s.slice(tag_range).to_vec()).ok()?;
    if tag.is_empty() || !s.eat(b' ') {
        return None;
    }
    let word = s.until(|b| b == b' ' || b == b'\r');
    if !s.slice(word).eq_ignore_ascii_case(b"APPEND") || !s.eat(b' ') {
        return None;
    }
    let mailbox = s.astring()?;
    // The messages: each `[SP flag-list] [SP date-time] SP literal`; after the first, a
    // space (another message follows) or the end of the command.
    let mut parts: Vec<(Range<usize>, Range<usize>)> = Vec::new();
    loop {
        let opts_start = s.pos;
        if !s.eat(b' ') {
            break;
        }
        if s.peek() == Some(b'(') {
            s.until(|b| b == b')' || b == b'\r');
            if !s.eat(b')') || !s.eat(b' ') {
                return (!parts.is_empty()).then(|| Err(bad(&tag)));
            }
        }
        if s.eat(b'"') {
            // A date-time has no quote or escape inside; imap-codec checks the rest.
            s.until(|b| b == b'"' || b == b'\r');
            if !(s.eat(b'"') && s.eat(b' ')) {
                return (!parts.is_empty()).then(|| Err(bad(&tag)));
            }
        }
        let opts = opts_start..s.pos;
        let Some(data) = s.literal() else {
            return (!parts.is_empty()).then(|| Err(bad(&tag)));
        };
        parts.push((opts, data));
        if parts.len() > MAX_MESSAGES {
            return Some(Err((
                tag,
                format!("MULTIAPPEND takes at most {MAX_MESSAGES} messages"),
            )));
        }
        if s.peek() != Some(b' ') {
            break;
        }
    }
    // One message: a plain APPEND, imap-codec's.
    if parts.len() < 2 {
        return None;
    }
    if !(s.eat(b'\r') && s.eat(b'\n') && s.pos == message.len()) {
        return Some(Err(bad(&tag)));
    }
    // The mailbox and each message's options, checked by imap-codec on a one-message APPEND.
    let decode = |mailbox: &[u8], opts: &[u8]| {
        let mut one = format!("{tag} APPEND ").into_bytes();
        one.extend_from_slice(mailbox);
        one.extend_from_slice(opts);
        one.extend_from_slice(b"{1+}\r\nx\r\n");
        match CommandCodec::default().decode(&one) {
            Ok((&[], command)) => match command.body {
                CommandBody::Append {
                    mailbox,
                    flags,
                    date,
                    ..
                } => Some((mailbox.into_static(), flags.into_static(), date)),
                _ => None,
            },
            _ => None,
        }
    };
    let mut wire_mailbox = None;
    let mut messages = Vec::with_capacity(parts.len());
    for (opts, data) in parts {
        // The mailbox (which may be a long literal) is decoded once, with the first message;
        // the others' options are decoded after a one-octet stand-in.
        let mailbox_bytes = match wire_mailbox {
            None => s.slice(mailbox.clone()),
            Some(_) => b"x",
        };
        let Some((mb, flags, date)) = decode(mailbox_bytes, s.slice(opts)) else {
            return Some(Err(bad(&tag)));
        };
        wire_mailbox.get_or_insert(mb);
        messages.push(AppendMessage {
            flags,
            date,
            data: s.slice(data).to_vec(),
        });
    }
    let mailbox = wire_mailbox?;
    Some(Ok(MultiAppend {
        tag,
        mailbox,
        messages,
    }))
}

fn bad(tag: &str) -> (String, String) {
    (
        tag.to_string(),
        "syntax error in the arguments of APPEND".to_string(),
    )
}

impl<T: Transport> Session<T> {
    /// Stores the messages of a MULTIAPPEND, all or none.
    pub(super) async fn multiappend(&mut self, append: MultiAppend) -> CmdResult {
        let Some(account_id) = self.account.as_ref().map(|a| a.id) else {
            return Ok(Reply::bad("APPEND is only valid after login"));
        };
        let name = match self.name_arg(&append.mailbox) {
            Ok(n) => n,
            Err(r) => return Ok(r),
        };
        let Some(mb) = self.imap.store.mailbox(account_id, &name).await? else {
            return Ok(Reply::no("[TRYCREATE] no such mailbox"));
        };
        let mut deliveries = Vec::with_capacity(append.messages.len());
        for m in &append.messages {
            if m.data.is_empty() {
                return Ok(Reply::no(
                    "[CANNOT] an empty message cannot be stored; nothing was stored",
                ));
            }
            if m.data.len() as u64 > self.imap.max_message_size {
                return Ok(Reply::no("[TOOBIG] message too large; nothing was stored"));
            }
            let (bits, keywords) = split_flags(&m.flags);
            deliveries.push((
                Delivery {
                    raw: &m.data,
                    internal_date: m.date.as_ref().map(|d| d.as_ref().timestamp()),
                },
                vec![Target::mailbox(&mb).with_flags(bits, keywords)],
            ));
        }
        let stored = self.imap.store.deliver_all(&deliveries).await?;
        let mut uids: Vec<u32> = stored.iter().flatten().map(|d| d.uid).collect();
        if uids.len() != append.messages.len() {
            return Ok(Reply::no("[SERVERBUG] the messages were not stored"));
        }
        uids.sort_unstable();
        Ok(Reply::ok(format!(
            "[APPENDUID {} {}] APPEND completed",
            mb.uidvalidity,
            seqset::compact(&uids)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::mailbox::mailbox_name;

    #[test]
    fn one_message_is_left_to_imap_codec() {
        assert_eq!(recognise(b"a APPEND INBOX {3}\r\nabc\r\n"), None);
        assert_eq!(
            recognise(b"a APPEND INBOX (\\Seen) \"01-Jan-2026 10:00:00 +0000\" {3+}\r\nabc\r\n"),
            None
        );
        assert_eq!(recognise(b"a NOOP\r\n"), None);
        assert_eq!(recognise(b"a APPEND INBOX x\r\n"), None);
    }

    #[test]
    fn several_messages() {
        let m = recognise(
            b"a1 APPEND {5+}\r\nSaved (\\Seen) {3+}\r\nabc \"01-Jan-2026 10:00:00 +0000\" ~{2+}\r\nde (\\Draft $x) \"02-Jan-2026 10:00:00 +0000\" {1}\r\nf\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(m.tag, "a1");
        assert_eq!(mailbox_name(&m.mailbox, false).unwrap(), "Saved");
        assert_eq!(m.messages.len(), 3);
        assert_eq!(m.messages[0].data, b"abc");
        assert_eq!(m.messages[0].flags, [Flag::Seen]);
        assert_eq!(m.messages[0].date, None);
        assert_eq!(m.messages[1].data, b"de");
        assert!(m.messages[1].flags.is_empty());
        assert!(m.messages[1].date.is_some());
        assert_eq!(m.messages[2].flags.len(), 2);
        assert_eq!(m.messages[2].data, b"f");
    }

    #[test]
    fn syntax_errors_are_bad() {
        for bad in [
            &b"a APPEND INBOX {1}\r\nx (\\Seen {1}\r\ny\r\n"[..],
            b"a APPEND INBOX {1}\r\nx \"not a date\" {1}\r\ny\r\n",
            b"a APPEND INBOX {1}\r\nx (\\Seen) x\r\n",
            b"a APPEND INBOX {1}\r\nx {1}\r\ny junk\r\n",
            b"a APPEND INBOX {1}\r\nx (\\Recent\\) {1}\r\ny\r\n",
        ] {
            let r = recognise(bad);
            assert!(
                matches!(r, Some(Err(_))),
                "{:?}: {r:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn too_many_messages() {
        let mut m = b"a APPEND INBOX".to_vec();
        for _ in 0..=MAX_MESSAGES {
            m.extend_from_slice(b" {1+}\r\nx");
        }
        m.extend_from_slice(b"\r\n");
        assert!(matches!(recognise(&m), Some(Err((_, t))) if t.contains("at most")));
    }
}
