//! `twofactord`: the daemon that owns TOTP secrets, backup codes, replay and lockout state.
//!
//! `dbus` establishes each caller's `identity` (from the bus, or the kernel for a direct
//! connection) and hands the call to `service`, plain logic over a `store`, the `accounts`
//! database and an event `log`, which first authorizes it (`authz`).

pub mod accounts;
pub mod admission;
pub mod authz;
pub mod backup;
pub mod config_check;
pub mod dbus;
pub mod fleet;
pub mod identity;
pub mod log;
pub mod memory;
pub mod programs;
pub mod record;
pub mod refusals;
pub mod reload;
pub mod rules;
pub mod seal;
pub mod secret;
pub mod sentences;
pub mod service;
pub mod storage_command;
pub mod store;
pub mod throttle;
pub mod totp;
