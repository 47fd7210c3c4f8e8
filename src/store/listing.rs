//! Message lists for the webmail: one page of a mailbox, newest first, and searches over one
//! mailbox or all of an account's, with what was parsed at delivery (subject, sender, snippet,
//! attachment mark), so a list never opens a message body.

use sqlx::{QueryBuilder, Sqlite};

use super::mailboxes::Mailbox;
use super::messages::push_word_checks;
use super::search::word_queries;
use super::{Flags, Result, Store};

/// One line of a message list.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ListEntry {
    pub mailbox_id: i64,
    pub uid: u32,
    #[sqlx(try_from = "u8")]
    pub flags: Flags,
    pub internal_date: i64,
    pub size: i64,
    pub subject: String,
    pub from_display: String,
    pub to_display: String,
    pub snippet: String,
    pub has_attachment: bool,
    pub header_date: Option<i64>,
    pub message_id: Option<String>,
}

impl From<u8> for Flags {
    fn from(bits: u8) -> Flags {
        Flags::from_bits(bits)
    }
}

const ENTRY_COLUMNS: &str = "m.mailbox_id, m.uid, m.flags, m.internal_date, m.size, b.subject,
    b.from_display, b.to_display, b.snippet, b.has_attachment, b.header_date, b.message_id";

/// What to look for; empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailQuery {
    /// Words in the subject, addresses or text (full-text index).
    pub words: String,
    pub from: String,
    pub to: String,
    pub subject: String,
    /// Unix seconds, inclusive.
    pub since: Option<i64>,
    /// Unix seconds, exclusive.
    pub before: Option<i64>,
    pub has_attachment: bool,
}

impl MailQuery {
    pub fn is_empty(&self) -> bool {
        *self == MailQuery::default()
    }
}

impl Store {
    /// Messages `offset..offset+limit` of a mailbox, newest (highest UID) first.
    pub async fn message_list(
        &self,
        mailbox: &Mailbox,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<ListEntry>> {
        let mailbox_id = mailbox.id();
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM messages m JOIN blobs b ON b.id = m.blob_id
             WHERE m.mailbox_id = ? ORDER BY m.uid DESC LIMIT ? OFFSET ?"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(mailbox_id)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.reader)
            .await?)
    }

    /// One message of a mailbox, by UID.
    pub async fn list_entry(&self, mailbox: &Mailbox, uid: u32) -> Result<Option<ListEntry>> {
        let mailbox_id = mailbox.id();
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM messages m JOIN blobs b ON b.id = m.blob_id
             WHERE m.mailbox_id = ? AND m.uid = ?"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(mailbox_id)
            .bind(uid)
            .fetch_optional(&self.reader)
            .await?)
    }

    /// The messages of `account_id` (in `mailbox`, or in all its mailboxes) matching
    /// `query`, newest first, at most `limit`.
    pub async fn search_mail(
        &self,
        account_id: i64,
        mailbox: Option<&Mailbox>,
        query: &MailQuery,
        limit: u32,
    ) -> Result<Vec<ListEntry>> {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
            "SELECT {ENTRY_COLUMNS} FROM messages m JOIN blobs b ON b.id = m.blob_id
             JOIN mailboxes x ON x.id = m.mailbox_id WHERE x.account_id = "
        ));
        q.push_bind(account_id);
        if let Some(id) = mailbox.map(Mailbox::id) {
            q.push(" AND m.mailbox_id = ").push_bind(id);
        }
        let (fts, checks) = word_queries(&query.words);
        if let Some(fts) = fts {
            q.push(" AND m.blob_id IN (SELECT rowid FROM blob_text WHERE blob_text MATCH ")
                .push_bind(fts)
                .push(")");
        }
        if !checks.is_empty() {
            q.push(" AND EXISTS (SELECT 1 FROM blob_text t WHERE t.rowid = m.blob_id");
            push_word_checks(&mut q, "t", &checks);
            q.push(")");
        }
        for (column, text) in [
            ("b.from_display", &query.from),
            ("b.to_display || ' ' || b.cc_display", &query.to),
            ("b.subject", &query.subject),
        ] {
            if !text.trim().is_empty() {
                // `column` is one of the literals above.
                q.push(format!(" AND {column} LIKE "))
                    .push_bind(super::search::like_contains(text.trim()))
                    .push(" ESCAPE '\\'");
            }
        }
        if let Some(t) = query.since {
            q.push(" AND m.internal_date >= ").push_bind(t);
        }
        if let Some(t) = query.before {
            q.push(" AND m.internal_date < ").push_bind(t);
        }
        if query.has_attachment {
            q.push(" AND b.has_attachment != 0");
        }
        q.push(" ORDER BY m.internal_date DESC, m.id DESC LIMIT ")
            .push_bind(limit);
        Ok(q.build_query_as().fetch_all(&self.reader).await?)
    }
}
