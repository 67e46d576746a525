//! What the daemon stores per user. No record: not enrolled and nothing pending.

use serde::{Deserialize, Serialize};
use twofactor_config::Algorithm;

use crate::backup::BackupCodeHashes;
use crate::secret::Secret;
use crate::totp::TotpParams;

mod format;
#[cfg(test)]
mod tests;

pub use format::FormatError;

/// The version of the records this daemon writes, and the newest it reads (it reads every
/// older one too). When it must change: docs/storage-format.md.
pub const RECORD_VERSION: u32 = 2;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    pub version: u32,
    /// Failure counting for rate limiting and the "failed attempts since" message.
    #[serde(default)]
    pub attempts: AttemptState,
    /// Codes by another channel are allowed (an admin's choice).
    #[serde(default)]
    pub delivery_enabled: bool,
    /// Unix seconds of recent `SendCode` calls, for its rate limit.
    #[serde(default)]
    pub sends: Vec<u64>,
    /// First login attempt (Unix seconds) after the user became required while not enrolled.
    #[serde(default)]
    pub grace_started: Option<u64>,
    /// Set by an admin reset: the grace period is for users who never enrolled.
    #[serde(default)]
    pub no_grace: bool,
    /// `None`: not enrolled.
    #[serde(default)]
    pub enrollment: Option<Enrollment>,
    #[serde(default)]
    pub last_success: Option<LastUse>,
    /// An admin's single-use code for a user who lost their device.
    #[serde(default)]
    pub temporary_code: Option<OneTimeCode>,
    /// A single-use code sent by the delivery channel.
    #[serde(default)]
    pub sent_code: Option<OneTimeCode>,
    /// After a login with a temporary code, the user may replace the enrollment without a
    /// current code until then (Unix seconds): the lost device cannot give one.
    #[serde(default)]
    pub replace_without_code_until: u64,
}

impl UserRecord {
    pub fn new() -> UserRecord {
        UserRecord {
            version: RECORD_VERSION,
            ..UserRecord::default()
        }
    }

    pub fn is_enrolled(&self) -> bool {
        self.enrollment.is_some()
    }

    /// The temporary code, if it has not expired.
    pub fn live_temporary_code(&self, now: u64) -> Option<&OneTimeCode> {
        self.temporary_code
            .as_ref()
            .filter(|code| now < code.expires_at)
    }

    /// Nothing left worth keeping: the record can go.
    pub fn is_empty(&self) -> bool {
        let empty = UserRecord {
            version: self.version,
            sends: self.sends.clone(),
            ..UserRecord::default()
        };
        *self == empty
    }
}

/// An active enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrollment {
    pub totp: TotpEnrollment,
    pub backup_codes: BackupCodeHashes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotpEnrollment {
    pub secret: Secret,
    pub algorithm: Algorithm,
    pub digits: u32,
    pub period: u32,
    /// Unix seconds.
    pub enrolled_at: u64,
    /// Highest time step ever accepted; codes at or below it are replays.
    pub last_step: Option<u64>,
    /// This user's window (imported enrollments); the configured one when unset.
    #[serde(default)]
    pub window: Option<u32>,
}

impl TotpEnrollment {
    pub fn params(&self) -> TotpParams {
        TotpParams {
            algorithm: self.algorithm,
            digits: self.digits,
            period: self.period,
        }
    }
}

/// A hashed single-use code with an expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OneTimeCode {
    pub hash: BackupCodeHashes,
    /// Unix seconds.
    pub expires_at: u64,
}

/// Failure counting for throttling (see [`crate::throttle`]) and the "failed attempts
/// since" message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttemptState {
    /// Failures across all sources since the last success, lock or unlock: the ceiling's.
    pub consecutive_failures: u32,
    /// Unix seconds of the last failure, 0 if none.
    pub last_failure: u64,
    /// Locked until an administrator unlocks: the rule of records before locks expired.
    pub locked: bool,
    /// Cleared by a success only; reported at the next successful login.
    pub failures_since_success: u32,
    /// Every source is locked until then (Unix seconds), 0 if not locked.
    #[serde(default)]
    pub locked_until: u64,
    /// When the last lock began (Unix seconds), 0 if never: locks within a year of each
    /// other grow.
    #[serde(default)]
    pub last_lock: u64,
    /// Locks in a row, each within a year of the one before.
    #[serde(default)]
    pub locks: u32,
    /// Sources with recent failures, oldest first.
    #[serde(default)]
    pub sources: Vec<SourceAttempts>,
}

/// One source's recent failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceAttempts {
    /// [`twofactor_config::Source`] as text.
    pub source: String,
    pub failures: u32,
    /// Unix seconds.
    pub last_failure: u64,
    /// Where the last failed code from this source matched a step outside the window, if
    /// it did: the clock-skew hint needs two such codes in a row.
    #[serde(default)]
    pub last_skew: Option<SkewMatch>,
}

/// A failed TOTP code that matched the device's clock off by `seconds`, at time `step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkewMatch {
    pub seconds: i64,
    pub step: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LastUse {
    pub time: u64,
    pub service: String,
    pub rhost: String,
}
