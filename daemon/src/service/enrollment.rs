//! Enrollment and the changes that need a code or an administrator: new, confirmed,
//! replaced, at login, new backup codes, disabled, reset, unlocked.

use super::*;

impl Service {
    /// Parameters of new enrollments.
    pub(super) fn new_params(&self) -> TotpParams {
        TotpParams {
            algorithm: self.config().totp.algorithm,
            digits: self.config().totp.digits.get(),
            period: self.config().totp.period.get(),
        }
    }

    fn issuer(&self) -> String {
        self.config()
            .totp
            .issuer
            .clone()
            .unwrap_or_else(|| self.host.clone())
    }

    /// Start an enrollment owned by the caller's connection. With `replace`, an existing
    /// enrollment stays active until the new one is confirmed.
    pub fn begin_enrollment(
        &self,
        caller: &Caller,
        user: &str,
        replace: bool,
        current_code: &str,
        now: u64,
    ) -> Result<EnrollmentOffer, Error> {
        check_user_name(user)?;
        self.existing_account(user)?;
        let owner = PendingOwner::Connection(caller.connection.clone());
        let (offer, entry) = self.offer(user, owner, now)?;
        // Only a replace that was checked here may replace at confirmation: an enrollment
        // that appears meanwhile (an import) is not overwritten by an unchecked one. The
        // entry is held inside the user's transaction, so a reset or an import after the
        // check removes it.
        let started = self.change(user, |record| {
            let replacing = match record.as_mut().filter(|r| r.is_enrolled()) {
                None => false,
                Some(_) if !replace => {
                    return Err(Error::AlreadyEnrolled(sentences::already_enrolled(user)));
                }
                Some(record) => {
                    // After a temporary-code login the lost device cannot give a code.
                    let without_code = now < record.replace_without_code_until;
                    if caller.is(user) && !without_code {
                        let allowed = Factor::FOR_REPLACING;
                        if let Err(refused) =
                            self.check_change_code(record, current_code, allowed, now)?
                        {
                            return Ok(Err(refused));
                        }
                    }
                    true
                }
            };
            let entry = Pending {
                replace: replacing,
                ..entry.clone()
            };
            self.hold(user, entry, now);
            Ok(Ok(()))
        })?;
        started.map_err(|refused| self.change_refused(caller, user, refused, now))?;
        self.log
            .info(self.event("enrollment-started", user, caller).as_str());
        Ok(offer)
    }

    /// A new secret for `owner`, and how to show it; [`Self::hold`] makes it pending.
    fn offer(
        &self,
        user: &str,
        owner: PendingOwner,
        now: u64,
    ) -> Result<(EnrollmentOffer, Pending), Error> {
        let secret = Secret::generate().map_err(|_| internal("no random numbers"))?;
        let params = self.new_params();
        let issuer = self.issuer();
        let account_name = format!("{user}@{}", self.host);
        let secret_base32 = secret.to_base32();
        let mut otpauth_uri = format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}",
            percent_encode(&issuer),
            percent_encode(&account_name),
            secret_base32.as_str(),
            percent_encode(&issuer),
        );
        // What authenticator apps assume when a parameter is absent (SHA1, 6 digits, 30 s) is
        // left out: the shorter the URI, the smaller its QR code.
        if params.algorithm != twofactor_config::Algorithm::Sha1 {
            otpauth_uri.push_str(&format!("&algorithm={}", params.algorithm.as_str()));
        }
        if params.digits != 6 {
            otpauth_uri.push_str(&format!("&digits={}", params.digits));
        }
        if params.period != 30 {
            otpauth_uri.push_str(&format!("&period={}", params.period));
        }
        let entry = Pending {
            owner,
            secret,
            params,
            created: now,
            replace: false,
            wrong_tries: 0,
        };
        let offer = EnrollmentOffer {
            otpauth_uri,
            secret_base32: secret_base32.to_string(),
            label: format!("{issuer}:{account_name}"),
            issuer,
            algorithm: params.algorithm.into(),
            digits: params.digits,
            period: params.period,
            expires_in_seconds: ENROLLMENT_TTL_SECONDS,
        };
        Ok((offer, entry))
    }

    /// Make `entry` the pending enrollment of `user`, in place of any other.
    fn hold(&self, user: &str, entry: Pending, now: u64) {
        let mut pending = lock(&self.pending);
        pending.retain(|_, p| now.saturating_sub(p.created) < ENROLLMENT_TTL_SECONDS);
        pending.insert(user.to_owned(), entry);
    }

    /// Confirm the caller's pending enrollment with a code from the new device. Returns the
    /// backup codes; this is the only time they exist in plain text.
    pub fn confirm_enrollment(
        &self,
        caller: &Caller,
        user: &str,
        code: &str,
        now: u64,
    ) -> Result<Vec<String>, Error> {
        let digits = code_digits(code)?;
        check_user_name(user)?;
        let owner = PendingOwner::Connection(caller.connection.clone());
        self.complete_enrollment(caller, user, &owner, &digits, None, now)
    }

    /// The pending enrollment of `user`, if `owner` holds it, confirmed by `digits`.
    fn complete_enrollment(
        &self,
        caller: &Caller,
        user: &str,
        owner: &PendingOwner,
        digits: &str,
        context: Option<&LoginContext>,
        now: u64,
    ) -> Result<Vec<String>, Error> {
        let no_pending = || Error::NoPendingEnrollment(sentences::no_pending_enrollment(user));
        let held_by = |entry: &Pending| match (&entry.owner, owner) {
            (PendingOwner::Connection(a), PendingOwner::Connection(b)) => a == b,
            (PendingOwner::Token(a), PendingOwner::Token(b)) => {
                crate::secret::constant_time_eq(a.as_bytes(), b.as_bytes())
            }
            _ => false,
        };
        // The user's transaction first, then the pending map (the order everywhere): nothing
        // can reset, replace or confirm this user in between, and the entry is gone before
        // the enrollment is stored, so one code confirms once.
        let mut taken = false;
        let window = self.config().totp.window.get();
        let (plain, replace) = self.change(user, |record| {
            if taken {
                // Run again after a conflict, with the entry already taken: whatever was
                // committed in between (a reset) stands, and this confirmation is over.
                return Err(no_pending());
            }
            let mut pending = lock(&self.pending);
            let entry = pending.get_mut(user).ok_or_else(no_pending)?;
            if !held_by(entry) || now.saturating_sub(entry.created) >= ENROLLMENT_TTL_SECONDS {
                return Err(no_pending());
            }
            let check = totp::check(&entry.secret, entry.params, digits, now, window, None);
            let TotpCheck::Accepted { step } = check else {
                entry.wrong_tries += 1;
                if entry.wrong_tries >= ENROLLMENT_MAX_TRIES {
                    pending.remove(user);
                    return Err(Error::WrongCode(sentences::WRONG_NEW_CODE_LAST.into()));
                }
                return Err(Error::WrongCode(sentences::WRONG_NEW_CODE.into()));
            };
            let Pending {
                secret,
                params,
                replace,
                ..
            } = pending.remove(user).ok_or_else(no_pending)?;
            drop(pending);
            taken = true;
            let record = record.get_or_insert_with(UserRecord::new);
            if record.is_enrolled() && !replace {
                return Err(Error::AlreadyEnrolled(sentences::enrolled_meanwhile(user)));
            }
            let (plain, hashes) = backup::generate(BACKUP_CODE_COUNT)
                .map_err(|_| internal("backup codes could not be made"))?;
            record.enrollment = Some(Enrollment {
                totp: TotpEnrollment {
                    secret,
                    algorithm: params.algorithm,
                    digits: params.digits,
                    period: params.period,
                    enrolled_at: now,
                    last_step: Some(step),
                    window: None,
                },
                backup_codes: hashes,
            });
            record.attempts = AttemptState::default();
            record.grace_started = None;
            record.no_grace = false;
            record.temporary_code = None;
            record.replace_without_code_until = 0;
            if let Some(context) = context {
                // Enrolling at login was this login's second factor.
                record.last_success = Some(LastUse {
                    time: now,
                    service: context.service.clone(),
                    rhost: context.rhost.clone(),
                });
            }
            Ok((plain, replace))
        })?;
        let event = if replace {
            "enrollment-replaced"
        } else {
            "enrolled"
        };
        self.log.info(self.event(event, user, caller).as_str());
        self.notify(event, user, caller, context, now);
        Ok(plain.iter().map(|code| code.to_string()).collect())
    }

    /// Root only: begin an enrollment inside a login, held by a token rather than a connection
    /// (the PAM module opens a new connection for every call).
    pub fn begin_login_enrollment(
        &self,
        caller: &Caller,
        user: &str,
        context: &LoginContext,
        now: u64,
    ) -> Result<LoginEnrollment, Error> {
        check_user_name(user)?;
        check_context(context)?;
        // Only where the login's own plan says so.
        let plan = self.login_plan(caller, user, context, now)?;
        if plan.action != LoginAction::Enroll {
            return Err(Error::PolicyForbids(
                "enrollment at login does not apply here".into(),
            ));
        }
        let mut token = [0u8; 16];
        crate::secret::fill_random(&mut token).map_err(|_| internal("no random numbers"))?;
        let token: String = token.iter().map(|b| format!("{b:02x}")).collect();
        let (offer, entry) = self.offer(user, PendingOwner::Token(token.clone()), now)?;
        self.hold(user, entry, now);
        self.log.info(
            self.event("enrollment-started", user, caller)
                .field("at_login", "yes")
                .field("service", &context.service)
                .field("rhost", &context.rhost)
                .as_str(),
        );
        Ok(LoginEnrollment { token, offer })
    }

    /// Root only: confirm a login enrollment with its token.
    pub fn confirm_login_enrollment(
        &self,
        caller: &Caller,
        user: &str,
        token: &str,
        code: &str,
        context: &LoginContext,
        now: u64,
    ) -> Result<Vec<String>, Error> {
        let digits = code_digits(code)?;
        check_user_name(user)?;
        check_context(context)?;
        let owner = PendingOwner::Token(token.to_owned());
        self.complete_enrollment(caller, user, &owner, &digits, Some(context), now)
    }

    /// New backup codes; the old ones stop working. The user must give a current code.
    pub fn regenerate_backup_codes(
        &self,
        caller: &Caller,
        user: &str,
        code: &str,
        now: u64,
    ) -> Result<Vec<String>, Error> {
        check_user_name(user)?;
        self.existing_account(user)?;
        let not_enrolled = || Error::NotEnrolled(sentences::not_enrolled(user));
        let regenerated = self.change(user, |record| {
            let record = record
                .as_mut()
                .filter(|r| r.is_enrolled())
                .ok_or_else(not_enrolled)?;
            if caller.is(user)
                && let Err(refused) =
                    self.check_change_code(record, code, Factor::FOR_CHANGES, now)?
            {
                return Ok(Err(refused));
            }
            // Codes that cannot be made are an error, but the code given stays spent.
            let Ok((plain, hashes)) = backup::generate(BACKUP_CODE_COUNT) else {
                return Ok(Ok(None));
            };
            let hashes: BackupCodeHashes = hashes;
            record
                .enrollment
                .as_mut()
                .ok_or_else(not_enrolled)?
                .backup_codes = hashes;
            Ok(Ok(Some(plain)))
        })?;
        let plain = regenerated
            .map_err(|refused| self.change_refused(caller, user, refused, now))?
            .ok_or_else(|| internal("backup codes could not be made"))?;
        self.log.info(
            self.event("backup-codes-regenerated", user, caller)
                .as_str(),
        );
        self.notify("backup-codes-regenerated", user, caller, None, now);
        Ok(plain.iter().map(|code| code.to_string()).collect())
    }

    /// Remove an enrollment with a current code, unless the policy requires 2FA.
    pub fn disable(&self, caller: &Caller, user: &str, code: &str, now: u64) -> Result<(), Error> {
        check_user_name(user)?;
        let decision = self.decide(&self.existing_account(user)?);
        if decision.policy == Policy::Required {
            return Err(Error::PolicyForbids(sentences::required_so_not_disabled(
                user,
                &decision.explanation(),
            )));
        }
        let disabled = self.change(user, |slot| {
            let record = slot
                .as_mut()
                .filter(|r| r.is_enrolled())
                .ok_or_else(|| Error::NotEnrolled(sentences::not_enrolled(user)))?;
            if caller.is(user)
                && let Err(refused) =
                    self.check_change_code(record, code, Factor::FOR_CHANGES, now)?
            {
                return Ok(Err(refused));
            }
            record.enrollment = None;
            record.temporary_code = None;
            record.sent_code = None;
            remove_if_empty(slot);
            Ok(Ok(()))
        })?;
        disabled.map_err(|refused| self.change_refused(caller, user, refused, now))?;
        self.log.info(self.event("disabled", user, caller).as_str());
        self.notify("disabled", user, caller, None, now);
        Ok(())
    }

    /// Admin: remove a user's enrollment, state and any pending enrollment. Works on
    /// unreadable state too. The user gets no new grace period.
    pub fn reset_user(&self, caller: &Caller, user: &str, now: u64) -> Result<(), Error> {
        check_user_name(user)?;
        // One atomic replace, and nothing removed first: until the new record is durable the
        // old one stands, so a failed write never leaves the user with no record (and so a
        // fresh grace period).
        let mut had_pending = false;
        self.transact(user, |record, unreadable| {
            had_pending |= lock(&self.pending).remove(user).is_some();
            // Unreadable state counts as something to reset.
            let had_enrollment = unreadable.is_some()
                || record
                    .as_ref()
                    .is_some_and(|r| r.is_enrolled() || r.temporary_code.is_some());
            if !had_enrollment && !had_pending {
                return Err(Error::NotEnrolled(sentences::not_enrolled(user)));
            }
            *record = Some(UserRecord {
                no_grace: true,
                ..UserRecord::new()
            });
            Ok(())
        })?;
        self.log.info(self.event("reset", user, caller).as_str());
        self.notify("reset", user, caller, None, now);
        Ok(())
    }

    /// Admin: clear a lockout and the consecutive failure count.
    pub fn unlock_user(&self, caller: &Caller, user: &str) -> Result<(), Error> {
        check_user_name(user)?;
        self.change(user, |record| {
            let record = record
                .as_mut()
                .ok_or_else(|| Error::NotEnrolled(sentences::not_enrolled(user)))?;
            throttle::unlock(&mut record.attempts);
            Ok(())
        })?;
        self.log.info(self.event("unlocked", user, caller).as_str());
        Ok(())
    }
}
