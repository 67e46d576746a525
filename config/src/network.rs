//! Where a login comes from, for restricting enrollment at login.

use std::net::IpAddr;

use serde::Deserialize;

/// `"any"`, `"local"` (no remote host), an IP address, or a network like `"10.0.0.0/8"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum LoginOrigin {
    Any,
    Local,
    Network { address: IpAddr, prefix: u8 },
}

impl TryFrom<String> for LoginOrigin {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "any" => return Ok(LoginOrigin::Any),
            "local" => return Ok(LoginOrigin::Local),
            _ => {}
        }
        let invalid =
            || format!("expected \"any\", \"local\", an address or a network, not {text:?}");
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
    /// Whether a login with PAM_RHOST `rhost` comes from here. A host name never matches a
    /// network: sshd reports addresses unless `UseDNS yes`.
    pub fn matches(&self, rhost: &str) -> bool {
        match self {
            LoginOrigin::Any => true,
            LoginOrigin::Local => rhost.is_empty(),
            LoginOrigin::Network { address, prefix } => {
                let Ok(remote) = rhost.parse::<IpAddr>() else {
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
