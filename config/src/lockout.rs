//! `[lockout]`: the throttling rules, and the guess budget they allow.
//!
//! Failures are counted per (user, source) and across sources. Each source gets
//! `free_failures`, then waits `base_delay_seconds`, doubling up to `max_delay_seconds`; a
//! source's count is forgotten `source_memory` after its last failure. One source never
//! delays another. Across sources, `max_failures` consecutive failures (no success between)
//! lock every source for `lock_duration`, doubled for each further lock while the user has
//! had one in the last year; an administrator's unlock clears it.

use serde::Deserialize;

use crate::{FailureLimit, Seconds};

/// A year, for the guess budget and the memory of locks.
pub const SECONDS_PER_YEAR: u64 = 365 * 86_400;
/// A lock raises the next lock's length while it is at most this old.
pub const LOCK_LEVEL_MEMORY_SECONDS: u64 = SECONDS_PER_YEAR;
/// Shortest `lock_duration`: the ceiling's lock is what bounds an attacker with many sources.
const MIN_LOCK_SECONDS: u64 = 60;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutConfig {
    /// Consecutive failures across all sources that lock every source (1..=100).
    pub max_failures: FailureLimit,
    /// First lock at the ceiling; each further lock within a year of the last doubles it.
    #[serde(deserialize_with = "lock_duration")]
    pub lock_duration: Seconds,
    /// Failures of one source before its delays start.
    pub free_failures: u32,
    /// First delay of a source; each further failure from it doubles it.
    pub base_delay_seconds: u64,
    /// Upper bound of one delay.
    pub max_delay_seconds: u64,
    /// A source's failures are forgotten this long after its last one.
    pub source_memory: Seconds,
}

fn lock_duration<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Seconds, D::Error> {
    let duration = Seconds::deserialize(deserializer)?;
    if duration.get() < MIN_LOCK_SECONDS {
        return Err(serde::de::Error::custom(format!(
            "lock_duration must be at least {MIN_LOCK_SECONDS} seconds"
        )));
    }
    Ok(duration)
}

impl Default for LockoutConfig {
    fn default() -> Self {
        LockoutConfig {
            max_failures: FailureLimit::default(),
            lock_duration: Seconds::from_secs(86_400),
            free_failures: 3,
            base_delay_seconds: 2,
            max_delay_seconds: 300,
            source_memory: Seconds::from_secs(3600),
        }
    }
}

impl LockoutConfig {
    /// Seconds one source waits after the last of its `failures` before its next attempt.
    pub fn delay_after(&self, failures: u32) -> u64 {
        let Some(beyond) = failures.checked_sub(self.free_failures) else {
            return 0;
        };
        if beyond == 0 {
            return 0;
        }
        let doublings = (beyond - 1).min(63);
        self.base_delay_seconds
            .saturating_mul(1u64 << doublings)
            .min(self.max_delay_seconds)
    }

    /// Whether this many consecutive failures across sources lock every source.
    pub fn locks_at(&self, consecutive_failures: u32) -> bool {
        consecutive_failures >= self.max_failures.get()
    }

    /// Length of a lock when `earlier_locks` locks came within a year before it.
    pub fn lock_seconds(&self, earlier_locks: u32) -> u64 {
        self.lock_duration
            .get()
            .saturating_mul(1u64 << earlier_locks.min(63))
    }

    /// The most failed attempts an attacker with any number of sources gets in a year of
    /// continuous attack: `max_failures` before each lock that begins within the year, and
    /// one short of another lock after the last. Sources' delays are left out: an attacker
    /// with enough sources never waits for one.
    pub fn attempts_per_year(&self) -> u64 {
        let ceiling = u64::from(self.max_failures.get());
        let mut locked_for = 0u64;
        let mut locks = 0u64;
        while locked_for < SECONDS_PER_YEAR {
            // This lock begins within the year; the next begins after it ends.
            locked_for = locked_for.saturating_add(self.lock_seconds(locks as u32));
            locks += 1;
        }
        ceiling * locks + (ceiling - 1)
    }

    /// The chance that those attempts guess a code of `digits` digits, when each attempt
    /// matches any of `codes_accepted` codes (the TOTP window's steps: `2 * window + 1`).
    pub fn guess_probability_per_year(&self, digits: u32, codes_accepted: u32) -> f64 {
        let space = 10f64.powi(digits as i32);
        (self.attempts_per_year() as f64 * f64::from(codes_accepted) / space).min(1.0)
    }
}
