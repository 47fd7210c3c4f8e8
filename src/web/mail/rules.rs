//! `/mail/settings/rules`: the account's filters, vacation reply and forwarding, kept as the one
//! Sieve script the webmail owns (`sieve::rules::SCRIPT_NAME`), with the last runtime error of
//! the active script. A script that is not in the form the pages write (uploaded with
//! ManageSieve, or ours edited by hand) is shown as text in a raw editor instead; the forms
//! that edit single rules are in `rules_edit`.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::super::session::{NoFields, Posted};
use super::super::{WebError, WebState};
use super::settings::DoneQuery;
use super::{Chrome, Reader, iso_date, short_date};
use crate::sieve::rules::{self, Field, Filter, FilterAction, Op, Rules, SCRIPT_NAME};
use crate::store::{SieveRefusal, StoreError};

/// Where the rules live, after a change.
pub(super) const BACK: &str = "/mail/settings/rules?done=rules";

/// A filter as the list shows it.
pub struct FilterRow {
    pub text: String,
    pub enabled: bool,
}

/// A script shown as text, with the compile error of the last attempt to save it.
#[derive(Default)]
pub struct RawEditor {
    pub name: String,
    pub source: String,
    pub error: Option<String>,
}

#[derive(Template, WebTemplate, Default)]
#[template(path = "mail/rules.html")]
pub struct RulesPage {
    chrome: Chrome,
    /// Our rules; None when our script is not in the form the pages write.
    rules: Option<Rules>,
    filters: Vec<FilterRow>,
    vacation: Option<String>,
    forward: Option<String>,
    /// The active script's name, when it is not ours.
    other_active: Option<String>,
    /// Whether no script at all is active.
    none_active: bool,
    raw: Option<RawEditor>,
    /// The last runtime error: when (short, ISO), which script, what.
    runtime_error: Option<(String, String, String, String)>,
    error: Option<String>,
}

/// What the account's scripts say, as the pages need it.
pub(super) struct Loaded {
    /// None when our script exists but is not in our form.
    pub rules: Option<Rules>,
    /// Our script's source, if it exists.
    pub ours: Option<String>,
    /// The active script: name and source.
    pub active: Option<(String, String)>,
}

impl Loaded {
    fn other_active(&self) -> Option<&str> {
        self.active
            .as_ref()
            .map(|(name, _)| name.as_str())
            .filter(|name| *name != SCRIPT_NAME)
    }
}

pub(super) async fn load(state: &WebState, reader: &Reader) -> Result<Loaded, WebError> {
    let ours = state
        .store
        .sieve_script(reader.account_id(), SCRIPT_NAME)
        .await?
        .map(|s| s.source);
    let rules = match &ours {
        None => Some(Rules::default()),
        Some(source) => rules::from_sieve(source),
    };
    let active = state
        .store
        .active_sieve(reader.account_id())
        .await?
        .map(|a| (a.name, a.source));
    Ok(Loaded {
        rules,
        ours,
        active,
    })
}

/// Our rules for a form to change; an error when our script was edited by hand (the page then
/// shows it as text, and saving rules over it would lose that text).
pub(super) async fn editable(state: &WebState, reader: &Reader) -> Result<Rules, WebError> {
    load(state, reader).await?.rules.ok_or_else(|| {
        WebError::BadRequest(
            "Your rules script was changed outside these pages: edit it as text on the Rules \
             page, or start over there."
                .into(),
        )
    })
}

/// Writes `rules` as our script (compiled first) and makes it active unless another script
/// was made active with ManageSieve. `Ok(Err(why))` is for the user.
pub(super) async fn save(
    state: &WebState,
    reader: &Reader,
    rules: &Rules,
) -> Result<Result<(), String>, WebError> {
    if let Err(e) = rules.check() {
        return Ok(Err(e));
    }
    let source = rules::to_sieve(rules);
    let compiled = match crate::sieve::compile(&source) {
        Ok(c) => c,
        // The rules were checked, so this is ours to fix: said plainly rather than hidden.
        Err(e) => {
            return Ok(Err(format!(
                "These rules make a script Mailroom cannot compile ({e}). This is a bug in \
                 Mailroom; please report it."
            )));
        }
    };
    let account = reader.account_id();
    match state
        .store
        .put_sieve(account, SCRIPT_NAME, &source, &compiled.to_stored())
        .await?
    {
        Ok(()) => {}
        Err(refusal) => return Ok(Err(refusal_text(refusal))),
    }
    if state.store.active_sieve(account).await?.is_none() {
        state
            .store
            .set_active_sieve(account, Some(SCRIPT_NAME))
            .await?
            .map_err(|r| WebError::BadRequest(refusal_text(r)))?;
    }
    Ok(Ok(()))
}

pub(super) fn refusal_text(r: SieveRefusal) -> String {
    match r {
        SieveRefusal::MaxScripts => format!(
            "You have {} scripts already: delete one with your mail app first.",
            crate::store::sieve::MAX_SCRIPTS
        ),
        SieveRefusal::MaxSize => "Your scripts together would be larger than 1 MiB.".into(),
        SieveRefusal::Nonexistent => "That script does not exist any more.".into(),
        SieveRefusal::AlreadyExists => "A script of that name exists already.".into(),
        SieveRefusal::Active => "The active script cannot be deleted.".into(),
        SieveRefusal::InvalidName => "That is not a script name.".into(),
    }
}

/// Whether mail may be forwarded to `address` from this account: always inside our domains,
/// outside them only when the account's domain allows it.
pub(super) async fn may_forward_to(
    state: &WebState,
    reader: &Reader,
    address: &str,
) -> Result<Result<(), String>, WebError> {
    let Ok(parsed) = crate::address::Address::parse(address) else {
        return Ok(Err(format!("{address:?} is not an e-mail address.")));
    };
    if state.store.domain(&parsed.domain).await?.is_some()
        || state
            .store
            .account_may_forward_externally(reader.account_id())
            .await?
    {
        return Ok(Ok(()));
    }
    Ok(Err(format!(
        "Your domain does not allow forwarding to addresses outside it, and {} is outside. \
         Ask your administrator, or forward to an address here.",
        parsed.domain
    )))
}

/// A filter in words, for the list.
pub fn describe(f: &Filter) -> String {
    let field = match &f.field {
        Field::From => "From".to_string(),
        Field::ToOrCc => "To or Cc".to_string(),
        Field::Subject => "Subject".to_string(),
        Field::Header(name) => format!("Header {name}"),
        Field::Size => "Size".to_string(),
        Field::SpamScore => "Spam score".to_string(),
    };
    let op = match f.op {
        Op::Contains => "contains",
        Op::Is => "is",
        Op::Matches => "matches",
        Op::GreaterThan => "greater than",
        Op::LessThan => "less than",
    };
    let value = if f.field.is_text() {
        format!("“{}”", f.value)
    } else if f.field == Field::SpamScore {
        format!("{}%", f.value)
    } else {
        f.value.clone()
    };
    let action = match &f.action {
        FilterAction::MoveTo(folder) => format!("move to {folder}"),
        FilterAction::CopyTo(folder) => format!("copy to {folder}"),
        FilterAction::MarkRead => "mark as read".into(),
        FilterAction::Flag => "flag".into(),
        FilterAction::Forward { address, keep } => format!(
            "forward to {address}{}",
            if *keep { ", keep a copy" } else { "" }
        ),
        FilterAction::Reject(_) => "reject with a message".into(),
        FilterAction::Delete => "delete".into(),
    };
    let stop = if f.stop { "; stop" } else { "" };
    format!("If {field} {op} {value}: {action}{stop}")
}

async fn rules_page(
    state: &WebState,
    reader: &Reader,
    done: Option<&str>,
) -> Result<RulesPage, WebError> {
    let loaded = load(state, reader).await?;
    let runtime_error = state
        .store
        .sieve_error(reader.account_id())
        .await?
        .map(|e| (short_date(e.at), iso_date(e.at), e.script, e.message));
    // The text shown raw: the active script when it is not ours, else ours when it is not in
    // our form.
    let raw = match (&loaded.active, &loaded.rules, &loaded.ours) {
        (Some((name, source)), _, _) if name != SCRIPT_NAME => Some(RawEditor {
            name: name.clone(),
            source: source.clone(),
            error: None,
        }),
        (_, None, Some(source)) => Some(RawEditor {
            name: SCRIPT_NAME.into(),
            source: source.clone(),
            error: None,
        }),
        _ => None,
    };
    let rules = loaded.rules.clone();
    Ok(RulesPage {
        chrome: Chrome::new(state, reader, None, done).await?,
        filters: rules
            .iter()
            .flat_map(|r| &r.filters)
            .map(|f| FilterRow {
                text: describe(f),
                enabled: f.enabled,
            })
            .collect(),
        vacation: rules.as_ref().and_then(|r| r.vacation.as_ref()).map(|v| {
            let when = match (&v.first_day, &v.last_day) {
                (Some(a), Some(b)) => format!(" from {a} to {b}"),
                (Some(a), None) => format!(" from {a}"),
                (None, Some(b)) => format!(" until {b}"),
                (None, None) => String::new(),
            };
            if v.enabled {
                format!("On{when}, once every {} day(s) per sender.", v.days)
            } else {
                "Off.".into()
            }
        }),
        forward: rules.as_ref().and_then(|r| r.forward.as_ref()).map(|f| {
            format!(
                "All mail to {}{}.",
                f.address,
                if f.keep {
                    ", keeping a copy here"
                } else {
                    ", none kept here"
                }
            )
        }),
        other_active: loaded.other_active().map(String::from),
        none_active: loaded.active.is_none() && loaded.ours.is_some(),
        rules,
        raw,
        runtime_error,
        error: None,
    })
}

pub async fn page(
    reader: Reader,
    State(state): State<WebState>,
    Query(q): Query<DoneQuery>,
) -> Result<RulesPage, WebError> {
    rules_page(&state, &reader, q.done()).await
}

/// Shows the page again with an error, for a form posted to it.
async fn refused(state: &WebState, reader: &Reader, error: String) -> Result<Response, WebError> {
    let mut page = rules_page(state, reader, None).await?;
    page.error = Some(error);
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// Saves `rules`, then back to the list (or the list with why not).
pub(super) async fn save_and_back(
    state: &WebState,
    reader: &Reader,
    rules: &Rules,
) -> Result<Response, WebError> {
    match save(state, reader, rules).await? {
        Ok(()) => Ok(Redirect::to(BACK).into_response()),
        Err(e) => refused(state, reader, e).await,
    }
}

#[derive(Deserialize)]
pub struct MoveForm {
    /// `up` or `down`.
    #[serde(default)]
    to: String,
}

/// A filter index from the path, if the rules have it.
fn index(rules: &Rules, n: usize) -> Result<usize, WebError> {
    (n < rules.filters.len())
        .then_some(n)
        .ok_or(WebError::NotFound)
}

pub async fn move_filter(
    State(state): State<WebState>,
    Path(n): Path<usize>,
    Posted(reader, f): Posted<Reader, MoveForm>,
) -> Result<Response, WebError> {
    let mut rules = editable(&state, &reader).await?;
    let n = index(&rules, n)?;
    let other = match f.to.as_str() {
        "up" => n.checked_sub(1),
        "down" => Some(n + 1).filter(|m| *m < rules.filters.len()),
        _ => return Err(WebError::BadRequest("Move up or down.".into())),
    };
    if let Some(other) = other {
        rules.filters.swap(n, other);
    }
    save_and_back(&state, &reader, &rules).await
}

pub async fn toggle_filter(
    State(state): State<WebState>,
    Path(n): Path<usize>,
    Posted(reader, _): Posted<Reader, NoFields>,
) -> Result<Response, WebError> {
    let mut rules = editable(&state, &reader).await?;
    let n = index(&rules, n)?;
    if let Some(f) = rules.filters.get_mut(n) {
        f.enabled = !f.enabled;
        // A forward written while the domain allowed it is checked again as it comes on.
        if let (true, FilterAction::Forward { address, .. }) = (f.enabled, &f.action)
            && let Err(e) = may_forward_to(&state, &reader, address).await?
        {
            return refused(&state, &reader, e).await;
        }
    }
    save_and_back(&state, &reader, &rules).await
}

pub async fn delete_filter(
    State(state): State<WebState>,
    Path(n): Path<usize>,
    Posted(reader, _): Posted<Reader, NoFields>,
) -> Result<Response, WebError> {
    let mut rules = editable(&state, &reader).await?;
    let n = index(&rules, n)?;
    rules.filters.remove(n);
    save_and_back(&state, &reader, &rules).await
}

/// Makes our script the active one again (writing it first if there is none yet).
pub async fn use_ours(
    State(state): State<WebState>,
    Posted(reader, _): Posted<Reader, NoFields>,
) -> Result<Response, WebError> {
    let account = reader.account_id();
    if state
        .store
        .sieve_script(account, SCRIPT_NAME)
        .await?
        .is_none()
        && let Err(e) = save(&state, &reader, &Rules::default()).await?
    {
        return refused(&state, &reader, e).await;
    }
    match state
        .store
        .set_active_sieve(account, Some(SCRIPT_NAME))
        .await?
    {
        Ok(()) => Ok(Redirect::to(BACK).into_response()),
        Err(r) => refused(&state, &reader, refusal_text(r)).await,
    }
}

/// Replaces our script, edited by hand, with empty rules the pages can edit.
pub async fn start_over(
    State(state): State<WebState>,
    Posted(reader, _): Posted<Reader, NoFields>,
) -> Result<Response, WebError> {
    save_and_back(&state, &reader, &Rules::default()).await
}

pub async fn dismiss_error(
    State(state): State<WebState>,
    Posted(reader, _): Posted<Reader, NoFields>,
) -> Result<Response, WebError> {
    state.store.clear_sieve_error(reader.account_id()).await?;
    Ok(Redirect::to(BACK).into_response())
}

#[derive(Deserialize)]
pub struct RawForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    source: String,
}

/// Saves a script edited as text: compiled first; on an error the page shows it with its line
/// and column, and keeps the text.
pub async fn save_raw(
    State(state): State<WebState>,
    Posted(reader, f): Posted<Reader, RawForm>,
) -> Result<Response, WebError> {
    let account = reader.account_id();
    // Only scripts that exist: this editor changes them, ManageSieve makes new ones.
    if state.store.sieve_script(account, &f.name).await?.is_none() {
        return Err(WebError::NotFound);
    }
    // Browsers send a textarea's lines with CRLF; the text is kept as it was shown.
    let source = f.source.replace("\r\n", "\n");
    let error = match crate::sieve::compile(&source) {
        Ok(compiled) => match state
            .store
            .put_sieve(account, &f.name, &source, &compiled.to_stored())
            .await
        {
            Ok(Ok(())) => return Ok(Redirect::to(BACK).into_response()),
            Ok(Err(r)) => refusal_text(r),
            Err(StoreError::Invalid(e)) => e,
            Err(e) => return Err(e.into()),
        },
        Err(e) => e.to_string(),
    };
    let mut page = rules_page(&state, &reader, None).await?;
    page.raw = Some(RawEditor {
        name: f.name,
        source,
        error: Some(error),
    });
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}
