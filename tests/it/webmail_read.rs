//! Reading a message in the webmail (issue 24): parts come from the body structure stored at
//! delivery, numbered as IMAP numbers them; the remote-images notice, clickable links in plain
//! text, names with bidi controls, the download's own Content-Security-Policy, the favicon.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;

use crate::imap::{deliver, logged_in, server};
use crate::web_client::Browser;

/// A GET through the router with `b`'s cookies: the status, headers and the body's bytes
/// (the shared client keeps only text).
async fn get_bytes(b: &Browser, path: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let cookies: Vec<String> = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut req = Request::get(path)
        .header(header::HOST, "localhost")
        .header(header::COOKIE, cookies.join("; "))
        .body(Body::empty())
        .unwrap();
    req.extensions_mut().insert(b.client);
    let res = b.router.clone().oneshot(req).await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let body = axum::body::to_bytes(res.into_body(), 64 << 20)
        .await
        .unwrap();
    (status, headers, body.to_vec())
}

/// A parsed IMAP response item: enough of RFC 3501's syntax for BODYSTRUCTURE.
#[derive(Debug, Clone)]
enum Item {
    Nil,
    Atom(String),
    Str(Vec<u8>),
    List(Vec<Item>),
}

impl Item {
    fn text(&self) -> String {
        match self {
            Item::Atom(a) => a.clone(),
            Item::Str(s) => String::from_utf8_lossy(s).into_owned(),
            _ => String::new(),
        }
    }
    fn list(&self) -> &[Item] {
        match self {
            Item::List(l) => l,
            _ => &[],
        }
    }
}

/// Parses one item at `*pos` of `s` (quoted strings, literals, atoms, NIL, lists).
fn item(s: &[u8], pos: &mut usize) -> Item {
    while s.get(*pos) == Some(&b' ') {
        *pos += 1;
    }
    match s[*pos] {
        b'(' => {
            *pos += 1;
            let mut out = Vec::new();
            loop {
                while s.get(*pos) == Some(&b' ') {
                    *pos += 1;
                }
                if s[*pos] == b')' {
                    *pos += 1;
                    return Item::List(out);
                }
                out.push(item(s, pos));
            }
        }
        b'"' => {
            *pos += 1;
            let mut out = Vec::new();
            while s[*pos] != b'"' {
                if s[*pos] == b'\\' {
                    *pos += 1;
                }
                out.push(s[*pos]);
                *pos += 1;
            }
            *pos += 1;
            Item::Str(out)
        }
        b'{' => {
            let close = *pos + s[*pos..].iter().position(|&b| b == b'}').unwrap();
            let n: usize = std::str::from_utf8(&s[*pos + 1..close])
                .unwrap()
                .parse()
                .unwrap();
            let start = close + 3; // "}\r\n"
            *pos = start + n;
            Item::Str(s[start..start + n].to_vec())
        }
        _ => {
            let start = *pos;
            while !matches!(s.get(*pos), None | Some(b' ' | b'(' | b')')) {
                *pos += 1;
            }
            let atom = String::from_utf8_lossy(&s[start..*pos]).into_owned();
            if atom.eq_ignore_ascii_case("NIL") {
                Item::Nil
            } else {
                Item::Atom(atom)
            }
        }
    }
}

/// A leaf of a BODYSTRUCTURE as IMAP numbers it (not looking inside embedded messages, which
/// the webmail offers whole): (part number, type/subtype, encoding, disposition type).
fn leaves(body: &Item, path: &str, out: &mut Vec<(String, String, String, String)>) {
    let l = body.list();
    if matches!(l.first(), Some(Item::List(_))) {
        let children = l.iter().take_while(|i| matches!(i, Item::List(_)));
        for (i, child) in children.enumerate() {
            let p = if path.is_empty() {
                format!("{}", i + 1)
            } else {
                format!("{path}.{}", i + 1)
            };
            leaves(child, &p, out);
        }
        return;
    }
    let path = if path.is_empty() { "1" } else { path };
    let (t, st) = (l[0].text().to_lowercase(), l[1].text().to_lowercase());
    // Basic fields (7), then text's lines, or message/rfc822's envelope, body and lines;
    // then MD5 and the disposition.
    let extra = match (t.as_str(), st.as_str()) {
        ("text", _) => 1,
        ("message", "rfc822" | "global") if l.len() > 9 && matches!(l[8], Item::List(_)) => 3,
        _ => 0,
    };
    let disposition = l
        .get(7 + extra + 1)
        .and_then(|d| d.list().first().map(Item::text))
        .unwrap_or_default()
        .to_lowercase();
    out.push((
        path.to_string(),
        format!("{t}/{st}"),
        l[5].text().to_uppercase(),
        disposition,
    ));
}

fn lenient_base64(input: &[u8]) -> Vec<u8> {
    let clean: Vec<u8> = input
        .iter()
        .copied()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
        .collect();
    let mut out = Vec::new();
    for chunk in clean.chunks(4) {
        let v: Vec<u32> = chunk
            .iter()
            .map(|&b| match b {
                b'A'..=b'Z' => u32::from(b - b'A'),
                b'a'..=b'z' => u32::from(b - b'a' + 26),
                b'0'..=b'9' => u32::from(b - b'0' + 52),
                b'+' => 62,
                _ => 63,
            })
            .collect();
        let n = v.iter().fold(0u32, |acc, x| (acc << 6) | x) << (6 * (4 - v.len()));
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..(v.len() * 6 / 8)]);
    }
    out
}

fn lenient_qp(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < input.len() {
        let hex = |j: usize| input.get(j).and_then(|c| (*c as char).to_digit(16));
        if input[i] == b'=' {
            if let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2)) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
            let mut j = i + 1;
            while matches!(input.get(j), Some(b' ' | b'\t')) {
                j += 1;
            }
            match (input.get(j), input.get(j + 1)) {
                (Some(b'\r'), Some(b'\n')) => {
                    i = j + 2;
                    continue;
                }
                (Some(b'\n'), _) => {
                    i = j + 1;
                    continue;
                }
                (None, _) => break,
                _ => {}
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// The `(part, name)` pairs the reading page lists, from `data-part` attributes.
fn listed(page: &str) -> Vec<String> {
    page.split("data-part=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect()
}

/// For every message of tests/mime-corpus: the attachments the reading page lists are parts
/// IMAP numbers the same way (same number, same type), every part IMAP's BODYSTRUCTURE marks
/// as an attachment is listed, and each download is IMAP's `BODY[n]` decoded.
#[tokio::test]
async fn corpus_attachments_agree_with_imap() {
    let (t, alice) = server().await;
    let store = t.running.store.clone();
    let inbox = store
        .mailbox(alice.id, "INBOX")
        .await
        .unwrap()
        .unwrap()
        .id();
    let mut web = Browser::new(&t);
    let signed = web.sign_in_at("/mail", "alice@localhost", "secret").await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let mut imap = logged_in(&t).await;

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mime-corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/mime-corpus is in the repository")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(files.len() > 40, "the corpus is there");
    let (mut checked_parts, mut attachments_seen) = (0, 0);
    for file in &files {
        let raw = std::fs::read(file).unwrap();
        let uid = deliver(&store, &alice, &raw).await;
        imap.ok("SELECT INBOX").await;
        let lines = imap
            .ok(&format!("UID FETCH {uid} (BODYSTRUCTURE)"))
            .await
            .join("\r\n");
        let at = lines.find("BODYSTRUCTURE ").unwrap() + "BODYSTRUCTURE ".len();
        let structure = item(lines.as_bytes(), &mut { at });
        let mut imap_leaves = Vec::new();
        leaves(&structure, "", &mut imap_leaves);

        let page = web.get(&format!("/mail/box/{inbox}/{uid}")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", file.display());
        let parts = listed(&page.body);
        for (n, _, _, disposition) in &imap_leaves {
            if disposition == "attachment" {
                attachments_seen += 1;
                assert!(
                    parts.contains(n),
                    "{}: IMAP part {n} is an attachment; the page lists {parts:?}",
                    file.display()
                );
            }
        }
        for n in &parts {
            let (_, content_type, encoding, _) = imap_leaves
                .iter()
                .find(|(p, ..)| p == n)
                .unwrap_or_else(|| panic!("{}: part {n} not in {imap_leaves:?}", file.display()));
            assert!(
                page.body.contains(&format!("<small>{content_type},")),
                "{}: part {n} is {content_type}",
                file.display()
            );
            let fetched = imap
                .ok(&format!("UID FETCH {uid} (BODY.PEEK[{n}])"))
                .await
                .join("\r\n");
            let at = fetched.find(&format!("BODY[{n}] ")).unwrap() + format!("BODY[{n}] ").len();
            let stored = match item(fetched.as_bytes(), &mut { at }) {
                Item::Str(s) => s,
                _ => Vec::new(),
            };
            let expected = match encoding.as_str() {
                "BASE64" => lenient_base64(&stored),
                "QUOTED-PRINTABLE" => lenient_qp(&stored),
                _ => stored,
            };
            let (status, headers, bytes) =
                get_bytes(&web, &format!("/mail/box/{inbox}/{uid}/part/{n}")).await;
            assert_eq!(status, StatusCode::OK, "{}: part {n}", file.display());
            assert_eq!(
                headers["content-security-policy"],
                "default-src 'none'; sandbox"
            );
            // The IMAP test client reads responses as UTF-8 (lossily): compare the same way.
            assert_eq!(
                String::from_utf8_lossy(&bytes),
                String::from_utf8_lossy(&expected),
                "{}: part {n}",
                file.display()
            );
            checked_parts += 1;
        }
    }
    assert!(checked_parts > 20, "{checked_parts} parts checked");
    assert!(attachments_seen >= 5, "{attachments_seen} attachments");
    t.running.shutdown().await;
}

/// The notice about remote images follows what the sanitizer blocked; plain-text links are
/// clickable; names with bidi controls are neutralised and isolated; the download keeps its
/// own policy while pages get the site-wide one; the favicon answers.
#[tokio::test]
async fn reading_page_shows_what_is_there() {
    let (t, alice) = server().await;
    let store = t.running.store.clone();
    let inbox = store
        .mailbox(alice.id, "INBOX")
        .await
        .unwrap()
        .unwrap()
        .id();
    let mut web = Browser::new(&t);
    web.sign_in_at("/mail", "alice@localhost", "secret").await;

    // Remote image only inside script text: removed with the script, so no notice.
    let scripted = deliver(
        &store,
        &alice,
        b"From: a@example.net\r\nSubject: scripted\r\nContent-Type: text/html\r\n\r\n\
          <p>hello</p><script>document.write(\"<img src='http://tracker.example/a.gif'>\")</script>\r\n",
    )
    .await;
    let page = web.get(&format!("/mail/box/{inbox}/{scripted}")).await;
    assert!(page.body.contains("id=\"html-body\""), "{}", page.body);
    assert!(!page.body.contains("images-blocked"), "{}", page.body);
    // A real one: the notice, and "Show images" shows it.
    let remote = deliver(
        &store,
        &alice,
        b"From: a@example.net\r\nSubject: remote\r\nContent-Type: text/html\r\n\r\n\
          <p>hello</p><IMG SRC=\"https://cdn.example/a.png\">\r\n",
    )
    .await;
    let page = web.get(&format!("/mail/box/{inbox}/{remote}")).await;
    assert!(page.body.contains("id=\"images-blocked\""), "{}", page.body);
    let shown = web
        .get(&format!("/mail/box/{inbox}/{remote}/body?images=1"))
        .await;
    assert!(shown.body.contains("https://cdn.example/a.png"));
    let page = web
        .get(&format!("/mail/box/{inbox}/{remote}?images=1"))
        .await;
    assert!(!page.body.contains("id=\"images-blocked\""));

    // Plain text with links, a sender and an attachment whose names carry U+202E.
    let plain = deliver(
        &store,
        &alice,
        "From: =?utf-8?q?Eve_=E2=80=AErednes?= <eve@example.net>\r\nSubject: bills\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nSee https://example.org/a?b=1&c=2. Or <mailto:x@example.org>, \
         and \"https://e.example/\"onmouseover=alert(1)\r\n--b\r\n\
         Content-Type: application/pdf\r\n\
         Content-Disposition: attachment; filename*=UTF-8''invoice%E2%80%AEfdp.exe\r\n\
         Content-Transfer-Encoding: base64\r\n\r\nJVBERi0x\r\n--b--\r\n"
            .as_bytes(),
    )
    .await;
    let page = web.get(&format!("/mail/box/{inbox}/{plain}")).await;
    let b = &page.body;
    assert!(
        b.contains("<a href=\"https://example.org/a?b=1&amp;c=2\" target=\"_blank\" rel=\"noopener noreferrer\">https://example.org/a?b=1&amp;c=2</a>."),
        "{b}"
    );
    assert!(
        b.contains("&lt;<a href=\"mailto:x@example.org\" target=\"_blank\" rel=\"noopener noreferrer\">mailto:x@example.org</a>&gt;,"),
        "{b}"
    );
    assert!(b.contains("href=\"https://e.example/\""), "{b}");
    assert!(!b.contains("\"onmouseover"), "{b}");
    assert!(!b.contains('\u{202E}'), "no override reaches the page: {b}");
    assert!(
        b.contains("<bdi>invoice\u{FFFD}fdp.exe</bdi>"),
        "the name is isolated: {b}"
    );
    assert!(
        b.contains("<bdi>Eve \u{FFFD}rednes &#60;eve@example.net&#62;</bdi>"),
        "{b}"
    );
    // The list row too (search results use the same rows).
    let list = web.get(&format!("/mail/box/{inbox}")).await;
    assert!(
        list.body.contains(
            "<span class=\"from\"><bdi>Eve \u{FFFD}rednes &#60;eve@example.net&#62;</bdi></span>"
        ),
        "{}",
        list.body
    );
    assert!(!list.body.contains('\u{202E}'));
    // Pages get the site-wide policy; the download and the frame keep their own.
    let csp =
        |h: &axum::http::HeaderMap| h["content-security-policy"].to_str().unwrap().to_string();
    assert!(
        csp(&page.headers).starts_with("default-src 'self'"),
        "{}",
        csp(&page.headers)
    );
    let (status, headers, bytes) =
        get_bytes(&web, &format!("/mail/box/{inbox}/{plain}/part/2")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, b"%PDF-1");
    assert_eq!(csp(&headers), "default-src 'none'; sandbox");
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.contains("filename*=UTF-8''invoice%EF%BF%BDfdp.exe")
            || disposition.contains("invoice"),
        "{disposition}"
    );
    let (_, headers, _) = get_bytes(&web, &format!("/mail/box/{inbox}/{remote}/body")).await;
    assert!(
        csp(&headers).starts_with("default-src 'none'; style-src 'unsafe-inline'"),
        "{}",
        csp(&headers)
    );
    let (_, headers, _) = get_bytes(&web, &format!("/mail/box/{inbox}/{plain}/raw")).await;
    assert_eq!(csp(&headers), "default-src 'none'; sandbox");
    // Part numbers that are not: 404, never a panic or another part.
    for bad in ["0", "2.", "x", "1..1", "99", "1.1.1.1", "%2e%2e"] {
        let (status, _, _) =
            get_bytes(&web, &format!("/mail/box/{inbox}/{plain}/part/{bad}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
    }

    // The favicon, linked from every page.
    assert!(
        page.body
            .contains("<link rel=\"icon\" href=\"/static/favicon.svg\"")
    );
    for path in ["/favicon.ico", "/static/favicon.svg"] {
        let (status, headers, bytes) = get_bytes(&web, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers["content-type"], "image/svg+xml", "{path}");
        assert!(bytes.starts_with(b"<svg"), "{path}");
    }
    t.running.shutdown().await;
}

/// A form error names what was wrong once (it read `"x": "x" is not an address` before), in
/// the webmail's compose form and in the admin panel; admin pages keep the site-wide policy.
#[tokio::test]
async fn form_errors_say_it_once() {
    let (t, _) = server().await;
    let mut web = Browser::new(&t);
    web.sign_in_at("/mail", "alice@localhost", "secret").await;
    let csrf = web.csrf_of("/mail/settings").await;
    for (to, quoted) in [
        ("not an address", "&#34;not an address&#34;"),
        ("Bob <bob@@x>", "&#34;bob@@x&#34;"),
    ] {
        let page = web
            .post_multipart(
                "/mail/send",
                &[
                    ("csrf", &csrf),
                    ("to", to),
                    ("subject", "x"),
                    ("body", "x"),
                    ("action", "send"),
                ],
                &[],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
        let error = page
            .body
            .split("id=\"to-error\"")
            .nth(1)
            .and_then(|s| s.split("</").next())
            .unwrap_or_default()
            .to_string();
        assert_eq!(error.matches(quoted).count(), 1, "{error}");
    }

    let login = t.running.first_login.clone().expect("first login");
    let mut admin = Browser::new(&t);
    admin.sign_in(&login.address, &login.password).await;
    let csrf = admin.csrf().await;
    let page = admin
        .post(
            "/admin/accounts",
            &[
                ("csrf", &csrf),
                ("address", "not an address"),
                ("password", ""),
            ],
        )
        .await;
    assert_eq!(
        page.body.matches("&#34;not an address&#34;").count(),
        1,
        "{}",
        page.body
    );
    let (_, headers, _) = get_bytes(&admin, "/admin/accounts").await;
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'self'")
    );
    t.running.shutdown().await;
}
