//! Key material: TOTP secrets that never show up in Debug output and are wiped on drop.

use std::fmt;

use rand::TryRng;
use zeroize::Zeroizing;

/// Bytes of a new TOTP secret: 160 bits, as RFC 4226 §4 recommends.
pub const SECRET_LEN: usize = 20;
/// Shortest secret taken over from another tool: google-authenticator makes 80-bit secrets.
pub const MIN_IMPORTED_SECRET_LEN: usize = 10;

/// A TOTP shared secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    pub fn from_bytes(bytes: Vec<u8>) -> Secret {
        Secret(Zeroizing::new(bytes))
    }

    /// A fresh secret from the operating system's random generator.
    pub fn generate() -> std::io::Result<Secret> {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_LEN]);
        fill_random(&mut bytes)?;
        Ok(Secret(bytes))
    }

    /// RFC 4648 base32 without padding, as authenticator apps and `oathtool -b` take it.
    pub fn to_base32(&self) -> Zeroizing<String> {
        Zeroizing::new(totp_rs::Secret::from(self.0.as_slice()).to_base32())
    }

    pub fn from_base32(text: &str) -> Option<Secret> {
        let parsed = totp_rs::Secret::try_from_base32(text.trim_end_matches('=')).ok()?;
        Some(Secret::from_bytes(parsed.as_bytes().to_vec()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Stored as base32 text, the only place a secret is ever written.
impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_base32())
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        let text = Zeroizing::new(String::deserialize(deserializer)?);
        match Secret::from_base32(&text) {
            // Imported enrollments may be 80-bit (google-authenticator); ours are 160-bit.
            Some(secret) if secret.as_bytes().len() >= MIN_IMPORTED_SECRET_LEN => Ok(secret),
            _ => Err(serde::de::Error::custom(
                "secret is not base32 of at least 80 bits",
            )),
        }
    }
}

/// Fill `buffer` from the OS random generator (getrandom).
pub fn fill_random(buffer: &mut [u8]) -> std::io::Result<()> {
    rand::rngs::SysRng
        .try_fill_bytes(buffer)
        .map_err(|error| std::io::Error::other(error.to_string()))
}

/// Constant-time equality of two byte strings (lengths are not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let secret = Secret::from_base32("JBSWY3DPEHPK3PXP").unwrap();
        let shown = format!("{secret:?}");
        assert!(
            !shown.contains("JBSWY3DPEHPK3PXP") && !shown.contains("72"),
            "{shown}"
        );
    }

    #[test]
    fn base32_round_trip_and_length() {
        let secret = Secret::generate().unwrap();
        assert_eq!(secret.as_bytes().len(), 20);
        let text = secret.to_base32();
        assert_eq!(text.len(), 32);
        assert_eq!(Secret::from_base32(&text).unwrap(), secret);
    }

    #[test]
    fn generated_secrets_differ() {
        assert_ne!(Secret::generate().unwrap(), Secret::generate().unwrap());
    }

    #[test]
    fn bad_base32_is_refused() {
        assert!(Secret::from_base32("not base32!").is_none());
    }
}
