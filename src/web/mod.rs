//! The web front: one axum router served on the HTTP and HTTPS listeners through the shared
//! accept loop ([`crate::net`]), so web connections obey the same limits, timeouts and graceful
//! shutdown as mail. Layers: request tracing, compression, a body size limit, a request
//! timeout, and a panic catcher that answers 500 instead of dropping the connection.
//!
//! Routes here: the start page (client settings), `/healthz`, `/metrics` ([`metrics`]),
//! client autoconfiguration ([`autoconfig`]), and the built-in static files.
//! The admin panel (`/admin`) and the webmail mount on this router in their own modules.

pub mod admin;
mod assets;
mod autoconfig;
mod ceremonies;
mod error;
mod login;
pub mod mail;
mod metrics;
mod mta_sts;
mod passkey_sign_in;
pub mod sanitize;
mod second_step;
pub mod session;

use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use error::WebError;

use crate::auth::Authenticator;
use crate::dns::Dns;
use crate::net::{Connection, Handler};
use crate::store::Store;
use crate::submission::Submission;
use crate::tls::Tls;

/// A mail service as the start page lists it.
#[derive(Debug, Clone)]
pub struct Service {
    /// The listener kind (`imaps`, `submissions`, …), for client autoconfiguration.
    pub kind: &'static str,
    pub name: &'static str,
    pub port: u16,
    pub security: &'static str,
}

#[derive(Clone)]
pub struct WebState {
    pub store: Store,
    pub hostname: String,
    pub services: Arc<Vec<Service>>,
    pub auth: Authenticator,
    /// For the admin panel's check of a domain's published records.
    pub dns: Dns,
    /// The certificate's status for the dashboard.
    pub tls: Tls,
    /// `[auth] allow_plaintext`: passwords over plain HTTP from other machines.
    pub allow_plaintext: bool,
    /// `[limits] default_quota`, proposed for new accounts.
    pub default_quota: u64,
    /// `[limits] max_message_size`: the webmail's largest message with attachments.
    pub max_message_size: u64,
    /// The webmail's Send (the same path as SMTP submission).
    pub submission: Submission,
    /// `[web] metrics_token`: lets other machines than this one read `/metrics`.
    pub metrics_token: Option<String>,
    /// Username-less passkey sign-ins under way (in memory, bounded).
    pub passkey_sign_ins: Arc<ceremonies::Ceremonies>,
    /// The spam filter's learning queue: the webmail's moves into and out of Junk teach it.
    pub learner: crate::spam::learn::Learner,
    /// `[check]` and `[queue] smtp_port`, for the self-check page.
    pub check: Arc<crate::config::CheckConfig>,
    pub outbound_smtp_port: u16,
    /// The last `/healthz` answer and when its probe ended (see [`healthz`]).
    pub health: Arc<tokio::sync::Mutex<Option<(std::time::Instant, StatusCode, String)>>>,
}

/// The largest request head (line and header fields): cookies and all fit in a few KiB.
const MAX_HEAD: usize = 64 * 1024;
/// HTTP/2 requests in flight on one connection.
const MAX_STREAMS: u32 = 16;

/// The largest body of a form (every POST but the message upload): a mailbox action on a few
/// thousand selected messages fits.
pub const FORM_LIMIT: usize = 256 * 1024;

pub fn router(state: WebState, max_body: usize, timeout: Duration) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::metrics))
        .route(
            "/.well-known/autoconfig/mail/config-v1.1.xml",
            get(autoconfig::thunderbird),
        )
        .route("/mail/config-v1.1.xml", get(autoconfig::thunderbird))
        .route(
            "/autodiscover/autodiscover.xml",
            axum::routing::post(autoconfig::autodiscover),
        )
        .route(
            "/Autodiscover/Autodiscover.xml",
            axum::routing::post(autoconfig::autodiscover),
        )
        .route("/static/{*path}", get(assets::serve))
        .route("/favicon.ico", get(assets::favicon))
        .route(mta_sts::PATH, get(mta_sts::policy))
        .merge(admin::router())
        .merge(mail::router())
        .fallback(error::not_found)
        .with_state(state)
        // Forms, sign-ins above all, are small: an anonymous client may make the server hold
        // this much per request, not axum's default 2 MB (the uploads route lifts it).
        .layer(axum::extract::DefaultBodyLimit::max(FORM_LIMIT))
        .layer(CompressionLayer::new())
        .layer(RequestBodyLimitLayer::new(max_body))
        // The limit layer answers 413 with an empty body; say what the limit is instead.
        .layer(axum::middleware::map_response(
            move |res: Response| async move {
                if res.status() == StatusCode::PAYLOAD_TOO_LARGE
                    && !res
                        .headers()
                        .get(axum::http::header::CONTENT_TYPE)
                        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"))
                {
                    return WebError::TooLarge(format!(
                        "This upload is larger than the server accepts ({}). Attach less, or share \
                     large files another way.",
                        crate::config::format_size(max_body as u64)
                    ))
                    .into_response();
                }
                res
            },
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(axum::middleware::from_fn(metrics::time_request))
        .layer(TraceLayer::new_for_http())
}

/// Serves HTTP/1.1 and HTTP/2 on each connection; on shutdown, in-flight requests finish and
/// keep-alive connections are closed. `https` says whether the listener is the TLS one; every
/// request carries it and the peer's address as a [`session::Client`].
///
/// `header_timeout` bounds the wait for a request's head, from the first byte of the connection
/// (the protocol sniffing and TLS included) to the first request, then between requests on a
/// keep-alive connection (hyper's `header_read_timeout`, which needs the timer set here): a
/// client trickling header bytes holds its slot that long at most. A connection evicted to make
/// room for others ends like a shutdown: the request under way finishes.
pub fn handler(router: Router, https: bool, header_timeout: Duration) -> Handler {
    Arc::new(move |mut conn: Connection| {
        let client = session::Client {
            ip: conn.peer.ip(),
            https,
        };
        let router = router.clone();
        // Told of every request, so the first-request deadline stops at the first.
        let requested = Arc::new(tokio::sync::Notify::new());
        let seen = requested.clone();
        let service = TowerToHyperService::new(tower::service_fn(
            move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                seen.notify_one();
                req.extensions_mut().insert(client);
                tower::ServiceExt::oneshot(router.clone(), req)
            },
        ));
        let evicted = conn.eviction_notice();
        Box::pin(async move {
            let Connection {
                stream, shutdown, ..
            } = conn;
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                // A request head of 64 KiB (hyper allows ~400 KiB), held before any sign-in.
                .max_buf_size(MAX_HEAD);
            // HTTP/2: a few streams at once, each with a bounded head, so one anonymous
            // connection holds at most a few forms' worth.
            builder
                .http2()
                .max_concurrent_streams(MAX_STREAMS)
                .max_header_list_size(MAX_HEAD as u32);
            let served = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(served);
            let first_request = async {
                tokio::select! {
                    () = requested.notified() => std::future::pending::<()>().await,
                    () = tokio::time::sleep(header_timeout) => {}
                }
            };
            let result = tokio::select! {
                r = served.as_mut() => r,
                () = first_request => {
                    tracing::debug!("http connection ended: no request within {header_timeout:?}");
                    return;
                }
                () = evicted.wait() => {
                    served.as_mut().graceful_shutdown();
                    served.await
                }
                _ = shutdown.wait() => {
                    served.as_mut().graceful_shutdown();
                    served.await
                }
            };
            if let Err(e) = result {
                tracing::debug!("http connection ended: {e}");
            }
        })
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "index.html")]
struct IndexPage {
    hostname: String,
    services: Vec<Service>,
}

async fn index(State(state): State<WebState>) -> IndexPage {
    IndexPage {
        hostname: state.hostname.clone(),
        services: state.services.as_ref().clone(),
    }
}

/// 200 when the database answers and can take mail, 503 otherwise (with the reason when it is
/// storage: a full disk, or free space below the reserve); for load balancers and monitoring.
///
/// The probe begins a write transaction, and anyone may ask: one probe runs at a time, and
/// the callers that waited for it take its answer when it ended after they asked. A flood of
/// requests costs the writer one probe after another, never a queue of them.
async fn healthz(State(state): State<WebState>) -> Response {
    let asked = std::time::Instant::now();
    let mut last = state.health.lock().await;
    let (status, body) = match last.as_ref() {
        Some((ended, status, body)) if *ended >= asked => (*status, body.clone()),
        _ => {
            let (status, body) = match state.store.health().await {
                Ok(()) => (StatusCode::OK, "ok\n".to_string()),
                Err(crate::store::StoreError::StorageFull(why)) => {
                    tracing::warn!("health check: {why}");
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("unhealthy: insufficient storage: {why}\n"),
                    )
                }
                Err(e) => {
                    tracing::error!("health check failed: {e}");
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "database unavailable\n".to_string(),
                    )
                }
            };
            *last = Some((std::time::Instant::now(), status, body.clone()));
            (status, body)
        }
    };
    (status, [("cache-control", "no-store")], body).into_response()
}
