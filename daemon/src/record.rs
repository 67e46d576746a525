//! What the daemon stores per enrolled user. A user without a record is not enrolled.

use serde::{Deserialize, Serialize};
use twofactor_config::Algorithm;

use crate::backup::BackupCodeHashes;
use crate::secret::Secret;
use crate::totp::TotpParams;

/// Format version of the stored record.
pub const RECORD_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    pub version: u32,
    pub totp: TotpEnrollment,
    pub backup_codes: BackupCodeHashes,
    #[serde(default)]
    pub attempts: AttemptState,
    #[serde(default)]
    pub last_success: Option<LastUse>,
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

/// Failure counting for rate limiting and the "failed attempts since" message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttemptState {
    /// Cleared by a success or an admin unlock; drives delays and lockout.
    pub consecutive_failures: u32,
    /// Unix seconds of the last failure, 0 if none.
    pub last_failure: u64,
    /// Locked until an administrator unlocks.
    pub locked: bool,
    /// Cleared by a success only; reported at the next successful login.
    pub failures_since_success: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LastUse {
    pub time: u64,
    pub service: String,
    pub rhost: String,
}
