//! Module arguments: unavailable=ignore, echo, prompt, use_first_pass, try_first_pass, and the catch-all.

use super::*;

#[test]
fn unavailable_ignore_ignores_an_unreachable_daemon() {
    let daemon = FakeDaemon::new(unreachable_daemon, never_verify);
    let run = run(&["unavailable=ignore"], &request("alice"), vec![], &daemon);
    assert_eq!(run.verdict.outcome, Outcome::Ignore);
    assert!(run.log.contains(Level::Warning, "unavailable=ignore"));
}

#[test]
fn unavailable_ignore_does_not_ignore_other_failures() {
    let errors: [PlanAnswer; 5] = [
        || Err(ClientError::Timeout(Duration::from_secs(10))),
        || {
            Err(ClientError::NotRoot {
                owner: ":1.42".into(),
                uid: 1000,
            })
        },
        || Err(ClientError::Bus("unexpected reply".into())),
        || Err(ClientError::Config("bad address".into())),
        || Err(ClientError::Daemon(proto::Error::Internal("disk".into()))),
    ];
    for plan in errors {
        let daemon = FakeDaemon::new(plan, never_verify);
        let steps = vec![error(UNAVAILABLE)];
        assert_eq!(
            outcome(&["unavailable=ignore"], "alice", steps, &daemon),
            Outcome::AuthInfoUnavail
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Module arguments

#[test]
fn echo_code_shows_the_code() {
    let daemon = FakeDaemon::prompting(accepted);
    let steps = vec![Step::Visible(
        crate::messages::CODE_PROMPT,
        Answer::Text("123456"),
    )];
    assert_eq!(
        outcome(&["echo_code"], "alice", steps, &daemon),
        Outcome::Success
    );
}

#[test]
fn prompt_argument_replaces_the_prompt() {
    let daemon = FakeDaemon::prompting(accepted);
    let steps = vec![secret("Code from your phone: ", "123456")];
    assert_eq!(
        outcome(&["prompt=Code from your phone: "], "alice", steps, &daemon),
        Outcome::Success
    );
}

#[test]
fn use_first_pass_takes_the_authtok_and_never_prompts() {
    let daemon = FakeDaemon::prompting(accepted);
    let run = run(
        &["use_first_pass"],
        &with_authtok("alice", " 123456 "),
        vec![],
        &daemon,
    );
    assert_eq!(run.verdict.outcome, Outcome::Success);
    assert_eq!(daemon.verified_codes(), vec!["123456"]);
}

#[test]
fn use_first_pass_without_authtok_is_denied() {
    let daemon = FakeDaemon::prompting(never_verify);
    let steps = vec![error("No verification code entered.")];
    assert_eq!(
        outcome(&["use_first_pass"], "alice", steps, &daemon),
        Outcome::AuthErr
    );
}

#[test]
fn use_first_pass_with_a_password_is_a_wrong_code() {
    let daemon = FakeDaemon::prompting(never_verify);
    let run = run(
        &["use_first_pass"],
        &with_authtok("alice", "correct horse"),
        vec![error(WRONG)],
        &daemon,
    );
    assert_eq!(run.verdict.outcome, Outcome::AuthErr);
    run.log.assert_never_mentions(&["correct horse"]);
}

#[test]
fn try_first_pass_uses_a_code_in_the_authtok() {
    let daemon = FakeDaemon::prompting(accepted);
    let run = run(
        &["try_first_pass"],
        &with_authtok("alice", "123456"),
        vec![],
        &daemon,
    );
    assert_eq!(run.verdict.outcome, Outcome::Success);
    assert_eq!(daemon.verified_codes(), vec!["123456"]);
}

#[test]
fn try_first_pass_prompts_without_authtok() {
    let daemon = FakeDaemon::prompting(accepted);
    let steps = vec![code("123456")];
    assert_eq!(
        outcome(&["try_first_pass"], "alice", steps, &daemon),
        Outcome::Success
    );
}

#[test]
fn try_first_pass_prompts_when_the_authtok_is_a_password() {
    let daemon = FakeDaemon::prompting(accepted);
    let run = run(
        &["try_first_pass"],
        &with_authtok("alice", "correct horse"),
        vec![code("123456")],
        &daemon,
    );
    assert_eq!(run.verdict.outcome, Outcome::Success);
    assert_eq!(daemon.verified_codes(), vec!["123456"]);
    run.log.assert_never_mentions(&["correct horse"]);
}

#[test]
fn forward_pass_on_an_ignore_plan_passes_the_whole_answer_on_as_the_password() {
    let daemon = FakeDaemon::new(|| Ok(plan(LoginAction::Ignore, "")), never_verify);
    let steps = vec![secret("Password & verification code: ", "hunter2 123456")];
    let run = run(&["forward_pass"], &request("alice"), steps, &daemon);
    assert_eq!(run.verdict.outcome, Outcome::Ignore);
    let authtok = run.verdict.forward_authtok.as_deref().map(String::as_str);
    assert_eq!(authtok, Some("hunter2 123456"));
    assert!(daemon.verified_codes().is_empty());
    run.log.assert_never_mentions(&["hunter2"]);
}

#[test]
fn forward_pass_without_a_daemon_under_unavailable_ignore_passes_the_password_on() {
    let daemon = FakeDaemon::new(unreachable_daemon, never_verify);
    let steps = vec![secret("Password & verification code: ", "hunter2")];
    let run = run(
        &["forward_pass", "unavailable=ignore"],
        &request("alice"),
        steps,
        &daemon,
    );
    assert_eq!(run.verdict.outcome, Outcome::Ignore);
    let authtok = run.verdict.forward_authtok.as_deref().map(String::as_str);
    assert_eq!(authtok, Some("hunter2"));
}

#[test]
fn forward_pass_on_an_ignore_plan_with_a_failing_conversation_is_a_conversation_error() {
    let daemon = FakeDaemon::new(|| Ok(plan(LoginAction::Ignore, "")), never_verify);
    let steps = vec![Step::Secret(
        "Password & verification code: ",
        Answer::Fails,
    )];
    let run = run(&["forward_pass"], &request("alice"), steps, &daemon);
    assert_eq!(run.verdict.outcome, Outcome::ConvErr);
    assert!(run.verdict.forward_authtok.is_none());
}

#[test]
fn forward_pass_conversation_failure() {
    let daemon = FakeDaemon::prompting(never_verify);
    let steps = vec![Step::Secret(
        "Password & verification code: ",
        Answer::Fails,
    )];
    let run = run(&["forward_pass"], &request("alice"), steps, &daemon);
    assert_eq!(run.verdict.outcome, Outcome::ConvErr);
    assert!(run.verdict.forward_authtok.is_none());
}

#[test]
fn debug_logs_steps_but_never_secrets() {
    let daemon = FakeDaemon::prompting(accepted);
    let debugged = run(&["debug"], &request("alice"), vec![code("123456")], &daemon);
    assert_eq!(debugged.verdict.outcome, Outcome::Success);
    assert!(
        debugged
            .log
            .contains(Level::Debug, "plan for \"alice\": Prompt")
    );
    debugged.log.assert_never_mentions(&["123456"]);

    let daemon = FakeDaemon::prompting(accepted);
    let quiet = run(&[], &request("alice"), vec![code("123456")], &daemon);
    assert!(!quiet.log.0.iter().any(|(level, _)| *level == Level::Debug));
}

#[test]
fn request_and_verdict_debug_redact_secrets() {
    let shown = format!("{:?}", with_authtok("alice", "s3cret"));
    assert!(!shown.contains("s3cret"), "{shown}");
    let verdict = Verdict {
        outcome: Outcome::AuthErr,
        forward_authtok: Some(Zeroizing::new("s3cret".into())),
    };
    let shown = format!("{verdict:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
}

#[test]
fn a_panic_in_the_hook_denies() {
    use pam::constants::PamResultCode;
    assert_eq!(
        crate::fail_closed(|| panic!("boom")),
        PamResultCode::PAM_AUTH_ERR
    );
    assert_eq!(
        crate::fail_closed(|| PamResultCode::PAM_SUCCESS),
        PamResultCode::PAM_SUCCESS
    );
}
