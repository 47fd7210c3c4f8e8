//! Passkeys at the web sign-in (issue 19): as the second step after the password, and
//! "Sign in with a passkey" instead of it. The latter is username-less (the browser offers the
//! discoverable credentials it has for this host) and needs the authenticator to have verified
//! the user (UV), since the passkey then stands for both factors; its challenge lives in
//! memory (`super::ceremonies`), as anyone may ask for one. The WebAuthn checks themselves are
//! `auth::webauthn`; the browser side is `static/two_factor.js`.

use axum::Json;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::login::Area;
use super::second_step::{PASSKEY_COOKIE, SECOND, pending, record, relying_party, session_cookies};
use super::session::{self, Client, LOGIN_COOKIE};
use super::{WebError, WebState};
use crate::auth::webauthn;
use crate::store::PENDING_SECS;

/// What `navigator.credentials.get()` needs (`static/two_factor.js`).
#[derive(serde::Serialize)]
struct GetOptions {
    challenge: String,
    #[serde(rename = "rpId")]
    rp_id: String,
    allow: Vec<String>,
    #[serde(rename = "userVerification")]
    user_verification: &'static str,
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// Options for a passkey as the second factor: the account's credentials, a new challenge.
pub async fn second_options(
    area: Area,
    state: WebState,
    client: Client,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    session::same_origin(&headers)?;
    let Some((token, _, Some(account))) = pending(&state, &headers, area, SECOND).await? else {
        return Ok(json_error(
            StatusCode::FORBIDDEN,
            "The sign-in expired. Start again.",
        ));
    };
    let challenge = webauthn::new_challenge();
    state
        .store
        .set_pending_challenge(&token, &challenge)
        .await?;
    let allow = state
        .store
        .passkeys(account.id)
        .await?
        .iter()
        .map(|p| webauthn::b64(&p.credential_id))
        .collect();
    let (rp_id, _) = relying_party(&state, client, &headers);
    Ok(Json(GetOptions {
        challenge: webauthn::b64(&challenge),
        rp_id,
        allow,
        user_verification: "discouraged",
    })
    .into_response())
}

/// Options for "Sign in with a passkey": no account yet, a new challenge, the browser picks.
/// The sign-in form's double-submit token guards it like the password form.
pub async fn options(
    area: Area,
    state: WebState,
    client: Client,
    headers: HeaderMap,
    f: TokenForm,
) -> Result<Response, WebError> {
    session::same_origin(&headers)?;
    let cookie = session::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if cookie.is_empty() || !session::same_secret(&cookie, &f.login_token) {
        return Ok(json_error(
            StatusCode::FORBIDDEN,
            "The sign-in form expired. Reload the page and try again.",
        ));
    }
    let challenge = webauthn::new_challenge();
    let token = crate::store::random_token();
    let next = super::login::safe_next(area, f.next.as_deref());
    if !state.passkey_sign_ins.start(
        token.clone(),
        client.ip,
        challenge.clone(),
        area.name(),
        next,
    ) {
        return Ok(json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many passkey sign-ins are under way. Try again in a few minutes.",
        ));
    }
    let (rp_id, _) = relying_party(&state, client, &headers);
    Ok((
        [(
            header::SET_COOKIE,
            session::set_cookie(PASSKEY_COOKIE, &token, client, Some(PENDING_SECS)),
        )],
        Json(GetOptions {
            challenge: webauthn::b64(&challenge),
            rp_id,
            allow: Vec::new(),
            user_verification: "required",
        }),
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    login_token: String,
    next: Option<String>,
}

/// A `navigator.credentials.get()` answer, base64url fields.
#[derive(Deserialize)]
pub struct AssertionForm {
    #[serde(default)]
    id: String,
    #[serde(default, rename = "clientDataJSON")]
    client_data_json: String,
    #[serde(default, rename = "authenticatorData")]
    authenticator_data: String,
    #[serde(default)]
    signature: String,
}

/// Checks an assertion against the pending challenge; the passkey and its account if it holds.
async fn check_assertion(
    state: &WebState,
    client: Client,
    headers: &HeaderMap,
    challenge: &[u8],
    account_id: Option<i64>,
    f: &AssertionForm,
    require_uv: bool,
) -> Result<Option<crate::store::Passkey>, WebError> {
    let decoded = (|| {
        Ok::<_, webauthn::WebauthnError>((
            webauthn::unb64(&f.id, "id")?,
            webauthn::unb64(&f.client_data_json, "clientDataJSON")?,
            webauthn::unb64(&f.authenticator_data, "authenticatorData")?,
            webauthn::unb64(&f.signature, "signature")?,
        ))
    })();
    let Ok((id, client_data, auth_data, signature)) = decoded else {
        return Ok(None);
    };
    let Some(passkey) = state.store.passkey_by_credential(&id).await? else {
        return Ok(None);
    };
    if account_id.is_some_and(|a| a != passkey.account_id) {
        return Ok(None);
    }
    let (rp_id, origin) = relying_party(state, client, headers);
    let rp = webauthn::RelyingParty {
        id: &rp_id,
        origin: &origin,
    };
    match webauthn::verify_assertion(
        rp,
        challenge,
        &client_data,
        &auth_data,
        &signature,
        &passkey.public_key,
        require_uv,
    ) {
        Ok(asserted) => {
            if state
                .store
                .use_passkey(passkey.id, i64::from(asserted.sign_count))
                .await?
            {
                Ok(Some(passkey))
            } else {
                tracing::warn!(
                    "passkey {} of account {}: signature counter went back (a cloned authenticator?)",
                    passkey.id,
                    passkey.account_id
                );
                Ok(None)
            }
        }
        Err(e) => {
            tracing::info!("passkey sign-in refused: {e}");
            Ok(None)
        }
    }
}

/// Where the browser goes once signed in (the script follows it).
fn signed_in_json(client: Client, token: &str, next: &str) -> Response {
    (
        session_cookies(client, token),
        Json(serde_json::json!({ "next": next })),
    )
        .into_response()
}

/// A passkey as the second factor.
pub async fn second(
    area: Area,
    state: WebState,
    client: Client,
    headers: HeaderMap,
    f: AssertionForm,
) -> Result<Response, WebError> {
    session::same_origin(&headers)?;
    let Some((token, p, Some(account))) = pending(&state, &headers, area, SECOND).await? else {
        return Ok(json_error(
            StatusCode::FORBIDDEN,
            "The sign-in expired. Start again.",
        ));
    };
    // The same throttle as passwords and codes, under the same (address, account) pair.
    let attempt = match state.auth.throttle().attempt(client.ip, &account.address) {
        Ok(a) => a,
        Err(left) => {
            return Ok(json_error(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "Too many failed sign-ins. Try again in {} seconds.",
                    left.as_secs().max(1)
                ),
            ));
        }
    };
    if !attempt.delay().is_zero() {
        tokio::time::sleep(attempt.delay()).await;
    }
    let ok = check_assertion(
        &state,
        client,
        &headers,
        &p.challenge,
        Some(account.id),
        &f,
        false,
    )
    .await?;
    record(&state, client, account.id, "passkey", ok.is_some()).await;
    if ok.is_some() {
        attempt.succeeded();
        if state.store.end_pending(&token).await? {
            let session =
                super::second_step::new_session(&state, client, &headers, account.id).await?;
            return Ok(signed_in_json(client, &session, &p.next));
        }
        return Ok(json_error(
            StatusCode::FORBIDDEN,
            "The sign-in expired. Start again.",
        ));
    }
    attempt.failed("http");
    state.store.fail_pending(&token).await?;
    Ok(json_error(
        StatusCode::UNAUTHORIZED,
        "This passkey was not accepted.",
    ))
}

/// "Sign in with a passkey", instead of the password.
pub async fn submit(
    area: Area,
    state: WebState,
    client: Client,
    headers: HeaderMap,
    f: AssertionForm,
) -> Result<Response, WebError> {
    session::same_origin(&headers)?;
    // One answer per challenge, whatever its outcome.
    let ceremony = session::cookie(&headers, PASSKEY_COOKIE)
        .and_then(|token| state.passkey_sign_ins.take(&token))
        .filter(|c| c.area == area.name());
    let Some(ceremony) = ceremony else {
        return Ok(json_error(
            StatusCode::FORBIDDEN,
            "The sign-in expired. Start again.",
        ));
    };
    let checked = check_assertion(
        &state,
        client,
        &headers,
        &ceremony.challenge,
        None,
        &f,
        true,
    )
    .await?;
    let Some(passkey) = checked else {
        return Ok(json_error(
            StatusCode::UNAUTHORIZED,
            "This passkey was not accepted.",
        ));
    };
    let account = match state.store.account(passkey.account_id).await? {
        Some(a) if !a.disabled => a,
        _ => {
            return Ok(json_error(
                StatusCode::UNAUTHORIZED,
                "This passkey was not accepted.",
            ));
        }
    };
    if !area.admits(&account) {
        record(&state, client, account.id, "passkey", false).await;
        return Ok(json_error(
            StatusCode::FORBIDDEN,
            "This account is not an administrator.",
        ));
    }
    record(&state, client, account.id, "passkey", true).await;
    let session = super::second_step::new_session(&state, client, &headers, account.id).await?;
    Ok(signed_in_json(client, &session, &ceremony.next))
}
