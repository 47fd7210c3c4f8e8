//! Two-factor sign-in in the admin panel: reset a user's second factor (a lost phone), and
//! require one of everyone in a domain or of every admin. Each is audited.
//!
//! Switching a requirement on ends the web sessions of the accounts it concerns that have no
//! second factor: at their next sign-in they get only the set-up page. An admin cannot require
//! it of admins before having a second factor themselves (that would sign them out at once).

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::super::session::Client;
use super::super::{WebError, WebState};
use super::{Admin, NoFields, Posted, done, url_encode};
use crate::store::{Audit, REQUIRE_ADMINS};

fn audit<'a>(
    admin: &'a Admin,
    ip: &'a str,
    action: &'a str,
    target: &'a str,
    detail: &'a str,
) -> Audit<'a> {
    Audit {
        actor: &admin.0.account.address,
        ip,
        action,
        target,
        detail,
    }
}

/// Removes every second factor of an account: TOTP, recovery codes, passkeys. Its web
/// sessions end too (whoever holds one may be the reason for the reset).
pub(super) async fn reset(
    State(state): State<WebState>,
    client: Client,
    Path(address): Path<String>,
    Posted(admin, _): Posted<Admin, NoFields>,
) -> Result<Response, WebError> {
    let a = state
        .store
        .account_by_address(&address)
        .await?
        .ok_or(WebError::NotFound)?;
    state.store.reset_second_factor(a.id).await?;
    if a.id != admin.0.account.id {
        state.store.end_sessions_of(a.id).await?;
    }
    let ip = client.ip.to_string();
    state
        .store
        .audit(audit(&admin, &ip, "second_factor.reset", &a.address, ""))
        .await?;
    Ok(done(
        &format!("/admin/accounts/{}", url_encode(&a.address)),
        "second-factor-reset",
    ))
}

#[derive(Deserialize)]
pub(super) struct RequireForm {
    #[serde(default)]
    require: String,
}

impl RequireForm {
    fn on(&self) -> bool {
        self.require == "1"
    }
}

/// Requires (or not) a second factor of every account of a domain.
pub(super) async fn require_for_domain(
    State(state): State<WebState>,
    client: Client,
    Path(name): Path<String>,
    Posted(admin, f): Posted<Admin, RequireForm>,
) -> Result<Response, WebError> {
    let domain = state.store.domain(&name).await?.ok_or(WebError::NotFound)?;
    state
        .store
        .set_domain_requires_second_factor(&domain.name, f.on())
        .await?;
    if f.on() {
        state.store.end_sessions_lacking_second_factor().await?;
    }
    let ip = client.ip.to_string();
    let detail = if f.on() { "required" } else { "not required" };
    state
        .store
        .audit(audit(
            &admin,
            &ip,
            "domain.require_two_factor",
            &domain.name,
            detail,
        ))
        .await?;
    Ok(done(
        &format!("/admin/domains/{}", url_encode(&domain.name)),
        "domain-updated",
    ))
}

/// Requires (or not) a second factor of every admin.
pub(super) async fn require_for_admins(
    State(state): State<WebState>,
    client: Client,
    Posted(admin, f): Posted<Admin, RequireForm>,
) -> Result<Response, WebError> {
    if f.on() && !state.store.second_factor_on(admin.0.account.id).await? {
        return Err(WebError::BadRequest(
            "Set up your own second factor first (Webmail → Settings → Two-factor sign-in): \
             requiring it of admins would sign you out at once."
                .into(),
        ));
    }
    state
        .store
        .set_meta(REQUIRE_ADMINS, if f.on() { "1" } else { "0" })
        .await?;
    if f.on() {
        state.store.end_sessions_lacking_second_factor().await?;
    }
    let ip = client.ip.to_string();
    let detail = if f.on() { "required" } else { "not required" };
    state
        .store
        .audit(audit(
            &admin,
            &ip,
            "admins.require_two_factor",
            "admins",
            detail,
        ))
        .await?;
    Ok(done("/admin", "admins-updated"))
}
