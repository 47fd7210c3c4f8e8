//! Outbound mail: DKIM signing of what local users send (the queue worker joins it later).

pub mod dkim;
