//! The Security page (`/mail/settings/security`): the account's web sessions, with the device
//! and address each was opened from, "sign out" per session and everywhere else, and the last
//! 20 sign-ins on every protocol; and what else lets someone in: the app passwords (name, last
//! use) and the second factors (authenticator app, passkeys, recovery codes left), each managed
//! on its own page, linked from here.
//!
//! Sessions are named in forms by their public id (`store::SessionInfo::id`), never by the
//! token's hash; the store ends one only when it belongs to the signed-in account, so another
//! account's id answers 404 like any id that does not exist.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::super::admin::{relative, timestamp};
use super::super::session::{self, Client, NoFields, Posted, SESSION_COOKIE};
use super::super::{WebError, WebState};
use super::{Chrome, Reader, iso_date};
use crate::store::{SessionInfo, SignIn};

/// Sign-ins shown: the issue asks for the last 20 (the store keeps 100 per account).
const SIGN_INS_SHOWN: i64 = 20;

/// A session as the table shows it.
pub struct SessionRow {
    id: String,
    device: String,
    /// The User-Agent as sent, for the tooltip.
    user_agent: String,
    ip: String,
    last_seen: String,
    last_seen_iso: String,
    since: String,
    /// The session of this request.
    current: bool,
}

impl SessionRow {
    fn of(s: SessionInfo, current_id: &str) -> SessionRow {
        SessionRow {
            current: s.id == current_id,
            device: device(&s.user_agent),
            last_seen: relative(s.last_seen),
            last_seen_iso: iso_date(s.last_seen),
            since: timestamp(s.created_at),
            user_agent: s.user_agent,
            ip: if s.ip.is_empty() {
                "unknown".into()
            } else {
                s.ip
            },
            id: s.id,
        }
    }
}

/// A sign-in as the history shows it.
pub struct SignInRow {
    at: String,
    at_iso: String,
    ip: String,
    protocol: String,
    method: String,
    success: bool,
}

impl SignInRow {
    fn of(s: SignIn) -> SignInRow {
        SignInRow {
            at: timestamp(s.at),
            at_iso: iso_date(s.at),
            ip: s.ip,
            protocol: protocol_name(&s.protocol).to_string(),
            method: s.method,
            success: s.success,
        }
    }
}

fn protocol_name(p: &str) -> &str {
    match p {
        "imap" => "IMAP",
        "pop3" => "POP3",
        "smtp" => "SMTP",
        "web" | "http" => "Web",
        "managesieve" => "ManageSieve",
        other => other,
    }
}

/// An app password or a passkey as the page lists it: its name and when it was last used.
pub struct KeyRow {
    name: String,
    last_used: String,
}

impl KeyRow {
    fn of(name: String, last_used_at: Option<i64>) -> KeyRow {
        KeyRow {
            name,
            last_used: last_used_at.map_or_else(|| "never used".into(), relative),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "mail/security.html")]
pub struct SecurityPage {
    chrome: Chrome,
    sessions: Vec<SessionRow>,
    sign_ins: Vec<SignInRow>,
    app_passwords: Vec<KeyRow>,
    /// An authenticator app (TOTP) confirmed.
    totp: bool,
    passkeys: Vec<KeyRow>,
    recovery_codes_left: i64,
}

impl SecurityPage {
    fn others(&self) -> usize {
        self.sessions.iter().filter(|s| !s.current).count()
    }
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

pub async fn page(
    reader: Reader,
    State(state): State<WebState>,
    Query(q): Query<DoneQuery>,
) -> Result<SecurityPage, WebError> {
    let account_id = reader.0.account.id;
    let mut sessions: Vec<SessionRow> = state
        .store
        .sessions_of(account_id)
        .await?
        .into_iter()
        .map(|s| SessionRow::of(s, &reader.0.id))
        .collect();
    // This device first, then the most recently used (a stable sort keeps the store's order).
    sessions.sort_by_key(|s| !s.current);
    let sign_ins = state
        .store
        .recent_sign_ins(account_id, SIGN_INS_SHOWN)
        .await?
        .into_iter()
        .map(SignInRow::of)
        .collect();
    let store = &state.store;
    let app_passwords = store
        .app_passwords(account_id)
        .await?
        .into_iter()
        .map(|a| KeyRow::of(a.name, a.last_used_at))
        .collect();
    let passkeys = store
        .passkeys(account_id)
        .await?
        .into_iter()
        .map(|p| KeyRow::of(p.name, p.last_used_at))
        .collect();
    let totp = store.totp(account_id).await?.is_some_and(|t| t.confirmed);
    Ok(SecurityPage {
        chrome: Chrome::new(&state, &reader, None, q.done.as_deref()).await?,
        sessions,
        sign_ins,
        app_passwords,
        totp,
        passkeys,
        recovery_codes_left: store.recovery_codes_left(account_id).await?,
    })
}

#[derive(Deserialize)]
pub struct SignOutForm {
    session: String,
}

/// Ends one of the account's sessions; ending this one signs this browser out.
pub async fn sign_out(
    State(state): State<WebState>,
    client: Client,
    Posted(reader, f): Posted<Reader, SignOutForm>,
) -> Result<Response, WebError> {
    if !state
        .store
        .end_session_of(reader.0.account.id, &f.session)
        .await?
    {
        return Err(WebError::NotFound);
    }
    if f.session == reader.0.id {
        return Ok((
            [(
                header::SET_COOKIE,
                session::set_cookie(SESSION_COOKIE, "", client, Some(0)),
            )],
            Redirect::to("/mail/login"),
        )
            .into_response());
    }
    Ok(Redirect::to("/mail/settings/security?done=signed-out").into_response())
}

/// Ends every session of the account but this one.
pub async fn sign_out_others(
    State(state): State<WebState>,
    Posted(reader, NoFields {}): Posted<Reader, NoFields>,
) -> Result<Response, WebError> {
    state
        .store
        .end_other_sessions(reader.0.account.id, &reader.0.id)
        .await?;
    Ok(Redirect::to("/mail/settings/security?done=signed-out-others").into_response())
}

/// A short name for the device a User-Agent describes: "Firefox on Linux". Only fixed words
/// come out (never text from the header), so nothing a client sends is shown as the name;
/// the template escapes the full header, shown as a tooltip.
pub fn device(user_agent: &str) -> String {
    let ua = user_agent;
    // Order matters: Edge and Opera say "Chrome", Chrome says "Safari", Android says "Linux".
    let browser = if ua.contains("Edg/") || ua.contains("Edge/") {
        "Edge"
    } else if ua.contains("OPR/") || ua.contains("Opera") {
        "Opera"
    } else if ua.contains("Firefox/") || ua.contains("FxiOS/") {
        "Firefox"
    } else if ua.contains("HeadlessChrome/") {
        "Headless Chrome"
    } else if ua.contains("Chromium/") {
        "Chromium"
    } else if ua.contains("Chrome/") || ua.contains("CriOS/") {
        "Chrome"
    } else if ua.contains("Safari/") && ua.contains("Version/") {
        "Safari"
    } else if ua.starts_with("curl/") {
        "curl"
    } else {
        "Unknown browser"
    };
    let os = if ua.contains("Windows") {
        Some("Windows")
    } else if ua.contains("Android") {
        Some("Android")
    } else if ua.contains("iPhone") || ua.contains("iPad") || ua.contains("iPod") {
        Some("iOS")
    } else if ua.contains("Mac OS X") || ua.contains("Macintosh") {
        Some("macOS")
    } else if ua.contains("CrOS") {
        Some("ChromeOS")
    } else if ua.contains("Linux") || ua.contains("X11") {
        Some("Linux")
    } else {
        None
    };
    match os {
        Some(os) => format!("{browser} on {os}"),
        None => browser.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::device;

    #[test]
    fn devices_from_user_agents() {
        for (ua, want) in [
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
                "Firefox on Linux",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, \
                 like Gecko) Version/18.1 Safari/605.1.15",
                "Safari on macOS",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 \
                 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
                "Safari on iOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/131.0.0.0 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 HeadlessChrome/131.0.0.0 Safari/537.36",
                "Headless Chrome on Linux",
            ),
            ("curl/7.88.1", "curl"),
            ("", "Unknown browser"),
            ("<script>alert(1)</script>", "Unknown browser"),
        ] {
            assert_eq!(device(ua), want, "{ua}");
        }
    }
}
