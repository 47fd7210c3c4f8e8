//! The envelope as the store keeps it: a compact byte form that FETCH ENVELOPE reads in
//! place.
//!
//! JSON was the first stored form. Reading 10,000 envelopes back cost more than everything
//! else in `UID FETCH 1:* (ENVELOPE)`: parsing, and a dozen allocations each for strings
//! that are written straight out again. This form has no keys and no escapes, and
//! [`EnvelopeRef`] borrows its strings from the stored bytes, so writing an envelope
//! allocates nothing.
//!
//! Layout (version 1), fields in ENVELOPE order:
//! ```text
//! 0x01                      version
//! flags                     bit 0: sender is From's list, bit 1: reply-to is From's list
//! nstring date, nstring subject
//! list from, [list sender], [list reply-to], list to, list cc, list bcc
//! nstring in-reply-to, nstring message-id
//! nstring = varint 0 (NIL) | varint len+1, bytes
//! list    = varint count, count × (nstring name, adl, mailbox, host)
//! ```
//! Sender and Reply-To default to From (RFC 3501), so they are usually not stored twice.
//! [`EnvelopeRef::parse`] checks every length against the input before anything is read.

use super::{Address, Envelope};

const VERSION: u8 = 1;
const SENDER_IS_FROM: u8 = 1;
const REPLY_TO_IS_FROM: u8 = 2;

/// The stored form of `e`.
pub fn pack(e: &Envelope) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.push(VERSION);
    let mut flags = 0;
    if e.sender == e.from {
        flags |= SENDER_IS_FROM;
    }
    if e.reply_to == e.from {
        flags |= REPLY_TO_IS_FROM;
    }
    out.push(flags);
    put_nstring(&mut out, e.date.as_deref());
    put_nstring(&mut out, e.subject.as_deref());
    put_list(&mut out, &e.from);
    if flags & SENDER_IS_FROM == 0 {
        put_list(&mut out, &e.sender);
    }
    if flags & REPLY_TO_IS_FROM == 0 {
        put_list(&mut out, &e.reply_to);
    }
    for list in [&e.to, &e.cc, &e.bcc] {
        put_list(&mut out, list);
    }
    put_nstring(&mut out, e.in_reply_to.as_deref());
    put_nstring(&mut out, e.message_id.as_deref());
    out
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_nstring(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => put_varint(out, 0),
        Some(s) => {
            put_varint(out, s.len() as u64 + 1);
            out.extend_from_slice(s.as_bytes());
        }
    }
}

fn put_list(out: &mut Vec<u8>, list: &[Address]) {
    put_varint(out, list.len() as u64);
    for a in list {
        for part in [&a.name, &a.adl, &a.mailbox, &a.host] {
            put_nstring(out, part.as_deref());
        }
    }
}

/// Stored envelope bytes, checked to be well formed when read from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedEnvelope(Vec<u8>);

impl PackedEnvelope {
    /// `None` if `bytes` is not a well-formed packed envelope.
    pub fn new(bytes: Vec<u8>) -> Option<PackedEnvelope> {
        EnvelopeRef::parse(&bytes)?;
        Some(PackedEnvelope(bytes))
    }

    pub fn get(&self) -> EnvelopeRef<'_> {
        // Checked in `new`; the default is never reached.
        EnvelopeRef::parse(&self.0).unwrap_or_default()
    }
}

/// An envelope read in place: from stored bytes, or borrowed from an [`Envelope`].
#[derive(Debug, Clone, Copy, Default)]
pub struct EnvelopeRef<'a> {
    pub date: Option<&'a [u8]>,
    pub subject: Option<&'a [u8]>,
    pub from: Addresses<'a>,
    pub sender: Addresses<'a>,
    pub reply_to: Addresses<'a>,
    pub to: Addresses<'a>,
    pub cc: Addresses<'a>,
    pub bcc: Addresses<'a>,
    pub in_reply_to: Option<&'a [u8]>,
    pub message_id: Option<&'a [u8]>,
}

/// One address of an [`EnvelopeRef`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRef<'a> {
    pub name: Option<&'a [u8]>,
    pub adl: Option<&'a [u8]>,
    pub mailbox: Option<&'a [u8]>,
    pub host: Option<&'a [u8]>,
}

/// An address list of an [`EnvelopeRef`]; iterate it for its addresses.
#[derive(Debug, Clone, Copy)]
pub enum Addresses<'a> {
    /// `count` addresses packed in `bytes` (already checked by [`EnvelopeRef::parse`]).
    Packed {
        count: usize,
        bytes: &'a [u8],
    },
    Slice(&'a [Address]),
}

impl Default for Addresses<'_> {
    fn default() -> Self {
        Addresses::Slice(&[])
    }
}

impl<'a> Addresses<'a> {
    pub fn is_empty(&self) -> bool {
        match self {
            Addresses::Packed { count, .. } => *count == 0,
            Addresses::Slice(s) => s.is_empty(),
        }
    }

    pub fn iter(&self) -> AddressIter<'a> {
        AddressIter(match *self {
            Addresses::Packed { count, bytes } => Walk::Packed(count, Reader { bytes }),
            Addresses::Slice(s) => Walk::Slice(s.iter()),
        })
    }
}

/// The addresses of an [`Addresses`], in order.
pub struct AddressIter<'a>(Walk<'a>);

enum Walk<'a> {
    Packed(usize, Reader<'a>),
    Slice(std::slice::Iter<'a, Address>),
}

impl<'a> Iterator for AddressIter<'a> {
    type Item = AddressRef<'a>;

    fn next(&mut self) -> Option<AddressRef<'a>> {
        match &mut self.0 {
            Walk::Packed(count, reader) => {
                *count = count.checked_sub(1)?;
                reader.address()
            }
            Walk::Slice(it) => it.next().map(|a| AddressRef {
                name: a.name.as_deref().map(str::as_bytes),
                adl: a.adl.as_deref().map(str::as_bytes),
                mailbox: a.mailbox.as_deref().map(str::as_bytes),
                host: a.host.as_deref().map(str::as_bytes),
            }),
        }
    }
}

impl<'a> EnvelopeRef<'a> {
    /// Reads the stored form; `None` if it is not a well-formed version 1 envelope.
    pub fn parse(bytes: &'a [u8]) -> Option<EnvelopeRef<'a>> {
        let mut r = Reader { bytes };
        if r.byte()? != VERSION {
            return None;
        }
        let flags = r.byte()?;
        let date = r.nstring()?;
        let subject = r.nstring()?;
        let from = r.list()?;
        let sender = if flags & SENDER_IS_FROM != 0 {
            from
        } else {
            r.list()?
        };
        let reply_to = if flags & REPLY_TO_IS_FROM != 0 {
            from
        } else {
            r.list()?
        };
        let (to, cc, bcc) = (r.list()?, r.list()?, r.list()?);
        let in_reply_to = r.nstring()?;
        let message_id = r.nstring()?;
        if !r.bytes.is_empty() {
            return None;
        }
        Some(EnvelopeRef {
            date,
            subject,
            from,
            sender,
            reply_to,
            to,
            cc,
            bcc,
            in_reply_to,
            message_id,
        })
    }

    /// The owned envelope (strings that are not UTF-8, which `pack` never writes, are
    /// read lossily).
    pub fn to_envelope(&self) -> Envelope {
        let s = |v: Option<&[u8]>| v.map(|b| String::from_utf8_lossy(b).into_owned());
        let list = |l: &Addresses<'_>| {
            l.iter()
                .map(|a| Address {
                    name: s(a.name),
                    adl: s(a.adl),
                    mailbox: s(a.mailbox),
                    host: s(a.host),
                })
                .collect()
        };
        Envelope {
            date: s(self.date),
            subject: s(self.subject),
            from: list(&self.from),
            sender: list(&self.sender),
            reply_to: list(&self.reply_to),
            to: list(&self.to),
            cc: list(&self.cc),
            bcc: list(&self.bcc),
            in_reply_to: s(self.in_reply_to),
            message_id: s(self.message_id),
        }
    }
}

impl Envelope {
    /// This envelope, read in place.
    pub fn view(&self) -> EnvelopeRef<'_> {
        fn s(v: &Option<String>) -> Option<&[u8]> {
            v.as_deref().map(str::as_bytes)
        }
        EnvelopeRef {
            date: s(&self.date),
            subject: s(&self.subject),
            from: Addresses::Slice(&self.from),
            sender: Addresses::Slice(&self.sender),
            reply_to: Addresses::Slice(&self.reply_to),
            to: Addresses::Slice(&self.to),
            cc: Addresses::Slice(&self.cc),
            bcc: Addresses::Slice(&self.bcc),
            in_reply_to: s(&self.in_reply_to),
            message_id: s(&self.message_id),
        }
    }
}

/// A cursor over packed bytes; every read is checked and `None` past the end.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(b)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    /// `Some(None)` for NIL, `None` if the input is broken.
    fn nstring(&mut self) -> Option<Option<&'a [u8]>> {
        let len = self.varint()?;
        if len == 0 {
            return Some(None);
        }
        let len = usize::try_from(len - 1).ok()?;
        if len > self.bytes.len() {
            return None;
        }
        let (s, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Some(Some(s))
    }

    fn address(&mut self) -> Option<AddressRef<'a>> {
        Some(AddressRef {
            name: self.nstring()?,
            adl: self.nstring()?,
            mailbox: self.nstring()?,
            host: self.nstring()?,
        })
    }

    /// Checks a whole list and returns it for reading later.
    fn list(&mut self) -> Option<Addresses<'a>> {
        let count = usize::try_from(self.varint()?).ok()?;
        // Each address takes at least four bytes: a hostile count fails here, not in a loop.
        if count > self.bytes.len() / 4 {
            return None;
        }
        let start = self.bytes;
        for _ in 0..count {
            self.address()?;
        }
        let used = start.len() - self.bytes.len();
        Some(Addresses::Packed {
            count,
            bytes: start.get(..used)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(name: Option<&str>, mailbox: Option<&str>, host: Option<&str>) -> Address {
        Address {
            name: name.map(str::to_string),
            adl: None,
            mailbox: mailbox.map(str::to_string),
            host: host.map(str::to_string),
        }
    }

    fn sample() -> Envelope {
        let from = vec![addr(
            Some("Ann \"A\" Smith"),
            Some("ann"),
            Some("example.org"),
        )];
        Envelope {
            date: Some("Thu, 26 Nov 2026 10:00:00 +0000".into()),
            subject: Some("Caf\u{e9} \\ \"quoted\"".into()),
            sender: from.clone(),
            reply_to: vec![addr(None, Some("list"), Some("lists.example.org"))],
            from,
            to: vec![
                addr(None, Some("team"), None),
                addr(Some("B"), Some("b"), Some("x.example")),
                addr(None, None, None),
            ],
            cc: vec![],
            bcc: vec![addr(None, Some("hidden"), Some("example.org"))],
            in_reply_to: None,
            message_id: Some("<1@example.org>".into()),
        }
    }

    #[test]
    fn round_trip() {
        for e in [sample(), Envelope::default()] {
            let packed = pack(&e);
            let r = EnvelopeRef::parse(&packed).expect("parses");
            assert_eq!(r.to_envelope(), e);
            assert_eq!(e.view().to_envelope(), e);
        }
    }

    #[test]
    fn sender_is_not_stored_twice() {
        let e = sample();
        let mut other = e.clone();
        other.sender = vec![addr(None, Some("s"), Some("example.org"))];
        assert!(pack(&other).len() > pack(&e).len());
        assert_eq!(
            EnvelopeRef::parse(&pack(&other))
                .expect("parses")
                .to_envelope(),
            other
        );
    }

    #[test]
    fn broken_input_is_refused_not_read() {
        let packed = pack(&sample());
        for len in 0..packed.len() {
            assert!(EnvelopeRef::parse(&packed[..len]).is_none(), "prefix {len}");
        }
        let mut longer = packed.clone();
        longer.push(0);
        assert!(EnvelopeRef::parse(&longer).is_none());
        // Single-byte changes never panic; what parses iterates within its bytes.
        for i in 0..packed.len() {
            for b in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut m = packed.clone();
                m[i] = b;
                if let Some(r) = EnvelopeRef::parse(&m) {
                    let _ = r.to_envelope();
                }
            }
        }
        // A huge count in a short input.
        assert!(EnvelopeRef::parse(&[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_none());
        // JSON (the old stored form) is not mistaken for it.
        assert!(EnvelopeRef::parse(br#"{"date":null}"#).is_none());
    }

    #[test]
    fn long_strings_use_multi_byte_lengths() {
        let mut e = sample();
        e.subject = Some("x".repeat(70_000));
        let packed = pack(&e);
        assert_eq!(
            EnvelopeRef::parse(&packed).expect("parses").to_envelope(),
            e
        );
    }
}
