//! `/admin/spam`: the spam filter per domain (on or off, junk and reject thresholds), the DNS
//! block and allow lists asked at SMTP time with their weights, greylisting, and the warning
//! that a blocklist refuses our resolver. Every change is audited (`spam.*`).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::super::mail::parse_threshold;
use super::super::{WebError, WebState};
use super::{Admin, Chrome, ListQuery, NoFields, Posted, done, timestamp};
use crate::address::validate_domain;
use crate::store::{DomainSpamPolicy, StoreError, Zone};

// The server-wide switches are greylisting's own meta keys and bounds, and the resolver
// warning is what `spam::dnsbl` writes and reads back: one definition each.
use crate::spam::dnsbl::{REFUSED_KEY as DNSBL_REFUSED, refused_warning};
use crate::spam::greylist::{
    DEFAULT_DELAY_SECS as DEFAULT_GREYLIST_DELAY, DELAY_KEY as GREYLIST_DELAY,
    MAX_DELAY_SECS as MAX_GREYLIST_DELAY, ON_KEY as GREYLISTING,
};

/// The shortest greylisting delay an admin may choose (seconds).
const MIN_GREYLIST_DELAY: i64 = 30;
/// Thresholds a domain may have (points on the filter's scale).
const MIN_THRESHOLD: f64 = 1.0;
const MAX_JUNK: f64 = 50.0;
const MAX_REJECT: f64 = 100.0;
/// A zone's weight: a listing adds it to the score (an allow list's is negative).
const MAX_WEIGHT: f64 = 20.0;

#[derive(Template, WebTemplate, Default)]
#[template(path = "admin/spam.html")]
pub(super) struct SpamPage {
    chrome: Chrome,
    domains: Vec<DomainSpamPolicy>,
    zones: Vec<Zone>,
    greylisting: bool,
    greylist_delay: i64,
    /// The blocklist that refused our resolver, and when.
    refused: Option<(String, String)>,
    /// An error and the section it belongs to (`domain:<name>`, `zone`, `greylisting`).
    error: Option<(String, String)>,
    /// The server's defaults, for domains without thresholds of their own.
    default_junk: f64,
    default_reject: f64,
    /// The zone form as typed after an error.
    zone: String,
    weight: String,
}

impl SpamPage {
    fn error_for(&self, section: &str) -> Option<&str> {
        self.error
            .as_ref()
            .filter(|(s, _)| s == section)
            .map(|(_, e)| e.as_str())
    }

    fn domain_error(&self, domain: &str) -> Option<&str> {
        self.error_for(&format!("domain:{domain}"))
    }
}

/// A threshold for a form field: empty for "the default".
fn shown(t: &Option<f64>) -> String {
    t.map(|t| t.to_string()).unwrap_or_default()
}

async fn spam_page(
    state: &WebState,
    admin: &Admin,
    done: Option<&str>,
) -> Result<SpamPage, WebError> {
    let store = &state.store;
    let refused = refused_warning(store)
        .await
        .map(|(zone, at)| (zone, timestamp(at)));
    Ok(SpamPage {
        chrome: Chrome::new(state, admin, "spam", done),
        domains: store.domain_spam_policies().await?,
        zones: store.spam_zones().await?,
        greylisting: store.meta(GREYLISTING).await?.as_deref() == Some("1"),
        greylist_delay: store
            .meta(GREYLIST_DELAY)
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_GREYLIST_DELAY),
        refused,
        default_junk: crate::spam::verdict::DEFAULT_JUNK,
        default_reject: crate::spam::verdict::DEFAULT_REJECT,
        ..SpamPage::default()
    })
}

pub(super) async fn page(
    admin: Admin,
    State(state): State<WebState>,
    Query(q): Query<ListQuery>,
) -> Result<SpamPage, WebError> {
    spam_page(&state, &admin, q.done.as_deref()).await
}

/// The page again with an error in `section`, 422.
async fn refused(
    state: &WebState,
    admin: &Admin,
    section: String,
    error: String,
    edit: impl FnOnce(&mut SpamPage),
) -> Result<Response, WebError> {
    let mut page = spam_page(state, admin, None).await?;
    page.error = Some((section, error));
    edit(&mut page);
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

#[derive(Deserialize)]
pub(super) struct DomainForm {
    /// The checkbox: present when on.
    enabled: Option<String>,
    #[serde(default)]
    junk: String,
    #[serde(default)]
    reject: String,
}

/// What a domain's settings say, for the audit log.
fn describe(p: &DomainSpamPolicy) -> String {
    let level = |t: Option<f64>| t.map_or_else(|| "default".to_string(), |t| t.to_string());
    format!(
        "{}, junk {}, reject {}",
        if p.enabled { "on" } else { "off" },
        level(p.junk),
        level(p.reject)
    )
}

pub(super) async fn set_domain(
    State(state): State<WebState>,
    Path(name): Path<String>,
    Posted(admin, f): Posted<Admin, DomainForm>,
) -> Result<Response, WebError> {
    let checked = (|| {
        let junk = parse_threshold(&f.junk, MIN_THRESHOLD, MAX_JUNK)
            .map_err(|e| format!("Junk threshold: {e}"))?;
        let reject = parse_threshold(&f.reject, MIN_THRESHOLD, MAX_REJECT)
            .map_err(|e| format!("Reject threshold: {e}"))?;
        // Compared as they will apply: an empty field means the default.
        let effective_junk = junk.unwrap_or(crate::spam::verdict::DEFAULT_JUNK);
        let effective_reject = reject.unwrap_or(crate::spam::verdict::DEFAULT_REJECT);
        if effective_reject <= effective_junk {
            return Err(format!(
                "The reject threshold ({effective_reject}) must be above the junk threshold ({effective_junk})."
            ));
        }
        Ok((junk, reject))
    })();
    let (junk, reject) = match checked {
        Ok(t) => t,
        Err(e) => return refused(&state, &admin, format!("domain:{name}"), e, |_| {}).await,
    };
    let policy = DomainSpamPolicy {
        domain: name,
        enabled: f.enabled.is_some(),
        junk,
        reject,
    };
    state.store.set_domain_spam_policy(&policy).await?;
    admin
        .audit(&state, "spam.domain", &policy.domain, &describe(&policy))
        .await?;
    Ok(done("/admin/spam", "spam-updated"))
}

#[derive(Deserialize)]
pub(super) struct ZoneForm {
    #[serde(default)]
    zone: String,
    #[serde(default)]
    weight: String,
}

/// A zone as typed: a DNS name with at least two labels, lower case.
fn zone_name(s: &str) -> Result<String, String> {
    let zone = validate_domain(s).map_err(|e| format!("Zone: {e}"))?;
    if !zone.contains('.') {
        return Err("Zone: a DNS list's name, such as zen.spamhaus.org.".into());
    }
    Ok(zone)
}

fn weight(s: &str) -> Result<f64, String> {
    match s.trim().replace(',', ".").parse::<f64>() {
        Ok(w) if w.is_finite() && w != 0.0 && w.abs() <= MAX_WEIGHT => Ok(w),
        _ => Err(format!(
            "Weight: a number from -{MAX_WEIGHT} to {MAX_WEIGHT}, not 0 (positive for a \
             blocklist, negative for an allow list)."
        )),
    }
}

pub(super) async fn set_zone(
    State(state): State<WebState>,
    Posted(admin, f): Posted<Admin, ZoneForm>,
) -> Result<Response, WebError> {
    let checked = zone_name(&f.zone).and_then(|z| Ok((z, weight(&f.weight)?)));
    let (zone, weight) = match checked {
        Ok(z) => z,
        Err(e) => {
            return refused(&state, &admin, "zone".into(), e, |p| {
                p.zone = f.zone;
                p.weight = f.weight;
            })
            .await;
        }
    };
    let existed = state
        .store
        .spam_zones()
        .await?
        .iter()
        .any(|z| z.zone.eq_ignore_ascii_case(&zone));
    match state.store.set_spam_zone(&zone, weight).await {
        Ok(()) => {}
        Err(StoreError::Invalid(e)) => {
            return refused(&state, &admin, "zone".into(), e, |p| {
                p.zone = f.zone;
                p.weight = f.weight;
            })
            .await;
        }
        Err(e) => return Err(e.into()),
    }
    let action = if existed {
        "spam.zone.change"
    } else {
        "spam.zone.add"
    };
    admin
        .audit(&state, action, &zone, &format!("weight {weight}"))
        .await?;
    Ok(done("/admin/spam", "spam-updated"))
}

#[derive(Deserialize)]
pub(super) struct ZoneRemoveForm {
    #[serde(default)]
    zone: String,
}

pub(super) async fn remove_zone(
    State(state): State<WebState>,
    Posted(admin, f): Posted<Admin, ZoneRemoveForm>,
) -> Result<Response, WebError> {
    let zone = f.zone.trim();
    if !state.store.remove_spam_zone(zone).await? {
        return Err(WebError::NotFound);
    }
    admin.audit(&state, "spam.zone.remove", zone, "").await?;
    Ok(done("/admin/spam", "spam-updated"))
}

#[derive(Deserialize)]
pub(super) struct GreylistForm {
    enabled: Option<String>,
    #[serde(default)]
    delay: String,
}

pub(super) async fn set_greylisting(
    State(state): State<WebState>,
    Posted(admin, f): Posted<Admin, GreylistForm>,
) -> Result<Response, WebError> {
    let delay = match f.delay.trim().parse::<i64>() {
        Ok(d) if (MIN_GREYLIST_DELAY..=MAX_GREYLIST_DELAY).contains(&d) => d,
        _ => {
            let e =
                format!("Delay: whole seconds from {MIN_GREYLIST_DELAY} to {MAX_GREYLIST_DELAY}.");
            return refused(&state, &admin, "greylisting".into(), e, |_| {}).await;
        }
    };
    let on = f.enabled.is_some();
    let store = &state.store;
    store
        .set_meta(GREYLISTING, if on { "1" } else { "0" })
        .await?;
    store.set_meta(GREYLIST_DELAY, &delay.to_string()).await?;
    let detail = format!("{}, delay {delay} s", if on { "on" } else { "off" });
    admin
        .audit(&state, "spam.greylisting", "server", &detail)
        .await?;
    Ok(done("/admin/spam", "spam-updated"))
}

/// Hides the resolver warning (the SMTP server sets it again at the next refusal).
pub(super) async fn dismiss_refused(
    State(state): State<WebState>,
    Posted(admin, _): Posted<Admin, NoFields>,
) -> Result<Response, WebError> {
    let was = state.store.meta(DNSBL_REFUSED).await?.unwrap_or_default();
    state.store.delete_meta(DNSBL_REFUSED).await?;
    admin
        .audit(&state, "spam.warning.dismiss", "server", &was)
        .await?;
    Ok(done("/admin/spam", "spam-updated"))
}

#[cfg(test)]
mod tests {
    use super::{weight, zone_name};

    #[test]
    fn zones_and_weights_are_checked() {
        assert_eq!(
            zone_name(" Zen.Spamhaus.org. ").unwrap(),
            "zen.spamhaus.org"
        );
        for bad in ["", "localhost", "a b.org", "-x.org"] {
            assert!(zone_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(weight("4"), Ok(4.0));
        assert_eq!(weight("-2,5"), Ok(-2.5));
        for bad in ["0", "21", "-21", "NaN", "inf", "x", ""] {
            assert!(weight(bad).is_err(), "{bad:?}");
        }
    }
}
