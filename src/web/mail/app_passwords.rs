//! `/mail/settings/app-passwords`: the account's app passwords for mail clients (issue 19):
//! listed with their scopes and last use, made (the password shown once, in the response to
//! the POST, never in a URL) and revoked (the sessions using it end within a second, see
//! `auth::live`). With two-factor sign-in on, mail clients sign in only with these; the page
//! then also offers the iPhone/iPad/Mac profile with a new app password in it
//! (`mobileconfig.rs`), and one for Thunderbird, whose autoconfig file has no password.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::super::session::Posted;
use super::super::{WebError, WebState};
use super::{Chrome, Reader, iso_date, short_date};
use crate::auth::app_passwords::{self, DAV, IMAP, MANAGESIEVE, POP3, SMTP};
use crate::store::AppPassword;

/// One row of the list, ready to show.
pub struct Row {
    pub id: i64,
    pub name: String,
    pub scopes: String,
    pub created: String,
    pub created_iso: String,
    /// "never", or when, from where and over which protocol.
    pub last_used: String,
}

impl Row {
    fn new(p: &AppPassword) -> Row {
        let last_used = match (&p.last_used_at, &p.last_used_ip, &p.last_used_protocol) {
            (Some(at), ip, protocol) => format!(
                "{} from {} over {}",
                short_date(*at),
                ip.as_deref().unwrap_or("?"),
                protocol.as_deref().unwrap_or("?").to_uppercase()
            ),
            _ => "never".to_string(),
        };
        Row {
            id: p.id,
            name: p.name.clone(),
            scopes: app_passwords::describe(p.scopes),
            created: short_date(p.created_at),
            created_iso: iso_date(p.created_at),
            last_used,
        }
    }
}

/// A password just made: shown on this response only.
pub struct Made {
    pub name: String,
    pub password: String,
    pub scopes: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "mail/app_passwords.html")]
pub struct AppPasswordsPage {
    chrome: Chrome,
    rows: Vec<Row>,
    /// The account has two-factor sign-in on: mail clients need an app password.
    second_factor: bool,
    made: Option<Made>,
    name: String,
    error: Option<String>,
    /// The scope checkboxes: (field name, label, checked).
    scopes: Vec<(&'static str, &'static str, bool)>,
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

/// The create form: a name and one checkbox per protocol.
#[derive(Deserialize, Default)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    imap: Option<String>,
    pop3: Option<String>,
    smtp: Option<String>,
    managesieve: Option<String>,
    dav: Option<String>,
}

impl CreateForm {
    fn bits(&self) -> i64 {
        [
            (&self.imap, IMAP),
            (&self.pop3, POP3),
            (&self.smtp, SMTP),
            (&self.managesieve, MANAGESIEVE),
            (&self.dav, DAV),
        ]
        .iter()
        .filter(|(field, _)| field.is_some())
        .fold(0, |bits, (_, bit)| bits | bit)
    }
}

fn scope_boxes(bits: i64) -> Vec<(&'static str, &'static str, bool)> {
    [
        ("imap", IMAP),
        ("pop3", POP3),
        ("smtp", SMTP),
        ("managesieve", MANAGESIEVE),
        ("dav", DAV),
    ]
    .into_iter()
    .filter_map(|(field, bit)| {
        let label = app_passwords::SCOPES
            .iter()
            .find(|(b, _)| *b == bit)
            .map(|(_, l)| *l)?;
        Some((field, label, bits & bit != 0))
    })
    .collect()
}

async fn build(
    state: &WebState,
    reader: &Reader,
    done: Option<&str>,
) -> Result<AppPasswordsPage, WebError> {
    let id = reader.account_id();
    let rows = state.store.app_passwords(id).await?;
    Ok(AppPasswordsPage {
        chrome: Chrome::new(state, reader, None, done).await?,
        rows: rows.iter().map(Row::new).collect(),
        second_factor: state.store.second_factor_on(id).await?,
        made: None,
        name: String::new(),
        error: None,
        scopes: scope_boxes(IMAP | SMTP),
    })
}

pub async fn page(
    reader: Reader,
    State(state): State<WebState>,
    Query(q): Query<DoneQuery>,
) -> Result<AppPasswordsPage, WebError> {
    build(&state, &reader, q.done.as_deref()).await
}

pub async fn create(
    State(state): State<WebState>,
    Posted(reader, f): Posted<Reader, CreateForm>,
) -> Result<Response, WebError> {
    let bits = f.bits();
    let name = f.name.trim();
    let error = if name.is_empty() {
        Some("Name the device or app this password is for.".to_string())
    } else if name.chars().count() > crate::store::app_passwords::MAX_NAME {
        Some(format!(
            "A name of at most {} characters.",
            crate::store::app_passwords::MAX_NAME
        ))
    } else if bits == 0 {
        Some("Choose at least one protocol.".to_string())
    } else {
        None
    };
    let mut page = build(&state, &reader, None).await?;
    if let Some(error) = error {
        page.error = Some(error);
        page.name = f.name;
        page.scopes = scope_boxes(bits);
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let Some((row, password)) = state
        .auth
        .create_app_password(reader.account_id(), name, bits)
        .await?
    else {
        page.error = Some(format!(
            "You have {} app passwords, the most there can be: revoke one you no longer use.",
            crate::store::app_passwords::MAX_PER_ACCOUNT
        ));
        page.name = f.name;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    tracing::info!(
        account = reader.0.account.address,
        app_password = row.id,
        "app password created"
    );
    page.rows.insert(0, Row::new(&row));
    page.made = Some(Made {
        name: row.name.clone(),
        password,
        scopes: app_passwords::describe(row.scopes),
    });
    Ok(page.into_response())
}

/// The revoke button carries only the token.
#[derive(Deserialize)]
pub struct RevokeForm {}

pub async fn revoke(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    Posted(reader, _f): Posted<Reader, RevokeForm>,
) -> Result<Response, WebError> {
    if !state
        .auth
        .revoke_app_password(reader.account_id(), id)
        .await?
    {
        return Err(WebError::NotFound);
    }
    tracing::info!(
        account = reader.0.account.address,
        app_password = id,
        "app password revoked"
    );
    Ok(Redirect::to("/mail/settings/app-passwords?done=app-password-revoked").into_response())
}
