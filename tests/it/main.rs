//! Integration tests: one binary, a module per area. Each test starts what it needs on port 0
//! with a temporary data directory (see `harness`).

// Test and bench code: a failed assumption is a failed run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod acme_pebble;
mod admin;
mod app_passwords;
mod arc;
mod attacks;
mod auth;
mod backup;
mod browser;
mod cli;
mod compose;
mod credentials_cache;
mod damaged;
mod dane;
mod deliverability;
mod delivery;
mod disk_full;
mod dkim_interop;
mod dns_server;
mod harness;
mod imap;
mod import;
mod mail_auth;
mod managesieve;
mod managesieve_interop;
mod metrics;
mod mta_sts;
mod net;
mod outbound;
mod ownership;
mod package;
mod passkeys;
mod pop3;
mod reports;
mod rules_web;
mod security;
mod sieve_delivery;
mod sieve_diff;
mod smarthost;
mod smtp;
mod smtp_interop;
mod spam;
mod spam_dns;
mod spam_verdict;
mod spam_web;
mod store;
mod submission_checks;
mod throttle;
mod two_factor;
mod upgrade;
mod web;
mod web_client;
mod web_hardening;
mod webmail;
mod webmail_lists;
mod webmail_read;
