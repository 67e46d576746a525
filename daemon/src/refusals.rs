//! Refused calls leave a trace without letting a prober flood the log: a caller's first
//! refusal in each minute is logged at once, with how many of its refusals since the last
//! line were not.

use std::collections::HashMap;
use std::sync::Mutex;

/// One line per caller per this many seconds, at most.
pub const WINDOW_SECONDS: u64 = 60;
/// Callers tracked at once; beyond it, those whose window has passed are forgotten.
const MAX_TRACKED: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Tally {
    logged_at: u64,
    unlogged: u64,
}

/// Per-uid counts of refused calls.
#[derive(Debug, Default)]
pub struct RefusedCalls {
    by_uid: Mutex<HashMap<u32, Tally>>,
}

impl RefusedCalls {
    /// A call by `uid` was refused at `now`: `Some(n)` if it is to be logged, where `n`
    /// refusals since the last logged one were not; `None` if it is only counted.
    pub fn note(&self, uid: u32, now: u64) -> Option<u64> {
        let mut by_uid = self.by_uid.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tally) = by_uid.get_mut(&uid) {
            if now < tally.logged_at.saturating_add(WINDOW_SECONDS) && now >= tally.logged_at {
                tally.unlogged = tally.unlogged.saturating_add(1);
                return None;
            }
            let unlogged = tally.unlogged;
            *tally = Tally {
                logged_at: now,
                unlogged: 0,
            };
            return Some(unlogged);
        }
        if by_uid.len() >= MAX_TRACKED {
            by_uid.retain(|_, tally| now < tally.logged_at.saturating_add(WINDOW_SECONDS));
            if by_uid.len() >= MAX_TRACKED {
                by_uid.clear();
            }
        }
        by_uid.insert(
            uid,
            Tally {
                logged_at: now,
                unlogged: 0,
            },
        );
        Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_caller_and_minute_with_the_count_left_out() {
        let refused = RefusedCalls::default();
        assert_eq!(refused.note(1000, 100), Some(0));
        for second in 100..159 {
            assert_eq!(refused.note(1000, second), None);
        }
        assert_eq!(
            refused.note(1001, 120),
            Some(0),
            "another caller has its own line"
        );
        assert_eq!(refused.note(1000, 160), Some(59));
        assert_eq!(refused.note(1000, 161), None);
        assert_eq!(
            refused.note(1000, 90),
            Some(1),
            "a clock set back starts a new window"
        );
    }

    #[test]
    fn many_callers_stay_bounded() {
        let refused = RefusedCalls::default();
        for uid in 0..(MAX_TRACKED as u32 * 3) {
            refused.note(uid, 1);
        }
        assert!(refused.by_uid.lock().expect("lock").len() <= MAX_TRACKED);
    }
}
