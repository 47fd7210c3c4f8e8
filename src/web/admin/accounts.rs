//! Accounts: list with usage, search and paging; create; quota, password, enable/disable,
//! admin flag; removal with all mail.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::super::{WebError, WebState};
use super::{Admin, Chrome, Confirm, ListQuery, NoFields, Paged, Posted, done, url_encode};
use crate::address::Address;
use crate::auth::password;
use crate::config::{format_size, parse_size};
use crate::store::{Account, NewAccount, StoreError};

/// An account as the tables show it.
pub(super) struct Row {
    address: String,
    display_name: String,
    used: String,
    quota: String,
    /// 0..=100 for the usage bar; `None` without a quota.
    percent: Option<u64>,
    messages: i64,
    is_admin: bool,
    disabled: bool,
}

impl Row {
    fn of(a: &Account) -> Row {
        let used = u64::try_from(a.used_bytes).unwrap_or(0);
        let quota = u64::try_from(a.quota_bytes).unwrap_or(0);
        Row {
            address: a.address.clone(),
            display_name: a.display_name.clone(),
            used: format_size(used),
            quota: if quota == 0 {
                "unlimited".into()
            } else {
                format_size(quota)
            },
            percent: (quota > 0).then(|| (used.saturating_mul(100) / quota).min(100)),
            messages: a.message_count,
            is_admin: a.is_admin,
            disabled: a.disabled,
        }
    }

    fn link(&self) -> String {
        format!("/admin/accounts/{}", url_encode(&self.address))
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/accounts.html")]
pub(super) struct AccountsPage {
    chrome: Chrome,
    accounts: Paged<Row>,
    q: String,
}

impl AccountsPage {
    /// Keeps the search when paging.
    fn query_suffix(&self) -> String {
        if self.q.is_empty() {
            String::new()
        } else {
            format!("&q={}", url_encode(&self.q))
        }
    }
}

pub(super) async fn list(
    admin: Admin,
    State(state): State<WebState>,
    Query(query): Query<ListQuery>,
) -> Result<AccountsPage, WebError> {
    let q = query.q.unwrap_or_default().trim().to_lowercase();
    let rows: Vec<Row> = state
        .store
        .accounts(None)
        .await?
        .iter()
        .filter(|a| {
            q.is_empty()
                || a.address.to_lowercase().contains(&q)
                || a.display_name.to_lowercase().contains(&q)
        })
        .map(Row::of)
        .collect();
    Ok(AccountsPage {
        chrome: Chrome::new(&state, &admin, "accounts", query.done.as_deref()),
        accounts: Paged::new(rows, query.page),
        q,
    })
}

/// The form to create an account, with what was typed and the errors by field.
#[derive(Template, WebTemplate, Default)]
#[template(path = "admin/account_new.html")]
pub(super) struct NewPage {
    chrome: Chrome,
    domains: Vec<String>,
    address: String,
    quota: String,
    is_admin: bool,
    address_error: Option<String>,
    password_error: Option<String>,
    quota_error: Option<String>,
}

pub(super) async fn new_form(
    admin: Admin,
    State(state): State<WebState>,
) -> Result<NewPage, WebError> {
    Ok(NewPage {
        chrome: Chrome::new(&state, &admin, "accounts", None),
        domains: domain_names(&state).await?,
        quota: if state.default_quota == 0 {
            String::new()
        } else {
            format_size(state.default_quota)
        },
        ..NewPage::default()
    })
}

async fn domain_names(state: &WebState) -> Result<Vec<String>, WebError> {
    Ok(state
        .store
        .domains()
        .await?
        .into_iter()
        .map(|d| d.name)
        .collect())
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/account_created.html")]
pub(super) struct CreatedPage {
    chrome: Chrome,
    address: String,
    /// Shown once, when the server generated it.
    password: Option<String>,
}

impl CreatedPage {
    fn link(&self) -> String {
        format!("/admin/accounts/{}", url_encode(&self.address))
    }
}

#[derive(Deserialize)]
pub(super) struct AddForm {
    address: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    quota: String,
    admin: Option<String>,
}

/// Empty means unlimited; otherwise a size like 500M or 2G.
fn quota_field(s: &str) -> Result<u64, String> {
    if s.trim().is_empty() {
        return Ok(0);
    }
    parse_size(s).map_err(|e| format!("{e} (examples: 500M, 2G; empty for unlimited)"))
}

pub(super) async fn add(
    State(state): State<WebState>,
    Posted(admin, f): Posted<Admin, AddForm>,
) -> Result<Response, WebError> {
    let mut page = NewPage {
        address: f.address.trim().to_string(),
        quota: f.quota.trim().to_string(),
        is_admin: f.admin.is_some(),
        ..NewPage::default()
    };
    let address = Address::parse(&f.address).map_err(|e| page.address_error = Some(e));
    if let Ok(a) = &address
        && !state.store.is_local_domain(&a.domain).await?
    {
        page.address_error = Some(format!(
            "{} is not one of this server's domains; add the domain first.",
            a.domain
        ));
    }
    let quota = quota_field(&f.quota).map_err(|e| page.quota_error = Some(e));
    let generated = f.password.is_empty();
    let pw = if generated {
        password::generate()
    } else {
        f.password.clone()
    };
    if !generated
        && let Err(e) = password::check_strength_off_thread(&pw, &[f.address.trim()]).await
    {
        page.password_error = Some(e);
    }
    let (Ok(address), Ok(quota), None, None) =
        (address, quota, &page.address_error, &page.password_error)
    else {
        return invalid(&state, &admin, page).await;
    };
    let hash = password::hash(&pw)
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let text = address.to_string();
    let created = state
        .store
        .create_account(NewAccount {
            address: &text,
            password_hash: &hash,
            quota_bytes: quota,
            is_admin: page.is_admin,
        })
        .await;
    match created {
        Ok(a) => {
            let detail = account_detail(quota, page.is_admin, generated);
            admin
                .audit(&state, "account.create", &a.address, &detail)
                .await?;
            Ok(CreatedPage {
                chrome: Chrome::new(&state, &admin, "accounts", None),
                address: a.address,
                password: generated.then_some(pw),
            }
            .into_response())
        }
        Err(StoreError::Conflict(e) | StoreError::Invalid(e) | StoreError::NotFound(e)) => {
            page.address_error = Some(e);
            invalid(&state, &admin, page).await
        }
        Err(e) => Err(e.into()),
    }
}

/// What the audit log keeps of a new account: its quota, admin flag, and whether the
/// password was generated (never the password).
pub(super) fn account_detail(quota: u64, is_admin: bool, generated: bool) -> String {
    let mut detail = format!(
        "quota {}",
        if quota == 0 {
            "unlimited".to_string()
        } else {
            format_size(quota)
        }
    );
    if is_admin {
        detail.push_str(", admin");
    }
    detail.push_str(if generated {
        ", password generated"
    } else {
        ", password chosen"
    });
    detail
}

async fn invalid(state: &WebState, admin: &Admin, mut page: NewPage) -> Result<Response, WebError> {
    page.chrome = Chrome::new(state, admin, "accounts", None);
    page.domains = domain_names(state).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/account.html")]
pub(super) struct AccountPage {
    chrome: Chrome,
    account: Row,
    created: String,
    quota_value: String,
    quota_error: Option<String>,
    password_error: Option<String>,
    /// Set when the password was just generated: shown once.
    new_password: Option<String>,
    /// The account is the one signed in (it cannot disable or demote itself).
    is_self: bool,
    /// It has a second factor (TOTP or a passkey), which the admin can reset.
    second_factor: bool,
}

impl AccountPage {
    fn new(state: &WebState, admin: &Admin, a: &Account, done: Option<&str>) -> AccountPage {
        let quota = u64::try_from(a.quota_bytes).unwrap_or(0);
        AccountPage {
            chrome: Chrome::new(state, admin, "accounts", done),
            account: Row::of(a),
            created: super::timestamp(a.created_at),
            quota_value: if quota == 0 {
                String::new()
            } else {
                format_size(quota)
            },
            quota_error: None,
            password_error: None,
            new_password: None,
            is_self: a.id == admin.0.account.id,
            second_factor: false,
        }
    }
}

async fn account(state: &WebState, address: &str) -> Result<Account, WebError> {
    state
        .store
        .account_by_address(address)
        .await?
        .ok_or(WebError::NotFound)
}

pub(super) async fn show(
    admin: Admin,
    State(state): State<WebState>,
    Path(address): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<AccountPage, WebError> {
    let a = account(&state, &address).await?;
    let mut page = AccountPage::new(&state, &admin, &a, q.done.as_deref());
    page.second_factor = state.store.second_factor_on(a.id).await?;
    Ok(page)
}

fn back_to(a: &Account, code: &str) -> Response {
    done(&format!("/admin/accounts/{}", url_encode(&a.address)), code)
}

#[derive(Deserialize)]
pub(super) struct QuotaForm {
    #[serde(default)]
    quota: String,
}

pub(super) async fn set_quota(
    State(state): State<WebState>,
    Path(address): Path<String>,
    Posted(admin, f): Posted<Admin, QuotaForm>,
) -> Result<Response, WebError> {
    let a = account(&state, &address).await?;
    match quota_field(&f.quota) {
        Ok(q) => {
            state.store.set_quota(&a.address, q).await?;
            let detail = if q == 0 {
                "unlimited".to_string()
            } else {
                format_size(q)
            };
            admin
                .audit(&state, "account.quota", &a.address, &detail)
                .await?;
            Ok(back_to(&a, "account-updated"))
        }
        Err(e) => {
            let mut page = AccountPage::new(&state, &admin, &a, None);
            page.quota_value = f.quota;
            page.quota_error = Some(e);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

#[derive(Deserialize)]
pub(super) struct PasswordForm {
    #[serde(default)]
    password: String,
}

/// Sets the typed password, or a generated one shown once; ends the account's web sessions
/// (all but this one when admins change their own).
pub(super) async fn reset_password(
    State(state): State<WebState>,
    Path(address): Path<String>,
    Posted(admin, f): Posted<Admin, PasswordForm>,
) -> Result<Response, WebError> {
    let a = account(&state, &address).await?;
    let generated = f.password.is_empty();
    if !generated
        && let Err(e) =
            password::check_strength_off_thread(&f.password, &[&a.address, &a.display_name]).await
    {
        let mut page = AccountPage::new(&state, &admin, &a, None);
        page.password_error = Some(e);
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let pw = if generated {
        password::generate()
    } else {
        f.password
    };
    let hash = password::hash(&pw)
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    state.store.set_password_hash(&a.address, &hash).await?;
    state.auth.forget_account(a.id);
    if a.id == admin.0.account.id {
        // The admin's own password: their other sessions end, this one stays.
        state.store.end_other_sessions(a.id, &admin.0.id).await?;
    } else {
        state.store.end_sessions_of(a.id).await?;
    }
    let detail = if generated { "generated" } else { "chosen" };
    admin
        .audit(&state, "account.password", &a.address, detail)
        .await?;
    if generated {
        let mut page = AccountPage::new(&state, &admin, &a, None);
        page.new_password = Some(pw);
        return Ok(page.into_response());
    }
    Ok(back_to(&a, "password-reset"))
}

#[derive(Deserialize)]
pub(super) struct StateForm {
    /// "disable", "enable", "make-admin", "revoke-admin".
    action: String,
}

pub(super) async fn set_state(
    State(state): State<WebState>,
    Path(address): Path<String>,
    Posted(admin, f): Posted<Admin, StateForm>,
) -> Result<Response, WebError> {
    let a = account(&state, &address).await?;
    let is_self = a.id == admin.0.account.id;
    let action = match f.action.as_str() {
        "disable" | "revoke-admin" if is_self => {
            return Err(WebError::BadRequest(
                "You cannot lock yourself out: use another administrator account for this.".into(),
            ));
        }
        "disable" => {
            state.store.set_disabled(&a.address, true).await?;
            state.auth.forget_account(a.id);
            state.store.end_sessions_of(a.id).await?;
            "account.disable"
        }
        "enable" => {
            state.store.set_disabled(&a.address, false).await?;
            "account.enable"
        }
        "make-admin" => {
            state.store.set_admin(&a.address, true).await?;
            "account.admin_grant"
        }
        "revoke-admin" => {
            state.store.set_admin(&a.address, false).await?;
            "account.admin_revoke"
        }
        other => return Err(WebError::BadRequest(format!("unknown action {other:?}"))),
    };
    admin.audit(&state, action, &a.address, "").await?;
    Ok(back_to(&a, "account-updated"))
}

fn remove_page(state: &WebState, admin: &Admin, a: &Account, error: Option<String>) -> Confirm {
    Confirm {
        chrome: Chrome::new(state, admin, "accounts", None),
        title: format!("Remove {}?", a.address),
        text: format!(
            "The account and all its mail ({} messages, {}) are deleted for good, with aliases \
             pointing only at it. This cannot be undone.",
            a.message_count,
            format_size(u64::try_from(a.used_bytes).unwrap_or(0))
        ),
        action: format!("/admin/accounts/{}/remove", url_encode(&a.address)),
        button: "Remove the account and its mail",
        back: format!("/admin/accounts/{}", url_encode(&a.address)),
        error,
    }
}

pub(super) async fn confirm_remove(
    admin: Admin,
    State(state): State<WebState>,
    Path(address): Path<String>,
) -> Result<Confirm, WebError> {
    let a = account(&state, &address).await?;
    let error = (a.id == admin.0.account.id)
        .then(|| "You cannot remove the account you are signed in with.".to_string());
    Ok(remove_page(&state, &admin, &a, error))
}

pub(super) async fn remove(
    State(state): State<WebState>,
    Path(address): Path<String>,
    Posted(admin, _): Posted<Admin, NoFields>,
) -> Result<Response, WebError> {
    let a = account(&state, &address).await?;
    if a.id == admin.0.account.id {
        return Ok((
            StatusCode::CONFLICT,
            remove_page(
                &state,
                &admin,
                &a,
                Some("You cannot remove the account you are signed in with.".into()),
            ),
        )
            .into_response());
    }
    state.store.remove_account(&a.address).await?;
    state.auth.forget_account(a.id);
    admin
        .audit(&state, "account.remove", &a.address, "")
        .await?;
    Ok(done("/admin/accounts", "account-removed"))
}
