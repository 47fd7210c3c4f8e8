//! CREATE-SPECIAL-USE (RFC 6154 §3): `CREATE name (USE (\Sent))` creates a mailbox with a
//! special use, which LIST then shows. imap-codec's CREATE takes no parameters, so the form
//! with a parameter list is taken apart here (`forms.rs` asks); the mailbox name is still
//! decoded by imap-codec, from a plain CREATE of its own bytes.
//!
//! Parameters (RFC 4466 `create-param`): only USE; any other is BAD. `USE ()` is a plain
//! CREATE. The attributes a mailbox may get and the rule that an account has one mailbox per
//! special use (and a mailbox one) are the store's (`store/special_use.rs`): an attribute
//! that is unknown, not one a mailbox can be created with (`\All`, `\Flagged`), already
//! another mailbox's, or a second attribute, is `NO [USEATTR]` and nothing is created
//! (RFC 6154 §3: the server "MUST NOT create the mailbox").

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::mailbox::Mailbox as WireMailbox;

use super::multiappend::Scan;
use super::session::{CmdResult, Reply, Session};
use crate::net::Transport;
use crate::store::StoreError;

/// Most attributes in one USE list (one is all a mailbox can have; a few more are refused).
const MAX_ATTRIBUTES: usize = 16;

/// A CREATE with a USE parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSpecial {
    pub tag: String,
    pub mailbox: WireMailbox<'static>,
    /// The attributes as sent (`\Sent`), without repeats.
    pub uses: Vec<String>,
}

/// `None` for anything but a CREATE with a parameter list (imap-codec's); `Some(Err)` for one
/// whose parameters are wrong (BAD).
pub fn recognise(message: &[u8]) -> Option<Result<CreateSpecial, (String, String)>> {
    let mut s = Scan { b: message, pos: 0 };
    let tag_range = s.until(|b| b == b' ' || b == b'\r');
    let tag = String::from_utf8(s.slice(tag_range).to_vec()).ok()?;
    if tag.is_empty() || !s.eat(b' ') {
        return None;
    }
    let word = s.until(|b| b == b' ' || b == b'\r');
    if !s.slice(word).eq_ignore_ascii_case(b"CREATE") || !s.eat(b' ') {
        return None;
    }
    let mailbox_range = s.astring()?;
    if !(s.eat(b' ') && s.eat(b'(')) {
        return None;
    }
    let bad = |text: &str| Some(Err((tag.clone(), text.to_string())));
    let mut uses: Vec<String> = Vec::new();
    loop {
        let name = s.until(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
        let name = s.slice(name);
        if !name.eq_ignore_ascii_case(b"USE") {
            return bad(&format!(
                "unknown CREATE parameter {}",
                super::response::sanitize(&String::from_utf8_lossy(name))
            ));
        }
        if !(s.eat(b' ') && s.eat(b'(')) {
            return bad("USE needs a parenthesised list of special-use attributes");
        }
        let mut first = true;
        while !s.eat(b')') {
            if !std::mem::take(&mut first) && !s.eat(b' ') {
                return bad("syntax error in the USE list of CREATE");
            }
            if !s.eat(b'\\') {
                return bad("special-use attributes start with \\");
            }
            let atom = s.until(|b| b <= b' ' || b >= 0x7f || b"(){%*\"\\]".contains(&b));
            let Ok(atom) = std::str::from_utf8(s.slice(atom)) else {
                return bad("syntax error in the USE list of CREATE");
            };
            if atom.is_empty() {
                return bad("syntax error in the USE list of CREATE");
            }
            let attribute = format!("\\{atom}");
            if !uses.iter().any(|u| u.eq_ignore_ascii_case(&attribute)) {
                uses.push(attribute);
            }
            if uses.len() > MAX_ATTRIBUTES {
                return bad("too many special-use attributes");
            }
        }
        if s.eat(b')') {
            break;
        }
        if !s.eat(b' ') {
            return bad("syntax error in the parameters of CREATE");
        }
    }
    if !(s.eat(b'\r') && s.eat(b'\n') && s.pos == message.len()) {
        return bad("syntax error in the parameters of CREATE");
    }
    // The name as imap-codec decodes it in a plain CREATE.
    let mut plain = format!("{tag} CREATE ").into_bytes();
    plain.extend_from_slice(s.slice(mailbox_range));
    plain.extend_from_slice(b"\r\n");
    let mailbox = match CommandCodec::default().decode(&plain) {
        Ok((&[], command)) => match command.body {
            CommandBody::Create { mailbox } => mailbox.into_static(),
            _ => return bad("syntax error in the arguments of CREATE"),
        },
        _ => return bad("syntax error in the arguments of CREATE"),
    };
    Some(Ok(CreateSpecial { tag, mailbox, uses }))
}

impl<T: Transport> Session<T> {
    pub(super) async fn create_special(&mut self, create: CreateSpecial) -> CmdResult {
        let Some(account_id) = self.account.as_ref().map(|a| a.id) else {
            return Ok(Reply::bad("CREATE is only valid after login"));
        };
        let special_use = match create.uses.as_slice() {
            [] => return self.create(create.mailbox).await,
            [one] => one,
            _ => {
                return Ok(Reply::no(
                    "[USEATTR] a mailbox can have only one special use here",
                ));
            }
        };
        let name = match self.name_arg(&create.mailbox) {
            Ok(n) => n,
            Err(r) => return Ok(r),
        };
        // A trailing separator only says the client intends to create children (RFC 3501).
        let name = name.trim_end_matches('/');
        match self
            .imap
            .store
            .create_special_mailbox(account_id, name, special_use)
            .await
        {
            Ok(Ok(_)) => Ok(Reply::ok("CREATE completed")),
            Ok(Err(why)) => Ok(Reply::no(format!(
                "[USEATTR] {}",
                super::response::sanitize(&why)
            ))),
            Err(StoreError::Conflict(text)) => Ok(Reply::no(format!("[ALREADYEXISTS] {text}"))),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::mailbox::mailbox_name;

    #[test]
    fn forms() {
        assert_eq!(recognise(b"a CREATE Foo\r\n"), None);
        assert_eq!(recognise(b"a DELETE Foo (USE (\\Sent))\r\n"), None);
        let c = recognise(b"a CREATE \"My Sent\" (USE (\\Sent))\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(mailbox_name(&c.mailbox, false).unwrap(), "My Sent");
        assert_eq!(c.uses, ["\\Sent"]);
        let c = recognise(b"a create {4}\r\nSpam (use (\\Junk \\junk \\Archive))\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(mailbox_name(&c.mailbox, false).unwrap(), "Spam");
        assert_eq!(c.uses, ["\\Junk", "\\Archive"]);
        let c = recognise(b"a CREATE X (USE ())\r\n").unwrap().unwrap();
        assert!(c.uses.is_empty());
        for bad in [
            &b"a CREATE X (FOO (\\Sent))\r\n"[..],
            b"a CREATE X (USE \\Sent)\r\n",
            b"a CREATE X (USE (Sent))\r\n",
            b"a CREATE X (USE (\\Sent)\r\n",
            b"a CREATE X (USE (\\Sent)) junk\r\n",
            b"a CREATE X (USE (\\Sent  \\Junk))\r\n",
            b"a CREATE X ()\r\n",
        ] {
            assert!(
                matches!(recognise(bad), Some(Err(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
