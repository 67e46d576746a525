//! Helping people through the life of an enrollment: temporary codes for a lost device, codes
//! by another channel, and taking over enrollments from other tools.

use twofactor_proto::codes::{
    self, SENT_CODE_DIGITS, TEMPORARY_CODE_DIGITS, TEMPORARY_CODE_GROUPS,
};
use twofactor_proto::{Error, ImportedEnrollment, LoginContext, TemporaryCode};
use zeroize::Zeroizing;

use super::{Caller, Service, check_context, internal, lock, login_source};
use crate::backup::{self, BackupCodeHashes};
use crate::programs;
use crate::record::{Enrollment, OneTimeCode, TotpEnrollment, UserRecord};
use crate::rules::{
    MAX_SENDS, SEND_WINDOW_SECONDS, SENT_CODE_SECONDS, TEMPORARY_CODE_DEFAULT_SECONDS,
    TEMPORARY_CODE_MAX_SECONDS,
};
use crate::secret::{MIN_IMPORTED_SECRET_LEN, Secret};
use crate::sentences;
use crate::throttle::{self, Gate};
use crate::totp;

/// `2026-12-08 17:00 UTC`.
pub fn format_utc(unix: u64) -> String {
    twofactor_config::human::utc(unix, twofactor_config::human::Precision::Minutes)
}

/// The step of the last code the old tool accepted, 0 when none is given or none near now has
/// it: logins then refuse that code and every older one.
fn step_of_last_code(
    imported: &ImportedEnrollment,
    secret: &Secret,
    algorithm: twofactor_config::Algorithm,
    now: u64,
) -> Result<u64, Error> {
    let code = imported.last_code.as_str();
    if code.is_empty() {
        return Ok(0);
    }
    if code.len() != imported.digits as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::InvalidInput(
            "cannot import: the last code used must be digits of the codes' length".into(),
        ));
    }
    let params = totp::TotpParams {
        algorithm,
        digits: imported.digits,
        period: imported.period,
    };
    Ok(totp::newest_step_of_code(
        secret,
        params,
        code,
        now,
        totp::IMPORTED_LAST_CODE_REACH_STEPS,
    )
    .unwrap_or(0))
}

fn hashed_code(digits: &Zeroizing<String>, expires_at: u64) -> Result<OneTimeCode, Error> {
    let hash = BackupCodeHashes::of(std::slice::from_ref(digits))
        .map_err(|_| internal("the code could not be hashed"))?;
    Ok(OneTimeCode { hash, expires_at })
}

impl Service {
    /// Admin: one single-use code for a user who lost their device, instead of switching 2FA
    /// off. Shown once; stored hashed.
    pub fn issue_temporary_code(
        &self,
        caller: &Caller,
        user: &str,
        expires_in_seconds: u64,
        now: u64,
    ) -> Result<TemporaryCode, Error> {
        super::check_user_name(user)?;
        let lifetime = match expires_in_seconds {
            0 => TEMPORARY_CODE_DEFAULT_SECONDS,
            seconds if seconds <= TEMPORARY_CODE_MAX_SECONDS => seconds,
            _ => {
                return Err(Error::InvalidInput(
                    "a temporary code lasts at most 24 hours".into(),
                ));
            }
        };
        self.existing_account(user)?;
        let digits = backup::random_digits(TEMPORARY_CODE_DIGITS)
            .map_err(|_| internal("no random numbers"))?;
        let expires_at = now.saturating_add(lifetime);
        let temporary_code = hashed_code(&digits, expires_at)?;
        self.change(user, |record| {
            record.get_or_insert_with(UserRecord::new).temporary_code =
                Some(temporary_code.clone());
            Ok(())
        })?;
        self.log.info(
            self.event("temporary-code-issued", user, caller)
                .field("expires_at", expires_at)
                .as_str(),
        );
        self.notify("temporary-code-issued", user, caller, None, now);
        Ok(TemporaryCode {
            code: codes::group(&digits, TEMPORARY_CODE_GROUPS[0]).to_string(),
            expires_at,
        })
    }

    /// Admin: allow or forbid codes by another channel for `user`.
    pub fn set_delivery(&self, caller: &Caller, user: &str, enabled: bool) -> Result<(), Error> {
        super::check_user_name(user)?;
        self.existing_account(user)?;
        self.change(user, |slot| {
            let record = slot.get_or_insert_with(UserRecord::new);
            record.delivery_enabled = enabled;
            if !enabled {
                record.sent_code = None;
            }
            super::remove_if_empty(slot);
            Ok(())
        })?;
        self.log.info(
            self.event("delivery", user, caller)
                .field("enabled", enabled)
                .as_str(),
        );
        Ok(())
    }

    /// Make a 6-digit single-use code, keep its hash, and hand the code to the `[delivery]`
    /// program. Rate-limited per user; refused while the account is locked.
    pub fn send_code(
        &self,
        caller: &Caller,
        user: &str,
        context: &LoginContext,
        now: u64,
    ) -> Result<u64, Error> {
        super::check_user_name(user)?;
        check_context(context)?;
        let command = self
            .config()
            .delivery
            .command
            .clone()
            .ok_or_else(|| Error::PolicyForbids(sentences::NO_DELIVERY_CHANNEL.into()))?;
        self.existing_account(user)?;
        let digits =
            backup::random_digits(SENT_CODE_DIGITS).map_err(|_| internal("no random numbers"))?;
        // A code is sent for one login: its source's delay applies, as the lock does.
        let source = login_source(caller.uid, context).source();
        let rules = &self.config().lockout;
        // Stored first: a code that works must be one we know of.
        let sent = self.change(user, |record| {
            let record = record
                .as_mut()
                .filter(|record| record.delivery_enabled)
                .ok_or_else(|| Error::PolicyForbids(sentences::delivery_off(user)))?;
            match throttle::gate(rules, &record.attempts, &source, now) {
                Gate::Open => {}
                Gate::Delayed(seconds) => return Err(Error::Locked(sentences::delayed(seconds))),
                Gate::Locked(remaining) => {
                    return Err(Error::Locked(sentences::locked(remaining)));
                }
            }
            record
                .sends
                .retain(|&sent| now.saturating_sub(sent) < SEND_WINDOW_SECONDS);
            if record.sends.len() >= MAX_SENDS {
                return Err(Error::Locked(sentences::sends_exhausted(
                    MAX_SENDS,
                    SEND_WINDOW_SECONDS / 60,
                )));
            }
            let sent = hashed_code(&digits, now.saturating_add(SENT_CODE_SECONDS))?;
            record.sent_code = Some(sent.clone());
            record.sends.push(now);
            Ok(sent)
        })?;
        let line = self
            .event("code-sent", user, caller)
            .field("service", &context.service)
            .field("rhost", &context.rhost);
        // Run with no lock held: the program may take its full time limit.
        if !programs::deliver(command.as_path(), user, &digits, self.log.as_ref()) {
            // The code never reached the user: it goes, unless something replaced it.
            self.change(user, |record| {
                if let Some(record) = record
                    && record.sent_code.as_ref() == Some(&sent)
                {
                    record.sent_code = None;
                }
                Ok(())
            })?;
            return Err(internal("the code could not be sent"));
        }
        self.log.info(line.as_str());
        Ok(SENT_CODE_SECONDS)
    }

    /// Admin: take over an enrollment from google-authenticator or pam_oath, so the user's
    /// phone keeps working unchanged.
    pub fn import_enrollment(
        &self,
        caller: &Caller,
        user: &str,
        imported: &ImportedEnrollment,
        now: u64,
    ) -> Result<(), Error> {
        super::check_user_name(user)?;
        let invalid = |what: &str| Error::InvalidInput(sentences::cannot_import(what));
        let secret = Secret::from_base32(&imported.secret_base32.to_ascii_uppercase())
            .filter(|secret| secret.as_bytes().len() >= MIN_IMPORTED_SECRET_LEN)
            .ok_or_else(|| invalid("the secret is not base32 of at least 80 bits"))?;
        let algorithm = imported
            .algorithm
            .known()
            .ok_or_else(|| invalid("unknown algorithm"))?;
        if !codes::TOTP_DIGITS.contains(&(imported.digits as usize)) {
            return Err(invalid(&format!(
                "codes must have {} to {} digits",
                codes::TOTP_DIGITS.start(),
                codes::TOTP_DIGITS.end()
            )));
        }
        if !(15..=120).contains(&imported.period) {
            return Err(invalid("the period must be 15 to 120 seconds"));
        }
        if imported.window > 10 {
            return Err(invalid("the window must be at most 10 steps"));
        }
        let last_step = imported
            .last_step
            .max(step_of_last_code(imported, &secret, algorithm, now)?);
        let scratch: Vec<Zeroizing<String>> = imported
            .scratch_codes
            .iter()
            .map(|code| Zeroizing::new(code.clone()))
            .collect();
        let length = scratch.first().map_or(0, |code| code.len());
        let well_formed = scratch.len() <= 64
            && scratch
                .iter()
                .all(|code| code.len() == length && code.bytes().all(|b| b.is_ascii_digit()))
            && (scratch.is_empty() || (6..=10).contains(&length));
        if !well_formed || (length == imported.digits as usize && !scratch.is_empty()) {
            return Err(invalid(
                "scratch codes must be digits of one length, unlike the TOTP codes",
            ));
        }
        if imported.source.len() > 64 || imported.source.chars().any(char::is_control) {
            return Err(invalid("bad source name"));
        }
        self.existing_account(user)?;
        let backup_codes = if scratch.is_empty() {
            BackupCodeHashes::default()
        } else {
            BackupCodeHashes::of(&scratch)
                .map_err(|_| internal("scratch codes could not be hashed"))?
        };
        let enrollment = Enrollment {
            totp: TotpEnrollment {
                secret,
                algorithm,
                digits: imported.digits,
                period: imported.period,
                enrolled_at: now,
                last_step: (last_step > 0).then_some(last_step),
                window: (imported.window > 0).then_some(imported.window),
            },
            backup_codes,
        };
        self.change(user, |record| {
            let record = record.get_or_insert_with(UserRecord::new);
            if record.is_enrolled() {
                return Err(Error::AlreadyEnrolled(
                    sentences::already_enrolled_for_import(user),
                ));
            }
            record.enrollment = Some(enrollment.clone());
            record.grace_started = None;
            record.no_grace = false;
            // An enrollment begun before the import must not replace it.
            lock(&self.pending).remove(user);
            Ok(())
        })?;
        self.log.info(
            self.event("imported", user, caller)
                .field("source", &imported.source)
                .field("scratch_codes", scratch.len())
                .as_str(),
        );
        self.notify("enrolled", user, caller, None, now);
        Ok(())
    }
}
