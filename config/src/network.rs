//! Where a login comes from, for restricting enrollment at login.

use std::net::IpAddr;

use serde::Deserialize;

use crate::login_source::LoginSource;

/// `"any"`, `"console"`, `"no-remote-host"`, an IP address, or a network like `"10.0.0.0/8"`.
/// Everything but `"any"` needs a context reported by root (see [`LoginSource`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum LoginOrigin {
    Any,
    /// [`LoginSource::is_console`].
    Console,
    /// PAM_RHOST empty: also `su` and `sudo` inside a remote session. `written_as_local` for
    /// the old spelling `"local"`, which means the same and is warned about.
    NoRemoteHost {
        written_as_local: bool,
    },
    Network {
        address: IpAddr,
        prefix: u8,
    },
}

/// What `"local"` in `at_login_from` means, for the daemon's log and `--check-config`.
pub const LOCAL_MEANS: &str = "\"local\" means \"no-remote-host\": any login without a remote \
host, including su and sudo inside an SSH session; use \"console\" for logins at the machine \
itself";

impl TryFrom<String> for LoginOrigin {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "any" => return Ok(LoginOrigin::Any),
            "console" => return Ok(LoginOrigin::Console),
            "no-remote-host" => {
                return Ok(LoginOrigin::NoRemoteHost {
                    written_as_local: false,
                });
            }
            "local" => {
                return Ok(LoginOrigin::NoRemoteHost {
                    written_as_local: true,
                });
            }
            _ => {}
        }
        let invalid = || {
            format!(
                "expected \"any\", \"console\", \"no-remote-host\", an address or a network, \
                 not {text:?}"
            )
        };
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.as_str(), None),
        };
        let address: IpAddr = address.parse().map_err(|_| invalid())?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(invalid)?,
            None => max,
        };
        Ok(LoginOrigin::Network { address, prefix })
    }
}

fn leading_bits_equal(a: &[u8], b: &[u8], bits: u8) -> bool {
    let whole = usize::from(bits / 8);
    let rest = bits % 8;
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[whole] & mask == b[whole] & mask
    }
}

impl LoginOrigin {
    /// Whether a login from `source` comes from here. Only `Any` matches a context that a
    /// non-root caller reported: such a caller chooses its own. A host name never matches a
    /// network: sshd reports addresses unless `UseDNS yes`.
    pub fn matches(&self, source: &LoginSource) -> bool {
        match self {
            LoginOrigin::Any => true,
            LoginOrigin::Console => source.is_console(),
            LoginOrigin::NoRemoteHost { .. } => source.has_no_remote_host(),
            LoginOrigin::Network { address, prefix } => {
                let Some(Ok(remote)) = source.remote_host().map(str::parse::<IpAddr>) else {
                    return false;
                };
                let remote = match (address, remote) {
                    (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                        Some(v4) => IpAddr::V4(v4),
                        None => return false,
                    },
                    _ => remote,
                };
                match (address, remote) {
                    (IpAddr::V4(a), IpAddr::V4(r)) => {
                        leading_bits_equal(&a.octets(), &r.octets(), *prefix)
                    }
                    (IpAddr::V6(a), IpAddr::V6(r)) => {
                        leading_bits_equal(&a.octets(), &r.octets(), *prefix)
                    }
                    _ => false,
                }
            }
        }
    }
}
