//! Throttling by source: the decisions, as pure functions of the rules, the stored attempt
//! state and the time.
//!
//! - Each (user, source) has its own growing delay, which expires on its own: one source's
//!   failures never delay or refuse the user's code from another.
//! - Across sources, `max_failures` consecutive failures lock every source for a time that
//!   grows with each lock (see [`twofactor_config::LockoutConfig`]).
//! - A success clears its own source and the consecutive count; an admin's unlock clears all.
//! - The clock-skew hint needs two consecutive failed codes from one source, at different
//!   steps, that match the same offset: one guess never produces it.

use twofactor_config::{LOCK_LEVEL_MEMORY_SECONDS, LockoutConfig, Source};
use twofactor_proto::ThrottledSource;

use crate::record::{AttemptState, SkewMatch, SourceAttempts};

/// Sources remembered per user; beyond it the one with the oldest failure is forgotten.
/// Only the ceiling bounds an attacker with many sources, so forgetting one costs nothing.
pub const MAX_SOURCES: usize = 16;

/// Whether an attempt from a source may be checked now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// This source must wait this many seconds.
    Delayed(u64),
    /// Every source is locked: for this many seconds, or until an admin unlocks (`None`).
    Locked(Option<u64>),
}

/// What a failure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Failure {
    /// This failure reached the ceiling: every source is now locked.
    pub now_locked: bool,
    /// Two codes in a row from this source matched the device's clock off by this much.
    pub skew_hint: Option<i64>,
}

fn entry<'a>(state: &'a AttemptState, source: &Source) -> Option<&'a SourceAttempts> {
    let name = source.to_string();
    state.sources.iter().find(|entry| entry.source == name)
}

/// Whether the lock at the ceiling (or an old-style admin lock) holds at `now`.
pub fn lock_remaining(state: &AttemptState, now: u64) -> Option<Option<u64>> {
    if state.locked {
        return Some(None);
    }
    (now < state.locked_until).then(|| Some(state.locked_until - now))
}

/// Seconds `entry`'s source still waits at `now`.
fn delay_left(rules: &LockoutConfig, entry: &SourceAttempts, now: u64) -> u64 {
    let delay = rules.delay_after(entry.failures);
    // No delay is no delay, even for a call whose `now` was read before a later failure was
    // stored (concurrent calls read the clock before they take the user's lock).
    if delay == 0 {
        return 0;
    }
    entry.last_failure.saturating_add(delay).saturating_sub(now)
}

fn is_forgotten(rules: &LockoutConfig, entry: &SourceAttempts, now: u64) -> bool {
    // A clock set back makes nothing older; a source is forgotten only once its delay is over.
    now >= entry.last_failure.saturating_add(rules.source_memory.get())
        && delay_left(rules, entry, now) == 0
}

/// Drop what has expired: sources past their memory, and a lock that is over (which also
/// ends the count that reached it).
pub fn expire(rules: &LockoutConfig, state: &mut AttemptState, now: u64) {
    state
        .sources
        .retain(|entry| !is_forgotten(rules, entry, now));
    if state.locked_until != 0 && now >= state.locked_until {
        state.locked_until = 0;
        state.consecutive_failures = 0;
    }
    if state.last_lock != 0 && now >= state.last_lock.saturating_add(LOCK_LEVEL_MEMORY_SECONDS) {
        state.locks = 0;
    }
}

/// Whether an attempt from `source` may be checked at `now`.
pub fn gate(rules: &LockoutConfig, state: &AttemptState, source: &Source, now: u64) -> Gate {
    if let Some(remaining) = lock_remaining(state, now) {
        return Gate::Locked(remaining);
    }
    match entry(state, source).map(|entry| delay_left(rules, entry, now)) {
        Some(wait) if wait > 0 => Gate::Delayed(wait),
        _ => Gate::Open,
    }
}

/// Count a failed attempt from `source` at `now`; `skew` is where its TOTP code matched
/// outside the window, if it did.
pub fn failed(
    rules: &LockoutConfig,
    state: &mut AttemptState,
    source: &Source,
    skew: Option<SkewMatch>,
    now: u64,
) -> Failure {
    expire(rules, state, now);
    let name = source.to_string();
    let position = match state.sources.iter().position(|entry| entry.source == name) {
        Some(position) => position,
        None => {
            if state.sources.len() >= MAX_SOURCES
                && let Some(oldest) =
                    (0..state.sources.len()).min_by_key(|&index| state.sources[index].last_failure)
            {
                state.sources.remove(oldest);
            }
            state.sources.push(SourceAttempts {
                source: name,
                failures: 0,
                last_failure: now,
                last_skew: None,
            });
            state.sources.len() - 1
        }
    };
    let mut failure = Failure::default();
    if let Some(entry) = state.sources.get_mut(position) {
        failure.skew_hint = match (entry.last_skew, skew) {
            (Some(before), Some(this))
                if before.seconds == this.seconds && before.step != this.step =>
            {
                Some(this.seconds)
            }
            _ => None,
        };
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = now;
        entry.last_skew = skew;
    }
    state.consecutive_failures = state.consecutive_failures.saturating_add(1);
    state.failures_since_success = state.failures_since_success.saturating_add(1);
    state.last_failure = now;
    if rules.locks_at(state.consecutive_failures) && lock_remaining(state, now).is_none() {
        state.locked_until = now.saturating_add(rules.lock_seconds(state.locks));
        state.locks = state.locks.saturating_add(1);
        state.last_lock = now;
        failure.now_locked = true;
    }
    failure
}

/// A success from `source`: clears that source and the consecutive count. Other sources'
/// delays and the memory of locks stay.
pub fn succeeded(state: &mut AttemptState, source: &Source) {
    let name = source.to_string();
    state.sources.retain(|entry| entry.source != name);
    state.consecutive_failures = 0;
    state.failures_since_success = 0;
    if state.sources.is_empty() {
        // Nothing left to report or to delay: a record with no enrollment can then go.
        state.last_failure = 0;
    }
}

/// An administrator's unlock: every lock, delay and count is cleared, but not what the
/// next successful login reports (failures since the last success, and when the last was).
pub fn unlock(state: &mut AttemptState) {
    *state = AttemptState {
        failures_since_success: state.failures_since_success,
        last_failure: state.last_failure,
        ..AttemptState::default()
    };
}

/// Sources with failures at `now`, oldest first.
pub fn throttled(rules: &LockoutConfig, state: &AttemptState, now: u64) -> Vec<ThrottledSource> {
    state
        .sources
        .iter()
        .filter(|entry| !is_forgotten(rules, entry, now))
        .map(|entry| ThrottledSource {
            source: entry.source.clone(),
            failures: entry.failures,
            retry_after_seconds: delay_left(rules, entry, now),
        })
        .collect()
}

#[cfg(test)]
mod tests;
