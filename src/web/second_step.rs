//! The web sign-in's second step, and passkeys instead of the password (issue 19).
//!
//! After a correct password, an account with a second factor gets a *pending* sign-in, not a
//! session: cookie `mr_pending` (random; the store keeps its hash) that only the pages here
//! accept, for [`PENDING_SECS`] and [`MAX_ATTEMPTS`] wrong codes. Each code is also counted by
//! the password throttle under the (address, account) pair, so guessing codes costs what
//! guessing passwords does. An account that must have a second factor and has none gets the
//! TOTP set-up page instead (`enroll`), and a session only once it confirmed a code.
//!
//! Passkeys, as the second step or instead of the password, are `super::passkey_sign_in`;
//! [`routes`] mounts both under an area.

use askama::Template;
use askama_web::WebTemplate;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::login::Area;
use super::passkey_sign_in;
use super::session::{self, Client, LOGIN_COOKIE, SESSION_COOKIE};
use super::{WebError, WebState};
use crate::auth::{recovery, totp};
use crate::store::{Account, NewPending, PENDING_SECS, Pending, Store};

pub const PENDING_COOKIE: &str = "mr_pending";
/// The username-less passkey sign-in under way (`super::ceremonies`).
pub const PASSKEY_COOKIE: &str = "mr_passkey";

/// What a pending sign-in is for (the `purpose` column).
pub(super) const SECOND: &str = "second";
const ENROLL: &str = "enroll";

/// Our RP ID and origin as the browser sees them: from the `Host` the request was sent to
/// (the same one `session::same_origin` compares `Origin` with).
pub fn relying_party(state: &WebState, client: Client, headers: &HeaderMap) -> (String, String) {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(&state.hostname)
        .to_ascii_lowercase();
    let id = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(']') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name.to_string()
        }
        _ => host.clone(),
    };
    let scheme = if client.https { "https" } else { "http" };
    (id, format!("{scheme}://{host}"))
}

/// Records one web sign-in outcome for the Security page; a failure to record is logged,
/// never in the user's way.
pub async fn record(state: &WebState, client: Client, account_id: i64, method: &str, ok: bool) {
    // The address as the mail protocols record it (an IPv4-mapped IPv6 address as IPv4).
    let ip = client.ip.to_canonical().to_string();
    let entry = Store::sign_in_now(account_id, &ip, "web", method, ok);
    if let Err(e) = state.store.record_sign_ins(&[entry]).await {
        tracing::warn!("recording a web sign-in: {e}");
    }
}

/// The session starts: cookie set, the sign-in cookies cleared, on to `next`.
pub async fn start_session(
    state: &WebState,
    client: Client,
    headers: &HeaderMap,
    account_id: i64,
    next: &str,
) -> Result<Response, WebError> {
    let token = new_session(state, client, headers, account_id).await?;
    Ok((session_cookies(client, &token), Redirect::to(next)).into_response())
}

/// A new web session, with the device and address it was opened from (for the user's
/// Security page); returns its cookie token.
pub(super) async fn new_session(
    state: &WebState,
    client: Client,
    headers: &HeaderMap,
    account_id: i64,
) -> Result<String, WebError> {
    // A User-Agent that is not visible ASCII is kept as empty.
    let user_agent = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Ok(state
        .store
        .create_session(account_id, &client.ip.to_string(), user_agent)
        .await?)
}

pub(super) fn session_cookies(
    client: Client,
    token: &str,
) -> AppendHeaders<[(header::HeaderName, axum::http::HeaderValue); 4]> {
    AppendHeaders([
        (
            header::SET_COOKIE,
            session::set_cookie(SESSION_COOKIE, token, client, None),
        ),
        (
            header::SET_COOKIE,
            session::set_cookie(LOGIN_COOKIE, "", client, Some(0)),
        ),
        (
            header::SET_COOKIE,
            session::set_cookie(PENDING_COOKIE, "", client, Some(0)),
        ),
        (
            header::SET_COOKIE,
            session::set_cookie(PASSKEY_COOKIE, "", client, Some(0)),
        ),
    ])
}

/// After a correct password: a session, the second step, or the required set-up.
pub async fn after_password(
    area: Area,
    state: &WebState,
    client: Client,
    headers: &HeaderMap,
    account: &Account,
    next: &str,
) -> Result<Response, WebError> {
    let purpose = if state.store.second_factor_on(account.id).await? {
        SECOND
    } else if state.store.second_factor_required(account.id).await? {
        ENROLL
    } else {
        // The password sign-in itself is recorded where passwords are checked (`auth`).
        return start_session(state, client, headers, account.id, next).await;
    };
    let token = state
        .store
        .create_pending(NewPending {
            account_id: Some(account.id),
            purpose,
            area: area.name(),
            next,
            challenge: &[],
        })
        .await?;
    let page = if purpose == SECOND {
        "second"
    } else {
        "enroll"
    };
    Ok((
        [(
            header::SET_COOKIE,
            session::set_cookie(PENDING_COOKIE, &token, client, Some(PENDING_SECS)),
        )],
        Redirect::to(&format!("{}/login/{page}", area.base())),
    )
        .into_response())
}

/// The pending sign-in of this browser for `area` and `purpose`, with its account.
pub(super) async fn pending(
    state: &WebState,
    headers: &HeaderMap,
    area: Area,
    purpose: &str,
) -> Result<Option<(String, Pending, Option<Account>)>, WebError> {
    let Some(token) = session::cookie(headers, PENDING_COOKIE) else {
        return Ok(None);
    };
    let Some(p) = state.store.pending(&token).await? else {
        return Ok(None);
    };
    if p.purpose != purpose || p.area != area.name() {
        return Ok(None);
    }
    let account = match p.account_id {
        Some(id) => match state.store.account(id).await? {
            Some(a) if !a.disabled => Some(a),
            _ => return Ok(None),
        },
        None => None,
    };
    Ok(Some((token, p, account)))
}

/// Back to the password form: the pending sign-in is over (expired, spent, or none).
pub(super) fn start_over(area: Area, client: Client) -> Response {
    (
        [(
            header::SET_COOKIE,
            session::set_cookie(PENDING_COOKIE, "", client, Some(0)),
        )],
        Redirect::to(&format!("{}/login?expired=1", area.base())),
    )
        .into_response()
}

#[derive(Template, WebTemplate)]
#[template(path = "second_step.html")]
struct SecondPage {
    hostname: String,
    title: &'static str,
    base: &'static str,
    address: String,
    has_totp: bool,
    has_passkeys: bool,
    error: Option<String>,
}

async fn second_page(
    area: Area,
    state: &WebState,
    account: &Account,
    error: Option<String>,
) -> Result<SecondPage, WebError> {
    Ok(SecondPage {
        hostname: state.hostname.clone(),
        title: area.title(),
        base: area.base(),
        address: account.address.clone(),
        has_totp: state
            .store
            .totp(account.id)
            .await?
            .is_some_and(|t| t.confirmed),
        has_passkeys: !state.store.passkeys(account.id).await?.is_empty(),
        error,
    })
}

pub async fn second_form(
    area: Area,
    state: WebState,
    client: Client,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let Some((_, _, Some(account))) = pending(&state, &headers, area, SECOND).await? else {
        return Ok(start_over(area, client));
    };
    Ok(second_page(area, &state, &account, None)
        .await?
        .into_response())
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

/// Which second factor a typed code is, and whether it was right (and unused).
async fn check_code(
    state: &WebState,
    account_id: i64,
    code: &str,
) -> Result<(bool, &'static str), WebError> {
    if recovery::looks_like_code(code) {
        let hash = recovery::hash(account_id, code);
        return Ok((
            state.store.use_recovery_code(account_id, &hash).await?,
            "recovery code",
        ));
    }
    let Some(secret) = state.store.totp(account_id).await?.filter(|t| t.confirmed) else {
        return Ok((false, "totp"));
    };
    let ok = match totp::matching_step(&secret.secret, code, crate::store::now()) {
        // The store refuses a step not later than the last used: one code, one sign-in.
        Some(step) => state.store.use_totp_step(account_id, step).await?,
        None => false,
    };
    Ok((ok, "totp"))
}

pub async fn second_submit(
    area: Area,
    state: WebState,
    client: Client,
    headers: HeaderMap,
    f: CodeForm,
) -> Result<Response, WebError> {
    session::same_origin(&headers)?;
    let Some((token, p, Some(account))) = pending(&state, &headers, area, SECOND).await? else {
        return Ok(start_over(area, client));
    };
    let again = |error: String, status: StatusCode| {
        let state = state.clone();
        let account = account.clone();
        async move {
            Ok::<Response, WebError>(
                (
                    status,
                    second_page(area, &state, &account, Some(error)).await?,
                )
                    .into_response(),
            )
        }
    };
    // The same throttle as passwords, under the same (address, account) pair.
    let attempt = match state.auth.throttle().attempt(client.ip, &account.address) {
        Ok(a) => a,
        Err(left) => {
            return again(
                format!(
                    "Too many failed sign-ins. Try again in {} seconds.",
                    left.as_secs().max(1)
                ),
                StatusCode::TOO_MANY_REQUESTS,
            )
            .await;
        }
    };
    if !attempt.delay().is_zero() {
        tokio::time::sleep(attempt.delay()).await;
    }
    let (ok, method) = check_code(&state, account.id, f.code.trim()).await?;
    record(&state, client, account.id, method, ok).await;
    if ok {
        attempt.succeeded();
        // A right code whose pending sign-in another request just ended (a double submit)
        // starts over; it is no failure.
        if state.store.end_pending(&token).await? {
            return start_session(&state, client, &headers, account.id, &p.next).await;
        }
        return Ok(start_over(area, client));
    }
    attempt.failed("http");
    state.store.count_event("login_failed");
    let left = state.store.fail_pending(&token).await?;
    if left == 0 {
        return Ok(start_over(area, client));
    }
    again(
        format!(
            "This code is wrong or was already used ({left} attempt{} left).",
            if left == 1 { "" } else { "s" }
        ),
        StatusCode::UNAUTHORIZED,
    )
    .await
}

// --- Required set-up ---

#[derive(Template, WebTemplate)]
#[template(path = "enroll.html")]
struct EnrollPage {
    hostname: String,
    base: &'static str,
    address: String,
    qr_svg: String,
    secret: String,
    error: Option<String>,
}

async fn enroll_page(
    area: Area,
    state: &WebState,
    account: &Account,
    error: Option<String>,
) -> Result<EnrollPage, WebError> {
    let secret = match state.store.totp(account.id).await? {
        Some(t) if !t.confirmed => t.secret,
        _ => {
            let secret = totp::new_secret();
            state.store.begin_totp(account.id, &secret).await?;
            secret
        }
    };
    let url = totp::otpauth_url(&secret, &state.hostname, &account.address)
        .map_err(WebError::Internal)?;
    Ok(EnrollPage {
        hostname: state.hostname.clone(),
        base: area.base(),
        address: account.address.clone(),
        qr_svg: totp::qr_svg(&url).map_err(WebError::Internal)?,
        secret: totp::secret_text(&secret),
        error,
    })
}

pub async fn enroll_form(
    area: Area,
    state: WebState,
    client: Client,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let Some((_, _, Some(account))) = pending(&state, &headers, area, ENROLL).await? else {
        return Ok(start_over(area, client));
    };
    Ok(enroll_page(area, &state, &account, None)
        .await?
        .into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "recovery_codes.html")]
pub struct CodesPage {
    pub hostname: String,
    pub codes: Vec<String>,
    pub next: String,
}

/// Confirms the required TOTP with a code; the session starts with the recovery codes page.
pub async fn enroll_submit(
    area: Area,
    state: WebState,
    client: Client,
    headers: HeaderMap,
    f: CodeForm,
) -> Result<Response, WebError> {
    session::same_origin(&headers)?;
    let Some((token, p, Some(account))) = pending(&state, &headers, area, ENROLL).await? else {
        return Ok(start_over(area, client));
    };
    let step = match state.store.totp(account.id).await? {
        Some(t) if !t.confirmed => {
            totp::matching_step(&t.secret, f.code.trim(), crate::store::now())
        }
        _ => None,
    };
    let codes = recovery::new_codes();
    let hashes: Vec<String> = codes
        .iter()
        .map(|c| recovery::hash(account.id, c))
        .collect();
    let confirmed = match step {
        Some(step) => state.store.confirm_totp(account.id, step, &hashes).await?,
        None => false,
    };
    if !confirmed {
        let left = state.store.fail_pending(&token).await?;
        if left == 0 {
            return Ok(start_over(area, client));
        }
        let page = enroll_page(
            area,
            &state,
            &account,
            Some(format!(
                "This code is wrong ({left} attempts left). Type the code the app shows now."
            )),
        )
        .await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    state.store.end_pending(&token).await?;
    record(&state, client, account.id, "totp", true).await;
    let session = new_session(&state, client, &headers, account.id).await?;
    Ok((
        session_cookies(client, &session),
        CodesPage {
            hostname: state.hostname.clone(),
            codes,
            next: p.next,
        },
    )
        .into_response())
}

/// The routes of the second step and of passkey sign-in under `area`'s base (`/mail/login/…`,
/// `/admin/login/…`), merged by the area's router so its headers (CSP, no-store) apply.
pub fn routes(area: Area) -> axum::Router<WebState> {
    use axum::Form;
    use axum::extract::State;
    use axum::routing::{get, post};
    let base = area.base();
    axum::Router::new()
        .route(
            &format!("{base}/login/second"),
            get(move |State(s): State<WebState>, c: Client, h: HeaderMap| {
                second_form(area, s, c, h)
            })
            .post(
                move |State(s): State<WebState>,
                      c: Client,
                      h: HeaderMap,
                      Form(f): Form<CodeForm>| { second_submit(area, s, c, h, f) },
            ),
        )
        .route(
            &format!("{base}/login/second/passkey/options"),
            post(move |State(s): State<WebState>, c: Client, h: HeaderMap| {
                passkey_sign_in::second_options(area, s, c, h)
            }),
        )
        .route(
            &format!("{base}/login/second/passkey"),
            post(
                move |State(s): State<WebState>,
                      c: Client,
                      h: HeaderMap,
                      Form(f): Form<passkey_sign_in::AssertionForm>| {
                    passkey_sign_in::second(area, s, c, h, f)
                },
            ),
        )
        .route(
            &format!("{base}/login/passkey/options"),
            post(
                move |State(s): State<WebState>,
                      c: Client,
                      h: HeaderMap,
                      Form(f): Form<passkey_sign_in::TokenForm>| {
                    passkey_sign_in::options(area, s, c, h, f)
                },
            ),
        )
        .route(
            &format!("{base}/login/passkey"),
            post(
                move |State(s): State<WebState>,
                      c: Client,
                      h: HeaderMap,
                      Form(f): Form<passkey_sign_in::AssertionForm>| {
                    passkey_sign_in::submit(area, s, c, h, f)
                },
            ),
        )
        .route(
            &format!("{base}/login/enroll"),
            get(move |State(s): State<WebState>, c: Client, h: HeaderMap| {
                enroll_form(area, s, c, h)
            })
            .post(
                move |State(s): State<WebState>,
                      c: Client,
                      h: HeaderMap,
                      Form(f): Form<CodeForm>| { enroll_submit(area, s, c, h, f) },
            ),
        )
}
