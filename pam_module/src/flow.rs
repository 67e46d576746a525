//! The login flow, free of PAM and D-Bus: it asks the daemon for a plan, gets a code, asks the
//! daemon to verify it and tells the user what happened. The daemon decides; this only renders.
//!
//! [`authenticate`] runs over two small traits, [`Conversation`] (the user) and
//! [`DaemonClient`] (the daemon), so every branch is unit-tested with scripted fakes.
//!
//! It never returns [`Outcome::Success`] except on an `Accepted` reply from the daemon or a
//! confirmed enrollment at login (whose confirming code is the first use of the new factor)
//! or, with `require_publickey`, an `Ignore` plan for a login on which sshd says a key
//! succeeded; and never [`Outcome::Ignore`] except on an `Ignore` plan without
//! `require_publickey` or, with `unavailable=ignore`, an unreachable daemon at the plan step.
//!
//! The steps of an enrollment's life (enrollment at login, codes sent by another channel, the
//! extra steps after an accepted code) are in [`lifecycle`].

use std::fmt;

use time::UtcOffset;
use twofactor_proto::{
    self as proto, LoginAction, LoginContext, LoginEnrollment, LoginPlan, VerifyAnyReply,
    VerifyOutcome, VerifyReply, is_plausible_code, is_valid_username,
};
use zeroize::Zeroizing;

use crate::args::{Args, CodeSource, Unavailable};
use crate::client::ClientError;
use crate::log::{Level, Log};
use crate::messages;

mod code;
mod lifecycle;
mod notices;

pub use code::forward_pass_readings;

/// The conversation could not ask the user (no conversation function, it failed, or the
/// answer was not UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvError(pub String);

impl fmt::Display for ConvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How the flow talks to the user.
pub trait Conversation {
    /// Asks a question; `echo` shows the answer while it is typed. `Ok(None)`: no answer.
    fn prompt(&mut self, text: &str, echo: bool) -> Result<Option<Zeroizing<String>>, ConvError>;
    /// Tells the user something (best effort).
    fn info(&mut self, text: &str);
    /// Tells the user something went wrong (best effort).
    fn error(&mut self, text: &str);
}

/// How the flow talks to the daemon, for one authentication (the real one keeps one bus
/// connection for it). The daemon keeps no state about the flow but what it hands out (an
/// enrollment's token).
// One `block_on` drives the whole flow on one thread, so the futures need no `Send` bound.
#[allow(async_fn_in_trait)]
pub trait DaemonClient {
    async fn login_plan(
        &self,
        user: &str,
        context: &LoginContext,
    ) -> Result<LoginPlan, ClientError>;
    async fn verify(
        &self,
        user: &str,
        code: &str,
        context: &LoginContext,
    ) -> Result<VerifyReply, ClientError>;
    /// `VerifyAny`: several readings of one answer, as one attempt.
    async fn verify_any(
        &self,
        user: &str,
        codes: &[&str],
        context: &LoginContext,
    ) -> Result<VerifyAnyReply, ClientError>;
    /// `BeginLoginEnrollment`: a new key, pending under the returned token.
    async fn begin_login_enrollment(
        &self,
        user: &str,
        context: &LoginContext,
    ) -> Result<LoginEnrollment, ClientError>;
    /// `ConfirmLoginEnrollment`: the enrollment held by `token`, confirmed by `code`; the
    /// backup codes.
    async fn confirm_login_enrollment(
        &self,
        user: &str,
        token: &str,
        code: &str,
        context: &LoginContext,
    ) -> Result<Vec<String>, ClientError>;
    /// `SendCode`: a code by another channel; the seconds it stays valid.
    async fn send_code(&self, user: &str, context: &LoginContext) -> Result<u64, ClientError>;
    /// `RegenerateBackupCodes` (as root, for another user, with an empty `code`).
    async fn regenerate_backup_codes(
        &self,
        user: &str,
        code: &str,
    ) -> Result<Vec<String>, ClientError>;
}

/// What PAM tells the flow about this login.
pub struct Request {
    /// PAM_USER.
    pub user: String,
    /// PAM_SERVICE, PAM_RHOST, PAM_TTY.
    pub context: LoginContext,
    /// PAM_AUTHTOK as an earlier module left it (read only for `use_first_pass` and
    /// `try_first_pass`).
    pub authtok: Option<Zeroizing<String>>,
    /// The local UTC offset at a given Unix time, to show times in the user's zone.
    pub local_offset: fn(u64) -> UtcOffset,
    /// `PAM_SILENT`: the conversation drops info and error messages, so nothing that must be
    /// read (a new key, backup codes) can be shown.
    pub silent: bool,
    /// `SSH_AUTH_INFO_0` from the PAM environment, read only with `require_publickey`: the
    /// methods sshd says already succeeded on this connection, one a line.
    pub ssh_auth_info: Option<String>,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("user", &self.user)
            .field("context", &self.context)
            .field("authtok", &self.authtok.as_ref().map(|_| "<redacted>"))
            .field("silent", &self.silent)
            .finish_non_exhaustive()
    }
}

/// The flow's answer, mapped one to one onto a PAM return code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `PAM_SUCCESS`: the daemon accepted the code.
    Success,
    /// `PAM_IGNORE`: two-factor does not apply (or `unavailable=ignore` and no daemon).
    Ignore,
    /// `PAM_AUTH_ERR`: denied.
    AuthErr,
    /// `PAM_AUTHINFO_UNAVAIL`: the daemon could not be asked.
    AuthInfoUnavail,
    /// `PAM_CONV_ERR`: the user could not be asked.
    ConvErr,
}

/// What [`authenticate`] decided.
pub struct Verdict {
    pub outcome: Outcome,
    /// `forward_pass`: what the next module gets in `PAM_AUTHTOK`. Set whenever the user
    /// answered, whatever the outcome, so the next module never prompts, either way: the
    /// password of the reading whose code the daemon accepted, or else the answer as typed (no
    /// reading was confirmed, so none is guessed).
    pub forward_authtok: Option<Zeroizing<String>>,
}

/// What one try at a code came to.
enum Try {
    /// The login ends with this.
    Done(Outcome),
    /// The code was wrong (or not a code), and the user was told: another try may follow.
    Rejected,
}

impl fmt::Debug for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verdict")
            .field("outcome", &self.outcome)
            .field(
                "forward_authtok",
                &self.forward_authtok.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Runs the login flow for one `pam_sm_authenticate` call.
pub async fn authenticate<D: DaemonClient>(
    args: &Args,
    request: &Request,
    conv: &mut dyn Conversation,
    daemon: &D,
    log: &mut dyn Log,
) -> Verdict {
    let mut conv = notices::Tracked::new(conv);
    let mut flow = Flow {
        args,
        request,
        conv: &mut conv,
        daemon,
        log,
        forward_authtok: None,
    };
    let outcome = flow.run().await;
    let forward_authtok = flow.forward_authtok;
    // PAM_SILENT drops the messages, so there is nothing to read.
    if args.prompt_after_notices
        && !request.silent
        && matches!(outcome, Outcome::Success | Outcome::Ignore)
    {
        conv.prompt_if_unprompted();
    }
    Verdict {
        outcome,
        forward_authtok,
    }
}

struct Flow<'a, D> {
    args: &'a Args,
    request: &'a Request,
    conv: &'a mut dyn Conversation,
    daemon: &'a D,
    log: &'a mut dyn Log,
    forward_authtok: Option<Zeroizing<String>>,
}

impl<D: DaemonClient> Flow<'_, D> {
    async fn run(&mut self) -> Outcome {
        let user = self.request.user.as_str();
        if self.args.require_publickey
            && let Some(missing) = publickey_missing(self.request.ssh_auth_info.as_deref())
        {
            // Before the plan, the code and any user-name check: nobody gets further.
            self.conv.error(messages::PUBLICKEY_REQUIRED);
            self.log(
                Level::Notice,
                format_args!(
                    "refused {user:?}{}: require_publickey, and {missing}",
                    self.origin()
                ),
            );
            return Outcome::AuthErr;
        }
        if !is_valid_username(user) {
            // No such account can exist. Look exactly like a wrong code for a real user, so a
            // caller cannot tell names apart, and do not bother the daemon.
            self.log(
                Level::Notice,
                format_args!("invalid user name {user:?}: asking for a code, then denying"),
            );
            if self.args.code_source == CodeSource::ForwardPass {
                return self.forward_pass_for_nobody();
            }
            for attempt in 1..=self.tries() {
                if let Err(outcome) = self.obtain_code("", false, attempt > 1).await {
                    return outcome;
                }
                self.wrong_code();
            }
            return Outcome::AuthErr;
        }

        let plan = match self.daemon.login_plan(user, &self.request.context).await {
            Ok(plan) => plan,
            Err(error) => return self.plan_failed(&error),
        };
        self.debug(format_args!("plan for {user:?}: {:?}", plan.action));
        match plan.action {
            LoginAction::Ignore => {
                if !plan.message.is_empty() {
                    self.conv.info(&plan.message);
                }
                if self.args.require_publickey {
                    // sshd checked the key, and the stack may hold nothing else to succeed.
                    self.log(
                        Level::Info,
                        format_args!(
                            "{user:?}{} is exempt and its key succeeded: success",
                            self.origin()
                        ),
                    );
                    return self.forward_password_only(Outcome::Success);
                }
                self.forward_password_only(Outcome::Ignore)
            }
            LoginAction::Deny => {
                let message = if plan.message.is_empty() {
                    messages::DENIED
                } else {
                    plan.message.as_str()
                };
                self.conv.error(message);
                self.log(
                    Level::Notice,
                    format_args!(
                        "denied {user:?}{}: the daemon's plan is Deny",
                        self.origin()
                    ),
                );
                Outcome::AuthErr
            }
            LoginAction::Enroll => self.enroll(&plan.message).await,
            LoginAction::Prompt => {
                self.prompt_and_verify(&plan.message, plan.can_send_code)
                    .await
            }
        }
    }

    /// `can_send_code`: an empty answer to the first prompt has the daemon send a code. After a
    /// rejected code the user may try again, up to `tries=` in all, each try its own `Verify`.
    async fn prompt_and_verify(&mut self, intro: &str, can_send_code: bool) -> Outcome {
        if self.args.code_source == CodeSource::ForwardPass {
            return self.forward_pass(intro).await;
        }
        let tries = self.tries();
        for attempt in 1..=tries {
            let again = attempt > 1;
            let (intro, can_send_code) = if again {
                ("", false)
            } else {
                (intro, can_send_code)
            };
            let code = match self.obtain_code(intro, can_send_code, again).await {
                Ok(code) => code,
                Err(outcome) => return outcome,
            };
            match self.try_code(&code).await {
                Try::Done(outcome) => return outcome,
                Try::Rejected if attempt < tries => self.debug(format_args!(
                    "try {attempt} of {tries} rejected; asking again"
                )),
                Try::Rejected => {}
            }
        }
        Outcome::AuthErr
    }

    /// How many codes this login may try: `tries=` where the module may prompt again, else
    /// one (`use_first_pass` never prompts; `forward_pass` would need the password again).
    fn tries(&self) -> u32 {
        match self.args.code_source {
            CodeSource::Prompt | CodeSource::TryFirstPass => self.args.tries,
            CodeSource::UseFirstPass | CodeSource::ForwardPass => 1,
        }
    }

    async fn try_code(&mut self, code: &str) -> Try {
        if !is_plausible_code(code) {
            self.log(
                Level::Notice,
                format_args!(
                    "answer for {:?}{} is not shaped like a code; not sent to the daemon",
                    self.request.user,
                    self.origin()
                ),
            );
            self.wrong_code();
            return Try::Rejected;
        }
        match self
            .daemon
            .verify(&self.request.user, code, &self.request.context)
            .await
        {
            Ok(reply) => {
                let outcome = self.render(&reply).await;
                if reply.outcome == VerifyOutcome::Rejected {
                    Try::Rejected
                } else {
                    Try::Done(outcome)
                }
            }
            Err(error) => self.verify_failed(&error),
        }
    }

    async fn render(&mut self, reply: &VerifyReply) -> Outcome {
        let user = self.request.user.as_str();
        match reply.outcome {
            VerifyOutcome::Accepted => {
                if reply.backup_code_used {
                    self.conv
                        .info(&messages::backup_code_used(reply.backup_codes_left));
                }
                if let Some(message) = messages::failures_since_success(
                    reply.failures_since_success,
                    reply.last_failure_time,
                    self.request.local_offset,
                ) {
                    self.conv.info(&message);
                }
                let kind = if reply.backup_code_used {
                    format!("backup code, {} left", reply.backup_codes_left)
                } else if reply.temporary_code_used {
                    "temporary code".to_owned()
                } else {
                    "code".to_owned()
                };
                self.log(
                    Level::Info,
                    format_args!("accepted {kind} for {user:?}{}", self.origin()),
                );
                // The code was right: nothing after this can turn the login into a failure.
                self.after_accepted(reply).await;
                Outcome::Success
            }
            VerifyOutcome::Rejected => {
                if reply.code_replayed {
                    self.conv.error(messages::CODE_REPLAYED);
                } else {
                    self.conv.error(messages::WRONG_CODE);
                }
                if let Some(hint) = messages::clock_skew_hint(reply.clock_skew_seconds) {
                    self.conv.info(&hint);
                }
                self.log(
                    Level::Notice,
                    format_args!(
                        "rejected code for {user:?}{} (clock skew {} s{})",
                        self.origin(),
                        reply.clock_skew_seconds,
                        if reply.code_replayed {
                            ", replayed"
                        } else {
                            ""
                        }
                    ),
                );
                Outcome::AuthErr
            }
            VerifyOutcome::Delayed => {
                self.conv
                    .error(&messages::delayed(reply.retry_after_seconds));
                self.log(
                    Level::Notice,
                    format_args!(
                        "delayed {user:?}{}: retry after {} s",
                        self.origin(),
                        reply.retry_after_seconds
                    ),
                );
                Outcome::AuthErr
            }
            VerifyOutcome::Locked => {
                self.conv.error(messages::LOCKED);
                self.log(
                    Level::Notice,
                    format_args!("{user:?} is locked out{}", self.origin()),
                );
                Outcome::AuthErr
            }
        }
    }

    fn plan_failed(&mut self, error: &ClientError) -> Outcome {
        self.log(
            Level::Error,
            format_args!(
                "LoginPlan for {:?}{} failed: {error}",
                self.request.user,
                self.origin()
            ),
        );
        if error.is_unreachable() && self.args.unavailable == Unavailable::Ignore {
            self.log(
                Level::Warning,
                format_args!(
                    "unavailable=ignore: two-factor skipped for {:?}",
                    self.request.user
                ),
            );
            return self.forward_password_only(Outcome::Ignore);
        }
        self.client_failed(error)
    }

    /// Once the daemon has said "prompt", no failure is ever ignorable.
    fn verify_failed(&mut self, error: &ClientError) -> Try {
        self.log(
            Level::Error,
            format_args!(
                "Verify for {:?}{} failed: {error}",
                self.request.user,
                self.origin()
            ),
        );
        match error {
            ClientError::Daemon(proto::Error::WrongCode(_) | proto::Error::InvalidInput(_)) => {
                self.wrong_code();
                Try::Rejected
            }
            _ => Try::Done(self.client_failed(error)),
        }
    }

    fn client_failed(&mut self, error: &ClientError) -> Outcome {
        match error {
            ClientError::Daemon(proto::Error::Locked(_)) => {
                self.conv.error(messages::LOCKED);
                Outcome::AuthErr
            }
            ClientError::Daemon(
                proto::Error::Internal(_) | proto::Error::Busy(_) | proto::Error::ZBus(_),
            ) => {
                self.conv.error(messages::UNAVAILABLE);
                Outcome::AuthInfoUnavail
            }
            ClientError::Daemon(_) => {
                self.conv.error(messages::FAILED);
                Outcome::AuthErr
            }
            ClientError::Unreachable(_)
            | ClientError::NotRoot { .. }
            | ClientError::Timeout(_)
            | ClientError::Config(_)
            | ClientError::Bus(_) => {
                self.conv.error(messages::UNAVAILABLE);
                Outcome::AuthInfoUnavail
            }
        }
    }

    fn wrong_code(&mut self) -> Outcome {
        self.conv.error(messages::WRONG_CODE);
        Outcome::AuthErr
    }

    /// ` from HOST on SERVICE` for log lines.
    fn origin(&self) -> String {
        let context = &self.request.context;
        let mut origin = String::new();
        if !context.rhost.is_empty() {
            origin.push_str(&format!(" from {:?}", context.rhost));
        }
        if !context.service.is_empty() {
            origin.push_str(&format!(" ({:?})", context.service));
        }
        origin
    }

    fn log(&mut self, level: Level, message: fmt::Arguments<'_>) {
        self.log.log(level, &message.to_string());
    }

    fn debug(&mut self, message: fmt::Arguments<'_>) {
        if self.args.debug {
            self.log(Level::Debug, message);
        }
    }
}

/// Why `SSH_AUTH_INFO_0` (as sshd sets it during keyboard-interactive) shows no succeeded
/// `publickey` method; `None` when a line starts with `publickey `.
pub fn publickey_missing(auth_info: Option<&str>) -> Option<&'static str> {
    match auth_info {
        None => Some("SSH_AUTH_INFO_0 is not set (no method succeeded before this one)"),
        Some(info) if info.trim().is_empty() => Some("SSH_AUTH_INFO_0 is empty"),
        Some(info) if info.lines().any(|line| line.starts_with("publickey ")) => None,
        Some(_) => Some("SSH_AUTH_INFO_0 names no publickey method"),
    }
}
