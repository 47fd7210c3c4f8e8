//! `/admin/deliverability`: where postmaster@ and abuse@ go (per domain or for every domain),
//! MTA-STS publishing per domain, and the smarthost (the relay outbound mail goes through when
//! port 25 is blocked). Every change is audited (`required_address.set`, `mta_sts.set`,
//! `smarthost.set`, `smarthost.clear`); the smarthost's password is never shown back nor
//! written to the audit log.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::super::{WebError, WebState};
use super::{Admin, Chrome, ListQuery, Posted, done};
use crate::store::deliverability::REQUIRED_LOCALS;
use crate::store::{MtaStsMode, RelayTls, RequiredRoute, Smarthost, StoreError};

const PAGE: &str = "/admin/deliverability";

/// One domain's row: its name and MTA-STS mode.
pub(super) struct DomainRow {
    name: String,
    mode: &'static str,
}

/// A smarthost as shown: everything but the password.
pub(super) struct RelayRow {
    domain: String,
    host: String,
    port: u16,
    tls: &'static str,
    username: String,
}

#[derive(Template, WebTemplate, Default)]
#[template(path = "admin/deliverability.html")]
pub(super) struct DeliverabilityPage {
    chrome: Chrome,
    first_admin: Option<String>,
    routes: Vec<RequiredRoute>,
    domains: Vec<DomainRow>,
    relays: Vec<RelayRow>,
    locals: Vec<&'static str>,
    acme: bool,
    /// An error and the section it belongs to (`required`, `mta-sts`, `smarthost`).
    error: Option<(String, String)>,
}

impl DeliverabilityPage {
    fn error_for(&self, section: &str) -> Option<&str> {
        self.error
            .as_ref()
            .filter(|(s, _)| s == section)
            .map(|(_, e)| e.as_str())
    }
}

async fn page_of(
    state: &WebState,
    admin: &Admin,
    done: Option<&str>,
) -> Result<DeliverabilityPage, WebError> {
    let store = &state.store;
    let mut domains = Vec::new();
    for d in store.domains().await? {
        let mode = store.mta_sts_mode(&d.name).await?.as_str();
        domains.push(DomainRow { name: d.name, mode });
    }
    let relays = store
        .smarthosts()
        .await?
        .into_iter()
        .map(|r| RelayRow {
            domain: r.domain.unwrap_or_default(),
            host: r.host,
            port: r.port,
            tls: r.tls.as_str(),
            username: r.username,
        })
        .collect();
    Ok(DeliverabilityPage {
        chrome: Chrome::new(state, admin, "deliverability", done),
        first_admin: store.first_admin().await?.map(|a| a.address),
        routes: store.required_routes().await?,
        domains,
        relays,
        locals: REQUIRED_LOCALS.to_vec(),
        acme: state.tls.status().source == "acme",
        error: None,
    })
}

pub(super) async fn page(
    admin: Admin,
    State(state): State<WebState>,
    Query(q): Query<ListQuery>,
) -> Result<DeliverabilityPage, WebError> {
    page_of(&state, &admin, q.done.as_deref()).await
}

/// The page again with an error in `section`, 422; a store refusal of what was typed is
/// shown, anything else is an error page.
async fn refused(
    state: &WebState,
    admin: &Admin,
    section: &str,
    e: StoreError,
) -> Result<Response, WebError> {
    let message = match e {
        StoreError::Invalid(m) | StoreError::NotFound(m) | StoreError::Conflict(m) => m,
        other => return Err(other.into()),
    };
    let mut page = page_of(state, admin, None).await?;
    page.error = Some((section.to_string(), message));
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// "" means every domain.
fn domain_choice(domain: &str) -> Option<&str> {
    Some(domain.trim()).filter(|d| !d.is_empty())
}

#[derive(Deserialize)]
pub(super) struct RequiredForm {
    #[serde(default)]
    domain: String,
    #[serde(default)]
    local: String,
    #[serde(default)]
    target: String,
}

pub(super) async fn set_required(
    State(state): State<WebState>,
    Posted(admin, f): Posted<Admin, RequiredForm>,
) -> Result<Response, WebError> {
    let domain = domain_choice(&f.domain);
    let target = Some(f.target.trim()).filter(|t| !t.is_empty());
    if let Err(e) = state
        .store
        .set_required_route(domain, &f.local, target)
        .await
    {
        return refused(&state, &admin, "required", e).await;
    }
    let name = format!(
        "{}@{}",
        f.local.trim().to_ascii_lowercase(),
        domain.unwrap_or("*")
    );
    admin
        .audit(
            &state,
            "required_address.set",
            &name,
            target.unwrap_or("first admin"),
        )
        .await?;
    Ok(done(PAGE, "deliverability-updated"))
}

#[derive(Deserialize)]
pub(super) struct MtaStsForm {
    #[serde(default)]
    mode: String,
}

pub(super) async fn set_mta_sts(
    State(state): State<WebState>,
    Path(name): Path<String>,
    Posted(admin, f): Posted<Admin, MtaStsForm>,
) -> Result<Response, WebError> {
    let Some(mode) = MtaStsMode::parse(&f.mode) else {
        let e = StoreError::Invalid("Choose off, testing or enforce.".into());
        return refused(&state, &admin, "mta-sts", e).await;
    };
    if let Err(e) = state.store.set_mta_sts_mode(&name, mode).await {
        return refused(&state, &admin, "mta-sts", e).await;
    }
    admin
        .audit(&state, "mta_sts.set", &name, mode.as_str())
        .await?;
    Ok(done(PAGE, "deliverability-updated"))
}

#[derive(Deserialize)]
pub(super) struct SmarthostForm {
    #[serde(default)]
    domain: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    tls: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

pub(super) async fn set_smarthost(
    State(state): State<WebState>,
    Posted(admin, f): Posted<Admin, SmarthostForm>,
) -> Result<Response, WebError> {
    let Ok(port) = f.port.trim().parse::<u16>() else {
        let e = StoreError::Invalid("Port: a number from 1 to 65535 (465 or 587 usually).".into());
        return refused(&state, &admin, "smarthost", e).await;
    };
    let Some(tls) = RelayTls::parse(&f.tls) else {
        let e = StoreError::Invalid("TLS: implicit or STARTTLS.".into());
        return refused(&state, &admin, "smarthost", e).await;
    };
    let relay = Smarthost {
        domain: domain_choice(&f.domain).map(str::to_string),
        host: f.host.trim().to_string(),
        port,
        tls,
        username: f.username.trim().to_string(),
        password: f.password,
    };
    if let Err(e) = state.store.set_smarthost(&relay).await {
        return refused(&state, &admin, "smarthost", e).await;
    }
    admin
        .audit(
            &state,
            "smarthost.set",
            relay.domain.as_deref().unwrap_or("*"),
            &format!(
                "{}:{} {} user {}",
                relay.host,
                relay.port,
                relay.tls.as_str(),
                relay.username
            ),
        )
        .await?;
    Ok(done(PAGE, "deliverability-updated"))
}

#[derive(Deserialize)]
pub(super) struct ClearForm {
    #[serde(default)]
    domain: String,
}

pub(super) async fn clear_smarthost(
    State(state): State<WebState>,
    Posted(admin, f): Posted<Admin, ClearForm>,
) -> Result<Response, WebError> {
    let domain = domain_choice(&f.domain);
    match state.store.clear_smarthost(domain).await {
        Ok(_) => {}
        Err(e) => return refused(&state, &admin, "smarthost", e).await,
    }
    admin
        .audit(&state, "smarthost.clear", domain.unwrap_or("*"), "")
        .await?;
    Ok(done(PAGE, "deliverability-updated"))
}
