//! A login: its plan, and the check of its codes with throttling by source.

use super::*;

/// What a user's record says of a login, decided inside its transaction.
enum RecordPlan {
    /// Enrolled, or holding a temporary code.
    Prompt { can_send_code: bool },
    /// Not required, and not enrolled.
    Ignore,
    /// Required, not enrolled, within the grace period (which this login may have started).
    InGrace { ends: u64, started_now: bool },
    /// Required, not enrolled, and no grace.
    NotEnrolled,
}

/// What the record said of one login attempt, decided inside its transaction.
enum Checked {
    /// No record, or nothing to check a code against.
    NotEnrolled,
    /// The attempt, and the record as committed after it.
    Attempted(Attempt, Box<UserRecord>),
}

impl Service {
    /// One code from `source` against a stored enrollment, throttled (see
    /// [`crate::throttle`]). Updates `record` in memory; the caller stores it.
    fn attempt(
        &self,
        record: &mut UserRecord,
        candidates: &[Zeroizing<String>],
        allowed: &[Factor],
        source: &Source,
        now: u64,
    ) -> Result<Attempt, Error> {
        let config = self.config();
        let rules = &config.lockout;
        throttle::expire(rules, &mut record.attempts, now);
        match throttle::gate(rules, &record.attempts, source, now) {
            Gate::Open => {}
            Gate::Delayed(seconds) => return Ok(Attempt::Delayed(seconds)),
            Gate::Locked(remaining) => return Ok(Attempt::Locked(remaining)),
        }
        let mut misses = Misses::default();
        let accepted = self.match_factor(record, candidates, allowed, now, &mut misses)?;
        let attempts = &mut record.attempts;
        if let Some((factor, index)) = accepted {
            let outcome = Attempt::Accepted {
                factor,
                index,
                failures_before: attempts.failures_since_success,
                last_failure_before: attempts.last_failure,
            };
            throttle::succeeded(attempts, source);
            return Ok(outcome);
        }
        let failure = throttle::failed(rules, attempts, source, misses.skew, now);
        Ok(Attempt::Rejected { misses, failure })
    }

    /// The factor one of `candidates` (normalized) matches, and which candidate, spending it
    /// in `record`. Each `allowed` kind of code is tried once, against the first candidate of
    /// its length: more candidates never mean more guesses. Comparisons are constant-time.
    fn match_factor(
        &self,
        record: &mut UserRecord,
        candidates: &[Zeroizing<String>],
        allowed: &[Factor],
        now: u64,
        misses: &mut Misses,
    ) -> Result<Option<(Factor, usize)>, Error> {
        let first = |fits: &dyn Fn(&str) -> bool| {
            candidates
                .iter()
                .position(|digits| fits(digits))
                .and_then(|index| Some((index, candidates.get(index)?.as_str())))
        };
        let hash_error = |error: std::io::Error| {
            self.log
                .warning(Line::new("state-error").field("error", error).as_str());
            internal("stored codes cannot be checked")
        };
        if let Some(enrollment) = record.enrollment.as_mut() {
            let totp = &mut enrollment.totp;
            if allowed.contains(&Factor::Totp)
                && let Some((index, digits)) = first(&|digits| digits.len() == totp.digits as usize)
            {
                let window = totp
                    .window
                    .unwrap_or_else(|| self.config().totp.window.get());
                match totp::check(
                    &totp.secret,
                    totp.params(),
                    digits,
                    now,
                    window,
                    totp.last_step,
                ) {
                    TotpCheck::Accepted { step } => {
                        totp.last_step = Some(step);
                        return Ok(Some((Factor::Totp, index)));
                    }
                    TotpCheck::Replayed => misses.replayed = true,
                    TotpCheck::Wrong { skew } => misses.skew = skew,
                }
            }
            let backup_codes = &mut enrollment.backup_codes;
            if allowed.contains(&Factor::Backup)
                && let Some((index, digits)) = first(&|digits| backup_codes.fits(digits))
                && let Some(found) = backup_codes.find(digits).map_err(hash_error)?
            {
                backup_codes.remove(found);
                return Ok(Some((Factor::Backup, index)));
            }
        }
        for (slot, factor) in [
            (&mut record.temporary_code, Factor::Temporary),
            (&mut record.sent_code, Factor::Sent),
        ] {
            let Some(code) = slot.as_ref().filter(|_| allowed.contains(&factor)) else {
                continue;
            };
            if now >= code.expires_at {
                *slot = None;
                continue;
            }
            if let Some((index, digits)) = first(&|digits| code.hash.fits(digits))
                && code.hash.find(digits).map_err(hash_error)?.is_some()
            {
                *slot = None;
                return Ok(Some((factor, index)));
            }
        }
        Ok(None)
    }

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
        let source = CHANGE_SOURCE;
        Ok(
            match self.attempt(record, std::slice::from_ref(&digits), allowed, &source, now)? {
                Attempt::Accepted { .. } => Ok(()),
                Attempt::Rejected { failure, .. } => Err(CodeRefused::Wrong {
                    now_locked: failure.now_locked,
                    attempts: record.attempts.clone(),
                }),
                Attempt::Delayed(seconds) => Err(CodeRefused::Delayed(seconds)),
                Attempt::Locked(remaining) => Err(CodeRefused::Locked(remaining)),
            },
        )
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
            CodeRefused::Delayed(seconds) => Error::Locked(format!(
                "too many failed attempts: try again in {seconds} s"
            )),
            CodeRefused::Locked(remaining) => Error::Locked(match remaining {
                Some(seconds) => format!(
                    "locked after too many failed attempts: try again in {seconds} s, or ask \
                     an administrator"
                ),
                None => "locked after too many failed attempts: ask an administrator".into(),
            }),
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
                Error::WrongCode("the code is not valid".into())
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
        if decision.policy == Policy::Disabled {
            return Ok(plan(LoginAction::Ignore, String::new()));
        }
        // Whether this login is inside the grace period: counted from the first login attempt
        // after the user became required, which is stored.
        let grace = self.config().enrollment.grace_period;
        let plan_of_record = self.change(user, |record| {
            if let Some(record) = record
                && (record.is_enrolled() || record.live_temporary_code(now).is_some())
            {
                return Ok(RecordPlan::Prompt {
                    can_send_code: record.delivery_enabled,
                });
            }
            if decision.policy != Policy::Required {
                return Ok(RecordPlan::Ignore);
            }
            let Some(grace) = grace else {
                return Ok(RecordPlan::NotEnrolled);
            };
            let record = record.get_or_insert_with(UserRecord::new);
            if record.no_grace {
                return Ok(RecordPlan::NotEnrolled);
            }
            let started_now = record.grace_started.is_none();
            let ends = record
                .grace_started
                .get_or_insert(now)
                .saturating_add(grace.get());
            Ok(match now < ends {
                true => RecordPlan::InGrace { ends, started_now },
                false => RecordPlan::NotEnrolled,
            })
        })?;
        match plan_of_record {
            RecordPlan::Prompt { can_send_code } => {
                return Ok(LoginPlan {
                    can_send_code: can_send_code && self.config().delivery.command.is_some(),
                    ..plan(LoginAction::Prompt, String::new())
                });
            }
            RecordPlan::Ignore => return Ok(plan(LoginAction::Ignore, String::new())),
            RecordPlan::InGrace { ends, started_now } => {
                if started_now {
                    self.log.info(
                        Line::new("grace-started")
                            .field("user", user)
                            .field("rule", &decision.source)
                            .as_str(),
                    );
                }
                return Ok(plan(
                    LoginAction::Ignore,
                    format!(
                        "Two-factor authentication will be required for {user} from {}. \
                         Set it up now with `twofactor enroll`.",
                        format_utc(ends)
                    ),
                ));
            }
            RecordPlan::NotEnrolled => {}
        }
        if self
            .config()
            .enrollment
            .allows_at_login(&login_source(caller.uid, context))
        {
            return Ok(plan(
                LoginAction::Enroll,
                format!(
                    "Two-factor authentication is required for {user} ({}). Set it up now \
                     with an authenticator app on your phone.",
                    decision.source
                ),
            ));
        }
        self.log.info(
            Line::new("denied-not-enrolled")
                .field("user", user)
                .field("rule", &decision.source)
                .field("service", &context.service)
                .field("rhost", &context.rhost)
                .as_str(),
        );
        Ok(plan(
            LoginAction::Deny,
            format!(
                "Two-factor authentication is required for {user} ({}) but is not set up. \
                 Run `twofactor enroll` in a session that is already logged in, or ask an \
                 administrator to set it up with `twofactor enroll --user {user}`.",
                decision.source
            ),
        ))
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
        let checked = self.change(user, |record| {
            let Some(record) = record
                .as_mut()
                .filter(|r| r.is_enrolled() || r.live_temporary_code(now).is_some())
            else {
                return Ok(Checked::NotEnrolled);
            };
            let attempt = self.attempt(record, candidates, Factor::AT_LOGIN, &source, now)?;
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
