//! What the daemon decides, with no D-Bus in sight: authorization of a caller (whose uid the bus
//! layer established), codes, backup codes, rate limiting, enrollment and policy.
//!
//! Every method takes `now` (Unix seconds) so windows, delays and expiries are tested at exact
//! instants. One user's changes are serialized by a per-user lock; users never wait on each
//! other. Every change is stored before the method returns.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use twofactor_config::{Config, LoginSource, Policy, PolicyDecision, Source};
use twofactor_proto::{
    BACKUP_CODE_COUNT, BACKUP_CODES_LOW, EnrollmentOffer, Error, LoginAction, LoginContext,
    LoginEnrollment, LoginPlan, MAX_CONTEXT_LEN, PolicyExplanation, ThrottledSource, UserStatus,
    VerifyAnyReply, VerifyOutcome, VerifyReply, codes,
};
use zeroize::Zeroizing;

use crate::accounts::{Account, Accounts};
use crate::authz;
use crate::backup::{self, BackupCodeHashes};
use crate::log::{EventLog, Line};
use crate::programs::{Event, NoNotifier, Notifier};
use crate::record::{AttemptState, Enrollment, LastUse, SkewMatch, TotpEnrollment, UserRecord};
use crate::secret::Secret;
use crate::store::{Store, StoreError};
use crate::throttle::{self, Failure, Gate};
use crate::totp::{self, TotpCheck, TotpParams};

/// A pending enrollment expires after this many seconds.
pub const ENROLLMENT_TTL_SECONDS: u64 = 600;
/// Wrong confirmation codes allowed for one pending enrollment.
const ENROLLMENT_MAX_TRIES: u32 = 5;

/// Who is calling, as established from the uid the bus reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    /// The user name of `uid`, if it has one.
    pub name: Option<String>,
    /// Root, or a member of the admin group.
    pub admin: bool,
    /// The caller's unique bus name; pending enrollments belong to it.
    pub connection: String,
}

impl Caller {
    pub fn is(&self, user: &str) -> bool {
        self.name.as_deref() == Some(user)
    }
}

/// Who may confirm a pending enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PendingOwner {
    /// The bus connection that began it (the CLI).
    Connection(String),
    /// Whoever holds this token (a login: the PAM module opens a connection per call).
    Token(String),
}

#[derive(Debug)]
struct Pending {
    owner: PendingOwner,
    secret: Secret,
    params: TotpParams,
    created: u64,
    replace: bool,
    wrong_tries: u32,
}

/// Which kind of code was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Factor {
    Totp,
    Backup,
    Temporary,
    Sent,
}

impl Factor {
    /// What a login accepts.
    const AT_LOGIN: &[Factor] = &[
        Factor::Totp,
        Factor::Backup,
        Factor::Temporary,
        Factor::Sent,
    ];
    /// What authorizes a change to one's own enrollment (regenerate, disable).
    const FOR_CHANGES: &[Factor] = &[Factor::Totp, Factor::Backup];
    /// What authorizes replacing the device: a temporary code is for exactly that.
    const FOR_REPLACING: &[Factor] = &[Factor::Totp, Factor::Backup, Factor::Temporary];

    fn as_str(self) -> &'static str {
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
enum Attempt {
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

/// What a rejected attempt can tell the user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Misses {
    /// Where the TOTP code matched outside the window, if it did.
    skew: Option<SkewMatch>,
    /// The TOTP code was right but already used.
    replayed: bool,
}

/// The daemon's logic.
pub struct Service {
    /// Swapped whole by [`Service::replace_config`] (SIGHUP); each use reads the current one.
    config: RwLock<Arc<Config>>,
    store: Arc<dyn Store>,
    accounts: Arc<dyn Accounts>,
    log: Arc<dyn EventLog>,
    /// The `[notify]` command's runner, swapped with the configuration.
    notifier: RwLock<Arc<dyn Notifier>>,
    host: String,
    user_locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    pending: Mutex<HashMap<String, Pending>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not wedge every later login; the data is plain state.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn internal(what: &str) -> Error {
    Error::Internal(format!("{what}; see the twofactord log"))
}

fn check_user_name(user: &str) -> Result<(), Error> {
    if twofactor_proto::is_valid_username(user) {
        Ok(())
    } else {
        Err(Error::InvalidInput("invalid user name".into()))
    }
}

/// A code argument reduced to its digits, after checking its shape.
fn code_digits(code: &str) -> Result<Zeroizing<String>, Error> {
    if !codes::is_plausible_code(code) {
        return Err(Error::InvalidInput(format!(
            "a code is {} to {} digits, a backup code {} digits, a temporary code {} digits \
             (at most {} characters with dashes or spaces)",
            codes::TOTP_DIGITS.start(),
            codes::TOTP_DIGITS.end(),
            codes::BACKUP_CODE_DIGITS,
            codes::TEMPORARY_CODE_DIGITS,
            codes::MAX_CODE_LEN,
        )));
    }
    Ok(codes::normalize(code))
}

fn check_context(context: &LoginContext) -> Result<(), Error> {
    for value in [&context.service, &context.rhost, &context.tty] {
        if value.len() > MAX_CONTEXT_LEN || value.chars().any(char::is_control) {
            return Err(Error::InvalidInput("invalid login context".into()));
        }
    }
    Ok(())
}

/// What a login's context can be trusted for: only root (a login program) reports it; any
/// other caller chooses its own service, tty and remote host.
pub fn login_source(caller_uid: u32, context: &LoginContext) -> LoginSource {
    LoginSource::new(
        &context.service,
        &context.tty,
        &context.rhost,
        caller_uid == 0,
    )
}

/// What stays as it is in an otpauth URI's label and issuer: RFC 3986's unreserved
/// characters, and `@` (account names are often addresses).
const URI_KEPT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@');

fn percent_encode(text: &str) -> String {
    utf8_percent_encode(text, URI_KEPT).to_string()
}

impl Service {
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        accounts: Arc<dyn Accounts>,
        log: Arc<dyn EventLog>,
        host: String,
    ) -> Service {
        Service {
            config: RwLock::new(Arc::new(config)),
            store,
            accounts,
            log,
            notifier: RwLock::new(Arc::new(NoNotifier)),
            host,
            user_locks: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// The event log, for the bus layer's own lines.
    pub fn event_log(&self) -> &dyn EventLog {
        self.log.as_ref()
    }

    /// Where events go (the `[notify]` command).
    pub fn with_notifier(self, notifier: Arc<dyn Notifier>) -> Service {
        *self.notifier.write().unwrap_or_else(|p| p.into_inner()) = notifier;
        self
    }

    /// The configuration in force now.
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Put `config`, and the notifier of its `[notify]` command, in force for every later
    /// call (calls under way keep what they read).
    pub fn replace_config(&self, config: Config, notifier: Arc<dyn Notifier>) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
        *self.notifier.write().unwrap_or_else(|p| p.into_inner()) = notifier;
    }

    /// Establish who a uid is. If that cannot be done, the caller gets nothing.
    pub fn caller(&self, uid: u32, connection: &str) -> Result<Caller, Error> {
        if uid == 0 {
            return Ok(Caller {
                uid,
                name: Some("root".into()),
                admin: true,
                connection: connection.to_owned(),
            });
        }
        let account = self.accounts.by_uid(uid).map_err(|error| {
            self.log.warning(
                Line::new("caller-unknown")
                    .field("uid", uid)
                    .field("error", &error)
                    .as_str(),
            );
            Error::AccessDenied("cannot establish who you are".into())
        })?;
        let admin_group = &self.config().admin.group;
        Ok(Caller {
            uid,
            admin: account
                .as_ref()
                .is_some_and(|a| a.groups.iter().any(|g| g == admin_group)),
            name: account.map(|a| a.name),
            connection: connection.to_owned(),
        })
    }

    /// Whether `caller` may call `method` about `user` (see [`crate::authz`]): checked
    /// before every method runs. A malformed user name is refused first, as invalid input.
    pub fn authorize(&self, method: &str, caller: &Caller, user: &str) -> Result<(), Error> {
        if authz::rule_of(method) == Some(authz::Rule::SelfOrAdmin) {
            check_user_name(user)?;
        }
        authz::check(method, caller, user, &self.config().admin.group)
    }

    fn account(&self, user: &str) -> Result<Option<Account>, Error> {
        self.accounts
            .by_name(user)
            .map_err(|error| self.lookup_failed(user, &error))
    }

    /// `user`'s policy at login; `None` if no account has exactly that name (see
    /// [`Self::is_exact`]). Its groups are looked up only if they can change the answer.
    fn policy_of(&self, user: &str) -> Result<Option<PolicyDecision>, Error> {
        if self.config().policy.needs_groups(user) {
            return Ok(self
                .account(user)?
                .filter(|account| self.is_exact(user, &account.name))
                .map(|account| self.decide(&account)));
        }
        Ok(self
            .has_exact_account(user)?
            .then(|| self.config().policy.resolve(user, &[])))
    }

    /// Whether an account has exactly the name `user`, for calls that need no groups.
    fn has_exact_account(&self, user: &str) -> Result<bool, Error> {
        let found = self
            .accounts
            .name_of(user)
            .map_err(|error| self.lookup_failed(user, &error))?;
        Ok(found.is_some_and(|found| self.is_exact(user, &found)))
    }

    /// Whether NSS found the account under the name a login gave. A case-insensitive
    /// directory answers `ALICE` with `alice`; the records and the policy rules are kept under
    /// the exact name, so another spelling would read as someone not enrolled. It is treated
    /// as no such user instead (asked for a code, refused), and logged.
    fn is_exact(&self, asked: &str, found: &str) -> bool {
        if asked == found {
            return true;
        }
        self.log.warning(
            Line::new("user-name-differs")
                .field("user", asked)
                .field("account", found)
                .as_str(),
        );
        false
    }

    fn lookup_failed(&self, user: &str, error: &str) -> Error {
        self.log.warning(
            Line::new("nss-error")
                .field("user", user)
                .field("error", error)
                .as_str(),
        );
        internal("user lookup failed")
    }

    fn existing_account(&self, user: &str) -> Result<Account, Error> {
        self.account(user)?
            .ok_or_else(|| Error::NoSuchUser(format!("no user {user} on this system")))
    }

    fn decide(&self, account: &Account) -> PolicyDecision {
        self.config().policy.resolve(&account.name, &account.groups)
    }

    fn user_lock(&self, user: &str) -> Arc<Mutex<()>> {
        lock(&self.user_locks)
            .entry(user.to_owned())
            .or_default()
            .clone()
    }

    fn load(&self, user: &str) -> Result<Option<UserRecord>, Error> {
        self.store
            .load(user)
            .map_err(|error| self.store_failure(user, &error))
    }

    fn save(&self, user: &str, record: &UserRecord) -> Result<(), Error> {
        self.store
            .save(user, record)
            .map_err(|error| self.store_failure(user, &error))
    }

    fn store_failure(&self, user: &str, error: &StoreError) -> Error {
        self.log.warning(
            Line::new("state-error")
                .field("user", user)
                .field("error", error)
                .as_str(),
        );
        internal(&format!("the state of user {user} cannot be used"))
    }

    fn notify(
        &self,
        name: &'static str,
        user: &str,
        caller: &Caller,
        context: Option<&LoginContext>,
        now: u64,
    ) {
        let notifier = self
            .notifier
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        notifier.notify(Event {
            name,
            user: user.to_owned(),
            by_uid: caller.uid,
            service: context
                .map(|c| c.service.clone())
                .unwrap_or_else(|| "twofactor".into()),
            rhost: context.map(|c| c.rhost.clone()).unwrap_or_default(),
            source: context
                .map_or(Source::Local, |c| login_source(caller.uid, c).source())
                .to_string(),
            time: now,
        });
    }

    /// A failure from `source` reached the ceiling: every source is locked.
    fn locked(
        &self,
        user: &str,
        caller: &Caller,
        context: Option<&LoginContext>,
        source: &Source,
        attempts: &AttemptState,
        now: u64,
    ) {
        self.log.warning(
            self.event("locked", user, caller)
                .field("source", source)
                .field("failures", attempts.consecutive_failures)
                .field(
                    "locked_for_seconds",
                    attempts.locked_until.saturating_sub(now),
                )
                .as_str(),
        );
        self.notify("locked", user, caller, context, now);
    }

    fn event(&self, event: &str, user: &str, caller: &Caller) -> Line {
        Line::new(event)
            .field("user", user)
            .field("by_uid", caller.uid)
    }

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
    fn require_code(
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
    fn verify_candidates(
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

    fn status_of(&self, user: &str, account: Option<&Account>, now: u64) -> UserStatus {
        let decision = match account {
            Some(account) => self.decide(account),
            None => self.config().policy.resolve(user, &[]),
        };
        let mut status = UserStatus {
            user: user.to_owned(),
            enrolled: false,
            policy: decision.policy.to_string(),
            policy_source: decision.source.to_string(),
            backup_codes_left: 0,
            locked: false,
            retry_after_seconds: 0,
            failures_since_success: 0,
            enrolled_at: 0,
            last_success_time: 0,
            last_success_service: String::new(),
            last_success_rhost: String::new(),
            problem: String::new(),
            grace_ends_at: 0,
            temporary_code_expires_at: 0,
            delivery_enabled: false,
        };
        if account.is_none() {
            status.problem = "no such user on this system".into();
        }
        match self.store.load(user) {
            Ok(None) => {}
            Ok(Some(record)) => {
                let attempts = &record.attempts;
                if let Some(enrollment) = &record.enrollment {
                    status.enrolled = true;
                    status.enrolled_at = enrollment.totp.enrolled_at;
                    status.backup_codes_left = enrollment.backup_codes.remaining();
                } else if decision.policy == Policy::Required
                    && let (Some(started), Some(grace)) =
                        (record.grace_started, self.config().enrollment.grace_period)
                {
                    status.grace_ends_at = started.saturating_add(grace.get());
                }
                status.temporary_code_expires_at = record
                    .live_temporary_code(now)
                    .map_or(0, |code| code.expires_at);
                status.delivery_enabled = record.delivery_enabled;
                let lock = throttle::lock_remaining(attempts, now);
                status.locked = lock.is_some();
                status.retry_after_seconds = lock.flatten().unwrap_or(0);
                status.failures_since_success = attempts.failures_since_success;
                if let Some(last) = record.last_success {
                    status.last_success_time = last.time;
                    status.last_success_service = last.service;
                    status.last_success_rhost = last.rhost;
                }
            }
            Err(error) => {
                self.store_failure(user, &error);
                status.enrolled = true;
                status.locked = true;
                status.problem =
                    "state unreadable: logins are refused; see the twofactord log, then reset"
                        .into();
            }
        }
        status
    }

    /// Sources with recent failures for `user`, oldest first. Unreadable state is an error.
    pub fn throttled_sources(&self, user: &str, now: u64) -> Result<Vec<ThrottledSource>, Error> {
        check_user_name(user)?;
        self.existing_account(user)?;
        let Some(record) = self.load(user)? else {
            return Ok(Vec::new());
        };
        Ok(throttle::throttled(
            &self.config().lockout,
            &record.attempts,
            now,
        ))
    }

    /// Enrollment and lockout state of one user.
    pub fn status(&self, user: &str, now: u64) -> Result<UserStatus, Error> {
        check_user_name(user)?;
        let account = self.existing_account(user)?;
        Ok(self.status_of(user, Some(&account), now))
    }

    /// Which policy applies and why.
    pub fn explain_policy(&self, user: &str) -> Result<PolicyExplanation, Error> {
        check_user_name(user)?;
        let decision = self.decide(&self.existing_account(user)?);
        Ok(PolicyExplanation {
            user: user.to_owned(),
            policy: decision.policy.to_string(),
            source: decision.source.to_string(),
            explanation: decision.explanation(),
        })
    }

    /// Parameters of new enrollments.
    fn new_params(&self) -> TotpParams {
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
        let guard = self.user_lock(user);
        let _serialized = lock(&guard);
        // Only a replace that was checked here may replace at confirmation: an enrollment
        // that appears meanwhile (an import) is not overwritten by an unchecked one.
        let mut replacing = false;
        if let Some(mut record) = self.load(user)?
            && record.is_enrolled()
        {
            if !replace {
                return Err(Error::AlreadyEnrolled(format!(
                    "{user} is already enrolled; replace the enrollment to move to a new device"
                )));
            }
            // After a temporary-code login the lost device cannot give a code.
            let allowed = now < record.replace_without_code_until;
            if caller.is(user) && !allowed {
                let allowed = Factor::FOR_REPLACING;
                self.require_code(caller, user, &mut record, current_code, allowed, now)?;
            }
            replacing = true;
        }
        let owner = PendingOwner::Connection(caller.connection.clone());
        let offer = self.offer(user, owner, replacing, now)?;
        self.log
            .info(self.event("enrollment-started", user, caller).as_str());
        Ok(offer)
    }

    /// A new secret, pending for `owner`, and how to show it.
    fn offer(
        &self,
        user: &str,
        owner: PendingOwner,
        replace: bool,
        now: u64,
    ) -> Result<EnrollmentOffer, Error> {
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
        let mut pending = lock(&self.pending);
        pending.retain(|_, p| now.saturating_sub(p.created) < ENROLLMENT_TTL_SECONDS);
        pending.insert(
            user.to_owned(),
            Pending {
                owner,
                secret,
                params,
                created: now,
                replace,
                wrong_tries: 0,
            },
        );
        Ok(EnrollmentOffer {
            otpauth_uri,
            secret_base32: secret_base32.to_string(),
            label: format!("{issuer}:{account_name}"),
            issuer,
            algorithm: params.algorithm.as_str().to_owned(),
            digits: params.digits,
            period: params.period,
            expires_in_seconds: ENROLLMENT_TTL_SECONDS,
        })
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
        let no_pending = || {
            Error::NoPendingEnrollment(format!(
                "no enrollment for {user} was started from here in the last 10 minutes"
            ))
        };
        let held_by = |entry: &Pending| match (&entry.owner, owner) {
            (PendingOwner::Connection(a), PendingOwner::Connection(b)) => a == b,
            (PendingOwner::Token(a), PendingOwner::Token(b)) => {
                crate::secret::constant_time_eq(a.as_bytes(), b.as_bytes())
            }
            _ => false,
        };
        // The user's lock first, then the pending map (the order everywhere): nothing can
        // reset, replace or confirm this user in between, and the entry is gone before the
        // enrollment is stored, so one code confirms once.
        let guard = self.user_lock(user);
        let _serialized = lock(&guard);
        let (secret, params, replace, step) = {
            let mut pending = lock(&self.pending);
            let entry = pending.get_mut(user).ok_or_else(no_pending)?;
            if !held_by(entry) || now.saturating_sub(entry.created) >= ENROLLMENT_TTL_SECONDS {
                return Err(no_pending());
            }
            let check = totp::check(
                &entry.secret,
                entry.params,
                digits,
                now,
                self.config().totp.window.get(),
                None,
            );
            let TotpCheck::Accepted { step } = check else {
                entry.wrong_tries += 1;
                if entry.wrong_tries >= ENROLLMENT_MAX_TRIES {
                    pending.remove(user);
                    return Err(Error::WrongCode(
                        "the code is not valid; too many tries, start again".into(),
                    ));
                }
                return Err(Error::WrongCode(
                    "the code is not valid: check the device's clock and try the next code".into(),
                ));
            };
            let entry = pending.remove(user).ok_or_else(no_pending)?;
            (entry.secret, entry.params, entry.replace, step)
        };
        let mut record = self.load(user)?.unwrap_or_else(UserRecord::new);
        if record.is_enrolled() && !replace {
            return Err(Error::AlreadyEnrolled(format!(
                "{user} was enrolled meanwhile"
            )));
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
        self.save(user, &record)?;
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
        let offer = self.offer(user, PendingOwner::Token(token.clone()), false, now)?;
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
        let guard = self.user_lock(user);
        let _serialized = lock(&guard);
        let not_enrolled = || Error::NotEnrolled(format!("{user} is not enrolled"));
        let mut record = self
            .load(user)?
            .filter(UserRecord::is_enrolled)
            .ok_or_else(not_enrolled)?;
        if caller.is(user) {
            self.require_code(caller, user, &mut record, code, Factor::FOR_CHANGES, now)?;
        }
        let (plain, hashes): (_, BackupCodeHashes) = backup::generate(BACKUP_CODE_COUNT)
            .map_err(|_| internal("backup codes could not be made"))?;
        record
            .enrollment
            .as_mut()
            .ok_or_else(not_enrolled)?
            .backup_codes = hashes;
        self.save(user, &record)?;
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
            return Err(Error::PolicyForbids(format!(
                "two-factor authentication is required for {user} ({})",
                decision.explanation()
            )));
        }
        let guard = self.user_lock(user);
        let _serialized = lock(&guard);
        let mut record = self
            .load(user)?
            .filter(UserRecord::is_enrolled)
            .ok_or_else(|| Error::NotEnrolled(format!("{user} is not enrolled")))?;
        if caller.is(user) {
            self.require_code(caller, user, &mut record, code, Factor::FOR_CHANGES, now)?;
        }
        record.enrollment = None;
        record.temporary_code = None;
        record.sent_code = None;
        self.save_or_remove(user, &record)?;
        self.log.info(self.event("disabled", user, caller).as_str());
        self.notify("disabled", user, caller, None, now);
        Ok(())
    }

    fn save_or_remove(&self, user: &str, record: &UserRecord) -> Result<(), Error> {
        if record.is_empty() {
            self.store
                .remove(user)
                .map(|_| ())
                .map_err(|error| self.store_failure(user, &error))
        } else {
            self.save(user, record)
        }
    }

    /// Admin: remove a user's enrollment, state and any pending enrollment. Works on
    /// unreadable state too. The user gets no new grace period.
    pub fn reset_user(&self, caller: &Caller, user: &str, now: u64) -> Result<(), Error> {
        check_user_name(user)?;
        let guard = self.user_lock(user);
        let _serialized = lock(&guard);
        let had_pending = lock(&self.pending).remove(user).is_some();
        // Unreadable state counts as something to reset.
        let had_enrollment = self.store.load(user).map_or(true, |record| {
            record.is_some_and(|r| r.is_enrolled() || r.temporary_code.is_some())
        });
        if !had_enrollment && !had_pending {
            return Err(Error::NotEnrolled(format!("{user} is not enrolled")));
        }
        // One atomic replace, and nothing removed first: until the new record is durable the
        // old one stands, so a failed write never leaves the user with no record (and so a
        // fresh grace period).
        let mut fresh = UserRecord::new();
        fresh.no_grace = true;
        self.save(user, &fresh)?;
        self.log.info(self.event("reset", user, caller).as_str());
        self.notify("reset", user, caller, None, now);
        Ok(())
    }

    /// Admin: clear a lockout and the consecutive failure count.
    pub fn unlock_user(&self, caller: &Caller, user: &str) -> Result<(), Error> {
        check_user_name(user)?;
        let guard = self.user_lock(user);
        let _serialized = lock(&guard);
        let mut record = self
            .load(user)?
            .ok_or_else(|| Error::NotEnrolled(format!("{user} is not enrolled")))?;
        throttle::unlock(&mut record.attempts);
        self.save(user, &record)?;
        self.log.info(self.event("unlocked", user, caller).as_str());
        Ok(())
    }

    /// A connection left the bus: its pending enrollments go with it.
    pub fn connection_closed(&self, connection: &str) {
        lock(&self.pending)
            .retain(|_, p| p.owner != PendingOwner::Connection(connection.to_owned()));
    }

    #[cfg(test)]
    fn pending_count(&self) -> usize {
        lock(&self.pending).len()
    }
}

mod candidates;
mod lifecycle;
mod roster;
#[cfg(test)]
mod tests;

pub use lifecycle::format_utc;
