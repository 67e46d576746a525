//! A login: its plan, and the check of its codes with throttling by source.

use super::*;

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

    /// A code that authorizes a change (replace, regenerate, disable): it is spent like a login.
    pub(super) fn require_code(
        &self,
        caller: &Caller,
        user: &str,
        record: &mut UserRecord,
        code: &str,
        allowed: &[Factor],
        now: u64,
    ) -> Result<(), Error> {
        let digits = code_digits(code)?;
        // A change is asked for by the user (never root's report of a login): local.
        let source = Source::Local;
        let attempt = self.attempt(record, std::slice::from_ref(&digits), allowed, &source, now);
        // The failure count (or the spent code) is stored whatever the outcome.
        self.save(user, record)?;
        match attempt? {
            Attempt::Accepted { .. } => Ok(()),
            Attempt::Rejected { failure, .. } => {
                self.log.info(
                    self.event("failed", user, caller)
                        .field("purpose", "change")
                        .field("source", &source)
                        .as_str(),
                );
                if failure.now_locked {
                    self.locked(user, caller, None, &source, &record.attempts, now);
                }
                Err(Error::WrongCode("the code is not valid".into()))
            }
            Attempt::Delayed(seconds) => Err(Error::Locked(format!(
                "too many failed attempts: try again in {seconds} s"
            ))),
            Attempt::Locked(remaining) => Err(Error::Locked(match remaining {
                Some(seconds) => format!(
                    "locked after too many failed attempts: try again in {seconds} s, or ask \
                     an administrator"
                ),
                None => "locked after too many failed attempts: ask an administrator".into(),
            })),
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
        let guard = self.user_lock(user);
        let _serialized = lock(&guard);
        let mut record = self.load(user)?;
        if let Some(record) = &record
            && (record.is_enrolled() || record.live_temporary_code(now).is_some())
        {
            return Ok(LoginPlan {
                can_send_code: record.delivery_enabled && self.config().delivery.command.is_some(),
                ..plan(LoginAction::Prompt, String::new())
            });
        }
        if decision.policy != Policy::Required {
            return Ok(plan(LoginAction::Ignore, String::new()));
        }
        if let Some(grace) = self.config().enrollment.grace_period {
            let record = record.get_or_insert_with(UserRecord::new);
            if !record.no_grace {
                let started = match record.grace_started {
                    Some(started) => started,
                    None => {
                        // Counted from the first login attempt after becoming required.
                        record.grace_started = Some(now);
                        self.save(user, record)?;
                        self.log.info(
                            Line::new("grace-started")
                                .field("user", user)
                                .field("rule", &decision.source)
                                .as_str(),
                        );
                        now
                    }
                };
                let ends = started.saturating_add(grace.get());
                if now < ends {
                    return Ok(plan(
                        LoginAction::Ignore,
                        format!(
                            "Two-factor authentication will be required for {user} from {}. \
                             Set it up now with `twofactor enroll`.",
                            format_utc(ends)
                        ),
                    ));
                }
            }
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
        let guard = self.user_lock(user);
        let _serialized = lock(&guard);
        let Some(mut record) = self.load(user)? else {
            return reject_unknown("not-enrolled");
        };
        if !record.is_enrolled() && record.live_temporary_code(now).is_none() {
            return reject_unknown("not-enrolled");
        }
        let source = login_source(caller.uid, context).source();
        let attempt = self.attempt(&mut record, candidates, Factor::AT_LOGIN, &source, now)?;
        match attempt {
            Attempt::Accepted {
                factor,
                index,
                failures_before,
                last_failure_before,
            } => {
                record.last_success = Some(LastUse {
                    time: now,
                    service: context.service.clone(),
                    rhost: context.rhost.clone(),
                });
                if factor == Factor::Temporary {
                    record.replace_without_code_until = now.saturating_add(ENROLLMENT_TTL_SECONDS);
                }
                self.save(user, &record)?;
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
                self.save(user, &record)?;
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
