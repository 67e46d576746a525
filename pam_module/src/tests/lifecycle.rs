//! Enrollment at login, grace periods, codes sent by another channel, and what follows an
//! accepted code, through the scripted conversation and the fake daemon.

use twofactor_proto::EnrollmentOffer;

use super::*;
use crate::messages;

const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const URI: &str = "otpauth://totp/host.example.org:alice%40host.example.org?\
    secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=host.example.org&algorithm=SHA1&\
    digits=6&period=30";
const TOKEN: &str = "00112233445566778899aabbccddeeff";
const ENROLL_INTRO: &str = "Two-factor authentication is required for alice (default). Set it up now with an authenticator app on your phone.";
const ENROLL_PROMPT: &str = "Code from your authenticator app: ";
const STORED: &str = "Press Enter once you have stored your backup codes: ";
const OFFER: &str = "You have no backup codes left. Create a new set now? [y/N] ";
const SEND_PROMPT: &str = crate::messages::SEND_PROMPT;
const SENT: &str = "A code was sent to you; it is valid for 5 minutes.";
const NO_CODE: &str = "No verification code entered.";
const FAILED: &str = "Two-factor authentication failed.";

fn enrollment() -> Result<LoginEnrollment, ClientError> {
    Ok(LoginEnrollment {
        token: TOKEN.into(),
        offer: EnrollmentOffer {
            otpauth_uri: URI.into(),
            secret_base32: SECRET.into(),
            label: "host.example.org:alice@host.example.org".into(),
            issuer: "host.example.org".into(),
            algorithm: twofactor_proto::Algorithm::Sha1.into(),
            digits: 6,
            period: 30,
            expires_in_seconds: 600,
        },
    })
}

fn backup_codes() -> Vec<String> {
    (0..10).map(|i| format!("1234{i}-6789{i}")).collect()
}

fn new_backup_codes() -> Vec<String> {
    (0..10).map(|i| format!("5555{i}-1111{i}")).collect()
}

fn wrong_code() -> Result<Vec<String>, ClientError> {
    Err(ClientError::Daemon(proto::Error::WrongCode(
        "the code is not valid".into(),
    )))
}

/// The daemon says Enroll, with its message.
fn enrolling() -> FakeDaemon {
    FakeDaemon::new(|| Ok(plan(LoginAction::Enroll, ENROLL_INTRO)), never_verify)
}

/// The one message before the first prompt: the daemon's text, the QR code, the key.
fn the_offer() -> Step {
    Step::InfoThat("the enrollment offer", |text| {
        let drawing = twofactor_qr::render_qr(URI, twofactor_qr::Background::Dark).unwrap();
        text.starts_with(ENROLL_INTRO)
            && text.contains(drawing.as_str())
            && text.contains("Key:     JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP\n")
            && text.contains("Account: host.example.org:alice@host.example.org")
            && text.contains("SHA1, 6 digits, every 30 seconds")
            && text.ends_with("within 10 minutes.")
    })
}

fn the_backup_codes() -> Step {
    Step::InfoThat("the backup codes of the enrollment", |text| {
        text.starts_with(messages::ENROLLED)
            && backup_codes()
                .iter()
                .all(|code| text.contains(code.as_str()))
    })
}

fn the_new_backup_codes() -> Step {
    Step::InfoThat("the new backup codes", |text| {
        text.starts_with(messages::NEW_BACKUP_CODES)
            && new_backup_codes()
                .iter()
                .all(|code| text.contains(code.as_str()))
    })
}

fn enroll_code(answer: &'static str) -> Step {
    secret(ENROLL_PROMPT, answer)
}

fn pressed_enter(prompt: &'static str) -> Step {
    Step::Visible(prompt, Answer::Text(""))
}

fn confirms(daemon: &FakeDaemon) -> Vec<(String, String)> {
    daemon
        .calls()
        .into_iter()
        .filter_map(|call| match call {
            Call::ConfirmLoginEnrollment(user, token, code, context) => {
                assert_eq!(user, "alice");
                assert_eq!(context, super::context());
                Some((token, code))
            }
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Enrollment at login

/// Every test here runs on a pam.d line that allows enrollment at login, plus its own args.
fn with_enroll<'a>(raw_args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["enroll_at_login"];
    all.extend_from_slice(raw_args);
    all
}

fn run(raw_args: &[&str], request: &Request, steps: Vec<Step>, daemon: &FakeDaemon) -> Run {
    super::run(&with_enroll(raw_args), request, steps, daemon)
}

fn outcome(raw_args: &[&str], user: &str, steps: Vec<Step>, daemon: &FakeDaemon) -> Outcome {
    super::outcome(&with_enroll(raw_args), user, steps, daemon)
}

#[test]
fn enrollment_needs_the_module_argument() {
    let daemon = enrolling();
    let steps = vec![error(messages::ENROLL_NOT_HERE)];
    let run = super::run(&[], &request("alice"), steps, &daemon);
    assert_eq!(run.verdict.outcome, Outcome::AuthErr);
    assert_eq!(daemon.calls(), [Call::LoginPlan("alice".into(), context())]);
}

#[test]
fn enrollment_succeeds_after_one_wrong_code() {
    let daemon = enrolling()
        .with_begin(enrollment())
        .with_confirm(vec![wrong_code(), Ok(backup_codes())]);
    let steps = vec![
        the_offer(),
        enroll_code("111111"),
        error(WRONG),
        enroll_code(" 222222 "),
        the_backup_codes(),
        pressed_enter(STORED),
    ];
    let run = run(&[], &request("alice"), steps, &daemon);
    assert_eq!(run.verdict.outcome, Outcome::Success);
    assert_eq!(
        daemon.calls()[..2],
        [
            Call::LoginPlan("alice".into(), context()),
            Call::BeginLoginEnrollment("alice".into(), context()),
        ]
    );
    assert_eq!(
        confirms(&daemon),
        vec![
            (TOKEN.to_owned(), "111111".to_owned()),
            (TOKEN.to_owned(), "222222".to_owned()),
        ]
    );
    assert_eq!(
        daemon.calls().len(),
        4,
        "no Verify: the confirming code is the first use"
    );
    assert!(run.log.contains(Level::Info, "enrolled \"alice\" at login"));
    assert!(run.log.contains(Level::Notice, "wrong code 1 of 3"));
    let mut secrets = vec![SECRET, TOKEN, "111111", "222222"];
    let codes = backup_codes();
    secrets.extend(codes.iter().map(String::as_str));
    run.log.assert_never_mentions(&secrets);
}

#[test]
fn enrollment_fails_after_three_wrong_codes() {
    let daemon = enrolling().with_begin(enrollment()).with_confirm(vec![
        wrong_code(),
        wrong_code(),
        wrong_code(),
    ]);
    let steps = vec![
        the_offer(),
        enroll_code("111111"),
        error(WRONG),
        enroll_code("222222"),
        error(WRONG),
        enroll_code("333333"),
        error(WRONG),
        error(messages::ENROLL_GAVE_UP),
    ];
    let run = run(&[], &request("alice"), steps, &daemon);
    assert_eq!(run.verdict.outcome, Outcome::AuthErr);
    assert_eq!(confirms(&daemon).len(), 3);
    assert!(
        run.log
            .contains(Level::Notice, "3 wrong codes confirming the enrollment")
    );
}

#[test]
fn an_answer_that_is_no_code_is_a_wrong_try_without_the_daemon() {
    let daemon = enrolling()
        .with_begin(enrollment())
        .with_confirm(vec![Ok(backup_codes())]);
    let steps = vec![
        the_offer(),
        enroll_code("hunter2"),
        error(WRONG),
        enroll_code("123456"),
        the_backup_codes(),
        pressed_enter(STORED),
    ];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::Success);
    assert_eq!(confirms(&daemon), vec![(TOKEN.into(), "123456".into())]);
}

#[test]
fn an_empty_answer_abandons_the_enrollment() {
    let daemon = enrolling().with_begin(enrollment());
    let steps = vec![the_offer(), enroll_code(""), error(NO_CODE)];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::AuthErr);
    assert!(confirms(&daemon).is_empty());
}

#[test]
fn begin_login_enrollment_errors_deny() {
    // A typed refusal (the plan changed meanwhile): denied.
    let daemon = enrolling().with_begin(Err(ClientError::Daemon(proto::Error::PolicyForbids(
        "enrollment at login does not apply here".into(),
    ))));
    let run = run(&[], &request("alice"), vec![error(FAILED)], &daemon);
    assert_eq!(run.verdict.outcome, Outcome::AuthErr);
    assert!(
        run.log
            .contains(Level::Error, "BeginLoginEnrollment for \"alice\"")
    );

    // The daemon could not be asked: unavailable, even with unavailable=ignore (the plan
    // was already answered).
    let failures: [fn() -> ClientError; 3] = [
        || ClientError::Unreachable("gone".into()),
        || ClientError::Timeout(Duration::from_secs(10)),
        || ClientError::Daemon(proto::Error::Internal("disk".into())),
    ];
    for failure in failures {
        for raw in [&[][..], &["unavailable=ignore"][..]] {
            let daemon = enrolling().with_begin(Err(failure()));
            assert_eq!(
                outcome(raw, "alice", vec![error(UNAVAILABLE)], &daemon),
                Outcome::AuthInfoUnavail
            );
        }
    }
}

#[test]
fn confirm_errors_other_than_a_wrong_code_end_the_enrollment() {
    let daemon = enrolling()
        .with_begin(enrollment())
        .with_confirm(vec![Err(ClientError::Daemon(
            proto::Error::NoPendingEnrollment("expired".into()),
        ))]);
    let steps = vec![
        the_offer(),
        enroll_code("123456"),
        error(messages::ENROLL_EXPIRED),
    ];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::AuthErr);

    let daemon = enrolling()
        .with_begin(enrollment())
        .with_confirm(vec![Err(ClientError::Bus("connection reset".into()))]);
    let steps = vec![the_offer(), enroll_code("123456"), error(UNAVAILABLE)];
    assert_eq!(
        outcome(&["unavailable=ignore"], "alice", steps, &daemon),
        Outcome::AuthInfoUnavail
    );

    let daemon = enrolling()
        .with_begin(enrollment())
        .with_confirm(vec![Err(ClientError::Daemon(
            proto::Error::AlreadyEnrolled("enrolled meanwhile".into()),
        ))]);
    let steps = vec![the_offer(), enroll_code("123456"), error(FAILED)];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::AuthErr);
}

#[test]
fn enrollment_with_echo_code_shows_the_code() {
    let daemon = enrolling()
        .with_begin(enrollment())
        .with_confirm(vec![Ok(backup_codes())]);
    let steps = vec![
        the_offer(),
        Step::Visible(ENROLL_PROMPT, Answer::Text("123456")),
        the_backup_codes(),
        pressed_enter(STORED),
    ];
    assert_eq!(
        outcome(&["echo_code"], "alice", steps, &daemon),
        Outcome::Success
    );
}

#[test]
fn enrollment_with_try_first_pass_prompts() {
    let daemon = enrolling()
        .with_begin(enrollment())
        .with_confirm(vec![Ok(backup_codes())]);
    let steps = vec![
        the_offer(),
        enroll_code("123456"),
        the_backup_codes(),
        pressed_enter(STORED),
    ];
    let run = run(
        &["try_first_pass"],
        &with_authtok("alice", "the password"),
        steps,
        &daemon,
    );
    assert_eq!(run.verdict.outcome, Outcome::Success);
}

#[test]
fn the_login_succeeds_even_if_the_last_prompt_fails() {
    // The enrollment is stored and its code was right: the decision is made.
    let daemon = enrolling()
        .with_begin(enrollment())
        .with_confirm(vec![Ok(backup_codes())]);
    let steps = vec![
        the_offer(),
        enroll_code("123456"),
        the_backup_codes(),
        Step::Visible(STORED, Answer::Fails),
    ];
    let run = run(&[], &request("alice"), steps, &daemon);
    assert_eq!(run.verdict.outcome, Outcome::Success);
    assert!(
        run.log
            .contains(Level::Warning, "conversation failed after")
    );
}

#[test]
fn a_conversation_failure_during_enrollment_is_conv_err() {
    let daemon = enrolling().with_begin(enrollment());
    let steps = vec![the_offer(), Step::Secret(ENROLL_PROMPT, Answer::Fails)];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::ConvErr);
    let daemon = enrolling().with_begin(enrollment());
    let steps = vec![the_offer(), Step::Secret(ENROLL_PROMPT, Answer::Nothing)];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::AuthErr);
}

#[test]
fn no_enrollment_where_the_key_cannot_be_shown_or_no_prompt_is_allowed() {
    for raw in [&["use_first_pass"][..], &["forward_pass"][..]] {
        let daemon = enrolling();
        let run = run(
            raw,
            &with_authtok("alice", "123456"),
            vec![error(messages::ENROLL_NOT_HERE)],
            &daemon,
        );
        assert_eq!(run.verdict.outcome, Outcome::AuthErr, "{raw:?}");
        assert!(run.verdict.forward_authtok.is_none());
        assert_eq!(daemon.calls().len(), 1, "only LoginPlan with {raw:?}");
    }
    let daemon = enrolling();
    let silent = Request {
        silent: true,
        ..request("alice")
    };
    let run = run(
        &[],
        &silent,
        vec![error(messages::ENROLL_NOT_HERE)],
        &daemon,
    );
    assert_eq!(run.verdict.outcome, Outcome::AuthErr);
    assert!(run.log.contains(Level::Notice, "PAM_SILENT"));
}

#[test]
fn deny_is_still_denied() {
    // Where enrollment at login is not allowed (e.g. at_login_from), the daemon says Deny.
    let daemon = FakeDaemon::new(
        || {
            Ok(plan(
                LoginAction::Deny,
                "Two-factor authentication is required for alice (default) but is not set up.",
            ))
        },
        never_verify,
    );
    let steps = vec![error(
        "Two-factor authentication is required for alice (default) but is not set up.",
    )];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::AuthErr);
}

// ---------------------------------------------------------------------------------------------
// Grace period

#[test]
fn grace_period_shows_the_reminder_and_ignores() {
    let daemon = FakeDaemon::new(
        || {
            Ok(plan(
                LoginAction::Ignore,
                "Two-factor authentication will be required for alice from 2026-12-08 17:00 UTC. Set it up now with `twofactor enroll`.",
            ))
        },
        never_verify,
    );
    let steps = vec![info(
        "Two-factor authentication will be required for alice from 2026-12-08 17:00 UTC. Set it up now with `twofactor enroll`.",
    )];
    assert_eq!(outcome(&[], "alice", steps, &daemon), Outcome::Ignore);
    assert_eq!(daemon.calls().len(), 1);
}

/// Codes by another channel, and what follows an accepted code.
mod after;
