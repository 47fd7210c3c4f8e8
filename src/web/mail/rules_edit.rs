//! The forms of the Rules pages that edit one thing: a filter (new or existing), the vacation
//! reply, forwarding. Each reads the rules, changes its part and saves them all through
//! `rules::save`; on an error the form comes back as typed, with why.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::super::session::Posted;
use super::super::{WebError, WebState};
use super::rules::{BACK, editable, may_forward_to, save};
use super::{Chrome, Reader};
use crate::sieve::rules::{
    Field, Filter, FilterAction, ForwardRule, MAX_VACATION_DAYS, Op, Rules, VacationRule,
    parse_size, size_text,
};

/// The filter form's fields, as typed (also what the page shows).
#[derive(Deserialize, Default, Clone)]
pub struct FilterForm {
    /// `from`, `tocc`, `subject`, `header`, `size`, `spam`.
    #[serde(default)]
    pub field: String,
    #[serde(default)]
    pub header: String,
    /// `contains`, `is`, `matches`, `gt`, `lt`.
    #[serde(default)]
    pub op: String,
    #[serde(default)]
    pub value: String,
    /// `move`, `copy`, `read`, `flag`, `forward`, `reject`, `delete`.
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub folder: String,
    #[serde(default)]
    pub address: String,
    pub keep: Option<String>,
    #[serde(default)]
    pub message: String,
    pub stop: Option<String>,
    pub enabled: Option<String>,
}

impl FilterForm {
    fn of(f: &Filter) -> FilterForm {
        let (field, header) = match &f.field {
            Field::From => ("from", ""),
            Field::ToOrCc => ("tocc", ""),
            Field::Subject => ("subject", ""),
            Field::Header(h) => ("header", h.as_str()),
            Field::Size => ("size", ""),
            Field::SpamScore => ("spam", ""),
        };
        let op = match f.op {
            Op::Contains => "contains",
            Op::Is => "is",
            Op::Matches => "matches",
            Op::GreaterThan => "gt",
            Op::LessThan => "lt",
        };
        let mut form = FilterForm {
            field: field.into(),
            header: header.into(),
            op: op.into(),
            value: f.value.clone(),
            stop: f.stop.then(|| "1".into()),
            enabled: f.enabled.then(|| "1".into()),
            ..FilterForm::default()
        };
        form.action = match &f.action {
            FilterAction::MoveTo(folder) => {
                form.folder = folder.clone();
                "move"
            }
            FilterAction::CopyTo(folder) => {
                form.folder = folder.clone();
                "copy"
            }
            FilterAction::MarkRead => "read",
            FilterAction::Flag => "flag",
            FilterAction::Forward { address, keep } => {
                form.address = address.clone();
                form.keep = keep.then(|| "1".into());
                "forward"
            }
            FilterAction::Reject(m) => {
                form.message = m.clone();
                "reject"
            }
            FilterAction::Delete => "delete",
        }
        .into();
        form
    }

    /// The filter the form describes (not yet checked as a whole: `Rules::check` does).
    fn filter(&self) -> Result<Filter, String> {
        let field = match self.field.as_str() {
            "from" => Field::From,
            "tocc" => Field::ToOrCc,
            "subject" => Field::Subject,
            "header" => {
                let name = self.header.trim();
                // The named fields have their own choice: one spelling each in the script.
                match name.to_ascii_lowercase().as_str() {
                    "from" => Field::From,
                    "subject" => Field::Subject,
                    _ => Field::Header(name.to_string()),
                }
            }
            "size" => Field::Size,
            "spam" => Field::SpamScore,
            _ => return Err("Choose what to look at.".into()),
        };
        let op = match self.op.as_str() {
            "contains" => Op::Contains,
            "is" => Op::Is,
            "matches" => Op::Matches,
            "gt" => Op::GreaterThan,
            "lt" => Op::LessThan,
            _ => return Err("Choose how to compare.".into()),
        };
        if !op.allowed_for(&field) {
            return Err(if field.is_text() {
                "Text is compared with contains, is or matches.".into()
            } else {
                "Sizes and spam scores are compared with greater than or less than.".into()
            });
        }
        let value = match field {
            Field::Size => size_text(parse_size(&self.value).ok_or(
                "A size is a number of bytes, with K, M or G for kilo-, mega-, gigabytes.",
            )?),
            Field::SpamScore => match self.value.trim().trim_end_matches('%').parse::<u8>() {
                Ok(n) if n <= 100 => n.to_string(),
                _ => return Err("A spam score is a percentage from 0 to 100.".into()),
            },
            _ => self.value.clone(),
        };
        let action = match self.action.as_str() {
            "move" => FilterAction::MoveTo(self.folder.clone()),
            "copy" => FilterAction::CopyTo(self.folder.clone()),
            "read" => FilterAction::MarkRead,
            "flag" => FilterAction::Flag,
            "forward" => FilterAction::Forward {
                address: self.address.trim().to_string(),
                keep: self.keep.is_some(),
            },
            "reject" => FilterAction::Reject(self.message.replace("\r\n", "\n")),
            "delete" => FilterAction::Delete,
            _ => return Err("Choose what to do.".into()),
        };
        Ok(Filter {
            enabled: self.enabled.is_some(),
            field,
            op,
            value,
            action,
            stop: self.stop.is_some(),
        })
    }

    fn is(&self, field: &str, value: &str) -> bool {
        match field {
            "field" => self.field == value,
            "op" => self.op == value,
            "action" => self.action == value,
            "folder" => self.folder == value,
            _ => false,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "mail/rules_filter.html")]
pub struct FilterPage {
    chrome: Chrome,
    /// The filter's number from 0, or None for a new one.
    index: Option<usize>,
    form: FilterForm,
    error: Option<String>,
}

impl FilterPage {
    /// The filter's folder when the account has no folder of that name (any more): still
    /// offered, so that saving does not quietly pick another.
    fn missing_folder(&self) -> Option<&str> {
        let f = self.form.folder.as_str();
        (!f.is_empty() && !self.chrome.folders.iter().any(|x| x.name == f)).then_some(f)
    }

    fn action_url(&self) -> String {
        match self.index {
            Some(n) => format!("/mail/settings/rules/filters/{n}"),
            None => "/mail/settings/rules/filters/new".into(),
        }
    }
}

pub async fn new_filter(
    reader: Reader,
    State(state): State<WebState>,
) -> Result<FilterPage, WebError> {
    editable(&state, &reader).await?;
    Ok(FilterPage {
        chrome: Chrome::new(&state, &reader, None, None).await?,
        index: None,
        form: FilterForm {
            field: "subject".into(),
            op: "contains".into(),
            action: "move".into(),
            enabled: Some("1".into()),
            ..FilterForm::default()
        },
        error: None,
    })
}

pub async fn edit_filter(
    reader: Reader,
    State(state): State<WebState>,
    Path(n): Path<usize>,
) -> Result<FilterPage, WebError> {
    let rules = editable(&state, &reader).await?;
    let filter = rules.filters.get(n).ok_or(WebError::NotFound)?;
    Ok(FilterPage {
        chrome: Chrome::new(&state, &reader, None, None).await?,
        index: Some(n),
        form: FilterForm::of(filter),
        error: None,
    })
}

async fn save_filter(
    state: &WebState,
    reader: &Reader,
    index: Option<usize>,
    form: FilterForm,
) -> Result<Response, WebError> {
    let mut rules = editable(state, reader).await?;
    let result = match form.filter() {
        Err(e) => Err(e),
        Ok(filter) => {
            let allowed = match &filter.action {
                FilterAction::Forward { address, .. } if filter.enabled => {
                    may_forward_to(state, reader, address).await?
                }
                _ => Ok(()),
            };
            match (allowed, index) {
                (Err(e), _) => Err(e),
                (Ok(()), None) => {
                    rules.filters.push(filter);
                    save(state, reader, &rules).await?
                }
                (Ok(()), Some(n)) => match rules.filters.get_mut(n) {
                    None => return Err(WebError::NotFound),
                    Some(slot) => {
                        *slot = filter;
                        save(state, reader, &rules).await?
                    }
                },
            }
        }
    };
    match result {
        Ok(()) => Ok(Redirect::to(BACK).into_response()),
        Err(e) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            FilterPage {
                chrome: Chrome::new(state, reader, None, None).await?,
                index,
                form,
                error: Some(e),
            },
        )
            .into_response()),
    }
}

pub async fn create_filter(
    State(state): State<WebState>,
    Posted(reader, form): Posted<Reader, FilterForm>,
) -> Result<Response, WebError> {
    save_filter(&state, &reader, None, form).await
}

pub async fn update_filter(
    State(state): State<WebState>,
    Path(n): Path<usize>,
    Posted(reader, form): Posted<Reader, FilterForm>,
) -> Result<Response, WebError> {
    save_filter(&state, &reader, Some(n), form).await
}

/// The vacation form's fields, as typed.
#[derive(Deserialize, Default)]
pub struct VacationForm {
    pub enabled: Option<String>,
    #[serde(default)]
    pub first_day: String,
    #[serde(default)]
    pub last_day: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub days: String,
    /// One address a line (or separated by commas).
    #[serde(default)]
    pub addresses: String,
}

impl VacationForm {
    fn of(v: &VacationRule) -> VacationForm {
        VacationForm {
            enabled: v.enabled.then(|| "1".into()),
            first_day: v.first_day.clone().unwrap_or_default(),
            last_day: v.last_day.clone().unwrap_or_default(),
            subject: v.subject.clone(),
            message: v.message.clone(),
            days: v.days.to_string(),
            addresses: v.addresses.join("\n"),
        }
    }

    fn rule(&self) -> Result<VacationRule, String> {
        let day = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let days = self
            .days
            .trim()
            .parse::<u32>()
            .map_err(|_| format!("Reply once every 1 to {MAX_VACATION_DAYS} days."))?;
        Ok(VacationRule {
            enabled: self.enabled.is_some(),
            first_day: day(&self.first_day),
            last_day: day(&self.last_day),
            subject: self.subject.trim().to_string(),
            message: self.message.replace("\r\n", "\n"),
            days,
            addresses: self
                .addresses
                .split(['\n', ','])
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(String::from)
                .collect(),
        })
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "mail/rules_vacation.html")]
pub struct VacationPage {
    chrome: Chrome,
    form: VacationForm,
    error: Option<String>,
}

pub async fn vacation_page(
    reader: Reader,
    State(state): State<WebState>,
) -> Result<VacationPage, WebError> {
    let rules = editable(&state, &reader).await?;
    let form = match &rules.vacation {
        Some(v) => VacationForm::of(v),
        None => VacationForm {
            days: "7".into(),
            ..VacationForm::default()
        },
    };
    Ok(VacationPage {
        chrome: Chrome::new(&state, &reader, None, None).await?,
        form,
        error: None,
    })
}

pub async fn save_vacation(
    State(state): State<WebState>,
    Posted(reader, form): Posted<Reader, VacationForm>,
) -> Result<Response, WebError> {
    let mut rules: Rules = editable(&state, &reader).await?;
    let result = match form.rule() {
        Ok(v) => {
            rules.vacation = Some(v);
            save(&state, &reader, &rules).await?
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(Redirect::to(BACK).into_response()),
        Err(e) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            VacationPage {
                chrome: Chrome::new(&state, &reader, None, None).await?,
                form,
                error: Some(e.trim_start_matches("Vacation: ").to_string()),
            },
        )
            .into_response()),
    }
}

#[derive(Deserialize, Default)]
pub struct ForwardForm {
    #[serde(default)]
    pub address: String,
    pub keep: Option<String>,
    /// The "stop forwarding" button.
    pub off: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "mail/rules_forwarding.html")]
pub struct ForwardPage {
    chrome: Chrome,
    form: ForwardForm,
    /// Whether forwarding is on now.
    on: bool,
    /// The domain allows forwarding outside our domains.
    external: bool,
    error: Option<String>,
}

async fn forward_page(
    state: &WebState,
    reader: &Reader,
    form: Option<ForwardForm>,
    error: Option<String>,
) -> Result<ForwardPage, WebError> {
    let rules = editable(state, reader).await?;
    let form = form.unwrap_or_else(|| match &rules.forward {
        Some(f) => ForwardForm {
            address: f.address.clone(),
            keep: f.keep.then(|| "1".into()),
            off: None,
        },
        None => ForwardForm {
            keep: Some("1".into()),
            ..ForwardForm::default()
        },
    });
    Ok(ForwardPage {
        chrome: Chrome::new(state, reader, None, None).await?,
        form,
        on: rules.forward.is_some(),
        external: state
            .store
            .account_may_forward_externally(reader.account_id())
            .await?,
        error,
    })
}

pub async fn forwarding_page(
    reader: Reader,
    State(state): State<WebState>,
) -> Result<ForwardPage, WebError> {
    forward_page(&state, &reader, None, None).await
}

pub async fn save_forwarding(
    State(state): State<WebState>,
    Posted(reader, form): Posted<Reader, ForwardForm>,
) -> Result<Response, WebError> {
    let mut rules = editable(&state, &reader).await?;
    let result = if form.off.is_some() {
        rules.forward = None;
        save(&state, &reader, &rules).await?
    } else {
        let address = form.address.trim().to_string();
        match may_forward_to(&state, &reader, &address).await? {
            Err(e) => Err(e),
            Ok(()) => {
                rules.forward = Some(ForwardRule {
                    address,
                    keep: form.keep.is_some(),
                });
                save(&state, &reader, &rules).await?
            }
        }
    };
    match result {
        Ok(()) => Ok(Redirect::to(BACK).into_response()),
        Err(e) => {
            let page = forward_page(&state, &reader, Some(form), Some(e)).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_goes_to_its_form_and_back() {
        let filters = [
            Filter {
                enabled: true,
                field: Field::Header("X-Mailer".into()),
                op: Op::Matches,
                value: "*Outlook*".into(),
                action: FilterAction::Forward {
                    address: "a@example.org".into(),
                    keep: true,
                },
                stop: false,
            },
            Filter {
                enabled: false,
                field: Field::Size,
                op: Op::GreaterThan,
                value: "10M".into(),
                action: FilterAction::Reject("Too big.\nSorry".into()),
                stop: true,
            },
            Filter {
                enabled: true,
                field: Field::SpamScore,
                op: Op::Is,
                value: "80".into(),
                action: FilterAction::CopyTo("Junk/Maybe".into()),
                stop: true,
            },
        ];
        for f in filters {
            assert_eq!(FilterForm::of(&f).filter(), Ok(f));
        }
    }

    #[test]
    fn typed_values_are_normalised_or_refused() {
        let form = |field: &str, op: &str, value: &str| FilterForm {
            field: field.into(),
            op: op.into(),
            value: value.into(),
            action: "delete".into(),
            ..FilterForm::default()
        };
        let size = form("size", "gt", " 2048k").filter().unwrap();
        assert_eq!(size.value, "2M");
        assert_eq!(form("spam", "gt", "75%").filter().unwrap().value, "75");
        assert!(form("spam", "gt", "175").filter().is_err());
        assert!(form("size", "contains", "1K").filter().is_err());
        assert!(form("subject", "gt", "x").filter().is_err());
        assert_eq!(
            form("header", "is", "x").filter().map(|f| f.field),
            Ok(Field::Header(String::new()))
        );
        let mut named = form("header", "is", "x");
        named.header = " SUBJECT ".into();
        assert_eq!(named.filter().map(|f| f.field), Ok(Field::Subject));
    }
}
