use super::*;
use crate::flow::forward_pass_readings;
use crate::messages::FORWARD_PASS_PROMPT;

fn accepted_at(index: i32) -> Result<VerifyAnyReply, ClientError> {
    Ok(VerifyAnyReply {
        reply: reply(VerifyOutcome::Accepted),
        accepted_index: index,
    })
}

fn none_accepted() -> Result<VerifyAnyReply, ClientError> {
    Ok(VerifyAnyReply {
        reply: reply(VerifyOutcome::Rejected),
        accepted_index: -1,
    })
}

fn candidates_sent(daemon: &FakeDaemon) -> Vec<Vec<String>> {
    daemon
        .calls()
        .into_iter()
        .filter_map(|call| match call {
            Call::VerifyAny(_, codes, _) => Some(codes),
            _ => None,
        })
        .collect()
}

fn forwarded(run: &Run) -> Option<&str> {
    run.verdict.forward_authtok.as_deref().map(String::as_str)
}

#[test]
fn every_reading_goes_in_one_call_and_the_accepted_password_is_passed_on() {
    let daemon = FakeDaemon::prompting(never_verify).with_verify_any(accepted_at(0));
    let steps = vec![secret(FORWARD_PASS_PROMPT, "hunter2123456")];
    let run = run(&["forward_pass"], &request("alice"), steps, &daemon);
    assert_eq!(run.verdict.outcome, Outcome::Success);
    assert_eq!(candidates_sent(&daemon), [["123456", "2123456"]]);
    assert_eq!(forwarded(&run), Some("hunter2"));
    run.log.assert_never_mentions(&["hunter2", "123456"]);
}

#[test]
fn an_eight_digit_code_after_a_password_ending_in_digits() {
    let daemon = FakeDaemon::prompting(never_verify).with_verify_any(accepted_at(2));
    let steps = vec![secret(FORWARD_PASS_PROMPT, "pass12345678")];
    let run = run(&["forward_pass"], &request("alice"), steps, &daemon);
    assert_eq!(run.verdict.outcome, Outcome::Success);
    assert_eq!(
        candidates_sent(&daemon),
        [["345678", "2345678", "12345678"]]
    );
    assert_eq!(forwarded(&run), Some("pass"));
}

#[test]
fn backup_and_temporary_codes_with_or_without_dashes() {
    for (answer, code, password) in [
        ("pw12345-67890", "12345-67890", "pw"),
        ("pw1234567890", "1234567890", "pw"),
        ("pw1234-5678-9012", "1234-5678-9012", "pw"),
        ("pw123456789012", "123456789012", "pw"),
    ] {
        let readings = forward_pass_readings(answer);
        let index = readings
            .iter()
            .position(|reading| *reading == (password, code))
            .unwrap_or_else(|| panic!("{answer}: {readings:?}"));
        let daemon = FakeDaemon::prompting(never_verify)
            .with_verify_any(accepted_at(i32::try_from(index).unwrap()));
        let steps = vec![secret(FORWARD_PASS_PROMPT, answer)];
        let run = run(&["forward_pass"], &request("alice"), steps, &daemon);
        assert_eq!(run.verdict.outcome, Outcome::Success, "{answer}");
        assert_eq!(forwarded(&run), Some(password), "{answer}");
    }
}

#[test]
fn a_wrong_code_passes_the_answer_on_as_typed() {
    let daemon = FakeDaemon::prompting(never_verify).with_verify_any(none_accepted());
    let steps = vec![
        secret(FORWARD_PASS_PROMPT, "pass word 654321"),
        error(WRONG),
    ];
    let run = run(&["forward_pass"], &request("alice"), steps, &daemon);
    assert_eq!(run.verdict.outcome, Outcome::AuthErr);
    assert_eq!(candidates_sent(&daemon), [["654321"]]);
    assert_eq!(forwarded(&run), Some("pass word 654321"));
}

#[test]
fn an_answer_without_a_code_is_a_wrong_code_and_passed_on() {
    let daemon = FakeDaemon::prompting(never_verify);
    let steps = vec![secret(FORWARD_PASS_PROMPT, "hunter2"), error(WRONG)];
    let run = run(&["forward_pass"], &request("alice"), steps, &daemon);
    assert_eq!(run.verdict.outcome, Outcome::AuthErr);
    assert_eq!(forwarded(&run), Some("hunter2"));
}

#[test]
fn an_accepted_index_out_of_range_denies() {
    for index in [-1, 2, i32::MAX] {
        let daemon = FakeDaemon::prompting(never_verify).with_verify_any(accepted_at(index));
        let steps = vec![
            secret(FORWARD_PASS_PROMPT, "hunter2123456"),
            error(crate::messages::FAILED),
        ];
        let run = run(&["forward_pass"], &request("alice"), steps, &daemon);
        assert_eq!(run.verdict.outcome, Outcome::AuthErr, "{index}");
        assert_eq!(forwarded(&run), Some("hunter2123456"));
    }
}

#[test]
fn daemon_errors_are_as_for_verify() {
    let daemon = FakeDaemon::prompting(never_verify).with_verify_any(unreachable_daemon());
    let steps = vec![
        secret(FORWARD_PASS_PROMPT, "hunter2123456"),
        error(UNAVAILABLE),
    ];
    let run = run(&["forward_pass"], &request("alice"), steps, &daemon);
    assert_eq!(run.verdict.outcome, Outcome::AuthInfoUnavail);
}

#[test]
fn an_invalid_user_name_looks_the_same() {
    let daemon = FakeDaemon::new(|| panic!("no plan for an invalid name"), never_verify);
    let steps = vec![secret(FORWARD_PASS_PROMPT, "hunter2123456"), error(WRONG)];
    let run = run(&["forward_pass"], &request("bad/name"), steps, &daemon);
    assert_eq!(run.verdict.outcome, Outcome::AuthErr);
    assert_eq!(forwarded(&run), Some("hunter2123456"));
}

#[test]
fn readings() {
    assert_eq!(
        forward_pass_readings("hunter2123456"),
        [("hunter2", "123456"), ("hunter", "2123456")]
    );
    assert_eq!(forward_pass_readings("123456"), [("", "123456")]);
    assert_eq!(forward_pass_readings("pw 123456"), [("pw ", "123456")]);
    for none in ["12345", "hunter2", "hunter12345a", "123456 ", "", "ab€1234"] {
        assert!(forward_pass_readings(none).is_empty(), "{none:?}");
    }
    assert_eq!(
        forward_pass_readings("pässword123456"),
        [("pässword", "123456")]
    );
}
