//! `GET /.well-known/mta-sts.txt` (RFC 8461 §3.3): the MTA-STS policy of a domain that
//! publishes one, served when the request's host is `mta-sts.<domain>` and only over HTTPS
//! (a policy fetched over plain HTTP proves nothing). Every other request gets the same 404
//! as an unknown page, so the route reveals nothing about other hosts.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};

use super::session::Client;
use super::{WebError, WebState};
use crate::records;

pub const PATH: &str = "/.well-known/mta-sts.txt";

/// The domain a request for `mta-sts.<domain>` names, from the HTTP/2 authority or the
/// `Host` field, without port and trailing dot, lower case.
fn policy_domain(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    let host = match uri.host() {
        Some(h) => h.to_string(),
        None => {
            let value = headers.get(header::HOST)?.to_str().ok()?;
            let authority: axum::http::uri::Authority = value.parse().ok()?;
            authority.host().to_string()
        }
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let domain = host.strip_prefix("mta-sts.")?;
    (!domain.is_empty()).then(|| domain.to_string())
}

pub(super) async fn policy(
    State(state): State<WebState>,
    client: Client,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    if !client.https {
        return Err(WebError::NotFound);
    }
    let Some(domain) = policy_domain(&uri, &headers) else {
        return Err(WebError::NotFound);
    };
    let mode = state.store.mta_sts_mode(&domain).await?;
    let Some(text) = records::mta_sts_policy(&state.hostname, mode) else {
        return Err(WebError::NotFound);
    };
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domain_comes_from_the_host() {
        let mut headers = HeaderMap::new();
        let uri: Uri = "/.well-known/mta-sts.txt".parse().unwrap();
        assert_eq!(policy_domain(&uri, &headers), None);
        headers.insert(
            header::HOST,
            HeaderValue::from_static("MTA-STS.Example.org:443"),
        );
        assert_eq!(
            policy_domain(&uri, &headers).as_deref(),
            Some("example.org")
        );
        headers.insert(header::HOST, HeaderValue::from_static("mail.example.org"));
        assert_eq!(policy_domain(&uri, &headers), None);
        let h2: Uri = "https://mta-sts.example.net/.well-known/mta-sts.txt"
            .parse()
            .unwrap();
        assert_eq!(policy_domain(&h2, &headers).as_deref(), Some("example.net"));
    }
}
