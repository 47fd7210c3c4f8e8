//! Managing folders: create (with `/` for sub-folders), rename, delete with their messages.
//! INBOX and the special folders (Drafts, Sent, Junk, Trash, Archive) stay as they are.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::super::session::{NoFields, Posted};
use super::super::{WebError, WebState};
use super::{Chrome, Reader};
use crate::store::StoreError;

#[derive(Template, WebTemplate)]
#[template(path = "mail/folders.html")]
pub struct FoldersPage {
    chrome: Chrome,
    name: String,
    error: Option<String>,
    /// The folder whose rename failed, with why.
    rename_error: Option<(i64, String)>,
}

impl FoldersPage {
    fn rename_error_for(&self, id: &i64) -> Option<&str> {
        self.rename_error
            .as_ref()
            .filter(|(i, _)| i == id)
            .map(|(_, e)| e.as_str())
    }
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

pub async fn page(
    reader: Reader,
    State(state): State<WebState>,
    Query(q): Query<DoneQuery>,
) -> Result<FoldersPage, WebError> {
    Ok(FoldersPage {
        chrome: Chrome::new(&state, &reader, None, q.done.as_deref()).await?,
        name: String::new(),
        error: None,
        rename_error: None,
    })
}

#[derive(Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
}

fn user_error(e: StoreError) -> Result<String, WebError> {
    match e {
        StoreError::Invalid(m) | StoreError::Conflict(m) | StoreError::NotFound(m) => Ok(m),
        other => Err(other.into()),
    }
}

pub async fn create(
    State(state): State<WebState>,
    Posted(reader, f): Posted<Reader, NameForm>,
) -> Result<Response, WebError> {
    let name = f.name.trim().trim_matches('/').to_string();
    let error = if name.is_empty() {
        "Give the folder a name.".to_string()
    } else {
        // The parents that creating it will create too: the webmail subscribes what it
        // creates, as an IMAP client does after CREATE, so clients showing only subscribed
        // folders show them (the server's CREATE subscribes nothing, RFC 3501 §6.3.6).
        let mut created = Vec::new();
        for (i, _) in name.match_indices('/') {
            let parent = name.get(..i).unwrap_or_default();
            if state
                .store
                .mailbox(reader.account_id(), parent)
                .await?
                .is_none()
            {
                created.push(parent.to_string());
            }
        }
        match state
            .store
            .create_mailbox_path(reader.account_id(), &name)
            .await
        {
            Ok(m) => {
                created.push(m.name.clone());
                for made in &created {
                    state
                        .store
                        .subscribe_name(reader.account_id(), made)
                        .await?;
                }
                return Ok(
                    Redirect::to(&format!("/mail/box/{}?done=folder-created", m.id()))
                        .into_response(),
                );
            }
            Err(e) => user_error(e)?,
        }
    };
    Ok((
        StatusCode::UNPROCESSABLE_ENTITY,
        FoldersPage {
            chrome: Chrome::new(&state, &reader, None, None).await?,
            name: f.name,
            error: Some(error),
            rename_error: None,
        },
    )
        .into_response())
}

fn is_system(m: &crate::store::Mailbox) -> bool {
    m.special_use.is_some() || m.name.eq_ignore_ascii_case("INBOX")
}

pub async fn rename(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    Posted(reader, f): Posted<Reader, NameForm>,
) -> Result<Response, WebError> {
    let mailbox = reader.mailbox(&state, id).await?;
    let to = f.name.trim().trim_matches('/').to_string();
    let error = if is_system(&mailbox) {
        format!("{} is a standard folder and keeps its name.", mailbox.name)
    } else if to.is_empty() {
        "Give the folder a name.".to_string()
    } else {
        match state
            .store
            .rename_mailbox(reader.account_id(), &mailbox.name, &to)
            .await
        {
            Ok(()) => {
                // Like a client, the webmail keeps following the folder under its new name.
                state
                    .store
                    .move_subscriptions(reader.account_id(), &mailbox.name, &to)
                    .await?;
                return Ok(Redirect::to("/mail/folders?done=folder-renamed").into_response());
            }
            Err(e) => user_error(e)?,
        }
    };
    Ok((
        StatusCode::UNPROCESSABLE_ENTITY,
        FoldersPage {
            chrome: Chrome::new(&state, &reader, None, None).await?,
            name: String::new(),
            error: None,
            rename_error: Some((id, error)),
        },
    )
        .into_response())
}

pub async fn delete(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    Posted(reader, _): Posted<Reader, NoFields>,
) -> Result<Response, WebError> {
    let mailbox = reader.mailbox(&state, id).await?;
    if is_system(&mailbox) {
        return Err(WebError::BadRequest(format!(
            "{} is a standard folder and cannot be deleted.",
            mailbox.name
        )));
    }
    match state
        .store
        .delete_mailbox(reader.account_id(), &mailbox.name)
        .await
    {
        Ok(()) => {
            // A folder deleted in the webmail is no longer followed either.
            state
                .store
                .unsubscribe_name(reader.account_id(), &mailbox.name)
                .await?;
            Ok(Redirect::to("/mail/folders?done=folder-deleted").into_response())
        }
        Err(e) => Err(WebError::BadRequest(user_error(e)?)),
    }
}
