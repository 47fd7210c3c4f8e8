//! METADATA and METADATA-SERVER (RFC 5464): GETMETADATA and SETMETADATA, entries on a
//! mailbox or, with the mailbox name `""`, on the server. imap-codec (feature `ext_metadata`)
//! parses both commands; the store keeps the entries (`store/metadata.rs`).
//!
//! Entry names: `/private/…` or `/shared/…` (GETMETADATA may also name the two roots, to
//! list with DEPTH), valid UTF-8 of at most [`MAX_NAME`] octets, without `*`, `%`, control
//! characters, `//` or a trailing `/`; anything else is BAD. Names are case-insensitive (RFC
//! 5464 §3.2), kept and shown in lower case as Dovecot does.
//!
//! Who may write what: private entries belong to the account that sets them. A mailbox has
//! one owner and nobody else can open it, so its shared entries are the owner's to write
//! too. Shared server entries (`""` `/shared/…`) are seen by every account, so only an
//! administrator may write them (`NO [NOPERM]`), as one would expect for a server comment or
//! contact address. Private entries are always supported, so `[METADATA NOPRIVATE]` is never
//! sent.
//!
//! Bounds: a value is at most `store::metadata::MAX_VALUE` (64 KiB, `[METADATA MAXSIZE n]`),
//! an account holds at most `MAX_ENTRIES` (256, `[METADATA TOOMANY]`) and a command names at
//! most [`MAX_COMMAND_ENTRIES`]. A synchronizing literal announced in SETMETADATA larger than
//! the value limit is refused before it is sent ([`refuse_literal`], called by `framing.rs`);
//! a non-synchronizing one is read within the usual literal limit and then refused.
//!
//! A mailbox's `/private/specialuse` is its special use (RFC 6154 §4: a server with both
//! extensions SHOULD tie them), as LIST shows it; setting it follows CREATE-SPECIAL-USE's rules
//! (`NO [USEATTR]`), NIL removes it.
//!
//! GETMETADATA answers in one `* METADATA` response, as Dovecot does: each named entry with
//! its value, or NIL when it does not exist, then with DEPTH 1 or infinity the existing
//! entries below it. MAXSIZE leaves out larger values and the tagged OK then carries
//! `[METADATA LONGENTRIES n]` with the largest left out. No unsolicited METADATA responses
//! are sent (RFC 5464 §4.4.2 makes them optional).

use std::collections::HashSet;

use imap_codec::imap_types::core::{NString8, Vec1};
use imap_codec::imap_types::extensions::metadata::{Depth, Entry, EntryValue, GetMetadataOption};
use imap_codec::imap_types::mailbox::Mailbox as WireMailbox;

use super::mailbox::write_name;
use super::response::Out;
use super::session::{CmdResult, Reply, Session};
use crate::net::Transport;
use crate::store::{MAX_METADATA_VALUE, Mailbox, MetadataLimit, MetadataOwner};

/// Longest entry name, in octets.
pub const MAX_NAME: usize = 1024;
/// Most entries one GETMETADATA or SETMETADATA may name.
pub const MAX_COMMAND_ENTRIES: usize = 256;

/// The checked, lower-cased name of an entry, or why it is not one. `set` refuses the two
/// roots, which hold no value of their own.
pub fn entry_name(raw: &[u8], set: bool) -> Result<String, String> {
    let Ok(name) = std::str::from_utf8(raw) else {
        return Err("entry names must be UTF-8".into());
    };
    if name.len() > MAX_NAME {
        return Err(format!("entry names are limited to {MAX_NAME} octets"));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err("entry names cannot contain control characters".into());
    }
    if name.contains(['*', '%']) {
        return Err("entry names cannot contain * or %".into());
    }
    if name.contains("//") || name.ends_with('/') {
        return Err("entry names cannot contain // or end with /".into());
    }
    let name = name.to_ascii_lowercase();
    let root = name == "/private" || name == "/shared";
    if !(name.starts_with("/private/") || name.starts_with("/shared/") || (root && !set)) {
        return Err("entry names start with /private/ or /shared/".into());
    }
    Ok(name)
}

/// The answer to a synchronizing literal of `length` octets announced in a SETMETADATA
/// (`message` is the command so far) when it is larger than any value may be: no name or
/// mailbox name is that long either, so any such literal can be refused before it is sent.
pub(super) fn refuse_literal(message: &[u8], length: u64) -> Option<String> {
    if length <= MAX_METADATA_VALUE as u64 {
        return None;
    }
    let mut words = message.splitn(3, |&b| b == b' ');
    let _tag = words.next()?;
    let command = words.next()?;
    command
        .eq_ignore_ascii_case(b"SETMETADATA")
        .then(|| format!("[METADATA MAXSIZE {MAX_METADATA_VALUE}] a value may have at most {MAX_METADATA_VALUE} octets"))
}

/// An entry name as an astring: an atom when it can be one (the usual `/private/comment`),
/// else a quoted string or literal.
fn write_entry(out: &mut Out, name: &str) {
    let atom = !name.is_empty()
        && name.bytes().all(|b| {
            (0x21..=0x7e).contains(&b)
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\')
        });
    if atom {
        out.text(name);
    } else {
        out.string(name.as_bytes());
    }
}

/// A value: quoted or a literal, and a literal8 (`~{n}`, RFC 5464's `value` allows it) when
/// it holds NUL, which a plain literal cannot carry.
fn write_value(out: &mut Out, value: &[u8]) {
    if value.contains(&0) {
        out.text("~{").num(value.len()).text("}").crlf().raw(value);
    } else {
        out.string(value);
    }
}

/// Where the entries of a command's mailbox argument are: the server for `""`.
enum Place {
    Server,
    Mailbox(Mailbox),
}

impl<T: Transport> Session<T> {
    fn metadata_account(&self) -> i64 {
        self.account.as_ref().map_or(0, |a| a.id)
    }

    /// The server for `""`, else the account's mailbox of that name (or the reply refusing).
    async fn metadata_place(&self, mailbox: &WireMailbox<'static>) -> Result<Place, Reply> {
        if let WireMailbox::Other(other) = mailbox
            && other.inner().as_ref().is_empty()
        {
            return Ok(Place::Server);
        }
        let name = self.name_arg(mailbox)?;
        match self
            .imap
            .store
            .mailbox(self.metadata_account(), &name)
            .await
        {
            Ok(Some(mb)) => Ok(Place::Mailbox(mb)),
            Ok(None) => Err(Reply::no("[NONEXISTENT] no such mailbox")),
            Err(e) => Err(super::session::store_error(e)),
        }
    }

    pub(super) async fn get_metadata(
        &mut self,
        options: Vec<GetMetadataOption>,
        mailbox: WireMailbox<'static>,
        entries: Vec1<Entry<'static>>,
    ) -> CmdResult {
        let mut max_size: Option<u32> = None;
        let mut depth = Depth::Null;
        for option in options {
            match option {
                GetMetadataOption::MaxSize(n) => max_size = Some(n),
                GetMetadataOption::Depth(d) => depth = d,
            }
        }
        let entries = entries.into_inner();
        if entries.len() > MAX_COMMAND_ENTRIES {
            return Ok(Reply::bad(format!(
                "at most {MAX_COMMAND_ENTRIES} entries per command"
            )));
        }
        let mut names = Vec::with_capacity(entries.len());
        for e in &entries {
            match entry_name(e.as_ref(), false) {
                Ok(n) => names.push(n),
                Err(text) => return Ok(Reply::bad(text)),
            }
        }
        let place = match self.metadata_place(&mailbox).await {
            Ok(p) => p,
            Err(reply) => return Ok(reply),
        };
        let utf8 = self.utf8_names();
        let owner = match &place {
            Place::Server => MetadataOwner::Server,
            Place::Mailbox(mb) => MetadataOwner::Mailbox(mb),
        };
        // A name asked for twice is answered once, and an entry below another one asked for is
        // among that one's rows already: the store reads each subtree once, so one command
        // reads (and writes) at most what the account holds, however its names overlap.
        let mut asked = HashSet::new();
        names.retain(|n| asked.insert(n.clone()));
        let below_another = |n: &String| {
            names.iter().any(|r| {
                n.len() > r.len()
                    && n.starts_with(r.as_str())
                    && n.as_bytes().get(r.len()) == Some(&b'/')
            })
        };
        let roots: Vec<String> = names
            .iter()
            .filter(|n| !below_another(n))
            .cloned()
            .collect();
        let found = self
            .imap
            .store
            .metadata(self.metadata_account(), owner, &roots)
            .await?;
        let mut largest_left_out: usize = 0;
        let mut items: Vec<(&str, Option<&[u8]>)> = Vec::new();
        let mut listed: HashSet<&str> = HashSet::new();
        for name in &names {
            let prefix = format!("{name}/");
            // The entry itself: its value, or NIL when it does not exist.
            if listed.insert(name) {
                match found.iter().find(|(n, _)| n == name) {
                    Some((n, v)) => items.push((n, Some(v))),
                    None => items.push((name, None)),
                }
            }
            if matches!(depth, Depth::Null) {
                continue;
            }
            for (n, v) in &found {
                let Some(rest) = n.strip_prefix(&prefix) else {
                    continue;
                };
                if matches!(depth, Depth::One) && rest.contains('/') {
                    continue;
                }
                if listed.insert(n) {
                    items.push((n, Some(v)));
                }
            }
        }
        let mut wrote = false;
        for (name, value) in items {
            if let (Some(v), Some(max)) = (value, max_size)
                && v.len() as u64 > u64::from(max)
            {
                largest_left_out = largest_left_out.max(v.len());
                continue;
            }
            if wrote {
                self.out.text(" ");
            } else {
                self.out.text("* METADATA ");
                match &place {
                    Place::Server => self.out.text("\"\""),
                    Place::Mailbox(mb) => {
                        write_name(&mut self.out, &mb.name, utf8);
                        &mut self.out
                    }
                };
                self.out.text(" (");
                wrote = true;
            }
            write_entry(&mut self.out, name);
            self.out.text(" ");
            match value {
                Some(v) => write_value(&mut self.out, v),
                None => {
                    self.out.text("NIL");
                }
            }
        }
        if wrote {
            self.out.text(")").crlf();
        }
        Ok(if largest_left_out > 0 {
            Reply::ok(format!(
                "[METADATA LONGENTRIES {largest_left_out}] GETMETADATA completed"
            ))
        } else {
            Reply::ok("GETMETADATA completed")
        })
    }

    pub(super) async fn set_metadata(
        &mut self,
        mailbox: WireMailbox<'static>,
        entry_values: Vec1<EntryValue<'static>>,
    ) -> CmdResult {
        let entry_values = entry_values.into_inner();
        if entry_values.len() > MAX_COMMAND_ENTRIES {
            return Ok(Reply::no(
                "[METADATA TOOMANY] too many entries in one command",
            ));
        }
        let mut writes: Vec<(String, Option<Vec<u8>>)> = Vec::with_capacity(entry_values.len());
        for ev in entry_values {
            let name = match entry_name(ev.entry.as_ref(), true) {
                Ok(n) => n,
                Err(text) => return Ok(Reply::bad(text)),
            };
            let value = match ev.value {
                NString8::NString(n) => n.0.map(|s| s.as_ref().to_vec()),
                NString8::Literal8(l) => Some(l.data.as_ref().to_vec()),
            };
            writes.push((name, value));
        }
        let place = match self.metadata_place(&mailbox).await {
            Ok(p) => p,
            Err(reply) => return Ok(reply),
        };
        let account_id = self.metadata_account();
        if matches!(place, Place::Server) && writes.iter().any(|(n, _)| n.starts_with("/shared/")) {
            // Every account reads shared server entries: only an administrator writes them.
            // Looked up afresh, so a revoked administrator is one at once no longer.
            let admin = self
                .imap
                .store
                .account(account_id)
                .await?
                .is_some_and(|a| a.is_admin && !a.disabled);
            if !admin {
                return Ok(Reply::no(
                    "[NOPERM] only administrators may set shared server entries",
                ));
            }
        }
        let owner = match &place {
            Place::Server => MetadataOwner::Server,
            Place::Mailbox(mb) => MetadataOwner::Mailbox(mb),
        };
        match self
            .imap
            .store
            .set_metadata(account_id, owner, &writes)
            .await?
        {
            Ok(()) => Ok(Reply::ok("SETMETADATA completed")),
            Err(MetadataLimit::MaxSize(_)) => Ok(Reply::no(format!(
                "[METADATA MAXSIZE {MAX_METADATA_VALUE}] a value may have at most {MAX_METADATA_VALUE} octets"
            ))),
            Err(MetadataLimit::TooMany) => Ok(Reply::no(
                "[METADATA TOOMANY] too many entries; remove some first",
            )),
            Err(MetadataLimit::UseAttr(why)) => Ok(Reply::no(format!(
                "[USEATTR] {}",
                super::response::sanitize(&why)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names() {
        assert_eq!(
            entry_name(b"/private/DeviceToken", true).as_deref(),
            Ok("/private/devicetoken")
        );
        assert!(entry_name(b"/shared/comment", true).is_ok());
        assert!(entry_name(b"/shared", false).is_ok());
        assert!(entry_name(b"/shared", true).is_err());
        for bad in [
            &b"/private/a*"[..],
            b"/private/%",
            b"/private//a",
            b"/private/a/",
            b"/other/a",
            b"private/a",
            b"/privatex/a",
            b"/private/a\x01",
            b"/private/\xff",
        ] {
            assert!(entry_name(bad, false).is_err(), "{bad:?}");
        }
        assert!(entry_name(format!("/shared/{}", "x".repeat(MAX_NAME)).as_bytes(), true).is_err());
    }

    #[test]
    fn literal_refusal() {
        assert!(refuse_literal(b"a SETMETADATA INBOX (/private/x ", 70_000).is_some());
        assert!(refuse_literal(b"a setmetadata INBOX (/private/x ", 65_536).is_none());
        assert!(refuse_literal(b"a APPEND INBOX ", 70_000).is_none());
    }
}
