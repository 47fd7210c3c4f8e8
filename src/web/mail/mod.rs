//! The webmail at `/mail`: folders, message lists, reading, compose/reply/forward with
//! attachments, search, settings (spam: threshold and sender lists; rules: filters, vacation reply, forwarding), the Security page (sessions, sign-in history), and live
//! updates.
//!
//! It reads and changes mail through the store, as IMAP does, so each sees the other's
//! changes at once (the store announces every change on its bus; the list page listens through
//! server-sent events). Sending goes through the one submission path (`submission.rs`).
//! Pages are server-rendered and work without JavaScript; `static/mail.js` adds keyboard
//! shortcuts, local times, select-all and the live refresh.

mod app_passwords;
mod compose;
mod contacts;
mod conversations;
mod drafts;
mod events;
mod folders;
mod list;
mod mobileconfig;
mod read;
mod rich;
mod rules;
mod rules_edit;
mod security;
mod settings;
mod spam_settings;
mod two_factor;
mod undo;

use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use tower_http::set_header::SetResponseHeaderLayer;

use super::login::{self, Area};
use super::session::{self, Client, Session};
use super::{WebError, WebState};
use crate::store::{Mailbox, MailboxCounts};

/// Thresholds as typed, shared with the admin panel's spam page.
pub(crate) use spam_settings::parse_threshold;

pub fn router() -> Router<WebState> {
    let pages = Router::new()
        .route("/mail", get(home))
        .route("/mail/", get(home))
        .route("/mail/login", get(sign_in_form).post(sign_in))
        .route("/mail/logout", post(sign_out))
        .route("/mail/box/{id}", get(list::page))
        .route("/mail/box/{id}/act", post(list::act))
        .route("/mail/box/{id}/empty", post(list::empty))
        .route("/mail/undo", post(undo::undo))
        .route("/mail/box/{id}/{uid}", get(read::page))
        .route("/mail/box/{id}/thread/{uid}", get(conversations::page))
        .route("/mail/box/{id}/{uid}/raw", get(read::raw))
        .route("/mail/box/{id}/{uid}/part/{n}", get(read::attachment))
        .route("/mail/search", get(list::search))
        .route("/mail/compose", get(compose::form))
        // Uploads: the router's overall request limit (the message size limit) applies, not
        // axum's 2 MB default for extractors.
        .route(
            "/mail/send",
            post(compose::send).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        // Compose (issue 24): autosave, and the address book.
        .route(
            "/mail/compose/autosave",
            post(compose::autosave).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/mail/contacts", get(contacts::page).post(contacts::create))
        .route("/mail/contacts/suggest", get(contacts::suggest))
        .route("/mail/contacts/export", get(contacts::export))
        .route(
            "/mail/contacts/import",
            post(contacts::import).layer(axum::extract::DefaultBodyLimit::max(
                crate::vcard::MAX_FILE + 64 * 1024,
            )),
        )
        .route(
            "/mail/contacts/{id}",
            get(contacts::edit_page).post(contacts::update),
        )
        .route("/mail/contacts/{id}/delete", post(contacts::delete))
        .route("/mail/folders", get(folders::page).post(folders::create))
        .route("/mail/folders/{id}/rename", post(folders::rename))
        .route("/mail/folders/{id}/delete", post(folders::delete))
        .route("/mail/settings", get(settings::page))
        .route(
            "/mail/settings/mobileconfig",
            get(mobileconfig::profile).post(mobileconfig::with_app_password),
        )
        .route(
            "/mail/settings/app-passwords",
            get(app_passwords::page).post(app_passwords::create),
        )
        .route(
            "/mail/settings/app-passwords/{id}/revoke",
            post(app_passwords::revoke),
        )
        .route("/mail/settings/profile", post(settings::profile))
        .route("/mail/settings/spam", get(spam_settings::page))
        .route(
            "/mail/settings/spam/threshold",
            post(spam_settings::threshold),
        )
        .route("/mail/settings/spam/list", post(spam_settings::add))
        .route(
            "/mail/settings/spam/list/remove",
            post(spam_settings::remove),
        )
        .route("/mail/settings/rules", get(rules::page))
        .route(
            "/mail/settings/rules/filters/new",
            get(rules_edit::new_filter).post(rules_edit::create_filter),
        )
        .route(
            "/mail/settings/rules/filters/{n}",
            get(rules_edit::edit_filter).post(rules_edit::update_filter),
        )
        .route(
            "/mail/settings/rules/filters/{n}/move",
            post(rules::move_filter),
        )
        .route(
            "/mail/settings/rules/filters/{n}/toggle",
            post(rules::toggle_filter),
        )
        .route(
            "/mail/settings/rules/filters/{n}/delete",
            post(rules::delete_filter),
        )
        .route(
            "/mail/settings/rules/vacation",
            get(rules_edit::vacation_page).post(rules_edit::save_vacation),
        )
        .route(
            "/mail/settings/rules/forwarding",
            get(rules_edit::forwarding_page).post(rules_edit::save_forwarding),
        )
        .route("/mail/settings/rules/script", post(rules::save_raw))
        .route("/mail/settings/rules/use", post(rules::use_ours))
        .route("/mail/settings/rules/start-over", post(rules::start_over))
        .route(
            "/mail/settings/rules/error/dismiss",
            post(rules::dismiss_error),
        )
        .route("/mail/settings/password", post(settings::password))
        .route("/mail/settings/security", get(security::page))
        .route("/mail/settings/security/sign-out", post(security::sign_out))
        .route(
            "/mail/settings/security/sign-out-others",
            post(security::sign_out_others),
        )
        .route("/mail/events", get(events::stream))
        .route("/mail/settings/two-factor", get(two_factor::page))
        .route(
            "/mail/settings/two-factor/totp",
            post(two_factor::begin_totp),
        )
        .route(
            "/mail/settings/two-factor/totp/confirm",
            post(two_factor::confirm_totp),
        )
        .route(
            "/mail/settings/two-factor/totp/remove",
            post(two_factor::remove_totp),
        )
        .route(
            "/mail/settings/two-factor/recovery",
            post(two_factor::new_recovery_codes),
        )
        .route(
            "/mail/settings/two-factor/passkey/options",
            post(two_factor::passkey_options),
        )
        .route(
            "/mail/settings/two-factor/passkey",
            post(two_factor::add_passkey),
        )
        .route(
            "/mail/settings/two-factor/passkey/{id}/remove",
            post(two_factor::remove_passkey),
        )
        // The sign-in's second step and passkey sign-in (before a session; not in
        // tests/it/ownership.rs, which tries the routes of signed-in users).
        .merge(super::second_step::routes(Area::Mail))
        // A handler that sets its own policy keeps it (an attachment download: `default-src
        // 'none'; sandbox`); such a policy is stricter than the pages' one, never looser.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                 frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
            ),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ));
    // The HTML body of a message has its own, stricter policy (set by the handler), and is
    // framed by the reading page.
    // Pages send their address only to themselves ("no-referrer" would make browsers send
    // `Origin: null` with our own forms); a message's links never learn where they were read.
    let pages = pages.layer(SetResponseHeaderLayer::overriding(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    ));
    Router::new()
        .route(
            "/mail/box/{id}/{uid}/body",
            get(read::body).layer(SetResponseHeaderLayer::overriding(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            )),
        )
        .merge(pages)
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

async fn sign_in_form(
    State(state): State<WebState>,
    client: Client,
    headers: HeaderMap,
    Query(q): Query<login::NextQuery>,
) -> Result<Response, WebError> {
    login::form(Area::Mail, state, client, headers, q).await
}

async fn sign_in(
    State(state): State<WebState>,
    client: Client,
    headers: HeaderMap,
    Form(f): Form<login::LoginForm>,
) -> Result<Response, WebError> {
    login::submit(Area::Mail, state, client, headers, f).await
}

async fn sign_out(
    State(state): State<WebState>,
    client: Client,
    headers: HeaderMap,
    Form(f): Form<session::CsrfForm>,
) -> Result<Response, WebError> {
    login::logout(Area::Mail, state, client, headers, f).await
}

/// A signed-in account; without a session, a redirect to the sign-in page (and back).
pub struct Reader(pub Session);

impl FromRequestParts<WebState> for Reader {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Reader, Response> {
        match session::current(state, &parts.headers).await {
            Ok(Some(s)) => Ok(Reader(s)),
            Ok(None) => Err(session::sign_in_redirect(parts, "/mail")),
            Err(e) => Err(e.into_response()),
        }
    }
}

impl session::SignedIn for Reader {
    fn session(&self) -> &Session {
        &self.0
    }
}

impl Reader {
    fn account_id(&self) -> i64 {
        self.0.account.id
    }

    /// The mailbox `id` if it is this account's (the store looks among the account's own);
    /// otherwise not found (never "forbidden": the answer must not tell whether someone
    /// else's mailbox exists). Every message operation needs the handle this returns.
    async fn mailbox(&self, state: &WebState, id: i64) -> Result<Mailbox, WebError> {
        state
            .store
            .mailbox_by_id(self.account_id(), id)
            .await?
            .ok_or(WebError::NotFound)
    }

    /// This account's mailbox with special use `use_` (`\Sent`, `\Trash`, `\Drafts`).
    async fn special(&self, state: &WebState, use_: &str) -> Result<Option<Mailbox>, WebError> {
        Ok(state
            .store
            .mailboxes(self.account_id())
            .await?
            .into_iter()
            .find(|m| m.special_use.as_deref() == Some(use_)))
    }

    /// This account's Junk mailbox (special use `\Junk`), made as `Junk` (or `Spam`, when a
    /// plain folder already has that name) if the account has none: the "Spam" button always
    /// has somewhere to put the message.
    async fn junk(&self, state: &WebState) -> Result<Mailbox, WebError> {
        if let Some(junk) = self.special(state, "\\Junk").await? {
            return Ok(junk);
        }
        for name in ["Junk", "Spam"] {
            match state
                .store
                .create_special_mailbox(self.account_id(), name, "\\Junk")
                .await
            {
                Ok(Ok(junk)) => return Ok(junk),
                // Another request made one meanwhile.
                Ok(Err(_)) => {
                    if let Some(junk) = self.special(state, "\\Junk").await? {
                        return Ok(junk);
                    }
                }
                Err(crate::store::StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(WebError::BadRequest(
            "There is no Junk folder, and folders named Junk and Spam exist already: rename one \
             of them."
                .into(),
        ))
    }

    fn check(&self, headers: &HeaderMap, csrf: &str) -> Result<(), WebError> {
        self.0.check(headers, csrf)
    }
}

/// A folder in the sidebar.
pub struct Folder {
    pub id: i64,
    pub name: String,
    /// Indented by its depth in the hierarchy.
    pub depth: usize,
    /// The last part of the name.
    pub label: String,
    pub special_use: Option<String>,
    pub counts: MailboxCounts,
}

impl Folder {
    fn link(&self) -> String {
        format!("/mail/box/{}", self.id)
    }

    /// The default folders (special use, and INBOX) cannot be renamed or deleted here.
    fn is_system(&self) -> bool {
        self.special_use.is_some() || self.name.eq_ignore_ascii_case("INBOX")
    }
}

/// The order of the sidebar: INBOX, the special folders in their usual order, then the
/// others by name.
fn folder_rank(m: &Mailbox) -> (u8, String) {
    let rank = if m.name.eq_ignore_ascii_case("INBOX") {
        0
    } else {
        match m.special_use.as_deref() {
            Some("\\Drafts") => 1,
            Some("\\Sent") => 2,
            Some("\\Archive") => 3,
            Some("\\Junk") => 4,
            Some("\\Trash") => 5,
            _ => 6,
        }
    };
    (rank, m.name.to_lowercase())
}

/// What every webmail page shows around its content.
#[derive(Default)]
pub struct Chrome {
    pub hostname: String,
    pub user: String,
    pub csrf: String,
    pub folders: Vec<Folder>,
    /// The folder being shown, if any.
    pub current: Option<i64>,
    pub notice: Option<&'static str>,
    /// After a move or delete: the token of the notice's Undo button (`undo.rs`).
    pub undo: Option<String>,
}

impl Chrome {
    fn is_current(&self, id: &i64) -> bool {
        self.current == Some(*id)
    }

    /// The folder shown is Drafts: its messages open in the editor (compose `?draft=`).
    fn in_drafts(&self) -> bool {
        self.folders
            .iter()
            .any(|f| Some(f.id) == self.current && f.special_use.as_deref() == Some("\\Drafts"))
    }

    /// How long the Undo button shows (`mail.js` hides it then).
    fn undo_seconds(&self) -> i64 {
        undo::SHOWN_SECONDS
    }

    async fn new(
        state: &WebState,
        reader: &Reader,
        current: Option<i64>,
        done: Option<&str>,
    ) -> Result<Chrome, WebError> {
        let mut boxes = state.store.mailboxes(reader.account_id()).await?;
        boxes.sort_by_key(folder_rank);
        let mut all_counts = state
            .store
            .account_mailbox_counts(reader.account_id())
            .await?;
        let mut folders = Vec::with_capacity(boxes.len());
        for m in boxes {
            let counts = all_counts.remove(&m.id()).unwrap_or_default();
            folders.push(Folder {
                id: m.id(),
                depth: m.name.matches('/').count(),
                label: m.name.rsplit('/').next().unwrap_or(&m.name).to_string(),
                name: m.name,
                special_use: m.special_use,
                counts,
            });
        }
        Ok(Chrome {
            hostname: state.hostname.clone(),
            user: reader.0.account.address.clone(),
            csrf: reader.0.csrf_token.clone(),
            folders,
            current,
            notice: done.and_then(notice),
            undo: None,
        })
    }
}

/// Notices after a redirect (`?done=`); fixed texts only.
fn notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "sent" => "Your message was sent.",
        "draft" => "The draft was saved in Drafts.",
        "moved" => "Moved.",
        "deleted" => "Moved to Trash.",
        "junked" => "Moved to Junk. The spam filter learns from it.",
        "unjunked" => "Moved to INBOX. The spam filter learns that this is not spam.",
        "spam-settings" => "Your spam settings were saved.",
        "rules" => "Your rules were saved.",
        "purged" => "Deleted for good.",
        "emptied" => "The folder was emptied.",
        "undone" => "Undone: the messages are back.",
        "updated" => "Updated.",
        "folder-created" => "The folder was created.",
        "folder-renamed" => "The folder was renamed.",
        "folder-deleted" => "The folder and its messages were deleted.",
        "password" => "Your password was changed.",
        "profile" => "Saved.",
        "totp-off" => "Sign-in with an authenticator app is off.",
        "passkey-added" => "The passkey was added.",
        "passkey-removed" => "The passkey was removed.",
        "signed-out" => "That session was signed out.",
        "signed-out-others" => "Every other session was signed out.",
        "profile-needs-app-password" => {
            "Two-factor sign-in is on: download the profile with an app password in it below."
        }
        "app-password-revoked" => "The app password was revoked; apps using it were signed out.",
        _ => return None,
    })
}

async fn home(reader: Reader, State(state): State<WebState>) -> Result<Response, WebError> {
    let inbox = state
        .store
        .mailbox(reader.account_id(), "INBOX")
        .await?
        .ok_or(WebError::NotFound)?;
    Ok(Redirect::to(&format!("/mail/box/{}", inbox.id())).into_response())
}

/// A short date for lists: the time today, the day this year, the full date otherwise (UTC;
/// `mail.js` shows local time from the `datetime` attribute).
pub fn short_date(t: i64) -> String {
    use time::OffsetDateTime;
    use time::macros::format_description;
    let (Ok(d), Ok(now)) = (
        OffsetDateTime::from_unix_timestamp(t),
        OffsetDateTime::from_unix_timestamp(crate::store::now()),
    ) else {
        return String::new();
    };
    let format = if d.date() == now.date() {
        format_description!("[hour]:[minute]")
    } else if d.year() == now.year() {
        format_description!("[month repr:short] [day padding:none]")
    } else {
        format_description!("[year]-[month]-[day]")
    };
    d.format(format).unwrap_or_default()
}

/// ISO 8601 for `<time datetime>`.
pub fn iso_date(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
