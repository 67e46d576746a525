//! `pam_twofactor.so`: asks `twofactord` over the system bus whether a login needs a TOTP or
//! backup code, prompts for it and has the daemon check it. See `README.md` for the module
//! arguments and return codes.
//!
//! This file is only the PAM entry points. The flow is in [`flow`] (tested with fakes), the
//! bus client in [`client`], the glue to a real PAM handle in `pam_glue`.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod args;
pub mod client;
pub mod flow;
pub mod log;
pub mod messages;
#[allow(unsafe_code)]
mod pam_env;
mod pam_glue;
#[cfg(test)]
mod tests;

use std::ffi::CStr;
use std::panic::{AssertUnwindSafe, catch_unwind};

use pam::constants::{PamFlag, PamResultCode};
use pam::module::{PamHandle, PamHooks};

/// The module's hooks; every hook not written here returns `PAM_IGNORE` (pam-bindings).
#[derive(Debug)]
pub struct TwoFactor;

pam::pam_hooks!(TwoFactor);

impl PamHooks for TwoFactor {
    fn sm_authenticate(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        fail_closed(|| pam_glue::authenticate(pamh, &args, flags))
    }

    /// Nothing to set, but a module in the `auth` stack must not fail `pam_setcred`.
    fn sm_setcred(_pamh: &mut PamHandle, _args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        PamResultCode::PAM_SUCCESS
    }
}

/// Our own guard inside pam-bindings' (which returns `PAM_ABORT`): a panic denies the login.
fn fail_closed(hook: impl FnOnce() -> PamResultCode) -> PamResultCode {
    match catch_unwind(AssertUnwindSafe(hook)) {
        Ok(code) => code,
        Err(payload) => {
            // Dropping a panic payload can panic again; leak it instead.
            std::mem::forget(payload);
            PamResultCode::PAM_AUTH_ERR
        }
    }
}
