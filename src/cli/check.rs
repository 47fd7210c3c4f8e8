//! `mailroom check`: the self-check (`mailroom::check`), the same list as the admin panel's
//! Self-check page, one finding per line with its fix; exit status 1 when a problem is found
//! (warnings alone leave it 0).

use std::path::Path;

use anyhow::bail;

use mailroom::check::{self, Context, Status};

use super::{locate, open_existing};

pub async fn check(path: Option<&Path>) -> anyhow::Result<()> {
    let located = locate(path, false)?;
    let store = open_existing(&located).await?;
    let config = &located.config;
    let dns = mailroom::dns::Dns::new(&config.dns)?;
    let mta_sts_names: Vec<String> = store
        .mta_sts_domains()
        .await?
        .into_iter()
        .map(|(d, _)| format!("mta-sts.{d}"))
        .collect();
    let certificate = mailroom::tls::Tls::load_with_names(
        &config.tls,
        &config.hostname,
        &config.data_dir,
        &mta_sts_names,
    )
    .await
    .ok()
    .map(|tls| tls.status());
    let cx = Context {
        store: &store,
        dns: &dns,
        hostname: &config.hostname,
        settings: &config.check,
        certificate,
        smtp_port: config.queue.smtp_port,
    };
    let findings = check::run(&cx).await;
    store.close().await;
    for f in &findings {
        println!("{:<8} {}: {}", f.status.as_str(), f.topic, f.found);
        if !f.fix.is_empty() {
            println!("         fix: {}", f.fix);
        }
    }
    let problems = findings
        .iter()
        .filter(|f| f.status == Status::Problem)
        .count();
    match problems {
        0 => Ok(()),
        1 => bail!("1 problem found"),
        n => bail!("{n} problems found"),
    }
}
