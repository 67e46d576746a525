//! Numbers with a allowed range, checked while parsing so the error names the line.

use serde::Deserialize;

macro_rules! bounded_u32 {
    ($(#[$doc:meta])* $name:ident, default $default:expr, allowed $allowed:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
        #[serde(try_from = "u32")]
        pub struct $name(u32);

        impl $name {
            pub fn get(self) -> u32 {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name($default)
            }
        }

        impl TryFrom<u32> for $name {
            type Error = String;
            fn try_from(value: u32) -> Result<Self, String> {
                if $allowed.contains(&value) {
                    Ok($name(value))
                } else {
                    Err(format!(concat!($what, ", not {}"), value))
                }
            }
        }
    };
}

bounded_u32!(
    /// Digits of a TOTP code: 6 (what apps default to) or 8.
    Digits, default 6, allowed twofactor_proto::codes::CONFIGURABLE_TOTP_DIGITS, "digits must be 6 or 8"
);
bounded_u32!(
    /// Seconds per TOTP step.
    Period, default 30, allowed (15u32..=120), "period must be between 15 and 120 seconds"
);
bounded_u32!(
    /// Steps either side of now that are accepted.
    Window, default 1, allowed (0u32..=5), "window must be between 0 and 5 steps"
);
bounded_u32!(
    /// Consecutive failures across sources that lock every source: never above 100
    /// (NIST SP 800-63B).
    FailureLimit, default 30, allowed (1u32..=100), "max_failures must be between 1 and 100"
);

/// A duration in seconds, written as [`crate::human::parse_duration`] reads it (`"7d"`,
/// `"1h30m"`) or as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "DurationText")]
pub struct Seconds(u64);

impl Seconds {
    pub const fn from_secs(seconds: u64) -> Seconds {
        Seconds(seconds)
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum DurationText {
    Number(u64),
    Text(String),
}

impl TryFrom<DurationText> for Seconds {
    type Error = String;
    fn try_from(value: DurationText) -> Result<Self, String> {
        match value {
            DurationText::Number(seconds) => Ok(Seconds(seconds)),
            DurationText::Text(text) => crate::human::parse_duration(&text).map(Seconds),
        }
    }
}
