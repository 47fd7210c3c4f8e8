//! Sign in and out, for the admin panel (`/admin/login`) and the webmail (`/mail/login`): one
//! form, one session (an administrator signed in to one is signed in to the other).

use askama::Template;
use askama_web::WebTemplate;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::session::{self, Client, CsrfForm, LOGIN_COOKIE, SESSION_COOKIE};
use super::{WebError, WebState};
use crate::auth::AuthError;
use crate::store::random_token;

/// Where a sign-in leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Admin,
    Mail,
}

impl Area {
    pub(super) fn base(self) -> &'static str {
        match self {
            Area::Admin => "/admin",
            Area::Mail => "/mail",
        }
    }

    /// The area as a pending sign-in records it.
    pub(super) fn name(self) -> &'static str {
        match self {
            Area::Admin => "admin",
            Area::Mail => "mail",
        }
    }

    pub(super) fn title(self) -> &'static str {
        match self {
            Area::Admin => "Admin sign-in",
            Area::Mail => "Webmail sign-in",
        }
    }

    /// Whether `account` may enter.
    pub(super) fn admits(self, account: &crate::store::Account) -> bool {
        match self {
            Area::Admin => account.is_admin,
            Area::Mail => true,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginPage {
    hostname: String,
    title: &'static str,
    base: &'static str,
    action: String,
    address: String,
    next: String,
    login_token: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
    /// Set when a pending second step ran out (time or attempts).
    expired: Option<String>,
}

/// Only our own pages of the area are a place to go back to after signing in: a local path
/// (one leading `/`, no `//` or `\\` that a browser would take for another host) of visible
/// ASCII only, since it becomes a `Location:` header (a line break there made the redirect
/// fail with a 500; percent-encoding is how a URL carries anything else). Anything else is
/// ignored, and the area's start page is used.
/// The longest `next` kept: it is held with a pending sign-in (and in memory while a passkey
/// sign-in is under way, which anyone may start), so a form's 256 KiB must not be.
pub(super) const MAX_NEXT: usize = 1024;

pub(super) fn safe_next(area: Area, next: Option<&str>) -> String {
    let base = area.base();
    let inside = |n: &str| {
        n == base || n.starts_with(&format!("{base}/")) || n.starts_with(&format!("{base}?"))
    };
    match next {
        Some(n)
            if n.len() <= MAX_NEXT
                && inside(n)
                && n.bytes().all(|b| b.is_ascii_graphic())
                && !n.starts_with(&format!("{base}/login"))
                && !n.contains("//")
                && !n.contains('\\') =>
        {
            n.to_string()
        }
        _ => base.to_string(),
    }
}

pub async fn form(
    area: Area,
    state: WebState,
    client: Client,
    headers: HeaderMap,
    q: NextQuery,
) -> Result<Response, WebError> {
    let next = safe_next(area, q.next.as_deref());
    if let Some(s) = session::current(&state, &headers).await?
        && area.admits(&s.account)
    {
        return Ok(Redirect::to(&next).into_response());
    }
    let error = q.expired.is_some().then(|| {
        "The sign-in expired or had too many wrong codes. Type your password again.".to_string()
    });
    Ok(login_page(
        area,
        &state,
        client,
        &headers,
        String::new(),
        next,
        error,
        StatusCode::OK,
    ))
}

/// The login form, with its double-submit token (reusing the browser's if it has one, so two
/// open tabs both work).
#[allow(clippy::too_many_arguments)]
fn login_page(
    area: Area,
    state: &WebState,
    client: Client,
    headers: &HeaderMap,
    address: String,
    next: String,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let token = session::cookie(headers, LOGIN_COOKIE)
        .filter(|t| t.len() >= 32)
        .unwrap_or_else(random_token);
    let error = error.or_else(|| {
        (!client.may_send_password(state.allow_plaintext)).then(|| {
            "This connection is not encrypted. Open this page over https:// to sign in.".to_string()
        })
    });
    let page = LoginPage {
        hostname: state.hostname.clone(),
        title: area.title(),
        base: area.base(),
        action: format!("{}/login", area.base()),
        address,
        next,
        login_token: token.clone(),
        error,
    };
    (
        status,
        [(
            header::SET_COOKIE,
            session::set_cookie(LOGIN_COOKIE, &token, client, Some(3600)),
        )],
        page,
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    address: String,
    password: String,
    login_token: String,
    next: Option<String>,
}

pub async fn submit(
    area: Area,
    state: WebState,
    client: Client,
    headers: HeaderMap,
    f: LoginForm,
) -> Result<Response, WebError> {
    session::same_origin(&headers)?;
    let cookie = session::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if cookie.is_empty() || !session::same_secret(&cookie, &f.login_token) {
        return Err(WebError::Forbidden(
            "The sign-in form expired or did not come from this site. Reload the page and try again."
                .into(),
        ));
    }
    let next = safe_next(area, f.next.as_deref());
    let again = |error: &str, status| {
        login_page(
            area,
            &state,
            client,
            &headers,
            f.address.trim().to_string(),
            next.clone(),
            Some(error.to_string()),
            status,
        )
    };
    if !client.may_send_password(state.allow_plaintext) {
        return Ok(again(
            "This connection is not encrypted. Open this page over https:// to sign in.",
            StatusCode::FORBIDDEN,
        ));
    }
    let account = match state
        .auth
        .login_fresh("web", client.ip, f.address.trim(), &f.password)
        .await
    {
        Ok(a) => a,
        // (AppPasswordRequired is the mail protocols' answer; login_fresh never gives it.)
        Err(AuthError::Failed | AuthError::AppPasswordRequired) => {
            return Ok(again(
                "Wrong address or password.",
                StatusCode::UNAUTHORIZED,
            ));
        }
        Err(AuthError::Locked(secs)) => {
            return Ok(again(
                &format!("Too many failed sign-ins. Try again in {secs} seconds."),
                StatusCode::TOO_MANY_REQUESTS,
            ));
        }
        Err(AuthError::Internal(e)) => return Err(WebError::Internal(e)),
    };
    if !area.admits(&account) {
        return Ok(again(
            "This account is not an administrator.",
            StatusCode::FORBIDDEN,
        ));
    }
    // A session now, or the second step first (or the set-up a requirement asks for).
    super::second_step::after_password(area, &state, client, &headers, &account, &next).await
}

pub async fn logout(
    area: Area,
    state: WebState,
    client: Client,
    headers: HeaderMap,
    f: CsrfForm,
) -> Result<Response, WebError> {
    session::same_origin(&headers)?;
    if let Some(s) = session::current(&state, &headers).await? {
        s.check_csrf(&f.csrf)?;
        state.store.end_session(&s.token).await?;
    }
    Ok((
        [(
            header::SET_COOKIE,
            session::set_cookie(SESSION_COOKIE, "", client, Some(0)),
        )],
        Redirect::to(&format!("{}/login", area.base())),
    )
        .into_response())
}
