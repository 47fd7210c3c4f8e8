//! Spam defence (issue 21): what a message says, as tokens ([`tokens`]); how likely spam a set
//! of token counts makes it ([`bayes`]); learning from the messages users move into and out of
//! Junk ([`learn`], counts kept per account by `store/spam.rs`); who the sender is and how its
//! mail fared with the account ([`reputation`]); what DNS says of the client at SMTP time: the
//! block and allow lists ([`dnsbl`]) and forward-confirmed reverse DNS ([`rdns`]); greylisting
//! at RCPT ([`greylist`], off by default). At the end of DATA, [`check`] gathers all of it and
//! [`verdict`] decides, per recipient account: INBOX, Junk, or a `550`.

pub mod bayes;
pub mod check;
pub mod dnsbl;
pub mod greylist;
pub mod learn;
pub mod rdns;
pub mod reputation;
pub mod tokens;
pub mod verdict;
