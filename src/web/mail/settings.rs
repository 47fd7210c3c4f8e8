//! Settings: display name and signature; password change (with the current password).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::super::session::Client;
use super::super::session::Posted;
use super::super::{WebError, WebState};
use super::{Chrome, Reader};
use crate::auth::{AuthError, password};

/// A signature longer than this is a mistake (a pasted message).
const MAX_SIGNATURE: usize = 4000;

#[derive(Template, WebTemplate, Default)]
#[template(path = "mail/settings.html")]
pub struct SettingsPage {
    chrome: Chrome,
    display_name: String,
    signature: String,
    profile_error: Option<String>,
    current_error: Option<String>,
    new_error: Option<String>,
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

impl DoneQuery {
    pub fn done(&self) -> Option<&str> {
        self.done.as_deref()
    }
}

async fn settings_page(
    state: &WebState,
    reader: &Reader,
    done: Option<&str>,
) -> Result<SettingsPage, WebError> {
    Ok(SettingsPage {
        chrome: Chrome::new(state, reader, None, done).await?,
        display_name: reader.0.account.display_name.clone(),
        signature: reader.0.account.signature.clone(),
        ..SettingsPage::default()
    })
}

pub async fn page(
    reader: Reader,
    State(state): State<WebState>,
    Query(q): Query<DoneQuery>,
) -> Result<SettingsPage, WebError> {
    settings_page(&state, &reader, q.done.as_deref()).await
}

#[derive(Deserialize)]
pub struct ProfileForm {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    signature: String,
}

pub async fn profile(
    State(state): State<WebState>,
    Posted(reader, f): Posted<Reader, ProfileForm>,
) -> Result<Response, WebError> {
    let name = f.display_name.trim();
    if name.chars().count() > 200 || name.contains(['\r', '\n', '<', '>', '"']) {
        let mut page = settings_page(&state, &reader, None).await?;
        page.display_name = f.display_name;
        page.signature = f.signature;
        page.profile_error =
            Some("At most 200 characters, without quotes or angle brackets.".into());
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    if f.signature.chars().count() > MAX_SIGNATURE {
        let mut page = settings_page(&state, &reader, None).await?;
        page.display_name = f.display_name;
        page.signature = f.signature;
        page.profile_error = Some(format!(
            "A signature of at most {MAX_SIGNATURE} characters."
        ));
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let address = &reader.0.account.address;
    state.store.set_display_name(address, name).await?;
    state
        .store
        .set_signature(address, &f.signature.replace("\r\n", "\n"))
        .await?;
    Ok(Redirect::to("/mail/settings?done=profile").into_response())
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    repeat: String,
}

pub async fn password(
    State(state): State<WebState>,
    client: Client,
    Posted(reader, f): Posted<Reader, PasswordForm>,
) -> Result<Response, WebError> {
    let mut page = settings_page(&state, &reader, None).await?;
    // The current password through the shared throttle: a stolen session cannot guess it.
    match state
        .auth
        .login_fresh("web", client.ip, &reader.0.account.address, &f.current)
        .await
    {
        Ok(_) => {}
        Err(AuthError::Failed | AuthError::AppPasswordRequired) => {
            page.current_error = Some("This is not your current password.".into())
        }
        Err(AuthError::Locked(s)) => {
            page.current_error = Some(format!(
                "Too many failed attempts; try again in {s} seconds."
            ))
        }
        Err(AuthError::Internal(e)) => return Err(WebError::Internal(e)),
    }
    let account = &reader.0.account;
    if let Err(e) =
        password::check_strength_off_thread(&f.new, &[&account.address, &account.display_name])
            .await
    {
        page.new_error = Some(e);
    } else if f.new != f.repeat {
        page.new_error = Some("The two new passwords differ.".into());
    }
    if page.current_error.is_some() || page.new_error.is_some() {
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let hash = password::hash(&f.new)
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    state
        .store
        .set_password_hash(&reader.0.account.address, &hash)
        .await?;
    state.auth.forget_account(reader.0.account.id);
    // Whoever else held a session (a stolen cookie, a forgotten computer) is signed out; this
    // browser stays signed in.
    state
        .store
        .end_other_sessions(reader.0.account.id, &reader.0.id)
        .await?;
    Ok(Redirect::to("/mail/settings?done=password").into_response())
}
