//! The address book at `/mail/contacts`: list and search, add, edit, delete, import and
//! export vCard files, and the suggestions that `static/compose.js` shows under To/Cc/Bcc
//! (`/mail/contacts/suggest?q=`, JSON). Contacts are also collected when mail is sent
//! (`compose.rs`). Every query goes through the reader's own account id: another account's
//! contacts are never found (a contact id of theirs is "not found").

use askama::Template;
use askama_web::WebTemplate;
use axum::Json;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::super::session::{NoFields, Posted};
use super::super::{WebError, WebState};
use super::{Chrome, Reader};
use crate::store::contacts::MAX_PER_ACCOUNT;
use crate::store::{Contact, ContactFields, StoreError, Suggestion};
use crate::vcard;

/// Contacts listed on one page, at most (search finds the others).
const SHOWN: i64 = 200;
/// Suggestions for an address field, at most.
const SUGGESTIONS: usize = 10;
/// Longest search or suggestion query read (characters).
const MAX_QUERY: usize = 200;

#[derive(Template, WebTemplate, Default)]
#[template(path = "mail/contacts.html")]
pub struct ContactsPage {
    chrome: Chrome,
    q: String,
    contacts: Vec<Contact>,
    total: i64,
    /// The contact being edited (its id), or none: the form adds one.
    editing: Option<i64>,
    form: ContactForm,
    error: Option<String>,
    /// What an import did, and the cards it could not use.
    imported: Option<String>,
    import_errors: Vec<String>,
    /// Contacts an account may have.
    max: i64,
}

impl ContactsPage {
    fn more(&self) -> bool {
        self.total > self.contacts.len() as i64 && self.q.is_empty()
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    done: Option<String>,
}

/// The add/edit form: addresses and numbers one per line (or comma separated).
#[derive(Deserialize, Default, Clone)]
pub struct ContactForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    emails: String,
    #[serde(default)]
    phones: String,
    #[serde(default)]
    org: String,
    #[serde(default)]
    note: String,
}

impl ContactForm {
    fn of(c: &ContactFields) -> ContactForm {
        ContactForm {
            name: c.name.clone(),
            emails: c.emails.join("\n"),
            phones: c.phones.join("\n"),
            org: c.org.clone(),
            note: c.note.clone(),
        }
    }

    fn fields(&self) -> ContactFields {
        let split = |s: &str| -> Vec<String> {
            s.split(['\n', ','])
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect()
        };
        ContactFields {
            name: self.name.clone(),
            emails: split(&self.emails),
            // Telephone numbers may hold commas (extensions): one per line.
            phones: self
                .phones
                .lines()
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect(),
            org: self.org.clone(),
            note: self.note.clone(),
        }
    }
}

fn short(q: &str) -> String {
    q.trim().chars().take(MAX_QUERY).collect()
}

async fn listing(
    state: &WebState,
    reader: &Reader,
    q: &str,
    done: Option<&str>,
) -> Result<ContactsPage, WebError> {
    let account = reader.account_id();
    Ok(ContactsPage {
        chrome: Chrome::new(state, reader, None, done).await?,
        q: q.to_string(),
        contacts: state.store.contacts(account, q, SHOWN).await?,
        total: state.store.contact_count(account).await?,
        max: MAX_PER_ACCOUNT,
        ..ContactsPage::default()
    })
}

pub async fn page(
    reader: Reader,
    State(state): State<WebState>,
    Query(q): Query<ListQuery>,
) -> Result<ContactsPage, WebError> {
    let mut page = listing(&state, &reader, &short(&q.q), None).await?;
    page.chrome.notice = q.done.as_deref().and_then(notice);
    Ok(page)
}

/// Notices after a redirect (`?done=`).
fn notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "added" => "The contact was added.",
        "saved" => "The contact was saved.",
        "deleted" => "The contact was deleted.",
        _ => return None,
    })
}

/// A store refusal the user can act on, or the error.
fn refusal(e: StoreError) -> Result<String, WebError> {
    match e {
        StoreError::Invalid(m) => Ok(m),
        other => Err(other.into()),
    }
}

pub async fn create(
    State(state): State<WebState>,
    Posted(reader, f): Posted<Reader, ContactForm>,
) -> Result<Response, WebError> {
    let error = match state
        .store
        .add_contact(reader.account_id(), &f.fields())
        .await
    {
        Ok(_) => return Ok(Redirect::to("/mail/contacts?done=added").into_response()),
        Err(e) => refusal(e)?,
    };
    let mut page = listing(&state, &reader, "", None).await?;
    page.form = f;
    page.error = Some(error);
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

pub async fn edit_page(
    reader: Reader,
    State(state): State<WebState>,
    Path(id): Path<i64>,
) -> Result<ContactsPage, WebError> {
    let contact = state
        .store
        .contact(reader.account_id(), id)
        .await?
        .ok_or(WebError::NotFound)?;
    let mut page = listing(&state, &reader, "", None).await?;
    page.editing = Some(id);
    page.form = ContactForm::of(&contact.fields);
    Ok(page)
}

pub async fn update(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    Posted(reader, f): Posted<Reader, ContactForm>,
) -> Result<Response, WebError> {
    let error = match state
        .store
        .update_contact(reader.account_id(), id, &f.fields())
        .await
    {
        Ok(true) => return Ok(Redirect::to("/mail/contacts?done=saved").into_response()),
        Ok(false) => return Err(WebError::NotFound),
        Err(e) => refusal(e)?,
    };
    let mut page = listing(&state, &reader, "", None).await?;
    page.editing = Some(id);
    page.form = f;
    page.error = Some(error);
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

pub async fn delete(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    Posted(reader, _): Posted<Reader, NoFields>,
) -> Result<Response, WebError> {
    if !state.store.delete_contact(reader.account_id(), id).await? {
        return Err(WebError::NotFound);
    }
    Ok(Redirect::to("/mail/contacts?done=deleted").into_response())
}

#[derive(Deserialize)]
pub struct SuggestQuery {
    #[serde(default)]
    q: String,
}

/// One suggestion, with the text to put into the field.
#[derive(serde::Serialize)]
pub struct Suggested {
    name: String,
    email: String,
    /// `Name <address>`, or the address alone when the name has a character the field's
    /// syntax uses (commas and semicolons separate addresses).
    value: String,
}

impl From<Suggestion> for Suggested {
    fn from(s: Suggestion) -> Suggested {
        let value = if s.name.is_empty() || s.name.contains([',', ';', '<', '>', '"']) {
            s.email.clone()
        } else {
            format!("{} <{}>", s.name, s.email)
        };
        Suggested {
            name: s.name,
            email: s.email,
            value,
        }
    }
}

/// Contacts whose name (or a word of it) or address starts with `q`: at most 10, JSON.
pub async fn suggest(
    reader: Reader,
    State(state): State<WebState>,
    Query(q): Query<SuggestQuery>,
) -> Result<Json<Vec<Suggested>>, WebError> {
    let found = state
        .store
        .suggest_contacts(reader.account_id(), &short(&q.q), SUGGESTIONS)
        .await?;
    Ok(Json(found.into_iter().map(Suggested::from).collect()))
}

/// The whole address book as a vCard 3.0 file.
pub async fn export(reader: Reader, State(state): State<WebState>) -> Result<Response, WebError> {
    let cards: Vec<vcard::Card> = state
        .store
        .all_contacts(reader.account_id())
        .await?
        .into_iter()
        .map(|c| vcard::Card {
            name: c.fields.name,
            emails: c.fields.emails,
            phones: c.fields.phones,
            org: c.fields.org,
            note: c.fields.note,
        })
        .collect();
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/vcard; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"contacts.vcf\""),
    );
    Ok((headers, vcard::write(&cards)).into_response())
}

/// Imports a vCard file (multipart: `csrf`, `file`): the cards that can be used are added (or
/// update the contact with the same address), the others are listed with the reason.
pub async fn import(
    reader: Reader,
    State(state): State<WebState>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Result<Response, WebError> {
    let too_large = || {
        WebError::TooLarge(format!(
            "The file is larger than {} MiB: split it, or export fewer contacts.",
            vcard::MAX_FILE >> 20
        ))
    };
    let (mut csrf, mut file) = (String::new(), None::<Vec<u8>>);
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(e) => {
                return Err(WebError::BadRequest(format!(
                    "The form could not be read: {e}"
                )));
            }
        };
        let name = field.name().unwrap_or("").to_string();
        let bytes = match field.bytes().await {
            Ok(b) => b,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(e) => {
                return Err(WebError::BadRequest(format!(
                    "The form could not be read: {e}"
                )));
            }
        };
        match name.as_str() {
            "csrf" => csrf = String::from_utf8_lossy(&bytes).into_owned(),
            "file" => file = Some(bytes.to_vec()),
            _ => {}
        }
    }
    reader.check(&headers, &csrf)?;
    let mut page = listing(&state, &reader, "", None).await?;
    let Some(bytes) = file.filter(|b| !b.is_empty()) else {
        page.error = Some("Choose a vCard file (.vcf) to import.".into());
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    if bytes.len() > vcard::MAX_FILE {
        return Err(too_large());
    }
    let Ok(text) = String::from_utf8(bytes) else {
        page.error =
            Some("This file is not UTF-8 text: it is not a vCard file this page reads.".into());
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let parsed = tokio::task::spawn_blocking(move || vcard::parse(&text))
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let mut errors = parsed.errors;
    // Cards the store would refuse are reported one by one; the rest are imported together.
    let mut good = Vec::new();
    for (n, card) in parsed.cards {
        let fields = ContactFields {
            name: card.name,
            emails: card.emails,
            phones: card.phones,
            org: card.org,
            note: card.note,
        };
        match fields.checked() {
            Ok(f) => good.push(f),
            Err(e) => {
                let why = refusal(e)?;
                let who: String = fields.name.chars().take(80).collect();
                errors.push(if who.is_empty() {
                    format!("Card {n}: {why}")
                } else {
                    format!("Card {n} ({who}): {why}")
                });
            }
        }
    }
    match state
        .store
        .import_contacts(reader.account_id(), &good)
        .await
    {
        Ok((added, updated)) => {
            page = listing(&state, &reader, "", None).await?;
            page.imported = Some(format!(
                "Imported: {added} added, {updated} updated, {} not imported.",
                errors.len()
            ));
        }
        Err(e) => page.error = Some(refusal(e)?),
    }
    page.import_errors = errors;
    let status = if page.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, page).into_response())
}
