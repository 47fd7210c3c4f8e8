//! Unit tests of the Sieve module: compiling (errors with positions) and running scripts
//! against small messages, one file per area.

mod compile;
