//! FETCH: every RFC 3501 data item, served from what the store kept at delivery.
//!
//! ENVELOPE is written from the stored envelope read in place (`mime::EnvelopeRef`), and
//! BODY/BODYSTRUCTURE from the `BodyPart` stored with the message; BODY[section] is cut from the stored message by the offsets in
//! the `BodyPart` tree (`header_start..body_start` is a header, `body_start..body_end` a body),
//! so no message is parsed again. Only HEADER.FIELDS(.NOT) looks inside a header block, to
//! pick its fields.
//!
//! BINARY, BINARY.PEEK and BINARY.SIZE (RFC 3516) cut the part the same way and undo its
//! Content-Transfer-Encoding (base64, quoted-printable; 7bit/8bit/binary as stored, anything
//! else fails the FETCH with `[UNKNOWN-CTE]`); content holding NUL is sent as a `~{n}`
//! literal8.
//!
//! Messages are read in batches of [`BATCH`] messages and [`BATCH_BYTES`] of raw message
//! (the first always read), and responses written out as they grow, so a FETCH of a whole
//! large mailbox holds only one batch in memory.

use std::borrow::Cow;

use imap_codec::imap_types::command::FetchModifier;
use imap_codec::imap_types::core::AString;
use imap_codec::imap_types::fetch::{
    Macro, MacroOrMessageDataItemNames, MessageDataItemName, Section,
};
use imap_codec::imap_types::sequence::SequenceSet;

use super::message::targets;
use super::response::{Out, date_time};
use super::seqset;
use super::session::{CmdError, CmdResult, Reply, Session};
use crate::mime::{Addresses, BodyPart, EnvelopeRef};
use crate::net::Transport;
use crate::store::{FlagOp, Flags, MessageView, ViewParts};

/// Messages read from the store at a time,
const BATCH: usize = 256;
/// and at most this many bytes of them (past the first message): a FETCH of big messages
/// holds one batch of 4 MiB (or one message) at a time, not 256 messages of any size.
const BATCH_BYTES: u64 = 4 * 1024 * 1024;
/// The same when only metadata (flags, UID, size, dates) is asked for.
const META_BATCH: usize = 4096;

fn items_of(request: MacroOrMessageDataItemNames<'static>) -> Vec<MessageDataItemName<'static>> {
    match request {
        MacroOrMessageDataItemNames::Macro(m) => {
            let mut items = vec![
                MessageDataItemName::Flags,
                MessageDataItemName::InternalDate,
                MessageDataItemName::Rfc822Size,
            ];
            match m {
                Macro::All => items.push(MessageDataItemName::Envelope),
                Macro::Full => {
                    items.push(MessageDataItemName::Envelope);
                    items.push(MessageDataItemName::Body);
                }
                // FAST, and any macro a later imap-types adds, is the base set.
                _ => {}
            }
            items
        }
        MacroOrMessageDataItemNames::MessageDataItemNames(items) => items,
    }
}

impl<T: Transport> Session<T> {
    pub(super) async fn fetch(
        &mut self,
        set: SequenceSet,
        request: MacroOrMessageDataItemNames<'static>,
        uid: bool,
        modifiers: Vec<FetchModifier>,
    ) -> CmdResult {
        let mut items = items_of(request);
        let mut changed_since = None;
        let mut vanished = false;
        for m in &modifiers {
            match m {
                FetchModifier::ChangedSince(n) => changed_since = Some(n.get()),
                FetchModifier::Vanished => vanished = true,
            }
        }
        if vanished {
            // RFC 7162 §3.2.6: each of these is a BAD.
            if !self.qresync {
                return Ok(Reply::bad("VANISHED needs ENABLE QRESYNC first"));
            }
            if !uid {
                return Ok(Reply::bad("VANISHED is only allowed with UID FETCH"));
            }
            let Some(since) = changed_since else {
                return Ok(Reply::bad("VANISHED is only allowed with CHANGEDSINCE"));
            };
            // Before any FETCH response, so the client's numbering stays right.
            self.vanished_earlier(&set, since).await?;
        }
        let Some(selected) = &self.selected else {
            return Ok(Reply::bad("no mailbox selected"));
        };
        let found = match targets(selected, &set, uid) {
            Ok(f) => f,
            Err(r) => return Ok(r),
        };
        if changed_since.is_some() || items.contains(&MessageDataItemName::ModSeq) {
            self.condstore = true;
        }
        if changed_since.is_some() && !items.contains(&MessageDataItemName::ModSeq) {
            items.push(MessageDataItemName::ModSeq);
        }
        // With QRESYNC every FETCH response carries the UID (RFC 7162 §3.2.4), so a client
        // can always tie it to its cache.
        if (uid || self.qresync) && !items.contains(&MessageDataItemName::Uid) {
            items.insert(0, MessageDataItemName::Uid);
        }
        let mut parts = ViewParts::default();
        let mut sets_seen = false;
        for item in &items {
            match item {
                MessageDataItemName::Envelope => parts.envelope = true,
                MessageDataItemName::Body | MessageDataItemName::BodyStructure => {
                    parts.structure = true
                }
                MessageDataItemName::BodyExt { section, peek, .. } => {
                    parts.raw = true;
                    parts.structure |= section.is_some();
                    sets_seen |= !peek;
                }
                MessageDataItemName::Rfc822 | MessageDataItemName::Rfc822Text => {
                    parts.raw = true;
                    parts.structure = true;
                    sets_seen = true;
                }
                MessageDataItemName::Rfc822Header => {
                    parts.raw = true;
                    parts.structure = true;
                }
                MessageDataItemName::Binary { peek, .. } => {
                    parts.raw = true;
                    parts.structure = true;
                    sets_seen |= !peek;
                }
                MessageDataItemName::BinarySize { .. } => {
                    parts.raw = true;
                    parts.structure = true;
                }
                _ => {}
            }
        }
        let mailbox = selected.mailbox.clone();
        let sets_seen = sets_seen && !selected.read_only;
        let uids: Vec<u32> = found.iter().map(|(_, u)| *u).collect();
        let condstore = self.condstore;
        // Metadata alone is small (a line per message): bigger batches, fewer round trips.
        let batch = if parts == ViewParts::default() {
            META_BATCH
        } else {
            BATCH
        };
        let mut from = 0;
        while from < uids.len() {
            let chunk = uids.get(from..).unwrap_or_default();
            let chunk = chunk.get(..batch).unwrap_or(chunk);
            let (mut views, done) = self
                .imap
                .store
                .message_views_within(&mailbox, chunk, parts, BATCH_BYTES)
                .await?;
            from += done.max(1);
            if let Some(since) = changed_since {
                views.retain(|v| v.meta.modseq > since);
            }
            // RFC 3516 §4.2: a part whose encoding cannot be decoded fails the command (before
            // anything of this batch is written or marked \Seen).
            if let Some(encoding) = views.iter().find_map(|v| unknown_cte(v, &items)) {
                return Ok(Reply::no(format!(
                    "[UNKNOWN-CTE] cannot decode the transfer encoding {}",
                    super::response::sanitize(&encoding)
                )));
            }
            let mut newly_seen: Vec<u32> = Vec::new();
            if sets_seen {
                let unseen: Vec<u32> = views
                    .iter()
                    .filter(|v| !v.meta.flags.contains(Flags::SEEN))
                    .map(|v| v.meta.uid)
                    .collect();
                if !unseen.is_empty() {
                    let outcome = self
                        .imap
                        .store
                        .set_flags(&mailbox, &unseen, FlagOp::Add, Flags::SEEN, &[], None)
                        .await?;
                    if let (Some(m), Some(s)) = (outcome.modseq, &mut self.selected) {
                        s.note_own(m);
                    }
                    for state in outcome.current {
                        if let Some(v) = views.iter_mut().find(|v| v.meta.uid == state.uid) {
                            v.meta.flags = state.flags;
                            v.meta.modseq = state.modseq;
                        }
                    }
                    newly_seen = unseen;
                }
            }
            // Keywords changed elsewhere and not yet caught up with are announced first.
            if let Some(selected) = &mut self.selected {
                let keywords = views.iter().flat_map(|v| &v.meta.keywords);
                super::updates::announce_keywords(&mut self.out, selected, keywords);
            }
            let Some(selected) = &self.selected else {
                break;
            };
            for view in &views {
                let Some(seq) = selected.seq(view.meta.uid) else {
                    continue;
                };
                let recent = selected.is_recent(view.meta.uid);
                let add_flags = newly_seen.contains(&view.meta.uid)
                    && !items.contains(&MessageDataItemName::Flags);
                write_fetch(
                    &mut self.out,
                    seq,
                    view,
                    &items,
                    recent,
                    add_flags,
                    condstore,
                );
            }
            self.flush_if_large().await?;
        }
        Ok(Reply::ok("FETCH completed"))
    }
}

impl<T: Transport> Session<T> {
    /// `* VANISHED (EARLIER)` for the UIDs of `set` expunged after MODSEQ `since` (UID FETCH …
    /// (CHANGEDSINCE since VANISHED), RFC 7162 §3.2.6). A `*` in the set stands for any UID
    /// ever given, so `1:*` also reports expunged messages above the highest UID left. UIDs
    /// whose expunge this session has not reported yet are left out: they still have a
    /// sequence number, and a plain VANISHED will report them.
    async fn vanished_earlier(&mut self, set: &SequenceSet, since: u64) -> Result<(), CmdError> {
        let Some(selected) = &self.selected else {
            return Ok(());
        };
        let ranges = seqset::ranges(set, u32::MAX);
        let expunged = self
            .imap
            .store
            .changes_since(&selected.mailbox, since)
            .await?
            .map(|c| c.expunged)
            .unwrap_or_default();
        let gone: Vec<u32> = expunged
            .into_iter()
            .filter(|&u| seqset::contains(&ranges, u) && selected.seq(u).is_none())
            .collect();
        if !gone.is_empty() {
            self.out
                .untagged(&format!("VANISHED (EARLIER) {}", seqset::compact(&gone)));
        }
        Ok(())
    }
}

/// One `* n FETCH (...)` line.
fn write_fetch(
    out: &mut Out,
    seq: u32,
    view: &MessageView,
    items: &[MessageDataItemName<'static>],
    recent: bool,
    add_flags: bool,
    condstore: bool,
) {
    out.raw(b"* ").num(seq).raw(b" FETCH (");
    let mut first = true;
    let mut sep = |out: &mut Out| {
        if !first {
            out.raw(b" ");
        }
        first = false;
    };
    let meta = &view.meta;
    let raw: &[u8] = view.raw.as_deref().unwrap_or_default();
    let default_body = BodyPart::default();
    let body = view.structure.as_ref().unwrap_or(&default_body);
    for item in items {
        sep(out);
        match item {
            MessageDataItemName::Uid => {
                out.text("UID ").num(meta.uid);
            }
            MessageDataItemName::Flags => {
                out.flags_item(meta.flags, &meta.keywords, recent);
            }
            MessageDataItemName::InternalDate => {
                out.text("INTERNALDATE \"")
                    .text(&date_time(meta.internal_date))
                    .raw(b"\"");
            }
            MessageDataItemName::Rfc822Size => {
                out.text("RFC822.SIZE ").num(meta.size);
            }
            MessageDataItemName::ModSeq => {
                out.text("MODSEQ (").num(meta.modseq).raw(b")");
            }
            MessageDataItemName::Envelope => {
                out.text("ENVELOPE ");
                let envelope = view.envelope.as_ref().map(|e| e.get());
                write_envelope(out, &envelope.unwrap_or_default());
            }
            MessageDataItemName::Body => {
                out.text("BODY ");
                write_body(out, body, false);
            }
            MessageDataItemName::BodyStructure => {
                out.text("BODYSTRUCTURE ");
                write_body(out, body, true);
            }
            MessageDataItemName::Rfc822 => {
                out.text("RFC822 ").literal(raw);
            }
            MessageDataItemName::Rfc822Header => {
                out.text("RFC822.HEADER ")
                    .literal(slice(raw, body.header_start, body.body_start));
            }
            MessageDataItemName::Rfc822Text => {
                out.text("RFC822.TEXT ").literal(slice(
                    raw,
                    body.body_start,
                    body.body_end.max(raw.len() as u64),
                ));
            }
            MessageDataItemName::BodyExt {
                section, partial, ..
            } => {
                out.text("BODY[");
                if let Some(s) = section {
                    write_section_name(out, s);
                }
                out.raw(b"]");
                let data = section_bytes(raw, body, section.as_ref());
                let data: &[u8] = match data {
                    Some(ref d) => d,
                    None => &[],
                };
                match partial {
                    Some((start, len)) => {
                        out.raw(b"<").num(*start).raw(b"> ");
                        let start = (*start as usize).min(data.len());
                        let end = start.saturating_add(len.get() as usize).min(data.len());
                        out.literal(data.get(start..end).unwrap_or_default());
                    }
                    None => {
                        out.raw(b" ").literal(data);
                    }
                }
            }
            MessageDataItemName::Binary {
                section, partial, ..
            } => {
                out.text("BINARY[");
                write_part_numbers(out, section);
                out.raw(b"]");
                let data = binary_bytes(raw, body, section).and_then(Result::ok);
                if let Some((start, _)) = partial {
                    out.raw(b"<").num(*start).raw(b">");
                }
                out.raw(b" ");
                match (data, partial) {
                    (None, _) => {
                        out.text("NIL");
                    }
                    (Some(d), Some((start, len))) => {
                        let start = (*start as usize).min(d.len());
                        let end = start.saturating_add(len.get() as usize).min(d.len());
                        out.binary(d.get(start..end).unwrap_or_default());
                    }
                    (Some(d), None) => {
                        out.binary(&d);
                    }
                }
            }
            MessageDataItemName::BinarySize { section } => {
                out.text("BINARY.SIZE[");
                write_part_numbers(out, section);
                out.raw(b"] ");
                let size = binary_bytes(raw, body, section)
                    .and_then(Result::ok)
                    .map_or(0, |d| d.len());
                out.num(size);
            }
        }
    }
    if add_flags {
        sep(out);
        out.flags_item(meta.flags, &meta.keywords, recent);
    }
    if condstore && !items.contains(&MessageDataItemName::ModSeq) {
        sep(out);
        out.text("MODSEQ (").num(meta.modseq).raw(b")");
    }
    out.raw(b")\r\n");
}

/// `1.2.3` (nothing for the whole message).
fn write_part_numbers(out: &mut Out, section: &[std::num::NonZeroU32]) {
    for (i, n) in section.iter().enumerate() {
        if i > 0 {
            out.raw(b".");
        }
        out.num(n.get());
    }
}

/// The content a BINARY[section] names, decoded from its Content-Transfer-Encoding
/// (RFC 3516): `None` for a part that does not exist, `Err(encoding)` for one that cannot
/// be decoded. The whole message (`[]`), multiparts and messages are as stored.
fn binary_bytes<'a>(
    raw: &'a [u8],
    body: &BodyPart,
    section: &[std::num::NonZeroU32],
) -> Option<Result<Cow<'a, [u8]>, String>> {
    if section.is_empty() {
        return Some(Ok(Cow::Borrowed(raw)));
    }
    let path: Vec<u32> = section.iter().map(|n| n.get()).collect();
    let part = body.part(&path)?;
    let data = slice(raw, part.body_start, part.body_end);
    if part.is_multipart() || part.message.is_some() {
        return Some(Ok(Cow::Borrowed(data)));
    }
    Some(match part.encoding.as_str() {
        "BASE64" | "QUOTED-PRINTABLE" => Ok(Cow::Owned(decode(&part.encoding, data))),
        e if KNOWN_CTE.contains(&e) => Ok(Cow::Borrowed(data)),
        other => Err(other.to_string()),
    })
}

/// The transfer encodings BINARY decodes (the first four need no decoding).
const KNOWN_CTE: &[&str] = &["7BIT", "8BIT", "BINARY", "", "BASE64", "QUOTED-PRINTABLE"];

fn decode(encoding: &str, data: &[u8]) -> Vec<u8> {
    match encoding {
        "BASE64" => crate::mime::base64_decode(data),
        _ => crate::mime::qp_decode(data),
    }
}

/// The first encoding a BINARY item of `items` cannot decode in this message, if any.
fn unknown_cte(view: &MessageView, items: &[MessageDataItemName<'static>]) -> Option<String> {
    let body = view.structure.as_ref()?;
    items.iter().find_map(|item| match item {
        MessageDataItemName::Binary { section, .. }
        | MessageDataItemName::BinarySize { section }
            if !section.is_empty() =>
        {
            let path: Vec<u32> = section.iter().map(|n| n.get()).collect();
            let part = body.part(&path)?;
            let plain = part.is_multipart() || part.message.is_some();
            (!plain && !KNOWN_CTE.contains(&part.encoding.as_str())).then(|| part.encoding.clone())
        }
        _ => None,
    })
}

fn slice(raw: &[u8], start: u64, end: u64) -> &[u8] {
    let (Ok(start), Ok(end)) = (usize::try_from(start), usize::try_from(end)) else {
        return &[];
    };
    raw.get(start..end.min(raw.len())).unwrap_or_default()
}

/// The header block of the message whose body is `part`'s embedded message, or of the
/// top-level message when `path` is `None`.
fn message_of<'a>(
    body: &'a BodyPart,
    path: Option<&[std::num::NonZeroU32]>,
) -> Option<&'a BodyPart> {
    match path {
        None => Some(body),
        Some(p) => {
            let numbers: Vec<u32> = p.iter().map(|n| n.get()).collect();
            let part = body.part(&numbers)?;
            part.message.as_ref().map(|m| &m.1)
        }
    }
}

/// The bytes a BODY[section] names.
fn section_bytes<'a>(
    raw: &'a [u8],
    body: &BodyPart,
    section: Option<&Section<'_>>,
) -> Option<Cow<'a, [u8]>> {
    let part_path = |p: &imap_codec::imap_types::fetch::Part| -> Vec<u32> {
        p.0.as_ref().iter().map(|n| n.get()).collect()
    };
    let header_of = |m: &BodyPart| slice(raw, m.header_start, m.body_start);
    Some(match section {
        None => Cow::Borrowed(raw),
        Some(Section::Part(p)) => {
            let part = body.part(&part_path(p))?;
            Cow::Borrowed(slice(raw, part.body_start, part.body_end))
        }
        Some(Section::Header(p)) => {
            let m = message_of(body, p.as_ref().map(|p| p.0.as_ref()))?;
            Cow::Borrowed(header_of(m))
        }
        Some(Section::HeaderFields(p, fields)) => {
            let m = message_of(body, p.as_ref().map(|p| p.0.as_ref()))?;
            Cow::Owned(filter_header(header_of(m), fields.as_ref(), true))
        }
        Some(Section::HeaderFieldsNot(p, fields)) => {
            let m = message_of(body, p.as_ref().map(|p| p.0.as_ref()))?;
            Cow::Owned(filter_header(header_of(m), fields.as_ref(), false))
        }
        Some(Section::Text(p)) => {
            let m = message_of(body, p.as_ref().map(|p| p.0.as_ref()))?;
            let end = if p.is_none() {
                m.body_end.max(raw.len() as u64)
            } else {
                m.body_end
            };
            Cow::Borrowed(slice(raw, m.body_start, end))
        }
        Some(Section::Mime(p)) => {
            let part = body.part(&part_path(p))?;
            Cow::Borrowed(slice(raw, part.header_start, part.body_start))
        }
    })
}

/// The fields of a header block whose names are (or, with `keep` false, are not) in
/// `names`, followed by the blank line (RFC 3501 §6.4.5).
fn filter_header(header: &[u8], names: &[AString<'_>], keep: bool) -> Vec<u8> {
    let wanted = |line: &[u8]| {
        let name = line
            .iter()
            .position(|&b| b == b':')
            .and_then(|i| line.get(..i))
            .unwrap_or_default();
        let name = name.trim_ascii_end();
        names.iter().any(|n| n.as_ref().eq_ignore_ascii_case(name))
    };
    let mut out = Vec::new();
    let mut including = false;
    let mut rest = header;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(end);
        rest = tail;
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            including = wanted(line) == keep;
        }
        if including {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The section spec as the response names it: `1.2.HEADER.FIELDS (FROM TO)`.
fn write_section_name(out: &mut Out, section: &Section<'_>) {
    let part = |out: &mut Out, p: &imap_codec::imap_types::fetch::Part, dot: bool| {
        let numbers: Vec<String> = p.0.as_ref().iter().map(|n| n.get().to_string()).collect();
        out.text(&numbers.join("."));
        if dot {
            out.raw(b".");
        }
    };
    let fields = |out: &mut Out, names: &[AString<'_>]| {
        out.raw(b" (");
        for (i, n) in names.iter().enumerate() {
            if i > 0 {
                out.raw(b" ");
            }
            let bytes = n.as_ref();
            if !bytes.is_empty()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            {
                out.raw(&bytes.to_ascii_uppercase());
            } else {
                out.string(bytes);
            }
        }
        out.raw(b")");
    };
    match section {
        Section::Part(p) => part(out, p, false),
        Section::Header(p) => {
            if let Some(p) = p {
                part(out, p, true);
            }
            out.text("HEADER");
        }
        Section::HeaderFields(p, names) => {
            if let Some(p) = p {
                part(out, p, true);
            }
            out.text("HEADER.FIELDS");
            fields(out, names.as_ref());
        }
        Section::HeaderFieldsNot(p, names) => {
            if let Some(p) = p {
                part(out, p, true);
            }
            out.text("HEADER.FIELDS.NOT");
            fields(out, names.as_ref());
        }
        Section::Text(p) => {
            if let Some(p) = p {
                part(out, p, true);
            }
            out.text("TEXT");
        }
        Section::Mime(p) => {
            part(out, p, true);
            out.text("MIME");
        }
    }
}

fn write_addresses(out: &mut Out, list: &Addresses<'_>) {
    if list.is_empty() {
        out.raw(b"NIL");
        return;
    }
    out.raw(b"(");
    for a in list.iter() {
        out.raw(b"(")
            .nstring(a.name)
            .raw(b" ")
            .nstring(a.adl)
            .raw(b" ")
            .nstring(a.mailbox)
            .raw(b" ")
            .nstring(a.host)
            .raw(b")");
    }
    out.raw(b")");
}

pub(super) fn write_envelope(out: &mut Out, e: &EnvelopeRef<'_>) {
    out.raw(b"(")
        .nstring(e.date)
        .raw(b" ")
        .nstring(e.subject)
        .raw(b" ");
    for list in [&e.from, &e.sender, &e.reply_to, &e.to, &e.cc, &e.bcc] {
        write_addresses(out, list);
        out.raw(b" ");
    }
    out.nstring(e.in_reply_to)
        .raw(b" ")
        .nstring(e.message_id)
        .raw(b")");
}

fn write_params(out: &mut Out, params: &[(String, String)]) {
    if params.is_empty() {
        out.raw(b"NIL");
        return;
    }
    out.raw(b"(");
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.raw(b" ");
        }
        out.string(k.as_bytes()).raw(b" ").string(v.as_bytes());
    }
    out.raw(b")");
}

/// Disposition, language and location: the extension data shared by every part.
fn write_extension_tail(out: &mut Out, part: &BodyPart) {
    out.raw(b" ");
    match &part.disposition {
        Some((kind, params)) => {
            out.raw(b"(").string(kind.as_bytes()).raw(b" ");
            write_params(out, params);
            out.raw(b")");
        }
        None => {
            out.raw(b"NIL");
        }
    }
    out.raw(b" ");
    match part.language.as_slice() {
        [] => {
            out.raw(b"NIL");
        }
        [one] => {
            out.string(one.as_bytes());
        }
        many => {
            out.raw(b"(");
            for (i, l) in many.iter().enumerate() {
                if i > 0 {
                    out.raw(b" ");
                }
                out.string(l.as_bytes());
            }
            out.raw(b")");
        }
    }
    out.raw(b" ").nstr(part.location.as_deref());
}

/// BODY (`extended` false) or BODYSTRUCTURE (`extended` true) of a part.
pub(super) fn write_body(out: &mut Out, part: &BodyPart, extended: bool) {
    out.raw(b"(");
    if part.is_multipart() {
        for child in &part.parts {
            write_body(out, child, extended);
        }
        out.raw(b" ").string(part.media_subtype.as_bytes());
        if extended {
            out.raw(b" ");
            write_params(out, &part.params);
            write_extension_tail(out, part);
        }
        out.raw(b")");
        return;
    }
    out.string(part.media_type.as_bytes())
        .raw(b" ")
        .string(part.media_subtype.as_bytes())
        .raw(b" ");
    write_params(out, &part.params);
    out.raw(b" ")
        .nstr(part.id.as_deref())
        .raw(b" ")
        .nstr(part.description.as_deref())
        .raw(b" ")
        .string(part.encoding.as_bytes())
        .raw(b" ")
        .num(part.size);
    if let Some(m) = &part.message {
        out.raw(b" ");
        write_envelope(out, &m.0.view());
        out.raw(b" ");
        write_body(out, &m.1, extended);
        out.raw(b" ").num(part.lines.unwrap_or(0));
    } else if part.media_type == "text" {
        out.raw(b" ").num(part.lines.unwrap_or(0));
    }
    if extended {
        out.raw(b" ").nstr(part.md5.as_deref());
        write_extension_tail(out, part);
    }
    out.raw(b")");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(raw: &[u8], extended: bool) -> String {
        let analysis = crate::mime::analyze(raw);
        let mut out = Out::new();
        write_body(&mut out, &analysis.body, extended);
        String::from_utf8_lossy(&out.buf).to_string()
    }

    #[test]
    fn simple_structure() {
        let raw = b"Subject: hi\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nline one\r\nline two\r\n";
        assert_eq!(
            render(raw, false),
            "(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7BIT\" 20 2)"
        );
        assert_eq!(
            render(raw, true),
            "(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7BIT\" 20 2 NIL NIL NIL NIL)"
        );
    }

    #[test]
    fn multipart_structure_and_sections() {
        let raw = b"Subject: m\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b--\r\n";
        assert_eq!(
            render(raw, false),
            "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 5 0)(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 8 0) \"mixed\")"
        );
        let analysis = crate::mime::analyze(raw);
        let part2 = Section::Part(imap_codec::imap_types::fetch::Part(
            vec![std::num::NonZeroU32::new(2).unwrap()]
                .try_into()
                .unwrap(),
        ));
        assert_eq!(
            section_bytes(raw, &analysis.body, Some(&part2))
                .unwrap()
                .as_ref(),
            b"<p>x</p>"
        );
        let mime = Section::Mime(imap_codec::imap_types::fetch::Part(
            vec![std::num::NonZeroU32::new(1).unwrap()]
                .try_into()
                .unwrap(),
        ));
        assert_eq!(
            section_bytes(raw, &analysis.body, Some(&mime))
                .unwrap()
                .as_ref(),
            b"Content-Type: text/plain\r\n\r\n"
        );
    }

    #[test]
    fn header_fields() {
        let header = b"From: a@b\r\nSubject: one\r\n two\r\nTo: c@d\r\n\r\n";
        let names: Vec<AString<'static>> = vec![AString::try_from("subject").unwrap()];
        assert_eq!(
            filter_header(header, &names, true),
            b"Subject: one\r\n two\r\n\r\n"
        );
        assert_eq!(
            filter_header(header, &names, false),
            b"From: a@b\r\nTo: c@d\r\n\r\n"
        );
    }
}
