//! `pam_getenv`, which pam-bindings 0.4 does not wrap: the PAM environment, where sshd puts
//! `SSH_AUTH_INFO_0` during keyboard-interactive. Never the process environment.

use std::ffi::{CStr, c_char};

use pam::module::PamHandle;

#[link(name = "pam")]
unsafe extern "C" {
    /// `const char *pam_getenv(pam_handle_t *pamh, const char *name)`.
    fn pam_getenv(pamh: *mut PamHandle, name: *const c_char) -> *const c_char;
}

/// The value of `name` in the PAM environment of `pamh`, copied (lossily as UTF-8); `None`
/// when unset.
pub fn get(pamh: &PamHandle, name: &CStr) -> Option<String> {
    // SAFETY: `pamh` is the live handle PAM passed to this hook (a reference to it can only
    // come from pam-bindings' entry points), and pam_getenv only reads through it; `name` is
    // NUL-terminated and outlives the call. The result is NULL or a NUL-terminated string
    // owned by libpam, valid until the PAM environment changes, which nothing does before
    // the copy below.
    unsafe {
        let value = pam_getenv(std::ptr::from_ref(pamh).cast_mut(), name.as_ptr());
        if value.is_null() {
            None
        } else {
            Some(CStr::from_ptr(value).to_string_lossy().into_owned())
        }
    }
}
