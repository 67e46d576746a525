use super::*;
use crate::messages::{CODE_PROMPT, CODE_REPLAYED, LOCKED, NO_CODE};

fn wrong() -> Result<VerifyReply, ClientError> {
    rejected()
}

#[test]
fn two_wrong_codes_then_a_right_one_log_in() {
    let daemon = FakeDaemon::prompting(accepted).with_verify_first(vec![wrong(), wrong()]);
    let steps = vec![
        code("111111"),
        error(WRONG),
        code("222222"),
        error(WRONG),
        code("333333"),
    ];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::Success);
    assert_eq!(
        daemon.verified_codes(),
        ["111111", "222222", "333333"],
        "every try is its own Verify"
    );
}

#[test]
fn n_wrong_codes_are_denied_and_asked_no_more() {
    let daemon = FakeDaemon::prompting(rejected);
    let steps = vec![code("111111"), error(WRONG), code("222222"), error(WRONG)];
    assert_eq!(
        outcome(&["tries=2"], "alice", steps, &daemon),
        Outcome::AuthErr
    );
    assert_eq!(daemon.verified_codes().len(), 2);
}

#[test]
fn one_try_asks_once() {
    let daemon = FakeDaemon::prompting(rejected);
    let steps = vec![code("111111"), error(WRONG)];
    assert_eq!(
        outcome(&["tries=1"], "alice", steps, &daemon),
        Outcome::AuthErr
    );
}

#[test]
fn an_answer_that_is_no_code_uses_a_try_and_stays_local() {
    let daemon = FakeDaemon::prompting(accepted);
    let steps = vec![code("hello"), error(WRONG), code("123456")];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::Success);
    assert_eq!(daemon.verified_codes(), ["123456"]);
}

#[test]
fn an_empty_answer_ends_the_tries() {
    let daemon = FakeDaemon::prompting(rejected);
    let steps = vec![code("111111"), error(WRONG), code(""), error(NO_CODE)];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::AuthErr);
    assert_eq!(daemon.verified_codes().len(), 1);
}

#[test]
fn a_conversation_that_fails_on_a_retry_ends_as_the_wrong_code_did() {
    for answer in [Answer::Fails, Answer::Nothing] {
        let daemon = FakeDaemon::prompting(rejected);
        let steps = vec![
            code("111111"),
            error(WRONG),
            Step::Secret(CODE_PROMPT, answer),
        ];
        assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::AuthErr);
    }
}

#[test]
fn delayed_locked_and_unavailable_end_the_tries() {
    let delayed = || {
        Ok(VerifyReply {
            retry_after_seconds: 20,
            ..reply(VerifyOutcome::Delayed)
        })
    };
    let daemon = FakeDaemon::prompting(delayed).with_verify_first(vec![wrong()]);
    let steps = vec![
        code("111111"),
        error(WRONG),
        code("222222"),
        error(crate::messages::delayed(20)),
    ];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::AuthErr);

    let daemon = FakeDaemon::prompting(|| Ok(reply(VerifyOutcome::Locked)));
    let steps = vec![code("111111"), error(LOCKED)];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::AuthErr);

    let daemon = FakeDaemon::prompting(unreachable_daemon);
    let steps = vec![code("111111"), error(UNAVAILABLE)];
    assert_eq!(
        outcome(&[], "alice", steps, &daemon),
        Outcome::AuthInfoUnavail
    );
}

#[test]
fn use_first_pass_tries_once() {
    let daemon = FakeDaemon::prompting(rejected);
    let run = run(
        &["use_first_pass", "tries=5"],
        &with_authtok("alice", "123456"),
        vec![error(WRONG)],
        &daemon,
    );
    assert_eq!(run.verdict.outcome, Outcome::AuthErr);
    assert_eq!(daemon.verified_codes().len(), 1);
}

#[test]
fn try_first_pass_prompts_after_a_wrong_code_from_the_authtok() {
    let daemon = FakeDaemon::prompting(accepted).with_verify_first(vec![wrong()]);
    let run = run(
        &["try_first_pass"],
        &with_authtok("alice", "111111"),
        vec![error(WRONG), code("222222")],
        &daemon,
    );
    assert_eq!(run.verdict.outcome, Outcome::Success);
    assert_eq!(daemon.verified_codes(), ["111111", "222222"]);
}

#[test]
fn forward_pass_tries_once() {
    let daemon = FakeDaemon::prompting(never_verify).with_verify_any(Ok(VerifyAnyReply {
        reply: reply(VerifyOutcome::Rejected),
        accepted_index: -1,
    }));
    let steps = vec![
        secret(crate::messages::FORWARD_PASS_PROMPT, "hunter2123456"),
        error(WRONG),
    ];
    let run = run(
        &["forward_pass", "tries=5"],
        &request("alice"),
        steps,
        &daemon,
    );
    assert_eq!(run.verdict.outcome, Outcome::AuthErr);
}

#[test]
fn an_invalid_user_name_is_asked_as_often_as_a_real_user() {
    let daemon = FakeDaemon::new(|| panic!("no plan for an invalid name"), never_verify);
    let steps = vec![
        code("111111"),
        error(WRONG),
        code("222222"),
        error(WRONG),
        code("333333"),
        error(WRONG),
    ];
    assert_eq!(outcome(&[], "bad/name", steps, &daemon), Outcome::AuthErr);
}

#[test]
fn a_replayed_code_says_so_and_may_be_followed_by_the_next() {
    let replayed = Ok(VerifyReply {
        code_replayed: true,
        ..reply(VerifyOutcome::Rejected)
    });
    let daemon = FakeDaemon::prompting(accepted).with_verify_first(vec![replayed]);
    let steps = vec![code("123456"), error(CODE_REPLAYED), code("654321")];
    let run = run(&["debug"], &request("alice"), steps, &daemon);
    assert_eq!(run.verdict.outcome, Outcome::Success);
    assert!(run.log.contains(Level::Notice, "replayed"));
    run.log.assert_never_mentions(&["123456", "654321"]);
}

#[test]
fn the_prompt_mentions_backup_codes() {
    assert!(CODE_PROMPT.contains("backup code"), "{CODE_PROMPT}");
    let send = crate::messages::SEND_PROMPT;
    assert!(
        send.starts_with(CODE_PROMPT.trim_end_matches(": ")),
        "{send}"
    );
}
