//! Mailroom: a mail server appliance. SMTP, IMAP, POP3, webmail and an admin panel in one
//! binary over one SQLite database.
//!
//! # Layout
//!
//! - [`config`]: the TOML configuration and its embedded default.
//! - [`address`]: e-mail addresses and domains: parsing, validation, normalisation.
//! - [`app`]: `start(Config)` wires every part together and returns the bound addresses.
//! - [`metrics`]: connection and HTTP latency counters for `/metrics`.
//! - [`net`]: the one accept loop: connection limits, idle timeouts, TLS and STARTTLS.
//! - [`memory`]: what the process gives back when the server is quiet: free heap, code pages.
//! - [`budget`]: the memory budget for messages being received, shared by SMTP and IMAP.
//! - [`tls`]: certificates (self-signed, files, ACME) behind one resolver.
//! - [`shutdown`]: the one stop signal every listener, session and background task waits on.
//! - [`backup`]: online backups (checked) and restore.
//! - [`mailbox_files`]: `import` from mbox files and Maildir trees, `export` to mbox files.
//! - [`store`]: the only place with SQL: accounts, mailboxes, the one delivery path, blobs.
//! - [`smtp`]: inbound MX and submission sessions, inbound SPF/DKIM/DMARC checks, and the
//!   outbound client.
//! - [`sieve`]: Sieve filtering (RFC 5228 and extensions): compile scripts, run them on a delivery.
//! - [`spam`]: the spam filter's pure parts: message tokens and the Bayesian classifier.
//! - [`queue`]: the outbound worker: MX delivery, retries, DSNs.
//! - [`dkim`]: DKIM signatures for mail from our domains, added before anything is queued.
//! - [`srs`]: the Sender Rewriting Scheme for forwarded mail and the bounces that come back.
//! - [`dns`]: MX, address and TXT lookups over one hickory resolver (shared with mail-auth).
//! - [`imap`]: IMAP4rev1 with IDLE, CONDSTORE, MOVE, UIDPLUS, SORT and more (143, 993).
//! - [`pop3`]: POP3 with STLS and AUTH over the account's INBOX (110, 995).
//! - [`submission`]: the one submission path (SMTP submission and the webmail's Send).
//! - [`thread`]: message threading (RFC 5256 REFERENCES and ORDEREDSUBJECT, base subjects),
//!   pure, for IMAP THREAD (and later the webmail's conversations).
//! - [`mime`]: what IMAP and the webmail need from a message, computed once at delivery.
//! - [`auth`]: password hashing, the SASL exchange (PLAIN, LOGIN) and the failed-login throttle.
//! - [`wire`]: byte-level pieces the line protocols share: the bounded line framer and the
//!   dot-terminated message form.
//! - [`reports`]: DMARC aggregate and TLS reports: received ones parsed and stored, ours
//!   counted and sent daily.
//! - [`records`]: the DNS records a domain publishes (MX, SPF, DKIM, DMARC, autoconfig).
//! - [`vcard`]: vCard files read and written, for the webmail's address book.
//! - [`web`]: the HTTP router (health, static files; admin and webmail build on it).

pub mod address;
pub mod app;
pub mod auth;
pub mod backup;
pub mod budget;
pub mod check;
pub mod config;
pub mod dkim;
pub mod dns;
pub mod imap;
pub mod mailbox_files;
pub mod memory;
pub mod metrics;
pub mod mime;
pub mod net;
pub mod pop3;
pub mod queue;
pub mod records;
pub mod reports;
pub mod shutdown;
pub mod sieve;
pub mod smtp;
pub mod spam;
pub mod srs;
pub mod store;
pub mod submission;
pub mod thread;
pub mod tls;
pub mod vcard;
pub mod web;
pub mod wire;
