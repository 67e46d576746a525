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
use crate::secret::{MIN_IMPORTED_SECRET_LEN, Secret};
use crate::throttle::{self, Gate};

/// A temporary code lasts an hour unless the admin says otherwise, and never beyond a day.
pub const TEMPORARY_CODE_DEFAULT_SECONDS: u64 = 3600;
pub const TEMPORARY_CODE_MAX_SECONDS: u64 = 86_400;
/// A code sent by the delivery channel: 6 digits, 5 minutes.
pub const SENT_CODE_SECONDS: u64 = 300;
/// At most this many codes sent per user in `SEND_WINDOW_SECONDS`.
const MAX_SENDS: usize = 3;
const SEND_WINDOW_SECONDS: u64 = 900;

/// `2026-12-08 17:00 UTC`.
pub fn format_utc(unix: u64) -> String {
    let seconds = i64::try_from(unix).unwrap_or(i64::MAX);
    match time::OffsetDateTime::from_unix_timestamp(seconds) {
        Ok(at) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute()
        ),
        Err(_) => format!("@{unix}"),
    }
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
        let guard = self.user_lock(user);
        let _serialized = lock(&guard);
        let mut record = self.load(user)?.unwrap_or_else(UserRecord::new);
        let digits = backup::random_digits(TEMPORARY_CODE_DIGITS)
            .map_err(|_| internal("no random numbers"))?;
        let expires_at = now.saturating_add(lifetime);
        record.temporary_code = Some(hashed_code(&digits, expires_at)?);
        self.save(user, &record)?;
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
        let guard = self.user_lock(user);
        let _serialized = lock(&guard);
        let mut record = self.load(user)?.unwrap_or_else(UserRecord::new);
        record.delivery_enabled = enabled;
        if !enabled {
            record.sent_code = None;
        }
        self.save_or_remove(user, &record)?;
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
        let command = self.config().delivery.command.clone().ok_or_else(|| {
            Error::PolicyForbids("no delivery channel is configured ([delivery] command)".into())
        })?;
        self.existing_account(user)?;
        let guard = self.user_lock(user);
        let _serialized = lock(&guard);
        let mut record = self
            .load(user)?
            .filter(|record| record.delivery_enabled)
            .ok_or_else(|| {
                Error::PolicyForbids(format!("codes by another channel are off for {user}"))
            })?;
        // A code is sent for one login: its source's delay applies, as the lock does.
        let source = login_source(caller.uid, context).source();
        match throttle::gate(&self.config().lockout, &record.attempts, &source, now) {
            Gate::Open => {}
            Gate::Delayed(seconds) => {
                return Err(Error::Locked(format!(
                    "too many failed attempts: try again in {seconds} s"
                )));
            }
            Gate::Locked(_) => {
                return Err(Error::Locked(
                    "locked after too many failed attempts: ask an administrator".into(),
                ));
            }
        }
        record
            .sends
            .retain(|&sent| now.saturating_sub(sent) < SEND_WINDOW_SECONDS);
        if record.sends.len() >= MAX_SENDS {
            return Err(Error::Locked(format!(
                "{MAX_SENDS} codes were sent in the last {} minutes: use one of them, or wait",
                SEND_WINDOW_SECONDS / 60
            )));
        }
        let digits =
            backup::random_digits(SENT_CODE_DIGITS).map_err(|_| internal("no random numbers"))?;
        record.sent_code = Some(hashed_code(&digits, now.saturating_add(SENT_CODE_SECONDS))?);
        record.sends.push(now);
        // Stored first: a code that works must be one we know of.
        self.save(user, &record)?;
        let line = self
            .event("code-sent", user, caller)
            .field("service", &context.service)
            .field("rhost", &context.rhost);
        if !programs::deliver(command.as_path(), user, &digits, self.log.as_ref()) {
            record.sent_code = None;
            self.save(user, &record)?;
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
        let invalid = |what: &str| Error::InvalidInput(format!("cannot import: {what}"));
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
        let guard = self.user_lock(user);
        let _serialized = lock(&guard);
        let mut record = self.load(user)?.unwrap_or_else(UserRecord::new);
        if record.is_enrolled() {
            return Err(Error::AlreadyEnrolled(format!(
                "{user} is already enrolled with twofactor; reset first to import"
            )));
        }
        let backup_codes = if scratch.is_empty() {
            BackupCodeHashes::default()
        } else {
            BackupCodeHashes::of(&scratch)
                .map_err(|_| internal("scratch codes could not be hashed"))?
        };
        record.enrollment = Some(Enrollment {
            totp: TotpEnrollment {
                secret,
                algorithm,
                digits: imported.digits,
                period: imported.period,
                enrolled_at: now,
                last_step: (imported.last_step > 0).then_some(imported.last_step),
                window: (imported.window > 0).then_some(imported.window),
            },
            backup_codes,
        });
        record.grace_started = None;
        record.no_grace = false;
        self.save(user, &record)?;
        // An enrollment begun before the import must not replace it.
        lock(&self.pending).remove(user);
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
