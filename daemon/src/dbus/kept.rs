//! Connections that `LoginPlan` lets logins keep open through the prompt, within a bound.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Connections that `LoginPlan` let the PAM module keep open through the prompt: at most
/// [`MAX_KEPT_CONNECTIONS`] at once. dbus-daemon allows a uid 256 connections by default, and
/// every login (sshd's, su's) connects as root: logins anyone can leave waiting at a prompt
/// must not be able to use them up. Beyond the bound, logins open a connection per call and
/// hold none while the user types.
#[derive(Debug, Default)]
pub struct KeptConnections {
    names: Mutex<HashSet<String>>,
    /// When the names were last checked against the bus (see [`Self::sweep_due`]).
    last_sweep: Mutex<Option<Instant>>,
}

/// Far below dbus-daemon's default of 256 connections per uid.
pub const MAX_KEPT_CONNECTIONS: usize = 64;

/// How often a full set may be checked against the bus's live names.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

impl KeptConnections {
    /// Whether `unique_name` may keep its connection (it already may, or there is room).
    pub fn grant(&self, unique_name: &str) -> bool {
        let mut kept = self.names.lock().unwrap_or_else(|p| p.into_inner());
        if kept.contains(unique_name) {
            return true;
        }
        if kept.len() >= MAX_KEPT_CONNECTIONS {
            return false;
        }
        kept.insert(unique_name.to_owned())
    }

    /// The connection left the bus: its room is free again.
    pub fn release(&self, unique_name: &str) {
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(unique_name);
    }

    /// Whether to check the names against the bus now: at most once per [`SWEEP_INTERVAL`],
    /// so that a full set costs the bus one `ListNames` now and then, not one per login.
    pub fn sweep_due(&self) -> bool {
        let mut last = self.last_sweep.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last.is_some_and(|last| now.duration_since(last) < SWEEP_INTERVAL) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// Forget every name the bus no longer has.
    pub fn retain_live(&self, live: &HashSet<String>) {
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|name| live.contains(name));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.names.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_connections_are_bounded_and_freed_when_they_leave() {
        let kept = KeptConnections::default();
        for n in 0..MAX_KEPT_CONNECTIONS {
            assert!(kept.grant(&format!(":1.{n}")), "room for {n}");
        }
        assert!(kept.grant(":1.0"), "a kept one stays kept");
        assert!(!kept.grant(":1.999"), "no room beyond the bound");
        assert_eq!(kept.len(), MAX_KEPT_CONNECTIONS);
        kept.release(":1.5");
        assert!(kept.grant(":1.999"), "room again once one left");
        assert!(!kept.grant(":1.1000"));
        kept.release(":1.unknown");
        assert_eq!(kept.len(), MAX_KEPT_CONNECTIONS);
    }

    #[test]
    fn a_full_set_keeps_only_live_names_and_is_swept_rarely() {
        let kept = KeptConnections::default();
        for n in 0..MAX_KEPT_CONNECTIONS {
            kept.grant(&format!(":1.{n}"));
        }
        assert!(kept.sweep_due());
        assert!(!kept.sweep_due(), "not again within the interval");
        let live: HashSet<String> = [":1.3", ":1.7", ":1.999"].map(String::from).into();
        kept.retain_live(&live);
        assert_eq!(kept.len(), 2, "only names the bus still has");
        assert!(kept.grant(":1.1000"));
    }
}
