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

/// Module arguments and the fail-closed catch-all.
mod arguments;
/// Errors of every kind: never success.
mod failures;
/// `forward_pass` with every kind of code.
mod forward_pass;
/// Enrollment at login, codes sent by another channel, and what follows an accepted code.
mod lifecycle;
/// `prompt_after_notices`: one more prompt after messages that would follow the last one.
mod notices;
/// `require_publickey`: what sshd's `SSH_AUTH_INFO_0` lets through.
mod publickey;
/// What plans and replies make the login say.
mod replies;
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
