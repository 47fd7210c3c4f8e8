//! The script commands of the authenticated state (RFC 5804 §2.5–2.12): HAVESPACE,
//! PUTSCRIPT, LISTSCRIPTS, SETACTIVE, GETSCRIPT, DELETESCRIPT, RENAMESCRIPT, CHECKSCRIPT.
//!
//! The store keeps the quota and the one-active rule and says why it refused
//! ([`SieveRefusal`]); this file turns that into the response codes of RFC 5804 §1.3.
//! PUTSCRIPT and CHECKSCRIPT compile the script first: one that does not compile is refused
//! with `NO` and "line L, column C: what is wrong", and nothing is stored.

use super::language;
use super::session::{Fail, Flow, Outcome, Refusal, Session};
use crate::store::SieveRefusal;

/// The response to a refusal of the store.
fn refused(r: SieveRefusal) -> Fail {
    let refusal = match r {
        SieveRefusal::MaxScripts => {
            Refusal::answer("too many scripts: delete one first").code("QUOTA/MAXSCRIPTS")
        }
        SieveRefusal::MaxSize => {
            Refusal::answer("the account's scripts would be too large").code("QUOTA/MAXSIZE")
        }
        SieveRefusal::Nonexistent => Refusal::answer("no such script").code("NONEXISTENT"),
        SieveRefusal::AlreadyExists => {
            Refusal::answer("a script of that name exists").code("ALREADYEXISTS")
        }
        SieveRefusal::Active => {
            Refusal::answer("the active script cannot be deleted").code("ACTIVE")
        }
        SieveRefusal::InvalidName => {
            Refusal::answer("invalid script name: 1 to 128 characters, no control characters")
        }
    };
    refusal.into()
}

fn unavailable(e: crate::store::StoreError) -> Fail {
    Refusal::ours("the scripts are unavailable, try again later", e).into()
}

impl Session {
    fn account_id(&self) -> Result<i64, Fail> {
        self.account
            .as_ref()
            .map(|a| a.id)
            .ok_or_else(|| Refusal::strike("not logged in").into())
    }

    /// A script's text, within the size limit and in UTF-8 (RFC 5804 §1.9).
    fn source(&self, script: Vec<u8>) -> Result<String, Fail> {
        let max = self.shared.settings.max_script_bytes;
        if script.len() as u64 > max {
            return Err(
                Refusal::answer(format!("scripts may have at most {max} octets"))
                    .code("QUOTA/MAXSIZE")
                    .into(),
            );
        }
        String::from_utf8(script).map_err(|_| Refusal::answer("the script is not UTF-8").into())
    }

    pub(super) async fn havespace(&mut self, name: &str, size: u64) -> Outcome {
        let account = self.account_id()?;
        let max = self.shared.settings.max_script_bytes;
        if size > max {
            return Err(
                Refusal::answer(format!("scripts may have at most {max} octets"))
                    .code("QUOTA/MAXSIZE")
                    .into(),
            );
        }
        self.shared
            .store
            .sieve_space(account, name, size)
            .await
            .map_err(unavailable)?
            .map_err(refused)?;
        self.ok(None, "");
        Ok(Flow::Continue)
    }

    pub(super) async fn putscript(&mut self, name: &str, script: Vec<u8>) -> Outcome {
        let account = self.account_id()?;
        let source = self.source(script)?;
        let compiled = language::compile(&source).map_err(Refusal::answer)?;
        self.shared
            .store
            .put_sieve(account, name, &source, &compiled)
            .await
            .map_err(unavailable)?
            .map_err(refused)?;
        self.ok(None, "");
        Ok(Flow::Continue)
    }

    pub(super) fn checkscript(&mut self, script: Vec<u8>) -> Outcome {
        let source = self.source(script)?;
        language::compile(&source).map_err(Refusal::answer)?;
        self.ok(None, "");
        Ok(Flow::Continue)
    }

    pub(super) async fn listscripts(&mut self) -> Outcome {
        let account = self.account_id()?;
        let scripts = self
            .shared
            .store
            .sieve_scripts(account)
            .await
            .map_err(unavailable)?;
        for script in scripts {
            let out = self.out();
            super::parser::write_string(out, script.name.as_bytes());
            if script.active {
                out.extend_from_slice(b" ACTIVE");
            }
            out.extend_from_slice(b"\r\n");
        }
        self.ok(None, "");
        Ok(Flow::Continue)
    }

    /// The empty name leaves no script active (RFC 5804 §2.8).
    pub(super) async fn setactive(&mut self, name: &str) -> Outcome {
        let account = self.account_id()?;
        let name = (!name.is_empty()).then_some(name);
        self.shared
            .store
            .set_active_sieve(account, name)
            .await
            .map_err(unavailable)?
            .map_err(refused)?;
        self.ok(None, "");
        Ok(Flow::Continue)
    }

    /// The script as a literal always: clients read it as one (RFC 5804 §2.9's example).
    pub(super) async fn getscript(&mut self, name: &str) -> Outcome {
        let account = self.account_id()?;
        let script = self
            .shared
            .store
            .sieve_script(account, name)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| refused(SieveRefusal::Nonexistent))?;
        let out = self.out();
        out.extend_from_slice(format!("{{{}}}\r\n", script.source.len()).as_bytes());
        out.extend_from_slice(script.source.as_bytes());
        out.extend_from_slice(b"\r\n");
        self.ok(None, "");
        Ok(Flow::Continue)
    }

    pub(super) async fn deletescript(&mut self, name: &str) -> Outcome {
        let account = self.account_id()?;
        self.shared
            .store
            .delete_sieve(account, name)
            .await
            .map_err(unavailable)?
            .map_err(refused)?;
        self.ok(None, "");
        Ok(Flow::Continue)
    }

    pub(super) async fn renamescript(&mut self, old: &str, new: &str) -> Outcome {
        let account = self.account_id()?;
        self.shared
            .store
            .rename_sieve(account, old, new)
            .await
            .map_err(unavailable)?
            .map_err(refused)?;
        self.ok(None, "");
        Ok(Flow::Continue)
    }
}
