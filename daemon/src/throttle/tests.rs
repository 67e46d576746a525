use super::*;
use twofactor_config::Seconds;

fn rules() -> LockoutConfig {
    LockoutConfig::default()
}

fn host(address: &str) -> Source {
    Source::parse(address).expect("a source")
}

fn fail_until_delayed(state: &mut AttemptState, source: &Source, mut now: u64) -> u64 {
    loop {
        match gate(&rules(), state, source, now) {
            Gate::Open => {
                failed(&rules(), state, source, None, now);
                now += 1;
            }
            Gate::Delayed(_) => return now,
            Gate::Locked(_) => panic!("locked before any delay"),
        }
    }
}

#[test]
fn one_source_is_delayed_and_another_is_not() {
    let mut state = AttemptState::default();
    let attacker = host("192.0.2.66");
    let now = fail_until_delayed(&mut state, &attacker, 1000);
    assert_eq!(
        state.consecutive_failures, 4,
        "3 free failures, then the delay"
    );
    assert_eq!(gate(&rules(), &state, &attacker, now), Gate::Delayed(1));
    assert_eq!(
        gate(&rules(), &state, &host("198.51.100.1"), now),
        Gate::Open
    );
    assert_eq!(gate(&rules(), &state, &Source::Console, now), Gate::Open);
}

#[test]
fn delays_grow_per_source_and_expire_on_their_own() {
    let mut state = AttemptState::default();
    let attacker = host("192.0.2.66");
    let mut now = 0;
    let mut waits = Vec::new();
    for _ in 0..12 {
        if let Gate::Delayed(wait) = gate(&rules(), &state, &attacker, now) {
            waits.push(wait);
            now += wait;
        }
        assert_eq!(gate(&rules(), &state, &attacker, now), Gate::Open);
        failed(&rules(), &mut state, &attacker, None, now);
    }
    assert_eq!(waits, [2, 4, 8, 16, 32, 64, 128, 256]);
    // An hour after its last failure the source is forgotten.
    let later = now + rules().source_memory.get();
    expire(&rules(), &mut state, later);
    assert!(state.sources.is_empty());
    assert_eq!(gate(&rules(), &state, &attacker, later), Gate::Open);
}

#[test]
fn the_ceiling_locks_every_source_for_a_time_that_grows() {
    let mut state = AttemptState::default();
    let ceiling = rules().max_failures.get();
    let mut now = 5000;
    // Many sources, so no source is ever delayed: only the ceiling stops them.
    for n in 0..ceiling {
        let source = host(&format!("203.0.113.{}", n % 200));
        assert_eq!(
            gate(&rules(), &state, &source, now),
            Gate::Open,
            "attempt {n}"
        );
        let failure = failed(&rules(), &mut state, &source, None, now);
        assert_eq!(failure.now_locked, n + 1 == ceiling);
    }
    let day = 86_400;
    assert_eq!(
        gate(&rules(), &state, &Source::Console, now),
        Gate::Locked(Some(day))
    );
    now += day;
    expire(&rules(), &mut state, now);
    assert_eq!(gate(&rules(), &state, &Source::Console, now), Gate::Open);
    assert_eq!(state.consecutive_failures, 0, "the lock consumed the count");
    for n in 0..ceiling {
        failed(
            &rules(),
            &mut state,
            &host(&format!("2001:db8:{n:x}::1")),
            None,
            now,
        );
    }
    assert_eq!(
        gate(&rules(), &state, &Source::Local, now),
        Gate::Locked(Some(2 * day)),
        "the second lock within a year is twice as long"
    );
    // A success cannot happen during the lock; once over, one resets the count, not the growth.
    now += 2 * day;
    expire(&rules(), &mut state, now);
    succeeded(&mut state, &Source::Console);
    assert_eq!(state.locks, 2);
    unlock(&mut state);
    assert_eq!(
        state.locks, 0,
        "an administrator's unlock clears the growth too"
    );
}

#[test]
fn a_success_clears_only_its_own_source() {
    let mut state = AttemptState::default();
    let attacker = host("192.0.2.66");
    let now = fail_until_delayed(&mut state, &attacker, 0);
    failed(&rules(), &mut state, &Source::Console, None, now);
    succeeded(&mut state, &Source::Console);
    assert_eq!(state.consecutive_failures, 0);
    assert!(matches!(
        gate(&rules(), &state, &attacker, now),
        Gate::Delayed(_)
    ));
    assert_eq!(throttled(&rules(), &state, now).len(), 1);
    assert_eq!(throttled(&rules(), &state, now)[0].source, "192.0.2.66");
}

#[test]
fn sources_are_bounded_and_the_oldest_goes() {
    let mut state = AttemptState::default();
    for n in 0..(MAX_SOURCES as u64 + 5) {
        failed(
            &rules(),
            &mut state,
            &host(&format!("192.0.2.{n}")),
            None,
            n,
        );
    }
    assert_eq!(state.sources.len(), MAX_SOURCES);
    assert_eq!(state.sources[0].source, "192.0.2.5");
}

#[test]
fn the_skew_hint_needs_two_different_codes_in_a_row_at_the_same_offset() {
    let mut state = AttemptState::default();
    let source = host("192.0.2.1");
    let at = |seconds, step| Some(SkewMatch { seconds, step });
    let hint =
        |state: &mut AttemptState, skew, now| failed(&rules(), state, &source, skew, now).skew_hint;
    assert_eq!(
        hint(&mut state, at(90, 103), 0),
        None,
        "one code never gives a hint"
    );
    assert_eq!(
        hint(&mut state, at(90, 103), 1),
        None,
        "the same code again does not count"
    );
    assert_eq!(
        hint(&mut state, at(90, 104), 31),
        Some(90),
        "a device whose clock is off"
    );
    assert_eq!(hint(&mut state, None, 62), None);
    assert_eq!(hint(&mut state, at(90, 106), 93), None, "not two in a row");
    // Another source's codes do not combine with this one's.
    let other = failed(&rules(), &mut state, &host("192.0.2.2"), at(90, 107), 94);
    assert_eq!(other.skew_hint, None);
}

#[test]
fn an_old_admin_lock_holds_until_unlocked() {
    let mut state = AttemptState {
        locked: true,
        ..AttemptState::default()
    };
    expire(&rules(), &mut state, u64::MAX / 2);
    assert_eq!(
        gate(&rules(), &state, &Source::Local, 10),
        Gate::Locked(None)
    );
    unlock(&mut state);
    assert_eq!(gate(&rules(), &state, &Source::Local, 10), Gate::Open);
}

#[test]
fn locks_are_forgotten_after_a_year_without_one() {
    let short = LockoutConfig {
        max_failures: 1.try_into().expect("in range"),
        lock_duration: Seconds::from_secs(60),
        ..rules()
    };
    let mut state = AttemptState::default();
    failed(&short, &mut state, &Source::Local, None, 10);
    assert_eq!(state.locks, 1);
    let year = twofactor_config::SECONDS_PER_YEAR;
    expire(&short, &mut state, 10 + year - 1);
    assert_eq!(state.locks, 1);
    expire(&short, &mut state, 10 + year);
    assert_eq!(state.locks, 0);
}

#[test]
fn no_delay_is_owed_by_a_call_that_read_the_clock_before_a_later_failure() {
    // Concurrent calls read the clock before they take the user's lock: one that read 1000
    // may run after a failure stored at 1001.
    let mut state = AttemptState::default();
    let source = host("192.0.2.66");
    failed(&rules(), &mut state, &source, None, 1001);
    assert_eq!(gate(&rules(), &state, &source, 1000), Gate::Open);
}
