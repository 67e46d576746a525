//! Whether the database answers (the circuit breaker), and how far its clock is from ours.
//!
//! While the database is known to be down, every operation is refused at once, without
//! touching the network, and one background thread probes it until it answers. Each outage
//! is logged once when it begins and once when it ends, never once per login.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::log::{EventLog, Line};
use crate::store::StoreError;

/// Between two probes of a database that is down: a login after recovery waits at most this.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(500);
/// A host clock further than this from the database's is logged: TOTP steps are 30 s.
pub const CLOCK_SKEW_LOGGED: i64 = 5_000;

pub struct Health {
    log: Arc<dyn EventLog>,
    /// Why the database is down, while it is.
    outage: Mutex<Option<String>>,
    /// A probe thread is running.
    probing: AtomicBool,
    /// The database's clock minus ours, in milliseconds, at the last reading.
    clock_offset_ms: AtomicI64,
    skew_logged: AtomicBool,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("outage", &*self.outage())
            .field(
                "clock_offset_ms",
                &self.clock_offset_ms.load(Ordering::Relaxed),
            )
            .finish_non_exhaustive()
    }
}

fn local_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

impl Health {
    pub fn new(log: Arc<dyn EventLog>) -> Health {
        Health {
            log,
            outage: Mutex::new(None),
            probing: AtomicBool::new(false),
            clock_offset_ms: AtomicI64::new(0),
            skew_logged: AtomicBool::new(false),
        }
    }

    fn outage(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.outage
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `Err` at once while the database is known to be down.
    pub fn check(&self) -> Result<(), StoreError> {
        match &*self.outage() {
            None => Ok(()),
            Some(reason) => Err(StoreError::Unavailable {
                reason: reason.clone(),
            }),
        }
    }

    pub fn is_up(&self) -> bool {
        self.outage().is_none()
    }

    /// Note what `result` says about the database: an unavailable one opens the breaker.
    /// Returns whether a probe must be started.
    pub fn observe<T>(&self, result: &Result<T, StoreError>) -> bool {
        match result {
            Err(StoreError::Unavailable { reason }) => self.trip(reason),
            _ => false,
        }
    }

    /// The database is down for `reason`; true if nobody probes it yet.
    pub fn trip(&self, reason: &str) -> bool {
        let mut outage = self.outage();
        if outage.is_none() {
            self.log.warning(
                Line::new("fleet-unavailable")
                    .field("error", reason)
                    .field("effect", "fleet logins are denied until it answers")
                    .as_str(),
            );
            *outage = Some(reason.to_owned());
        }
        !self.probing.swap(true, Ordering::SeqCst)
    }

    /// A probe connected: close the breaker.
    pub fn recover(&self) {
        let mut outage = self.outage();
        if outage.take().is_some() {
            self.log.info(Line::new("fleet-available").as_str());
        }
        self.probing.store(false, Ordering::SeqCst);
    }

    /// A reading of the database's clock (Unix seconds, fractional) just now.
    pub fn observe_clock(&self, database_seconds: f64) {
        let offset = (database_seconds * 1000.0) as i64 - local_ms();
        self.clock_offset_ms.store(offset, Ordering::Relaxed);
        let skewed = offset.abs() > CLOCK_SKEW_LOGGED;
        if skewed != self.skew_logged.swap(skewed, Ordering::Relaxed) {
            let line = Line::new(if skewed { "clock-skew" } else { "clock-agrees" })
                .field("offset_seconds", offset / 1000)
                .field("clock", "the database's clock is used");
            if skewed {
                self.log.warning(line.as_str());
            } else {
                self.log.info(line.as_str());
            }
        }
    }

    /// The database's clock minus ours, in whole seconds.
    pub fn clock_offset(&self) -> i64 {
        // Rounded, so that a reading a few milliseconds behind ours is no offset at all.
        (self.clock_offset_ms.load(Ordering::Relaxed) as f64 / 1000.0).round() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::MemoryLog;

    fn health() -> (Arc<MemoryLog>, Health) {
        let log = Arc::new(MemoryLog::default());
        (log.clone(), Health::new(log))
    }

    fn now_seconds() -> f64 {
        local_ms() as f64 / 1000.0
    }

    #[test]
    fn the_offset_is_the_databases_clock_minus_ours_and_a_skew_is_logged_once() {
        let (log, health) = health();
        health.observe_clock(now_seconds() + 0.2);
        assert_eq!(health.clock_offset(), 0);
        assert!(log.lines().is_empty());
        for _ in 0..3 {
            health.observe_clock(now_seconds() - 40.0);
        }
        assert_eq!(health.clock_offset(), -40);
        health.observe_clock(now_seconds());
        let lines = log.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains("clock-skew") && lines[0].contains("offset_seconds=-40"));
        assert!(lines[1].contains("clock-agrees"));
    }

    #[test]
    fn an_outage_is_logged_once_and_one_probe_is_asked_for() {
        let (log, health) = health();
        let down = || {
            Err::<(), _>(StoreError::Unavailable {
                reason: "refused".into(),
            })
        };
        assert!(health.observe(&down()));
        assert!(!health.observe(&down()) && !health.observe(&down()));
        assert!(!health.observe(&Err::<(), _>(StoreError::Conflict)));
        assert!(health.check().is_err());
        health.recover();
        health.recover();
        assert!(health.check().is_ok());
        let lines = log.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
    }
}
