//! The command forms imap-codec cannot parse that `multiappend.rs` (MULTIAPPEND, RFC 3502) and
//! `create_special.rs` (CREATE with a USE parameter, RFC 6154 §3) add; `extended.rs` has the
//! others (SEARCH RETURN, the extended LIST). `session.rs` asks [`recognise`] about every
//! command `extended.rs` left alone, before imap-codec sees it; what is not one of these forms
//! (an APPEND of one message, a CREATE without parameters) goes to imap-codec unchanged.

use super::create_special::{self, CreateSpecial};
use super::multiappend::{self, MultiAppend};
use super::session::{CmdResult, Session};
use crate::net::Transport;

/// A command taken apart here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    Append(MultiAppend),
    Create(CreateSpecial),
}

impl Form {
    pub fn tag(&self) -> &str {
        match self {
            Form::Append(a) => &a.tag,
            Form::Create(c) => &c.tag,
        }
    }
}

/// `None` when `message` is none of these forms; `Some(Err((tag, text)))` for one with a
/// syntax error (answered BAD).
pub fn recognise(message: &[u8]) -> Option<Result<Form, (String, String)>> {
    if let Some(append) = multiappend::recognise(message) {
        return Some(append.map(Form::Append));
    }
    create_special::recognise(message).map(|c| c.map(Form::Create))
}

impl<T: Transport> Session<T> {
    pub(super) async fn execute_form(&mut self, form: Form) -> CmdResult {
        match form {
            Form::Append(append) => self.multiappend(append).await,
            Form::Create(create) => self.create_special(create).await,
        }
    }
}
