//! `WebError`: the one error type of web handlers. It renders a page with a status and a
//! sentence for the user; internal causes are logged, never shown.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    /// A refused request (CSRF, not allowed); the text says what to do.
    #[error("{0}")]
    Forbidden(String),
    /// An upload over the size limit; the text says the limit.
    #[error("{0}")]
    TooLarge(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// A passing failure of ours ([`StoreError::Unavailable`]): 503, try again.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> WebError {
        match e {
            StoreError::NotFound(_) => WebError::NotFound,
            StoreError::Invalid(m) | StoreError::Conflict(m) => WebError::BadRequest(m),
            StoreError::Unavailable(why) => WebError::Unavailable(why),
            other => WebError::Internal(other.to_string()),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    hostname: &'a str,
    status: String,
    message: &'a str,
}

fn page(status: StatusCode, message: &str) -> Response {
    let body = ErrorPage {
        hostname: "",
        status: format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error")
        ),
        message,
    }
    .render()
    .unwrap_or_else(|_| message.to_string());
    (status, Html(body)).into_response()
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::NotFound => page(StatusCode::NOT_FOUND, "There is nothing at this address."),
            WebError::BadRequest(m) => page(StatusCode::BAD_REQUEST, &m),
            WebError::Forbidden(m) => page(StatusCode::FORBIDDEN, &m),
            WebError::TooLarge(m) => page(StatusCode::PAYLOAD_TOO_LARGE, &m),
            WebError::Unavailable(cause) => {
                tracing::warn!("web request refused for now: {cause}");
                page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The server is busy. Please try again in a moment.",
                )
            }
            WebError::Internal(cause) => {
                tracing::error!("web request failed: {cause}");
                page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong on the server. It has been logged; please try again.",
                )
            }
        }
    }
}

pub(super) async fn not_found() -> WebError {
    WebError::NotFound
}

pub(super) fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    WebError::Internal("a handler panicked".into()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passing_store_failures_are_503_and_corruption_500() {
        let status = |e: StoreError| WebError::from(e).into_response().status();
        assert_eq!(
            status(StoreError::Unavailable(
                "the delivery writer has stopped".into()
            )),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(StoreError::Corrupt("flags of mailbox 1".into())),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
