//! SEARCH's date keys at day boundaries (RFC 3501 §6.4.4: SENTxx compare the Date header's
//! date as written, time and zone disregarded; BEFORE/ON/SINCE the internal date's day, which
//! is kept in UTC) and SORT's base subject (RFC 5256 §2.1) and i;ascii-casemap collation.

use super::{Client, deliver, logged_in, server};
use tokio::net::TcpStream;

fn mail(from: &str, subject: &str, date: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: bob@example.org\r\nSubject: {subject}\r\nDate: {date}\r\n\
         Message-ID: <{}@example.net>\r\n\r\nbody\r\n",
        subject.len() + date.len() + from.len()
    )
    .into_bytes()
}

/// APPENDs `raw` to INBOX with this internal date (a LITERAL+ literal).
async fn append(c: &mut Client<TcpStream>, date: &str, raw: &[u8]) {
    let tag = c.next_tag();
    c.send(format!("{tag} APPEND INBOX \"{date}\" {{{}+}}\r\n", raw.len()).as_bytes())
        .await;
    c.send(raw).await;
    c.send(b"\r\n").await;
    let (_, r) = c.until(&tag).await;
    assert!(r.starts_with("TAG OK [APPENDUID "), "{r}");
}

#[tokio::test]
async fn sent_dates_compare_the_date_as_written() {
    let (t, alice) = server().await;
    let store = &t.running.store;
    // 24 Mar 22:30 UTC, written on the 25th (the RFC's own example).
    deliver(
        store,
        &alice,
        &mail("a@x", "one", "Sun, 25 Mar 2007 00:30 +0200"),
    )
    .await;
    // 25 Mar 04:30 UTC, written on the 24th.
    deliver(
        store,
        &alice,
        &mail("a@x", "two", "Sat, 24 Mar 2007 23:30 -0500"),
    )
    .await;
    deliver(
        store,
        &alice,
        &mail("a@x", "three", "Sun, 25 Mar 2007 12:00 +0000"),
    )
    .await;
    // Far from the dates searched: decided by its UTC day alone.
    deliver(
        store,
        &alice,
        &mail("a@x", "four", "Thu, 26 Nov 2026 10:00:00 +0000"),
    )
    .await;
    // Written on the 26th one minute before midnight, 27 Mar 22:59 UTC.
    deliver(
        store,
        &alice,
        &mail("a@x", "five", "Mon, 26 Mar 2007 23:59 -2300"),
    )
    .await;
    deliver(store, &alice, &mail("a@x", "six", "not a date")).await;
    let mut c = logged_in(&t).await;
    c.ok("SELECT INBOX").await;
    for (query, expect) in [
        ("SENTON 25-Mar-2007", "* SEARCH 1 3"),
        ("SENTON 24-Mar-2007", "* SEARCH 2"),
        ("SENTON 26-Mar-2007", "* SEARCH 5"),
        ("SENTON 27-Mar-2007", "* SEARCH"),
        ("SENTBEFORE 25-Mar-2007", "* SEARCH 2"),
        ("SENTBEFORE 27-Mar-2007", "* SEARCH 1 2 3 5"),
        ("SENTSINCE 25-Mar-2007", "* SEARCH 1 3 4 5"),
        ("SENTSINCE 27-Mar-2007", "* SEARCH 4"),
        ("NOT SENTSINCE 25-Mar-2007", "* SEARCH 2 6"),
        ("OR SENTON 24-Mar-2007 SENTON 26-Nov-2026", "* SEARCH 2 4"),
    ] {
        assert_eq!(c.ok(&format!("SEARCH {query}")).await, [expect], "{query}");
    }
}

#[tokio::test]
async fn internal_dates_compare_their_utc_day() {
    let (t, _alice) = server().await;
    let mut c = logged_in(&t).await;
    let raw = mail("a@x", "s", "Thu, 26 Nov 2026 10:00:00 +0000");
    append(&mut c, "24-Mar-2007 23:59:59 +0000", &raw).await;
    append(&mut c, "25-Mar-2007 00:00:00 +0000", &raw).await;
    // 24 Mar 22:30 UTC: the day of the instant as stored.
    append(&mut c, "25-Mar-2007 00:30:00 +0200", &raw).await;
    // 25 Mar 04:59:59 UTC.
    append(&mut c, "24-Mar-2007 23:59:59 -0500", &raw).await;
    c.ok("SELECT INBOX").await;
    for (query, expect) in [
        ("ON 24-Mar-2007", "* SEARCH 1 3"),
        ("ON 25-Mar-2007", "* SEARCH 2 4"),
        ("BEFORE 25-Mar-2007", "* SEARCH 1 3"),
        ("SINCE 25-Mar-2007", "* SEARCH 2 4"),
        ("SINCE 24-Mar-2007", "* SEARCH 1 2 3 4"),
        ("BEFORE 24-Mar-2007", "* SEARCH"),
        ("SINCE 26-Mar-2007", "* SEARCH"),
    ] {
        assert_eq!(c.ok(&format!("SEARCH {query}")).await, [expect], "{query}");
    }
}

#[tokio::test]
async fn sort_uses_base_subjects_and_ascii_casemap() {
    let (t, alice) = server().await;
    let store = &t.running.store;
    let date = "Thu, 26 Nov 2026 10:00:00 +0000";
    for (from, subject) in [
        ("_x@example.org", "_under"),
        ("Zed@example.org", "Re [PATCH]: zebra"),
        ("adam@example.org", "[fwd: Re: apple]"),
        ("[b]@example.org", "Banana (fwd)"),
        ("bea@example.org", "[unclosed"),
        ("Carl@example.org", "[list] Fw: [list] Re: Apple (FWD)"),
    ] {
        deliver(store, &alice, &mail(from, subject, date)).await;
    }
    let mut c = logged_in(&t).await;
    c.ok("SELECT INBOX").await;
    // APPLE, APPLE, BANANA, ZEBRA, [UNCLOSED, _UNDER: '[' (0x5B) and '_' (0x5F) sort after
    // the upper-cased letters.
    assert_eq!(
        c.ok("SORT (SUBJECT) UTF-8 ALL").await,
        ["* SORT 3 6 4 2 5 1"]
    );
    assert_eq!(
        c.ok("SORT (REVERSE SUBJECT) UTF-8 ALL").await,
        ["* SORT 1 5 2 4 3 6"]
    );
    // ADAM, BEA, CARL, ZED, [B], _X.
    assert_eq!(c.ok("SORT (FROM) UTF-8 ALL").await, ["* SORT 3 5 6 2 4 1"]);
}
