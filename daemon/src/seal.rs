//! TOTP secrets sealed under the fleet key, so a database dump holds no secret in clear.
//!
//! - The fleet key file holds one or more 256-bit keys ([`key_file`]): the first seals, all
//!   of them open, which lets a fleet rotate its key without an outage.
//! - Each key has a public [`KeyId`] (which key sealed a row) and a verifier (whether this
//!   host's key is the one the database was sealed with), both derived with HMAC-SHA256 under
//!   distinct labels, and neither revealing the key.
//! - Sealing is ChaCha20-Poly1305 (RFC 8439) under a subkey of the fleet key, with a random
//!   96-bit nonce and associated data that binds the user, the enrollment and the key id.
//!   ChaCha20-Poly1305 rather than AES-GCM: constant-time in software on every CPU, and the
//!   `chacha20` crate is already in the tree (rand). At one seal per enrollment or rotation,
//!   random 96-bit nonces stay far below the 2^32 messages per key where they would risk a
//!   repeat.

use std::fmt;

use base64ct::{Base64, Encoding};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::secret::{Secret, constant_time_eq, fill_random};

pub mod key_file;

pub use key_file::{KeyFileError, LineProblem, write_new_key_file};

/// Bytes of a fleet key: 256 bits.
pub const KEY_LEN: usize = 32;
/// Bytes of a key id: enough to tell a fleet's few keys apart, not to identify a key alone
/// (that is the verifier's job).
pub const KEY_ID_LEN: usize = 8;
/// Bytes of a ChaCha20-Poly1305 nonce.
pub const NONCE_LEN: usize = 12;
/// The prefix of the text form; a new format gets a new one.
const TEXT_VERSION: &str = "v1";

// Labels for the values derived from a fleet key: each one its own, so none can stand in
// for another.
const KEY_ID_LABEL: &[u8] = b"twofactor fleet key id v1";
const VERIFIER_LABEL: &[u8] = b"twofactor fleet key verifier v1";
const SEALING_KEY_LABEL: &[u8] = b"twofactor fleet sealing key v1";
const ASSOCIATED_DATA_LABEL: &[u8] = b"twofactor sealed totp secret v1";

/// One 256-bit fleet key, wiped on drop, never shown.
#[derive(Clone)]
pub struct FleetKey {
    key_id: KeyId,
    sealing_key: Zeroizing<[u8; KEY_LEN]>,
    verifier: [u8; 32],
}

impl FleetKey {
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> FleetKey {
        let key_id_full = derive(bytes, KEY_ID_LABEL);
        let mut key_id = [0u8; KEY_ID_LEN];
        key_id.copy_from_slice(&key_id_full[..KEY_ID_LEN]);
        FleetKey {
            key_id: KeyId(key_id),
            sealing_key: derive(bytes, SEALING_KEY_LABEL),
            verifier: *derive(bytes, VERIFIER_LABEL),
        }
    }

    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// What the database stores beside the key id, so that a host can check that its key is
    /// the one that sealed the rows: hex of HMAC-SHA256(key, a fixed label).
    pub fn verifier(&self) -> String {
        hex::encode(self.verifier)
    }

    fn cipher(&self) -> Cipher {
        cipher_for(&self.sealing_key)
    }
}

/// The AEAD; the known-answer test goes through this alias, so a swap of algorithm fails it.
type Cipher = ChaCha20Poly1305;

fn cipher_for(sealing_key: &[u8; KEY_LEN]) -> Cipher {
    Cipher::new(&(*sealing_key).into())
}

impl fmt::Debug for FleetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FleetKey({}, <redacted>)", self.key_id)
    }
}

/// HMAC-SHA256(key, label): a pseudo-random function of the key, one output per label.
fn derive(key: &[u8; KEY_LEN], label: &[u8]) -> Zeroizing<[u8; 32]> {
    // HMAC takes a key of any length, so this cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        unreachable!("HMAC accepts every key length")
    };
    mac.update(label);
    Zeroizing::new(mac.finalize().into_bytes().into())
}

/// Which fleet key sealed a value: the first 8 bytes of HMAC-SHA256(key, a fixed label).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; KEY_ID_LEN]);

impl KeyId {
    /// Parse the hex form [`fmt::Display`] writes.
    pub fn parse(text: &str) -> Option<KeyId> {
        let mut bytes = [0u8; KEY_ID_LEN];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(KeyId(bytes))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// The keys of a fleet key file, in file order: the first seals, every one opens.
#[derive(Clone, Debug)]
pub struct FleetKeys {
    keys: Vec<FleetKey>,
}

/// The database's key id and verifier match no key in the key file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the fleet key file does not hold the key the database was sealed with (key id \
     {database_key_id}; this host has {host_key_ids}); copy the fleet's key file to this host"
)]
pub struct KeyMismatch {
    pub database_key_id: String,
    pub host_key_ids: String,
}

impl FleetKeys {
    /// At least one key: the first seals.
    pub fn new(first: FleetKey, others: Vec<FleetKey>) -> FleetKeys {
        let mut keys = vec![first];
        keys.extend(others);
        FleetKeys { keys }
    }

    /// The key that seals.
    pub fn sealing_key(&self) -> &FleetKey {
        &self.keys[0]
    }

    pub fn key_ids(&self) -> Vec<KeyId> {
        self.keys.iter().map(FleetKey::key_id).collect()
    }

    fn find(&self, key_id: KeyId) -> Option<&FleetKey> {
        self.keys.iter().find(|key| key.key_id == key_id)
    }

    /// Whether one of these keys is the one the database records (its key id and verifier).
    pub fn check_verifier(&self, key_id: &str, verifier: &str) -> Result<(), KeyMismatch> {
        let matches = KeyId::parse(key_id)
            .and_then(|id| self.find(id))
            .is_some_and(|key| constant_time_eq(key.verifier().as_bytes(), verifier.as_bytes()));
        if matches {
            return Ok(());
        }
        let host_key_ids: Vec<String> = self.key_ids().iter().map(KeyId::to_string).collect();
        Err(KeyMismatch {
            database_key_id: key_id.chars().take(2 * KEY_ID_LEN).collect(),
            host_key_ids: host_key_ids.join(", "),
        })
    }
}

/// A TOTP secret sealed under one fleet key.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: KeyId,
    pub nonce: [u8; NONCE_LEN],
    /// The encrypted secret followed by its 16-byte Poly1305 tag.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Sealed bytes are safe to show, but nobody needs them in a log.
        write!(
            f,
            "Sealed({}, <{} bytes>)",
            self.key_id,
            self.ciphertext.len()
        )
    }
}

impl fmt::Display for Sealed {
    /// `v1:KEYID:NONCE:CIPHERTEXT`: key id in hex, nonce and ciphertext in standard base64
    /// (whose alphabet has no `:`), for a TEXT column or a TOML string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{TEXT_VERSION}:{}:{}:{}",
            self.key_id,
            Base64::encode_string(&self.nonce),
            Base64::encode_string(&self.ciphertext)
        )
    }
}

/// The text is not a sealed secret of a version this daemon reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a sealed secret (expected v1:KEYID:NONCE:CIPHERTEXT): {0}")]
pub struct BadSealedText(&'static str);

impl std::str::FromStr for Sealed {
    type Err = BadSealedText;

    fn from_str(text: &str) -> Result<Sealed, BadSealedText> {
        let mut fields = text.split(':');
        let (Some(version), Some(key_id), Some(nonce), Some(ciphertext), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(BadSealedText("wrong number of fields"));
        };
        if version != TEXT_VERSION {
            return Err(BadSealedText("unknown version"));
        }
        let key_id = KeyId::parse(key_id).ok_or(BadSealedText("bad key id"))?;
        let mut nonce_bytes = [0u8; NONCE_LEN];
        match Base64::decode(nonce, &mut nonce_bytes) {
            Ok(decoded) if decoded.len() == NONCE_LEN => {}
            _ => return Err(BadSealedText("bad nonce")),
        }
        let ciphertext =
            Base64::decode_vec(ciphertext).map_err(|_| BadSealedText("bad ciphertext"))?;
        Ok(Sealed {
            key_id,
            nonce: nonce_bytes,
            ciphertext,
        })
    }
}

/// Sealing failed: the operating system's random generator did not answer, or the cipher
/// refused the input.
#[derive(Debug, thiserror::Error)]
#[error("cannot seal the secret: {0}")]
pub struct SealError(String);

/// The sealed secret does not open. One error for every cause (another user or enrollment,
/// a key this host lacks, a changed byte), so that it tells an attacker nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the sealed secret does not open with this host's fleet keys: sealed by a key this host \
     lacks, for another user or enrollment, or damaged"
)]
pub struct OpenError;

/// The associated data: a label, then each field as a 4-byte big-endian length and its bytes,
/// so no two (user, enrollment, key id) triples encode alike.
fn associated_data(user: &str, enrollment_id: &str, key_id: KeyId) -> Vec<u8> {
    let mut data = Vec::new();
    for field in [
        ASSOCIATED_DATA_LABEL,
        user.as_bytes(),
        enrollment_id.as_bytes(),
        &key_id.0,
    ] {
        // A user name or an enrollment id over 4 GiB cannot reach here from any store.
        let length = u32::try_from(field.len()).unwrap_or(u32::MAX);
        data.extend_from_slice(&length.to_be_bytes());
        data.extend_from_slice(field);
    }
    data
}

/// Seal `secret` under the first key, for this user and enrollment.
pub fn seal(
    keys: &FleetKeys,
    user: &str,
    enrollment_id: &str,
    secret: &Secret,
) -> Result<Sealed, SealError> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce).map_err(|error| SealError(error.to_string()))?;
    seal_with_nonce(keys.sealing_key(), user, enrollment_id, secret, nonce)
}

fn seal_with_nonce(
    key: &FleetKey,
    user: &str,
    enrollment_id: &str,
    secret: &Secret,
    nonce: [u8; NONCE_LEN],
) -> Result<Sealed, SealError> {
    let aad = associated_data(user, enrollment_id, key.key_id);
    let ciphertext = key
        .cipher()
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: secret.as_bytes(),
                aad: &aad,
            },
        )
        .map_err(|_| SealError("the cipher refused the input".into()))?;
    Ok(Sealed {
        key_id: key.key_id,
        nonce,
        ciphertext,
    })
}

/// Open a secret sealed for this user and enrollment, with whichever key sealed it.
pub fn open(
    keys: &FleetKeys,
    user: &str,
    enrollment_id: &str,
    sealed: &Sealed,
) -> Result<Secret, OpenError> {
    let key = keys.find(sealed.key_id).ok_or(OpenError)?;
    let aad = associated_data(user, enrollment_id, sealed.key_id);
    let plaintext = key
        .cipher()
        .decrypt(
            &Nonce::from(sealed.nonce),
            Payload {
                msg: &sealed.ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| OpenError)?;
    Ok(Secret::from_bytes(plaintext))
}

/// Why a re-seal failed.
#[derive(Debug, thiserror::Error)]
pub enum ResealError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Seal(#[from] SealError),
}

/// For key rotation: `Some` of the secret sealed again under the first key if another key
/// sealed it, `None` if the first key already did (nothing to write).
pub fn reseal(
    keys: &FleetKeys,
    user: &str,
    enrollment_id: &str,
    sealed: &Sealed,
) -> Result<Option<Sealed>, ResealError> {
    // Opened even when nothing changes, so a rotation also proves every row still opens.
    let secret = open(keys, user, enrollment_id, sealed)?;
    if sealed.key_id == keys.sealing_key().key_id {
        return Ok(None);
    }
    Ok(Some(seal(keys, user, enrollment_id, &secret)?))
}

#[cfg(test)]
mod tests;
