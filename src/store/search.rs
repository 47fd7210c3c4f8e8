//! What searching a mailbox reads: one row per message with the header fields parsed at
//! delivery, text matches through the FTS5 index, and raw header blocks for searches on an
//! arbitrary header field. Nothing here parses a message.
//!
//! Text search (IMAP BODY and TEXT) is substring search (RFC 3501/9051 §6.4.4), answered with
//! the trigram index of migration 0007: the rows holding every trigram (3 characters) of the
//! needle are the candidates, and each candidate's stored text is checked for the needle as a
//! case-insensitive substring, so the answer is exact. The index keeps no positions
//! (`detail=none`): a trigram query cannot be a phrase or name a column, hence the check, which
//! costs little as the candidates are few (a needle's trigrams together are rare where the
//! needle is absent). Without positions the index is smaller than the word index it replaced:
//! per 4 KB message of the bench corpus 4.6 KB instead of 5.2 KB, of varied text 8.2 KB
//! instead of 10.7 KB, the stored text included (`index_size` in
//! `tests/it/imap/search_substring.rs`). A needle shorter than 3 characters has no trigram:
//! every text of the mailbox is then read and compared, as a server without an index would;
//! so is a small mailbox on a big server, where the index's candidates from every other
//! account would cost more (`Store::scan_is_cheaper`). The check runs inside SQLite when
//! `instr(lower(text), needle)` gives the same answer (`exact_in_sql`: nearly every ASCII
//! needle), so only the matching UIDs come back; otherwise each candidate's text is read here.
//! The text searched is what was indexed at delivery: every header
//! field (`Name: value`, unfolded, with encoded words also decoded) and the decoded text of
//! the text parts (HTML as text).

use futures::TryStreamExt;

use super::mailboxes::Mailbox;
use super::{Result, Store};

use crate::mime::{Envelope, EnvelopeRef};

/// One message as search sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchRow {
    pub uid: u32,
    pub modseq: u64,
    pub flags: u8,
    pub keywords: String,
    pub internal_date: i64,
    pub size: u64,
    /// The Date: header as unix seconds.
    pub header_date: Option<i64>,
    /// Decoded subject and display forms of the address fields (when asked for).
    pub subject: String,
    pub from: String,
    pub to: String,
    pub cc: String,
    /// Parsed envelope (when asked for: BCC and SORT need its addresses).
    pub envelope: Option<Envelope>,
}

/// A decoded header field a search key looks in (IMAP SUBJECT, FROM, TO, CC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderField {
    Subject,
    From,
    To,
    Cc,
}

impl HeaderField {
    fn column(self) -> &'static str {
        match self {
            HeaderField::Subject => "b.subject",
            HeaderField::From => "b.from_display",
            HeaderField::To => "b.to_display",
            HeaderField::Cc => "b.cc_display",
        }
    }
}

/// A LIKE pattern for "contains `text`" (with `ESCAPE '\'`).
pub(super) fn like_contains(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Which text a text search looks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextField {
    /// The body text only.
    Body,
    /// Every header field and the body text (IMAP TEXT).
    All,
}

type Row = (
    u32,
    i64,
    u8,
    String,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
);

/// A text search reads every text of a mailbox of at most this many messages, rather than
/// ask the index, when the server holds [`SCAN_SHARE`] times as many bodies (see
/// `Store::scan_is_cheaper`).
const SCAN_MAX: i64 = 1000;
const SCAN_SHARE: i64 = 500;

/// The longest needle (in bytes) checked inside SQLite (see `exact_in_sql`): its worst case
/// costs this many byte comparisons per byte of text.
const SQL_NEEDLE_MAX: usize = 64;

/// The most trigrams of one needle looked up: a long needle's trigrams are sampled evenly
/// (the check of each candidate keeps the answer exact), so a long needle costs no more than
/// this many index lookups.
const MAX_TRIGRAMS: usize = 24;

/// An FTS5 query for the rows that hold every trigram of `needle` (in any column, in any
/// order): the candidates for "contains `needle`". `None` for a needle shorter than 3
/// characters. Each trigram is quoted, inner quotes doubled, so nothing in it is read as an
/// FTS5 operator.
pub(super) fn trigram_query(needle: &str) -> Option<String> {
    // The grams of a needle's first 4,096 characters select candidates well enough (each one
    // is then checked against the whole needle), and a needle of megabytes costs no more.
    let chars: Vec<char> = needle.chars().take(4096).collect();
    let mut grams: Vec<String> = Vec::new();
    for window in chars.windows(3) {
        let gram: String = window.iter().collect();
        if !grams.contains(&gram) {
            grams.push(gram);
        }
        // Distinct trigrams are at most a few times MAX_TRIGRAMS before sampling.
        if grams.len() >= 8 * MAX_TRIGRAMS {
            break;
        }
    }
    if grams.is_empty() {
        return None;
    }
    let step = grams.len().div_ceil(MAX_TRIGRAMS);
    Some(
        grams
            .iter()
            .step_by(step)
            .map(|g| format!("\"{}\"", g.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" AND "),
    )
}

/// A (webmail) query's words as an FTS5 query for the rows that may hold them all (the
/// trigrams of the words of 3 or more characters; `None` if there is none) and a LIKE pattern
/// per word (`ESCAPE '\\'`) that a caller checks on each row.
pub(super) fn word_queries(words: &str) -> (Option<String>, Vec<String>) {
    let words: Vec<&str> = words.split_whitespace().take(32).collect();
    let grams: Vec<String> = words.iter().filter_map(|w| trigram_query(w)).collect();
    let fts = (!grams.is_empty()).then(|| grams.join(" AND "));
    (fts, words.into_iter().map(like_contains).collect())
}

/// Whether SQLite can decide "contains `needle_lower`" exactly as [`contains_ci`] does, with
/// `instr(lower(text), needle_lower)`. SQLite's `lower()` folds ASCII letters only, which is
/// the same answer for an ASCII needle except where a text's non-ASCII letter lowercases to
/// ASCII: the Kelvin sign (U+212A) to `k`, and `İ` (U+0130) to `i` followed by a combining dot,
/// which can end a match only at the needle's last character. Those needles, and non-ASCII
/// ones, are checked here, one text at a time.
///
/// SQLite's `instr` compares the needle at every position of the text, so its cost is the
/// text's length times the needle's in the worst case (a text of `aaaa…` and a needle of
/// `aaa…ab`, both the peer's own: a message it stored, a SEARCH literal of megabytes). Needles
/// longer than [`SQL_NEEDLE_MAX`] bytes are therefore checked here, in time linear in the text.
fn exact_in_sql(needle_lower: &str) -> bool {
    !needle_lower.is_empty()
        && needle_lower.len() <= SQL_NEEDLE_MAX
        && needle_lower.is_ascii()
        && !needle_lower.contains('k')
        && !needle_lower.ends_with('i')
}

fn contains_ci(haystack: &str, needle_lower: &str) -> bool {
    if needle_lower.is_empty() {
        return true;
    }
    // `str::contains` searches in time linear in the text (two-way), whatever the needle:
    // comparing the needle at every position would cost their product.
    if haystack.is_ascii() && needle_lower.is_ascii() {
        return haystack.to_ascii_lowercase().contains(needle_lower);
    }
    haystack.to_lowercase().contains(needle_lower)
}

/// Indexes again the bodies stored before migration 0007 (listed in `blob_text_pending`),
/// a batch per transaction, from their raw text. Runs at every open, before the store serves
/// anything (so no search sees a body without its index row, and no body id listed there is
/// reused meanwhile); with nothing left to do it is one lookup in an empty table.
pub(super) async fn reindex_text(writer: &sqlx::SqlitePool) -> Result<()> {
    let mut done = 0usize;
    loop {
        let rows: Vec<(i64, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT p.id, b.data FROM blob_text_pending p LEFT JOIN blobs b ON b.id = p.id
             ORDER BY p.id LIMIT 100",
        )
        .fetch_all(writer)
        .await?;
        let Some(last) = rows.last().map(|(id, _)| *id) else {
            break;
        };
        let count = rows.len();
        // Parsing is CPU work: off the async threads.
        let texts = tokio::task::spawn_blocking(move || {
            rows.into_iter()
                .filter_map(|(id, data)| {
                    let text = crate::mime::analyze(&data?).search;
                    Some((id, text.headers, text.body))
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| super::StoreError::Unavailable(format!("indexing stopped: {e}")))?;
        let mut tx = writer.begin().await?;
        for (id, headers, body) in &texts {
            sqlx::query("INSERT INTO blob_text (rowid, headers, body) VALUES (?, ?, ?)")
                .bind(id)
                .bind(headers)
                .bind(body)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM blob_text_pending WHERE id <= ?")
            .bind(last)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        done += count;
        if done % 10_000 < count {
            tracing::info!("search index: {done} stored messages indexed again");
        }
    }
    if done > 0 {
        tracing::info!("search index: {done} stored messages indexed again, done");
    }
    Ok(())
}

impl Store {
    /// Every message of a mailbox for search, by ascending UID. `headers` loads the subject
    /// and address columns, `envelope` the parsed envelope.
    /// `only`, when given, limits the rows to those UIDs (the candidates a full-text key left).
    /// `containing` may leave out rows whose field cannot contain the text case-insensitively:
    /// it narrows, the caller still decides each row.
    pub async fn search_rows(
        &self,
        mailbox: &Mailbox,
        headers: bool,
        envelope: bool,
        only: Option<&[u32]>,
        containing: &[(HeaderField, String)],
    ) -> Result<Vec<SearchRow>> {
        let mailbox_id = mailbox.id();
        // A long candidate list costs more as SQL than the full scan it would save.
        let only = only.filter(|uids| uids.len() <= 2000);
        let h = |c: &'static str| if headers { c } else { "NULL" };
        // The header columns come from their covering index (migrations/0002_imap.sql),
        // which avoids walking each message body's overflow pages; the envelope needs the row.
        let blobs = if envelope {
            "blobs b"
        } else {
            "blobs b INDEXED BY blobs_search"
        };
        // SQLite's LIKE folds ASCII case only, so it narrows exactly only for an ASCII needle
        // and a field that is all ASCII (character length = byte length); fields with other
        // characters are always kept for the caller's Unicode comparison. Reading 10,000 rows
        // to keep 100 cost more than the comparison (SUBJECT on 10,000 messages: 44 ms).
        let narrowing: Vec<(HeaderField, String)> = containing
            .iter()
            .filter(|(_, text)| text.is_ascii() && !text.is_empty() && text.len() <= 1000)
            .map(|(field, text)| (*field, like_contains(text)))
            .collect();
        let narrow: String = narrowing
            .iter()
            .map(|(field, _)| {
                let c = field.column();
                format!(" AND ({c} LIKE ? ESCAPE '\\' OR length({c}) <> length(CAST({c} AS BLOB)))")
            })
            .collect();
        let sql = format!(
            "SELECT m.uid, m.modseq, m.flags, m.keywords, m.internal_date, m.size, b.header_date,
                    {}, {}, {}, {}, {}
             FROM messages m JOIN {blobs} ON b.id = m.blob_id
             WHERE m.mailbox_id = ? {} {narrow} ORDER BY m.uid",
            h("b.subject"),
            h("b.from_display"),
            h("b.to_display"),
            h("b.cc_display"),
            if envelope { "b.envelope" } else { "NULL" },
            match only {
                // Placeholders only: the UIDs are bound below.
                Some([]) => "AND 0".to_string(),
                Some(uids) => format!("AND m.uid IN ({})", vec!["?"; uids.len()].join(", ")),
                None => String::new(),
            },
        );
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(mailbox_id);
        for uid in only.unwrap_or_default() {
            query = query.bind(*uid);
        }
        for (_, pattern) in &narrowing {
            query = query.bind(pattern.as_str());
        }
        let rows: Vec<Row> = query.fetch_all(&self.reader).await?;
        Ok(rows
            .into_iter()
            .map(|r| SearchRow {
                uid: r.0,
                modseq: r.1 as u64,
                flags: r.2,
                keywords: r.3,
                internal_date: r.4,
                size: r.5.max(0) as u64,
                header_date: r.6,
                subject: r.7.unwrap_or_default(),
                from: r.8.unwrap_or_default(),
                to: r.9.unwrap_or_default(),
                cc: r.10.unwrap_or_default(),
                envelope: r
                    .11
                    .as_deref()
                    .and_then(EnvelopeRef::parse)
                    .map(|e| e.to_envelope()),
            })
            .collect())
    }

    /// UIDs (ascending) of the messages whose indexed text contains `needle` (see the module
    /// documentation for what that means exactly).
    pub async fn search_text_substring(
        &self,
        mailbox: &Mailbox,
        field: TextField,
        needle: &str,
    ) -> Result<Vec<u32>> {
        let mailbox_id = mailbox.id();
        let lower = needle.to_lowercase();
        let columns: &[&str] = match field {
            TextField::Body => &["x.body"],
            TextField::All => &["x.headers", "x.body"],
        };
        // The candidates: the mailbox's messages whose text holds every trigram of the needle
        // (CROSS JOIN keeps the index lookup as the outer loop: the few candidates are found
        // first, then matched to this mailbox's messages, not the other way round, which runs
        // the MATCH once per message; INDEXED BY: without it SQLite reaches the messages
        // through (mailbox_id, modseq) and scans the whole mailbox per candidate, 200 ms
        // instead of 1 ms on 10,000 messages; the index holds the mailbox and UID, so a
        // candidate of another mailbox costs one probe of it, migration 0024). A needle too
        // short for the index has every message of the mailbox as a candidate. Each
        // candidate's text is read (as `x`) only after its mailbox is known: a check written
        // on `t` would run on every candidate of the server.
        let mut trigrams = trigram_query(needle);
        if trigrams.is_some() && self.scan_is_cheaper(mailbox_id).await? {
            trigrams = None;
        }
        let candidates = if trigrams.is_some() {
            "SELECT m.uid AS uid, m.blob_id AS blob
             FROM blob_text t CROSS JOIN messages m INDEXED BY messages_blob ON m.blob_id = t.rowid
             WHERE t.blob_text MATCH ? AND m.mailbox_id = ?"
        } else {
            "SELECT uid, blob_id AS blob FROM messages WHERE mailbox_id = ?"
        };
        let from = format!("({candidates}) c CROSS JOIN blob_text x ON x.rowid = c.blob");
        if exact_in_sql(&lower) {
            // The check runs in SQLite and only the UIDs come back, packed in one row: a
            // candidate's text never crosses to this thread (100,000 messages, 1,000 hits:
            // 4 MB of text and 1,000 rows handed over one thread switch at a time, before).
            let check = columns
                .iter()
                .map(|c| format!("instr(lower({c}), ?) > 0"))
                .collect::<Vec<_>>()
                .join(" OR ");
            let sql =
                format!("SELECT group_concat(c.uid ORDER BY c.uid) FROM {from} WHERE {check}");
            let mut q = sqlx::query_scalar::<_, Option<String>>(sqlx::AssertSqlSafe(sql));
            if let Some(trigrams) = trigrams {
                q = q.bind(trigrams);
            }
            q = q.bind(mailbox_id);
            for _ in columns {
                q = q.bind(lower.as_str());
            }
            let packed = q.fetch_one(&self.reader).await?.unwrap_or_default();
            return packed
                .split(',')
                .filter(|u| !u.is_empty())
                .map(|u| {
                    u.parse()
                        .map_err(|_| super::StoreError::Corrupt(format!("a UID {u:?}")))
                })
                .collect();
        }
        let headers = match field {
            TextField::Body => "''",
            TextField::All => "x.headers",
        };
        let sql = format!("SELECT c.uid, {headers}, x.body FROM {from} ORDER BY c.uid");
        let mut q = sqlx::query_as::<_, (u32, String, String)>(sqlx::AssertSqlSafe(sql));
        if let Some(trigrams) = trigrams {
            q = q.bind(trigrams);
        }
        // One row in memory at a time: a text may be up to 1 MiB.
        let mut rows = q.bind(mailbox_id).fetch(&self.reader);
        let mut uids = Vec::new();
        while let Some((uid, headers, body)) = rows.try_next().await? {
            if contains_ci(&headers, &lower) || contains_ci(&body, &lower) {
                uids.push(uid);
            }
        }
        Ok(uids)
    }

    /// Whether reading each text of a small mailbox costs less than the index would. The
    /// index's cost follows the server: a needle's candidates in every account are each
    /// probed (about 1.3 µs), while reading and checking a 4 KB text costs about 8 µs. On a
    /// 310,000-message server, 3,100 candidates of a 1%-word took 4-6 ms through the index for
    /// a 100-message mailbox, and 1 ms read in full. A mailbox of at most [`SCAN_MAX`]
    /// messages holding at most 1/[`SCAN_SHARE`] of the server's bodies is read in full.
    async fn scan_is_cheaper(&self, mailbox_id: i64) -> Result<bool> {
        let (messages, bodies): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM (SELECT 1 FROM messages WHERE mailbox_id = ? LIMIT ?)),
                    (SELECT coalesce(max(id), 0) FROM blobs)",
        )
        .bind(mailbox_id)
        .bind(SCAN_MAX + 1)
        .fetch_one(&self.reader)
        .await?;
        Ok(messages <= SCAN_MAX && messages * SCAN_SHARE <= bodies)
    }

    /// The raw header block (up to the blank line, at most 64 KiB) of every message of a
    /// mailbox, by ascending UID: for searches on a header field that is not kept in a column.
    pub async fn raw_headers(&self, mailbox: &Mailbox) -> Result<Vec<(u32, Vec<u8>)>> {
        let mailbox_id = mailbox.id();
        Ok(sqlx::query_as(
            "SELECT m.uid, CASE WHEN instr(b.data, X'0D0A0D0A') > 0
                                THEN substr(b.data, 1, min(instr(b.data, X'0D0A0D0A') + 1, 65536))
                                ELSE substr(b.data, 1, 65536) END
             FROM messages m JOIN blobs b ON b.id = m.blob_id
             WHERE m.mailbox_id = ? ORDER BY m.uid",
        )
        .bind(mailbox_id)
        .fetch_all(&self.reader)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::{contains_ci, exact_in_sql, trigram_query, word_queries};
    use sqlx::Connection;

    #[test]
    fn needles() {
        assert_eq!(trigram_query("ab"), None);
        assert_eq!(
            trigram_query("a\"bcb\"b").unwrap(),
            "\"a\"\"b\" AND \"\"\"bc\" AND \"bcb\" AND \"cb\"\"\" AND \"b\"\"b\""
        );
        assert_eq!(trigram_query("aaaaaa").unwrap(), "\"aaa\"");
        let long = "abcdefghijklmnopqrstuvwxyz".repeat(10);
        assert!(trigram_query(&long).unwrap().matches(" AND ").count() < super::MAX_TRIGRAMS);
        assert_eq!(
            word_queries("hello x"),
            (
                Some("\"hel\" AND \"ell\" AND \"llo\"".to_string()),
                vec!["%hello%".to_string(), "%x%".to_string()]
            )
        );
        assert!(contains_ci("Hello World", "o w"));
        assert!(contains_ci("Grüße aus KÖLN", "köln"));
        assert!(!contains_ci("abc", "abd"));
    }

    /// Where `exact_in_sql` says SQLite decides, SQLite's `instr(lower(text), needle)` gives
    /// [`contains_ci`]'s answer, on texts whose letters lowercase in every awkward way.
    #[tokio::test]
    async fn sql_check_agrees_with_contains_ci() {
        let mut db = sqlx::SqliteConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        let texts = [
            "Zanzibar",
            "a trip to ZANZIBAR",
            "zanz\u{130}bar",
            "ZANZ\u{130}",
            "\u{212A}ing \u{212A}ONG",
            "King Kong",
            "Grüße aus KÖLN",
            "STRASSE straße",
            "\u{FB01}le file",
            "ΣΊΣΥΦΟΣ sisyphos",
            "",
        ];
        let needles = [
            "zanzibar",
            "zanz",
            "zanzi",
            "anzi",
            "bar",
            "king",
            "ing",
            "ong",
            "ko",
            "k",
            "i",
            "file",
            "le",
            "sse",
            "aus k",
            "x",
            "köln",
            "straße",
            "σίσυφος",
        ];
        let mut decided = 0;
        for needle in needles {
            let lower = needle.to_lowercase();
            if !exact_in_sql(&lower) {
                continue;
            }
            for text in texts {
                let sql: bool = sqlx::query_scalar("SELECT instr(lower(?), ?) > 0")
                    .bind(text)
                    .bind(lower.as_str())
                    .fetch_one(&mut db)
                    .await
                    .unwrap();
                assert_eq!(sql, contains_ci(text, &lower), "{needle:?} in {text:?}");
                decided += 1;
            }
        }
        assert!(decided > 50, "{decided}");
        assert!(!exact_in_sql("king") && !exact_in_sql("zanzi") && !exact_in_sql("köln"));
        // A long needle is checked here, in linear time, and still found.
        let long = format!("{}b", "a".repeat(super::SQL_NEEDLE_MAX));
        assert!(!exact_in_sql(&long) && exact_in_sql(&long[1..]));
        let text = format!("{}{}", "A".repeat(10_000), long.to_uppercase());
        assert!(contains_ci(&text, &long));
        assert!(!contains_ci(&"a".repeat(10_000), &long));
    }

    /// A small mailbox on a server of many bodies is read in full rather than searched through
    /// the index (`scan_is_cheaper`), and finds what the index finds: its own messages only,
    /// every field for TEXT, exact and checked needles alike.
    #[tokio::test]
    async fn a_small_mailbox_on_a_big_server_is_read_in_full() {
        use crate::store::testing::{deliver_to_inbox, store_with_accounts};
        use crate::store::{Delivery, Target, TextField};
        let (_dir, store, accounts) =
            store_with_accounts(&["small@example.org", "big@example.org"]).await;
        let message = |i: usize, subject: &str| {
            format!("Subject: {subject} {i}\r\n\r\nNumber {i} of a zanzibar trip, King size.\r\n")
        };
        let big: Vec<String> = (0..1000).map(|i| message(i, "big")).collect();
        let deliveries: Vec<(Delivery, Vec<Target>)> = big
            .iter()
            .map(|raw| {
                let delivery = Delivery {
                    raw: raw.as_bytes(),
                    internal_date: None,
                };
                (delivery, vec![Target::inbox(accounts[1])])
            })
            .collect();
        store.deliver_all(&deliveries).await.unwrap();
        let small = [
            message(1, "Ordinary"),
            "Subject: Zanzibar\r\n\r\nnothing\r\n".into(),
        ];
        for raw in &small {
            deliver_to_inbox(&store, accounts[0], raw.as_bytes()).await;
        }
        let inbox = store.mailbox(accounts[0], "INBOX").await.unwrap().unwrap();
        assert!(store.scan_is_cheaper(inbox.id()).await.unwrap());
        let big_inbox = store.mailbox(accounts[1], "INBOX").await.unwrap().unwrap();
        assert!(!store.scan_is_cheaper(big_inbox.id()).await.unwrap());
        for (field, needle, want) in [
            (TextField::Body, "ZANZIBAR", vec![1]),
            (TextField::All, "zanzibar", vec![1, 2]),
            (TextField::Body, "king", vec![1]),
            (TextField::Body, "ki", vec![1]),
            (TextField::All, "ordinary 1", vec![1]),
            (TextField::Body, "big", vec![]),
        ] {
            let found = store
                .search_text_substring(&inbox, field, needle)
                .await
                .unwrap();
            assert_eq!(found, want, "{field:?} {needle:?}");
        }
        let found = store
            .search_text_substring(&big_inbox, TextField::Body, "number 99 ")
            .await
            .unwrap();
        assert_eq!(found, vec![100], "through the index");
    }
}
