//! A login: its plan, and the check of its codes with throttling by source.

use super::*;

/// What the record said of one login attempt, decided inside its transaction.
enum Checked {
    /// No record, or nothing to check a code against.
    NotEnrolled,
    /// The attempt, and the record as committed after it.
    Attempted(Attempt, Box<UserRecord>),
}

impl Service {
    /// Inside a transaction: a code that authorizes a change (replace, regenerate, disable),
    /// spent like a login. `Ok(Err(_))` is a refusal whose failure count, in `record`, is
    /// committed all the same; [`Self::change_refused`] reports it after the commit.
    pub(super) fn check_change_code(
        &self,
        record: &mut UserRecord,
        code: &str,
        allowed: &[Factor],
        now: u64,
    ) -> Result<Result<(), CodeRefused>, Error> {
        let digits = code_digits(code)?;
        let attempt = rules::attempt(
            &self.config(),
            record,
            std::slice::from_ref(&digits),
            allowed,
            &CHANGE_SOURCE,
            now,
        )
        .map_err(|error| self.unusable_codes(&error))?;
        Ok(rules::change_allowed(attempt, &record.attempts))
    }

    /// A stored code hash that cannot be checked: logged where it is found, and a denial.
    fn unusable_codes(&self, error: &std::io::Error) -> Error {
        self.log
            .warning(Line::new("state-error").field("error", error).as_str());
        internal("stored codes cannot be checked")
    }

    /// After the commit: the log line, and the error, of a change refused for its code.
    pub(super) fn change_refused(
        &self,
        caller: &Caller,
        user: &str,
        refused: CodeRefused,
        now: u64,
    ) -> Error {
        match refused {
            CodeRefused::Delayed(seconds) => Error::Locked(sentences::delayed(seconds)),
            CodeRefused::Locked(remaining) => Error::Locked(sentences::locked(remaining)),
            CodeRefused::Wrong {
                now_locked,
                attempts,
            } => {
                self.log.info(
                    self.event("failed", user, caller)
                        .field("purpose", "change")
                        .field("source", &CHANGE_SOURCE)
                        .as_str(),
                );
                if now_locked {
                    self.locked(user, caller, None, &CHANGE_SOURCE, &attempts, now);
                }
                Error::WrongCode(sentences::WRONG_CODE.into())
            }
        }
    }

    /// What a login should do for `user`. Unknown users are prompted like anyone else.
    pub fn login_plan(
        &self,
        caller: &Caller,
        user: &str,
        context: &LoginContext,
        now: u64,
    ) -> Result<LoginPlan, Error> {
        check_user_name(user)?;
        check_context(context)?;
        // Whether the connection may stay open is the bus side's to say (`dbus.rs`).
        let plan = |action, message: String| LoginPlan {
            action,
            message,
            can_send_code: false,
            keep_connection: false,
        };
        let Some(decision) = self.policy_of(user)? else {
            return Ok(plan(LoginAction::Prompt, String::new()));
        };
        let config = self.config();
        let setting = LoginSetting {
            grace_seconds: config.enrollment.grace_period.map(|grace| grace.get()),
            enroll_here: config
                .enrollment
                .allows_at_login(&login_source(caller.uid, context)),
            delivery_configured: config.delivery.command.is_some(),
        };
        let decided = if rules::login_reads_record(decision.policy) {
            self.change(user, |record| {
                let decided = rules::plan_login(decision.policy, record.as_ref(), setting, now);
                if decided.start_grace {
                    record.get_or_insert_with(UserRecord::new).grace_started = Some(now);
                }
                Ok(decided)
            })?
        } else {
            rules::plan_login(decision.policy, None, setting, now)
        };
        if decided.start_grace {
            self.log.info(
                Line::new("grace-started")
                    .field("user", user)
                    .field("rule", &decision.source)
                    .as_str(),
            );
        }
        let rule = &decision.source;
        Ok(match decided.outcome {
            LoginOutcome::Prompt { can_send_code } => LoginPlan {
                can_send_code,
                ..plan(LoginAction::Prompt, String::new())
            },
            LoginOutcome::Ignore => plan(LoginAction::Ignore, String::new()),
            LoginOutcome::InGrace { ends } => plan(
                LoginAction::Ignore,
                sentences::required_from(user, &format_utc(ends)),
            ),
            LoginOutcome::Enroll => plan(LoginAction::Enroll, sentences::enroll_now(user, rule)),
            LoginOutcome::Deny => {
                self.log.info(
                    Line::new("denied-not-enrolled")
                        .field("user", user)
                        .field("rule", rule)
                        .field("service", &context.service)
                        .field("rhost", &context.rhost)
                        .as_str(),
                );
                plan(LoginAction::Deny, sentences::not_set_up(user, rule))
            }
        })
    }

    /// Check a login code. An accepted code is spent, and that is stored, before this returns.
    pub fn verify(
        &self,
        caller: &Caller,
        user: &str,
        code: &str,
        context: &LoginContext,
        now: u64,
    ) -> Result<VerifyReply, Error> {
        let digits = code_digits(code)?;
        self.verify_candidates(caller, user, &[digits], context, now)
            .map(|any| any.reply)
    }

    /// One login attempt with one or more readings of the answer (normalized, checked).
    pub(super) fn verify_candidates(
        &self,
        caller: &Caller,
        user: &str,
        candidates: &[Zeroizing<String>],
        context: &LoginContext,
        now: u64,
    ) -> Result<VerifyAnyReply, Error> {
        check_user_name(user)?;
        check_context(context)?;
        let mut reply = VerifyReply {
            outcome: VerifyOutcome::Rejected,
            backup_code_used: false,
            backup_codes_left: 0,
            clock_skew_seconds: 0,
            retry_after_seconds: 0,
            failures_since_success: 0,
            last_failure_time: 0,
            temporary_code_used: false,
            offer_new_backup_codes: false,
            code_replayed: false,
        };
        let mut accepted_index = -1;
        let line = |event: &str| {
            self.event(event, user, caller)
                .field("service", &context.service)
                .field("rhost", &context.rhost)
                .field("tty", &context.tty)
        };
        let reject_unknown = |reason: &str| {
            // The work of a real check of these codes, so timing does not reveal who exists:
            // argon2 for a backup code, HMACs for a TOTP code. Not for a user asking about
            // itself: it knows, and the work would only let it tie up the daemon.
            let asks_about_itself = caller.uid != 0 && caller.is(user);
            if !asks_about_itself {
                let params = self.new_params();
                if let Some(digits) = candidates
                    .iter()
                    .find(|digits| codes::could_be_backup_code(digits))
                {
                    backup::dummy_check(digits);
                }
                if let Some(digits) = candidates
                    .iter()
                    .find(|digits| digits.len() == params.digits as usize)
                {
                    totp::dummy_check(digits, now, self.config().totp.window.get(), params);
                }
            }
            self.log
                .info(line("failed").field("reason", reason).as_str());
            Ok(VerifyAnyReply {
                reply: reply.clone(),
                accepted_index: -1,
            })
        };
        if !self.has_exact_account(user)? {
            return reject_unknown("unknown-user");
        }
        let source = login_source(caller.uid, context).source();
        let config = self.config();
        let checked = self.change(user, |record| {
            let Some(record) = record
                .as_mut()
                .filter(|r| r.is_enrolled() || r.live_temporary_code(now).is_some())
            else {
                return Ok(Checked::NotEnrolled);
            };
            let attempt =
                rules::attempt(&config, record, candidates, Factor::AT_LOGIN, &source, now)
                    .map_err(|error| self.unusable_codes(&error))?;
            if let Attempt::Accepted { factor, .. } = attempt {
                record.last_success = Some(LastUse {
                    time: now,
                    service: context.service.clone(),
                    rhost: context.rhost.clone(),
                });
                if factor == Factor::Temporary {
                    record.replace_without_code_until = now.saturating_add(ENROLLMENT_TTL_SECONDS);
                }
            }
            Ok(Checked::Attempted(attempt, Box::new(record.clone())))
        })?;
        let Checked::Attempted(attempt, record) = checked else {
            return reject_unknown("not-enrolled");
        };
        match attempt {
            Attempt::Accepted {
                factor,
                index,
                failures_before,
                last_failure_before,
            } => {
                reply.outcome = VerifyOutcome::Accepted;
                accepted_index = i32::try_from(index).unwrap_or(i32::MAX);
                reply.backup_code_used = factor == Factor::Backup;
                reply.temporary_code_used = factor == Factor::Temporary;
                reply.failures_since_success = failures_before;
                reply.last_failure_time = if failures_before > 0 {
                    last_failure_before
                } else {
                    0
                };
                self.log
                    .info(line("verified").field("method", factor.as_str()).as_str());
                let left = record
                    .enrollment
                    .as_ref()
                    .map_or(0, |e| e.backup_codes.remaining());
                if factor == Factor::Backup {
                    self.notify("backup-code-used", user, caller, Some(context), now);
                    if left <= BACKUP_CODES_LOW {
                        self.notify("backup-codes-low", user, caller, Some(context), now);
                    }
                }
                reply.offer_new_backup_codes =
                    left == 0 && record.is_enrolled() && self.config().enrollment.at_login;
            }
            Attempt::Rejected { misses, failure } => {
                // Only two codes in a row at one offset make a hint: one guess never does.
                reply.clock_skew_seconds = failure.skew_hint.unwrap_or(0);
                reply.code_replayed = misses.replayed;
                let mut failed = line("failed")
                    .field("source", &source)
                    .field("failures", record.attempts.consecutive_failures);
                if let Some(skew) = failure.skew_hint {
                    failed = failed.field("clock_offset_seconds", skew);
                }
                if misses.replayed {
                    failed = failed.field("reason", "replayed");
                }
                self.log.info(failed.as_str());
                if failure.now_locked {
                    self.locked(user, caller, Some(context), &source, &record.attempts, now);
                }
            }
            Attempt::Delayed(seconds) => {
                reply.outcome = VerifyOutcome::Delayed;
                reply.retry_after_seconds = seconds;
                self.log.info(
                    line("delayed")
                        .field("source", &source)
                        .field("retry_after", seconds)
                        .as_str(),
                );
            }
            Attempt::Locked(remaining) => {
                reply.outcome = VerifyOutcome::Locked;
                reply.retry_after_seconds = remaining.unwrap_or(0);
                self.log
                    .info(line("refused-locked").field("source", &source).as_str());
            }
        }
        reply.backup_codes_left = record
            .enrollment
            .as_ref()
            .map_or(0, |e| e.backup_codes.remaining());
        Ok(VerifyAnyReply {
            reply,
            accepted_index,
        })
    }
}
