//! Spam defence (issue 21): what a message says, as tokens ([`tokens`]); how likely spam a set
//! of token counts makes it ([`bayes`]); learning from the messages users move into and out of
//! Junk ([`learn`], counts kept per account by `store/spam.rs`). The decision at the end of
//! DATA is still to come.

pub mod bayes;
pub mod check;
pub mod learn;
pub mod reputation;
pub mod tokens;
pub mod verdict;
