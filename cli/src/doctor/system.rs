//! What the doctor asks the running system (live only: `sshd -T`, the bus) and the files it
//! looks for under the root (the activation file, PAM module directories).

use std::process::Command;

use twofactor_proto as proto;

use super::sshd::{self, SshdConfig};
use super::{Finding, Root};

pub const CONFIG_FILE: &str = "/etc/twofactor/twofactor.toml";
pub const ACTIVATION_FILE: &str = "/usr/share/dbus-1/system-services/org.twofactor.Daemon1.service";

/// Whether logins can reach the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaemonState {
    /// Running, or the bus can start it.
    Reachable,
    /// Neither running nor activatable: why.
    Unreachable(String),
}

/// The activation file under the root; on the live system also the bus's answer.
pub fn daemon_state(root: &Root) -> DaemonState {
    let activatable = root.exists(ACTIVATION_FILE);
    if !root.live {
        return if activatable {
            DaemonState::Reachable
        } else {
            DaemonState::Unreachable(super::messages::NO_ACTIVATION_FILE.into())
        };
    }
    match bus_knows_daemon(&crate::client::bus_address()) {
        Ok(true) => DaemonState::Reachable,
        Ok(false) => DaemonState::Unreachable(super::messages::NOT_ON_BUS.into()),
        Err(error) => DaemonState::Unreachable(super::messages::no_bus(&error)),
    }
}

/// Whether the daemon owns its name or the bus can activate it.
fn bus_knows_daemon(address: &str) -> Result<bool, String> {
    zbus::block_on(async {
        let connection = zbus::connection::Builder::address(address)
            .method_timeout(std::time::Duration::from_secs(10))
            .build()
            .await
            .map_err(|e| e.to_string())?;
        let bus = zbus::fdo::DBusProxy::new(&connection)
            .await
            .map_err(|e| e.to_string())?;
        let name = zbus::names::BusName::try_from(proto::BUS_NAME).map_err(|e| e.to_string())?;
        if bus.name_has_owner(name).await.map_err(|e| e.to_string())? {
            return Ok(true);
        }
        let activatable = bus
            .list_activatable_names()
            .await
            .map_err(|e| e.to_string())?;
        Ok(activatable.iter().any(|n| n.as_str() == proto::BUS_NAME))
    })
}

/// On the live system, `sshd -T`'s values win over the reader's (it also applies what the
/// reader does not model); a refusal is a finding, and the reader's values are used.
pub fn effective_sshd(root: &Root, config: &mut SshdConfig, findings: &mut Vec<Finding>) {
    if !root.live {
        return;
    }
    let Some(binary) = ["/usr/sbin/sshd", "/usr/bin/sshd"]
        .into_iter()
        .find(|path| std::path::Path::new(path).exists())
    else {
        return;
    };
    match Command::new(binary).arg("-T").output() {
        Ok(output) if output.status.success() => {
            config.effective_override =
                sshd::parse_effective(&String::from_utf8_lossy(&output.stdout));
        }
        Ok(output) => findings.push(super::messages::sshd_refuses(
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .next()
                .unwrap_or(""),
        )),
        Err(_) => {}
    }
}

/// Where libpam looks for bare module names, on Debian, RHEL and others.
const MODULE_DIRS: &[&str] = &[
    "/lib/*/security",
    "/lib/security",
    "/lib64/security",
    "/usr/lib/*/security",
    "/usr/lib/security",
    "/usr/lib64/security",
];

/// Whether a module as written in pam.d exists: Some(bool), or None when no module
/// directory exists under the root (a bare name cannot be checked).
pub fn module_exists(root: &Root, module: &str) -> Result<Option<bool>, String> {
    if module.starts_with('/') {
        return Ok(Some(root.exists(module)));
    }
    let mut any_dir = false;
    for dir in MODULE_DIRS {
        for candidate in root.glob(&format!("{dir}/*.so"))? {
            any_dir = true;
            if candidate.rsplit('/').next() == Some(module) {
                return Ok(Some(true));
            }
        }
    }
    Ok(any_dir.then_some(false))
}
