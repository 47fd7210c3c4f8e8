//! Spam defence (issue 21): what a message says, as tokens ([`tokens`]); how likely spam a set
//! of token counts makes it ([`bayes`]); learning from the messages users move into and out of
//! Junk ([`learn`], counts kept per account by `store/spam.rs`); what DNS says of the client
//! at SMTP time: the block and allow lists ([`dnsbl`]) and forward-confirmed reverse DNS
//! ([`rdns`]); greylisting at RCPT ([`greylist`], off by default). The decision at the end of
//! DATA is still to come.

pub mod bayes;
pub mod dnsbl;
pub mod greylist;
pub mod learn;
pub mod rdns;
pub mod tokens;
