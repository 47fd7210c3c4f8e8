//! Aliases and catch-alls: list, add (one or more targets), remove a target or the whole alias.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::super::{WebError, WebState};
use super::{Admin, Chrome, ListQuery, Paged, Posted, done};
use crate::store::{Alias, StoreError};

#[derive(Template, WebTemplate)]
#[template(path = "admin/aliases.html")]
pub(super) struct AliasesPage {
    chrome: Chrome,
    aliases: Paged<Alias>,
    source: String,
    targets: String,
    source_error: Option<String>,
    targets_error: Option<String>,
}

pub(super) async fn list(
    admin: Admin,
    State(state): State<WebState>,
    Query(q): Query<ListQuery>,
) -> Result<AliasesPage, WebError> {
    Ok(AliasesPage {
        chrome: Chrome::new(&state, &admin, "aliases", q.done.as_deref()),
        aliases: Paged::new(state.store.aliases(None).await?, q.page),
        source: String::new(),
        targets: String::new(),
        source_error: None,
        targets_error: None,
    })
}

#[derive(Deserialize)]
pub(super) struct AddForm {
    source: String,
    #[serde(default)]
    targets: String,
}

pub(super) async fn add(
    State(state): State<WebState>,
    Posted(admin, f): Posted<Admin, AddForm>,
) -> Result<Response, WebError> {
    // Targets may be separated by commas, spaces or new lines.
    let targets: Vec<String> = f
        .targets
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    let (source_error, targets_error) = if targets.is_empty() {
        (
            None,
            Some("Give at least one address to deliver to.".to_string()),
        )
    } else {
        match state.store.add_alias(&f.source, &targets).await {
            Ok(alias) => {
                admin
                    .audit(
                        &state,
                        "alias.create",
                        &alias.source,
                        &alias.targets.join(", "),
                    )
                    .await?;
                return Ok(done("/admin/aliases", "alias-added"));
            }
            // The store names the address it refuses; put the message next to that field.
            Err(StoreError::Invalid(e) | StoreError::Conflict(e) | StoreError::NotFound(e)) => {
                if targets.iter().any(|t| e.contains(t.as_str())) || e.contains("target") {
                    (None, Some(e))
                } else {
                    (Some(e), None)
                }
            }
            Err(e) => return Err(e.into()),
        }
    };
    Ok((
        StatusCode::UNPROCESSABLE_ENTITY,
        AliasesPage {
            chrome: Chrome::new(&state, &admin, "aliases", None),
            aliases: Paged::new(state.store.aliases(None).await?, None),
            source: f.source,
            targets: f.targets,
            source_error,
            targets_error,
        },
    )
        .into_response())
}

#[derive(Deserialize)]
pub(super) struct RemoveForm {
    source: String,
    /// Without it, the whole alias goes.
    target: Option<String>,
}

pub(super) async fn remove(
    State(state): State<WebState>,
    Posted(admin, f): Posted<Admin, RemoveForm>,
) -> Result<Response, WebError> {
    let target = f.target.as_deref().filter(|t| !t.is_empty());
    state.store.remove_alias(&f.source, target).await?;
    let detail = target.map_or_else(|| "all targets".to_string(), |t| t.trim().to_string());
    admin
        .audit(&state, "alias.remove", f.source.trim(), &detail)
        .await?;
    Ok(done("/admin/aliases", "alias-removed"))
}
