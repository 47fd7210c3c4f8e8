//! Wiring: [`start`] opens the store, loads TLS, binds every configured listener, and returns
//! a [`Running`] server with the addresses it bound. `mailroom serve` and the test harness both
//! start the server this way.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinSet;

use crate::auth::{Authenticator, password};
use crate::config::Config;
use crate::net::{self, Handler, Listener, Security};
use crate::shutdown::{self, Shutdown, ShutdownTrigger};
use crate::smtp::{self, Smtp};
use crate::srs::Srs;
use crate::store::{NewAccount, Store, clean_stop};
use crate::tls::{self, Tls};
use crate::web;

/// ALPN for the web listeners; mail protocols negotiate none.
const WEB_ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];

/// Meta key set once the first start has created the domain and the admin account.
const INITIALIZED: &str = "initialized";
/// The admin address whose generated password has not been shown yet: a start that created
/// it but never got to print it (it failed, or was killed) makes a new one next time.
const FIRST_LOGIN_PENDING: &str = "first_login_pending";
const SRS_SECRET: &str = "srs_secret";

/// The first login, created on first start.
#[derive(Debug, Clone)]
pub struct FirstLogin {
    pub address: String,
    pub password: String,
}

pub struct Running {
    /// Bound addresses by listener kind ("smtp", "imaps", "http", …).
    pub addresses: BTreeMap<&'static str, Vec<SocketAddr>>,
    pub store: Store,
    pub auth: Authenticator,
    pub tls: Tls,
    /// Set on the start that created the admin account, and only then.
    pub first_login: Option<FirstLogin>,
    /// The web application the HTTP listeners serve (tests call it directly with `oneshot`).
    pub router: axum::Router,
    /// Sends the daily DMARC and TLS reports (tests call `send_day` directly).
    pub reporter: crate::reports::Reporter,
    shutdown: ShutdownTrigger,
    tasks: JoinSet<()>,
    grace: Duration,
    /// The data directory and the database, for the record of a clean stop.
    data_dir: std::path::PathBuf,
    db: std::path::PathBuf,
    /// Held until the server is dropped.
    _lock: crate::backup::ServerLock,
}

impl Running {
    /// The first bound address of a listener kind.
    pub fn addr(&self, kind: &str) -> Option<SocketAddr> {
        self.addresses.get(kind).and_then(|a| a.first().copied())
    }

    /// Records that the first login was shown (printed by `serve`), so later starts do not
    /// make a new password.
    pub async fn first_login_shown(&self) -> anyhow::Result<()> {
        self.store
            .set_meta(INITIALIZED, &crate::store::now().to_string())
            .await?;
        self.store.delete_meta(FIRST_LOGIN_PENDING).await?;
        Ok(())
    }

    /// Stops accepting, lets sessions finish within the grace period, closes the store.
    pub async fn shutdown(mut self) {
        self.shutdown.trigger();
        // Listeners bound their own drain to `grace`; this is a backstop.
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(self.grace + Duration::from_secs(5), all)
            .await
            .is_err()
        {
            self.tasks.shutdown().await;
        }
        // The sign-in history still queued is written before the store closes.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.auth.flush_records()).await;
        self.store.close().await;
        // The next start may skip the database check (store::clean_stop).
        if let Err(e) = clean_stop::closed(&self.data_dir, &self.db) {
            tracing::warn!("cannot record the clean stop: {e}");
        }
    }
}

/// Makes glibc map every allocation of 1 MiB or more on its own and unmap it when freed.
///
/// Each login's argon2 hash takes 19 MiB. By default glibc raises its mmap threshold after
/// the first such block is freed, so the next ones come from its heaps, which it keeps: after
/// `cargo bench --bench compare`'s loads the idle server held 279 MiB instead of 50. A fixed
/// threshold turns that adjustment off. (It also stops the trim threshold from rising with
/// it; setting that one to 16 MiB as well kept 6 MiB more when idle and changed no latency
/// beyond the run-to-run noise, so it stays at glibc's default.)
fn return_big_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; glibc allows it at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

pub async fn start(config: Config) -> anyhow::Result<Running> {
    return_big_allocations();
    // Fails only when a provider is already installed, which is what we want anyway.
    let _ = rustls::crypto::ring::default_provider().install_default();
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    // One server per data directory; `mailroom restore` takes the same lock.
    let lock = crate::backup::ServerLock::acquire(&config.data_dir).with_context(|| {
        format!(
            "another Mailroom is running on {} (or its lock file cannot be opened)",
            config.data_dir.display()
        )
    })?;
    let db = config.database_path();
    // A damaged database is refused before anything writes to it (see Store::quick_check),
    // unless nothing can have damaged it since the last run (see store::clean_stop). The
    // record of this run is written only once the check passed: a refused start is checked
    // again next time.
    match clean_stop::skip_reason(&config.data_dir, &db) {
        Some(why) => tracing::info!("database check skipped: {why}"),
        None => {
            if let Some(took) = Store::quick_check(&db)
                .await
                .with_context(|| format!("cannot open {}", db.display()))?
            {
                tracing::info!("database check (PRAGMA quick_check) passed in {took:.2?}");
            }
        }
    }
    if let Err(e) = clean_stop::starting(&config.data_dir) {
        // A full disk must not keep the server from starting (it keeps space for this run's
        // own files); without a record the next start simply checks.
        tracing::warn!("cannot record this start ({e}): the next start checks the database");
        let _ = clean_stop::forget(&config.data_dir);
    }
    let store = Store::open(&db)
        .await
        .with_context(|| format!("cannot open {}", db.display()))?;
    store.set_min_free_space(config.limits.min_free_space);
    if let Some(free) = store.free_space()
        && free < config.limits.min_free_space
    {
        tracing::warn!(
            "only {free} bytes free on the disk of {}, below min_free_space ({}): new mail is \
             refused until space is freed",
            config.data_dir.display(),
            config.limits.min_free_space
        );
    }
    // Domains from before DKIM (or added while keys could not be made) get their keys now.
    let keyed = store.ensure_dkim_keys().await?;
    if keyed > 0 {
        tracing::info!(
            "made DKIM keys for {keyed} domains; `mailroom domain dns` shows the records"
        );
    }
    // Domains publishing MTA-STS need `mta-sts.<domain>` on the certificate (ACME mode).
    let mta_sts_names: Vec<String> = store
        .mta_sts_domains()
        .await?
        .into_iter()
        .map(|(domain, _)| format!("mta-sts.{domain}"))
        .collect();
    let tls = Tls::load_with_names(
        &config.tls,
        &config.hostname,
        &config.data_dir,
        &mta_sts_names,
    )
    .await
    .context("cannot set up TLS")?;
    let auth = Authenticator::new(store.clone(), config.auth.clone());
    let limits = net::Limits::with_login_timeout(
        config.limits.max_connections,
        config.limits.max_connections_per_ip,
        Duration::from_secs(config.limits.login_timeout_secs),
    );
    let (shutdown, shutdown_rx) = shutdown::channel();
    let grace = Duration::from_secs(config.limits.shutdown_grace_secs);

    let dns = crate::dns::Dns::new(&config.dns).context("cannot set up the DNS resolver")?;
    let srs = Srs::new(&srs_secret(&store).await?);
    let budget = crate::budget::Budget::new(
        config.limits.max_message_memory,
        config.limits.max_message_size,
    );
    let services = Services {
        config: Arc::new(config.clone()),
        store: store.clone(),
        auth: auth.clone(),
        tls: tls.clone(),
        smtp: Arc::new(Smtp::new(
            &config,
            store.clone(),
            auth.clone(),
            &dns,
            srs.clone(),
            budget.clone(),
        )),
        budget,
        pop3: crate::pop3::Server::new(
            store.clone(),
            auth.clone(),
            crate::pop3::Settings::from_config(&config),
        ),
        managesieve: crate::sieve::managesieve::Server::new(
            store.clone(),
            auth.clone(),
            crate::sieve::managesieve::Settings::from_config(&config),
        ),
        learner: crate::spam::learn::Learner::start(store.clone(), shutdown_rx.clone()),
    };

    // Bind everything first, so the start page can list the real ports and a bind error stops
    // the start before anything runs.
    let mut listeners = Vec::new();
    let mut web_listeners = Vec::new();
    for (kind, addrs) in config.listen.all() {
        for addr in addrs {
            match kind {
                "http" | "https" => web_listeners.push((kind, *addr)),
                _ => {
                    let Some((handler, security)) = mail_service(kind, &services) else {
                        tracing::warn!(
                            "no {kind} server in this build yet; not listening on {addr}"
                        );
                        continue;
                    };
                    listeners.push(Listener::bind(kind, *addr, security, handler).await?);
                }
            }
        }
    }
    let learner = services.learner.clone();
    let services = Arc::new(
        listeners
            .iter()
            .map(|l| web::Service {
                kind: l.protocol,
                name: describe(l.protocol).0,
                port: l.local.port(),
                security: describe(l.protocol).1,
            })
            .collect(),
    );
    let router = web::router(
        web::WebState {
            store: store.clone(),
            hostname: config.hostname.clone(),
            services,
            auth: auth.clone(),
            dns: dns.clone(),
            tls: tls.clone(),
            allow_plaintext: config.auth.allow_plaintext,
            default_quota: config.limits.default_quota,
            max_message_size: config.limits.max_message_size,
            submission: crate::submission::Submission::new(store.clone(), config.hostname.clone()),
            metrics_token: config.web.metrics_token.clone(),
            health: Default::default(),
            check: std::sync::Arc::new(config.check.clone()),
            outbound_smtp_port: config.queue.smtp_port,
            passkey_sign_ins: Default::default(),
            learner,
        },
        usize::try_from(config.limits.max_message_size)
            .unwrap_or(usize::MAX)
            .saturating_add(1 << 20),
        Duration::from_secs(config.limits.http_timeout_secs),
    );
    for (kind, addr) in web_listeners {
        let security = match kind {
            "https" => Security::Implicit(tls.acceptor(WEB_ALPN)),
            _ => Security::Plain(None),
        };
        let handler = web::handler(
            router.clone(),
            kind == "https",
            Duration::from_secs(config.limits.http_header_timeout_secs),
        );
        listeners.push(Listener::bind(kind, addr, security, handler).await?);
    }

    // Every listener is bound: only now is the admin account made, so a start that fails on
    // a port in use does not leave an account whose password nobody saw.
    let first_login = first_start(&store, &config).await?;
    let mut addresses: BTreeMap<&'static str, Vec<SocketAddr>> = BTreeMap::new();
    let mut tasks = JoinSet::new();
    for listener in listeners {
        tracing::info!("listening: {} on {}", listener.protocol, listener.local);
        addresses
            .entry(listener.protocol)
            .or_default()
            .push(listener.local);
        tasks.spawn(listener.run(limits.clone(), shutdown_rx.clone(), grace));
    }
    if let Some(path) = &config.queue.ca_file {
        crate::queue::mta_sts::read_ca_file(path).map_err(anyhow::Error::msg)?;
    }
    let reporter =
        crate::reports::Reporter::new(store.clone(), dns.clone(), config.hostname.clone());
    tasks.spawn(reporter.clone().run(shutdown_rx.clone()));
    let outbound = crate::queue::Outbound::new(
        store.clone(),
        dns,
        config.queue.clone(),
        config.hostname.clone(),
        srs,
    );
    tasks.spawn(outbound.run(shutdown_rx.clone()));
    tasks.spawn(flush_events(store.clone(), shutdown_rx.clone()));
    tasks.spawn(release_when_quiet(store.clone(), shutdown_rx.clone()));
    tls::spawn_background(&tls, shutdown_rx);

    Ok(Running {
        addresses,
        store,
        auth,
        tls,
        first_login,
        router,
        reporter,
        shutdown,
        tasks,
        grace,
        data_dir: config.data_dir.clone(),
        db: config.database_path(),
        _lock: lock,
    })
}

/// The handler and TLS mode of a mail listener kind, once its protocol exists.
/// What the mail protocols share, built once.
#[allow(dead_code)] // `config`, `store` and `auth` are read by the IMAP and POP3 arms as they land.
struct Services {
    config: Arc<Config>,
    store: Store,
    auth: Authenticator,
    tls: Tls,
    smtp: Arc<Smtp>,
    /// Memory for messages being received, shared by SMTP and IMAP.
    budget: Arc<crate::budget::Budget>,
    /// One POP3 server for 110 and 995, so both see the same maildrop locks.
    pop3: crate::pop3::Server,
    managesieve: crate::sieve::managesieve::Server,
    /// The spam filter's one learning task, taught by every IMAP session.
    learner: crate::spam::learn::Learner,
}

/// The handler and TLS mode of a mail listener kind. A protocol not built yet returns `None`,
/// and its listener is skipped with a warning rather than accepting connections nobody answers.
fn mail_service(kind: &str, s: &Services) -> Option<(Handler, Security)> {
    let starttls = Security::Plain(Some(s.tls.acceptor(&[])));
    let implicit = Security::Implicit(s.tls.acceptor(&[]));
    match kind {
        "smtp" => Some((smtp::handler(s.smtp.clone(), smtp::Kind::Mx), starttls)),
        "submission" => Some((
            smtp::handler(s.smtp.clone(), smtp::Kind::Submission),
            starttls,
        )),
        "submissions" => Some((
            smtp::handler(s.smtp.clone(), smtp::Kind::Submission),
            implicit,
        )),
        "imap" | "imaps" => {
            let imap = Arc::new(crate::imap::Imap::new(
                &s.config, &s.store, &s.auth, &s.budget, &s.learner,
            ));
            let security = if kind == "imap" { starttls } else { implicit };
            Some((crate::imap::handler(imap), security))
        }
        "pop3" => Some((s.pop3.handler(), starttls)),
        "pop3s" => Some((s.pop3.handler(), implicit)),
        "managesieve" => Some((s.managesieve.handler(), starttls)),
        _ => None,
    }
}

/// How the start page names a listener kind: (service, security).
fn describe(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "smtp" => ("SMTP (incoming from other servers)", "STARTTLS"),
        "submission" => ("SMTP submission (sending)", "STARTTLS"),
        "submissions" => ("SMTP submission (sending)", "SSL/TLS"),
        "imap" => ("IMAP", "STARTTLS"),
        "imaps" => ("IMAP", "SSL/TLS"),
        "pop3" => ("POP3", "STARTTLS"),
        "pop3s" => ("POP3", "SSL/TLS"),
        "managesieve" => ("ManageSieve (filters)", "STARTTLS"),
        _ => ("other", "-"),
    }
}

/// The key of SRS addresses: made once and kept in the database, so addresses handed out
/// before a restart still bring their bounces back.
async fn srs_secret(store: &Store) -> anyhow::Result<Vec<u8>> {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    if let Some(secret) = store.meta(SRS_SECRET).await? {
        return Ok(engine.decode(secret)?);
    }
    let secret: [u8; 32] = rand::random();
    store.set_meta(SRS_SECRET, &engine.encode(secret)).await?;
    Ok(secret.to_vec())
}

/// On the very first start: the configured domain and `admin@<domain>` with a random password,
/// returned so `serve` can print it once.
/// The first start's admin account: made when no admin exists, with a generated password
/// that `serve` prints; made again (a new password) while the last one was never shown.
async fn first_start(store: &Store, config: &Config) -> anyhow::Result<Option<FirstLogin>> {
    if store.meta(INITIALIZED).await?.is_some() {
        return Ok(None);
    }
    if store.domain(&config.domain).await?.is_none() {
        store.add_domain(&config.domain).await?;
    }
    let address = format!("admin@{}", config.domain);
    let pending = store.meta(FIRST_LOGIN_PENDING).await?;
    let exists = store.account_by_address(&address).await?.is_some();
    let fresh = !exists && !store.accounts(None).await?.iter().any(|a| a.is_admin);
    if !(fresh || (exists && pending.as_deref() == Some(address.as_str()))) {
        store
            .set_meta(INITIALIZED, &crate::store::now().to_string())
            .await?;
        return Ok(None);
    }
    let pw = password::generate();
    let hash = password::hash(&pw).await?;
    if fresh {
        store
            .create_account(NewAccount {
                address: &address,
                password_hash: &hash,
                quota_bytes: config.limits.default_quota,
                is_admin: true,
            })
            .await?;
    } else {
        store.set_password_hash(&address, &hash).await?;
    }
    store.set_meta(FIRST_LOGIN_PENDING, &address).await?;
    Ok(Some(FirstLogin {
        address,
        password: pw,
    }))
}

/// Writes the event counts (see `store::events`) once a minute and at shutdown.
/// How long the store must go unwritten before its caches are given back.
pub const QUIET: Duration = Duration::from_secs(15);

/// Gives memory back (`Store::release_memory`, then the process's heap and code pages:
/// `memory::release`) once after each busy spell, when nothing was
/// written for [`QUIET`]: an idle server should weigh what a small VPS can spare, and a busy
/// one keeps its caches. Looked at every few seconds, so the release comes within a few
/// seconds of the quiet spell's end, not a whole period later.
async fn release_when_quiet(store: Store, shutdown: Shutdown) {
    let mut tick = tokio::time::interval(QUIET / 5);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = store.activity();
    let mut since = tokio::time::Instant::now();
    let mut released = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait() => return,
        }
        let now = store.activity();
        if now != seen {
            seen = now;
            since = tokio::time::Instant::now();
        } else if since.elapsed() >= QUIET && released != Some(now) {
            if let Err(e) = store.release_memory().await {
                tracing::debug!("cannot release the store's memory: {e}");
            }
            // After the store's, so the heap it freed is trimmed too.
            crate::memory::release();
            // Once per quiet spell even after a failure: dropping the code pages every few
            // seconds would only make the server fault them back in.
            released = Some(now);
        }
    }
}

async fn flush_events(store: Store, shutdown: Shutdown) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            _ = shutdown.wait() => true,
        };
        if let Err(e) = store.flush_events().await {
            tracing::warn!("cannot write event counts: {e}");
        }
        if stopping {
            return;
        }
    }
}
