//! The login flow, driven by a scripted conversation and a fake daemon.
//!
//! The script lists every prompt and message the user must see, in order, with the answers;
//! anything else, or anything left over, fails the test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::Duration;

use time::UtcOffset;
use twofactor_proto::{
    self as proto, LoginAction, LoginContext, LoginEnrollment, LoginPlan, VerifyAnyReply,
    VerifyOutcome, VerifyReply,
};
use zeroize::Zeroizing;

use crate::args::{self, Args};
use crate::client::ClientError;
use crate::flow::{ConvError, Conversation, DaemonClient, Outcome, Request, Verdict, authenticate};
use crate::log::{Level, Log};

/// `forward_pass` with every kind of code.
mod forward_pass;
/// Enrollment at login, codes sent by another channel, and what follows an accepted code.
mod lifecycle;
/// `prompt_after_notices`: one more prompt after messages that would follow the last one.
mod notices;
/// `require_publickey`: what sshd's `SSH_AUTH_INFO_0` lets through.
mod publickey;
/// `tries=`, replayed codes.
mod tries;

// ---------------------------------------------------------------------------------------------
// The scripted conversation

#[derive(Debug)]
enum Step {
    /// An echo-off prompt with this text, answered so.
    Secret(&'static str, Answer),
    /// An echo-on prompt with this text, answered so.
    Visible(&'static str, Answer),
    Info(String),
    /// An info message that `check` accepts (`what` names it in failures).
    InfoThat(&'static str, fn(&str) -> bool),
    Error(String),
}

#[derive(Debug, Clone)]
enum Answer {
    Text(&'static str),
    Nothing,
    Fails,
}

fn secret(prompt: &'static str, answer: &'static str) -> Step {
    Step::Secret(prompt, Answer::Text(answer))
}

fn code(answer: &'static str) -> Step {
    secret(crate::messages::CODE_PROMPT, answer)
}

fn info(text: impl Into<String>) -> Step {
    Step::Info(text.into())
}

fn error(text: impl Into<String>) -> Step {
    Step::Error(text.into())
}

struct Script {
    steps: VecDeque<Step>,
}

impl Script {
    fn new(steps: Vec<Step>) -> Self {
        Self {
            steps: steps.into(),
        }
    }

    fn next(&mut self, what: &str) -> Step {
        self.steps
            .pop_front()
            .unwrap_or_else(|| panic!("unexpected {what}: the script has ended"))
    }

    fn answer(answer: &Answer) -> Result<Option<Zeroizing<String>>, ConvError> {
        match answer {
            Answer::Text(text) => Ok(Some(Zeroizing::new((*text).to_owned()))),
            Answer::Nothing => Ok(None),
            Answer::Fails => Err(ConvError("scripted failure".into())),
        }
    }
}

impl Conversation for Script {
    fn prompt(&mut self, text: &str, echo: bool) -> Result<Option<Zeroizing<String>>, ConvError> {
        let what = format!("prompt {text:?} (echo {echo})");
        match self.next(&what) {
            Step::Secret(expected, answer) if !echo && expected == text => Self::answer(&answer),
            Step::Visible(expected, answer) if echo && expected == text => Self::answer(&answer),
            step => panic!("expected {step:?}, got {what}"),
        }
    }

    fn info(&mut self, text: &str) {
        match self.next(&format!("info {text:?}")) {
            Step::Info(expected) if expected == text => {}
            Step::InfoThat(what, check) => assert!(check(text), "expected {what}, got {text:?}"),
            step => panic!("expected {step:?}, got info {text:?}"),
        }
    }

    fn error(&mut self, text: &str) {
        match self.next(&format!("error {text:?}")) {
            Step::Error(expected) if expected == text => {}
            step => panic!("expected {step:?}, got error {text:?}"),
        }
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(
                self.steps.is_empty(),
                "the flow ended before these steps: {:?}",
                self.steps
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The fake daemon

#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    LoginPlan(String, LoginContext),
    Verify(String, String, LoginContext),
    VerifyAny(String, Vec<String>, LoginContext),
    BeginLoginEnrollment(String, LoginContext),
    /// User, token, code.
    ConfirmLoginEnrollment(String, String, String, LoginContext),
    SendCode(String, LoginContext),
    /// User, code.
    RegenerateBackupCodes(String, String),
}

type PlanAnswer = fn() -> Result<LoginPlan, ClientError>;
type VerifyAnswer = fn() -> Result<VerifyReply, ClientError>;

/// Answers for one kind of call, in order; a call beyond them fails the test.
type Answers<T> = RefCell<VecDeque<Result<T, ClientError>>>;

struct FakeDaemon {
    plan: PlanAnswer,
    verify: VerifyAnswer,
    /// Answers to `Verify` before `verify` takes over, in order.
    verify_first: Answers<VerifyReply>,
    verify_any: Answers<VerifyAnyReply>,
    begin: Answers<LoginEnrollment>,
    confirm: Answers<Vec<String>>,
    send: Answers<u64>,
    regenerate: Answers<Vec<String>>,
    calls: RefCell<Vec<Call>>,
}

impl FakeDaemon {
    fn new(plan: PlanAnswer, verify: VerifyAnswer) -> Self {
        Self {
            plan,
            verify,
            verify_first: RefCell::default(),
            verify_any: RefCell::default(),
            begin: RefCell::default(),
            confirm: RefCell::default(),
            send: RefCell::default(),
            regenerate: RefCell::default(),
            calls: RefCell::new(Vec::new()),
        }
    }

    fn with_verify_first(self, answers: Vec<Result<VerifyReply, ClientError>>) -> Self {
        self.verify_first.borrow_mut().extend(answers);
        self
    }

    fn with_verify_any(self, answer: Result<VerifyAnyReply, ClientError>) -> Self {
        self.verify_any.borrow_mut().push_back(answer);
        self
    }

    fn with_begin(self, answer: Result<LoginEnrollment, ClientError>) -> Self {
        self.begin.borrow_mut().push_back(answer);
        self
    }

    fn with_confirm(self, answers: Vec<Result<Vec<String>, ClientError>>) -> Self {
        self.confirm.borrow_mut().extend(answers);
        self
    }

    fn with_send(self, answer: Result<u64, ClientError>) -> Self {
        self.send.borrow_mut().push_back(answer);
        self
    }

    fn with_regenerate(self, answer: Result<Vec<String>, ClientError>) -> Self {
        self.regenerate.borrow_mut().push_back(answer);
        self
    }

    fn next<T>(answers: &Answers<T>, what: &str) -> Result<T, ClientError> {
        answers
            .borrow_mut()
            .pop_front()
            .unwrap_or_else(|| panic!("unexpected {what} call"))
    }

    /// Prompts, and `verify` answers.
    fn prompting(verify: VerifyAnswer) -> Self {
        Self::new(|| Ok(plan(LoginAction::Prompt, "")), verify)
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    /// The codes `Verify` was called with.
    fn verified_codes(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|call| match call {
                Call::Verify(_, code, _) => Some(code),
                _ => None,
            })
            .collect()
    }
}

impl DaemonClient for FakeDaemon {
    async fn login_plan(
        &self,
        user: &str,
        context: &LoginContext,
    ) -> Result<LoginPlan, ClientError> {
        self.calls
            .borrow_mut()
            .push(Call::LoginPlan(user.into(), context.clone()));
        (self.plan)()
    }

    async fn verify(
        &self,
        user: &str,
        code: &str,
        context: &LoginContext,
    ) -> Result<VerifyReply, ClientError> {
        self.calls
            .borrow_mut()
            .push(Call::Verify(user.into(), code.into(), context.clone()));
        let queued = self.verify_first.borrow_mut().pop_front();
        queued.unwrap_or_else(self.verify)
    }

    async fn verify_any(
        &self,
        user: &str,
        codes: &[&str],
        context: &LoginContext,
    ) -> Result<VerifyAnyReply, ClientError> {
        self.calls.borrow_mut().push(Call::VerifyAny(
            user.into(),
            codes.iter().map(|code| (*code).to_owned()).collect(),
            context.clone(),
        ));
        Self::next(&self.verify_any, "VerifyAny")
    }

    async fn begin_login_enrollment(
        &self,
        user: &str,
        context: &LoginContext,
    ) -> Result<LoginEnrollment, ClientError> {
        self.calls
            .borrow_mut()
            .push(Call::BeginLoginEnrollment(user.into(), context.clone()));
        Self::next(&self.begin, "BeginLoginEnrollment")
    }

    async fn confirm_login_enrollment(
        &self,
        user: &str,
        token: &str,
        code: &str,
        context: &LoginContext,
    ) -> Result<Vec<String>, ClientError> {
        self.calls.borrow_mut().push(Call::ConfirmLoginEnrollment(
            user.into(),
            token.into(),
            code.into(),
            context.clone(),
        ));
        Self::next(&self.confirm, "ConfirmLoginEnrollment")
    }

    async fn send_code(&self, user: &str, context: &LoginContext) -> Result<u64, ClientError> {
        self.calls
            .borrow_mut()
            .push(Call::SendCode(user.into(), context.clone()));
        Self::next(&self.send, "SendCode")
    }

    async fn regenerate_backup_codes(
        &self,
        user: &str,
        code: &str,
    ) -> Result<Vec<String>, ClientError> {
        self.calls
            .borrow_mut()
            .push(Call::RegenerateBackupCodes(user.into(), code.into()));
        Self::next(&self.regenerate, "RegenerateBackupCodes")
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(
                self.begin.borrow().is_empty(),
                "unused BeginLoginEnrollment answers"
            );
            assert!(
                self.confirm.borrow().is_empty(),
                "unused ConfirmLoginEnrollment answers"
            );
            assert!(self.send.borrow().is_empty(), "unused SendCode answers");
            assert!(
                self.verify_first.borrow().is_empty() && self.verify_any.borrow().is_empty(),
                "unused Verify or VerifyAny answers"
            );
            assert!(
                self.regenerate.borrow().is_empty(),
                "unused RegenerateBackupCodes answers"
            );
        }
    }
}

fn plan(action: LoginAction, message: &str) -> LoginPlan {
    LoginPlan {
        action,
        message: message.into(),
        can_send_code: false,
        keep_connection: false,
    }
}

fn reply(outcome: VerifyOutcome) -> VerifyReply {
    VerifyReply {
        outcome,
        backup_code_used: false,
        backup_codes_left: 10,
        clock_skew_seconds: 0,
        retry_after_seconds: 0,
        failures_since_success: 0,
        last_failure_time: 0,
        temporary_code_used: false,
        offer_new_backup_codes: false,
        code_replayed: false,
    }
}

fn accepted() -> Result<VerifyReply, ClientError> {
    Ok(reply(VerifyOutcome::Accepted))
}

fn rejected() -> Result<VerifyReply, ClientError> {
    Ok(reply(VerifyOutcome::Rejected))
}

fn never_verify() -> Result<VerifyReply, ClientError> {
    panic!("Verify must not be called here")
}

fn unreachable_daemon<T>() -> Result<T, ClientError> {
    Err(ClientError::Unreachable("cannot connect".into()))
}

// ---------------------------------------------------------------------------------------------
// The log

#[derive(Default)]
struct RecordedLog(Vec<(Level, String)>);

impl Log for RecordedLog {
    fn log(&mut self, level: Level, message: &str) {
        self.0.push((level, message.to_owned()));
    }
}

impl RecordedLog {
    fn contains(&self, level: Level, part: &str) -> bool {
        self.0
            .iter()
            .any(|(l, message)| *l == level && message.contains(part))
    }

    fn assert_never_mentions(&self, secrets: &[&str]) {
        for (_, message) in &self.0 {
            for secret in secrets {
                assert!(!message.contains(secret), "{message:?} leaks {secret:?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running the flow

fn context() -> LoginContext {
    LoginContext {
        service: "sshd".into(),
        rhost: "192.0.2.7".into(),
        tty: "ssh".into(),
    }
}

fn request(user: &str) -> Request {
    Request {
        user: user.into(),
        context: context(),
        authtok: None,
        local_offset: |_| UtcOffset::UTC,
        silent: false,
        ssh_auth_info: None,
    }
}

fn with_authtok(user: &str, authtok: &str) -> Request {
    Request {
        authtok: Some(Zeroizing::new(authtok.into())),
        ..request(user)
    }
}

fn module_args(raw: &[&str]) -> Args {
    let (args, warnings) = args::parse(raw.iter().copied());
    assert!(warnings.is_empty(), "{warnings:?}");
    args
}

struct Run {
    verdict: Verdict,
    log: RecordedLog,
}

fn run(raw_args: &[&str], request: &Request, steps: Vec<Step>, daemon: &FakeDaemon) -> Run {
    let args = module_args(raw_args);
    let mut script = Script::new(steps);
    let mut log = RecordedLog::default();
    let verdict = zbus::block_on(authenticate(&args, request, &mut script, daemon, &mut log));
    drop(script); // checks that every step was used
    Run { verdict, log }
}

fn outcome(raw_args: &[&str], user: &str, steps: Vec<Step>, daemon: &FakeDaemon) -> Outcome {
    let run = run(raw_args, &request(user), steps, daemon);
    assert!(run.verdict.forward_authtok.is_none());
    run.verdict.outcome
}

const WRONG: &str = "Wrong verification code.";
const UNAVAILABLE: &str =
    "Two-factor authentication is unavailable right now. Try again later, or ask an administrator.";

// ---------------------------------------------------------------------------------------------
// The plan

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
