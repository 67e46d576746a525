//! The login decision table, row by row.

use super::*;
use crate::record::OneTimeCode;
use crate::store::tests::sample_record;

const NOW: u64 = 1_800_000_000;
const DAY: u64 = 86_400;

fn setting(grace_days: Option<u64>, enroll_here: bool) -> LoginSetting {
    LoginSetting {
        grace_seconds: grace_days.map(|days| days * DAY),
        enroll_here,
        delivery_configured: true,
    }
}

fn with(change: impl FnOnce(&mut UserRecord)) -> UserRecord {
    let mut record = UserRecord::new();
    change(&mut record);
    record
}

#[test]
fn the_login_decision_table() {
    use LoginOutcome::*;
    let enrolled = sample_record(1);
    let reachable = UserRecord {
        delivery_enabled: true,
        ..sample_record(1)
    };
    let temporary = with(|r| {
        r.temporary_code = Some(OneTimeCode {
            hash: Default::default(),
            expires_at: NOW + 60,
        })
    });
    let expired_temporary = with(|r| {
        r.temporary_code = Some(OneTimeCode {
            hash: Default::default(),
            expires_at: NOW,
        })
    });
    let grace_started = with(|r| r.grace_started = Some(NOW - DAY));
    let grace_over = with(|r| r.grace_started = Some(NOW - 8 * DAY));
    let reset = with(|r| r.no_grace = true);
    let prompt = Prompt {
        can_send_code: false,
    };
    let rows: Vec<(
        Policy,
        Option<&UserRecord>,
        LoginSetting,
        LoginOutcome,
        bool,
    )> = vec![
        // Disabled: nothing else matters.
        (
            Policy::Disabled,
            Some(&enrolled),
            setting(None, true),
            Ignore,
            false,
        ),
        // Enrolled, or holding a live temporary code: a code is asked for.
        (
            Policy::Optional,
            Some(&enrolled),
            setting(None, false),
            prompt,
            false,
        ),
        (
            Policy::Required,
            Some(&enrolled),
            setting(Some(7), false),
            prompt,
            false,
        ),
        (
            Policy::Optional,
            Some(&reachable),
            setting(None, false),
            Prompt {
                can_send_code: true,
            },
            false,
        ),
        (
            Policy::Optional,
            Some(&temporary),
            setting(None, false),
            prompt,
            false,
        ),
        (
            Policy::Optional,
            Some(&expired_temporary),
            setting(None, false),
            Ignore,
            false,
        ),
        // Optional and not enrolled.
        (
            Policy::Optional,
            None,
            setting(Some(7), true),
            Ignore,
            false,
        ),
        // Required, not enrolled, with a grace period.
        (
            Policy::Required,
            None,
            setting(Some(7), false),
            InGrace {
                ends: NOW + 7 * DAY,
            },
            true,
        ),
        (
            Policy::Required,
            Some(&grace_started),
            setting(Some(7), false),
            InGrace {
                ends: NOW + 6 * DAY,
            },
            false,
        ),
        (
            Policy::Required,
            Some(&grace_over),
            setting(Some(7), false),
            Deny,
            false,
        ),
        (
            Policy::Required,
            Some(&grace_over),
            setting(Some(7), true),
            Enroll,
            false,
        ),
        // A reset user gets no grace.
        (
            Policy::Required,
            Some(&reset),
            setting(Some(7), false),
            Deny,
            false,
        ),
        // No grace period.
        (Policy::Required, None, setting(None, false), Deny, false),
        (Policy::Required, None, setting(None, true), Enroll, false),
        // A grace period of nothing starts, and is over.
        (Policy::Required, None, setting(Some(0), false), Deny, true),
    ];
    for (row, (policy, record, setting, outcome, start_grace)) in rows.into_iter().enumerate() {
        let decided = plan_login(policy, record, setting, NOW);
        assert_eq!(
            decided,
            LoginDecision {
                outcome,
                start_grace
            },
            "row {row}"
        );
    }
}

#[test]
fn a_delivery_channel_must_exist_to_offer_a_sent_code() {
    let reachable = UserRecord {
        delivery_enabled: true,
        ..sample_record(1)
    };
    let none = LoginSetting {
        delivery_configured: false,
        ..setting(None, false)
    };
    let decided = plan_login(Policy::Optional, Some(&reachable), none, NOW);
    assert_eq!(
        decided.outcome,
        LoginOutcome::Prompt {
            can_send_code: false
        }
    );
}

#[test]
fn factor_sets() {
    assert!(Factor::AT_LOGIN.contains(&Factor::Sent));
    assert!(!Factor::FOR_CHANGES.contains(&Factor::Temporary));
    assert!(Factor::FOR_REPLACING.contains(&Factor::Temporary));
    assert!(!Factor::FOR_REPLACING.contains(&Factor::Sent));
}

#[test]
fn the_guard_lets_the_watermark_only_rise_and_spent_codes_stay_spent() {
    let before = sample_record(10);
    let ok = |after: &UserRecord| guard_commit(Some(&before), Some(after));
    assert_eq!(ok(&sample_record(11)), Ok(()));
    assert_eq!(ok(&sample_record(10)), Ok(()));
    assert_eq!(ok(&sample_record(9)), Err(Unguarded::WatermarkFalls));
    let mut cleared = sample_record(10);
    cleared.enrollment.as_mut().unwrap().totp.last_step = None;
    assert_eq!(ok(&cleared), Err(Unguarded::WatermarkFalls));
    // A new enrollment starts afresh.
    let mut enrolled_again = sample_record(1);
    enrolled_again.enrollment.as_mut().unwrap().totp.enrolled_at += 1;
    assert_eq!(ok(&enrolled_again), Ok(()));
    // Spending a code is fine; bringing one back is not, unless the set is new.
    let mut spent = sample_record(10);
    spent
        .enrollment
        .as_mut()
        .unwrap()
        .backup_codes
        .hashes
        .clear();
    assert_eq!(guard_commit(Some(&before), Some(&spent)), Ok(()));
    assert_eq!(
        guard_commit(Some(&spent), Some(&before)),
        Err(Unguarded::BackupCodeReturns)
    );
    let mut new_set = before.clone();
    new_set.enrollment.as_mut().unwrap().backup_codes.salt = "11".repeat(16);
    assert_eq!(guard_commit(Some(&spent), Some(&new_set)), Ok(()));
    assert_eq!(guard_commit(None, Some(&before)), Ok(()));
    assert_eq!(guard_commit(Some(&before), None), Ok(()));
}
