//! `/mail/settings/spam`: the account's own junk threshold (or its domain's), and its
//! always-allow and always-block lists of senders (addresses or whole domains).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::super::session::Posted;
use super::super::{WebError, WebState};
use super::settings::DoneQuery;
use super::{Chrome, Reader};
use crate::address::{Address, validate_domain};
use crate::store::{SenderEntry, SpamPolicy};

/// Longest list entry (the store's limit: an address is at most 254 characters).
const MAX_ENTRY_LEN: usize = 254;

/// The thresholds a user may choose (points on the filter's scale; 5 is the usual default):
/// lower junks almost everything, higher junks almost nothing.
pub const MIN_THRESHOLD: f64 = 1.0;
pub const MAX_THRESHOLD: f64 = 50.0;

#[derive(Template, WebTemplate, Default)]
#[template(path = "mail/spam_settings.html")]
pub struct SpamSettingsPage {
    chrome: Chrome,
    policy: SpamPolicy,
    /// The threshold field as shown (the account's own, or what was typed).
    threshold: String,
    allowed: Vec<String>,
    blocked: Vec<String>,
    /// The list field as typed after an error.
    entry: String,
    threshold_error: Option<String>,
    list_error: Option<String>,
}

impl SpamSettingsPage {
    /// What applies when the account has no threshold of its own.
    fn inherited(&self) -> String {
        match self.policy.domain_junk {
            Some(t) => format!("your domain's, {t}"),
            None => format!(
                "the server's default, {}",
                crate::spam::verdict::DEFAULT_JUNK
            ),
        }
    }
}

async fn spam_page(
    state: &WebState,
    reader: &Reader,
    done: Option<&str>,
) -> Result<SpamSettingsPage, WebError> {
    let policy = state.store.spam_policy(reader.account_id()).await?;
    let (allowed, blocked): (Vec<SenderEntry>, Vec<SenderEntry>) = state
        .store
        .spam_list(reader.account_id())
        .await?
        .into_iter()
        .partition(|e| e.allow);
    Ok(SpamSettingsPage {
        chrome: Chrome::new(state, reader, None, done).await?,
        threshold: policy
            .account_junk
            .map(|t| t.to_string())
            .unwrap_or_default(),
        policy,
        allowed: allowed.into_iter().map(|e| e.entry).collect(),
        blocked: blocked.into_iter().map(|e| e.entry).collect(),
        ..SpamSettingsPage::default()
    })
}

pub async fn page(
    reader: Reader,
    State(state): State<WebState>,
    Query(q): Query<DoneQuery>,
) -> Result<SpamSettingsPage, WebError> {
    spam_page(&state, &reader, q.done()).await
}

/// A threshold as typed: empty for "the level above decides", else a number from `min` to
/// `max`.
pub fn parse_threshold(s: &str, min: f64, max: f64) -> Result<Option<f64>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    match s.replace(',', ".").parse::<f64>() {
        Ok(t) if t.is_finite() && (min..=max).contains(&t) => Ok(Some(t)),
        _ => Err(format!("A number from {min} to {max}, or empty.")),
    }
}

#[derive(Deserialize)]
pub struct ThresholdForm {
    #[serde(default)]
    threshold: String,
    /// The "use the domain's" button.
    default: Option<String>,
}

pub async fn threshold(
    State(state): State<WebState>,
    Posted(reader, f): Posted<Reader, ThresholdForm>,
) -> Result<Response, WebError> {
    let typed = if f.default.is_some() {
        ""
    } else {
        f.threshold.as_str()
    };
    match parse_threshold(typed, MIN_THRESHOLD, MAX_THRESHOLD) {
        Ok(t) => {
            state
                .store
                .set_account_junk_threshold(reader.account_id(), t)
                .await?;
            Ok(Redirect::to("/mail/settings/spam?done=spam-settings").into_response())
        }
        Err(e) => {
            let mut page = spam_page(&state, &reader, None).await?;
            page.threshold = f.threshold;
            page.threshold_error = Some(e);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

/// A list entry as typed, normalised: a lower-case address, or a domain (`@domain` too).
pub fn normalise_entry(s: &str) -> Result<String, String> {
    let s = s.trim().to_lowercase();
    if s.is_empty() {
        return Err("Type an address (someone@example.com) or a domain (example.com).".into());
    }
    if s.len() > MAX_ENTRY_LEN {
        return Err(format!("At most {MAX_ENTRY_LEN} characters."));
    }
    let entry = match s.strip_prefix('@') {
        Some(domain) => validate_domain(domain)?,
        None if s.contains('@') => Address::parse(&s)?.to_string(),
        None => validate_domain(&s)?,
    };
    if !entry.contains('@') && !entry.contains('.') {
        return Err(format!(
            "{entry:?} is not a domain: a domain has a dot (example.com)."
        ));
    }
    Ok(entry)
}

#[derive(Deserialize)]
pub struct ListForm {
    #[serde(default)]
    entry: String,
    /// `allow` or `block`.
    #[serde(default)]
    list: String,
}

pub async fn add(
    State(state): State<WebState>,
    Posted(reader, f): Posted<Reader, ListForm>,
) -> Result<Response, WebError> {
    let allow = match f.list.as_str() {
        "allow" => true,
        "block" => false,
        _ => return Err(WebError::BadRequest("Choose a list.".into())),
    };
    let result = match normalise_entry(&f.entry) {
        Ok(entry) => match state
            .store
            .set_spam_list_entry(reader.account_id(), &entry, allow)
            .await
        {
            Ok(()) => Ok(()),
            Err(crate::store::StoreError::Invalid(e)) => Err(e),
            Err(e) => return Err(e.into()),
        },
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(Redirect::to("/mail/settings/spam?done=spam-settings").into_response()),
        Err(e) => {
            let mut page = spam_page(&state, &reader, None).await?;
            page.entry = f.entry;
            page.list_error = Some(e);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    entry: String,
}

pub async fn remove(
    State(state): State<WebState>,
    Posted(reader, f): Posted<Reader, RemoveForm>,
) -> Result<Response, WebError> {
    let entry = f.entry.trim();
    if !state
        .store
        .remove_spam_list_entry(reader.account_id(), entry)
        .await?
    {
        let mut page = spam_page(&state, &reader, None).await?;
        page.list_error = Some(format!("{entry:?} is not on your lists."));
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    Ok(Redirect::to("/mail/settings/spam?done=spam-settings").into_response())
}

#[cfg(test)]
mod tests {
    use super::{normalise_entry, parse_threshold};

    #[test]
    fn list_entries_are_normalised_and_checked() {
        assert_eq!(
            normalise_entry(" Bob@Example.COM ").unwrap(),
            "bob@example.com"
        );
        assert_eq!(normalise_entry("Example.com").unwrap(), "example.com");
        assert_eq!(
            normalise_entry("@news.example.com.").unwrap(),
            "news.example.com"
        );
        for bad in [
            "",
            "  ",
            "localhost",
            "a b@example.com",
            "@",
            "x@",
            "exa mple.com",
            "-a.com",
        ] {
            assert!(normalise_entry(bad).is_err(), "{bad:?}");
        }
        assert!(normalise_entry(&format!("{}.com", "a".repeat(260))).is_err());
    }

    #[test]
    fn thresholds_are_numbers_in_range_or_empty() {
        assert_eq!(parse_threshold("", 1.0, 50.0), Ok(None));
        assert_eq!(parse_threshold(" 7.5 ", 1.0, 50.0), Ok(Some(7.5)));
        assert_eq!(parse_threshold("7,5", 1.0, 50.0), Ok(Some(7.5)));
        for bad in ["0.5", "51", "NaN", "inf", "five", "-3"] {
            assert!(parse_threshold(bad, 1.0, 50.0).is_err(), "{bad:?}");
        }
    }
}
