use super::*;
use crate::messages;

const SSH: &[&str] = &["prompt_after_notices"];

fn backup_code_accepted() -> Result<VerifyReply, ClientError> {
    Ok(VerifyReply {
        backup_code_used: true,
        backup_codes_left: 9,
        ..reply(VerifyOutcome::Accepted)
    })
}

fn read(answer: Answer) -> Step {
    Step::Visible(messages::NOTICES_READ_PROMPT, answer)
}

#[test]
fn messages_after_the_last_prompt_get_one_more_prompt() {
    let daemon = FakeDaemon::prompting(backup_code_accepted);
    let steps = vec![
        code("12345-67890"),
        info(messages::backup_code_used(9)),
        read(Answer::Text("")),
    ];
    assert_eq!(outcome(SSH, "alice", steps, &daemon), Outcome::Success);
}

#[test]
fn without_the_argument_the_messages_end_the_login() {
    let daemon = FakeDaemon::prompting(backup_code_accepted);
    let steps = vec![code("12345-67890"), info(messages::backup_code_used(9))];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::Success);
}

#[test]
fn no_message_after_the_last_prompt_means_no_more_prompts() {
    let daemon = FakeDaemon::prompting(accepted);
    assert_eq!(
        outcome(SSH, "alice", vec![code("123456")], &daemon),
        Outcome::Success
    );
}

#[test]
fn a_failed_login_ends_without_it() {
    // sshd shows a failure's messages once, as an info request of their own.
    let daemon = FakeDaemon::prompting(rejected);
    let steps = vec![code("123456"), error(messages::WRONG_CODE)];
    let args = ["prompt_after_notices", "tries=1"];
    assert_eq!(outcome(&args, "alice", steps, &daemon), Outcome::AuthErr);
}

#[test]
fn a_skipped_login_with_a_message_gets_it_too() {
    let daemon = FakeDaemon::new(
        || Ok(plan(LoginAction::Ignore, "Set up two-factor by Monday.")),
        never_verify,
    );
    let steps = vec![info("Set up two-factor by Monday."), read(Answer::Nothing)];
    assert_eq!(outcome(SSH, "alice", steps, &daemon), Outcome::Ignore);
}

#[test]
fn a_conversation_that_fails_at_it_changes_nothing() {
    let daemon = FakeDaemon::prompting(backup_code_accepted);
    let steps = vec![
        code("12345-67890"),
        info(messages::backup_code_used(9)),
        read(Answer::Fails),
    ];
    assert_eq!(outcome(SSH, "alice", steps, &daemon), Outcome::Success);
}

#[test]
fn silent_logins_show_nothing_so_ask_nothing() {
    let daemon = FakeDaemon::prompting(backup_code_accepted);
    let silent = Request {
        silent: true,
        ..request("alice")
    };
    // The real conversation drops the message under PAM_SILENT; the script still sees it.
    let steps = vec![code("12345-67890"), info(messages::backup_code_used(9))];
    let run = run(SSH, &silent, steps, &daemon);
    assert_eq!(run.verdict.outcome, Outcome::Success);
}
