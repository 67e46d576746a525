//! What each plan and each verify reply makes the login say and return.

use super::*;

#[test]
fn ignore_asks_nothing() {
    let daemon = FakeDaemon::new(|| Ok(plan(LoginAction::Ignore, "")), never_verify);
    assert_eq!(outcome(&[], "alice", vec![], &daemon), Outcome::Ignore);
    assert_eq!(
        daemon.calls(),
        vec![Call::LoginPlan("alice".into(), context())]
    );
}

#[test]
fn ignore_shows_the_daemons_message() {
    let daemon = FakeDaemon::new(
        || {
            Ok(plan(
                LoginAction::Ignore,
                "Set up two-factor with `twofactor enroll`.",
            ))
        },
        never_verify,
    );
    let steps = vec![info("Set up two-factor with `twofactor enroll`.")];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::Ignore);
}

#[test]
fn deny_when_required_but_not_enrolled() {
    let daemon = FakeDaemon::new(
        || {
            Ok(plan(
                LoginAction::Deny,
                "Two-factor is required for you: ask an administrator.",
            ))
        },
        never_verify,
    );
    let steps = vec![error(
        "Two-factor is required for you: ask an administrator.",
    )];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::AuthErr);
}

#[test]
fn deny_without_a_message_has_a_default() {
    let daemon = FakeDaemon::new(|| Ok(plan(LoginAction::Deny, "")), never_verify);
    let steps = vec![error(crate::messages::DENIED)];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::AuthErr);
}

#[test]
fn prompt_shows_the_daemons_message_first() {
    let daemon = FakeDaemon::new(
        || Ok(plan(LoginAction::Prompt, "Open your authenticator app.")),
        accepted,
    );
    let steps = vec![info("Open your authenticator app."), code("123456")];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::Success);
}

// ---------------------------------------------------------------------------------------------
// Verify outcomes

#[test]
fn accepted_code() {
    let daemon = FakeDaemon::prompting(accepted);
    let run = run(&[], &request("alice"), vec![code("123456")], &daemon);
    assert_eq!(run.verdict.outcome, Outcome::Success);
    assert_eq!(
        daemon.calls(),
        vec![
            Call::LoginPlan("alice".into(), context()),
            Call::Verify("alice".into(), "123456".into(), context()),
        ]
    );
    assert!(run.log.contains(Level::Info, "accepted code for \"alice\""));
    run.log.assert_never_mentions(&["123456"]);
}

#[test]
fn the_code_is_stripped_of_whitespace() {
    let daemon = FakeDaemon::prompting(accepted);
    let steps = vec![code(" \t123456 \n")];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::Success);
    assert_eq!(daemon.verified_codes(), vec!["123456"]);
}

#[test]
fn backup_code_with_several_left() {
    let daemon = FakeDaemon::prompting(|| {
        Ok(VerifyReply {
            backup_code_used: true,
            backup_codes_left: 7,
            ..reply(VerifyOutcome::Accepted)
        })
    });
    let steps = vec![
        code("1234-5678-90"),
        info("A backup code was used; 7 backup codes are left."),
    ];
    let run = run(&[], &request("alice"), steps, &daemon);
    assert_eq!(run.verdict.outcome, Outcome::Success);
    assert_eq!(daemon.verified_codes(), vec!["1234-5678-90"]);
    run.log.assert_never_mentions(&["1234-5678-90", "1234"]);
}

#[test]
fn backup_code_with_one_left_warns() {
    let daemon = FakeDaemon::prompting(|| {
        Ok(VerifyReply {
            backup_code_used: true,
            backup_codes_left: 1,
            ..reply(VerifyOutcome::Accepted)
        })
    });
    let steps = vec![
        code("12345678"),
        info(
            "Warning: a backup code was used and only 1 is left. Run `twofactor backup-codes` to get new ones.",
        ),
    ];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::Success);
}

#[test]
fn backup_code_with_none_left_warns() {
    let daemon = FakeDaemon::prompting(|| {
        Ok(VerifyReply {
            backup_code_used: true,
            backup_codes_left: 0,
            ..reply(VerifyOutcome::Accepted)
        })
    });
    let steps = vec![
        code("12345678"),
        info(
            "Warning: a backup code was used and none are left. Run `twofactor backup-codes` now to get new ones.",
        ),
    ];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::Success);
}

#[test]
fn failures_since_the_last_success_are_reported() {
    let daemon = FakeDaemon::prompting(|| {
        Ok(VerifyReply {
            failures_since_success: 3,
            last_failure_time: 1_714_566_896,
            ..reply(VerifyOutcome::Accepted)
        })
    });
    let steps = vec![
        code("123456"),
        info("3 failed attempts since your last login, the last at 2024-05-01 12:34 UTC."),
    ];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::Success);
}

#[test]
fn failures_are_shown_in_the_local_zone() {
    let daemon = FakeDaemon::prompting(|| {
        Ok(VerifyReply {
            failures_since_success: 1,
            last_failure_time: 1_714_566_896,
            ..reply(VerifyOutcome::Accepted)
        })
    });
    let request = Request {
        local_offset: |_| UtcOffset::from_hms(2, 0, 0).unwrap(),
        ..request("alice")
    };
    let steps = vec![
        code("123456"),
        info("1 failed attempt since your last login, at 2024-05-01 14:34 +02:00."),
    ];
    assert_eq!(
        run(&[], &request, steps, &daemon).verdict.outcome,
        Outcome::Success
    );
}

#[test]
fn backup_code_and_failures_together() {
    let daemon = FakeDaemon::prompting(|| {
        Ok(VerifyReply {
            backup_code_used: true,
            backup_codes_left: 1,
            failures_since_success: 2,
            last_failure_time: 1_714_566_896,
            ..reply(VerifyOutcome::Accepted)
        })
    });
    let steps = vec![
        code("12345678"),
        info(
            "Warning: a backup code was used and only 1 is left. Run `twofactor backup-codes` to get new ones.",
        ),
        info("2 failed attempts since your last login, the last at 2024-05-01 12:34 UTC."),
    ];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::Success);
}

#[test]
fn rejected_code() {
    let daemon = FakeDaemon::prompting(rejected);
    let run = run(
        &["tries=1"],
        &request("alice"),
        vec![code("654321"), error(WRONG)],
        &daemon,
    );
    assert_eq!(run.verdict.outcome, Outcome::AuthErr);
    assert!(
        run.log
            .contains(Level::Notice, "rejected code for \"alice\"")
    );
    run.log.assert_never_mentions(&["654321"]);
}

#[test]
fn rejected_with_the_device_clock_ahead() {
    let daemon = FakeDaemon::prompting(|| {
        Ok(VerifyReply {
            clock_skew_seconds: 90,
            ..reply(VerifyOutcome::Rejected)
        })
    });
    let steps = vec![
        code("654321"),
        error(WRONG),
        info("Your device's clock seems to be about 90 s ahead. Check its date and time settings."),
    ];
    assert_eq!(
        outcome(&["tries=1"], "alice", steps, &daemon),
        Outcome::AuthErr
    );
}

#[test]
fn rejected_with_the_device_clock_behind() {
    let daemon = FakeDaemon::prompting(|| {
        Ok(VerifyReply {
            clock_skew_seconds: -300,
            ..reply(VerifyOutcome::Rejected)
        })
    });
    let steps = vec![
        code("654321"),
        error(WRONG),
        info(
            "Your device's clock seems to be about 5 min behind. Check its date and time settings.",
        ),
    ];
    assert_eq!(
        outcome(&["tries=1"], "alice", steps, &daemon),
        Outcome::AuthErr
    );
}

#[test]
fn delayed_tells_how_long_to_wait() {
    let daemon = FakeDaemon::prompting(|| {
        Ok(VerifyReply {
            retry_after_seconds: 120,
            ..reply(VerifyOutcome::Delayed)
        })
    });
    let steps = vec![
        code("123456"),
        error("Too many failed attempts. Try again in 2 minutes."),
    ];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::AuthErr);
}

#[test]
fn locked_sends_to_an_administrator() {
    let daemon = FakeDaemon::prompting(|| Ok(reply(VerifyOutcome::Locked)));
    let steps = vec![code("123456"), error(crate::messages::LOCKED)];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::AuthErr);
    assert!(crate::messages::LOCKED.contains("Ask an administrator"));
}

// ---------------------------------------------------------------------------------------------
// Answers that are not codes

#[test]
fn empty_answer_is_denied_without_asking_the_daemon() {
    for answer in ["", "   "] {
        let daemon = FakeDaemon::prompting(never_verify);
        let steps = vec![code(answer), error("No verification code entered.")];
        assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::AuthErr);
    }
}

#[test]
fn no_answer_is_denied() {
    let daemon = FakeDaemon::prompting(never_verify);
    let steps = vec![Step::Secret(crate::messages::CODE_PROMPT, Answer::Nothing)];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::AuthErr);
}

#[test]
fn conversation_failure_is_never_success() {
    let daemon = FakeDaemon::prompting(never_verify);
    let steps = vec![Step::Secret(crate::messages::CODE_PROMPT, Answer::Fails)];
    let run = run(&[], &request("alice"), steps, &daemon);
    assert_eq!(run.verdict.outcome, Outcome::ConvErr);
    assert!(run.log.contains(Level::Error, "conversation failed"));
}

#[test]
fn implausible_answer_looks_like_a_wrong_code_and_stays_local() {
    let long = "1".repeat(33);
    let long: &'static str = Box::leak(long.into_boxed_str());
    for answer in ["abcdef", "12345a", "---", "hunter2", long, "１２３４５６"] {
        let daemon = FakeDaemon::prompting(never_verify);
        let run = run(
            &["tries=1"],
            &request("alice"),
            vec![code(answer), error(WRONG)],
            &daemon,
        );
        assert_eq!(run.verdict.outcome, Outcome::AuthErr, "{answer:?}");
        assert_eq!(daemon.calls().len(), 1, "only LoginPlan for {answer:?}");
        run.log.assert_never_mentions(&[answer]);
    }
}

// ---------------------------------------------------------------------------------------------
// Who is asked
