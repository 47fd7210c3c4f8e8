//! Domains: the list, adding and removing, each domain's DNS records with a live check, and
//! whether its users may forward mail to addresses outside our domains (Sieve rules).

use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::super::{WebError, WebState};
use super::{Admin, Chrome, Confirm, ListQuery, NoFields, Paged, Posted, done, url_encode};
use crate::records::{self, DnsRecord, Published};
use crate::store::{Domain, StoreError};

#[derive(Template, WebTemplate)]
#[template(path = "admin/domains.html")]
pub(super) struct DomainsPage {
    chrome: Chrome,
    domains: Paged<Domain>,
    name: String,
    error: Option<String>,
}

pub(super) async fn list(
    admin: Admin,
    State(state): State<WebState>,
    Query(q): Query<ListQuery>,
) -> Result<DomainsPage, WebError> {
    Ok(DomainsPage {
        chrome: Chrome::new(&state, &admin, "domains", q.done.as_deref()),
        domains: Paged::new(state.store.domains().await?, q.page),
        name: String::new(),
        error: None,
    })
}

#[derive(Deserialize)]
pub(super) struct AddForm {
    name: String,
}

pub(super) async fn add(
    State(state): State<WebState>,
    Posted(admin, f): Posted<Admin, AddForm>,
) -> Result<Response, WebError> {
    match state.store.add_domain(&f.name).await {
        Ok(d) => {
            admin.audit(&state, "domain.create", &d.name, "").await?;
            Ok(Redirect::to(&format!("/admin/domains/{}", url_encode(&d.name))).into_response())
        }
        Err(StoreError::Invalid(e) | StoreError::Conflict(e)) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            DomainsPage {
                chrome: Chrome::new(&state, &admin, "domains", None),
                domains: Paged::new(state.store.domains().await?, None),
                name: f.name,
                error: Some(e),
            },
        )
            .into_response()),
        Err(e) => Err(e.into()),
    }
}

/// One record with what the check found.
pub(super) struct Row {
    record: DnsRecord,
    /// "found", "missing", "different", "unknown", or "" when not checked.
    state: &'static str,
    detail: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/domain.html")]
pub(super) struct DomainPage {
    chrome: Chrome,
    domain: Domain,
    rows: Vec<Row>,
    checked: bool,
    zone: String,
    /// Every account of the domain must sign in to the web with a second factor.
    require_two_factor: bool,
    /// Its users' rules may forward mail to addresses outside our domains.
    external_forward: bool,
}

#[derive(Deserialize)]
pub(super) struct ShowQuery {
    check: Option<String>,
    done: Option<String>,
}

/// How long the whole live check may take; lookups run at once.
const CHECK_TIMEOUT: Duration = Duration::from_secs(8);

pub(super) async fn show(
    admin: Admin,
    State(state): State<WebState>,
    Path(name): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Result<DomainPage, WebError> {
    let domain = state.store.domain(&name).await?.ok_or(WebError::NotFound)?;
    let records = records::for_domain(&state.store, &state.hostname, &domain.name).await?;
    let checked = q.check.is_some();
    let results: Vec<Option<Published>> = if checked {
        let lookups = records.iter().map(|r| records::check(&state.dns, r));
        match tokio::time::timeout(CHECK_TIMEOUT, futures::future::join_all(lookups)).await {
            Ok(found) => found.into_iter().map(Some).collect(),
            Err(_) => records
                .iter()
                .map(|_| Some(Published::Unknown("the DNS did not answer in time".into())))
                .collect(),
        }
    } else {
        records.iter().map(|_| None).collect()
    };
    let zone = records::zone_file(&records);
    let rows = records
        .into_iter()
        .zip(results)
        .map(|(record, result)| {
            let (state, detail) = match result {
                None => ("", String::new()),
                Some(Published::Found) => ("found", String::new()),
                Some(Published::Missing) => ("missing", String::new()),
                Some(Published::Different(found)) => (
                    "different",
                    format!("published instead: {}", found.join(" | ")),
                ),
                Some(Published::Unknown(e)) => ("unknown", e),
            };
            Row {
                record,
                state,
                detail,
            }
        })
        .collect();
    Ok(DomainPage {
        chrome: Chrome::new(&state, &admin, "domains", q.done.as_deref()),
        require_two_factor: state
            .store
            .domain_requires_second_factor(&domain.name)
            .await?,
        external_forward: state
            .store
            .domain_allows_external_forward(&domain.name)
            .await?,
        domain,
        rows,
        checked,
        zone,
    })
}

#[derive(Deserialize)]
pub(super) struct ForwardingForm {
    /// "1" allows, anything else forbids.
    #[serde(default)]
    allow: String,
}

/// Allows or forbids the domain's users to forward mail outside our domains. Rules already
/// written stay, but delivery checks the flag for every forward it makes.
pub(super) async fn set_forwarding(
    State(state): State<WebState>,
    Path(name): Path<String>,
    Posted(admin, f): Posted<Admin, ForwardingForm>,
) -> Result<Response, WebError> {
    let domain = state.store.domain(&name).await?.ok_or(WebError::NotFound)?;
    let allow = f.allow == "1";
    state
        .store
        .set_domain_allows_external_forward(&domain.name, allow)
        .await?;
    let detail = if allow { "allowed" } else { "forbidden" };
    admin
        .audit(&state, "domain.external_forward", &domain.name, detail)
        .await?;
    Ok(done(
        &format!("/admin/domains/{}", url_encode(&domain.name)),
        "domain-updated",
    ))
}

fn remove_page(state: &WebState, admin: &Admin, domain: &Domain, error: Option<String>) -> Confirm {
    Confirm {
        chrome: Chrome::new(state, admin, "domains", None),
        title: format!("Remove {}?", domain.name),
        text: format!(
            "Mail for {} will no longer be accepted, and its {} alias(es) and DKIM keys are \
             removed. A domain that still has accounts cannot be removed.",
            domain.name, domain.aliases
        ),
        action: format!("/admin/domains/{}/remove", url_encode(&domain.name)),
        button: "Remove the domain",
        back: format!("/admin/domains/{}", url_encode(&domain.name)),
        error,
    }
}

pub(super) async fn confirm_remove(
    admin: Admin,
    State(state): State<WebState>,
    Path(name): Path<String>,
) -> Result<Confirm, WebError> {
    let domain = state.store.domain(&name).await?.ok_or(WebError::NotFound)?;
    let error = (domain.accounts > 0).then(|| {
        format!(
            "{} still has {} account(s); remove them first.",
            domain.name, domain.accounts
        )
    });
    Ok(remove_page(&state, &admin, &domain, error))
}

pub(super) async fn remove(
    State(state): State<WebState>,
    Path(name): Path<String>,
    Posted(admin, _): Posted<Admin, NoFields>,
) -> Result<Response, WebError> {
    let domain = state.store.domain(&name).await?.ok_or(WebError::NotFound)?;
    match state.store.remove_domain(&domain.name).await {
        Ok(()) => {
            admin
                .audit(&state, "domain.remove", &domain.name, "")
                .await?;
            Ok(done("/admin/domains", "domain-removed"))
        }
        Err(StoreError::Conflict(e)) => Ok((
            StatusCode::CONFLICT,
            remove_page(&state, &admin, &domain, Some(e)),
        )
            .into_response()),
        Err(e) => Err(e.into()),
    }
}
