//! `import` and `export`: mbox files and Maildir trees made here, imported with their folders,
//! flags and dates; a second run adds nothing; an export imported into another account gives
//! the same messages. And the commands themselves.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use mailroom::mailbox_files::{self, ImportSummary};
use mailroom::store::{Flags, Store};

use crate::harness::{account, store};

/// Thu Nov 26 10:00:00 2026 UTC.
const T0: i64 = 1795687200;

const MBOX: &str = "From alice@example.net Thu Nov 26 10:00:00 2026\n\
Message-ID: <one@example.net>\nSubject: one\n\nHello\n>From the start\n>>From twice\n\n\
From bob@example.net Thu Nov 26 11:00:00 2026\n\
Message-ID: <two@example.net>\nSubject: two\nStatus: RO\nX-Status: AF\n\nSeen and answered.\n\n\
From - Thu Nov 26 12:00:00 2026\n\
Subject: no id\n\nA message without a Message-ID.\n\n";

async fn run_import(store: &Store, address: &str, path: &Path) -> ImportSummary {
    let mut calls = 0u64;
    let summary = mailbox_files::import(store, address, path, None, &mut |_| calls += 1)
        .await
        .unwrap();
    assert_eq!(
        calls,
        summary.imported + summary.skipped,
        "progress per message"
    );
    summary
}

/// (raw, flags, internal date) of every message in a mailbox, by UID.
async fn contents(store: &Store, account_id: i64, mailbox: &str) -> Vec<(String, Flags, i64)> {
    let mailbox = store
        .mailbox(account_id, mailbox)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no mailbox {mailbox}"));
    let mut out = Vec::new();
    for m in store.messages(&mailbox).await.unwrap() {
        let raw = String::from_utf8(store.message_body(&mailbox, m.uid).await.unwrap()).unwrap();
        out.push((raw, m.flags, m.internal_date));
    }
    out
}

fn write_maildir_message(dir: &Path, name: &str, body: &str, mtime: i64) {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(UNIX_EPOCH + Duration::from_secs(mtime as u64))
        .unwrap();
}

fn maildir_tree(root: &Path) {
    for d in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    // The mtime is the internal date, not the time in the name (the file was appended later).
    write_maildir_message(
        &root.join("cur"),
        "1700000000.M1P1.host:2,S",
        "Message-ID: <m1@example.net>\nSubject: read\n\nbody 1\n",
        T0 + 1,
    );
    write_maildir_message(
        &root.join("new"),
        "1700000001.M2P1.host",
        "Message-ID: <m2@example.net>\nSubject: new\n\nbody 2\n",
        T0 + 2,
    );
    write_maildir_message(
        &root.join("tmp"),
        "1700000002.M3P1.host",
        "Subject: half-delivered\n\n",
        T0 + 3,
    );
    write_maildir_message(
        &root.join(".Work.2026/cur"),
        "1700000003.M4P1.host,S=60:2,FRS",
        "Message-ID: <m4@example.net>\r\nSubject: work\r\n\r\nbody 4\r\n",
        T0 + 4,
    );
    write_maildir_message(
        &root.join("Lists/rust/cur"),
        "1700000004.M5P1.host:2,DT",
        "Message-ID: <m5@example.net>\nSubject: draft\n\nbody 5\n",
        T0 + 5,
    );
}

#[tokio::test]
async fn mbox_and_maildir_imports_are_idempotent_and_round_trip() {
    let (store, dir) = store().await;
    let alice = account(&store, "alice@example.org", 0).await;
    let bob = account(&store, "bob@example.org", 0).await;

    let mbox = dir.path().join("old.mbox");
    std::fs::write(&mbox, MBOX).unwrap();
    let first = run_import(&store, "alice@example.org", &mbox).await;
    assert_eq!((first.imported, first.skipped), (3, 0), "{first:?}");
    let inbox = contents(&store, alice.id, "INBOX").await;
    assert_eq!(inbox.len(), 3);
    assert_eq!(
        inbox[0].0,
        "Message-ID: <one@example.net>\r\nSubject: one\r\n\r\nHello\r\nFrom the start\r\n\
         >From twice\r\n"
    );
    assert_eq!((inbox[0].1, inbox[0].2), (Flags::default(), T0));
    assert!(!inbox[1].0.contains("Status"), "{}", inbox[1].0);
    assert_eq!(
        inbox[1].1,
        Flags::SEEN.union(Flags::ANSWERED).union(Flags::FLAGGED)
    );
    assert_eq!(inbox[1].2, T0 + 3600);
    assert_eq!(inbox[2].2, T0 + 7200);

    let maildir = dir.path().join("Maildir");
    maildir_tree(&maildir);
    let second = run_import(&store, "alice@example.org", &maildir).await;
    assert_eq!((second.imported, second.skipped), (4, 0), "{second:?}");
    assert_eq!(second.created, ["Work", "Work/2026", "Lists", "Lists/rust"]);
    // The folders it made are subscribed, as a client copying them in would leave them.
    let subscribed = store.subscriptions(alice.id).await.unwrap();
    for name in ["Work", "Work/2026", "Lists", "Lists/rust"] {
        assert!(
            subscribed.iter().any(|s| s == name),
            "{name}: {subscribed:?}"
        );
    }
    let inbox = contents(&store, alice.id, "INBOX").await;
    assert_eq!(inbox.len(), 5, "tmp/ is not imported");
    assert_eq!(
        (inbox[3].0.as_str(), inbox[3].1, inbox[3].2),
        (
            "Message-ID: <m1@example.net>\r\nSubject: read\r\n\r\nbody 1\r\n",
            Flags::SEEN,
            T0 + 1
        )
    );
    assert_eq!((inbox[4].1, inbox[4].2), (Flags::default(), T0 + 2));
    let work = contents(&store, alice.id, "Work/2026").await;
    assert_eq!(work.len(), 1);
    assert_eq!(
        work[0].1,
        Flags::FLAGGED.union(Flags::ANSWERED).union(Flags::SEEN)
    );
    assert!(contents(&store, alice.id, "Work").await.is_empty());
    let lists = contents(&store, alice.id, "Lists/rust").await;
    assert_eq!(
        (lists[0].1, lists[0].2),
        (Flags::DRAFT.union(Flags::DELETED), T0 + 5)
    );

    // Again: everything is already there, nothing is added.
    let again = run_import(&store, "alice@example.org", &mbox).await;
    assert_eq!((again.imported, again.skipped), (0, 3), "{again:?}");
    let again = run_import(&store, "alice@example.org", &maildir).await;
    assert_eq!((again.imported, again.skipped), (0, 4), "{again:?}");
    assert!(again.created.is_empty());
    assert_eq!(contents(&store, alice.id, "INBOX").await.len(), 5);
    // A new file in the tree is the only thing a later run adds.
    write_maildir_message(
        &maildir.join("new"),
        "1700000009.M9P1.host",
        "Message-ID: <m9@example.net>\n\nlate\n",
        T0 + 9,
    );
    let later = run_import(&store, "alice@example.org", &maildir).await;
    assert_eq!((later.imported, later.skipped), (1, 4), "{later:?}");

    // Export, then import the export into another account: the same messages everywhere.
    let out = dir.path().join("export");
    let exported = mailbox_files::export(&store, "alice@example.org", &out)
        .await
        .unwrap();
    assert_eq!(exported.messages, 8);
    assert!(out.join("INBOX.mbox").is_file());
    assert!(out.join("Work/2026.mbox").is_file());
    assert!(
        mailbox_files::export(&store, "alice@example.org", &out)
            .await
            .is_err(),
        "an export never overwrites"
    );
    let copied = run_import(&store, "bob@example.org", &out).await;
    assert_eq!((copied.imported, copied.skipped), (8, 0), "{copied:?}");
    let names = |list: Vec<mailroom::store::Mailbox>| -> Vec<String> {
        list.into_iter().map(|m| m.name).collect()
    };
    let alice_boxes = names(store.mailboxes(alice.id).await.unwrap());
    assert_eq!(alice_boxes, names(store.mailboxes(bob.id).await.unwrap()));
    for name in &alice_boxes {
        assert_eq!(
            contents(&store, alice.id, name).await,
            contents(&store, bob.id, name).await,
            "{name}"
        );
    }
    let again = run_import(&store, "bob@example.org", &out).await;
    assert_eq!((again.imported, again.skipped), (0, 8));
}

#[tokio::test]
async fn imports_stop_cleanly() {
    let (store, dir) = store().await;
    account(&store, "carol@example.org", 200).await;
    let not_mbox = dir.path().join("notes.txt");
    std::fs::write(&not_mbox, "Subject: hi\n\nnot an mbox\n").unwrap();
    let err = mailbox_files::import(&store, "carol@example.org", &not_mbox, None, &mut |_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not an mbox file"), "{err}");
    let err = mailbox_files::import(&store, "nobody@example.org", &not_mbox, None, &mut |_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(
        mailbox_files::import(&store, "carol@example.org", &empty, None, &mut |_| {})
            .await
            .is_err()
    );

    // The quota of 200 bytes holds the first message only: the import says how far it got.
    let mbox = dir.path().join("big.mbox");
    let body = "x".repeat(120);
    std::fs::write(
        &mbox,
        format!(
            "From a Thu Nov 26 10:00:00 2026\nSubject: 1\n\n{body}\n\n\
             From a Thu Nov 26 10:00:01 2026\nSubject: 2\n\n{body}\n"
        ),
    )
    .unwrap();
    let err = mailbox_files::import(&store, "carol@example.org", &mbox, None, &mut |_| {})
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("after 1 messages") && err.to_string().contains("full"),
        "{err}"
    );
}

#[test]
fn the_commands() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mailroom.toml");
    std::fs::write(
        &config,
        format!(
            "hostname = \"mail.example.org\"\ndomain = \"example.org\"\ndata_dir = \"{}\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_mailroom"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    // Only `serve` and `init` create a database; the admin commands refuse to.
    assert_eq!(run(&["domain", "add", "example.org"]).0, Some(1));
    let db = dir.path().join("data/mailroom.db");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        mailroom::store::Store::open(&db)
            .await
            .unwrap()
            .close()
            .await;
    });
    assert_eq!(run(&["domain", "add", "example.org"]).0, Some(0));
    assert_eq!(run(&["user", "add", "dave@example.org"]).0, Some(0));
    let mbox = dir.path().join("old.mbox");
    std::fs::write(&mbox, MBOX).unwrap();
    let mbox = mbox.to_str().unwrap();

    let (code, out, err) = run(&["import", "dave@example.org", mbox, "--mailbox", "Old"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("imported 3 messages") && out.contains("0 were already there"),
        "{out}"
    );
    assert!(out.contains("created mailboxes: Old"), "{out}");
    assert!(
        !out.contains('\r'),
        "no progress line when stdout is not a terminal"
    );
    let (code, out, _) = run(&["import", "dave@example.org", mbox, "--mailbox", "Old"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("imported 0 messages") && out.contains("3 were already there"));

    let export = dir.path().join("export");
    let (code, out, err) = run(&["export", "dave@example.org", export.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("exported 3 messages"), "{out}");
    let old = std::fs::read_to_string(export.join("Old.mbox")).unwrap();
    assert!(old.contains("\n>From the start\n>>From twice\n"), "{old}");
    assert!(old.contains("Status: RO\nX-Status: AF\n"), "{old}");

    let (code, _, err) = run(&["import", "nobody@example.org", mbox]);
    assert_eq!(code, Some(1));
    assert!(
        err.lines()
            .any(|l| l.starts_with("error: ") && l.contains("not found")),
        "{err}"
    );
}
