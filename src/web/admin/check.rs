//! `/admin/check`: the self-check (`crate::check`), run when the page is asked for (within
//! `check::DEADLINE`), the same list as `mailroom check`.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use super::super::{WebError, WebState};
use super::{Admin, Chrome};
use crate::check::{self, Context, Finding, Status};

#[derive(Template, WebTemplate)]
#[template(path = "admin/check.html")]
pub(super) struct CheckPage {
    chrome: Chrome,
    findings: Vec<Finding>,
    problems: usize,
    warnings: usize,
}

pub(super) async fn page(
    admin: Admin,
    State(state): State<WebState>,
) -> Result<CheckPage, WebError> {
    let cx = Context {
        store: &state.store,
        dns: &state.dns,
        hostname: &state.hostname,
        settings: &state.check,
        certificate: Some(state.tls.status()),
        smtp_port: state.outbound_smtp_port,
    };
    let mut findings = check::run(&cx).await;
    // Problems first, then warnings, each in the check's order.
    findings.sort_by_key(|f| std::cmp::Reverse(f.status));
    let count = |s: Status| findings.iter().filter(|f| f.status == s).count();
    Ok(CheckPage {
        chrome: Chrome::new(&state, &admin, "check", None),
        problems: count(Status::Problem),
        warnings: count(Status::Warning),
        findings,
    })
}
