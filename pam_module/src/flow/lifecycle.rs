//! The steps of an enrollment's life that happen inside a login: enrollment at login (the
//! daemon's `Enroll` plan), a code sent by another channel (`can_send_code`), and what follows
//! an accepted code (a temporary code was used, no backup codes are left).
//!
//! Enrollment at login is the one way to [`Outcome::Success`] without `Verify`: the code that
//! confirms the new key is its first use, checked by the daemon (`ConfirmLoginEnrollment`).
//! Everything after an accepted code is best effort and never changes the outcome.

use twofactor_proto::{self as proto, EnrollmentOffer, LoginEnrollment, VerifyReply};
use zeroize::{Zeroize, Zeroizing};

use super::{DaemonClient, Flow, Outcome};
use crate::args::CodeSource;
use crate::client::ClientError;
use crate::log::Level;
use crate::messages;

/// Codes the user may try to confirm an enrollment at login (the daemon allows more).
pub const ENROLL_TRIES: usize = 3;

/// An offer whose key and URI are wiped when it is dropped.
struct HeldOffer(EnrollmentOffer);

impl Drop for HeldOffer {
    fn drop(&mut self) {
        self.0.otpauth_uri.zeroize();
        self.0.secret_base32.zeroize();
    }
}

impl<D: DaemonClient> Flow<'_, D> {
    /// `Enroll`: a new key through the conversation, confirmed with a code from the app.
    /// Success only once the daemon has stored the enrollment.
    pub(super) async fn enroll(&mut self, intro: &str) -> Outcome {
        let user = self.request.user.as_str();
        let context = &self.request.context;
        let impossible = match self.args.code_source {
            _ if !self.args.enroll_at_login => Some("enroll_at_login is not on this pam.d line"),
            CodeSource::UseFirstPass => Some("use_first_pass never prompts"),
            CodeSource::ForwardPass => Some("forward_pass runs before the password is checked"),
            CodeSource::Prompt | CodeSource::TryFirstPass if self.request.silent => {
                Some("PAM_SILENT would hide the key")
            }
            CodeSource::Prompt | CodeSource::TryFirstPass => None,
        };
        if let Some(reason) = impossible {
            self.conv.error(messages::ENROLL_NOT_HERE);
            self.log(
                Level::Notice,
                format_args!(
                    "denied {user:?}{}: not enrolled, and enrollment at login cannot work here ({reason})",
                    self.origin()
                ),
            );
            return Outcome::AuthErr;
        }

        let LoginEnrollment { token, offer } =
            match self.daemon.begin_login_enrollment(user, context).await {
                Ok(enrollment) => enrollment,
                Err(error) => {
                    self.log(
                        Level::Error,
                        format_args!(
                            "BeginLoginEnrollment for {user:?}{} failed: {error}",
                            self.origin()
                        ),
                    );
                    return self.client_failed(&error);
                }
            };
        // The token is all that is kept between the daemon calls, in memory, wiped at the end.
        let token = Zeroizing::new(token);
        let offer = HeldOffer(offer);
        self.log(
            Level::Info,
            format_args!("enrollment at login started for {user:?}{}", self.origin()),
        );
        {
            let drawing =
                twofactor_qr::render_qr(&offer.0.otpauth_uri, twofactor_qr::Background::Dark).ok();
            if drawing.is_none() {
                self.log(
                    Level::Warning,
                    format_args!(
                        "the key for {user:?} is too long for a QR code; showing it only as text"
                    ),
                );
            }
            let text = messages::enrollment_offer(
                intro,
                &offer.0,
                drawing.as_ref().map(|drawing| drawing.as_str()),
            );
            self.conv.info(&text);
        }
        drop(offer);

        for attempt in 1..=ENROLL_TRIES {
            let answer = match self.prompt(messages::ENROLL_CODE_PROMPT, self.args.echo_code) {
                Ok(answer) => answer,
                Err(outcome) => return outcome,
            };
            let code = Zeroizing::new(answer.trim().to_owned());
            if code.is_empty() {
                self.conv.error(messages::NO_CODE);
                self.log(
                    Level::Notice,
                    format_args!("no code to confirm the enrollment of {user:?}; abandoned"),
                );
                return Outcome::AuthErr;
            }
            let confirmed = if proto::is_plausible_code(&code) {
                self.daemon
                    .confirm_login_enrollment(user, &token, &code, context)
                    .await
            } else {
                Err(ClientError::Daemon(proto::Error::InvalidInput(
                    "not shaped like a code; not sent to the daemon".into(),
                )))
            };
            match confirmed {
                Ok(codes) => {
                    let codes = Zeroizing::new(codes);
                    self.log(
                        Level::Info,
                        format_args!("enrolled {user:?} at login{}", self.origin()),
                    );
                    self.show_backup_codes(messages::ENROLLED, &codes);
                    return Outcome::Success;
                }
                Err(ClientError::Daemon(
                    proto::Error::WrongCode(_) | proto::Error::InvalidInput(_),
                )) => {
                    self.conv.error(messages::WRONG_CODE);
                    self.log(
                        Level::Notice,
                        format_args!(
                            "wrong code {attempt} of {ENROLL_TRIES} confirming the enrollment of {user:?}{}",
                            self.origin()
                        ),
                    );
                }
                Err(ClientError::Daemon(proto::Error::NoPendingEnrollment(_))) => {
                    self.conv.error(messages::ENROLL_EXPIRED);
                    self.log(
                        Level::Notice,
                        format_args!(
                            "the enrollment of {user:?} at login expired or was replaced before it was confirmed"
                        ),
                    );
                    return Outcome::AuthErr;
                }
                Err(error) => {
                    self.log(
                        Level::Error,
                        format_args!(
                            "ConfirmLoginEnrollment for {user:?}{} failed: {error}",
                            self.origin()
                        ),
                    );
                    return self.client_failed(&error);
                }
            }
        }
        self.conv.error(messages::ENROLL_GAVE_UP);
        self.log(
            Level::Notice,
            format_args!(
                "denied {user:?}{}: {ENROLL_TRIES} wrong codes confirming the enrollment at login",
                self.origin()
            ),
        );
        Outcome::AuthErr
    }

    /// An empty answer with `can_send_code`: have a code sent, then ask once more (an empty
    /// answer then is no code).
    pub(super) async fn send_code_and_ask(&mut self) -> Result<Zeroizing<String>, Outcome> {
        let user = self.request.user.as_str();
        match self.daemon.send_code(user, &self.request.context).await {
            Ok(seconds) => {
                self.conv.info(&messages::code_sent(seconds));
                self.log(
                    Level::Info,
                    format_args!(
                        "a code was sent to {user:?}{} by another channel, valid {seconds} s",
                        self.origin()
                    ),
                );
            }
            Err(error) => {
                self.log(
                    Level::Error,
                    format_args!("SendCode for {user:?}{} failed: {error}", self.origin()),
                );
                return Err(self.send_failed(&error));
            }
        }
        let code = self.ask("", false)?;
        if code.is_empty() {
            self.conv.error(messages::NO_CODE);
            self.log(
                Level::Notice,
                format_args!("no code given for {user:?} after one was sent"),
            );
            return Err(Outcome::AuthErr);
        }
        Ok(code)
    }

    fn send_failed(&mut self, error: &ClientError) -> Outcome {
        match error {
            // Too many sent lately, or locked: the daemon's text says which.
            ClientError::Daemon(proto::Error::Locked(reason)) => {
                self.conv.error(&messages::send_refused(reason));
                Outcome::AuthErr
            }
            ClientError::Daemon(proto::Error::Internal(_) | proto::Error::Busy(_)) => {
                self.conv.error(messages::SEND_UNAVAILABLE);
                Outcome::AuthInfoUnavail
            }
            ClientError::Daemon(proto::Error::PolicyForbids(_)) => {
                self.conv.error(messages::SEND_FAILED);
                Outcome::AuthErr
            }
            _ => self.client_failed(error),
        }
    }

    /// After an accepted code: tell a user who used a temporary code to enroll a new device,
    /// and offer new backup codes when none are left. Never changes the outcome.
    pub(super) async fn after_accepted(&mut self, reply: &VerifyReply) {
        if reply.temporary_code_used {
            self.conv.info(messages::TEMPORARY_CODE_USED);
        }
        if reply.offer_new_backup_codes {
            self.offer_new_backup_codes().await;
        }
    }

    async fn offer_new_backup_codes(&mut self) {
        let user = self.request.user.as_str();
        let may_ask = matches!(
            self.args.code_source,
            CodeSource::Prompt | CodeSource::TryFirstPass
        ) && !self.request.silent;
        if !may_ask {
            // use_first_pass and forward_pass promise no (further) prompt.
            self.conv.info(messages::NO_BACKUP_CODES_LEFT);
            return;
        }
        let answer = match self.conv.prompt(messages::OFFER_NEW_BACKUP_CODES, true) {
            Ok(answer) => answer,
            Err(error) => {
                self.log(
                    Level::Warning,
                    format_args!(
                        "conversation failed offering new backup codes to {user:?}: {error}"
                    ),
                );
                return;
            }
        };
        if !answer
            .as_ref()
            .is_some_and(|answer| messages::is_yes(answer))
        {
            self.conv.info(messages::NO_NEW_BACKUP_CODES);
            self.debug(format_args!("{user:?} declined new backup codes"));
            return;
        }
        match self.daemon.regenerate_backup_codes(user, "").await {
            Ok(codes) => {
                let codes = Zeroizing::new(codes);
                self.log(
                    Level::Info,
                    format_args!("new backup codes for {user:?} at login{}", self.origin()),
                );
                self.show_backup_codes(messages::NEW_BACKUP_CODES, &codes);
            }
            Err(error) => {
                self.log(
                    Level::Error,
                    format_args!(
                        "RegenerateBackupCodes for {user:?} failed: {error}; the login goes on"
                    ),
                );
                self.conv.error(messages::NEW_BACKUP_CODES_FAILED);
            }
        }
    }

    /// Backup codes as one message, then a prompt so they stay on screen until the user has
    /// stored them (its answer is not used).
    fn show_backup_codes(&mut self, header: &str, codes: &[String]) {
        {
            let text = messages::backup_codes(header, codes);
            self.conv.info(&text);
        }
        if let Err(error) = self.conv.prompt(messages::STORED_PROMPT, true) {
            self.log(
                Level::Warning,
                format_args!(
                    "conversation failed after the backup codes of {:?} were shown: {error}",
                    self.request.user
                ),
            );
        }
    }
}
