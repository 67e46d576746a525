//! `pam_twofactor.so`: asks `twofactord` over the system bus whether a login needs a TOTP or
//! backup code, prompts for it and has the daemon check it.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod args;
pub mod log;
pub mod messages;
