//! The one D-Bus contract between `twofactord`, the `twofactor` CLI and `pam_twofactor.so`.
//!
//! Everything that crosses the bus is defined here: names, the proxy, argument and reply types,
//! typed errors and the input limits both ends enforce. `docs/dbus-api.md` documents it and
//! `packaging/dbus/org.twofactor.Daemon1.xml` is its introspection, checked against the live
//! daemon by the integration tests.

use serde_repr::{Deserialize_repr, Serialize_repr};
use zbus::Type;

pub mod codes;
pub mod named;
mod structs;
pub use codes::{MAX_CODE_LEN, is_plausible_code};
pub use named::{Algorithm, Named, OrUnknown, Policy, UnknownName};
pub use structs::*;

/// Well-known bus name, owned by `twofactord` (only root may own it, see the bus policy).
pub const BUS_NAME: &str = "org.twofactor.Daemon1";
/// Interface name (same as the bus name, by D-Bus convention).
pub const INTERFACE: &str = "org.twofactor.Daemon1";
/// The daemon's single object.
pub const OBJECT_PATH: &str = "/org/twofactor/Daemon1";
/// Prefix of every error name the daemon returns.
pub const ERROR_PREFIX: &str = "org.twofactor.Error";
/// Where the system bus listens; the PAM module never takes this from the environment.
pub const SYSTEM_BUS_ADDRESS: &str = "unix:path=/run/dbus/system_bus_socket";

/// Longest user name accepted anywhere (Linux `useradd` allows 32).
pub const MAX_USERNAME_LEN: usize = 64;
/// Most candidates one `VerifyAny` call may carry (every [`codes::TYPED_SHAPES`] fits).
pub const MAX_CODE_CANDIDATES: usize = 8;
/// Longest service, remote host or tty string kept for logs.
pub const MAX_CONTEXT_LEN: usize = 256;
/// Number of backup codes issued per enrollment.
pub const BACKUP_CODE_COUNT: usize = 10;
/// Backup codes left at which the user is warned.
pub const BACKUP_CODES_LOW: u32 = 1;

/// Errors the daemon returns, as `org.twofactor.Error.<Variant>`.
///
/// The message is for people and logs; programs match on the variant.
#[derive(zbus::DBusError, Debug, PartialEq)]
#[zbus(prefix = "org.twofactor.Error")]
pub enum Error {
    /// A transport or protocol error on the client side (never sent by the daemon).
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The caller may not act on this user.
    AccessDenied(String),
    /// No such user on this system.
    NoSuchUser(String),
    /// The user has no active enrollment.
    NotEnrolled(String),
    /// The user is already enrolled (use replace).
    AlreadyEnrolled(String),
    /// A malformed argument: bad user name, oversized or non-digit code, bad context.
    InvalidInput(String),
    /// The code given to authorize a change was wrong (also counts as a failed attempt).
    WrongCode(String),
    /// Too many failures: wait, or ask an administrator to unlock.
    Locked(String),
    /// The policy forbids this (e.g. disabling while 2FA is required).
    PolicyForbids(String),
    /// There is no pending enrollment for this user started by this connection, or it expired.
    NoPendingEnrollment(String),
    /// The daemon could not complete the call (unreadable state, I/O error). Fail closed.
    Internal(String),
    /// Too many calls for the same user (or from the same caller) are in flight; try again
    /// shortly. Fail closed.
    Busy(String),
}

/// What the login should do for a user, as decided by the daemon.
#[repr(u8)]
#[derive(Deserialize_repr, Serialize_repr, Type, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginAction {
    /// 2FA does not apply (policy disabled, or optional and not enrolled): `PAM_IGNORE`.
    Ignore = 0,
    /// Ask for a code and call `Verify`.
    Prompt = 1,
    /// Refuse the login (required but not enrolled); `message` tells the user what to do.
    Deny = 2,
    /// Required but not enrolled, and enrollment at login is allowed here: enroll through the
    /// conversation with `BeginLoginEnrollment` and `ConfirmLoginEnrollment`.
    Enroll = 3,
}

/// Outcome of `Verify`.
#[repr(u8)]
#[derive(Deserialize_repr, Serialize_repr, Type, Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyOutcome {
    /// The code was right and is now spent.
    Accepted = 0,
    /// Wrong, replayed, or the user is unknown or not enrolled.
    Rejected = 1,
    /// Too many recent failures: the code was not checked; retry after `retry_after_seconds`.
    Delayed = 2,
    /// Locked out until an administrator unlocks the account; the code was not checked.
    Locked = 3,
}

/// The daemon's D-Bus interface, as seen by clients. The daemon implements the same methods
/// with `#[zbus::interface]`; the integration tests compare both with the XML in `packaging/`.
#[zbus::proxy(
    interface = "org.twofactor.Daemon1",
    default_service = "org.twofactor.Daemon1",
    default_path = "/org/twofactor/Daemon1"
)]
pub trait Daemon1 {
    /// What the login should do for `user`. Callers: root, admins, the user.
    /// Unknown users get `Prompt`, like enrolled ones, so logins do not reveal who exists.
    fn login_plan(&self, user: &str, context: &LoginContext) -> Result<LoginPlan, Error>;

    /// Check a TOTP or backup code; an accepted code is spent before the reply.
    fn verify(&self, user: &str, code: &str, context: &LoginContext) -> Result<VerifyReply, Error>;

    /// Check up to [`MAX_CODE_CANDIDATES`] readings of one answer (a `forward_pass` answer split
    /// several ways) as one attempt: at most one failure, and each kind of code is tried
    /// against the first candidate of its length only. Callers: as `Verify`.
    fn verify_any(
        &self,
        user: &str,
        codes: &[&str],
        context: &LoginContext,
    ) -> Result<VerifyAnyReply, Error>;

    /// Enrollment, policy, backup codes left, lockout and last use.
    fn status(&self, user: &str) -> Result<UserStatus, Error>;

    /// Sources with recent failed attempts for `user`, oldest first. Callers: as `Status`.
    fn throttled_sources(&self, user: &str) -> Result<Vec<ThrottledSource>, Error>;

    /// Start (or, with `replace`, restart) enrollment; owned by this connection, 10 minutes.
    fn begin_enrollment(
        &self,
        user: &str,
        replace: bool,
        current_code: &str,
    ) -> Result<EnrollmentOffer, Error>;

    /// Confirm the pending enrollment with a code; returns the backup codes, shown only now.
    fn confirm_enrollment(&self, user: &str, code: &str) -> Result<Vec<String>, Error>;

    /// Replace the backup codes; the user must give a current code (admins acting on others not).
    fn regenerate_backup_codes(&self, user: &str, code: &str) -> Result<Vec<String>, Error>;

    /// Remove one's own enrollment with a current code; refused while policy is required.
    fn disable(&self, user: &str, code: &str) -> Result<(), Error>;

    /// Admin: every user with state or a non-default policy.
    fn list_users(&self) -> Result<Vec<UserStatus>, Error>;

    /// Admin: remove a user's enrollment and state.
    fn reset_user(&self, user: &str) -> Result<(), Error>;

    /// Admin: clear a lockout and the failure count.
    fn unlock_user(&self, user: &str) -> Result<(), Error>;

    /// Which policy applies to `user` and which rule decided. Callers: admins, the user.
    fn explain_policy(&self, user: &str) -> Result<PolicyExplanation, Error>;

    /// Root only: start enrollment inside a login (after `LoginPlan` said `Enroll`).
    fn begin_login_enrollment(
        &self,
        user: &str,
        context: &LoginContext,
    ) -> Result<LoginEnrollment, Error>;

    /// Root only: confirm a login enrollment with its token and a code; returns backup codes.
    fn confirm_login_enrollment(
        &self,
        user: &str,
        token: &str,
        code: &str,
        context: &LoginContext,
    ) -> Result<Vec<String>, Error>;

    /// Admin: one single-use code for a user who lost their device, valid `expires_in_seconds`
    /// (0 = one hour, at most 24 hours).
    fn issue_temporary_code(
        &self,
        user: &str,
        expires_in_seconds: u64,
    ) -> Result<TemporaryCode, Error>;

    /// Admin: allow or forbid codes by another channel for `user`.
    fn set_delivery(&self, user: &str, enabled: bool) -> Result<(), Error>;

    /// Send a single-use code by the configured channel; returns seconds it stays valid.
    /// Callers: root, admins, the user.
    fn send_code(&self, user: &str, context: &LoginContext) -> Result<u64, Error>;

    /// Admin: take over an enrollment from google-authenticator or pam_oath.
    fn import_enrollment(&self, user: &str, enrollment: &ImportedEnrollment) -> Result<(), Error>;
}

/// Whether `name` is an acceptable user name: 1..=64 bytes of `[A-Za-z0-9_.-]`, not starting
/// with `-` or `.`. Checked before a name ever forms a path or reaches NSS.
pub fn is_valid_username(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_USERNAME_LEN
        && bytes[0] != b'-'
        && bytes[0] != b'.'
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in [
            "alice",
            "a",
            "bob.smith",
            "svc_backup",
            "x-1",
            &"a".repeat(64),
        ] {
            assert!(is_valid_username(ok), "{ok}");
        }
        for bad in [
            "",
            "-rf",
            ".hidden",
            "..",
            "a/b",
            "../etc",
            "a b",
            "ali\0ce",
            "é",
            &"a".repeat(65),
        ] {
            assert!(!is_valid_username(bad), "{bad:?}");
        }
    }

    #[test]
    fn error_names_carry_the_prefix() {
        use zbus::DBusError;
        let error = Error::Locked("wait".into());
        assert_eq!(error.name().as_str(), "org.twofactor.Error.Locked");
    }
}
