//! The one D-Bus contract between `twofactord`, the `twofactor` CLI and `pam_twofactor.so`.
//!
//! Everything that crosses the bus is defined here: names, the proxy, argument and reply types,
//! typed errors and the input limits both ends enforce. `docs/dbus-api.md` documents it and
//! `packaging/dbus/org.twofactor.Daemon1.xml` is its introspection, checked against the live
//! daemon by the integration tests.

use serde::{Deserialize, Serialize};
use serde_repr::{Deserialize_repr, Serialize_repr};
use zbus::Type;

pub mod codes;
pub use codes::{MAX_CODE_LEN, is_plausible_code};

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

/// Reply of `LoginPlan`.
#[derive(Deserialize, Serialize, Type, Debug, Clone, PartialEq, Eq)]
pub struct LoginPlan {
    pub action: LoginAction,
    /// Text to show the user (may be empty), e.g. a grace period reminder with `Ignore`.
    pub message: String,
    /// With `Prompt`: the user may ask for a code by another channel (`SendCode`).
    pub can_send_code: bool,
    /// The caller may keep this connection open through the prompt for the login's later
    /// calls. The daemon grants it to a bounded number of connections at once, so that logins
    /// left waiting at a prompt cannot use up root's connections to the bus.
    pub keep_connection: bool,
}

/// Where a login comes from; only used for logs and last-use records.
#[derive(Deserialize, Serialize, Type, Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginContext {
    /// PAM_SERVICE, e.g. `sshd`.
    pub service: String,
    /// PAM_RHOST, empty for local logins.
    pub rhost: String,
    /// PAM_TTY.
    pub tty: String,
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

/// Reply of `Verify`: the outcome plus what the login prompt should tell the user.
#[derive(Deserialize, Serialize, Type, Debug, Clone, PartialEq, Eq)]
pub struct VerifyReply {
    pub outcome: VerifyOutcome,
    /// A backup code (not a TOTP code) was accepted.
    pub backup_code_used: bool,
    /// Backup codes still unused.
    pub backup_codes_left: u32,
    /// When a rejected code matches the device's clock off by this many seconds (0: no hint).
    /// Positive: the device is ahead of the server; negative: behind.
    pub clock_skew_seconds: i64,
    /// For `Delayed`: seconds to wait.
    pub retry_after_seconds: u64,
    /// For `Accepted`: failed attempts since the previous successful verification.
    pub failures_since_success: u32,
    /// For `Accepted`: time (Unix seconds) of the last of those failures, 0 if none.
    pub last_failure_time: u64,
    /// For `Accepted`: an administrator's temporary code was used; the user should enroll a
    /// new device (`twofactor enroll --replace`).
    pub temporary_code_used: bool,
    /// For `Accepted`: no backup codes are left and enrollment at login is on, so the login
    /// may offer a new set right away (`RegenerateBackupCodes`).
    pub offer_new_backup_codes: bool,
    /// For `Rejected`: the code was right but already used (for this or an earlier login):
    /// wait for the next one. Still a failed attempt.
    pub code_replayed: bool,
}

/// Reply of `VerifyAny`: the outcome for all candidates together, and which one was accepted.
#[derive(Deserialize, Serialize, Type, Debug, Clone, PartialEq, Eq)]
pub struct VerifyAnyReply {
    pub reply: VerifyReply,
    /// For `Accepted`: the index of the accepted candidate; otherwise -1.
    pub accepted_index: i32,
}

/// Reply of `Status` and `ListUsers`. Never contains a secret or a backup code.
#[derive(Deserialize, Serialize, Type, Debug, Clone, PartialEq, Eq)]
pub struct UserStatus {
    pub user: String,
    pub enrolled: bool,
    /// `required`, `optional` or `disabled`.
    pub policy: String,
    /// The rule that decided, e.g. `group wheel`, `user alice`, `default`.
    pub policy_source: String,
    pub backup_codes_left: u32,
    /// Every source is locked: too many failures in a row across sources.
    pub locked: bool,
    /// While locked, seconds until the lock ends (0: until an administrator unlocks);
    /// otherwise 0. Each source's own delay is in `ThrottledSources`.
    pub retry_after_seconds: u64,
    pub failures_since_success: u32,
    /// Unix seconds of the enrollment, 0 if not enrolled.
    pub enrolled_at: u64,
    /// Unix seconds of the last accepted code, 0 if never.
    pub last_success_time: u64,
    pub last_success_service: String,
    pub last_success_rhost: String,
    /// Empty when all is well; otherwise why this user's state cannot be used (the user is
    /// refused until an administrator resets the account).
    pub problem: String,
    /// Unix seconds when the grace period to enroll ends (required, not enrolled), else 0.
    pub grace_ends_at: u64,
    /// Unix seconds when an unused temporary code expires, else 0.
    pub temporary_code_expires_at: u64,
    /// Codes by another channel (`SendCode`) are allowed for this user.
    pub delivery_enabled: bool,
}

/// One source's recent failures for a user: a reply of `ThrottledSources`.
#[derive(Deserialize, Serialize, Type, Debug, Clone, PartialEq, Eq)]
pub struct ThrottledSource {
    /// An IPv4 host, an IPv6 /64, a host name, `console` or `local`.
    pub source: String,
    pub failures: u32,
    /// Seconds until this source may try again (0: now).
    pub retry_after_seconds: u64,
}

/// Reply of `ExplainPolicy`.
#[derive(Deserialize, Serialize, Type, Debug, Clone, PartialEq, Eq)]
pub struct PolicyExplanation {
    pub user: String,
    /// `required`, `optional` or `disabled`.
    pub policy: String,
    /// The rule that decided, e.g. `group wheel`.
    pub source: String,
    /// One line for people: `group wheel → required`.
    pub explanation: String,
}

/// Reply of `BeginEnrollment`. The secret is revealed only here, before it is ever stored.
#[derive(Deserialize, Serialize, Type, Clone, PartialEq, Eq)]
pub struct EnrollmentOffer {
    /// `otpauth://totp/...` for the QR code.
    pub otpauth_uri: String,
    /// The key in RFC 4648 base32 without padding, for manual entry.
    pub secret_base32: String,
    /// `issuer:user@host` as authenticator apps show it.
    pub label: String,
    pub issuer: String,
    pub algorithm: String,
    pub digits: u32,
    pub period: u32,
    /// Seconds left to confirm with `ConfirmEnrollment` from the same connection.
    pub expires_in_seconds: u64,
}

impl std::fmt::Debug for EnrollmentOffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollmentOffer")
            .field("otpauth_uri", &"<redacted>")
            .field("secret_base32", &"<redacted>")
            .field("label", &self.label)
            .field("issuer", &self.issuer)
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .field("expires_in_seconds", &self.expires_in_seconds)
            .finish()
    }
}

/// Reply of `BeginLoginEnrollment`: an offer bound to a token instead of a connection, because
/// the PAM module opens a new connection for every call.
#[derive(Deserialize, Serialize, Type, Clone, PartialEq, Eq)]
pub struct LoginEnrollment {
    /// Random; only whoever holds it can confirm this enrollment.
    pub token: String,
    pub offer: EnrollmentOffer,
}

impl std::fmt::Debug for LoginEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginEnrollment")
            .field("token", &"<redacted>")
            .field("offer", &self.offer)
            .finish()
    }
}

/// Reply of `IssueTemporaryCode`. The code is shown once; only its hash is kept.
#[derive(Deserialize, Serialize, Type, Clone, PartialEq, Eq)]
pub struct TemporaryCode {
    /// `1234-5678-9012`.
    pub code: String,
    /// Unix seconds.
    pub expires_at: u64,
}

impl std::fmt::Debug for TemporaryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemporaryCode")
            .field("code", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Argument of `ImportEnrollment`: an existing enrollment from google-authenticator or pam_oath.
#[derive(Deserialize, Serialize, Type, Clone, PartialEq, Eq)]
pub struct ImportedEnrollment {
    pub secret_base32: String,
    /// `SHA1`, `SHA256` or `SHA512`.
    pub algorithm: String,
    pub digits: u32,
    pub period: u32,
    /// Steps accepted either side of now for this user (0 = the configured window).
    pub window: u32,
    /// Highest time step already used (0 = none), so old codes stay spent.
    pub last_step: u64,
    /// One-time scratch codes (digits), stored hashed like backup codes.
    pub scratch_codes: Vec<String>,
    /// Where it came from, for the log: `google-authenticator`, `pam_oath`.
    pub source: String,
    /// The last code the old tool accepted (digits; empty = none, as google-authenticator
    /// records steps instead). The daemon finds its step near now and keeps it spent. Last,
    /// so that the struct's signature changes: an older daemon refuses the call.
    pub last_code: String,
}

impl std::fmt::Debug for ImportedEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportedEnrollment")
            .field("secret_base32", &"<redacted>")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .field("window", &self.window)
            .field("last_step", &self.last_step)
            .field("scratch_codes", &self.scratch_codes.len())
            .field("source", &self.source)
            .field(
                "last_code",
                &if self.last_code.is_empty() {
                    "none"
                } else {
                    "<redacted>"
                },
            )
            .finish()
    }
}

/// A struct returned by a method travels as the reply's out arguments, one per field. The
/// daemon returns these tuples so that its introspection lists the same out arguments that go
/// on the wire; clients decode the struct itself. `tests::reply_tuples_match_their_structs`
/// keeps both in step.
pub mod reply {
    use super::*;

    pub type LoginPlanArgs = (LoginAction, String, bool, bool);
    pub type VerifyReplyArgs = (
        VerifyOutcome,
        bool,
        u32,
        i64,
        u64,
        u32,
        u64,
        bool,
        bool,
        bool,
    );
    pub type VerifyAnyReplyArgs = (VerifyReply, i32);
    pub type UserStatusArgs = (
        String,
        bool,
        String,
        String,
        u32,
        bool,
        u64,
        u32,
        u64,
        u64,
        String,
        String,
        String,
        u64,
        u64,
        bool,
    );
    pub type EnrollmentOfferArgs = (String, String, String, String, String, u32, u32, u64);
    pub type PolicyExplanationArgs = (String, String, String, String);
    pub type LoginEnrollmentArgs = (String, EnrollmentOffer);
    pub type TemporaryCodeArgs = (String, u64);

    impl From<LoginPlan> for LoginPlanArgs {
        fn from(p: LoginPlan) -> Self {
            (p.action, p.message, p.can_send_code, p.keep_connection)
        }
    }

    impl From<VerifyReply> for VerifyReplyArgs {
        fn from(r: VerifyReply) -> Self {
            (
                r.outcome,
                r.backup_code_used,
                r.backup_codes_left,
                r.clock_skew_seconds,
                r.retry_after_seconds,
                r.failures_since_success,
                r.last_failure_time,
                r.temporary_code_used,
                r.offer_new_backup_codes,
                r.code_replayed,
            )
        }
    }

    impl From<VerifyAnyReply> for VerifyAnyReplyArgs {
        fn from(r: VerifyAnyReply) -> Self {
            (r.reply, r.accepted_index)
        }
    }

    impl From<UserStatus> for UserStatusArgs {
        fn from(s: UserStatus) -> Self {
            (
                s.user,
                s.enrolled,
                s.policy,
                s.policy_source,
                s.backup_codes_left,
                s.locked,
                s.retry_after_seconds,
                s.failures_since_success,
                s.enrolled_at,
                s.last_success_time,
                s.last_success_service,
                s.last_success_rhost,
                s.problem,
                s.grace_ends_at,
                s.temporary_code_expires_at,
                s.delivery_enabled,
            )
        }
    }

    impl From<EnrollmentOffer> for EnrollmentOfferArgs {
        fn from(o: EnrollmentOffer) -> Self {
            (
                o.otpauth_uri,
                o.secret_base32,
                o.label,
                o.issuer,
                o.algorithm,
                o.digits,
                o.period,
                o.expires_in_seconds,
            )
        }
    }

    impl From<PolicyExplanation> for PolicyExplanationArgs {
        fn from(e: PolicyExplanation) -> Self {
            (e.user, e.policy, e.source, e.explanation)
        }
    }

    impl From<LoginEnrollment> for LoginEnrollmentArgs {
        fn from(e: LoginEnrollment) -> Self {
            (e.token, e.offer)
        }
    }

    impl From<TemporaryCode> for TemporaryCodeArgs {
        fn from(t: TemporaryCode) -> Self {
            (t.code, t.expires_at)
        }
    }
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
    fn offer_debug_redacts_the_secret() {
        let offer = EnrollmentOffer {
            otpauth_uri: "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP".into(),
            secret_base32: "JBSWY3DPEHPK3PXP".into(),
            label: "l".into(),
            issuer: "i".into(),
            algorithm: "SHA1".into(),
            digits: 6,
            period: 30,
            expires_in_seconds: 600,
        };
        let shown = format!("{offer:?}");
        assert!(!shown.contains("JBSWY3DPEHPK3PXP"), "{shown}");
    }

    #[test]
    fn reply_tuples_match_their_structs() {
        use reply::*;
        use zbus::Type;
        fn fields_of<S: Type, T: Type>() -> (String, String) {
            let strukt = S::SIGNATURE.to_string();
            let inner = strukt
                .strip_prefix('(')
                .and_then(|s| s.strip_suffix(')'))
                .unwrap_or_default()
                .to_string();
            (
                inner,
                T::SIGNATURE
                    .to_string()
                    .trim_matches(|c| c == '(' || c == ')')
                    .to_string(),
            )
        }
        let pairs = [
            fields_of::<LoginPlan, LoginPlanArgs>(),
            fields_of::<VerifyReply, VerifyReplyArgs>(),
            fields_of::<UserStatus, UserStatusArgs>(),
            fields_of::<EnrollmentOffer, EnrollmentOfferArgs>(),
            fields_of::<PolicyExplanation, PolicyExplanationArgs>(),
            fields_of::<TemporaryCode, TemporaryCodeArgs>(),
        ];
        for (strukt, tuple) in pairs {
            assert!(!strukt.is_empty());
            assert_eq!(strukt, tuple);
        }
        assert_eq!(
            LoginEnrollment::SIGNATURE.to_string(),
            format!("(s{})", EnrollmentOffer::SIGNATURE)
        );
        assert_eq!(
            VerifyAnyReply::SIGNATURE.to_string(),
            format!("({}i)", VerifyReply::SIGNATURE)
        );
        assert_eq!(
            VerifyAnyReplyArgs::SIGNATURE.to_string(),
            VerifyAnyReply::SIGNATURE.to_string()
        );
    }

    #[test]
    fn error_names_carry_the_prefix() {
        use zbus::DBusError;
        let error = Error::Locked("wait".into());
        assert_eq!(error.name().as_str(), "org.twofactor.Error.Locked");
    }
}
