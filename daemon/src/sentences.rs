//! Every sentence the daemon says to a person: the messages of login plans and of errors.
//! The PAM module shows them as they are; the CLI prints them after its own words. Log
//! lines are not here: they are `key=value` for machines (`crate::log`).

use twofactor_proto::codes;

/// The user may log in without a code until `when`.
pub fn required_from(user: &str, when: &str) -> String {
    format!(
        "Two-factor authentication will be required for {user} from {when}. Set it up now \
         with `twofactor enroll`."
    )
}

/// Required, and set up inside this login.
pub fn enroll_now(user: &str, rule: &dyn std::fmt::Display) -> String {
    format!(
        "Two-factor authentication is required for {user} ({rule}). Set it up now with an \
         authenticator app on your phone."
    )
}

/// Required, not set up, and it cannot be set up here.
pub fn not_set_up(user: &str, rule: &dyn std::fmt::Display) -> String {
    format!(
        "Two-factor authentication is required for {user} ({rule}) but is not set up. Run \
         `twofactor enroll` in a session that is already logged in, or ask an administrator \
         to set it up with `twofactor enroll --user {user}`."
    )
}

pub fn delayed(seconds: u64) -> String {
    format!("too many failed attempts: try again in {seconds} s")
}

/// Locked for `remaining` seconds, or until an administrator unlocks (`None`).
pub fn locked(remaining: Option<u64>) -> String {
    match remaining {
        Some(seconds) => format!(
            "locked after too many failed attempts: try again in {seconds} s, or ask an \
             administrator"
        ),
        None => "locked after too many failed attempts: ask an administrator".into(),
    }
}

pub const WRONG_CODE: &str = "the code is not valid";
pub const WRONG_NEW_CODE: &str =
    "the code is not valid: check the device's clock and try the next code";
pub const WRONG_NEW_CODE_LAST: &str = "the code is not valid; too many tries, start again";

pub fn code_shape() -> String {
    format!(
        "a code is {} to {} digits, a backup code {} digits, a temporary code {} digits (at \
         most {} characters with dashes or spaces)",
        codes::TOTP_DIGITS.start(),
        codes::TOTP_DIGITS.end(),
        codes::BACKUP_CODE_DIGITS,
        codes::TEMPORARY_CODE_DIGITS,
        codes::MAX_CODE_LEN,
    )
}

pub const INVALID_USER_NAME: &str = "invalid user name";
pub const INVALID_CONTEXT: &str = "invalid login context";
pub const UNKNOWN_CALLER: &str = "cannot establish who you are";

pub fn no_such_user(user: &str) -> String {
    format!("no user {user} on this system")
}

pub fn not_enrolled(user: &str) -> String {
    format!("{user} is not enrolled")
}

pub fn already_enrolled(user: &str) -> String {
    format!("{user} is already enrolled; replace the enrollment to move to a new device")
}

pub fn enrolled_meanwhile(user: &str) -> String {
    format!("{user} was enrolled meanwhile")
}

pub fn already_enrolled_for_import(user: &str) -> String {
    format!("{user} is already enrolled with twofactor; reset first to import")
}

pub fn no_pending_enrollment(user: &str) -> String {
    format!("no enrollment for {user} was started from here in the last 10 minutes")
}

pub fn required_so_not_disabled(user: &str, why: &str) -> String {
    format!("two-factor authentication is required for {user} ({why})")
}

pub fn kept_changing(user: &str) -> String {
    format!("the state of user {user} kept changing; try again")
}

/// An internal failure: what failed, and where to look.
pub fn internal(what: &str) -> String {
    format!("{what}; see the twofactord log")
}

pub fn unusable_state(user: &str) -> String {
    format!("the state of user {user} cannot be used")
}

pub const STORE_UNAVAILABLE: &str = "the state store is unavailable";
pub const UNREADABLE_STATUS: &str =
    "state unreadable: logins are refused; see the twofactord log, then reset";
pub const NEWER_STATE_STATUS: &str = "state written by a newer twofactord: logins are refused \
     until it is installed again; see the twofactord log";
pub const NO_ACCOUNT_STATUS: &str = "no such user on this system";

pub const NO_DELIVERY_CHANNEL: &str = "no delivery channel is configured ([delivery] command)";

pub fn delivery_off(user: &str) -> String {
    format!("codes by another channel are off for {user}")
}

pub fn sends_exhausted(sends: usize, minutes: u64) -> String {
    format!("{sends} codes were sent in the last {minutes} minutes: use one of them, or wait")
}

pub fn cannot_import(what: &str) -> String {
    format!("cannot import: {what}")
}
