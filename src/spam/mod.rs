//! Spam defence (issue 21), the part that needs no I/O: what a message says, as tokens
//! ([`tokens`]), and how likely spam a set of token counts makes it ([`bayes`]). Learning,
//! storage per account and the decision at the end of DATA build on these.

pub mod bayes;
pub mod tokens;
