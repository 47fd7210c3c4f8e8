//! The webmail's Rules pages (issue 22): filters added, edited, moved, disabled and deleted
//! through the forms end up as the `mailroom` script in the store, compiled and active; the
//! vacation and forwarding forms; forwarding outside refused when the domain forbids it (the
//! admin's per-domain switch, audited); a script uploaded with ManageSieve shown and saved as
//! text with line and column errors; the last runtime error; and the browser journey.

use axum::http::StatusCode;
use mailroom::sieve::rules::{
    self, Field, Filter, FilterAction, ForwardRule, Op, Rules, SCRIPT_NAME, VacationRule,
};
use mailroom::store::Store;

use crate::harness::{self, TestServer};
use crate::web_client::Browser;

const RULES: &str = "/mail/settings/rules";

/// bob@localhost and carol@localhost, password "secret".
async fn server() -> TestServer {
    let server = harness::start().await;
    harness::account(&server.running.store, "bob@localhost", 0).await;
    harness::account(&server.running.store, "carol@localhost", 0).await;
    server
}

async fn signed_in(server: &TestServer, who: &str) -> (Browser, String) {
    let mut b = Browser::new(server);
    let page = b.sign_in_at("/mail", who, "secret").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let csrf = b.csrf_of(RULES).await;
    (b, csrf)
}

async fn account_id(store: &Store, who: &str) -> i64 {
    store.account_by_address(who).await.unwrap().unwrap().id
}

/// The rules in the stored `mailroom` script, which must be in the pages' form, compile to
/// the compiled form stored beside it, and be active.
async fn stored_rules(store: &Store, account: i64) -> Rules {
    let script = store
        .sieve_script(account, SCRIPT_NAME)
        .await
        .unwrap()
        .expect("the mailroom script");
    let compiled = mailroom::sieve::compile(&script.source).unwrap();
    assert_eq!(
        mailroom::sieve::Script::from_stored(&script.compiled),
        Some(compiled)
    );
    assert!(script.active, "the mailroom script is active");
    rules::from_sieve(&script.source).expect("in the pages' form")
}

fn invoices() -> Filter {
    Filter {
        enabled: true,
        field: Field::Subject,
        op: Op::Contains,
        value: "Invoice".into(),
        action: FilterAction::MoveTo("Invoices".into()),
        stop: true,
    }
}

async fn add_filter(b: &mut Browser, csrf: &str, fields: &[(&str, &str)]) -> StatusCode {
    let mut form = vec![("csrf", csrf)];
    form.extend_from_slice(fields);
    b.post(&format!("{RULES}/filters/new"), &form).await.status
}

#[tokio::test]
async fn filters_are_added_edited_moved_disabled_and_deleted() {
    let server = server().await;
    let store = server.running.store.clone();
    let bob = account_id(&store, "bob@localhost").await;
    store.create_mailbox(bob, "Invoices").await.unwrap();
    let (mut b, csrf) = signed_in(&server, "bob@localhost").await;

    let page = b.get(RULES).await;
    assert!(page.body.contains("No filters yet."), "{}", page.body);
    // The folder choices are the account's folders.
    let form = b.get(&format!("{RULES}/filters/new")).await;
    assert!(
        form.body.contains("<option value=\"Invoices\""),
        "{}",
        form.body
    );

    // Without the form's token: refused, nothing stored.
    let forged = add_filter(
        &mut b,
        "forged",
        &[
            ("field", "subject"),
            ("op", "contains"),
            ("value", "x"),
            ("action", "delete"),
        ],
    )
    .await;
    assert_eq!(forged, StatusCode::FORBIDDEN);
    assert_eq!(store.sieve_script(bob, SCRIPT_NAME).await.unwrap(), None);

    let invoice = [
        ("field", "subject"),
        ("op", "contains"),
        ("value", "Invoice"),
        ("action", "move"),
        ("folder", "Invoices"),
        ("stop", "1"),
        ("enabled", "1"),
    ];
    assert_eq!(
        add_filter(&mut b, &csrf, &invoice).await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(stored_rules(&store, bob).await.filters, [invoices()]);
    let page = b.get(&format!("{RULES}?done=rules")).await;
    assert!(page.body.contains("Your rules were saved."));
    assert!(
        page.body
            .contains("If Subject contains “Invoice”: move to Invoices; stop"),
        "{}",
        page.body
    );

    // A second one with what needs escaping and a pattern, kept as typed.
    let pattern = r#"*"urgent" \ now?"#;
    let second = [
        ("field", "header"),
        ("header", "X-Priority-Note"),
        ("op", "matches"),
        ("value", pattern),
        ("action", "forward"),
        ("address", "carol@localhost"),
        ("keep", "1"),
        ("enabled", "1"),
    ];
    assert_eq!(
        add_filter(&mut b, &csrf, &second).await,
        StatusCode::SEE_OTHER
    );
    let want_second = Filter {
        enabled: true,
        field: Field::Header("X-Priority-Note".into()),
        op: Op::Matches,
        value: pattern.into(),
        action: FilterAction::Forward {
            address: "carol@localhost".into(),
            keep: true,
        },
        stop: false,
    };
    assert_eq!(
        stored_rules(&store, bob).await.filters,
        [invoices(), want_second.clone()]
    );

    // Edit the first: its form shows what it does, its folder even when deleted since; a bad
    // size comes back with the text.
    store.delete_mailbox(bob, "Invoices").await.unwrap();
    let edit = b.get(&format!("{RULES}/filters/0")).await;
    assert!(edit.body.contains("value=\"Invoice\""), "{}", edit.body);
    assert!(
        edit.body
            .contains("<option value=\"Invoices\" selected>Invoices (no such folder now)"),
        "{}",
        edit.body
    );
    let bad = b
        .post(
            &format!("{RULES}/filters/0"),
            &[
                ("csrf", &csrf),
                ("field", "size"),
                ("op", "gt"),
                ("value", "lots"),
                ("action", "flag"),
                ("enabled", "1"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("A size is a number"), "{}", bad.body);
    assert!(bad.body.contains("value=\"lots\""));
    let page = b
        .post(
            &format!("{RULES}/filters/0"),
            &[
                ("csrf", &csrf),
                ("field", "size"),
                ("op", "gt"),
                ("value", "2048k"),
                ("action", "flag"),
                ("enabled", "1"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let big = Filter {
        enabled: true,
        field: Field::Size,
        op: Op::GreaterThan,
        value: "2M".into(),
        action: FilterAction::Flag,
        stop: false,
    };
    assert_eq!(
        stored_rules(&store, bob).await.filters,
        [big.clone(), want_second.clone()]
    );

    // Move the second up, disable it, then delete the first.
    let moved = b
        .post(
            &format!("{RULES}/filters/1/move"),
            &[("csrf", &csrf), ("to", "up")],
        )
        .await;
    assert_eq!(moved.status, StatusCode::SEE_OTHER);
    assert_eq!(
        stored_rules(&store, bob).await.filters,
        [want_second.clone(), big.clone()]
    );
    let toggled = b
        .post(&format!("{RULES}/filters/0/toggle"), &[("csrf", &csrf)])
        .await;
    assert_eq!(toggled.status, StatusCode::SEE_OTHER);
    let filters = stored_rules(&store, bob).await.filters;
    assert!(!filters[0].enabled);
    let source = store
        .sieve_script(bob, SCRIPT_NAME)
        .await
        .unwrap()
        .unwrap()
        .source;
    assert!(
        source.contains("# Filter 1 (disabled)\nif allof (false, header :matches"),
        "{source}"
    );
    let page = b.get(RULES).await;
    assert!(page.body.contains("(disabled)"));
    let deleted = b
        .post(&format!("{RULES}/filters/1/delete"), &[("csrf", &csrf)])
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert_eq!(stored_rules(&store, bob).await.filters.len(), 1);
    // Numbers past the end are not found.
    let gone = b
        .post(&format!("{RULES}/filters/5/delete"), &[("csrf", &csrf)])
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    server.running.shutdown().await;
}

#[tokio::test]
async fn vacation_and_forwarding_are_saved_and_external_forwarding_can_be_forbidden() {
    let server = server().await;
    let store = server.running.store.clone();
    let bob = account_id(&store, "bob@localhost").await;
    let (mut b, csrf) = signed_in(&server, "bob@localhost").await;

    let bad = b
        .post(
            &format!("{RULES}/vacation"),
            &[
                ("csrf", &csrf),
                ("enabled", "1"),
                ("first_day", "2026-12-20"),
                ("last_day", "2026-12-01"),
                ("message", "Away"),
                ("days", "7"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body.contains("the last day is before the first"),
        "{}",
        bad.body
    );
    assert!(bad.body.contains("value=\"2026-12-20\""));
    let page = b
        .post(
            &format!("{RULES}/vacation"),
            &[
                ("csrf", &csrf),
                ("enabled", "1"),
                ("first_day", "2026-12-20"),
                ("last_day", "2027-01-03"),
                ("subject", "Away until January"),
                ("message", "I am away.\r\nBack on the 4th."),
                ("days", "3"),
                ("addresses", "bob.alias@localhost\r\n"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let vacation = VacationRule {
        enabled: true,
        first_day: Some("2026-12-20".into()),
        last_day: Some("2027-01-03".into()),
        subject: "Away until January".into(),
        message: "I am away.\nBack on the 4th.".into(),
        days: 3,
        addresses: vec!["bob.alias@localhost".into()],
    };
    assert_eq!(stored_rules(&store, bob).await.vacation, Some(vacation));
    let page = b.get(RULES).await;
    assert!(
        page.body
            .contains("On from 2026-12-20 to 2027-01-03, once every 3 day(s) per sender."),
        "{}",
        page.body
    );

    // Forwarding outside is allowed by default.
    let page = b
        .post(
            &format!("{RULES}/forwarding"),
            &[("csrf", &csrf), ("address", "bob@example.net")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(
        stored_rules(&store, bob).await.forward,
        Some(ForwardRule {
            address: "bob@example.net".into(),
            keep: false
        })
    );

    // The admin forbids it for localhost: the switch is audited.
    let login = server.running.first_login.clone().expect("first login");
    let mut admin = Browser::new(&server);
    let page = admin.sign_in(&login.address, &login.password).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let admin_csrf = admin.csrf().await;
    let domain = admin.get("/admin/domains/localhost").await;
    assert!(
        domain
            .body
            .contains("may forward mail (with forwarding or a filter) to addresses outside")
    );
    let page = admin
        .post(
            "/admin/domains/localhost/forwarding",
            &[("csrf", &admin_csrf), ("allow", "0")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(
        !store
            .domain_allows_external_forward("localhost")
            .await
            .unwrap()
    );
    let domain = admin.get("/admin/domains/localhost").await;
    assert!(
        domain
            .body
            .contains("may forward mail only to addresses of this server")
    );
    let log = store
        .audit_entries("domain.external_forward", 0, 10)
        .await
        .unwrap();
    let entry = &log.entries[0];
    assert_eq!(
        (
            entry.actor.as_str(),
            entry.target.as_str(),
            entry.detail.as_str()
        ),
        (login.address.as_str(), "localhost", "forbidden")
    );

    // Now the forwarding page says so, refuses an outside address, and takes one here.
    let page = b.get(&format!("{RULES}/forwarding")).await;
    assert!(
        page.body.contains("id=\"external-forbidden\""),
        "{}",
        page.body
    );
    let refused = b
        .post(
            &format!("{RULES}/forwarding"),
            &[
                ("csrf", &csrf),
                ("address", "bob@example.com"),
                ("keep", "1"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("example.com is outside"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("value=\"bob@example.com\""));
    let filter = add_filter(
        &mut b,
        &csrf,
        &[
            ("field", "from"),
            ("op", "contains"),
            ("value", "boss"),
            ("action", "forward"),
            ("address", "bob@example.com"),
            ("enabled", "1"),
        ],
    )
    .await;
    assert_eq!(filter, StatusCode::UNPROCESSABLE_ENTITY);
    // Disabled, it may be kept; it cannot be switched on.
    let disabled = add_filter(
        &mut b,
        &csrf,
        &[
            ("field", "from"),
            ("op", "contains"),
            ("value", "boss"),
            ("action", "forward"),
            ("address", "bob@example.com"),
        ],
    )
    .await;
    assert_eq!(disabled, StatusCode::SEE_OTHER);
    let on = b
        .post(&format!("{RULES}/filters/0/toggle"), &[("csrf", &csrf)])
        .await;
    assert_eq!(on.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(on.body.contains("example.com is outside"), "{}", on.body);
    assert!(!stored_rules(&store, bob).await.filters[0].enabled);
    let page = b
        .post(
            &format!("{RULES}/forwarding"),
            &[
                ("csrf", &csrf),
                ("address", "carol@localhost"),
                ("keep", "1"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let rules = stored_rules(&store, bob).await;
    assert_eq!(
        rules.forward,
        Some(ForwardRule {
            address: "carol@localhost".into(),
            keep: true
        })
    );
    assert_eq!(rules.filters.len(), 1);
    let off = b
        .post(
            &format!("{RULES}/forwarding"),
            &[
                ("csrf", &csrf),
                ("address", "carol@localhost"),
                ("off", "1"),
            ],
        )
        .await;
    assert_eq!(off.status, StatusCode::SEE_OTHER);
    assert_eq!(stored_rules(&store, bob).await.forward, None);
    server.running.shutdown().await;
}

#[tokio::test]
async fn a_script_from_managesieve_is_edited_as_text_and_ours_can_be_used_again() {
    let server = server().await;
    let store = server.running.store.clone();
    let bob = account_id(&store, "bob@localhost").await;
    let (mut b, csrf) = signed_in(&server, "bob@localhost").await;
    assert_eq!(
        add_filter(
            &mut b,
            &csrf,
            &[
                ("field", "subject"),
                ("op", "contains"),
                ("value", "Invoice"),
                ("action", "delete"),
                ("enabled", "1"),
            ]
        )
        .await,
        StatusCode::SEE_OTHER
    );

    // Bob uploads and activates a script of his own with a ManageSieve client.
    let mine = "require \"fileinto\";\r\nif header :is \"x-list\" \"a\" { fileinto \"A\"; }\r\n";
    let compiled = mailroom::sieve::compile(mine).unwrap().to_stored();
    store
        .put_sieve(bob, "mine", mine, &compiled)
        .await
        .unwrap()
        .unwrap();
    store
        .set_active_sieve(bob, Some("mine"))
        .await
        .unwrap()
        .unwrap();

    let page = b.get(RULES).await;
    assert!(
        page.body.contains("Your active script is \"mine\""),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("if header :is &#34;x-list&#34;")
            || page.body.contains("if header :is &quot;x-list&quot;"),
        "{}",
        page.body
    );
    // Our rules can still be changed; that does not take over from "mine".
    assert_eq!(
        add_filter(
            &mut b,
            &csrf,
            &[
                ("field", "from"),
                ("op", "is"),
                ("value", "a@example.net"),
                ("action", "read"),
                ("enabled", "1"),
            ]
        )
        .await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(store.active_sieve(bob).await.unwrap().unwrap().name, "mine");
    let ours = store.sieve_script(bob, SCRIPT_NAME).await.unwrap().unwrap();
    assert_eq!(rules::from_sieve(&ours.source).unwrap().filters.len(), 2);

    // A broken edit: the error with line and column, the text kept, nothing stored.
    let broken =
        "require \"fileinto\";\r\nif header :is \"x-list\" \"a\" {\r\n  fileinto \"A\"\r\n}\r\n";
    let page = b
        .post(
            &format!("{RULES}/script"),
            &[("csrf", &csrf), ("name", "mine"), ("source", broken)],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.body.contains("Not saved: line 4, column 1"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("  fileinto &#34;A&#34;\n}")
            || page.body.contains("  fileinto &quot;A&quot;\n}"),
        "{}",
        page.body
    );
    assert_eq!(
        store
            .sieve_script(bob, "mine")
            .await
            .unwrap()
            .unwrap()
            .source,
        mine
    );
    // A good one is stored (compiled), and stays active.
    let fixed = "require \"fileinto\";\nif header :is \"x-list\" \"b\" { fileinto \"B\"; }\n";
    let page = b
        .post(
            &format!("{RULES}/script"),
            &[
                ("csrf", &csrf),
                ("name", "mine"),
                ("source", &fixed.replace('\n', "\r\n")),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let mine = store.active_sieve(bob).await.unwrap().unwrap();
    assert_eq!((mine.name.as_str(), mine.source.as_str()), ("mine", fixed));
    // Scripts that do not exist are not made here.
    let page = b
        .post(
            &format!("{RULES}/script"),
            &[("csrf", &csrf), ("name", "new"), ("source", "keep;")],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);

    // Back to the rules of the page.
    let page = b.post(&format!("{RULES}/use"), &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(stored_rules(&store, bob).await.filters.len(), 2);
    let page = b.get(RULES).await;
    assert!(!page.body.contains("id=\"raw-form\""), "{}", page.body);
    server.running.shutdown().await;
}

#[tokio::test]
async fn our_script_edited_by_hand_is_shown_as_text_until_started_over() {
    let server = server().await;
    let store = server.running.store.clone();
    let bob = account_id(&store, "bob@localhost").await;
    let (mut b, csrf) = signed_in(&server, "bob@localhost").await;
    let mut hand = rules::to_sieve(&Rules {
        filters: vec![invoices()],
        ..Rules::default()
    });
    hand.push_str("keep;\n");
    let compiled = mailroom::sieve::compile(&hand).unwrap().to_stored();
    store
        .put_sieve(bob, SCRIPT_NAME, &hand, &compiled)
        .await
        .unwrap()
        .unwrap();
    store
        .set_active_sieve(bob, Some(SCRIPT_NAME))
        .await
        .unwrap()
        .unwrap();

    let page = b.get(RULES).await;
    assert!(
        page.body.contains("changed outside these pages"),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"raw-form\""));
    assert!(!page.body.contains("id=\"add-filter\""));
    // The forms refuse rather than overwrite the hand-made text.
    let page = b.get(&format!("{RULES}/vacation")).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        add_filter(
            &mut b,
            &csrf,
            &[
                ("field", "subject"),
                ("op", "is"),
                ("value", "x"),
                ("action", "delete")
            ]
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        store
            .sieve_script(bob, SCRIPT_NAME)
            .await
            .unwrap()
            .unwrap()
            .source,
        hand
    );
    let page = b
        .post(&format!("{RULES}/start-over"), &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(stored_rules(&store, bob).await, Rules::default());
    server.running.shutdown().await;
}

#[tokio::test]
async fn the_last_runtime_error_is_shown_with_its_time_until_dismissed() {
    let server = server().await;
    let store = server.running.store.clone();
    let bob = account_id(&store, "bob@localhost").await;
    let (mut b, csrf) = signed_in(&server, "bob@localhost").await;
    let page = b.get(RULES).await;
    assert!(!page.body.contains("id=\"runtime-error\""));
    store
        .record_sieve_error(bob, "mailroom", "too many redirects (4)", 1_767_225_600)
        .await
        .unwrap();
    let page = b.get(RULES).await;
    assert!(page.body.contains("id=\"runtime-error\""), "{}", page.body);
    assert!(page.body.contains("too many redirects (4)"));
    assert!(
        page.body.contains("datetime=\"2026-01-01T00:00:00Z\""),
        "{}",
        page.body
    );
    let page = b
        .post(&format!("{RULES}/error/dismiss"), &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(store.sieve_error(bob).await.unwrap(), None);
    server.running.shutdown().await;
}

#[tokio::test]
async fn rules_journey_in_chromium() {
    // sender.example's MX is a closed port on loopback: the vacation reply stays queued
    // (deferred) for the admin's queue page to show. Without an answering DNS the queue
    // would give up on the reply at once.
    let zone = crate::dns_server::Zone::default();
    zone.mx("sender.example", 10, "mx.sender.example");
    zone.ip("mx.sender.example", std::net::IpAddr::from([127, 0, 0, 3]));
    let dns = crate::dns_server::start(zone).await;
    let server = harness::start_with(move |c| c.dns.nameservers = vec![dns]).await;
    let store = server.running.store.clone();
    harness::account(&store, "bob@localhost", 0).await;
    let login = server.running.first_login.clone().expect("first login");
    let smtp = server.running.addr("smtp").expect("smtp listener");
    crate::browser::journey(
        "rules.mjs",
        &server,
        &[
            ("SMTP_PORT", smtp.port().to_string()),
            ("ADMIN_ADDRESS", login.address),
            ("ADMIN_PASSWORD", login.password),
        ],
    )
    .await;
    if crate::browser::missing().is_none() {
        // What the browser saw is in the store: the filter, the filed invoice, one reply.
        let bob = account_id(&store, "bob@localhost").await;
        let rules = stored_rules(&store, bob).await;
        assert_eq!(rules.filters, [invoices()]);
        assert!(rules.vacation.is_some_and(|v| v.enabled));
        let invoices = store.mailbox(bob, "Invoices").await.unwrap().unwrap();
        let filed = store.message_list(&invoices, 0, 10).await.unwrap();
        assert_eq!(filed.len(), 1);
        assert_eq!(filed[0].subject, "Invoice 2026-42");
        let replies: Vec<_> = store
            .queue_list()
            .await
            .unwrap()
            .into_iter()
            .filter(|m| {
                m.recipients
                    .iter()
                    .any(|r| r.address == "carol@sender.example")
            })
            .collect();
        assert_eq!(replies.len(), 1, "{replies:?}");
    }
    server.running.shutdown().await;
}
