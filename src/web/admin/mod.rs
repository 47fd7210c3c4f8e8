//! The admin panel at `/admin`: dashboard, domains (with the DNS records to publish and a live
//! check of them), accounts, aliases, the outbound queue, the spam filter, the DMARC and TLS
//! reports received and sent, and the audit log of what admins did.
//!
//! Server-rendered pages; every action is a POST with the session's CSRF token and goes
//! through the same store functions as the CLI. Destructive actions have a confirmation page
//! (works without JavaScript). After a successful POST the browser is redirected (303) to a
//! page with a notice, so a reload never repeats the action; a failed one renders the form
//! again with the error next to its field.

mod accounts;
mod aliases;
mod audit;
mod check;
mod dashboard;
mod deliverability;
mod domains;
mod queue;
mod reports;
mod spam;
mod two_factor;

use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use tower_http::set_header::SetResponseHeaderLayer;

use std::net::IpAddr;

use super::WebState;
use super::login::{self, Area};
use super::session::{self, Client, Session};
pub use super::session::{NoFields, Posted};
use crate::store::Audit;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/admin", get(dashboard::page))
        .route("/admin/", get(dashboard::page))
        .route("/admin/login", get(sign_in_form).post(sign_in))
        .route("/admin/logout", post(sign_out))
        .route("/admin/domains", get(domains::list).post(domains::add))
        .route("/admin/domains/{name}", get(domains::show))
        .route(
            "/admin/domains/{name}/remove",
            get(domains::confirm_remove).post(domains::remove),
        )
        .route(
            "/admin/domains/{name}/forwarding",
            post(domains::set_forwarding),
        )
        .route("/admin/accounts", get(accounts::list).post(accounts::add))
        .route("/admin/accounts/new", get(accounts::new_form))
        .route("/admin/accounts/{address}", get(accounts::show))
        .route("/admin/accounts/{address}/quota", post(accounts::set_quota))
        .route(
            "/admin/accounts/{address}/password",
            post(accounts::reset_password),
        )
        .route("/admin/accounts/{address}/state", post(accounts::set_state))
        .route(
            "/admin/accounts/{address}/second-factor/reset",
            post(two_factor::reset),
        )
        .route(
            "/admin/domains/{name}/two-factor",
            post(two_factor::require_for_domain),
        )
        .route("/admin/two-factor", post(two_factor::require_for_admins))
        .route(
            "/admin/accounts/{address}/remove",
            get(accounts::confirm_remove).post(accounts::remove),
        )
        .route("/admin/aliases", get(aliases::list).post(aliases::add))
        .route("/admin/aliases/remove", post(aliases::remove))
        .route("/admin/audit", get(audit::list))
        .route("/admin/reports", get(reports::page))
        .route("/admin/spam", get(spam::page))
        .route("/admin/spam/domains/{name}", post(spam::set_domain))
        .route("/admin/spam/zones", post(spam::set_zone))
        .route("/admin/spam/zones/remove", post(spam::remove_zone))
        .route("/admin/spam/greylisting", post(spam::set_greylisting))
        .route("/admin/spam/refused/dismiss", post(spam::dismiss_refused))
        .route("/admin/check", get(check::page))
        .route("/admin/deliverability", get(deliverability::page))
        .route(
            "/admin/deliverability/required",
            post(deliverability::set_required),
        )
        .route(
            "/admin/deliverability/mta-sts/{name}",
            post(deliverability::set_mta_sts),
        )
        .route(
            "/admin/deliverability/smarthost",
            post(deliverability::set_smarthost),
        )
        .route(
            "/admin/deliverability/smarthost/clear",
            post(deliverability::clear_smarthost),
        )
        .route("/admin/queue", get(queue::list))
        .route("/admin/queue/{id}/retry", post(queue::retry))
        .route(
            "/admin/queue/{id}/drop",
            get(queue::confirm_drop).post(queue::drop),
        )
        .merge(super::second_step::routes(Area::Admin))
        // Pages show accounts and secrets shown once: never cached, never framed.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        // A handler that sets its own policy (a download, say) keeps it: such a policy is
        // stricter than the pages' one, never looser.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                 frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
            ),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
}

async fn sign_in_form(
    State(state): State<WebState>,
    client: Client,
    headers: HeaderMap,
    Query(q): Query<login::NextQuery>,
) -> Result<Response, super::WebError> {
    login::form(Area::Admin, state, client, headers, q).await
}

async fn sign_in(
    State(state): State<WebState>,
    client: Client,
    headers: HeaderMap,
    Form(f): Form<login::LoginForm>,
) -> Result<Response, super::WebError> {
    login::submit(Area::Admin, state, client, headers, f).await
}

async fn sign_out(
    State(state): State<WebState>,
    client: Client,
    headers: HeaderMap,
    Form(f): Form<session::CsrfForm>,
) -> Result<Response, super::WebError> {
    login::logout(Area::Admin, state, client, headers, f).await
}

/// A signed-in administrator. Without a session the request is redirected to the login page
/// (and comes back afterwards); a signed-in user without the admin flag gets 403. Also the
/// address the request came from, for the audit log.
pub struct Admin(pub Session, IpAddr);

impl Admin {
    /// Records an action of this admin in the audit log (`action` as `object.verb`; `detail`
    /// never holds a secret). Called after the action succeeded.
    async fn audit(
        &self,
        state: &WebState,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<(), super::WebError> {
        state
            .store
            .audit(Audit {
                actor: &self.0.account.address,
                ip: &self.1.to_string(),
                action,
                target,
                detail,
            })
            .await?;
        Ok(())
    }
}

impl FromRequestParts<WebState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Admin, Response> {
        let session = session::current(state, &parts.headers)
            .await
            .map_err(IntoResponse::into_response)?;
        match session {
            Some(s) if s.account.is_admin => {
                let Ok(client) = Client::from_request_parts(parts, state).await;
                Ok(Admin(s, client.ip))
            }
            Some(_) => Err(super::WebError::Forbidden(
                "This account is not an administrator.".into(),
            )
            .into_response()),
            None => Err(session::sign_in_redirect(parts, "/admin")),
        }
    }
}

/// The query of admin pages: a search (`q`, accounts only), the page of a long list, and the
/// notice a redirect asked for (`done`).
#[derive(serde::Deserialize)]
pub(super) struct ListQuery {
    q: Option<String>,
    page: Option<usize>,
    done: Option<String>,
}

impl session::SignedIn for Admin {
    fn session(&self) -> &Session {
        &self.0
    }
}

/// What every admin page shows around its content.
#[derive(Default)]
pub struct Chrome {
    pub hostname: String,
    pub user: String,
    pub csrf: String,
    /// The nav entry to highlight.
    pub section: &'static str,
    pub notice: Option<&'static str>,
}

impl Chrome {
    fn new(state: &WebState, admin: &Admin, section: &'static str, done: Option<&str>) -> Chrome {
        Chrome {
            hostname: state.hostname.clone(),
            user: admin.0.account.address.clone(),
            csrf: admin.0.csrf_token.clone(),
            section,
            notice: done.and_then(notice),
        }
    }
}

/// The notices a redirect may ask for (`?done=`). Fixed texts only: a crafted link cannot make
/// the panel say something of its choosing.
fn notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "domain-removed" => "The domain was removed.",
        "account-updated" => "The account was updated.",
        "second-factor-reset" => {
            "The second factor was reset: the account signs in with its password alone (or sets \
             one up, where one is required)."
        }
        "domain-updated" => "The domain was updated.",
        "admins-updated" => "Saved.",
        "account-removed" => "The account and its mail were removed.",
        "password-reset" => "The password was changed; the account's web sessions were ended.",
        "alias-added" => "The alias was added.",
        "alias-removed" => "The alias was removed.",
        "queue-retry" => "The message will be tried again now.",
        "queue-dropped" => "The message was removed from the queue.",
        "spam-updated" => "The spam filter's settings were saved.",
        "deliverability-updated" => "Saved.",
        _ => return None,
    })
}

/// After a successful POST: back to a page, with a notice.
fn done(path: &str, code: &str) -> Response {
    let sep = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{path}{sep}done={code}")).into_response()
}

/// One page of a long list.
pub struct Paged<T> {
    pub items: Vec<T>,
    /// 1-based.
    pub page: usize,
    pub pages: usize,
    pub total: usize,
}

const PAGE_SIZE: usize = 50;

impl<T> Paged<T> {
    /// One page the store cut already: `items` are page `page` (clamped to what exists) of
    /// `total`.
    fn of_page(items: Vec<T>, page: usize, total: usize) -> Paged<T> {
        let pages = total.div_ceil(PAGE_SIZE).max(1);
        Paged {
            items,
            page: page.clamp(1, pages),
            pages,
            total,
        }
    }

    fn new(all: Vec<T>, page: Option<usize>) -> Paged<T> {
        let total = all.len();
        let pages = total.div_ceil(PAGE_SIZE).max(1);
        let page = page.unwrap_or(1).clamp(1, pages);
        let items = all
            .into_iter()
            .skip((page - 1) * PAGE_SIZE)
            .take(PAGE_SIZE)
            .collect();
        Paged {
            items,
            page,
            pages,
            total,
        }
    }

    fn prev(&self) -> Option<usize> {
        (self.page > 1).then(|| self.page - 1)
    }

    fn next(&self) -> Option<usize> {
        (self.page < self.pages).then(|| self.page + 1)
    }
}

/// Percent-encodes everything but unreserved characters, for query values and path segments.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// "3 hours ago", "in 5 minutes": times relative to now, for tables.
pub fn relative(t: i64) -> String {
    let d = t - crate::store::now();
    let (n, unit) = match d.unsigned_abs() {
        s if s < 60 => {
            return if d <= 0 {
                "just now".into()
            } else {
                "now".into()
            };
        }
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86400 => (s / 3600, "hour"),
        s => (s / 86400, "day"),
    };
    let plural = if n == 1 { "" } else { "s" };
    if d < 0 {
        format!("{n} {unit}{plural} ago")
    } else {
        format!("in {n} {unit}{plural}")
    }
}

/// A UTC timestamp, `2026-11-27 10:04`.
pub fn timestamp(t: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(format).ok())
        .unwrap_or_else(|| t.to_string())
}

/// The generic confirmation page of destructive actions.
#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "admin/confirm.html")]
pub struct Confirm {
    pub chrome: Chrome,
    pub title: String,
    pub text: String,
    pub action: String,
    pub button: &'static str,
    pub back: String,
    pub error: Option<String>,
}
