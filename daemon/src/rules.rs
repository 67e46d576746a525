//! What happens at a login, decided with no I/O: the plan for a user's login, one attempt
//! with its codes, and which codes count for what. Each takes the record, the configuration
//! and `now`, and returns the outcome together with the changes to commit (in the record it
//! is handed, or as a flag such as [`LoginDecision::start_grace`]); the service runs them
//! inside a transaction and logs after the commit. Throttling is `crate::throttle`.

use twofactor_config::{Config, Policy, Source};
use zeroize::Zeroizing;

use crate::record::{AttemptState, SkewMatch, UserRecord};
use crate::throttle::{self, Failure, Gate};
use crate::totp::{self, TotpCheck};

/// A pending enrollment expires after this many seconds.
pub const ENROLLMENT_TTL_SECONDS: u64 = 600;
/// Wrong confirmation codes allowed for one pending enrollment.
pub const ENROLLMENT_MAX_TRIES: u32 = 5;
/// A temporary code lasts an hour unless the admin says otherwise, and never beyond a day.
pub const TEMPORARY_CODE_DEFAULT_SECONDS: u64 = 3600;
pub const TEMPORARY_CODE_MAX_SECONDS: u64 = 86_400;
/// A code sent by the delivery channel (6 digits) lasts 5 minutes.
pub const SENT_CODE_SECONDS: u64 = 300;
/// At most this many codes sent per user in `SEND_WINDOW_SECONDS`.
pub const MAX_SENDS: usize = 3;
pub const SEND_WINDOW_SECONDS: u64 = 900;

/// Which kind of code was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    Totp,
    Backup,
    Temporary,
    Sent,
}

impl Factor {
    /// What a login accepts.
    pub const AT_LOGIN: &[Factor] = &[
        Factor::Totp,
        Factor::Backup,
        Factor::Temporary,
        Factor::Sent,
    ];
    /// What authorizes a change to one's own enrollment (regenerate, disable).
    pub const FOR_CHANGES: &[Factor] = &[Factor::Totp, Factor::Backup];
    /// What authorizes replacing the device: a temporary code is for exactly that.
    pub const FOR_REPLACING: &[Factor] = &[Factor::Totp, Factor::Backup, Factor::Temporary];

    pub fn as_str(self) -> &'static str {
        match self {
            Factor::Totp => "totp",
            Factor::Backup => "backup-code",
            Factor::Temporary => "temporary-code",
            Factor::Sent => "sent-code",
        }
    }
}

/// Result of one code attempt against a stored enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Accepted {
        factor: Factor,
        /// Which of the candidates.
        index: usize,
        failures_before: u32,
        last_failure_before: u64,
    },
    Rejected {
        misses: Misses,
        failure: Failure,
    },
    /// This source waits this many seconds.
    Delayed(u64),
    /// Every source is locked, for this many seconds or until an admin unlocks (`None`).
    Locked(Option<u64>),
}

/// A change (replace, regenerate, disable) refused for its code.
#[derive(Debug)]
pub enum CodeRefused {
    Wrong {
        now_locked: bool,
        attempts: AttemptState,
    },
    Delayed(u64),
    Locked(Option<u64>),
}

/// A change is asked for by the user (never root's report of a login): local.
pub const CHANGE_SOURCE: Source = Source::Local;

/// What a rejected attempt can tell the user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Misses {
    /// Where the TOTP code matched outside the window, if it did.
    pub skew: Option<SkewMatch>,
    /// The TOTP code was right but already used.
    pub replayed: bool,
}

/// One code from `source` against a stored enrollment, throttled (see
/// [`crate::throttle`]). Updates `record` in memory; the caller commits it. An error is
/// a stored code that cannot be checked.
pub fn attempt(
    config: &Config,
    record: &mut UserRecord,
    candidates: &[Zeroizing<String>],
    allowed: &[Factor],
    source: &Source,
    now: u64,
) -> Result<Attempt, std::io::Error> {
    let rules = &config.lockout;
    throttle::expire(rules, &mut record.attempts, now);
    match throttle::gate(rules, &record.attempts, source, now) {
        Gate::Open => {}
        Gate::Delayed(seconds) => return Ok(Attempt::Delayed(seconds)),
        Gate::Locked(remaining) => return Ok(Attempt::Locked(remaining)),
    }
    let mut misses = Misses::default();
    let default_window = config.totp.window.get();
    let accepted = match_factor(
        record,
        candidates,
        allowed,
        default_window,
        now,
        &mut misses,
    )?;
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
    record: &mut UserRecord,
    candidates: &[Zeroizing<String>],
    allowed: &[Factor],
    default_window: u32,
    now: u64,
    misses: &mut Misses,
) -> Result<Option<(Factor, usize)>, std::io::Error> {
    let first = |fits: &dyn Fn(&str) -> bool| {
        candidates
            .iter()
            .position(|digits| fits(digits))
            .and_then(|index| Some((index, candidates.get(index)?.as_str())))
    };
    if let Some(enrollment) = record.enrollment.as_mut() {
        let totp = &mut enrollment.totp;
        if allowed.contains(&Factor::Totp)
            && let Some((index, digits)) = first(&|digits| digits.len() == totp.digits as usize)
        {
            let window = totp.window.unwrap_or(default_window);
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
            && let Some(found) = backup_codes.find(digits)?
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
            && code.hash.find(digits)?.is_some()
        {
            *slot = None;
            return Ok(Some((factor, index)));
        }
    }
    Ok(None)
}

/// What a login should do, as the policy and the user's record decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Ask for a code (enrolled, or holding a temporary code).
    Prompt { can_send_code: bool },
    /// 2FA does not apply.
    Ignore,
    /// Required but not enrolled, within the grace period that ends then.
    InGrace { ends: u64 },
    /// Required, not enrolled, no grace: enroll inside this login.
    Enroll,
    /// Required, not enrolled, no grace, and enrollment is not allowed here.
    Deny,
}

/// A login's outcome, and whether its grace period starts now (to be stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginDecision {
    pub outcome: LoginOutcome,
    pub start_grace: bool,
}

/// What a login's plan depends on besides the policy and the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginSetting {
    /// `[enrollment] grace_period`, in seconds.
    pub grace_seconds: Option<u64>,
    /// Enrollment at login is allowed for this login's source.
    pub enroll_here: bool,
    /// A delivery channel is configured.
    pub delivery_configured: bool,
}

/// Whether a login under `policy` depends on the record at all.
pub fn login_reads_record(policy: Policy) -> bool {
    policy != Policy::Disabled
}

/// The product's main decision table. The grace period counts from the first login after
/// the user became required while not enrolled; an admin's reset (`no_grace`) gives none.
pub fn plan_login(
    policy: Policy,
    record: Option<&UserRecord>,
    setting: LoginSetting,
    now: u64,
) -> LoginDecision {
    let decided = |outcome| LoginDecision {
        outcome,
        start_grace: false,
    };
    if !login_reads_record(policy) {
        return decided(LoginOutcome::Ignore);
    }
    if let Some(record) = record
        && (record.is_enrolled() || record.live_temporary_code(now).is_some())
    {
        return decided(LoginOutcome::Prompt {
            can_send_code: record.delivery_enabled && setting.delivery_configured,
        });
    }
    if policy != Policy::Required {
        return decided(LoginOutcome::Ignore);
    }
    let no_grace = record.is_some_and(|record| record.no_grace);
    if let Some(grace) = setting.grace_seconds.filter(|_| !no_grace) {
        let started = record.and_then(|record| record.grace_started);
        let ends = started.unwrap_or(now).saturating_add(grace);
        if now < ends {
            return LoginDecision {
                outcome: LoginOutcome::InGrace { ends },
                start_grace: started.is_none(),
            };
        }
        if started.is_none() {
            // A grace period of zero: it starts, and is over.
            return LoginDecision {
                outcome: not_enrolled(setting),
                start_grace: true,
            };
        }
    }
    decided(not_enrolled(setting))
}

fn not_enrolled(setting: LoginSetting) -> LoginOutcome {
    match setting.enroll_here {
        true => LoginOutcome::Enroll,
        false => LoginOutcome::Deny,
    }
}

/// A change's code, as [`attempt`] judged it: `Err` is a refusal (whose failure count is in
/// the record, to be committed all the same).
pub fn change_allowed(attempt: Attempt, attempts: &AttemptState) -> Result<(), CodeRefused> {
    match attempt {
        Attempt::Accepted { .. } => Ok(()),
        Attempt::Rejected { failure, .. } => Err(CodeRefused::Wrong {
            now_locked: failure.now_locked,
            attempts: attempts.clone(),
        }),
        Attempt::Delayed(seconds) => Err(CodeRefused::Delayed(seconds)),
        Attempt::Locked(remaining) => Err(CodeRefused::Locked(remaining)),
    }
}

/// A write no change may make, whichever host or bug makes it: the guard every commit
/// passes ([`guard_commit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unguarded {
    /// The replay watermark of the same enrollment would fall, letting a used code in again.
    WatermarkFalls,
    /// A spent backup code of the same set would be valid again.
    BackupCodeReturns,
}

impl Unguarded {
    pub fn as_str(self) -> &'static str {
        match self {
            Unguarded::WatermarkFalls => "the replay watermark would fall",
            Unguarded::BackupCodeReturns => "a spent backup code would come back",
        }
    }
}

/// Whether `after` may replace `before`. Within one enrollment (same secret, same start),
/// the replay watermark only rises and backup codes are only spent; a new enrollment or a
/// new set of codes starts afresh. Under the store's lock this always holds; it is checked
/// so that no path to the shared store can break it.
pub fn guard_commit(
    before: Option<&UserRecord>,
    after: Option<&UserRecord>,
) -> Result<(), Unguarded> {
    let (Some(before), Some(after)) = (
        before.and_then(|record| record.enrollment.as_ref()),
        after.and_then(|record| record.enrollment.as_ref()),
    ) else {
        return Ok(());
    };
    let same_enrollment = before.totp.enrolled_at == after.totp.enrolled_at
        && crate::secret::constant_time_eq(
            before.totp.secret.as_bytes(),
            after.totp.secret.as_bytes(),
        );
    if !same_enrollment {
        return Ok(());
    }
    if after.totp.last_step < before.totp.last_step {
        return Err(Unguarded::WatermarkFalls);
    }
    let (old, new) = (&before.backup_codes, &after.backup_codes);
    if old.salt == new.salt && new.hashes.iter().any(|hash| !old.hashes.contains(hash)) {
        return Err(Unguarded::BackupCodeReturns);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
