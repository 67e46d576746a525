//! Unknown users, bad names, and every client or daemon error: never success.

use super::*;

#[test]
fn unknown_user_is_prompted_like_anybody_else() {
    // The daemon decides Prompt for unknown users; the module must not tell them apart.
    let known = FakeDaemon::prompting(rejected);
    let unknown = FakeDaemon::prompting(rejected);
    let known_outcome = outcome(
        &["tries=1"],
        "alice",
        vec![code("123456"), error(WRONG)],
        &known,
    );
    let unknown_outcome = outcome(
        &["tries=1"],
        "nosuchuser",
        vec![code("123456"), error(WRONG)],
        &unknown,
    );
    assert_eq!(known_outcome, Outcome::AuthErr);
    assert_eq!(unknown_outcome, known_outcome);
    assert_eq!(
        unknown.calls(),
        vec![
            Call::LoginPlan("nosuchuser".into(), context()),
            Call::Verify("nosuchuser".into(), "123456".into(), context()),
        ]
    );
}

#[test]
fn invalid_user_name_is_prompted_then_denied_without_the_daemon() {
    for user in ["", "a b", "../etc", "-rf", "ali\nce"] {
        let daemon = FakeDaemon::new(
            || panic!("no daemon call for an invalid name"),
            never_verify,
        );
        let steps = vec![code("123456"), error(WRONG)];
        assert_eq!(
            outcome(&["tries=1"], user, steps, &daemon),
            Outcome::AuthErr,
            "{user:?}"
        );
    }
}

#[test]
fn invalid_user_name_is_logged_escaped() {
    let daemon = FakeDaemon::new(|| panic!("no daemon call"), never_verify);
    let run = run(
        &["tries=1"],
        &request("evil\nFAKE LOG LINE"),
        vec![code("123456"), error(WRONG)],
        &daemon,
    );
    for (_, message) in &run.log.0 {
        assert!(!message.contains('\n'), "{message:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Daemon failures

#[test]
fn every_client_error_at_the_plan_is_unavailable() {
    let errors: [PlanAnswer; 5] = [
        unreachable_daemon,
        || Err(ClientError::Timeout(Duration::from_secs(10))),
        || {
            Err(ClientError::NotRoot {
                owner: ":1.42".into(),
                uid: 1000,
            })
        },
        || Err(ClientError::Bus("unexpected reply".into())),
        || Err(ClientError::Daemon(proto::Error::Internal("disk".into()))),
    ];
    for plan in errors {
        let daemon = FakeDaemon::new(plan, never_verify);
        let run = run(&[], &request("alice"), vec![error(UNAVAILABLE)], &daemon);
        assert_eq!(run.verdict.outcome, Outcome::AuthInfoUnavail);
        assert!(run.log.contains(Level::Error, "LoginPlan for \"alice\""));
    }
}

#[test]
fn typed_daemon_refusal_at_the_plan_is_auth_err() {
    let daemon = FakeDaemon::new(
        || Err(ClientError::Daemon(proto::Error::AccessDenied("no".into()))),
        never_verify,
    );
    let steps = vec![error("Two-factor authentication failed.")];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::AuthErr);

    let daemon = FakeDaemon::new(
        || Err(ClientError::Daemon(proto::Error::Locked("locked".into()))),
        never_verify,
    );
    let steps = vec![error(crate::messages::LOCKED)];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::AuthErr);
}

#[test]
fn client_errors_at_verify_fail_closed() {
    let errors: [VerifyAnswer; 4] = [
        unreachable_daemon,
        || Err(ClientError::Timeout(Duration::from_secs(10))),
        || Err(ClientError::Bus("connection reset".into())),
        || Err(ClientError::Daemon(proto::Error::Internal("disk".into()))),
    ];
    for verify in errors {
        for raw in [&[][..], &["unavailable=ignore"][..]] {
            let daemon = FakeDaemon::prompting(verify);
            let steps = vec![code("123456"), error(UNAVAILABLE)];
            // Once the daemon has said "prompt", not even unavailable=ignore ignores.
            assert_eq!(
                outcome(raw, "alice", steps, &daemon),
                Outcome::AuthInfoUnavail,
                "{raw:?}"
            );
        }
    }
}

#[test]
fn typed_errors_at_verify_are_auth_err() {
    let daemon = FakeDaemon::prompting(|| {
        Err(ClientError::Daemon(proto::Error::InvalidInput(
            "bad".into(),
        )))
    });
    assert_eq!(
        outcome(
            &["tries=1"],
            "alice",
            vec![code("123456"), error(WRONG)],
            &daemon
        ),
        Outcome::AuthErr
    );
    let daemon =
        FakeDaemon::prompting(|| Err(ClientError::Daemon(proto::Error::Locked("locked".into()))));
    assert_eq!(
        outcome(
            &["tries=1"],
            "alice",
            vec![code("123456"), error(crate::messages::LOCKED)],
            &daemon
        ),
        Outcome::AuthErr
    );
    let daemon = FakeDaemon::prompting(|| {
        Err(ClientError::Daemon(proto::Error::NotEnrolled(
            "gone".into(),
        )))
    });
    assert_eq!(
        outcome(
            &["tries=1"],
            "alice",
            vec![code("123456"), error("Two-factor authentication failed.")],
            &daemon
        ),
        Outcome::AuthErr
    );
}
