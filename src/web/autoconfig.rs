//! Client autoconfiguration, so mail apps set themselves up from an address and a password:
//! Thunderbird's autoconfig (`/.well-known/autoconfig/mail/config-v1.1.xml`, and
//! `/mail/config-v1.1.xml` as served on `autoconfig.<domain>`, which `mailroom domain dns`
//! points here) and Outlook's autodiscover (`POST /autodiscover/autodiscover.xml`). Both list
//! the implicit-TLS listeners this server really has, with the ports they are bound to.

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::WebState;

#[derive(serde::Deserialize)]
pub struct AutoconfigQuery {
    emailaddress: Option<String>,
}

/// Thunderbird's config-v1.1 format.
pub async fn thunderbird(
    State(state): State<WebState>,
    Query(query): Query<AutoconfigQuery>,
) -> Response {
    let domain = match domain_of(&state, query.emailaddress.as_deref()).await {
        Ok(d) => d,
        Err(response) => return response,
    };
    let host = escape(&state.hostname);
    let mut servers = String::new();
    for (kind, protocol, tag) in [
        ("imaps", "imap", "incomingServer"),
        ("pop3s", "pop3", "incomingServer"),
        ("submissions", "smtp", "outgoingServer"),
    ] {
        if let Some(port) = port(&state, kind) {
            servers.push_str(&format!(
                "    <{tag} type=\"{protocol}\">\n      <hostname>{host}</hostname>\n      \
                 <port>{port}</port>\n      <socketType>SSL</socketType>\n      \
                 <username>%EMAILADDRESS%</username>\n      \
                 <authentication>password-cleartext</authentication>\n    </{tag}>\n"
            ));
        }
    }
    let domain = escape(&domain);
    xml(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n  \
         <emailProvider id=\"{domain}\">\n    <domain>{domain}</domain>\n    \
         <displayName>{domain} (Mailroom)</displayName>\n    \
         <displayShortName>{domain}</displayShortName>\n{servers}  </emailProvider>\n\
         </clientConfig>\n"
    ))
}

/// Outlook's autodiscover (the POX "outlook" response schema): the request names the address.
pub async fn autodiscover(State(state): State<WebState>, body: String) -> Response {
    let address = body
        .split("<EMailAddress>")
        .nth(1)
        .and_then(|rest| rest.split("</EMailAddress>").next())
        .map(str::trim);
    let address = match address {
        Some(a) => a.to_string(),
        None => {
            return (
                StatusCode::BAD_REQUEST,
                "expected <EMailAddress> in the request\n",
            )
                .into_response();
        }
    };
    if let Err(response) = domain_of(&state, Some(&address)).await {
        return response;
    }
    let host = escape(&state.hostname);
    let user = escape(&address);
    let mut protocols = String::new();
    for (kind, name) in [
        ("imaps", "IMAP"),
        ("pop3s", "POP3"),
        ("submissions", "SMTP"),
    ] {
        if let Some(port) = port(&state, kind) {
            protocols.push_str(&format!(
                "      <Protocol>\n        <Type>{name}</Type>\n        <Server>{host}</Server>\n        \
                 <Port>{port}</Port>\n        <LoginName>{user}</LoginName>\n        \
                 <SPA>off</SPA>\n        <SSL>on</SSL>\n        <AuthRequired>on</AuthRequired>\n      \
                 </Protocol>\n"
            ));
        }
    }
    xml(format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n  \
         <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\">\n    \
         <Account>\n      <AccountType>email</AccountType>\n      <Action>settings</Action>\n\
         {protocols}    </Account>\n  </Response>\n</Autodiscover>\n"
    ))
}

/// The domain of `address` when it is one of ours; a 404 (not a guess) otherwise, so the
/// client moves on to its next method.
async fn domain_of(state: &WebState, address: Option<&str>) -> Result<String, Response> {
    let not_ours = || (StatusCode::NOT_FOUND, "no such mail domain here\n").into_response();
    let domain = address
        .and_then(|a| a.rsplit_once('@'))
        .map(|(_, d)| d.trim().to_ascii_lowercase())
        .ok_or_else(|| {
            (
                StatusCode::BAD_REQUEST,
                "expected ?emailaddress=user@domain\n",
            )
                .into_response()
        })?;
    match state.store.is_local_domain(&domain).await {
        Ok(true) => Ok(domain),
        Ok(false) => Err(not_ours()),
        Err(e) => {
            tracing::error!("autoconfig: {e}");
            Err((StatusCode::SERVICE_UNAVAILABLE, "try again later\n").into_response())
        }
    }
}

fn port(state: &WebState, kind: &str) -> Option<u16> {
    state
        .services
        .iter()
        .find(|s| s.kind == kind)
        .map(|s| s.port)
}

fn xml(body: String) -> Response {
    (
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}
