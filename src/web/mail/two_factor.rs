//! Two-factor sign-in settings (`/mail/settings/two-factor`): an authenticator app (TOTP: QR
//! code and key, confirmed with a code before it counts), the ten recovery codes (shown once,
//! at confirmation and when regenerated), and passkeys (register, name, list, remove; the
//! WebAuthn calls are in `static/two_factor.js`).
//!
//! Turning a factor off asks for the password (through the shared throttle): a session left
//! open on someone's screen must not be enough to remove it. An account that must have a
//! second factor (its domain, or admins) cannot remove its last one.

use askama::Template;
use askama_web::WebTemplate;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::super::second_step::{CodesPage, relying_party};
use super::super::session::{Client, NoFields, Posted};
use super::super::{WebError, WebState};
use super::settings::DoneQuery;
use super::{Chrome, Reader};
use crate::auth::{AuthError, recovery, totp, webauthn};
use crate::store::{NewPasskey, NewPending};

/// The settings page (its routes are in `super::router`, with every webmail route).
const PAGE: &str = "/mail/settings/two-factor";
const REGISTER: &str = "passkey-register";
/// A passkey's name, as the user gives it.
const MAX_NAME: usize = 60;

pub struct PasskeyRow {
    id: i64,
    name: String,
    created: String,
    last_used: String,
}

/// The TOTP being set up: its QR code and key.
pub struct Setup {
    qr_svg: String,
    secret: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "mail/two_factor.html")]
pub struct TwoFactorPage {
    chrome: Chrome,
    totp_on: bool,
    setup: Option<Setup>,
    codes_left: i64,
    passkeys: Vec<PasskeyRow>,
    required: bool,
    error: Option<String>,
}

async fn two_factor_page(
    state: &WebState,
    reader: &Reader,
    done: Option<&str>,
    error: Option<String>,
) -> Result<TwoFactorPage, WebError> {
    let id = reader.account_id();
    let totp = state.store.totp(id).await?;
    let setup = match &totp {
        Some(t) if !t.confirmed => {
            let url = totp::otpauth_url(&t.secret, &state.hostname, &reader.0.account.address)
                .map_err(WebError::Internal)?;
            Some(Setup {
                qr_svg: totp::qr_svg(&url).map_err(WebError::Internal)?,
                secret: totp::secret_text(&t.secret),
            })
        }
        _ => None,
    };
    let date = |t: i64| super::short_date(t);
    Ok(TwoFactorPage {
        chrome: Chrome::new(state, reader, None, done).await?,
        totp_on: totp.as_ref().is_some_and(|t| t.confirmed),
        setup,
        codes_left: state.store.recovery_codes_left(id).await?,
        passkeys: state
            .store
            .passkeys(id)
            .await?
            .into_iter()
            .map(|p| PasskeyRow {
                id: p.id,
                name: p.name,
                created: date(p.created_at),
                last_used: p.last_used_at.map(date).unwrap_or_else(|| "never".into()),
            })
            .collect(),
        required: state.store.second_factor_required(id).await?,
        error,
    })
}

pub async fn page(
    reader: Reader,
    State(state): State<WebState>,
    Query(q): Query<DoneQuery>,
) -> Result<TwoFactorPage, WebError> {
    two_factor_page(&state, &reader, q.done(), None).await
}

async fn failed(state: &WebState, reader: &Reader, error: String) -> Result<Response, WebError> {
    let page = two_factor_page(state, reader, None, Some(error)).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// Starts (or restarts) setting up an authenticator app.
pub async fn begin_totp(
    State(state): State<WebState>,
    Posted(reader, _): Posted<Reader, NoFields>,
) -> Result<Response, WebError> {
    state
        .store
        .begin_totp(reader.account_id(), &totp::new_secret())
        .await?;
    Ok(Redirect::to(&format!("{PAGE}#totp")).into_response())
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

fn codes_page(state: &WebState, codes: Vec<String>) -> CodesPage {
    CodesPage {
        hostname: state.hostname.clone(),
        codes,
        next: PAGE.to_string(),
    }
}

/// Turns the app on with a code it shows; answers with the recovery codes, shown once.
pub async fn confirm_totp(
    State(state): State<WebState>,
    Posted(reader, f): Posted<Reader, CodeForm>,
) -> Result<Response, WebError> {
    let id = reader.account_id();
    let step = match state.store.totp(id).await? {
        Some(t) if !t.confirmed => totp::matching_step(&t.secret, &f.code, crate::store::now()),
        _ => return Ok(Redirect::to(PAGE).into_response()),
    };
    let codes = recovery::new_codes();
    let hashes: Vec<String> = codes.iter().map(|c| recovery::hash(id, c)).collect();
    match step {
        Some(step) if state.store.confirm_totp(id, step, &hashes).await? => {
            Ok(codes_page(&state, codes).into_response())
        }
        _ => {
            failed(
                &state,
                &reader,
                "This code is wrong. Type the code the app shows now.".into(),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    password: String,
}

/// Checks the account's password through the shared throttle; the error to show if wrong.
async fn password_ok(
    state: &WebState,
    client: Client,
    reader: &Reader,
    password: &str,
) -> Result<Option<String>, WebError> {
    match state
        .auth
        .login_fresh("web", client.ip, &reader.0.account.address, password)
        .await
    {
        Ok(_) => Ok(None),
        // (AppPasswordRequired is the mail protocols' answer; login_fresh never gives it.)
        Err(AuthError::Failed | AuthError::AppPasswordRequired) => {
            Ok(Some("This is not your password.".into()))
        }
        Err(AuthError::Locked(s)) => Ok(Some(format!(
            "Too many failed attempts; try again in {s} seconds."
        ))),
        Err(AuthError::Internal(e)) => Err(WebError::Internal(e)),
    }
}

/// Whether removing one factor would leave a required account with none.
async fn last_required(
    state: &WebState,
    reader: &Reader,
    factors_after: usize,
) -> Result<bool, WebError> {
    Ok(factors_after == 0
        && state
            .store
            .second_factor_required(reader.account_id())
            .await?)
}

/// With no second factor left, recovery codes recover nothing: they go too.
async fn tidy(state: &WebState, account_id: i64) -> Result<(), WebError> {
    if !state.store.second_factor_on(account_id).await? {
        state.store.set_recovery_codes(account_id, &[]).await?;
    }
    Ok(())
}

pub async fn remove_totp(
    State(state): State<WebState>,
    client: Client,
    Posted(reader, f): Posted<Reader, PasswordForm>,
) -> Result<Response, WebError> {
    let id = reader.account_id();
    let passkeys = state.store.passkeys(id).await?.len();
    if last_required(&state, &reader, passkeys).await? {
        return failed(
            &state,
            &reader,
            "Your account must keep a second factor: add a passkey first.".into(),
        )
        .await;
    }
    if let Some(e) = password_ok(&state, client, &reader, &f.password).await? {
        return failed(&state, &reader, e).await;
    }
    state.store.remove_totp(id).await?;
    tidy(&state, id).await?;
    Ok(Redirect::to(&format!("{PAGE}?done=totp-off")).into_response())
}

pub async fn new_recovery_codes(
    State(state): State<WebState>,
    Posted(reader, _): Posted<Reader, NoFields>,
) -> Result<Response, WebError> {
    let id = reader.account_id();
    if !state.store.second_factor_on(id).await? {
        return Ok(Redirect::to(PAGE).into_response());
    }
    let codes = recovery::new_codes();
    let hashes: Vec<String> = codes.iter().map(|c| recovery::hash(id, c)).collect();
    state.store.set_recovery_codes(id, &hashes).await?;
    Ok(codes_page(&state, codes).into_response())
}

/// What `navigator.credentials.create()` needs (`static/two_factor.js`).
#[derive(serde::Serialize)]
struct CreateOptions {
    token: String,
    challenge: String,
    #[serde(rename = "rpId")]
    rp_id: String,
    #[serde(rename = "rpName")]
    rp_name: String,
    #[serde(rename = "userId")]
    user_id: String,
    #[serde(rename = "userName")]
    user_name: String,
    algorithms: [i64; 3],
    exclude: Vec<String>,
}

/// The user handle of the account's passkeys: one per account, random, kept with each.
async fn user_handle(state: &WebState, account_id: i64) -> Result<Vec<u8>, WebError> {
    Ok(match state.store.passkey_user_handle(account_id).await? {
        Some(h) => h,
        None => {
            let bytes: [u8; 16] = rand::random();
            bytes.to_vec()
        }
    })
}

pub async fn passkey_options(
    State(state): State<WebState>,
    client: Client,
    headers: HeaderMap,
    Posted(reader, _): Posted<Reader, NoFields>,
) -> Result<Response, WebError> {
    let id = reader.account_id();
    let challenge = webauthn::new_challenge();
    let token = state
        .store
        .create_pending(NewPending {
            account_id: Some(id),
            purpose: REGISTER,
            area: "mail",
            next: PAGE,
            challenge: &challenge,
        })
        .await?;
    let (rp_id, _) = relying_party(&state, client, &headers);
    Ok(Json(CreateOptions {
        token,
        challenge: webauthn::b64(&challenge),
        rp_id,
        rp_name: format!("Mailroom {}", state.hostname),
        user_id: webauthn::b64(&user_handle(&state, id).await?),
        user_name: reader.0.account.address.clone(),
        algorithms: webauthn::ALGORITHMS,
        exclude: state
            .store
            .passkeys(id)
            .await?
            .iter()
            .map(|p| webauthn::b64(&p.credential_id))
            .collect(),
    })
    .into_response())
}

#[derive(Deserialize)]
pub struct NewPasskeyForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    name: String,
    #[serde(default, rename = "clientDataJSON")]
    client_data_json: String,
    #[serde(default, rename = "attestationObject")]
    attestation_object: String,
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

pub async fn add_passkey(
    State(state): State<WebState>,
    client: Client,
    headers: HeaderMap,
    Posted(reader, f): Posted<Reader, NewPasskeyForm>,
) -> Result<Response, WebError> {
    let id = reader.account_id();
    let pending = state.store.pending(&f.token).await?;
    // The challenge is spent whatever happens next.
    let Some(p) = pending.filter(|p| p.purpose == REGISTER && p.account_id == Some(id)) else {
        return Ok(json_error(
            StatusCode::FORBIDDEN,
            "This form expired. Try again.",
        ));
    };
    if !state.store.end_pending(&f.token).await? {
        return Ok(json_error(
            StatusCode::FORBIDDEN,
            "This form expired. Try again.",
        ));
    }
    let name = f.name.trim();
    let name = if name.is_empty() { "Passkey" } else { name };
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Ok(json_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("A name of at most {MAX_NAME} characters."),
        ));
    }
    let (rp_id, origin) = relying_party(&state, client, &headers);
    let rp = webauthn::RelyingParty {
        id: &rp_id,
        origin: &origin,
    };
    let checked = webauthn::unb64(&f.client_data_json, "clientDataJSON").and_then(|cd| {
        let ao = webauthn::unb64(&f.attestation_object, "attestationObject")?;
        webauthn::verify_registration(rp, &p.challenge, &cd, &ao)
    });
    let registered = match checked {
        Ok(r) => r,
        Err(e) => {
            return Ok(json_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("The passkey was not accepted: {e}."),
            ));
        }
    };
    let handle = user_handle(&state, id).await?;
    match state
        .store
        .add_passkey(NewPasskey {
            account_id: id,
            credential_id: &registered.credential_id,
            public_key: &registered.public_key,
            sign_count: i64::from(registered.sign_count),
            name,
            user_handle: &handle,
        })
        .await
    {
        Ok(_) => Ok(
            Json(serde_json::json!({ "next": format!("{PAGE}?done=passkey-added") }))
                .into_response(),
        ),
        Err(crate::store::StoreError::Conflict(e)) => Ok(json_error(StatusCode::CONFLICT, &e)),
        Err(e) => Err(e.into()),
    }
}

pub async fn remove_passkey(
    State(state): State<WebState>,
    client: Client,
    Path(passkey): Path<i64>,
    Posted(reader, f): Posted<Reader, PasswordForm>,
) -> Result<Response, WebError> {
    let id = reader.account_id();
    let totp_on = state.store.totp(id).await?.is_some_and(|t| t.confirmed);
    let others = state.store.passkeys(id).await?.len().saturating_sub(1);
    if last_required(&state, &reader, others + usize::from(totp_on)).await? {
        return failed(
            &state,
            &reader,
            "Your account must keep a second factor: set up an authenticator app or another passkey first.".into(),
        )
        .await;
    }
    if let Some(e) = password_ok(&state, client, &reader, &f.password).await? {
        return failed(&state, &reader, e).await;
    }
    if !state.store.remove_passkey(id, passkey).await? {
        return Err(WebError::NotFound);
    }
    tidy(&state, id).await?;
    Ok(Redirect::to(&format!("{PAGE}?done=passkey-removed")).into_response())
}
