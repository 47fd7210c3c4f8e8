//! SEARCH's string keys are substring searches (RFC 3501/9051 §6.4.4): BODY and TEXT find a
//! needle anywhere, also inside a word, whatever its case; TEXT looks in every header field
//! (names and values, `X-Anything:` too) and the body; needles shorter than the index's
//! trigrams, needles with FTS5 syntax in them and non-ASCII needles are answered the same way.
//! SUBJECT, FROM, TO, CC, BCC and HEADER are substring searches too.

use super::{deliver, logged_in, server};

const ONE: &[u8] = b"From: Sender Person <sender@example.com>\r\nTo: alice@localhost\r\n\
Cc: Carol <carol@example.net>\r\nBcc: hidden@example.org\r\nSubject: Hello there\r\n\
X-Anything: Frobnicated-Value\r\nMessage-ID: <unique-id-77@example.com>\r\n\
Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n\r\n\
qwerty asdfghjkl zxcv\r\nshe said \"hi\" twice\r\n";

const TWO: &[u8] = "From: other@example.org\r\nTo: alice@localhost\r\n\
Subject: =?utf-8?q?Caf=C3=A9_cr=C3=A8me?=\r\nX-Folded: first part\r\n continued here\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nGrüße aus KÖLN, 50% off_sale\r\n"
    .as_bytes();

const THREE: &[u8] = b"From: third@example.org\r\nTo: alice@localhost\r\nSubject: plain\r\n\
Content-Type: text/html\r\n\r\n<p>An <b>HTML</b> paragraph with Mixed CaSe</p>\r\n";

#[tokio::test]
async fn body_and_text_match_substrings_in_every_field() {
    let (t, alice) = server().await;
    for raw in [ONE, TWO, THREE] {
        deliver(&t.running.store, &alice, raw).await;
    }
    let mut c = logged_in(&t).await;
    c.ok("SELECT INBOX").await;
    for (query, expect) in [
        // Inside a word, any case (the example).
        ("BODY sdfghjk", "* SEARCH 1"),
        ("BODY SDFGHJK", "* SEARCH 1"),
        ("TEXT dfgh", "* SEARCH 1"),
        ("BODY \"ghjkl zx\"", "* SEARCH 1"),
        ("BODY \"ixed cAs\"", "* SEARCH 3"),
        // TEXT covers every header field, names included, and the body; BODY only the body.
        ("TEXT bnicated-val", "* SEARCH 1"),
        ("TEXT x-anything", "* SEARCH 1"),
        ("BODY frobnicated", "* SEARCH"),
        ("TEXT nique-id-7", "* SEARCH 1"),
        ("TEXT \"part continued\"", "* SEARCH 2"),
        ("TEXT \"x-folded: first\"", "* SEARCH 2"),
        ("TEXT hidden@exa", "* SEARCH 1"),
        ("TEXT \"25 nov 2026\"", "* SEARCH 1"),
        ("TEXT \"arol <carol@\"", "* SEARCH 1"),
        // Encoded words are found decoded, and as written.
        ("TEXT {8+}\r\nfé crè", "* SEARCH 2"),
        ("TEXT \"utf-8?q?caf\"", "* SEARCH 2"),
        ("BODY {8+}\r\nfé crè", "* SEARCH"),
        // Non-ASCII, case folded.
        ("CHARSET UTF-8 BODY {5+}\r\nköln", "* SEARCH 2"),
        ("CHARSET UTF-8 TEXT {7+}\r\nGRÜSSE", "* SEARCH"),
        ("CHARSET UTF-8 TEXT {7+}\r\nGRÜßE", "* SEARCH 2"),
        // FTS5 syntax and LIKE wildcards are plain characters.
        ("BODY \"\\\"hi\\\"\"", "* SEARCH 1"),
        ("BODY \"50% off_\"", "* SEARCH 2"),
        ("BODY \"0%_o\"", "* SEARCH"),
        ("BODY \"hi OR zz\"", "* SEARCH"),
        ("BODY \"sdf*\"", "* SEARCH"),
        ("TEXT \"NEAR(a b)\"", "* SEARCH"),
        // Shorter than a trigram: still substrings, case-insensitive.
        ("BODY tW", "* SEARCH 1"),
        ("TEXT ll", "* SEARCH 1"),
        ("BODY ll", "* SEARCH"),
        ("CHARSET UTF-8 BODY {2+}\r\nÖ", "* SEARCH 2"),
        ("BODY \"%\"", "* SEARCH 2"),
        ("BODY z", "* SEARCH 1"),
        ("BODY \"\"", "* SEARCH 1 2 3"),
        // Combined with other keys and each other.
        ("BODY sdfghjk TEXT xcv", "* SEARCH 1"),
        ("OR BODY sdfghjk BODY aragra", "* SEARCH 1 3"),
        ("NOT TEXT nnicat", "* SEARCH 1 2 3"),
        ("NOT BODY ll", "* SEARCH 1 2 3"),
        ("UID 2:* TEXT html", "* SEARCH 3"),
    ] {
        assert_eq!(c.ok(&format!("SEARCH {query}")).await, [expect], "{query}");
    }
    assert_eq!(c.ok("UID SEARCH BODY sdfghjk").await, ["* SEARCH 1"]);
}

#[tokio::test]
async fn header_keys_match_substrings_case_insensitively() {
    let (t, alice) = server().await;
    for raw in [ONE, TWO, THREE] {
        deliver(&t.running.store, &alice, raw).await;
    }
    let mut c = logged_in(&t).await;
    c.ok("SELECT INBOX").await;
    for (query, expect) in [
        ("SUBJECT ELLO", "* SEARCH 1"),
        ("SUBJECT \"o th\"", "* SEARCH 1"),
        ("CHARSET UTF-8 SUBJECT {6+}\r\nFÉ CR", "* SEARCH 2"),
        ("FROM \"NDER PER\"", "* SEARCH 1"),
        ("FROM \"xample.or\"", "* SEARCH 2 3"),
        ("TO LICE@LOCAL", "* SEARCH 1 2 3"),
        ("CC AROL@EXAMPLE.N", "* SEARCH 1"),
        ("BCC IDDEN@", "* SEARCH 1"),
        ("HEADER X-ANYTHING NICATED-v", "* SEARCH 1"),
        ("HEADER x-folded \"PART CONT\"", "* SEARCH 2"),
        ("HEADER Message-ID nique-ID", "* SEARCH 1"),
        ("HEADER X-Anything \"\"", "* SEARCH 1"),
        ("HEADER X-Missing \"\"", "* SEARCH"),
    ] {
        assert_eq!(c.ok(&format!("SEARCH {query}")).await, [expect], "{query}");
    }
}

#[path = "../../../bench/common/corpus.rs"]
mod corpus;

/// The full-text index's size per message, before (the word index of migration 0001, rebuilt
/// here from the same messages) and after (the trigram index): 1,000 messages of the bench
/// corpus (`bench/compare`'s mailbox) and 1,000 of varied text. Prints the figures; run with
/// `cargo test --release --test it imap::search_substring::index_size -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement, not a check"]
async fn index_size() {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    // Varied text: words drawn from a fixed pseudo-random sequence, as real prose varies more
    // than the bench corpus's repeated lines.
    fn varied(i: usize) -> Vec<u8> {
        let mut seed = i as u64 * 2_654_435_761 + 1;
        let mut body = String::new();
        while body.len() < 4000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let len = 2 + (seed >> 60) as usize;
            let word: String = (0..len)
                .map(|k| (b'a' + ((seed >> (k * 5 % 55)) % 26) as u8) as char)
                .collect();
            body.push_str(&word);
            body.push(if seed.is_multiple_of(11) { '\n' } else { ' ' });
        }
        format!(
            "From: Sender {i} <sender{i}@example.net>\r\nTo: alice@localhost\r\n\
             Subject: varied {i}\r\nMessage-ID: <{i}@varied.example>\r\n\r\n{body}\r\n"
        )
        .into_bytes()
    }
    for (name, make) in [
        (
            "bench corpus",
            (|i| corpus::report(i, "alice@localhost")) as fn(usize) -> Vec<u8>,
        ),
        ("varied text", varied),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("m.db");
        let store = mailroom::store::Store::open(&db).await.unwrap();
        store.add_domain("localhost").await.unwrap();
        let alice = crate::harness::account(&store, "alice@localhost", 0).await;
        for i in 0..1000 {
            deliver(&store, &alice, &make(i)).await;
        }
        store.close().await;
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(SqliteConnectOptions::new().filename(&db))
            .await
            .unwrap();
        sqlx::query(
            "CREATE VIRTUAL TABLE old_text USING fts5(subject, addresses, body,
             tokenize = 'unicode61 remove_diacritics 2')",
        )
        .execute(&pool)
        .await
        .unwrap();
        let bodies: Vec<(i64, Vec<u8>)> = sqlx::query_as("SELECT id, data FROM blobs")
            .fetch_all(&pool)
            .await
            .unwrap();
        for (id, raw) in &bodies {
            let s = mailroom::mime::analyze(raw).search;
            sqlx::query(
                "INSERT INTO old_text (rowid, subject, addresses, body) VALUES (?, ?, ?, ?)",
            )
            .bind(id)
            .bind(s.subject)
            .bind(s.addresses)
            .bind(s.body)
            .execute(&pool)
            .await
            .unwrap();
        }
        sqlx::query("INSERT INTO old_text(old_text) VALUES ('optimize')")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO blob_text(blob_text) VALUES ('optimize')")
            .execute(&pool)
            .await
            .unwrap();
        let n = bodies.len() as i64;
        let mut sizes = Vec::new();
        for table in ["old_text", "blob_text"] {
            // The FTS5 table's shadow tables (_data, _idx, _content, _docsize, _config).
            let bytes: i64 = sqlx::query_scalar(
                "SELECT SUM(pgsize) FROM dbstat WHERE name IN (?1 || '_data', ?1 || '_idx',
                 ?1 || '_content', ?1 || '_docsize', ?1 || '_config')",
            )
            .bind(table)
            .fetch_one(&pool)
            .await
            .unwrap();
            sizes.push(bytes / n);
        }
        let raw: i64 = sqlx::query_scalar("SELECT SUM(size) / COUNT(*) FROM blobs")
            .fetch_one(&pool)
            .await
            .unwrap();
        println!(
            "{name}: {} messages of {raw} bytes; index per message: before (unicode61 word index) \
             {} bytes, after (trigram, detail=none) {} bytes",
            n, sizes[0], sizes[1]
        );
    }
}
