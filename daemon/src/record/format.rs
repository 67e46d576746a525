//! A user record as text, the one conversion every backend uses: which versions are read,
//! how older ones are upgraded, what is refused. The rules are in docs/storage-format.md.

use std::path::Path;

use serde::Deserialize;
use serde::de::IgnoredAny;
use zeroize::Zeroizing;

use super::{AttemptState, Enrollment, LastUse, RECORD_VERSION, TotpEnrollment, UserRecord};
use crate::backup::BackupCodeHashes;
use crate::store::StoreError;

/// Why a text is not a record this daemon can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Not a record of any version, or one with impossible values.
    #[error("{0}")]
    Invalid(String),
    /// A record of a version this daemon does not know yet: a newer daemon wrote it.
    #[error("record version {version} is newer than {supported}, the newest this twofactord reads")]
    Newer { version: u32, supported: u32 },
}

impl FormatError {
    /// The store's error for the record at `path`.
    pub fn at(self, path: &Path) -> StoreError {
        let path = path.display().to_string();
        match self {
            FormatError::Invalid(reason) => StoreError::Corrupt { path, reason },
            FormatError::Newer { version, supported } => StoreError::NewerVersion {
                path,
                version,
                supported,
            },
        }
    }
}

/// What every version has and keeps: a top-level integer `version`. `totp` at the top level
/// marks the first shape of version 1.
#[derive(Deserialize)]
struct Probe {
    version: u32,
    #[serde(default)]
    totp: Option<IgnoredAny>,
}

/// Version 1 as the first daemon wrote it (17a7768): every record was an enrollment.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FirstShape {
    #[serde(rename = "version")]
    _version: IgnoredAny,
    totp: TotpEnrollment,
    backup_codes: BackupCodeHashes,
    #[serde(default)]
    attempts: AttemptState,
    #[serde(default)]
    last_success: Option<LastUse>,
}

impl FirstShape {
    fn upgrade(self) -> UserRecord {
        UserRecord {
            version: RECORD_VERSION,
            attempts: self.attempts,
            enrollment: Some(Enrollment {
                totp: self.totp,
                backup_codes: self.backup_codes,
            }),
            last_success: self.last_success,
            ..UserRecord::default()
        }
    }
}

fn parse<'de, T: Deserialize<'de>>(text: &'de str) -> Result<T, FormatError> {
    toml::from_str(text).map_err(|error| FormatError::Invalid(error.message().to_string()))
}

impl UserRecord {
    /// The record in `text`, of any version this daemon reads, upgraded to the current one
    /// (written back as such by the next save).
    pub fn from_text(text: &str) -> Result<UserRecord, FormatError> {
        let probe: Probe = parse(text)?;
        let mut record = match probe.version {
            // Before the rest is parsed: a newer record may have fields this daemon lacks.
            newer if newer > RECORD_VERSION => {
                return Err(FormatError::Newer {
                    version: newer,
                    supported: RECORD_VERSION,
                });
            }
            0 => return Err(FormatError::Invalid("version 0 was never written".into())),
            1 if probe.totp.is_some() => parse::<FirstShape>(text)?.upgrade(),
            // Version 1 after the first shape only ever added fields, all of them defaulted.
            _ => parse::<UserRecord>(text)?,
        };
        record.version = RECORD_VERSION;
        check_ranges(&record)?;
        Ok(record)
    }

    /// The record as text, always of the current version.
    pub fn to_text(&self) -> Result<Zeroizing<String>, FormatError> {
        if self.version != RECORD_VERSION {
            return Err(FormatError::Invalid(format!(
                "a record of version {} is not written; this twofactord writes {RECORD_VERSION}",
                self.version
            )));
        }
        toml::to_string(self)
            .map(Zeroizing::new)
            .map_err(|error| FormatError::Invalid(error.to_string()))
    }
}

/// Parameters no enrollment or import can have would break the code check.
fn check_ranges(record: &UserRecord) -> Result<(), FormatError> {
    if let Some(enrollment) = &record.enrollment {
        let totp = &enrollment.totp;
        let window_ok = totp.window.is_none_or(|window| window <= 10);
        if !(6..=8).contains(&totp.digits) || !(15..=120).contains(&totp.period) || !window_ok {
            return Err(FormatError::Invalid("TOTP parameters out of range".into()));
        }
    }
    Ok(())
}
