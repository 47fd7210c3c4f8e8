//! Contacts (migration 0022, `contacts`): each account's address book. A contact is saved by
//! its owner (typed on the Contacts page, edited, or imported from a vCard file) or collected
//! when the owner sends mail to an address the book does not have yet. Every function takes
//! the account id and touches only that account's rows, so one account never sees another's.
//!
//! Bounds: [`MAX_PER_ACCOUNT`] contacts, and the field lengths below; fields are checked by
//! [`ContactFields::checked`] before anything is written. Addresses are kept lower-cased, one
//! per line, so "is this address in the book" is one query over at most 5,000 short rows.

use super::{Result, Store, StoreError, now};
use crate::address::Address;

/// Contacts per account: a large personal address book, and a bound on what one account can
/// put in the shared database.
pub const MAX_PER_ACCOUNT: i64 = 5000;
/// Longest name, organisation (characters).
pub const MAX_NAME: usize = 200;
/// Longest note (characters).
pub const MAX_NOTE: usize = 2000;
/// Addresses, and telephone numbers, per contact.
pub const MAX_EMAILS: usize = 10;
/// Longest telephone number (characters).
pub const MAX_PHONE: usize = 64;
/// Longest address (RFC 5321's limit on a path).
pub const MAX_EMAIL: usize = 254;

/// What a contact says, as typed or imported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactFields {
    pub name: String,
    /// The first is the preferred address.
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub org: String,
    pub note: String,
}

/// One contact as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub id: i64,
    pub fields: ContactFields,
    /// Added automatically from a message sent (not yet edited by its owner).
    pub collected: bool,
    pub created: i64,
    pub updated: i64,
}

/// One suggestion for an address field: a name (possibly empty) and an address.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Suggestion {
    pub name: String,
    pub email: String,
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

fn too_long(what: &str, max: usize) -> StoreError {
    StoreError::Invalid(format!("{what} is longer than {max} characters."))
}

impl ContactFields {
    /// The fields made safe to store: control characters out of one-line fields, addresses
    /// checked and lower-cased (duplicates dropped), empty entries dropped, every length and
    /// count within bounds. A contact needs at least one address.
    pub fn checked(&self) -> Result<ContactFields> {
        let name = one_line(&self.name);
        if name.chars().count() > MAX_NAME {
            return Err(too_long("The name", MAX_NAME));
        }
        let org = one_line(&self.org);
        if org.chars().count() > MAX_NAME {
            return Err(too_long("The organisation", MAX_NAME));
        }
        // The note keeps its lines, but no other control characters.
        let note: String = self
            .note
            .replace("\r\n", "\n")
            .chars()
            .filter(|c| *c == '\n' || !c.is_control())
            .collect::<String>()
            .trim()
            .to_string();
        if note.chars().count() > MAX_NOTE {
            return Err(too_long("The note", MAX_NOTE));
        }
        let mut emails: Vec<String> = Vec::new();
        for e in self
            .emails
            .iter()
            .map(|e| e.trim())
            .filter(|e| !e.is_empty())
        {
            if e.len() > MAX_EMAIL {
                return Err(too_long("An address", MAX_EMAIL));
            }
            let parsed = Address::parse(e).map_err(StoreError::Invalid)?;
            let e = parsed.to_string().to_lowercase();
            if !emails.contains(&e) {
                emails.push(e);
            }
        }
        if emails.is_empty() {
            return Err(StoreError::Invalid(
                "A contact needs an e-mail address.".into(),
            ));
        }
        if emails.len() > MAX_EMAILS {
            return Err(StoreError::Invalid(format!(
                "At most {MAX_EMAILS} addresses per contact."
            )));
        }
        let mut phones: Vec<String> = Vec::new();
        for p in self
            .phones
            .iter()
            .map(|p| one_line(p))
            .filter(|p| !p.is_empty())
        {
            if p.chars().count() > MAX_PHONE {
                return Err(too_long("A telephone number", MAX_PHONE));
            }
            phones.push(p);
        }
        if phones.len() > MAX_EMAILS {
            return Err(StoreError::Invalid(format!(
                "At most {MAX_EMAILS} telephone numbers per contact."
            )));
        }
        Ok(ContactFields {
            name,
            emails,
            phones,
            org,
            note,
        })
    }
}

type Row = (i64, String, String, String, String, String, i64, i64, i64);

/// The columns of a [`Row`] (a macro, so that statements stay literal strings).
macro_rules! columns {
    () => {
        "id, name, emails, phones, org, note, collected, created, updated"
    };
}

fn lines(s: &str) -> Vec<String> {
    s.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn from_row(r: Row) -> Contact {
    Contact {
        id: r.0,
        fields: ContactFields {
            name: r.1,
            emails: lines(&r.2),
            phones: lines(&r.3),
            org: r.4,
            note: r.5,
        },
        collected: r.6 != 0,
        created: r.7,
        updated: r.8,
    }
}

/// `s` with LIKE's wildcards escaped (with `\`).
fn like_escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The condition "the contact has address `?`" (one bound value: the lower-cased address).
/// `emails` holds one address per line, so the address must sit between line breaks.
macro_rules! has_email {
    () => {
        "instr(char(10) || emails || char(10), char(10) || ? || char(10)) > 0"
    };
}

impl Store {
    /// This account's contacts whose name, address or organisation contains `query` (all
    /// when it is empty), by name, at most `limit`.
    pub async fn contacts(&self, account_id: i64, query: &str, limit: i64) -> Result<Vec<Contact>> {
        let pattern = format!("%{}%", like_escaped(query.trim()));
        let rows: Vec<Row> = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM contacts WHERE account_id = ?1
             AND (name LIKE ?2 ESCAPE '\\' OR emails LIKE ?2 ESCAPE '\\' OR org LIKE ?2 ESCAPE '\\')
             ORDER BY CASE name WHEN '' THEN emails ELSE name END COLLATE NOCASE, id LIMIT ?3"
        ))
        .bind(account_id)
        .bind(&pattern)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// Every contact of this account (for export), by name.
    pub async fn all_contacts(&self, account_id: i64) -> Result<Vec<Contact>> {
        self.contacts(account_id, "", MAX_PER_ACCOUNT).await
    }

    pub async fn contact_count(&self, account_id: i64) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM contacts WHERE account_id = ?")
                .bind(account_id)
                .fetch_one(&self.reader)
                .await?,
        )
    }

    /// The contact `id` if it is this account's.
    pub async fn contact(&self, account_id: i64, id: i64) -> Result<Option<Contact>> {
        let row: Option<Row> = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM contacts WHERE account_id = ? AND id = ?"
        ))
        .bind(account_id)
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(from_row))
    }

    /// Adds a saved contact; refused past [`MAX_PER_ACCOUNT`].
    pub async fn add_contact(&self, account_id: i64, fields: &ContactFields) -> Result<i64> {
        let fields = fields.checked()?;
        let mut tx = self.write().await?;
        let id = insert(&mut tx, account_id, &fields, false).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Replaces what contact `id` says (it becomes a saved contact). `false` when this account
    /// has no such contact.
    pub async fn update_contact(
        &self,
        account_id: i64,
        id: i64,
        fields: &ContactFields,
    ) -> Result<bool> {
        let f = fields.checked()?;
        let done = sqlx::query(
            "UPDATE contacts SET name = ?, emails = ?, phones = ?, org = ?, note = ?,
             collected = 0, updated = ? WHERE account_id = ? AND id = ?",
        )
        .bind(&f.name)
        .bind(f.emails.join("\n"))
        .bind(f.phones.join("\n"))
        .bind(&f.org)
        .bind(&f.note)
        .bind(now())
        .bind(account_id)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes contact `id`; `false` when this account has no such contact.
    pub async fn delete_contact(&self, account_id: i64, id: i64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM contacts WHERE account_id = ? AND id = ?")
            .bind(account_id)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Suggestions for an address field: each address of this account's contacts whose
    /// address, name, or a word of the name starts with `prefix` (without case), saved
    /// contacts first, at most `limit`.
    pub async fn suggest_contacts(
        &self,
        account_id: i64,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<Suggestion>> {
        let prefix = prefix.trim().to_lowercase();
        if prefix.is_empty() {
            return Ok(Vec::new());
        }
        let start = format!("{}%", like_escaped(&prefix));
        let word = format!("% {}%", like_escaped(&prefix));
        let line = format!("%\n{}%", like_escaped(&prefix));
        // A few more rows than asked for: a contact matched by name brings all its addresses.
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, emails FROM contacts WHERE account_id = ?1
             AND (name LIKE ?2 ESCAPE '\\' OR name LIKE ?3 ESCAPE '\\'
                  OR emails LIKE ?2 ESCAPE '\\' OR emails LIKE ?4 ESCAPE '\\')
             ORDER BY collected, name = '', name COLLATE NOCASE, id LIMIT ?5",
        )
        .bind(account_id)
        .bind(&start)
        .bind(&word)
        .bind(&line)
        .bind(limit as i64)
        .fetch_all(&self.reader)
        .await?;
        let mut out = Vec::new();
        for (name, emails) in rows {
            let lname = name.to_lowercase();
            let name_matches = lname.starts_with(&prefix)
                || lname.split_whitespace().any(|w| w.starts_with(&prefix));
            for email in emails.lines().filter(|e| !e.is_empty()) {
                if (name_matches || email.starts_with(&prefix)) && out.len() < limit {
                    out.push(Suggestion {
                        name: name.clone(),
                        email: email.to_string(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Collects the people written to: each address not in any of this account's contacts is
    /// added as a collected contact (with the display name given, if any). Stops quietly at
    /// [`MAX_PER_ACCOUNT`]: collecting is a convenience, never a reason to refuse a send.
    /// Returns how many were added.
    pub async fn collect_contacts(
        &self,
        account_id: i64,
        people: &[(String, String)],
    ) -> Result<usize> {
        let mut tx = self.write().await?;
        let mut count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM contacts WHERE account_id = ?")
                .bind(account_id)
                .fetch_one(&mut *tx)
                .await?;
        let mut added = 0;
        for (name, email) in people {
            if count >= MAX_PER_ACCOUNT {
                break;
            }
            let fields = ContactFields {
                name: name.clone(),
                emails: vec![email.clone()],
                ..ContactFields::default()
            };
            // A name or address this book would refuse is just not collected.
            let Ok(fields) = fields.checked().or_else(|_| {
                ContactFields {
                    name: String::new(),
                    ..fields
                }
                .checked()
            }) else {
                continue;
            };
            let Some(email) = fields.emails.first() else {
                continue;
            };
            let known: i64 = sqlx::query_scalar(concat!(
                "SELECT COUNT(*) FROM contacts WHERE account_id = ? AND ",
                has_email!()
            ))
            .bind(account_id)
            .bind(email)
            .fetch_one(&mut *tx)
            .await?;
            if known == 0 {
                insert(&mut tx, account_id, &fields, true).await?;
                count += 1;
                added += 1;
            }
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Imports contacts in one transaction: a contact whose preferred address is already in
    /// the book replaces what that contact says; the others are added. All or nothing: past
    /// [`MAX_PER_ACCOUNT`] nothing is imported. Returns (added, updated).
    pub async fn import_contacts(
        &self,
        account_id: i64,
        contacts: &[ContactFields],
    ) -> Result<(usize, usize)> {
        let checked = contacts
            .iter()
            .map(ContactFields::checked)
            .collect::<Result<Vec<_>>>()?;
        let mut tx = self.write().await?;
        let mut count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM contacts WHERE account_id = ?")
                .bind(account_id)
                .fetch_one(&mut *tx)
                .await?;
        let (mut added, mut updated) = (0, 0);
        for f in &checked {
            let Some(first) = f.emails.first() else {
                continue;
            };
            let existing: Option<i64> = sqlx::query_scalar(concat!(
                "SELECT id FROM contacts WHERE account_id = ? AND ",
                has_email!(),
                " ORDER BY id LIMIT 1"
            ))
            .bind(account_id)
            .bind(first)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(id) = existing {
                sqlx::query(
                    "UPDATE contacts SET name = ?, emails = ?, phones = ?, org = ?, note = ?,
                     collected = 0, updated = ? WHERE id = ?",
                )
                .bind(&f.name)
                .bind(f.emails.join("\n"))
                .bind(f.phones.join("\n"))
                .bind(&f.org)
                .bind(&f.note)
                .bind(now())
                .bind(id)
                .execute(&mut *tx)
                .await?;
                updated += 1;
            } else {
                if count >= MAX_PER_ACCOUNT {
                    return Err(StoreError::Invalid(format!(
                        "An address book holds at most {MAX_PER_ACCOUNT} contacts: nothing was imported."
                    )));
                }
                insert(&mut tx, account_id, f, false).await?;
                count += 1;
                added += 1;
            }
        }
        tx.commit().await?;
        Ok((added, updated))
    }
}

/// Inserts checked fields, refusing past [`MAX_PER_ACCOUNT`].
async fn insert(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    account_id: i64,
    f: &ContactFields,
    collected: bool,
) -> Result<i64> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM contacts WHERE account_id = ?")
        .bind(account_id)
        .fetch_one(&mut **tx)
        .await?;
    if count >= MAX_PER_ACCOUNT {
        return Err(StoreError::Invalid(format!(
            "An address book holds at most {MAX_PER_ACCOUNT} contacts."
        )));
    }
    let t = now();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO contacts (account_id, name, emails, phones, org, note, collected, created, updated)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(account_id)
    .bind(&f.name)
    .bind(f.emails.join("\n"))
    .bind(f.phones.join("\n"))
    .bind(&f.org)
    .bind(&f.note)
    .bind(i64::from(collected))
    .bind(t)
    .bind(t)
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_checked_and_normalised() {
        let f = ContactFields {
            name: " Ann\u{7}Lee ".into(),
            emails: vec![
                "Ann@Example.ORG".into(),
                "ann@example.org".into(),
                " ".into(),
            ],
            phones: vec!["+1 555\r\n0100".into()],
            org: "".into(),
            note: "line 1\r\nline 2\u{0}".into(),
        }
        .checked()
        .unwrap();
        assert_eq!(f.name, "Ann Lee");
        assert_eq!(f.emails, vec!["ann@example.org"]);
        assert_eq!(f.phones, vec!["+1 555  0100"]);
        assert_eq!(f.note, "line 1\nline 2");
        assert!(ContactFields::default().checked().is_err());
        let bad = ContactFields {
            emails: vec!["not an address".into()],
            ..ContactFields::default()
        };
        assert!(bad.checked().is_err());
        let long = ContactFields {
            name: "x".repeat(MAX_NAME + 1),
            emails: vec!["a@b.example".into()],
            ..ContactFields::default()
        };
        assert!(long.checked().is_err());
    }

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(like_escaped("a%b_c\\"), "a\\%b\\_c\\\\");
    }
}
