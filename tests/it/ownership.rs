//! Ownership through the web: a signed-in account reaches none of another account's mail by
//! any webmail address, and a signed-in user who is not an administrator reaches no admin
//! page. Every route of `web/mail/mod.rs` and `web/admin/mod.rs` is tried here, GET and POST;
//! `every_route_is_tried` reads the two routers' source and fails when one has a route (or a
//! method) that the tables below do not try, so a new page cannot miss the check.

use axum::http::StatusCode;
use mailroom::store::{Delivery, FlagState, Mailbox, Store, Target};

use crate::harness::{self, TestServer};
use crate::web_client::Browser;

const MAIL_ROUTER: &str = include_str!("../../src/web/mail/mod.rs");
const ADMIN_ROUTER: &str = include_str!("../../src/web/admin/mod.rs");

/// What one request is expected to get.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Refused (404 in the webmail, [`ADMIN_REFUSAL`] in the admin panel), and nothing of
    /// the other account's.
    Refused,
    /// The reader's own page or action (no id of the other account is in it): this status,
    /// and nothing of the other account's.
    Own(StatusCode),
}

/// One request: the route as the router writes it, the address with placeholders
/// (`{a_box}`, `{a_folder}`, `{a_uid}`, `{a_session}` (a web session's public id) are
/// Alice's; `{b_box}`, `{b_uid}` Bob's; `{csrf}` is
/// Bob's token), the form fields, and whether the form is multipart.
struct Case {
    method: &'static str,
    route: &'static str,
    path: &'static str,
    form: &'static [(&'static str, &'static str)],
    multipart: bool,
    expect: Expect,
}

const fn get(route: &'static str, path: &'static str, expect: Expect) -> Case {
    Case {
        method: "GET",
        route,
        path,
        form: &[],
        multipart: false,
        expect,
    }
}

const fn post(
    route: &'static str,
    path: &'static str,
    form: &'static [(&'static str, &'static str)],
    expect: Expect,
) -> Case {
    Case {
        method: "POST",
        route,
        path,
        form,
        multipart: false,
        expect,
    }
}

const fn send(form: &'static [(&'static str, &'static str)], expect: Expect) -> Case {
    Case {
        method: "POST",
        route: "/mail/send",
        path: "/mail/send",
        form,
        multipart: true,
        expect,
    }
}

const REFUSED: Expect = Expect::Refused;
const OK: Expect = Expect::Own(StatusCode::OK);
const REDIRECT: Expect = Expect::Own(StatusCode::SEE_OTHER);

/// Bob (signed in) against Alice's mailboxes and messages.
const MAIL_CASES: &[Case] = &[
    get("/mail", "/mail", REDIRECT),
    get("/mail/", "/mail/", REDIRECT),
    get("/mail/box/{id}", "/mail/box/{a_box}", REFUSED),
    get("/mail/box/{id}", "/mail/box/{a_box}?page=2", REFUSED),
    get("/mail/box/{id}", "/mail/box/{a_folder}", REFUSED),
    get("/mail/box/{id}/{uid}", "/mail/box/{a_box}/{a_uid}", REFUSED),
    get(
        "/mail/box/{id}/thread/{uid}",
        "/mail/box/{a_box}/thread/{a_uid}",
        REFUSED,
    ),
    get(
        "/mail/box/{id}/{uid}",
        "/mail/box/{a_box}/{a_uid}?images=1",
        REFUSED,
    ),
    get(
        "/mail/box/{id}/{uid}/raw",
        "/mail/box/{a_box}/{a_uid}/raw",
        REFUSED,
    ),
    get(
        "/mail/box/{id}/{uid}/part/{n}",
        "/mail/box/{a_box}/{a_uid}/part/1",
        REFUSED,
    ),
    get(
        "/mail/box/{id}/{uid}/body",
        "/mail/box/{a_box}/{a_uid}/body",
        REFUSED,
    ),
    get(
        "/mail/box/{id}/{uid}/body",
        "/mail/box/{a_box}/{a_uid}/body?images=1",
        REFUSED,
    ),
    post(
        "/mail/box/{id}/empty",
        "/mail/box/{a_box}/empty",
        &[("csrf", "{csrf}")],
        REFUSED,
    ),
    // A token is signed for its account: a made-up one undoes nothing (400).
    post(
        "/mail/undo",
        "/mail/undo",
        &[("csrf", "{csrf}"), ("token", "{a_box}.{a_uid}")],
        Expect::Own(StatusCode::BAD_REQUEST),
    ),
    post(
        "/mail/box/{id}/act",
        "/mail/box/{a_box}/act",
        &[("csrf", "{csrf}"), ("action", "read"), ("uid", "{a_uid}")],
        REFUSED,
    ),
    post(
        "/mail/box/{id}/act",
        "/mail/box/{a_box}/act",
        &[("csrf", "{csrf}"), ("action", "unread"), ("uid", "{a_uid}")],
        REFUSED,
    ),
    post(
        "/mail/box/{id}/act",
        "/mail/box/{a_box}/act",
        &[("csrf", "{csrf}"), ("action", "flag"), ("uid", "{a_uid}")],
        REFUSED,
    ),
    post(
        "/mail/box/{id}/act",
        "/mail/box/{a_box}/act",
        &[("csrf", "{csrf}"), ("action", "unflag"), ("uid", "{a_uid}")],
        REFUSED,
    ),
    post(
        "/mail/box/{id}/act",
        "/mail/box/{a_box}/act",
        &[("csrf", "{csrf}"), ("action", "delete"), ("uid", "{a_uid}")],
        REFUSED,
    ),
    post(
        "/mail/box/{id}/act",
        "/mail/box/{a_box}/act",
        &[
            ("csrf", "{csrf}"),
            ("action", "move"),
            ("target", "{b_box}"),
            ("uid", "{a_uid}"),
        ],
        REFUSED,
    ),
    post(
        "/mail/box/{id}/act",
        "/mail/box/{a_box}/act",
        &[("csrf", "{csrf}"), ("action", "spam"), ("uid", "{a_uid}")],
        REFUSED,
    ),
    post(
        "/mail/box/{id}/act",
        "/mail/box/{b_box}/act",
        &[
            ("csrf", "{csrf}"),
            ("action", "spam"),
            ("msg", "{a_box}:{a_uid}"),
        ],
        REFUSED,
    ),
    post(
        "/mail/box/{id}/act",
        "/mail/box/{b_box}/act",
        &[
            ("csrf", "{csrf}"),
            ("action", "notspam"),
            ("msg", "{a_folder}:{a_uid}"),
        ],
        REFUSED,
    ),
    // Bob's own folder in the address, Alice's message in the form.
    post(
        "/mail/box/{id}/act",
        "/mail/box/{b_box}/act",
        &[
            ("csrf", "{csrf}"),
            ("action", "delete"),
            ("msg", "{a_box}:{a_uid}"),
        ],
        REFUSED,
    ),
    post(
        "/mail/box/{id}/act",
        "/mail/box/{b_box}/act",
        &[
            ("csrf", "{csrf}"),
            ("action", "read"),
            ("msg", "{a_box}:{a_uid}"),
        ],
        REFUSED,
    ),
    post(
        "/mail/box/{id}/act",
        "/mail/box/{b_box}/act",
        &[
            ("csrf", "{csrf}"),
            ("action", "move"),
            ("target", "{b_box}"),
            ("msg", "{a_folder}:{a_uid}"),
        ],
        REFUSED,
    ),
    // Bob's own message moved into Alice's folder.
    post(
        "/mail/box/{id}/act",
        "/mail/box/{b_box}/act",
        &[
            ("csrf", "{csrf}"),
            ("action", "move"),
            ("target", "{a_folder}"),
            ("uid", "{b_uid}"),
        ],
        REFUSED,
    ),
    get("/mail/search", "/mail/search?q=&folder={a_box}", REFUSED),
    get(
        "/mail/search",
        "/mail/search?q=pomegranate&folder={a_box}",
        REFUSED,
    ),
    get("/mail/search", "/mail/search?q=pomegranate", OK),
    get(
        "/mail/search",
        "/mail/search?subject=pomegranate&folder=",
        OK,
    ),
    get(
        "/mail/compose",
        "/mail/compose?reply={a_box}:{a_uid}",
        REFUSED,
    ),
    get(
        "/mail/compose",
        "/mail/compose?reply={a_box}:{a_uid}&all=1",
        REFUSED,
    ),
    get(
        "/mail/compose",
        "/mail/compose?forward={a_box}:{a_uid}",
        REFUSED,
    ),
    get("/mail/compose", "/mail/compose", OK),
    send(
        &[
            ("csrf", "{csrf}"),
            ("action", "send"),
            ("to", "bob@localhost"),
            ("subject", "fw"),
            ("body", "x"),
            ("forward_of", "{a_box}:{a_uid}"),
        ],
        REFUSED,
    ),
    send(
        &[
            ("csrf", "{csrf}"),
            ("action", "draft"),
            ("to", "bob@localhost"),
            ("subject", "fw"),
            ("body", "x"),
            ("forward_of", "{a_box}:{a_uid}"),
        ],
        REFUSED,
    ),
    // A reply naming Alice's message is sent (it is Bob's own mail), but Alice's message is
    // not marked answered (checked with the rest of her mail at the end).
    send(
        &[
            ("csrf", "{csrf}"),
            ("action", "send"),
            ("to", "bob@localhost"),
            ("subject", "re"),
            ("body", "x"),
            ("reply_of", "{a_box}:{a_uid}"),
        ],
        REDIRECT,
    ),
    // Compose (issue 24): drafts, autosave, and the address book.
    get(
        "/mail/compose",
        "/mail/compose?draft={a_box}:{a_uid}",
        REFUSED,
    ),
    send(
        &[
            ("csrf", "{csrf}"),
            ("action", "send"),
            ("to", "bob@localhost"),
            ("subject", "kept"),
            ("body", "x"),
            ("draft", "{a_box}:{a_uid}"),
            ("keep", "0"),
        ],
        REFUSED,
    ),
    // Naming Alice's message as the draft replaced: Bob's message is sent, hers stays.
    send(
        &[
            ("csrf", "{csrf}"),
            ("action", "send"),
            ("to", "bob@localhost"),
            ("subject", "replaced"),
            ("body", "x"),
            ("draft", "{a_box}:{a_uid}"),
        ],
        REDIRECT,
    ),
    Case {
        method: "POST",
        route: "/mail/compose/autosave",
        path: "/mail/compose/autosave",
        form: &[
            ("csrf", "{csrf}"),
            ("subject", "autosaved"),
            ("draft", "{a_box}:{a_uid}"),
        ],
        multipart: true,
        expect: OK,
    },
    Case {
        method: "POST",
        route: "/mail/compose/autosave",
        path: "/mail/compose/autosave",
        form: &[
            ("csrf", "{csrf}"),
            ("subject", "autosaved"),
            ("forward_of", "{a_box}:{a_uid}"),
        ],
        multipart: true,
        expect: REFUSED,
    },
    get("/mail/contacts", "/mail/contacts", OK),
    get("/mail/contacts", "/mail/contacts?q=carol", OK),
    get("/mail/contacts/suggest", "/mail/contacts/suggest?q=car", OK),
    get(
        "/mail/contacts/suggest",
        "/mail/contacts/suggest?q=alices",
        OK,
    ),
    get("/mail/contacts/export", "/mail/contacts/export", OK),
    get("/mail/contacts/{id}", "/mail/contacts/{a_contact}", REFUSED),
    post(
        "/mail/contacts",
        "/mail/contacts",
        &[
            ("csrf", "{csrf}"),
            ("name", "Bobs friend"),
            ("emails", "friend@example.org"),
        ],
        REDIRECT,
    ),
    post(
        "/mail/contacts/{id}",
        "/mail/contacts/{a_contact}",
        &[
            ("csrf", "{csrf}"),
            ("name", "Stolen"),
            ("emails", "stolen@example.org"),
        ],
        REFUSED,
    ),
    post(
        "/mail/contacts/{id}/delete",
        "/mail/contacts/{a_contact}/delete",
        &[("csrf", "{csrf}")],
        REFUSED,
    ),
    // No file: the form again (Bob's own page).
    Case {
        method: "POST",
        route: "/mail/contacts/import",
        path: "/mail/contacts/import",
        form: &[("csrf", "{csrf}")],
        multipart: true,
        expect: Expect::Own(StatusCode::UNPROCESSABLE_ENTITY),
    },
    get("/mail/folders", "/mail/folders", OK),
    post(
        "/mail/folders",
        "/mail/folders",
        &[("csrf", "{csrf}"), ("name", "Bobs")],
        REDIRECT,
    ),
    post(
        "/mail/folders/{id}/rename",
        "/mail/folders/{a_folder}/rename",
        &[("csrf", "{csrf}"), ("name", "Stolen")],
        REFUSED,
    ),
    post(
        "/mail/folders/{id}/rename",
        "/mail/folders/{a_box}/rename",
        &[("csrf", "{csrf}"), ("name", "Stolen")],
        REFUSED,
    ),
    post(
        "/mail/folders/{id}/delete",
        "/mail/folders/{a_folder}/delete",
        &[("csrf", "{csrf}")],
        REFUSED,
    ),
    get("/mail/settings", "/mail/settings", OK),
    get(
        "/mail/settings/mobileconfig",
        "/mail/settings/mobileconfig",
        OK,
    ),
    // With an app password of Bob's own in it (Bob has no second factor).
    post(
        "/mail/settings/mobileconfig",
        "/mail/settings/mobileconfig",
        &[("csrf", "{csrf}")],
        OK,
    ),
    get(
        "/mail/settings/app-passwords",
        "/mail/settings/app-passwords",
        OK,
    ),
    post(
        "/mail/settings/app-passwords",
        "/mail/settings/app-passwords",
        &[("csrf", "{csrf}"), ("name", "Bob's phone"), ("imap", "1")],
        OK,
    ),
    post(
        "/mail/settings/app-passwords/{id}/revoke",
        "/mail/settings/app-passwords/{a_app}/revoke",
        &[("csrf", "{csrf}")],
        REFUSED,
    ),
    post(
        "/mail/settings/profile",
        "/mail/settings/profile",
        &[
            ("csrf", "{csrf}"),
            ("display_name", "Bob B"),
            ("signature", ""),
        ],
        REDIRECT,
    ),
    post(
        "/mail/settings/password",
        "/mail/settings/password",
        &[
            ("csrf", "{csrf}"),
            ("current", "wrong"),
            ("new", "x"),
            ("repeat", "y"),
        ],
        Expect::Own(StatusCode::UNPROCESSABLE_ENTITY),
    ),
    get("/mail/settings/two-factor", "/mail/settings/two-factor", OK),
    post(
        "/mail/settings/two-factor/totp",
        "/mail/settings/two-factor/totp",
        &[("csrf", "{csrf}")],
        REDIRECT,
    ),
    post(
        "/mail/settings/two-factor/totp/confirm",
        "/mail/settings/two-factor/totp/confirm",
        &[("csrf", "{csrf}"), ("code", "not a code")],
        Expect::Own(StatusCode::UNPROCESSABLE_ENTITY),
    ),
    post(
        "/mail/settings/two-factor/totp/remove",
        "/mail/settings/two-factor/totp/remove",
        &[("csrf", "{csrf}"), ("password", "wrong")],
        Expect::Own(StatusCode::UNPROCESSABLE_ENTITY),
    ),
    post(
        "/mail/settings/two-factor/recovery",
        "/mail/settings/two-factor/recovery",
        &[("csrf", "{csrf}")],
        REDIRECT,
    ),
    post(
        "/mail/settings/two-factor/passkey/options",
        "/mail/settings/two-factor/passkey/options",
        &[("csrf", "{csrf}")],
        OK,
    ),
    post(
        "/mail/settings/two-factor/passkey",
        "/mail/settings/two-factor/passkey",
        &[("csrf", "{csrf}"), ("token", "not a registration")],
        Expect::Own(StatusCode::FORBIDDEN),
    ),
    // With Bob's right password: refused for being Alice's passkey, not for the password.
    post(
        "/mail/settings/two-factor/passkey/{id}/remove",
        "/mail/settings/two-factor/passkey/{a_passkey}/remove",
        &[("csrf", "{csrf}"), ("password", "secret")],
        REFUSED,
    ),
    get("/mail/settings/security", "/mail/settings/security", OK),
    // Spam settings are the reader's own: Alice's list entry is not Bob's to remove.
    get("/mail/settings/spam", "/mail/settings/spam", OK),
    post(
        "/mail/settings/spam/threshold",
        "/mail/settings/spam/threshold",
        &[("csrf", "{csrf}"), ("threshold", "8")],
        REDIRECT,
    ),
    post(
        "/mail/settings/spam/list",
        "/mail/settings/spam/list",
        &[
            ("csrf", "{csrf}"),
            ("entry", "bobs-friend.example"),
            ("list", "allow"),
        ],
        REDIRECT,
    ),
    post(
        "/mail/settings/spam/list/remove",
        "/mail/settings/spam/list/remove",
        &[("csrf", "{csrf}"), ("entry", "alices-friend.example")],
        Expect::Own(StatusCode::UNPROCESSABLE_ENTITY),
    ),
    // Rules are the reader's own: the filter numbers and script names in their addresses are
    // looked up among Bob's (who has none yet), never Alice's.
    get("/mail/settings/rules", "/mail/settings/rules", OK),
    get(
        "/mail/settings/rules/filters/{n}",
        "/mail/settings/rules/filters/0",
        REFUSED,
    ),
    post(
        "/mail/settings/rules/filters/{n}",
        "/mail/settings/rules/filters/0",
        &[
            ("csrf", "{csrf}"),
            ("field", "subject"),
            ("op", "contains"),
            ("value", "x"),
            ("action", "delete"),
        ],
        REFUSED,
    ),
    post(
        "/mail/settings/rules/filters/{n}/move",
        "/mail/settings/rules/filters/0/move",
        &[("csrf", "{csrf}"), ("to", "down")],
        REFUSED,
    ),
    post(
        "/mail/settings/rules/filters/{n}/toggle",
        "/mail/settings/rules/filters/0/toggle",
        &[("csrf", "{csrf}")],
        REFUSED,
    ),
    post(
        "/mail/settings/rules/filters/{n}/delete",
        "/mail/settings/rules/filters/0/delete",
        &[("csrf", "{csrf}")],
        REFUSED,
    ),
    post(
        "/mail/settings/rules/script",
        "/mail/settings/rules/script",
        &[
            ("csrf", "{csrf}"),
            ("name", "alices"),
            ("source", "discard;"),
        ],
        REFUSED,
    ),
    get(
        "/mail/settings/rules/filters/new",
        "/mail/settings/rules/filters/new",
        OK,
    ),
    post(
        "/mail/settings/rules/filters/new",
        "/mail/settings/rules/filters/new",
        &[
            ("csrf", "{csrf}"),
            ("field", "subject"),
            ("op", "contains"),
            ("value", "bobs"),
            ("action", "read"),
            ("enabled", "1"),
        ],
        REDIRECT,
    ),
    get(
        "/mail/settings/rules/vacation",
        "/mail/settings/rules/vacation",
        OK,
    ),
    post(
        "/mail/settings/rules/vacation",
        "/mail/settings/rules/vacation",
        &[("csrf", "{csrf}"), ("message", "Away"), ("days", "7")],
        REDIRECT,
    ),
    get(
        "/mail/settings/rules/forwarding",
        "/mail/settings/rules/forwarding",
        OK,
    ),
    post(
        "/mail/settings/rules/forwarding",
        "/mail/settings/rules/forwarding",
        &[
            ("csrf", "{csrf}"),
            ("address", "bob@localhost"),
            ("keep", "1"),
        ],
        REDIRECT,
    ),
    post(
        "/mail/settings/rules/use",
        "/mail/settings/rules/use",
        &[("csrf", "{csrf}")],
        REDIRECT,
    ),
    post(
        "/mail/settings/rules/start-over",
        "/mail/settings/rules/start-over",
        &[("csrf", "{csrf}")],
        REDIRECT,
    ),
    post(
        "/mail/settings/rules/error/dismiss",
        "/mail/settings/rules/error/dismiss",
        &[("csrf", "{csrf}")],
        REDIRECT,
    ),
    post(
        "/mail/settings/security/sign-out",
        "/mail/settings/security/sign-out",
        &[("csrf", "{csrf}"), ("session", "{a_session}")],
        REFUSED,
    ),
    post(
        "/mail/settings/security/sign-out-others",
        "/mail/settings/security/sign-out-others",
        &[("csrf", "{csrf}")],
        REDIRECT,
    ),
];

/// Routes of the webmail not tried above, and why.
const MAIL_EXEMPT: &[(&str, &str, &str)] = &[
    ("GET", "/mail/login", "before a session: no account's mail"),
    ("POST", "/mail/login", "before a session: no account's mail"),
    ("POST", "/mail/logout", "ends the reader's own session"),
    (
        "GET",
        "/mail/events",
        "an endless stream, filtered by account: webmail::live_events_announce_new_mail \
         checks that another account's mail is not announced",
    ),
];

/// Bob, who is not an administrator, against every admin page and action.
const ADMIN_CASES: &[Case] = &[
    get("/admin", "/admin", REFUSED),
    get("/admin/", "/admin/", REFUSED),
    get("/admin/domains", "/admin/domains", REFUSED),
    post(
        "/admin/domains",
        "/admin/domains",
        &[("csrf", "{csrf}"), ("name", "evil.example")],
        REFUSED,
    ),
    get("/admin/domains/{name}", "/admin/domains/localhost", REFUSED),
    get(
        "/admin/domains/{name}/remove",
        "/admin/domains/localhost/remove",
        REFUSED,
    ),
    post(
        "/admin/domains/{name}/remove",
        "/admin/domains/localhost/remove",
        &[("csrf", "{csrf}")],
        REFUSED,
    ),
    get("/admin/accounts", "/admin/accounts", REFUSED),
    post(
        "/admin/accounts",
        "/admin/accounts",
        &[
            ("csrf", "{csrf}"),
            ("address", "evil@localhost"),
            ("password", "long enough password"),
            ("quota", ""),
            ("admin", "on"),
        ],
        REFUSED,
    ),
    get("/admin/accounts/new", "/admin/accounts/new", REFUSED),
    get(
        "/admin/accounts/{address}",
        "/admin/accounts/alice@localhost",
        REFUSED,
    ),
    post(
        "/admin/accounts/{address}/quota",
        "/admin/accounts/alice@localhost/quota",
        &[("csrf", "{csrf}"), ("quota", "1")],
        REFUSED,
    ),
    post(
        "/admin/accounts/{address}/password",
        "/admin/accounts/alice@localhost/password",
        &[("csrf", "{csrf}"), ("password", "a new long password")],
        REFUSED,
    ),
    post(
        "/admin/accounts/{address}/state",
        "/admin/accounts/alice@localhost/state",
        &[("csrf", "{csrf}"), ("action", "disable")],
        REFUSED,
    ),
    post(
        "/admin/accounts/{address}/state",
        "/admin/accounts/bob@localhost/state",
        &[("csrf", "{csrf}"), ("action", "make-admin")],
        REFUSED,
    ),
    post(
        "/admin/accounts/{address}/second-factor/reset",
        "/admin/accounts/alice@localhost/second-factor/reset",
        &[("csrf", "{csrf}")],
        REFUSED,
    ),
    post(
        "/admin/domains/{name}/two-factor",
        "/admin/domains/localhost/two-factor",
        &[("csrf", "{csrf}"), ("require", "1")],
        REFUSED,
    ),
    post(
        "/admin/two-factor",
        "/admin/two-factor",
        &[("csrf", "{csrf}"), ("require", "1")],
        REFUSED,
    ),
    get(
        "/admin/accounts/{address}/remove",
        "/admin/accounts/alice@localhost/remove",
        REFUSED,
    ),
    post(
        "/admin/accounts/{address}/remove",
        "/admin/accounts/alice@localhost/remove",
        &[("csrf", "{csrf}")],
        REFUSED,
    ),
    get("/admin/aliases", "/admin/aliases", REFUSED),
    post(
        "/admin/aliases",
        "/admin/aliases",
        &[
            ("csrf", "{csrf}"),
            ("source", "steal@localhost"),
            ("targets", "bob@localhost"),
        ],
        REFUSED,
    ),
    post(
        "/admin/aliases/remove",
        "/admin/aliases/remove",
        &[("csrf", "{csrf}"), ("source", "team@localhost")],
        REFUSED,
    ),
    get("/admin/queue", "/admin/queue", REFUSED),
    get("/admin/spam", "/admin/spam", REFUSED),
    post(
        "/admin/spam/domains/{name}",
        "/admin/spam/domains/localhost",
        &[("csrf", "{csrf}"), ("junk", "1")],
        REFUSED,
    ),
    post(
        "/admin/spam/zones",
        "/admin/spam/zones",
        &[
            ("csrf", "{csrf}"),
            ("zone", "bl.example.org"),
            ("weight", "9"),
        ],
        REFUSED,
    ),
    post(
        "/admin/spam/zones/remove",
        "/admin/spam/zones/remove",
        &[("csrf", "{csrf}"), ("zone", "zen.spamhaus.org")],
        REFUSED,
    ),
    post(
        "/admin/spam/greylisting",
        "/admin/spam/greylisting",
        &[("csrf", "{csrf}"), ("enabled", "1"), ("delay", "60")],
        REFUSED,
    ),
    post(
        "/admin/domains/{name}/forwarding",
        "/admin/domains/localhost/forwarding",
        &[("csrf", "{csrf}"), ("allow", "0")],
        REFUSED,
    ),
    post(
        "/admin/spam/refused/dismiss",
        "/admin/spam/refused/dismiss",
        &[("csrf", "{csrf}")],
        REFUSED,
    ),
    get("/admin/audit", "/admin/audit", REFUSED),
    get("/admin/audit", "/admin/audit?q=alice&page=2", REFUSED),
    get("/admin/reports", "/admin/reports", REFUSED),
    get("/admin/reports", "/admin/reports?page=3", REFUSED),
    get("/admin/check", "/admin/check", REFUSED),
    get("/admin/deliverability", "/admin/deliverability", REFUSED),
    post(
        "/admin/deliverability/required",
        "/admin/deliverability/required",
        &[
            ("csrf", "{csrf}"),
            ("local", "postmaster"),
            ("target", "evil@elsewhere.example"),
        ],
        REFUSED,
    ),
    post(
        "/admin/deliverability/mta-sts/{name}",
        "/admin/deliverability/mta-sts/localhost",
        &[("csrf", "{csrf}"), ("mode", "enforce")],
        REFUSED,
    ),
    post(
        "/admin/deliverability/smarthost",
        "/admin/deliverability/smarthost",
        &[
            ("csrf", "{csrf}"),
            ("host", "evil.example"),
            ("port", "465"),
            ("tls", "implicit"),
            ("username", "u"),
            ("password", "p"),
        ],
        REFUSED,
    ),
    post(
        "/admin/deliverability/smarthost/clear",
        "/admin/deliverability/smarthost/clear",
        &[("csrf", "{csrf}")],
        REFUSED,
    ),
    post(
        "/admin/queue/{id}/retry",
        "/admin/queue/{queue_id}/retry",
        &[("csrf", "{csrf}")],
        REFUSED,
    ),
    get(
        "/admin/queue/{id}/drop",
        "/admin/queue/{queue_id}/drop",
        REFUSED,
    ),
    post(
        "/admin/queue/{id}/drop",
        "/admin/queue/{queue_id}/drop",
        &[("csrf", "{csrf}")],
        REFUSED,
    ),
];

/// Routes of the admin panel not tried above, and why.
const ADMIN_EXEMPT: &[(&str, &str, &str)] = &[
    ("GET", "/admin/login", "before a session: shows nothing"),
    (
        "POST",
        "/admin/login",
        "signs in; the pages after it are tried",
    ),
    ("POST", "/admin/logout", "ends the user's own session"),
];

/// The admin extractor (`web/admin/mod.rs` `Admin`) answers a signed-in user without the
/// admin flag 403 Forbidden (not 404: the panel's existence is no secret).
const ADMIN_REFUSAL: StatusCode = StatusCode::FORBIDDEN;

/// A route as (method, path).
type Route = (String, String);

/// The routes of a router's source as (method, path): every `.route("path", …)` with the
/// method routers (`get(`, `post(`, …) named in its arguments.
fn routes(source: &str) -> Vec<Route> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let open = rest.find('"').expect("a route path");
        let close = open + 1 + rest[open + 1..].find('"').expect("the path's end");
        let path = rest[open + 1..close].to_string();
        // The arguments run to the parenthesis that closes `.route(`.
        let mut depth = 1;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let args = &rest[close..end];
        let mut methods = 0;
        for method in [
            "get", "post", "put", "patch", "delete", "head", "options", "any",
        ] {
            let call = format!("{method}(");
            let named = args.match_indices(&call).any(|(i, _)| {
                !args[..i]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
            });
            if named {
                out.push((method.to_uppercase(), path.clone()));
                methods += 1;
            }
        }
        assert!(methods > 0, "no method found for route {path}");
        rest = &rest[end..];
    }
    out
}

/// The routes a router has that neither `cases` nor `exempt` name, and those they name that
/// the router no longer has.
fn coverage(
    source: &str,
    cases: &[Case],
    exempt: &[(&str, &str, &str)],
) -> (Vec<Route>, Vec<Route>) {
    let declared = routes(source);
    let mut tried: Vec<Route> = cases
        .iter()
        .map(|c| (c.method.to_string(), c.route.to_string()))
        .chain(
            exempt
                .iter()
                .map(|(m, r, _)| (m.to_string(), r.to_string())),
        )
        .collect();
    tried.sort();
    tried.dedup();
    let missing = declared
        .iter()
        .filter(|r| !tried.contains(r))
        .cloned()
        .collect();
    let stale = tried
        .iter()
        .filter(|r| !declared.contains(r))
        .cloned()
        .collect();
    (missing, stale)
}

#[test]
fn every_route_is_tried() {
    for (name, source, cases, exempt) in [
        ("web/mail/mod.rs", MAIL_ROUTER, MAIL_CASES, MAIL_EXEMPT),
        ("web/admin/mod.rs", ADMIN_ROUTER, ADMIN_CASES, ADMIN_EXEMPT),
    ] {
        assert!(routes(source).len() > 10, "{name}: routes not found");
        let (missing, stale) = coverage(source, cases, exempt);
        assert!(
            missing.is_empty(),
            "{name} has routes tests/it/ownership.rs does not try: {missing:?}"
        );
        assert!(
            stale.is_empty(),
            "tests/it/ownership.rs tries routes {name} no longer has: {stale:?}"
        );
    }
}

#[test]
fn the_route_reader_finds_methods_and_new_routes() {
    let source = r#"Router::new()
        .route("/a", get(x::page).post(x::act))
        .route(
            "/b/{id}",
            post(y).layer(Layer::overriding(header::X, HeaderValue::from_static("z"))),
        )
        .route("/c", get(c))"#;
    assert_eq!(
        routes(source),
        [
            ("GET".to_string(), "/a".to_string()),
            ("POST".into(), "/a".into()),
            ("POST".into(), "/b/{id}".into()),
            ("GET".into(), "/c".into()),
        ]
    );
    let cases = [get("/a", "/a", OK), post("/a", "/a", &[], OK)];
    let (missing, stale) = coverage(source, &cases, &[("GET", "/c", "why"), ("GET", "/d", "")]);
    assert_eq!(missing, [("POST".to_string(), "/b/{id}".to_string())]);
    assert_eq!(stale, [("GET".to_string(), "/d".to_string())]);
}

/// Everything of an account's mail that a request could change: its mailboxes and, per
/// mailbox, every message's UID, flags, keywords and MODSEQ.
async fn snapshot(store: &Store, account_id: i64) -> Vec<(Mailbox, Vec<FlagState>)> {
    let mut out = Vec::new();
    for m in store.mailboxes(account_id).await.unwrap() {
        let (states, _) = store.flag_snapshot(&m).await.unwrap();
        out.push((m, states));
    }
    out
}

fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut s = template.to_string();
    for (k, v) in values {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    s
}

async fn run(b: &mut Browser, case: &Case, values: &[(&str, String)], refusal: StatusCode) {
    let path = fill(case.path, values);
    let form: Vec<(String, String)> = case
        .form
        .iter()
        .map(|(k, v)| (k.to_string(), fill(v, values)))
        .collect();
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let page = match (case.method, case.multipart) {
        ("GET", _) => b.get(&path).await,
        ("POST", false) => b.post(&path, &form).await,
        ("POST", true) => b.post_multipart(&path, &form, &[]).await,
        (m, _) => panic!("no request for method {m}"),
    };
    let what = format!("{} {path} {:?}", case.method, case.form);
    match case.expect {
        Expect::Refused => assert_eq!(page.status, refusal, "{what}: {}", page.body),
        Expect::Own(status) => assert_eq!(page.status, status, "{what}: {}", page.body),
    }
    // Not the search word itself: the search form shows it back.
    for secret in [
        "Pomegranate plans",
        "Alices-folder",
        "Alices-phone",
        "alices-script",
        "alice@localhost",
        "carol@example",
    ] {
        assert!(!page.body.contains(secret), "{what} shows {secret}");
    }
}

async fn deliver(store: &Store, account_id: i64, raw: &str) -> u32 {
    store
        .deliver(
            Delivery {
                raw: raw.as_bytes(),
                internal_date: None,
            },
            &[Target::inbox(account_id)],
        )
        .await
        .unwrap()
        .delivered[0]
        .uid
}

/// Alice's mail (INBOX and a folder of her own, a message in each) and Bob signed in.
async fn alice_and_bob() -> (TestServer, Browser, Vec<(&'static str, String)>, i64) {
    let server = harness::start().await;
    let store = server.running.store.clone();
    let alice = harness::account(&store, "alice@localhost", 0).await;
    let bob = harness::account(&store, "bob@localhost", 0).await;
    let a_uid = deliver(
        &store,
        alice.id,
        "From: Carol <carol@example.net>\r\nSubject: Pomegranate plans\r\n\r\npomegranate\r\n",
    )
    .await;
    let a_box = store.mailbox(alice.id, "INBOX").await.unwrap().unwrap();
    let a_folder = store
        .create_mailbox(alice.id, "Alices-folder")
        .await
        .unwrap();
    store
        .copy_messages(&a_box, &[a_uid], &a_folder)
        .await
        .unwrap();
    let (a_app, _) = server
        .running
        .auth
        .create_app_password(alice.id, "Alices-phone", 1)
        .await
        .unwrap()
        .unwrap();
    let b_uid = deliver(&store, bob.id, "Subject: for bob\r\n\r\nhello bob\r\n").await;
    // A passkey of Alice's (its key is never used here).
    let a_passkey = store
        .add_passkey(mailroom::store::NewPasskey {
            account_id: alice.id,
            credential_id: b"alice-credential",
            public_key: b"not checked here",
            sign_count: 0,
            name: "Alice's laptop",
            user_handle: b"alice",
        })
        .await
        .unwrap();
    let b_box = store.mailbox(bob.id, "INBOX").await.unwrap().unwrap();
    store
        .set_spam_list_entry(alice.id, "alices-friend.example", true)
        .await
        .unwrap();
    // Alice's own Sieve script, which Bob's raw editor must not reach.
    let alices = "# alices-script\r\nkeep;\r\n";
    let compiled = mailroom::sieve::compile(alices).unwrap().to_stored();
    store
        .put_sieve(alice.id, "alices", alices, &compiled)
        .await
        .unwrap()
        .unwrap();
    store
        .create_session(alice.id, "192.0.2.7", "Alice's browser")
        .await
        .unwrap();
    let a_session = store.sessions_of(alice.id).await.unwrap()[0].id.clone();
    let a_contact = store
        .add_contact(
            alice.id,
            &mailroom::store::ContactFields {
                name: "Alices-friend Carol".into(),
                emails: vec!["carol@example.com".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut b = Browser::new(&server);
    let page = b.sign_in_at("/mail", "bob@localhost", "secret").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let csrf = b.csrf_of("/mail/settings").await;
    let values = vec![
        ("a_box", a_box.id().to_string()),
        ("a_folder", a_folder.id().to_string()),
        ("a_uid", a_uid.to_string()),
        ("b_box", b_box.id().to_string()),
        ("b_uid", b_uid.to_string()),
        ("a_passkey", a_passkey.to_string()),
        ("a_session", a_session),
        ("a_app", a_app.id.to_string()),
        ("a_contact", a_contact.to_string()),
        ("csrf", csrf),
    ];
    (server, b, values, alice.id)
}

#[tokio::test]
async fn no_webmail_address_reaches_another_accounts_mail() {
    let (server, mut bob, values, alice) = alice_and_bob().await;
    let store = server.running.store.clone();
    let before = snapshot(&store, alice).await;
    let alice_before = store.account(alice).await.unwrap().unwrap();
    let apps_before = store.app_passwords(alice).await.unwrap();
    let spam_before = (
        store.spam_list(alice).await.unwrap(),
        store.spam_policy(alice).await.unwrap(),
    );
    let contacts_before = store.all_contacts(alice).await.unwrap();
    for case in MAIL_CASES {
        run(&mut bob, case, &values, StatusCode::NOT_FOUND).await;
    }
    assert_eq!(store.all_contacts(alice).await.unwrap(), contacts_before);
    assert_eq!(
        (
            store.spam_list(alice).await.unwrap(),
            store.spam_policy(alice).await.unwrap()
        ),
        spam_before,
        "Alice's spam settings changed"
    );
    assert_eq!(store.app_passwords(alice).await.unwrap(), apps_before);
    assert_eq!(
        snapshot(&store, alice).await,
        before,
        "Alice's mail changed"
    );
    assert_eq!(store.account(alice).await.unwrap().unwrap(), alice_before);
    assert_eq!(
        store.passkeys(alice).await.unwrap().len(),
        1,
        "Alice's passkey"
    );
    assert_eq!(
        store.sessions_of(alice).await.unwrap().len(),
        1,
        "Bob's sign-out forms ended Alice's session"
    );
    server.running.shutdown().await;
}

#[tokio::test]
async fn no_admin_address_answers_a_user_who_is_not_an_administrator() {
    let (server, mut bob, mut values, alice) = alice_and_bob().await;
    let store = server.running.store.clone();
    store
        .add_alias("team@localhost", &["alice@localhost".to_string()])
        .await
        .unwrap();
    // From the null sender: the worker's failed attempt must not bounce into Alice's INBOX
    // while the test compares her mail.
    let queued = store
        .queue_add(
            "",
            &["someone@example.com".to_string()],
            b"Subject: out\r\n\r\nout\r\n",
        )
        .await
        .unwrap();
    values.push(("queue_id", queued.to_string()));
    let accounts = store.accounts(None).await.unwrap();
    let domains = store.domains().await.unwrap();
    let aliases = store.aliases(None).await.unwrap();
    let mail = snapshot(&store, alice).await;
    store.set_spam_zone("zen.spamhaus.org", 4.0).await.unwrap();
    store
        .set_meta("spam_dnsbl_refused", "zen.spamhaus.org 1764806400")
        .await
        .unwrap();
    let spam = (
        store.domain_spam_policies().await.unwrap(),
        store.spam_zones().await.unwrap(),
    );
    for case in ADMIN_CASES {
        run(&mut bob, case, &values, ADMIN_REFUSAL).await;
    }
    assert_eq!(
        (
            store.domain_spam_policies().await.unwrap(),
            store.spam_zones().await.unwrap()
        ),
        spam
    );
    assert_eq!(store.meta("spam_greylisting").await.unwrap(), None);
    assert!(store.meta("spam_dnsbl_refused").await.unwrap().is_some());
    assert_eq!(store.accounts(None).await.unwrap(), accounts);
    assert_eq!(store.domains().await.unwrap(), domains);
    assert_eq!(store.aliases(None).await.unwrap(), aliases);
    assert_eq!(snapshot(&store, alice).await, mail);
    server.running.shutdown().await;
}

/// Account ids are never handed out twice: an IMAP session of a removed account, which still
/// holds its account id, must not reach the mail of the account created next (SQLite gives a
/// new row the largest id + 1, which was the removed account's; found in review).
#[tokio::test]
async fn a_removed_accounts_session_reaches_nobody_elses_mail() {
    let (t, alice) = crate::imap::server().await;
    let store = &t.running.store;
    let mut c = crate::imap::logged_in(&t).await;
    store.remove_account("alice@localhost").await.unwrap();
    let carol = harness::account(store, "carol@localhost", 0).await;
    assert_ne!(carol.id, alice.id, "an account id was given out twice");
    crate::imap::deliver(store, &carol, b"Subject: CarolPrivate\r\n\r\nfor Carol\r\n").await;
    let (lines, status) = c.cmd("SELECT INBOX").await;
    assert!(status.contains(" NO "), "{status} {lines:?}");
    let (lines, _) = c.cmd("FETCH 1:* (BODY[])").await;
    assert!(
        !lines.iter().any(|l| l.contains("CarolPrivate")),
        "{lines:?}"
    );
    let (lines, _) = c.cmd("STATUS INBOX (MESSAGES)").await;
    assert!(!lines.iter().any(|l| l.contains("MESSAGES 1")), "{lines:?}");
}
