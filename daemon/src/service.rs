//! What the daemon decides, with no D-Bus in sight: who a caller is (from the uid the bus layer
//! established) and what it may do (`crate::authz`), codes, backup codes, throttling,
//! enrollment and policy. Logins are in `login`, enrollment and its changes in `enrollment`.
//!
//! Every method takes `now` (Unix seconds) so windows, delays and expiries are tested at exact
//! instants. Every change to a user is one store transaction ([`Service::change`]), committed
//! durably before the method returns; its logs and notifications come after the commit.

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
use crate::identity::CallerIdentity;
use crate::log::{EventLog, Line};
use crate::programs::{Event, NoNotifier, Notifier};
use crate::record::{AttemptState, Enrollment, LastUse, TotpEnrollment, UserRecord};
use crate::rules::{
    self, Attempt, CHANGE_SOURCE, CodeRefused, ENROLLMENT_MAX_TRIES, ENROLLMENT_TTL_SECONDS,
    Factor, LoginOutcome, LoginSetting,
};
use crate::secret::Secret;
use crate::sentences;
use crate::store::{Store, StoreError};
use crate::throttle;
use crate::totp::{self, TotpCheck, TotpParams};

/// Runs of one change before a backend that keeps reporting conflicts is given up on.
const CONFLICT_RETRIES: usize = 3;

/// Who is calling: its [`CallerIdentity`] and what the accounts say about its uid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    /// The user name of `uid`, if it has one.
    pub name: Option<String>,
    /// Root, or a member of the admin group.
    pub admin: bool,
    /// The key of the caller's connection ([`crate::identity::Peer::key`]); pending
    /// enrollments belong to it.
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

#[derive(Debug, Clone)]
struct Pending {
    owner: PendingOwner,
    secret: Secret,
    params: TotpParams,
    created: u64,
    replace: bool,
    wrong_tries: u32,
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
    Error::Internal(sentences::internal(what))
}

fn check_user_name(user: &str) -> Result<(), Error> {
    if twofactor_proto::is_valid_username(user) {
        Ok(())
    } else {
        Err(Error::InvalidInput(sentences::INVALID_USER_NAME.into()))
    }
}

/// A code argument reduced to its digits, after checking its shape.
fn code_digits(code: &str) -> Result<Zeroizing<String>, Error> {
    if !codes::is_plausible_code(code) {
        return Err(Error::InvalidInput(sentences::code_shape()));
    }
    Ok(codes::normalize(code))
}

fn check_context(context: &LoginContext) -> Result<(), Error> {
    for value in [&context.service, &context.rhost, &context.tty] {
        if value.len() > MAX_CONTEXT_LEN || value.chars().any(char::is_control) {
            return Err(Error::InvalidInput(sentences::INVALID_CONTEXT.into()));
        }
    }
    Ok(())
}

/// A record with nothing left worth keeping goes.
fn remove_if_empty(record: &mut Option<UserRecord>) {
    if record.as_ref().is_some_and(UserRecord::is_empty) {
        *record = None;
    }
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
    /// `host_now` (this host's clock, Unix seconds) on the store's clock: a fleet counts
    /// TOTP steps and stored times by its database's, so that a host with a fast clock
    /// cannot push the shared replay watermark ahead.
    pub fn now(&self, host_now: u64) -> u64 {
        host_now.saturating_add_signed(self.store.clock_offset())
    }

    pub fn replace_config(&self, config: Config, notifier: Arc<dyn Notifier>) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
        *self.notifier.write().unwrap_or_else(|p| p.into_inner()) = notifier;
    }

    /// Establish who a uid is. If that cannot be done, the caller gets nothing.
    pub fn caller(&self, identity: &CallerIdentity) -> Result<Caller, Error> {
        let uid = identity.uid;
        let connection = identity.peer.key();
        if uid == 0 {
            return Ok(Caller {
                uid,
                name: Some("root".into()),
                admin: true,
                connection,
            });
        }
        let account = self.accounts.by_uid(uid).map_err(|error| {
            self.log.warning(
                Line::new("caller-unknown")
                    .field("uid", uid)
                    .field("error", &error)
                    .as_str(),
            );
            Error::AccessDenied(sentences::UNKNOWN_CALLER.into())
        })?;
        let admin_group = &self.config().admin.group;
        Ok(Caller {
            uid,
            admin: account
                .as_ref()
                .is_some_and(|a| a.groups.iter().any(|g| g == admin_group)),
            name: account.map(|a| a.name),
            connection,
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
            .ok_or_else(|| Error::NoSuchUser(sentences::no_such_user(user)))
    }

    fn decide(&self, account: &Account) -> PolicyDecision {
        self.config().policy.resolve(&account.name, &account.groups)
    }

    fn load(&self, user: &str) -> Result<Option<UserRecord>, Error> {
        self.store
            .load(user)
            .map_err(|error| self.store_failure(user, &error))
    }

    /// One transaction on `user`'s record. `change` edits the record as it stands (`None`: no
    /// record); the result is committed, durably, if it differs, and then what `change`
    /// returned comes back. An `Err` from `change` rolls back, so an outcome that must be
    /// stored whatever happens (a failed attempt, a spent code) is part of its `Ok` value.
    /// `change` may run again after a conflict: it has no side effects, and the logs and
    /// notifications come after, from what it returned. Unreadable state is an error.
    fn change<T>(
        &self,
        user: &str,
        mut change: impl FnMut(&mut Option<UserRecord>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        // Logged after the transaction is gone: never a log line under the user's lock.
        let mut unreadable_error = None;
        let changed = self.transact(user, |record, unreadable| match unreadable {
            Some(error) => {
                let unavailable = matches!(error, StoreError::Unavailable { .. });
                unreadable_error = Some((error.to_string(), unavailable));
                Err(internal(sentences::STORE_UNAVAILABLE))
            }
            None => change(record),
        });
        match unreadable_error {
            Some((error, unavailable)) => Err(self.store_failure_text(user, &error, unavailable)),
            None => changed,
        }
    }

    /// [`Self::change`], but `change` is also handed the error of an unreadable record (with
    /// the record `None`), for the one change that replaces whatever is there: a reset.
    fn transact<T>(
        &self,
        user: &str,
        mut change: impl FnMut(&mut Option<UserRecord>, Option<&StoreError>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        for _ in 0..CONFLICT_RETRIES {
            let transaction = match self.store.begin(user) {
                Ok(transaction) => transaction,
                // The user's lock was not had in time (a shared backend's lock timeout):
                // waiting again would outlast the login's deadline.
                Err(StoreError::Conflict) => return Err(self.kept_changing(user)),
                Err(error) => return Err(self.store_failure(user, &error)),
            };
            let (before, unreadable) = match transaction.current() {
                Ok(record) => (record.clone(), None),
                Err(error) => (None, Some(error)),
            };
            let mut record = before.clone();
            let value = change(&mut record, unreadable)?;
            if record == before && unreadable.is_none() {
                return Ok(value);
            }
            if let Err(unguarded) = rules::guard_commit(before.as_ref(), record.as_ref()) {
                // Rolled back by the drop: a bug, never a login.
                self.log.warning(
                    Line::new("write-refused")
                        .field("user", user)
                        .field("error", unguarded.as_str())
                        .as_str(),
                );
                return Err(internal(unguarded.as_str()));
            }
            match transaction.commit(record.as_ref()) {
                Ok(()) => return Ok(value),
                Err(StoreError::Conflict) => continue,
                Err(error) => return Err(self.store_failure(user, &error)),
            }
        }
        Err(self.kept_changing(user))
    }

    fn kept_changing(&self, user: &str) -> Error {
        self.log
            .warning(Line::new("state-conflict").field("user", user).as_str());
        Error::Busy(sentences::kept_changing(user))
    }

    fn store_failure(&self, user: &str, error: &StoreError) -> Error {
        let unavailable = matches!(error, StoreError::Unavailable { .. });
        self.store_failure_text(user, &error.to_string(), unavailable)
    }

    fn store_failure_text(&self, user: &str, error: &str, unavailable: bool) -> Error {
        if unavailable {
            // The store logged the outage once (its breaker); a line per login would bury it.
            return internal(sentences::STORE_UNAVAILABLE);
        }
        self.log.warning(
            Line::new("state-error")
                .field("user", user)
                .field("error", error)
                .as_str(),
        );
        internal(&sentences::unusable_state(user))
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

    fn status_of(&self, user: &str, account: Option<&Account>, now: u64) -> UserStatus {
        let decision = match account {
            Some(account) => self.decide(account),
            None => self.config().policy.resolve(user, &[]),
        };
        let mut status = UserStatus {
            user: user.to_owned(),
            enrolled: false,
            policy: decision.policy.into(),
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
            status.problem = sentences::NO_ACCOUNT_STATUS.into();
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
                // A reset would delete what the newer daemon wrote.
                status.problem = match error {
                    StoreError::NewerVersion { .. } => sentences::NEWER_STATE_STATUS,
                    _ => sentences::UNREADABLE_STATUS,
                }
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
            policy: decision.policy.into(),
            source: decision.source.to_string(),
            explanation: decision.explanation(),
        })
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
mod enrollment;
mod lifecycle;
mod login;
mod roster;
#[cfg(test)]
mod tests;

pub use lifecycle::format_utc;
