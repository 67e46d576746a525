//! Closed sets of values that travel by name, as a D-Bus string `s`: the policy of a user and
//! the HMAC algorithm of a TOTP secret.
//!
//! They live here, not in `twofactor-config`, because they are part of the contract: the
//! configuration file, the daemon's records and the bus all spell them the same way, and
//! `proto` depends on nothing of ours. `twofactor-config` re-exports them.
//!
//! A reply carries them as [`OrUnknown`], so that a client older than the daemon decodes a
//! name it does not know instead of failing the whole call.

use std::fmt;
use std::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zbus::{Signature, Type};

/// A value of a closed set, known by its name.
pub trait Named: Copy + FromStr<Err = UnknownName> + 'static {
    fn name(self) -> &'static str;
}

/// A name that is not one of the set's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName(pub String);

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown name {:?}", self.0)
    }
}

impl std::error::Error for UnknownName {}

/// An enum whose variants are spelled once, with their names. Deserializing is strict (the
/// configuration file must not accept a typo). It has no D-Bus [`Type`] of its own: on the bus
/// it is always an [`OrUnknown`], the lenient form.
macro_rules! named_values {
    (
        $(#[$attr:meta])*
        pub enum $name:ident {
            $( $(#[$variant_attr:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$variant_attr])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Every name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl Named for $name {
            fn name(self) -> &'static str {
                self.as_str()
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(text: &str) -> Result<Self, UnknownName> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownName(text.to_owned())),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse()
                    .map_err(|_| D::Error::unknown_variant(&text, Self::NAMES))
            }
        }
    };
}

named_values! {
    /// Whether a user must, may, or does not use a second factor. Ordered by strictness.
    #[derive(Default, PartialOrd, Ord)]
    pub enum Policy {
        /// 2FA is not asked for, even if the user enrolled.
        Disabled = "disabled",
        /// Asked for once the user has enrolled. What `[policy] default` is unless set.
        #[default]
        Optional = "optional",
        /// Asked for always; a user who has not enrolled cannot log in.
        Required = "required",
    }
}

named_values! {
    /// HMAC algorithm of TOTP codes. SHA1 is what authenticator apps expect, and the default.
    #[derive(Default)]
    pub enum Algorithm {
        #[default]
        Sha1 = "SHA1",
        Sha256 = "SHA256",
        Sha512 = "SHA512",
    }
}

/// A named value as it crosses the bus: one this program knows, or a name it does not (from
/// a newer daemon, or a client that sent a wrong one). Shown as the name either way.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OrUnknown<T> {
    Known(T),
    Unknown(String),
}

impl<T: Named> OrUnknown<T> {
    /// The value for `name`, known or not.
    pub fn from_name(name: &str) -> OrUnknown<T> {
        name.parse()
            .map_or_else(|_| OrUnknown::Unknown(name.to_owned()), OrUnknown::Known)
    }

    /// The value, if this program knows it.
    pub fn known(&self) -> Option<T> {
        match self {
            OrUnknown::Known(value) => Some(*value),
            OrUnknown::Unknown(_) => None,
        }
    }

    /// The name as it travels.
    pub fn as_str(&self) -> &str {
        match self {
            OrUnknown::Known(value) => value.name(),
            OrUnknown::Unknown(name) => name,
        }
    }
}

impl<T: Named> From<T> for OrUnknown<T> {
    fn from(value: T) -> Self {
        OrUnknown::Known(value)
    }
}

impl<T: Named + PartialEq> PartialEq<T> for OrUnknown<T> {
    fn eq(&self, other: &T) -> bool {
        self.known().as_ref() == Some(other)
    }
}

impl<T: Named> fmt::Display for OrUnknown<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<T> Type for OrUnknown<T> {
    const SIGNATURE: &'static Signature = &Signature::Str;
}

impl<T: Named> Serialize for OrUnknown<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de, T: Named> Deserialize<'de> for OrUnknown<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|name| OrUnknown::from_name(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_todays_strings_in_both_directions() {
        let policies = [
            (Policy::Disabled, "disabled"),
            (Policy::Optional, "optional"),
            (Policy::Required, "required"),
        ];
        for (policy, name) in policies {
            assert_eq!(policy.as_str(), name);
            assert_eq!(name.parse::<Policy>(), Ok(policy));
        }
        let algorithms = [
            (Algorithm::Sha1, "SHA1"),
            (Algorithm::Sha256, "SHA256"),
            (Algorithm::Sha512, "SHA512"),
        ];
        for (algorithm, name) in algorithms {
            assert_eq!(algorithm.as_str(), name);
            assert_eq!(name.parse::<Algorithm>(), Ok(algorithm));
        }
        assert_eq!(Policy::ALL.len(), Policy::NAMES.len());
        assert!(Policy::Disabled < Policy::Optional && Policy::Optional < Policy::Required);
        assert!("sha1".parse::<Algorithm>().is_err(), "names are exact");
    }

    #[test]
    fn an_unknown_name_survives_the_bus_and_a_known_one_is_typed() {
        use zbus::wire::{LE, serialized::Context, to_bytes};
        let ctxt = Context::new(LE, 0);
        let newer = to_bytes(ctxt, "enforced").expect("encode");
        let (decoded, _) = newer.deserialize::<OrUnknown<Policy>>().expect("decode");
        assert_eq!(decoded, OrUnknown::Unknown("enforced".into()));
        assert_eq!(decoded.to_string(), "enforced");
        assert_ne!(decoded, Policy::Required);

        let required = to_bytes(ctxt, &OrUnknown::from(Policy::Required)).expect("encode");
        assert_eq!(
            required.bytes(),
            to_bytes(ctxt, "required").expect("s").bytes()
        );
        let (decoded, _) = required.deserialize::<OrUnknown<Policy>>().expect("decode");
        assert_eq!(decoded, Policy::Required);
        assert_eq!(<OrUnknown<Algorithm>>::SIGNATURE.to_string(), "s");
    }

    #[test]
    fn strict_deserializing_names_the_choices() {
        use serde::de::IntoDeserializer;
        use serde::de::value::{Error, StrDeserializer};
        let input: StrDeserializer<'_, Error> = "mandatory".into_deserializer();
        let error = Policy::deserialize(input).expect_err("strict");
        assert_eq!(
            error.to_string(),
            "unknown variant `mandatory`, expected one of `disabled`, `optional`, `required`"
        );
    }
}
