//! Where a login comes from, for restricting enrollment at login.

use std::net::IpAddr;

use ipnet::IpNet;
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
    /// Host bits may be set (`"10.0.0.5/8"`): they are ignored.
    Network(IpNet),
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
        let prefix = match prefix {
            Some(prefix) => prefix.parse::<u8>().map_err(|_| invalid())?,
            None => IpNet::from(address).max_prefix_len(),
        };
        let network = IpNet::new(address, prefix).map_err(|_| invalid())?;
        Ok(LoginOrigin::Network(network))
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
            LoginOrigin::Network(network) => {
                let Some(Ok(remote)) = source.remote_host().map(str::parse::<IpAddr>) else {
                    return false;
                };
                // sshd on a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
                let remote = match (network, remote) {
                    (IpNet::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                        Some(v4) => IpAddr::V4(v4),
                        None => return false,
                    },
                    _ => remote,
                };
                network.contains(&remote)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(text: &str) -> LoginOrigin {
        LoginOrigin::try_from(text.to_owned()).unwrap()
    }

    fn matches(origin_text: &str, rhost: &str) -> bool {
        origin(origin_text).matches(&LoginSource::new("sshd", "ssh", rhost, true))
    }

    #[test]
    fn networks_match_by_prefix() {
        for (network, rhost, expected) in [
            ("192.168.0.0/23", "192.168.1.255", true),
            ("192.168.0.0/23", "192.168.2.0", false),
            ("192.168.0.0/23", "192.167.255.255", false),
            // Host bits are allowed and ignored.
            ("10.0.0.5/8", "10.200.1.1", true),
            ("10.0.0.5/8", "11.0.0.0", false),
            ("0.0.0.0/0", "203.0.113.1", true),
            ("192.0.2.7", "192.0.2.7", true),
            ("192.0.2.7/32", "192.0.2.6", false),
            ("::/0", "2001:db8::1", true),
            ("2001:db8::/33", "2001:db8:7fff::1", true),
            ("2001:db8::/33", "2001:db8:8000::1", false),
            // An IPv4 network takes IPv4-mapped IPv6 peers, an IPv6 network never takes IPv4.
            ("10.0.0.0/8", "::ffff:10.1.1.1", true),
            ("10.0.0.0/8", "::ffff:11.1.1.1", false),
            ("10.0.0.0/8", "::10.1.1.1", false),
            ("0.0.0.0/0", "2001:db8::1", false),
            ("::/0", "10.1.1.1", false),
            ("::ffff:10.0.0.0/104", "::ffff:10.1.1.1", true),
            ("10.0.0.0/8", "10.1.1.1/32", false),
            ("10.0.0.0/8", "", false),
        ] {
            assert_eq!(matches(network, rhost), expected, "{network} {rhost}");
        }
    }

    #[test]
    fn what_parses_as_a_network() {
        for good in [
            "10.0.0.0/8",
            "10.0.0.0/08",
            "10.0.0.0/32",
            "::/128",
            "::1",
            "10.1.2.3",
        ] {
            assert!(
                matches!(origin(good), LoginOrigin::Network { .. }),
                "{good}"
            );
        }
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "10.0.0/8",
            "/8",
            "10.0.0.0/8/8",
            "10.0.0.0/ 8",
            "lan",
        ] {
            let message = LoginOrigin::try_from(bad.to_owned()).unwrap_err();
            assert!(message.contains(&format!("{bad:?}")), "{bad}: {message}");
        }
    }
}
