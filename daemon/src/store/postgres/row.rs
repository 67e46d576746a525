//! The one seam between a record and its row: everything stored passes through [`to_row`],
//! everything read through [`from_row`].
//!
//! The TOTP secret never reaches the `record` column: it is sealed under the fleet key
//! ([`crate::seal`]), bound to the user and the enrollment, into `sealed_secret`; the record
//! text holds [`SEALED_ELSEWHERE`] in its place. A row whose secret is not sealed is refused,
//! so that whoever can write the database cannot plant a secret of their own.

use std::path::Path;

use zeroize::Zeroizing;

use crate::record::{TotpEnrollment, UserRecord};
use crate::seal::{self, FleetKeys, Sealed};
use crate::secret::Secret;
use crate::store::StoreError;

/// The `record_encoding` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i16)]
pub enum Encoding {
    /// The record's text format with the secret in clear (schema 1, never deployed):
    /// refused.
    ClearText = 1,
    /// The record's text format with [`SEALED_ELSEWHERE`] for the secret, which is in
    /// `sealed_secret`.
    SealedText = 2,
}

/// What the record text holds instead of the secret (the text format needs one there). The
/// secret itself always comes from `sealed_secret`, whatever this is.
const SEALED_ELSEWHERE: [u8; 20] = [0; 20];

/// What goes into `record_encoding`, `record` and `sealed_secret`.
#[derive(Debug)]
pub struct StoredRecord {
    pub encoding: i16,
    pub bytes: Zeroizing<Vec<u8>>,
    /// [`Sealed`] as text; set exactly when the record has an enrollment.
    pub sealed_secret: Option<String>,
}

/// Where errors say the record is: the row, named like a path.
fn location(user: &str) -> String {
    format!("users row {user:?}")
}

fn corrupt(user: &str, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        path: location(user),
        reason: reason.into(),
    }
}

/// What a sealed secret is bound to besides the user: every parameter of the enrollment a
/// row's reader could otherwise swap under it.
pub fn enrollment_id(totp: &TotpEnrollment) -> String {
    format!(
        "{}:{}:{}:{}",
        totp.enrolled_at,
        totp.algorithm.as_str(),
        totp.digits,
        totp.period
    )
}

pub fn to_row(
    user: &str,
    record: &UserRecord,
    keys: &FleetKeys,
) -> Result<StoredRecord, StoreError> {
    let mut stored = record.clone();
    let mut sealed_secret = None;
    if let Some(enrollment) = &mut stored.enrollment {
        let totp = &mut enrollment.totp;
        let sealed =
            seal::seal(keys, user, &enrollment_id(totp), &totp.secret).map_err(|error| {
                StoreError::Unavailable {
                    reason: error.to_string(),
                }
            })?;
        sealed_secret = Some(sealed.to_string());
        totp.secret = Secret::from_bytes(SEALED_ELSEWHERE.to_vec());
    }
    let text = stored
        .to_text()
        .map_err(|error| error.at(Path::new(&location(user))))?;
    Ok(StoredRecord {
        encoding: Encoding::SealedText as i16,
        bytes: Zeroizing::new(text.as_bytes().to_vec()),
        sealed_secret,
    })
}

pub fn from_row(
    user: &str,
    stored: &StoredRecord,
    keys: &FleetKeys,
) -> Result<UserRecord, StoreError> {
    if stored.encoding == Encoding::ClearText as i16 {
        return Err(corrupt(
            user,
            "the row holds its secret in clear, which this twofactord never writes",
        ));
    }
    if stored.encoding != Encoding::SealedText as i16 {
        return Err(corrupt(
            user,
            format!(
                "record encoding {} is unknown to this twofactord",
                stored.encoding
            ),
        ));
    }
    let text = std::str::from_utf8(&stored.bytes)
        .map_err(|_| corrupt(user, "the record is not UTF-8 text"))?;
    let mut record =
        UserRecord::from_text(text).map_err(|error| error.at(Path::new(&location(user))))?;
    match (&mut record.enrollment, &stored.sealed_secret) {
        (None, None) => {}
        (Some(enrollment), Some(sealed)) => {
            let totp = &mut enrollment.totp;
            if totp.secret.as_bytes() != SEALED_ELSEWHERE {
                return Err(corrupt(
                    user,
                    "the record holds a secret besides the sealed one",
                ));
            }
            let sealed: Sealed = sealed
                .parse()
                .map_err(|error: seal::BadSealedText| corrupt(user, error.to_string()))?;
            totp.secret = seal::open(keys, user, &enrollment_id(totp), &sealed)
                .map_err(|error| corrupt(user, error.to_string()))?;
        }
        (Some(_), None) => return Err(corrupt(user, "the enrollment has no sealed secret")),
        (None, Some(_)) => return Err(corrupt(user, "a sealed secret without an enrollment")),
    }
    Ok(record)
}

/// The key id that sealed a row's secret, if it has one: what `rotate-key` re-seals.
pub fn sealing_key_id(sealed_secret: &str) -> Option<seal::KeyId> {
    sealed_secret
        .parse::<Sealed>()
        .ok()
        .map(|sealed| sealed.key_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::FleetKey;
    use crate::store::tests::sample_record;

    fn keys(byte: u8) -> FleetKeys {
        FleetKeys::new(FleetKey::from_bytes(&[byte; 32]), Vec::new())
    }

    #[test]
    fn a_record_survives_its_row_and_its_secret_is_not_in_the_text() {
        let record = sample_record(5);
        let secret = record.enrollment.as_ref().unwrap().totp.secret.to_base32();
        let stored = to_row("alice", &record, &keys(1)).unwrap();
        let text = String::from_utf8(stored.bytes.to_vec()).unwrap();
        assert!(!text.contains(secret.as_str()), "{text}");
        assert!(
            !stored
                .sealed_secret
                .as_ref()
                .unwrap()
                .contains(secret.as_str())
        );
        assert_eq!(from_row("alice", &stored, &keys(1)).unwrap(), record);
    }

    #[test]
    fn a_row_moved_to_another_user_or_enrollment_does_not_open() {
        let stored = to_row("alice", &sample_record(5), &keys(1)).unwrap();
        assert!(matches!(
            from_row("mallory", &stored, &keys(1)),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            from_row("alice", &stored, &keys(2)),
            Err(StoreError::Corrupt { .. })
        ));
        let text = String::from_utf8(stored.bytes.to_vec()).unwrap();
        let enrolled_at = sample_record(5).enrollment.unwrap().totp.enrolled_at;
        let moved = text.replace(
            &format!("enrolled_at = {enrolled_at}"),
            &format!("enrolled_at = {}", enrolled_at + 1),
        );
        assert_ne!(moved, text);
        let moved = StoredRecord {
            bytes: Zeroizing::new(moved.into_bytes()),
            ..stored
        };
        assert!(matches!(
            from_row("alice", &moved, &keys(1)),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn a_secret_in_clear_is_refused_whatever_the_row_says() {
        let record = sample_record(5);
        let clear = record.to_text().unwrap();
        for encoding in [Encoding::ClearText as i16, Encoding::SealedText as i16] {
            let planted = StoredRecord {
                encoding,
                bytes: Zeroizing::new(clear.as_bytes().to_vec()),
                sealed_secret: None,
            };
            assert!(matches!(
                from_row("alice", &planted, &keys(1)),
                Err(StoreError::Corrupt { .. })
            ));
        }
        let sealed = to_row("alice", &record, &keys(1)).unwrap().sealed_secret;
        let both = StoredRecord {
            encoding: Encoding::SealedText as i16,
            bytes: Zeroizing::new(clear.as_bytes().to_vec()),
            sealed_secret: sealed,
        };
        assert!(matches!(
            from_row("alice", &both, &keys(1)),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn a_record_without_enrollment_has_no_sealed_secret() {
        let mut record = sample_record(5);
        record.enrollment = None;
        let stored = to_row("alice", &record, &keys(1)).unwrap();
        assert_eq!(stored.sealed_secret, None);
        assert_eq!(from_row("alice", &stored, &keys(1)).unwrap(), record);
    }
}
