//! The structs that cross the bus, each defined once by [`wire_struct!`].
//!
//! A struct a method returns travels as the reply's out arguments, one per field, so the
//! daemon's `#[zbus::interface]` methods return the struct's `…Args` tuple and name its
//! fields in `out_args`; clients decode the struct itself. The macro generates, from one list
//! of fields, the struct, that tuple, both conversions and the fields' names
//! ([`LoginPlan::FIELD_NAMES`]), which the daemon's tests compare with its introspection and
//! with `packaging/dbus/org.twofactor.Daemon1.xml`.

use serde::{Deserialize, Serialize};
use zbus::Type;

use crate::named::{Algorithm, OrUnknown, Policy};
use crate::{LoginAction, VerifyOutcome};

/// One list of `field: type` gives the struct, its wire tuple `$args` in the same order, the
/// conversions both ways and `FIELD_NAMES`, so that no two of them can disagree.
macro_rules! wire_struct {
    (
        $(#[$attr:meta])*
        pub struct $name:ident as $args:ident {
            $( $(#[$field_attr:meta])* pub $field:ident: $ty:ty, )+
        }
    ) => {
        $(#[$attr])*
        #[derive(Deserialize, Serialize, Type, Clone, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$field_attr])* pub $field: $ty, )+
        }

        #[doc = concat!("The fields of [`", stringify!($name), "`] in order, as the out \
                         arguments of a reply.")]
        pub type $args = ($($ty,)+);

        impl From<$name> for $args {
            fn from(value: $name) -> Self {
                ($(value.$field,)+)
            }
        }

        impl From<$args> for $name {
            fn from(($($field,)+): $args) -> Self {
                $name { $($field,)+ }
            }
        }

        impl $name {
            /// The fields' names in order: the out arguments' names of a reply.
            pub const FIELD_NAMES: &'static [&'static str] = &[$(stringify!($field)),+];
        }
    };
}

wire_struct! {
    /// Reply of `LoginPlan`.
    #[derive(Debug)]
    pub struct LoginPlan as LoginPlanArgs {
        pub action: LoginAction,
        /// Text to show the user (may be empty), e.g. a grace period reminder with `Ignore`.
        pub message: String,
        /// With `Prompt`: the user may ask for a code by another channel (`SendCode`).
        pub can_send_code: bool,
        /// The caller may keep this connection open through the prompt for the login's later
        /// calls. The daemon grants it to a bounded number of connections at once, so that
        /// logins left waiting at a prompt cannot use up root's connections to the bus.
        pub keep_connection: bool,
    }
}

wire_struct! {
    /// Where a login comes from; only used for logs and last-use records.
    #[derive(Debug, Default)]
    pub struct LoginContext as LoginContextArgs {
        /// PAM_SERVICE, e.g. `sshd`.
        pub service: String,
        /// PAM_RHOST, empty for local logins.
        pub rhost: String,
        /// PAM_TTY.
        pub tty: String,
    }
}

wire_struct! {
    /// Reply of `Verify`: the outcome plus what the login prompt should tell the user.
    #[derive(Debug)]
    pub struct VerifyReply as VerifyReplyArgs {
        pub outcome: VerifyOutcome,
        /// A backup code (not a TOTP code) was accepted.
        pub backup_code_used: bool,
        /// Backup codes still unused.
        pub backup_codes_left: u32,
        /// When a rejected code matches the device's clock off by this many seconds (0: no
        /// hint). Positive: the device is ahead of the server; negative: behind.
        pub clock_skew_seconds: i64,
        /// For `Delayed`: seconds to wait.
        pub retry_after_seconds: u64,
        /// For `Accepted`: failed attempts since the previous successful verification.
        pub failures_since_success: u32,
        /// For `Accepted`: time (Unix seconds) of the last of those failures, 0 if none.
        pub last_failure_time: u64,
        /// For `Accepted`: an administrator's temporary code was used; the user should enroll
        /// a new device (`twofactor enroll --replace`).
        pub temporary_code_used: bool,
        /// For `Accepted`: no backup codes are left and enrollment at login is on, so the
        /// login may offer a new set right away (`RegenerateBackupCodes`).
        pub offer_new_backup_codes: bool,
        /// For `Rejected`: the code was right but already used (for this or an earlier
        /// login): wait for the next one. Still a failed attempt.
        pub code_replayed: bool,
    }
}

wire_struct! {
    /// Reply of `VerifyAny`: the outcome for all candidates together, and which one was
    /// accepted.
    #[derive(Debug)]
    pub struct VerifyAnyReply as VerifyAnyReplyArgs {
        pub reply: VerifyReply,
        /// For `Accepted`: the index of the accepted candidate; otherwise -1.
        pub accepted_index: i32,
    }
}

wire_struct! {
    /// Reply of `Status` and `ListUsers`. Never contains a secret or a backup code.
    #[derive(Debug)]
    pub struct UserStatus as UserStatusArgs {
        pub user: String,
        pub enrolled: bool,
        pub policy: OrUnknown<Policy>,
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
        /// Empty when all is well; otherwise why this user's state cannot be used (the user
        /// is refused until an administrator resets the account).
        pub problem: String,
        /// Unix seconds when the grace period to enroll ends (required, not enrolled), else 0.
        pub grace_ends_at: u64,
        /// Unix seconds when an unused temporary code expires, else 0.
        pub temporary_code_expires_at: u64,
        /// Codes by another channel (`SendCode`) are allowed for this user.
        pub delivery_enabled: bool,
    }
}

wire_struct! {
    /// One source's recent failures for a user: a reply of `ThrottledSources`.
    #[derive(Debug)]
    pub struct ThrottledSource as ThrottledSourceArgs {
        /// An IPv4 host, an IPv6 /64, a host name, `console` or `local`.
        pub source: String,
        pub failures: u32,
        /// Seconds until this source may try again (0: now).
        pub retry_after_seconds: u64,
    }
}

wire_struct! {
    /// Reply of `ExplainPolicy`.
    #[derive(Debug)]
    pub struct PolicyExplanation as PolicyExplanationArgs {
        pub user: String,
        pub policy: OrUnknown<Policy>,
        /// The rule that decided, e.g. `group wheel`.
        pub source: String,
        /// One line for people: `group wheel → required`.
        pub explanation: String,
    }
}

wire_struct! {
    /// Reply of `BeginEnrollment`. The secret is revealed only here, before it is ever stored.
    pub struct EnrollmentOffer as EnrollmentOfferArgs {
        /// `otpauth://totp/...` for the QR code.
        pub otpauth_uri: String,
        /// The key in RFC 4648 base32 without padding, for manual entry.
        pub secret_base32: String,
        /// `issuer:user@host` as authenticator apps show it.
        pub label: String,
        pub issuer: String,
        pub algorithm: OrUnknown<Algorithm>,
        pub digits: u32,
        pub period: u32,
        /// Seconds left to confirm with `ConfirmEnrollment` from the same connection.
        pub expires_in_seconds: u64,
    }
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

wire_struct! {
    /// Reply of `BeginLoginEnrollment`: an offer bound to a token instead of a connection,
    /// because the PAM module opens a new connection for every call.
    pub struct LoginEnrollment as LoginEnrollmentArgs {
        /// Random; only whoever holds it can confirm this enrollment.
        pub token: String,
        pub offer: EnrollmentOffer,
    }
}

impl std::fmt::Debug for LoginEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginEnrollment")
            .field("token", &"<redacted>")
            .field("offer", &self.offer)
            .finish()
    }
}

wire_struct! {
    /// Reply of `IssueTemporaryCode`. The code is shown once; only its hash is kept.
    pub struct TemporaryCode as TemporaryCodeArgs {
        /// `1234-5678-9012`.
        pub code: String,
        /// Unix seconds.
        pub expires_at: u64,
    }
}

impl std::fmt::Debug for TemporaryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemporaryCode")
            .field("code", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

wire_struct! {
    /// Argument of `ImportEnrollment`: an existing enrollment from google-authenticator or
    /// pam_oath.
    pub struct ImportedEnrollment as ImportedEnrollmentArgs {
        pub secret_base32: String,
        pub algorithm: OrUnknown<Algorithm>,
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
        /// records steps instead). The daemon finds its step near now and keeps it spent.
        /// Last, so that the struct's signature changes: an older daemon refuses the call.
        pub last_code: String,
    }
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

#[cfg(test)]
#[path = "structs_tests.rs"]
mod tests;
