//! The one seam between a record and its row: everything stored passes through [`to_row`],
//! everything read through [`from_row`]. Sealing the TOTP secret (a later step) is a new
//! [`Encoding`] here, bound to `user`; rows of the old one are found by their encoding.

use std::path::Path;

use zeroize::Zeroizing;

use crate::record::UserRecord;
use crate::store::StoreError;

/// The `record_encoding` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i16)]
pub enum Encoding {
    /// The record's text format (`UserRecord::to_text`), as in the files.
    Text = 1,
}

/// What goes into `record_encoding` and `record`.
#[derive(Debug)]
pub struct StoredRecord {
    pub encoding: i16,
    pub bytes: Zeroizing<Vec<u8>>,
}

/// Where errors say the record is: the row, named like a path.
fn location(user: &str) -> String {
    format!("users row {user:?}")
}

pub fn to_row(user: &str, record: &UserRecord) -> Result<StoredRecord, StoreError> {
    let text = record
        .to_text()
        .map_err(|error| error.at(Path::new(&location(user))))?;
    Ok(StoredRecord {
        encoding: Encoding::Text as i16,
        bytes: Zeroizing::new(text.as_bytes().to_vec()),
    })
}

pub fn from_row(user: &str, stored: &StoredRecord) -> Result<UserRecord, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: location(user),
        reason,
    };
    if stored.encoding != Encoding::Text as i16 {
        return Err(corrupt(format!(
            "record encoding {} is unknown to this twofactord",
            stored.encoding
        )));
    }
    let text = std::str::from_utf8(&stored.bytes)
        .map_err(|_| corrupt("the record is not UTF-8 text".into()))?;
    UserRecord::from_text(text).map_err(|error| error.at(Path::new(&location(user))))
}
