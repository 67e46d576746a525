//! Codes sent by another channel, and what follows an accepted code.

use super::*;

// ---------------------------------------------------------------------------------------------
// Codes by another channel

fn sending() -> FakeDaemon {
    sending_with(accepted)
}

fn sending_with(verify: VerifyAnswer) -> FakeDaemon {
    FakeDaemon::new(
        || {
            Ok(LoginPlan {
                can_send_code: true,
                ..plan(LoginAction::Prompt, "")
            })
        },
        verify,
    )
}

#[test]
fn an_empty_answer_has_a_code_sent_then_asks_again() {
    let daemon = sending().with_send(Ok(300));
    let steps = vec![secret(SEND_PROMPT, ""), info(SENT), code("654321")];
    let run = run(&[], &request("alice"), steps, &daemon);
    assert_eq!(run.verdict.outcome, Outcome::Success);
    assert_eq!(
        daemon.calls(),
        vec![
            Call::LoginPlan("alice".into(), context()),
            Call::SendCode("alice".into(), context()),
            Call::Verify("alice".into(), "654321".into(), context()),
        ]
    );
    assert!(
        run.log
            .contains(Level::Info, "a code was sent to \"alice\"")
    );
    run.log.assert_never_mentions(&["654321"]);
}

#[test]
fn an_empty_answer_after_sending_is_denied() {
    let daemon = sending_with(never_verify).with_send(Ok(300));
    let steps = vec![
        secret(SEND_PROMPT, " "),
        info(SENT),
        code(""),
        error(NO_CODE),
    ];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::AuthErr);
    assert_eq!(daemon.calls().len(), 2, "one SendCode, no Verify");
}

#[test]
fn a_typed_code_is_verified_without_sending() {
    let daemon = sending();
    let steps = vec![secret(SEND_PROMPT, "123456")];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::Success);
    assert_eq!(daemon.verified_codes(), vec!["123456"]);
}

#[test]
fn without_can_send_code_an_empty_answer_is_denied() {
    let daemon = FakeDaemon::prompting(never_verify);
    let steps = vec![code(""), error(NO_CODE)];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::AuthErr);
}

#[test]
fn sending_failures() {
    let daemon =
        sending_with(never_verify).with_send(Err(ClientError::Daemon(proto::Error::Locked(
            "3 codes were sent in the last 15 minutes: use one of them, or wait".into(),
        ))));
    let steps = vec![
        secret(SEND_PROMPT, ""),
        error(
            "No code could be sent: 3 codes were sent in the last 15 minutes: use one of them, or wait.",
        ),
    ];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::AuthErr);

    let daemon = sending_with(never_verify).with_send(Err(ClientError::Daemon(
        proto::Error::PolicyForbids("off".into()),
    )));
    let steps = vec![secret(SEND_PROMPT, ""), error(messages::SEND_FAILED)];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::AuthErr);

    let daemon = sending_with(never_verify).with_send(Err(ClientError::Daemon(
        proto::Error::Internal("the code could not be sent".into()),
    )));
    let steps = vec![secret(SEND_PROMPT, ""), error(messages::SEND_UNAVAILABLE)];
    assert_eq!(
        outcome(&[], "alice", steps, &daemon),
        Outcome::AuthInfoUnavail
    );

    let daemon =
        sending_with(never_verify).with_send(Err(ClientError::Timeout(Duration::from_secs(10))));
    let steps = vec![secret(SEND_PROMPT, ""), error(UNAVAILABLE)];
    assert_eq!(
        outcome(&["unavailable=ignore"], "alice", steps, &daemon),
        Outcome::AuthInfoUnavail
    );
}

#[test]
fn a_custom_prompt_is_kept_and_an_empty_answer_still_sends() {
    let daemon = sending().with_send(Ok(300));
    let steps = vec![secret("Code: ", ""), info(SENT), secret("Code: ", "654321")];
    assert_eq!(
        outcome(&["prompt=Code: "], "alice", steps, &daemon),
        Outcome::Success
    );
}

#[test]
fn sending_is_not_offered_without_a_code_prompt() {
    // forward_pass: an answer without a code is a wrong code, as before.
    let daemon = sending_with(never_verify);
    let steps = vec![
        secret("Password & verification code: ", "hunter2"),
        error(WRONG),
    ];
    let forwarded = run(&["forward_pass"], &request("alice"), steps, &daemon);
    assert_eq!(forwarded.verdict.outcome, Outcome::AuthErr);
    // use_first_pass: never a prompt, so never a send.
    let daemon = sending_with(never_verify);
    let steps = vec![error(NO_CODE)];
    assert_eq!(
        outcome(&["use_first_pass"], "alice", steps, &daemon),
        Outcome::AuthErr
    );
    // try_first_pass with a code in PAM_AUTHTOK: no prompt at all.
    let daemon = sending();
    let run = run(
        &["try_first_pass"],
        &with_authtok("alice", "123456"),
        vec![],
        &daemon,
    );
    assert_eq!(run.verdict.outcome, Outcome::Success);
}

#[test]
fn try_first_pass_prompting_may_send() {
    let daemon = sending().with_send(Ok(300));
    let steps = vec![secret(SEND_PROMPT, ""), info(SENT), code("654321")];
    let run = run(
        &["try_first_pass"],
        &with_authtok("alice", "the password"),
        steps,
        &daemon,
    );
    assert_eq!(run.verdict.outcome, Outcome::Success);
}

// ---------------------------------------------------------------------------------------------
// After an accepted code

#[test]
fn a_temporary_code_tells_the_user_to_enroll_a_new_device() {
    let daemon = FakeDaemon::prompting(|| {
        Ok(VerifyReply {
            temporary_code_used: true,
            backup_codes_left: 0,
            ..reply(VerifyOutcome::Accepted)
        })
    });
    let steps = vec![code("1234-5678-9012"), info(messages::TEMPORARY_CODE_USED)];
    let run = run(&[], &request("alice"), steps, &daemon);
    assert_eq!(run.verdict.outcome, Outcome::Success);
    assert!(messages::TEMPORARY_CODE_USED.contains("twofactor enroll --replace"));
    assert!(run.log.contains(Level::Info, "accepted temporary code"));
    run.log
        .assert_never_mentions(&["1234-5678-9012", "123456789012"]);
}

fn last_backup_code_used() -> Result<VerifyReply, ClientError> {
    Ok(VerifyReply {
        backup_code_used: true,
        backup_codes_left: 0,
        offer_new_backup_codes: true,
        ..reply(VerifyOutcome::Accepted)
    })
}

fn totp_with_none_left() -> Result<VerifyReply, ClientError> {
    Ok(VerifyReply {
        backup_codes_left: 0,
        offer_new_backup_codes: true,
        ..reply(VerifyOutcome::Accepted)
    })
}

#[test]
fn new_backup_codes_offered_and_accepted() {
    for yes in ["y", "Y", " yes ", "YES"] {
        let daemon =
            FakeDaemon::prompting(totp_with_none_left).with_regenerate(Ok(new_backup_codes()));
        let steps = vec![
            code("123456"),
            Step::Visible(OFFER, Answer::Text(yes)),
            the_new_backup_codes(),
            pressed_enter(STORED),
        ];
        let run = run(&[], &request("alice"), steps, &daemon);
        assert_eq!(run.verdict.outcome, Outcome::Success, "{yes:?}");
        assert_eq!(
            daemon.calls().last(),
            Some(&Call::RegenerateBackupCodes("alice".into(), String::new()))
        );
        let codes = new_backup_codes();
        let secrets: Vec<&str> = codes.iter().map(String::as_str).collect();
        run.log.assert_never_mentions(&secrets);
    }
}

#[test]
fn new_backup_codes_offered_and_declined() {
    for no in ["", "n", "no", "later", "yes please"] {
        let daemon = FakeDaemon::prompting(totp_with_none_left);
        let steps = vec![
            code("123456"),
            Step::Visible(OFFER, Answer::Text(no)),
            info(messages::NO_NEW_BACKUP_CODES),
        ];
        assert_eq!(
            outcome(&[], "alice", steps, &daemon),
            Outcome::Success,
            "{no:?}"
        );
        assert_eq!(
            daemon.calls().len(),
            2,
            "no RegenerateBackupCodes for {no:?}"
        );
    }
    assert_eq!(
        messages::NO_NEW_BACKUP_CODES,
        "Run `twofactor backup-codes` to create new ones."
    );
}

#[test]
fn the_offer_follows_the_last_backup_code() {
    let daemon =
        FakeDaemon::prompting(last_backup_code_used).with_regenerate(Ok(new_backup_codes()));
    let steps = vec![
        code("12345-67890"),
        info(messages::backup_code_used(0)),
        Step::Visible(OFFER, Answer::Text("y")),
        the_new_backup_codes(),
        pressed_enter(STORED),
    ];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::Success);
}

#[test]
fn a_failed_offer_never_fails_the_login() {
    let daemon = FakeDaemon::prompting(totp_with_none_left).with_regenerate(Err(
        ClientError::Daemon(proto::Error::Internal("disk".into())),
    ));
    let steps = vec![
        code("123456"),
        Step::Visible(OFFER, Answer::Text("y")),
        error(messages::NEW_BACKUP_CODES_FAILED),
    ];
    let run = run(&[], &request("alice"), steps, &daemon);
    assert_eq!(run.verdict.outcome, Outcome::Success);
    assert!(
        run.log
            .contains(Level::Error, "RegenerateBackupCodes for \"alice\"")
    );

    let daemon = FakeDaemon::prompting(totp_with_none_left);
    let steps = vec![code("123456"), Step::Visible(OFFER, Answer::Fails)];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::Success);

    let daemon = FakeDaemon::prompting(totp_with_none_left);
    let steps = vec![
        code("123456"),
        Step::Visible(OFFER, Answer::Nothing),
        info(messages::NO_NEW_BACKUP_CODES),
    ];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::Success);
}

#[test]
fn no_offer_prompt_where_no_prompt_is_allowed() {
    let daemon = FakeDaemon::prompting(totp_with_none_left);
    let first_pass = run(
        &["use_first_pass"],
        &with_authtok("alice", "123456"),
        vec![info(messages::NO_BACKUP_CODES_LEFT)],
        &daemon,
    );
    assert_eq!(first_pass.verdict.outcome, Outcome::Success);
    let daemon = FakeDaemon::prompting(never_verify).with_verify_any(Ok(VerifyAnyReply {
        reply: totp_with_none_left().unwrap(),
        accepted_index: 0,
    }));
    let steps = vec![
        secret("Password & verification code: ", "pw123456"),
        info(messages::NO_BACKUP_CODES_LEFT),
    ];
    let run = run(&["forward_pass"], &request("alice"), steps, &daemon);
    assert_eq!(run.verdict.outcome, Outcome::Success);
}

#[test]
fn no_offer_under_pam_silent() {
    let daemon = FakeDaemon::prompting(totp_with_none_left);
    let silent = Request {
        silent: true,
        ..request("alice")
    };
    let steps = vec![code("123456"), info(messages::NO_BACKUP_CODES_LEFT)];
    assert_eq!(
        run(&[], &silent, steps, &daemon).verdict.outcome,
        Outcome::Success
    );
}

#[test]
fn nothing_extra_after_a_rejected_code() {
    let daemon = FakeDaemon::prompting(|| {
        Ok(VerifyReply {
            temporary_code_used: true,
            offer_new_backup_codes: true,
            ..reply(VerifyOutcome::Rejected)
        })
    });
    let steps = vec![code("123456"), error(WRONG)];
    assert_eq!(
        outcome(&["tries=1"], "alice", steps, &daemon),
        Outcome::AuthErr
    );
}

// ---------------------------------------------------------------------------------------------
// The texts

#[test]
fn the_offer_text_without_a_qr_code() {
    let Ok(LoginEnrollment { offer, .. }) = enrollment() else {
        unreachable!()
    };
    let text = messages::enrollment_offer("Set it up now.", &offer, None);
    assert_eq!(
        text.as_str(),
        "Set it up now.\n\
         \n\
         Add this account to your authenticator app:\n  \
         Account: host.example.org:alice@host.example.org\n  \
         Key:     JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP\n  \
         Type:    time-based, SHA1, 6 digits, every 30 seconds\n\
         \n\
         Then enter the code the app shows, within 10 minutes."
    );
}

#[test]
fn the_offer_text_puts_the_qr_code_after_the_first_line() {
    // sshd's client prefixes the prompt's first line with "(user@host) ": the drawing must
    // not start there.
    let Ok(LoginEnrollment { offer, .. }) = enrollment() else {
        unreachable!()
    };
    let drawing = twofactor_qr::render_qr(URI, twofactor_qr::Background::Dark).unwrap();
    let text = messages::enrollment_offer(ENROLL_INTRO, &offer, Some(&drawing));
    let first = text.lines().next().unwrap();
    assert_eq!(first, ENROLL_INTRO);
    assert!(text.contains(&format!("app:\n\n{}\n\nOr add", drawing.as_str())));
}

#[test]
fn backup_codes_two_to_a_line() {
    let text = messages::backup_codes("Header:", &backup_codes());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Header:");
    assert_eq!(lines[2], "  12340-67890   12341-67891");
    assert_eq!(lines[6], "  12348-67898   12349-67899");
    assert!(text.ends_with("they are not shown again."));
    let odd = messages::backup_codes("H", &backup_codes()[..3]);
    assert!(odd.contains("\n  12342-67892\n"), "{}", odd.as_str());
}

#[test]
fn small_texts() {
    assert_eq!(messages::code_sent(300), SENT);
    assert!(messages::is_yes(" Yes\n"));
    assert!(!messages::is_yes("yess"));
    assert_eq!(messages::send_refused(" \n"), messages::SEND_FAILED);
    assert_eq!(
        messages::send_refused("evil\nline."),
        "No code could be sent: evil line."
    );
}
