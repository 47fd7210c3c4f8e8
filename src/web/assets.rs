//! Static files, compiled into the binary: nothing to install beside it, no CDN.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::WebError;

/// (path under /static/, content type, bytes)
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/style.css"),
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/admin.js"),
    ),
    (
        "mail.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/mail.js"),
    ),
    (
        "compose.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/compose.js"),
    ),
    (
        "compose.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/compose.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../static/favicon.svg"),
    ),
    (
        "two_factor.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/two_factor.js"),
    ),
];

pub(super) async fn serve(Path(path): Path<String>) -> Result<Response, WebError> {
    asset(&path)
}

/// `/favicon.ico`, which browsers ask for whatever the page links: the SVG icon (browsers
/// go by the content type, not the name).
pub(super) async fn favicon() -> Result<Response, WebError> {
    asset("favicon.svg")
}

fn asset(path: &str) -> Result<Response, WebError> {
    let (_, content_type, body) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == path)
        .ok_or(WebError::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, *content_type),
            // Assets change only with the binary; an hour is short enough after an upgrade.
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        *body,
    )
        .into_response())
}
