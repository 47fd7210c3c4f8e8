//! Web sessions and CSRF protection, shared by the admin panel and the webmail.
//!
//! - The session cookie (`mr_session`) holds a random token (the database keeps its hash, see
//!   `store::sessions`); it is `HttpOnly`, `SameSite=Strict`, and `Secure` whenever the request
//!   came over HTTPS.
//! - Every state-changing request is a POST carrying the session's CSRF token in a form field,
//!   compared in constant time; a POST whose `Origin` names another host is refused as well.
//! - The login form itself is protected by a double-submit token (cookie `mr_login` = form
//!   field), so another site cannot log a browser into an account of its choosing.
//! - Passwords travel only over HTTPS, or plain HTTP from the machine itself (the local trial)
//!   or when `[auth] allow_plaintext` says so.

use std::net::{IpAddr, Ipv4Addr};

use axum::extract::{FromRequest, FromRequestParts, RawForm, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{WebError, WebState};
use crate::store::{Account, WebSession};

pub const SESSION_COOKIE: &str = "mr_session";
pub const LOGIN_COOKIE: &str = "mr_login";

/// Who is on the other end of the connection: set per connection by [`super::handler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub ip: IpAddr,
    pub https: bool,
}

impl Client {
    /// May a password be sent from here? Over TLS, from this machine, or when allowed.
    pub fn may_send_password(&self, allow_plaintext: bool) -> bool {
        self.https || self.ip.is_loopback() || allow_plaintext
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Client, Self::Rejection> {
        // Without the extension (a request built in a test), assume the least: an unknown
        // address over plain HTTP.
        Ok(parts.extensions.get::<Client>().copied().unwrap_or(Client {
            ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            https: false,
        }))
    }
}

/// The value of cookie `name`, if the request has it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A `Set-Cookie` value; `max_age` 0 deletes the cookie, `None` makes it last for the browser
/// session (the server side decides when a session ends).
pub fn set_cookie(name: &str, value: &str, client: Client, max_age: Option<i64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if client.https {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    // Tokens are base64url: always a valid header value.
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Compares two secrets without leaking, through timing, how much of them matched.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Refuses a request whose `Origin` header names a host other than the one it was sent to.
/// Browsers send `Origin` on every cross-site POST; a missing one is left to the CSRF token.
pub fn same_origin(headers: &HeaderMap) -> Result<(), WebError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(origin);
    if origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(WebError::Forbidden(
            "This form was sent from another site and was refused.".into(),
        ))
    }
}

/// A signed-in user, from the session cookie.
#[derive(Debug, Clone)]
pub struct Session {
    pub account: Account,
    pub csrf_token: String,
    pub token: String,
    /// The session's public id (`store::SessionInfo::id`): "this device" on the Security page.
    pub id: String,
}

/// A signed-in user as a handler sees them: the admin panel's `Admin`, the webmail's `Reader`.
pub trait SignedIn: FromRequestParts<WebState, Rejection = Response> {
    fn session(&self) -> &Session;
}

/// A form posted by a signed-in user `S`, with the Origin and the CSRF token (field `csrf`)
/// checked before the handler sees it: a handler that takes `Posted` cannot forget the check.
/// `T` has the page's own fields (unknown fields, the token among them, are ignored; a
/// `Vec<(String, String)>` takes repeated fields in order). URL-encoded forms only: the one
/// multipart form (compose) checks by hand.
pub struct Posted<S, T>(pub S, pub T);

/// A form with no fields of its own (remove, retry, drop): only the CSRF token.
#[derive(serde::Deserialize)]
pub struct NoFields {}

impl<S: SignedIn + Send, T: serde::de::DeserializeOwned> FromRequest<WebState> for Posted<S, T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &WebState) -> Result<Posted<S, T>, Response> {
        let (mut parts, body) = req.into_parts();
        let user = S::from_request_parts(&mut parts, state).await?;
        let headers = parts.headers.clone();
        let RawForm(bytes) = RawForm::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        // A form without a token is refused like one with a wrong token.
        let token = serde_urlencoded::from_bytes::<CsrfForm>(&bytes)
            .map(|f| f.csrf)
            .unwrap_or_default();
        user.session()
            .check(&headers, &token)
            .map_err(IntoResponse::into_response)?;
        let form = serde_urlencoded::from_bytes::<T>(&bytes).map_err(|e| {
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("Failed to deserialize form body: {e}"),
            )
                .into_response()
        })?;
        Ok(Posted(user, form))
    }
}

/// A form that carries nothing but the CSRF token (logout, remove, retry, …).
#[derive(Debug, serde::Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

impl Session {
    /// What every state-changing request must pass: sent from our own pages (`Origin`), with
    /// this session's CSRF token.
    pub fn check(&self, headers: &HeaderMap, posted: &str) -> Result<(), WebError> {
        same_origin(headers)?;
        self.check_csrf(posted)
    }

    /// Checks the CSRF token posted with a form.
    pub fn check_csrf(&self, posted: &str) -> Result<(), WebError> {
        if same_secret(posted, &self.csrf_token) {
            Ok(())
        } else {
            Err(WebError::Forbidden(
                "This form has expired or did not come from this site. Reload the page and try again."
                    .into(),
            ))
        }
    }
}

/// Where a request without a session goes: the sign-in page of `area` (`/admin`, `/mail`),
/// coming back to the page asked for.
pub fn sign_in_redirect(
    parts: &axum::http::request::Parts,
    area: &str,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let uri = parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map(|u| u.0.clone())
        .unwrap_or_else(|| parts.uri.clone());
    let next = uri.path_and_query().map(|p| p.as_str()).unwrap_or(area);
    axum::response::Redirect::to(&format!(
        "{area}/login?next={}",
        super::admin::url_encode(next)
    ))
    .into_response()
}

/// The session of a request, if it has a live one.
pub async fn current(state: &WebState, headers: &HeaderMap) -> Result<Option<Session>, WebError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    Ok(state.store.session(&token).await?.map(
        |WebSession {
             account,
             csrf_token,
             id,
         }| Session {
            account,
            csrf_token,
            token,
            id,
        },
    ))
}
