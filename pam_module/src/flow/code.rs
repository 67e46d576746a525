//! Getting the code: from a prompt, from `PAM_AUTHTOK`, or from the end of a `forward_pass`
//! answer, which may be read several ways when the password itself ends in digits.

use twofactor_proto::{MAX_CODE_CANDIDATES, VerifyOutcome, codes, is_plausible_code};
use zeroize::Zeroizing;

use super::{DaemonClient, Flow, Outcome, Try};
use crate::args::CodeSource;
use crate::log::Level;
use crate::messages;

/// The readings of a `forward_pass` answer: `(password, code)` for every end of it that has the
/// shape of a code ([`codes::TYPED_SHAPES`]: a TOTP code of any length, a backup code or a
/// temporary code, with or without dashes), shortest code first. The password is everything
/// before the code, exactly as typed (so the code follows the password with no space).
pub fn forward_pass_readings(answer: &str) -> Vec<(&str, &str)> {
    codes::code_suffix_starts(answer)
        .into_iter()
        .take(MAX_CODE_CANDIDATES)
        .filter_map(|at| Some((answer.get(..at)?, answer.get(at..)?)))
        .collect()
}

impl<D: DaemonClient> Flow<'_, D> {
    /// The code, trimmed and non-empty, from wherever the arguments say; or the outcome to
    /// return when there is none. With `can_send_code`, an empty answer to a prompt (never with
    /// `use_first_pass`) has a code sent, then asks once more. `again`: a try after a rejected
    /// code, always prompted; when it cannot be asked, the login ends as the rejected code did.
    pub(super) async fn obtain_code(
        &mut self,
        intro: &str,
        can_send_code: bool,
        again: bool,
    ) -> Result<Zeroizing<String>, Outcome> {
        if again {
            let code = self.ask(intro, false).map_err(|_| Outcome::AuthErr)?;
            return self.non_empty(code);
        }
        let mut prompted = false;
        let code = match self.args.code_source {
            // `forward_pass` has its own prompt (`Self::forward_pass`) and never comes here.
            CodeSource::Prompt | CodeSource::ForwardPass => {
                prompted = true;
                self.ask(intro, can_send_code)?
            }
            CodeSource::UseFirstPass => match &self.request.authtok {
                Some(authtok) => {
                    self.debug(format_args!("use_first_pass: code taken from PAM_AUTHTOK"));
                    Zeroizing::new(authtok.trim().to_owned())
                }
                None => {
                    self.log(
                        Level::Notice,
                        format_args!(
                            "use_first_pass, but no PAM_AUTHTOK for {:?}",
                            self.request.user
                        ),
                    );
                    Zeroizing::new(String::new())
                }
            },
            CodeSource::TryFirstPass => match &self.request.authtok {
                Some(authtok) if is_plausible_code(authtok.trim()) => {
                    self.debug(format_args!("try_first_pass: code taken from PAM_AUTHTOK"));
                    Zeroizing::new(authtok.trim().to_owned())
                }
                // Unset, or (typically) the password of the module before: ask.
                _ => {
                    prompted = true;
                    self.ask(intro, can_send_code)?
                }
            },
        };
        if code.is_empty() && prompted && can_send_code {
            return self.send_code_and_ask().await;
        }
        self.non_empty(code)
    }

    fn non_empty(&mut self, code: Zeroizing<String>) -> Result<Zeroizing<String>, Outcome> {
        if code.is_empty() {
            self.conv.error(messages::NO_CODE);
            self.log(
                Level::Notice,
                format_args!("no code given for {:?}", self.request.user),
            );
            return Err(Outcome::AuthErr);
        }
        Ok(code)
    }

    /// Prompts for the code; `can_send_code` says so in the (default) prompt.
    pub(super) fn ask(
        &mut self,
        intro: &str,
        can_send_code: bool,
    ) -> Result<Zeroizing<String>, Outcome> {
        if !intro.is_empty() {
            self.conv.info(intro);
        }
        let default = if can_send_code {
            messages::SEND_PROMPT
        } else {
            messages::CODE_PROMPT
        };
        let text = self.args.prompt.as_deref().unwrap_or(default);
        let answer = self.prompt(text, self.args.echo_code)?;
        Ok(Zeroizing::new(answer.trim().to_owned()))
    }

    /// `forward_pass`: one prompt for password and code, every reading of the answer checked
    /// in one `VerifyAny` (one attempt), one try. The next module gets the password of the
    /// accepted reading, or else the answer as typed.
    pub(super) async fn forward_pass(&mut self, intro: &str) -> Outcome {
        if !intro.is_empty() {
            self.conv.info(intro);
        }
        let answer = match self.prompt(messages::FORWARD_PASS_PROMPT, false) {
            Ok(answer) => answer,
            Err(outcome) => return outcome,
        };
        self.forward_authtok = Some(answer.clone());
        let readings = forward_pass_readings(&answer);
        if readings.is_empty() {
            self.log(
                Level::Notice,
                format_args!(
                    "forward_pass: the answer for {:?} does not end in a code",
                    self.request.user
                ),
            );
            // Answered, but with no code: the same as a wrong one.
            return self.wrong_code();
        }
        let candidates: Vec<&str> = readings.iter().map(|(_, code)| *code).collect();
        let any = match self
            .daemon
            .verify_any(&self.request.user, &candidates, &self.request.context)
            .await
        {
            Ok(any) => any,
            Err(error) => {
                return match self.verify_failed(&error) {
                    Try::Done(outcome) => outcome,
                    Try::Rejected => Outcome::AuthErr,
                };
            }
        };
        if any.reply.outcome == VerifyOutcome::Accepted {
            let accepted = usize::try_from(any.accepted_index)
                .ok()
                .and_then(|index| readings.get(index));
            let Some((password, _)) = accepted else {
                self.log(
                    Level::Error,
                    format_args!(
                        "VerifyAny for {:?} accepted candidate {} of {}: denying",
                        self.request.user,
                        any.accepted_index,
                        readings.len()
                    ),
                );
                self.conv.error(messages::FAILED);
                return Outcome::AuthErr;
            };
            self.forward_authtok = Some(Zeroizing::new((*password).to_owned()));
        }
        self.render(&any.reply).await
    }

    /// `forward_pass` when no code applies (an exempt user, or `unavailable=ignore` without a
    /// daemon): the same prompt as for everyone else, so that it does not tell who is exempt,
    /// and the whole answer goes on as the password. Without it the next module
    /// (`use_first_pass`) would find no password and lock every exempt user out. Without
    /// `forward_pass`, `outcome` as it is.
    pub(super) fn forward_password_only(&mut self, outcome: Outcome) -> Outcome {
        if self.args.code_source != CodeSource::ForwardPass {
            return outcome;
        }
        match self.prompt(messages::FORWARD_PASS_PROMPT, false) {
            Ok(answer) => {
                self.debug(format_args!(
                    "forward_pass: no code applies to {:?}; the answer goes on as the password",
                    self.request.user
                ));
                self.forward_authtok = Some(answer);
                outcome
            }
            Err(outcome) => outcome,
        }
    }

    /// `forward_pass` for a user name no account can have: the same prompt, message and
    /// `PAM_AUTHTOK` as a wrong code, without asking the daemon.
    pub(super) fn forward_pass_for_nobody(&mut self) -> Outcome {
        match self.prompt(messages::FORWARD_PASS_PROMPT, false) {
            Ok(answer) => {
                self.forward_authtok = Some(answer);
                self.wrong_code()
            }
            Err(outcome) => outcome,
        }
    }

    pub(super) fn prompt(&mut self, text: &str, echo: bool) -> Result<Zeroizing<String>, Outcome> {
        match self.conv.prompt(text, echo) {
            Ok(Some(answer)) => Ok(answer),
            Ok(None) => {
                self.log(
                    Level::Notice,
                    format_args!("no answer to the prompt for {:?}", self.request.user),
                );
                Err(Outcome::AuthErr)
            }
            Err(error) => {
                self.log(
                    Level::Error,
                    format_args!("conversation failed for {:?}: {error}", self.request.user),
                );
                Err(Outcome::ConvErr)
            }
        }
    }
}
