//! Wires a real PAM handle into the login flow: reads the items, adapts the conversation,
//! writes `PAM_AUTHTOK` for `forward_pass`, and maps the outcome to a PAM return code.

use std::ffi::CStr;

use pam::constants::{
    PAM_ERROR_MSG, PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, PAM_SILENT, PAM_TEXT_INFO, PamFlag,
    PamResultCode,
};
use pam::conv::Conv;
use pam::items::{AuthTok, RHost, Service, Tty};
use pam::module::PamHandle;
use twofactor_proto::{LoginContext, MAX_CONTEXT_LEN};
use zeroize::Zeroizing;

use crate::args::{self, CodeSource};
use crate::client::BusClient;
use crate::flow::{self, ConvError, Conversation, Outcome, Request};
use crate::log::{Level, Log, Syslog};
use crate::messages;
use crate::pam_env;

/// `pam_sm_authenticate`, minus the panic guard.
pub fn authenticate(pamh: &mut PamHandle, raw_args: &[&CStr], flags: PamFlag) -> PamResultCode {
    let (args, warnings) = args::parse(raw_args.iter().map(|arg| arg.to_string_lossy()));
    let mut log = Syslog::open();
    for warning in &warnings {
        log.log(Level::Warning, warning);
    }

    let user = match pamh.get_user(None) {
        Ok(user) => user,
        Err(code) => {
            log.log(
                Level::Error,
                &format!("cannot get the user name: {code:?}; denying"),
            );
            return PamResultCode::PAM_AUTH_ERR;
        }
    };
    let context = LoginContext {
        service: text_item::<Service>(pamh),
        rhost: text_item::<RHost>(pamh),
        tty: text_item::<Tty>(pamh),
    };
    let authtok = match args.code_source {
        CodeSource::UseFirstPass | CodeSource::TryFirstPass => authtok(pamh, &mut log),
        CodeSource::Prompt | CodeSource::ForwardPass => None,
    };
    let silent = flags & PAM_SILENT != 0;
    // Only where the argument asks for it, and only from the PAM environment (where sshd
    // puts it), never from the process's, which the user may have set.
    let ssh_auth_info = if args.require_publickey {
        pam_env::get(pamh, c"SSH_AUTH_INFO_0")
    } else {
        None
    };
    let request = Request {
        user,
        context,
        authtok,
        local_offset: messages::local_offset_at,
        silent,
        ssh_auth_info,
    };
    let client = BusClient::new(args.bus_address.as_deref(), args.timeout);

    let verdict = {
        let conv = match pamh.get_item::<Conv>() {
            Ok(conv) => conv,
            Err(code) => {
                log.log(
                    Level::Error,
                    &format!("cannot get the conversation: {code:?}"),
                );
                None
            }
        };
        let mut conversation = PamConversation { conv, silent };
        client.session(async |daemon| {
            flow::authenticate(&args, &request, &mut conversation, daemon, &mut log).await
        })
    };

    if let Some(password) = verdict.forward_authtok.as_ref()
        && let Err(code) = set_authtok(pamh, password)
    {
        log.log(
            Level::Error,
            &format!("forward_pass: cannot set PAM_AUTHTOK: {code}"),
        );
    }

    match verdict.outcome {
        Outcome::Success => PamResultCode::PAM_SUCCESS,
        Outcome::Ignore => PamResultCode::PAM_IGNORE,
        Outcome::AuthErr => PamResultCode::PAM_AUTH_ERR,
        Outcome::AuthInfoUnavail => PamResultCode::PAM_AUTHINFO_UNAVAIL,
        Outcome::ConvErr => PamResultCode::PAM_CONV_ERR,
    }
}

/// A string item for the login context; empty if unset.
fn text_item<'a, T>(pamh: &'a PamHandle) -> String
where
    T: pam::items::Item<'a> + std::ops::Deref<Target = &'a CStr>,
{
    match pamh.get_item::<T>() {
        Ok(Some(item)) => context_text(&item.to_string_lossy()),
        _ => String::new(),
    }
}

/// What the daemon accepts in a context field: no control characters (it refuses them, and
/// they would forge log lines), at most [`MAX_CONTEXT_LEN`] bytes.
fn context_text(raw: &str) -> String {
    let mut text: String = raw
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.len() > MAX_CONTEXT_LEN {
        let mut end = MAX_CONTEXT_LEN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// `PAM_AUTHTOK` as a string, if set and UTF-8.
fn authtok(pamh: &PamHandle, log: &mut dyn Log) -> Option<Zeroizing<String>> {
    let item = pamh.get_item::<AuthTok>().ok().flatten()?;
    let bytes = Zeroizing::new(item.as_bytes().to_vec());
    match std::str::from_utf8(&bytes) {
        Ok(text) => Some(Zeroizing::new(text.to_owned())),
        Err(_) => {
            log.log(
                Level::Notice,
                "PAM_AUTHTOK is not UTF-8; not used as a code",
            );
            None
        }
    }
}

/// The PAM conversation. Info and error messages are dropped under `PAM_SILENT`.
struct PamConversation<'a> {
    conv: Option<Conv<'a>>,
    silent: bool,
}

impl PamConversation<'_> {
    fn send(&self, style: libc::c_int, text: &str) -> Result<Option<Zeroizing<String>>, ConvError> {
        let conv = self
            .conv
            .as_ref()
            .ok_or_else(|| ConvError("the application gave no conversation function".into()))?;
        let answer = conv
            .send(style, text)
            .map_err(|code| ConvError(format!("conversation failed: {code:?}")))?;
        let Some(answer) = answer else {
            return Ok(None);
        };
        std::str::from_utf8(answer.as_bytes())
            .map(|text| Some(Zeroizing::new(text.to_owned())))
            .map_err(|_| ConvError("the answer is not UTF-8".into()))
    }
}

impl Conversation for PamConversation<'_> {
    fn prompt(&mut self, text: &str, echo: bool) -> Result<Option<Zeroizing<String>>, ConvError> {
        let style = if echo {
            PAM_PROMPT_ECHO_ON
        } else {
            PAM_PROMPT_ECHO_OFF
        };
        self.send(style, text)
    }

    fn info(&mut self, text: &str) {
        if !self.silent {
            let _ = self.send(PAM_TEXT_INFO, text);
        }
    }

    fn error(&mut self, text: &str) {
        if !self.silent {
            let _ = self.send(PAM_ERROR_MSG, text);
        }
    }
}

/// Sets `PAM_AUTHTOK` (libpam copies the string; our copy is wiped on drop).
fn set_authtok(pamh: &mut PamHandle, password: &str) -> Result<(), String> {
    if password.as_bytes().contains(&0) {
        return Err("the password contains a NUL byte".into());
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(password.len() + 1));
    bytes.extend_from_slice(password.as_bytes());
    bytes.push(0);
    let value = CStr::from_bytes_with_nul(&bytes).map_err(|e| e.to_string())?;
    ffi::set_authtok(pamh, value)
}

/// pam-bindings can read `PAM_AUTHTOK` but not write it: its `AuthTok` item has a private
/// constructor, so `set_item_str::<AuthTok>` cannot be called. This is the one direct call.
#[allow(unsafe_code)]
mod ffi {
    use std::ffi::CStr;

    use pam::module::PamHandle;

    /// `PAM_AUTHTOK` in `<security/_pam_types.h>`.
    const PAM_AUTHTOK: libc::c_int = 6;
    const PAM_SUCCESS: libc::c_int = 0;

    #[link(name = "pam")]
    unsafe extern "C" {
        fn pam_set_item(
            pamh: *mut PamHandle,
            item_type: libc::c_int,
            item: *const libc::c_void,
        ) -> libc::c_int;
    }

    pub fn set_authtok(pamh: &mut PamHandle, value: &CStr) -> Result<(), String> {
        // SAFETY: `pamh` is the live handle PAM passed to this hook (a `&mut` to it can only
        // come from pam-bindings' entry points); `value` is a NUL-terminated string that
        // outlives the call, and libpam copies string items rather than keeping the pointer.
        let result = unsafe {
            pam_set_item(
                std::ptr::from_mut(pamh),
                PAM_AUTHTOK,
                value.as_ptr().cast::<libc::c_void>(),
            )
        };
        if result == PAM_SUCCESS {
            Ok(())
        } else {
            Err(format!("pam_set_item returned {result}"))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn context_text_is_what_the_daemon_accepts() {
        assert_eq!(context_text("sshd"), "sshd");
        assert_eq!(context_text("evil\nhost\u{9b}"), "evil?host?");
        let long = "é".repeat(200);
        let cut = context_text(&long);
        assert!(cut.len() <= MAX_CONTEXT_LEN && cut.len() >= MAX_CONTEXT_LEN - 1);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(context_text(&"x".repeat(300)).len(), MAX_CONTEXT_LEN);
    }
}
