//! Sign in and out of the admin panel.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::super::session::{self, Client, LOGIN_COOKIE, SESSION_COOKIE};
use super::super::{WebError, WebState};
use crate::auth::AuthError;
use crate::store::random_token;

#[derive(Template, WebTemplate)]
#[template(path = "admin/login.html")]
struct LoginPage {
    hostname: String,
    address: String,
    next: String,
    login_token: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct NextQuery {
    next: Option<String>,
}

/// Only our own admin pages are a place to go back to after signing in.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/admin") && !n.starts_with("/admin/login") && !n.contains("//") =>
        {
            n.to_string()
        }
        _ => "/admin".to_string(),
    }
}

pub(super) async fn form(
    State(state): State<WebState>,
    client: Client,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Result<Response, WebError> {
    let next = safe_next(q.next.as_deref());
    if let Some(s) = session::current(&state, &headers).await?
        && s.account.is_admin
    {
        return Ok(Redirect::to(&next).into_response());
    }
    Ok(login_page(
        &state,
        client,
        &headers,
        String::new(),
        next,
        None,
        StatusCode::OK,
    ))
}

/// The login form, with its double-submit token (reusing the browser's if it has one, so two
/// open tabs both work).
fn login_page(
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
            "This connection is not encrypted. Open the admin panel over https:// to sign in."
                .to_string()
        })
    });
    let page = LoginPage {
        hostname: state.hostname.clone(),
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
pub(super) struct LoginForm {
    address: String,
    password: String,
    login_token: String,
    next: Option<String>,
}

pub(super) async fn submit(
    State(state): State<WebState>,
    client: Client,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Result<Response, WebError> {
    session::same_origin(&headers)?;
    let cookie = session::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if cookie.is_empty() || !session::same_secret(&cookie, &f.login_token) {
        return Err(WebError::Forbidden(
            "The sign-in form expired or did not come from this site. Reload the page and try again."
                .into(),
        ));
    }
    let next = safe_next(f.next.as_deref());
    let again = |error: &str, status| {
        login_page(
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
            "This connection is not encrypted. Open the admin panel over https:// to sign in.",
            StatusCode::FORBIDDEN,
        ));
    }
    let account = match state
        .auth
        .login("http", client.ip, f.address.trim(), &f.password)
        .await
    {
        Ok(a) => a,
        Err(AuthError::Failed) => {
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
    if !account.is_admin {
        return Ok(again(
            "This account is not an administrator.",
            StatusCode::FORBIDDEN,
        ));
    }
    let token = state.store.create_session(account.id).await?;
    Ok((
        AppendHeaders([
            (
                header::SET_COOKIE,
                session::set_cookie(SESSION_COOKIE, &token, client, None),
            ),
            (
                header::SET_COOKIE,
                session::set_cookie(LOGIN_COOKIE, "", client, Some(0)),
            ),
        ]),
        Redirect::to(&next),
    )
        .into_response())
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    csrf: String,
}

pub(super) async fn logout(
    State(state): State<WebState>,
    client: Client,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
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
        Redirect::to("/admin/login"),
    )
        .into_response())
}
