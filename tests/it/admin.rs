//! The admin panel through its router (`oneshot`): sign-in, CSRF, validation next to fields,
//! and each page and action against the store.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use mailroom::web::session::Client;
use tower::ServiceExt;

use crate::harness::{self, TestServer};
use crate::web_client::{Browser, field};

async fn admin(server: &TestServer) -> (Browser, String) {
    let login = server.running.first_login.clone().expect("first login");
    let mut b = Browser::new(server);
    let page = b.sign_in(&login.address, &login.password).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location, "/admin");
    let csrf = b.csrf().await;
    (b, csrf)
}

#[tokio::test]
async fn every_page_and_action_needs_an_admin_session() {
    let server = harness::start().await;
    let mut b = Browser::new(&server);
    for path in [
        "/admin",
        "/admin/domains",
        "/admin/domains/localhost",
        "/admin/domains/localhost/remove",
        "/admin/accounts",
        "/admin/accounts/new",
        "/admin/accounts/admin@localhost",
        "/admin/accounts/admin@localhost/remove",
        "/admin/aliases",
        "/admin/queue",
        "/admin/queue/1/drop",
    ] {
        let page = b.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert!(
            page.location.starts_with("/admin/login?next=%2Fadmin"),
            "{path}: {}",
            page.location
        );
    }
    for path in [
        "/admin/domains",
        "/admin/domains/localhost/remove",
        "/admin/accounts",
        "/admin/accounts/admin@localhost/quota",
        "/admin/accounts/admin@localhost/password",
        "/admin/accounts/admin@localhost/state",
        "/admin/accounts/admin@localhost/remove",
        "/admin/aliases",
        "/admin/aliases/remove",
        "/admin/queue/1/retry",
        "/admin/queue/1/drop",
    ] {
        let page = b
            .post(path, &[("csrf", "x"), ("name", "evil.example")])
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert!(page.location.starts_with("/admin/login"), "{path}");
    }
    assert!(
        server
            .running
            .store
            .domain("evil.example")
            .await
            .unwrap()
            .is_none()
    );

    // A user who is not an administrator gets a clear 403 at sign-in.
    harness::account(&server.running.store, "bob@localhost", 0).await;
    let page = b.sign_in("bob@localhost", "secret").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("not an administrator"), "{}", page.body);
    server.running.shutdown().await;
}

#[tokio::test]
async fn sign_in_refuses_wrong_passwords_forged_forms_and_plain_http_from_afar() {
    let server = harness::start().await;
    let login = server.running.first_login.clone().unwrap();
    let mut b = Browser::new(&server);

    let page = b.sign_in(&login.address, "wrong password").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(
        page.body.contains("Wrong address or password"),
        "{}",
        page.body
    );
    assert!(b.cookies.iter().all(|(k, _)| k != "mr_session"));

    // Without the login cookie (a form posted from another site): refused.
    let mut forged = Browser::new(&server);
    let page = forged
        .post(
            "/admin/login",
            &[
                ("address", &login.address),
                ("password", &login.password),
                ("login_token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);

    // Plain HTTP from another machine: the password is not accepted.
    let mut remote = Browser::new(&server);
    remote.client = Client {
        ip: [192, 0, 2, 7].into(),
        https: false,
    };
    let page = remote.sign_in(&login.address, &login.password).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("https://"), "{}", page.body);

    // Over HTTPS from afar: fine, and the cookie is Secure.
    remote.client.https = true;
    let form = remote.get("/admin/login").await;
    let token = field(&form.body, "login_token");
    let res = remote
        .router
        .clone()
        .oneshot({
            let mut r = Request::post("/admin/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::COOKIE, format!("mr_login={token}"))
                .body(Body::from(format!(
                    "address={}&password={}&login_token={token}",
                    login.address, login.password
                )))
                .unwrap();
            r.extensions_mut().insert(remote.client);
            r
        })
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cookie = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("mr_session="))
        .unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(cookie.contains(attr), "{cookie}");
    }

    // Signing out ends the session on the server: the old cookie no longer works.
    let (mut b, csrf) = admin(&server).await;
    let stolen = b.cookies.clone();
    let page = b.post("/admin/logout", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    b.cookies = stolen;
    assert_eq!(b.get("/admin").await.status, StatusCode::SEE_OTHER);
    server.running.shutdown().await;
}

#[tokio::test]
async fn forged_posts_are_refused() {
    let server = harness::start().await;
    let (mut b, csrf) = admin(&server).await;
    // A wrong or missing CSRF token.
    let page = b
        .post(
            "/admin/domains",
            &[("csrf", "forged"), ("name", "a.example")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    let page = b.post("/admin/domains", &[("name", "a.example")]).await;
    assert!(page.status.is_client_error(), "{}", page.status);
    // The right token, sent from another site.
    let mut req = Request::post("/admin/domains")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::from(format!("csrf={csrf}&name=a.example")))
        .unwrap();
    req.extensions_mut().insert(b.client);
    let page = b.send(req).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(
        server
            .running
            .store
            .domain("a.example")
            .await
            .unwrap()
            .is_none()
    );
    // A GET never changes anything.
    let page = b.get("/admin/accounts/admin@localhost/remove").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        server
            .running
            .store
            .account_by_address("admin@localhost")
            .await
            .unwrap()
            .is_some()
    );
    server.running.shutdown().await;
}

/// Every state-changing admin route takes its form through `admin::Posted`, which checks the
/// token and the Origin before the handler runs: a forged, missing or cross-site post to any of
/// them is refused and changes nothing.
#[tokio::test]
async fn every_admin_post_checks_token_and_origin() {
    let server = harness::start().await;
    let (mut b, csrf) = admin(&server).await;
    let store = &server.running.store;
    harness::account(store, "victim@localhost", 0).await;
    let posts: [(&str, &[(&str, &str)]); 11] = [
        ("/admin/domains", &[("name", "a.example")]),
        ("/admin/domains/localhost/remove", &[]),
        (
            "/admin/accounts",
            &[("address", "new@localhost"), ("password", "")],
        ),
        ("/admin/accounts/victim@localhost/quota", &[("quota", "1M")]),
        (
            "/admin/accounts/victim@localhost/password",
            &[("password", "")],
        ),
        (
            "/admin/accounts/victim@localhost/state",
            &[("action", "disable")],
        ),
        ("/admin/accounts/victim@localhost/remove", &[]),
        (
            "/admin/aliases",
            &[("source", "x@localhost"), ("targets", "victim@localhost")],
        ),
        ("/admin/aliases/remove", &[("source", "x@localhost")]),
        ("/admin/queue/1/retry", &[]),
        ("/admin/queue/1/drop", &[]),
    ];
    let before = store
        .account_by_address("victim@localhost")
        .await
        .unwrap()
        .unwrap();
    for (path, fields) in posts {
        for token in [None, Some("forged")] {
            let mut form = fields.to_vec();
            if let Some(t) = token {
                form.push(("csrf", t));
            }
            let page = b.post(path, &form).await;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{path} {token:?}");
        }
        let mut body: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        body.push(format!("csrf={csrf}"));
        let req = Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ORIGIN, "https://evil.example")
            .body(Body::from(body.join("&")))
            .unwrap();
        assert_eq!(
            b.send(req).await.status,
            StatusCode::FORBIDDEN,
            "{path} cross-site"
        );
    }
    let after = store
        .account_by_address("victim@localhost")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            after.quota_bytes,
            after.disabled,
            after.password_hash.clone()
        ),
        (
            before.quota_bytes,
            before.disabled,
            before.password_hash.clone()
        )
    );
    assert!(store.domain("a.example").await.unwrap().is_none());
    assert!(store.domain("localhost").await.unwrap().is_some());
    assert!(
        store
            .account_by_address("new@localhost")
            .await
            .unwrap()
            .is_none()
    );
    server.running.shutdown().await;
}

#[tokio::test]
async fn domains_accounts_and_validation_next_to_the_field() {
    let server = harness::start().await;
    let store = server.running.store.clone();
    let (mut b, csrf) = admin(&server).await;

    let page = b
        .post(
            "/admin/domains",
            &[("csrf", &csrf), ("name", "not a domain")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("id=\"name-error\""), "{}", page.body);
    assert!(page.body.contains("value=\"not a domain\""));

    let page = b
        .post(
            "/admin/domains",
            &[("csrf", &csrf), ("name", "Example.ORG")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location, "/admin/domains/example.org");
    let page = b.get("/admin/domains/example.org").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("10 localhost."), "{}", page.body);
    assert!(page.body.contains("v=spf1 mx -all"));
    assert!(page.body.contains("v=DKIM1; k=rsa; p="));
    assert!(page.body.contains("_dmarc.example.org."));
    let page = b
        .post(
            "/admin/domains",
            &[("csrf", &csrf), ("name", "example.org")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("already exists"));

    // Accounts: each field says what is wrong.
    let page = b
        .post(
            "/admin/accounts",
            &[
                ("csrf", &csrf),
                ("address", "carol@nowhere.example"),
                ("password", "short"),
                ("quota", "lots"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    for id in ["address-error", "password-error", "quota-error"] {
        assert!(
            page.body.contains(&format!("id=\"{id}\"")),
            "{id}: {}",
            page.body
        );
    }
    assert!(page.body.contains("not one of this server"));
    assert!(
        store
            .account_by_address("carol@nowhere.example")
            .await
            .unwrap()
            .is_none()
    );

    // A generated password is shown once, and works.
    let page = b
        .post(
            "/admin/accounts",
            &[
                ("csrf", &csrf),
                ("address", "carol@example.org"),
                ("password", ""),
                ("quota", "1M"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let start = page.body.find("id=\"new-password\">").unwrap() + 18;
    let password = page.body[start..].split('<').next().unwrap().to_string();
    assert_eq!(password.len(), 20);
    let carol = store
        .account_by_address("carol@example.org")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(carol.quota_bytes, 1 << 20);
    assert!(mailroom::auth::password::verify(&password, &carol.password_hash).await);

    // Usage shows in the list once mail arrives.
    let raw = harness::message("usage", "meter", 300 * 1024);
    store
        .deliver(
            mailroom::store::Delivery {
                raw: &raw,
                internal_date: None,
            },
            &[mailroom::store::Target::inbox(carol.id)],
        )
        .await
        .unwrap();
    let page = b.get("/admin/accounts?q=carol").await;
    assert!(page.body.contains("carol@example.org"));
    assert!(page.body.contains("value=\"29\""), "{}", page.body);
    assert!(page.body.contains("/ 1M"), "{}", page.body);
    let table = page.body.split("id=\"accounts\"").nth(1).unwrap();
    assert!(!table.contains("admin@localhost"), "search filters");

    // Edit: bad quota is refused next to the field, good quota saved; disable; password.
    let path = "/admin/accounts/carol@example.org";
    let page = b
        .post(
            &format!("{path}/quota"),
            &[("csrf", &csrf), ("quota", "-5")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("id=\"quota-error\""));
    let page = b
        .post(
            &format!("{path}/quota"),
            &[("csrf", &csrf), ("quota", "2G")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location, format!("{path}?done=account-updated"));
    assert!(
        b.get(&page.location)
            .await
            .body
            .contains("The account was updated")
    );
    let page = b
        .post(
            &format!("{path}/state"),
            &[("csrf", &csrf), ("action", "disable")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let carol = store
        .account_by_address("carol@example.org")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(carol.quota_bytes, 2 << 30);
    assert!(carol.disabled);
    let page = b
        .post(
            &format!("{path}/password"),
            &[("csrf", &csrf), ("password", "a much better password")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let carol = store
        .account_by_address("carol@example.org")
        .await
        .unwrap()
        .unwrap();
    assert!(mailroom::auth::password::verify("a much better password", &carol.password_hash).await);

    // The admin cannot lock themselves out.
    let page = b
        .post(
            "/admin/accounts/admin@localhost/state",
            &[("csrf", &csrf), ("action", "disable")],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);

    // A domain with accounts cannot go; the confirmation page says why.
    let page = b.get("/admin/domains/example.org/remove").await;
    assert!(page.body.contains("still has 1 account"), "{}", page.body);
    let page = b
        .post("/admin/domains/example.org/remove", &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    assert!(page.body.contains("remove them first"));

    // Remove the account (after its confirmation page), then the domain.
    let page = b.get(&format!("{path}/remove")).await;
    assert!(page.body.contains("1 messages"), "{}", page.body);
    let page = b.post(&format!("{path}/remove"), &[("csrf", &csrf)]).await;
    assert_eq!(page.location, "/admin/accounts?done=account-removed");
    assert!(
        store
            .account_by_address("carol@example.org")
            .await
            .unwrap()
            .is_none()
    );
    let page = b
        .post("/admin/domains/example.org/remove", &[("csrf", &csrf)])
        .await;
    assert_eq!(page.location, "/admin/domains?done=domain-removed");
    assert!(store.domain("example.org").await.unwrap().is_none());
    assert_eq!(
        b.get("/admin/domains/example.org").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        b.get("/admin/accounts/nobody@localhost").await.status,
        StatusCode::NOT_FOUND
    );
    server.running.shutdown().await;
}

#[tokio::test]
async fn long_lists_are_paged_and_empty_ones_say_so() {
    let server = harness::start().await;
    let store = server.running.store.clone();
    let (mut b, _) = admin(&server).await;
    assert!(
        b.get("/admin/aliases")
            .await
            .body
            .contains("No aliases yet")
    );
    assert!(
        b.get("/admin/queue")
            .await
            .body
            .contains("The queue is empty")
    );
    for i in 0..120 {
        harness::account(&store, &format!("user{i:03}@localhost"), 0).await;
    }
    let page = b.get("/admin/accounts").await;
    assert!(page.body.contains("121 account(s)"));
    assert!(page.body.contains("Page 1 of 3"));
    assert!(page.body.contains("user000@localhost"));
    assert!(!page.body.contains("user060@localhost"));
    let page = b.get("/admin/accounts?page=3").await;
    assert!(page.body.contains("user119@localhost"));
    assert!(!page.body.contains("Next"));
    // Out of range pages show the last one rather than failing.
    assert!(
        b.get("/admin/accounts?page=99")
            .await
            .body
            .contains("Page 3 of 3")
    );
    let page = b.get("/admin/accounts?q=user11&page=1").await;
    assert!(page.body.contains("10 account(s)"), "{}", page.body);
    server.running.shutdown().await;
}

#[tokio::test]
async fn aliases_and_queue_actions() {
    // DNS that never answers: mail for other servers stays queued (deferred), not bounced.
    let server = harness::start_with(|c| {
        c.dns.nameservers = vec![std::net::SocketAddr::from(([127, 0, 0, 1], 9))]
    })
    .await;
    let store = server.running.store.clone();
    harness::account(&store, "bob@localhost", 0).await;
    let (mut b, csrf) = admin(&server).await;

    let page = b
        .post(
            "/admin/aliases",
            &[
                ("csrf", &csrf),
                ("source", "bob@localhost"),
                ("targets", "admin@localhost"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("id=\"source-error\""), "{}", page.body);
    let page = b
        .post(
            "/admin/aliases",
            &[
                ("csrf", &csrf),
                ("source", "info@localhost"),
                ("targets", ""),
            ],
        )
        .await;
    assert!(page.body.contains("id=\"targets-error\""), "{}", page.body);
    let page = b
        .post(
            "/admin/aliases",
            &[
                ("csrf", &csrf),
                ("source", "info@localhost"),
                ("targets", "bob@localhost, carol@elsewhere.example"),
            ],
        )
        .await;
    assert_eq!(page.location, "/admin/aliases?done=alias-added");
    let page = b.get(&page.location).await;
    assert!(page.body.contains("carol@elsewhere.example"));
    assert_eq!(
        store
            .alias("info@localhost")
            .await
            .unwrap()
            .unwrap()
            .targets
            .len(),
        2
    );
    b.post(
        "/admin/aliases/remove",
        &[
            ("csrf", &csrf),
            ("source", "info@localhost"),
            ("target", "carol@elsewhere.example"),
        ],
    )
    .await;
    assert_eq!(
        store
            .alias("info@localhost")
            .await
            .unwrap()
            .unwrap()
            .targets,
        vec!["bob@localhost"]
    );
    b.post(
        "/admin/aliases/remove",
        &[("csrf", &csrf), ("source", "info@localhost")],
    )
    .await;
    assert!(store.alias("info@localhost").await.unwrap().is_none());

    // The queue: a message for another server waits (tests reach no real DNS).
    let id = store
        .queue_add(
            "bob@localhost",
            &["dave@remote.example".into()],
            b"Subject: hi\r\n\r\nhi\r\n",
        )
        .await
        .unwrap();
    let page = b.get("/admin/queue").await;
    assert!(page.body.contains("dave@remote.example"), "{}", page.body);
    assert!(page.body.contains(&format!("/admin/queue/{id}/retry")));
    let dash = b.get("/admin").await;
    assert!(dash.body.contains("id=\"stat-queue\">1<"), "{}", dash.body);
    let page = b.get(&format!("/admin/queue/{id}/drop")).await;
    assert!(page.body.contains("dave@remote.example"));
    let page = b
        .post(&format!("/admin/queue/{id}/drop"), &[("csrf", &csrf)])
        .await;
    assert_eq!(
        page.location, "/admin/queue?done=queue-dropped",
        "{}",
        page.body
    );
    assert_eq!(store.queue_stats().await.unwrap().messages, 0);
    for action in ["drop", "retry"] {
        let page = b
            .post(&format!("/admin/queue/{id}/{action}"), &[("csrf", &csrf)])
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{action}");
    }
    // Retry makes a waiting message due at once.
    let id = store
        .queue_add(
            "bob@localhost",
            &["erin@remote.example".into()],
            b"Subject: hi\r\n\r\nhi\r\n",
        )
        .await
        .unwrap();
    let page = b
        .post(&format!("/admin/queue/{id}/retry"), &[("csrf", &csrf)])
        .await;
    assert_eq!(page.location, "/admin/queue?done=queue-retry");
    server.running.shutdown().await;
}

#[tokio::test]
async fn dashboard_counts_deliveries_rejections_and_shows_certificate_and_backup() {
    let server = harness::start().await;
    let store = server.running.store.clone();
    let bob = harness::account(&store, "bob@localhost", 0).await;
    let raw = harness::message("hello", "dashboard", 2000);
    for _ in 0..3 {
        store
            .deliver(
                mailroom::store::Delivery {
                    raw: &raw,
                    internal_date: None,
                },
                &[mailroom::store::Target::inbox(bob.id)],
            )
            .await
            .unwrap();
    }
    // A relay attempt over SMTP is refused and counted.
    let mut smtp = crate::smtp::connect(&server, "smtp").await;
    smtp.expect("EHLO client.example", 250, "").await;
    smtp.expect("MAIL FROM:<x@elsewhere.example>", 250, "")
        .await;
    smtp.expect("RCPT TO:<y@other.example>", 554, "Relay").await;
    store.flush_events().await.unwrap();

    let (mut b, _) = admin(&server).await;
    let page = b.get("/admin").await;
    assert!(
        page.body.contains("id=\"stat-delivered\">3<"),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"stat-rejected\">1<"));
    assert!(page.body.contains("relay attempts"));
    assert!(page.body.contains("id=\"stat-messages\">3<"));
    assert!(page.body.contains("id=\"stat-accounts\">2<"));
    assert!(page.body.contains("self-signed"));
    assert!(page.body.contains("No backup has been made"));

    mailroom::backup::backup(&store, &server.dir.path().join("b.db"))
        .await
        .unwrap();
    let page = b.get("/admin").await;
    assert!(page.body.contains("Last backup"), "{}", page.body);
    assert!(page.body.contains("b.db"));
    server.running.shutdown().await;
}

#[tokio::test]
async fn the_dns_check_marks_records_found_missing_or_different() {
    let zone = crate::dns_server::Zone::default();
    zone.mx("example.org", 10, "localhost");
    zone.txt("example.org", "v=spf1 a ~all");
    let dns = crate::dns_server::start(zone).await;
    let server = harness::start_with(|c| c.dns.nameservers = vec![dns]).await;
    server
        .running
        .store
        .add_domain("example.org")
        .await
        .unwrap();
    let (mut b, _) = admin(&server).await;
    let page = b.get("/admin/domains/example.org?check=1").await;
    assert_eq!(page.status, StatusCode::OK);
    let rows: Vec<&str> = page.body.split("<tr>").skip(2).collect();
    let state = |needle: &str| {
        let row = rows.iter().find(|r| r.contains(needle)).unwrap();
        ["found", "missing", "different", "unknown"]
            .into_iter()
            .find(|s| row.contains(&format!("class=\"check {s}\"")))
            .unwrap()
    };
    assert_eq!(state("10 localhost."), "found");
    assert_eq!(state("v=spf1 mx -all"), "different");
    assert!(page.body.contains("published instead: v=spf1 a ~all"));
    assert_eq!(state("_dmarc.example.org."), "missing");
    server.running.shutdown().await;
}
