//! The D-Bus face of the daemon: `org.twofactor.Daemon1` at `/org/twofactor/Daemon1`.
//!
//! Each method first establishes the caller from the uid the bus reports for the sender, then
//! runs the plain logic in [`crate::service`] on a blocking thread (argon2, fsync) so that other
//! users' calls go on meanwhile.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_lite::StreamExt;
// Replies are spelled out as their structs' `…Args` tuples because the interface macro lists
// the out arguments of a literal tuple one by one, as they travel on the wire.
use twofactor_proto::{
    Algorithm, EnrollmentOffer, Error, ImportedEnrollment, LoginAction, LoginContext, OrUnknown,
    Policy, ThrottledSource, UserStatus, VerifyOutcome, VerifyReply,
};
use zbus::message::Header;
use zbus::{Connection, fdo};

use twofactor_config::Source;

use crate::admission::{Admission, Partition, Refusal};
use crate::log::Line;
use crate::refusals::RefusedCalls;
use crate::service::{Caller, Service, login_source};

/// Largest call body accepted. The largest real one (`VerifyAny` with every candidate and a
/// full context, or an import with its scratch codes) is under 4 KiB.
const MAX_CALL_BYTES: u32 = 64 * 1024;

/// Cached uids beyond which the cache starts over (dbus-daemon allows 2048 connections).
const MAX_CACHED_UIDS: usize = 8192;

/// What a caller is told when its call was not run.
fn refused(refusal: Refusal) -> Error {
    Error::Busy(match refusal {
        Refusal::Busy => {
            "too many calls for this user are running or waiting; try again shortly".into()
        }
        Refusal::CallerLeft => "the caller left".into(),
    })
}

/// Unix seconds: the one place the daemon reads the clock.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

/// Connections that `LoginPlan` let the PAM module keep open through the prompt: at most
/// [`MAX_KEPT_CONNECTIONS`] at once. dbus-daemon allows a uid 256 connections by default, and
/// every login (sshd's, su's) connects as root: logins anyone can leave waiting at a prompt
/// must not be able to use them up. Beyond the bound, logins open a connection per call and
/// hold none while the user types.
#[derive(Debug, Default)]
pub struct KeptConnections {
    names: Mutex<HashSet<String>>,
    /// When the names were last checked against the bus (see [`Self::sweep_due`]).
    last_sweep: Mutex<Option<Instant>>,
}

/// Far below dbus-daemon's default of 256 connections per uid.
pub const MAX_KEPT_CONNECTIONS: usize = 64;

/// How often a full set may be checked against the bus's live names.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

impl KeptConnections {
    /// Whether `unique_name` may keep its connection (it already may, or there is room).
    pub fn grant(&self, unique_name: &str) -> bool {
        let mut kept = self.names.lock().unwrap_or_else(|p| p.into_inner());
        if kept.contains(unique_name) {
            return true;
        }
        if kept.len() >= MAX_KEPT_CONNECTIONS {
            return false;
        }
        kept.insert(unique_name.to_owned())
    }

    /// The connection left the bus: its room is free again.
    pub fn release(&self, unique_name: &str) {
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(unique_name);
    }

    /// Whether to check the names against the bus now: at most once per [`SWEEP_INTERVAL`],
    /// so that a full set costs the bus one `ListNames` now and then, not one per login.
    pub fn sweep_due(&self) -> bool {
        let mut last = self.last_sweep.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last.is_some_and(|last| now.duration_since(last) < SWEEP_INTERVAL) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// Forget every name the bus no longer has.
    pub fn retain_live(&self, live: &HashSet<String>) {
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|name| live.contains(name));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.names.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// The interface object.
#[derive(Debug, Clone)]
pub struct Daemon {
    service: Arc<Service>,
    /// uid of each unique name; unique names are never reused while the bus runs.
    uids: Arc<Mutex<HashMap<String, u32>>>,
    kept: Arc<KeptConnections>,
    admission: Arc<Admission>,
    refusals: Arc<RefusedCalls>,
}

/// Whom a call is for, as its admission needs it: the user it names (empty if none) and the
/// source of the login it is part of, which counts only when root reported it.
#[derive(Debug)]
struct Subject {
    user: String,
    source: Source,
}

impl Subject {
    fn of(user: &str, context: Option<&LoginContext>) -> Subject {
        Subject {
            user: user.to_owned(),
            source: context.map_or(Source::Local, |context| login_source(0, context).source()),
        }
    }
}

impl Daemon {
    pub fn new(service: Arc<Service>) -> Daemon {
        Daemon {
            service,
            uids: Arc::new(Mutex::new(HashMap::new())),
            kept: Arc::new(KeptConnections::default()),
            admission: Arc::new(Admission::default()),
            refusals: Arc::new(RefusedCalls::default()),
        }
    }

    /// The uid the bus reports for the sender, and its unique name.
    async fn sender_uid(
        &self,
        header: &Header<'_>,
        connection: &Connection,
    ) -> Result<(u32, String), Error> {
        let denied = || Error::AccessDenied("cannot establish who you are".into());
        let sender = header.sender().ok_or_else(denied)?.to_string();
        let cached = self
            .uids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&sender)
            .copied();
        if let Some(uid) = cached {
            return Ok((uid, sender));
        }
        let bus = fdo::DBusProxy::new(connection)
            .await
            .map_err(|_| denied())?;
        let name = zbus::names::BusName::try_from(sender.as_str()).map_err(|_| denied())?;
        let uid = bus
            .get_connection_unix_user(name)
            .await
            .map_err(|_| denied())?;
        let mut uids = self.uids.lock().unwrap_or_else(|p| p.into_inner());
        // A caller that leaves during this lookup is stored after its departure was handled,
        // and stays: the cache is only a shortcut, so starting it over keeps it bounded.
        if uids.len() >= MAX_CACHED_UIDS {
            uids.clear();
        }
        uids.insert(sender.clone(), uid);
        Ok((uid, sender))
    }

    /// Admit the call in its partition (see [`crate::admission`]), then establish the caller
    /// (NSS for non-root uids) and run `work` for it, both on one blocking thread. Refusals
    /// are logged, at most one line per caller and minute.
    async fn run<T, F>(
        &self,
        header: &Header<'_>,
        connection: &Connection,
        subject: Subject,
        work: F,
    ) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Service, &Caller, u64) -> Result<T, Error> + Send + 'static,
    {
        // Before anything else, so an oversized call is let go at once: every real one is a
        // few hundred bytes.
        if header.primary().body_len() > MAX_CALL_BYTES {
            return Err(Error::InvalidInput("the call is too large".into()));
        }
        let (uid, sender) = self.sender_uid(header, connection).await?;
        let method = header
            .member()
            .map(|name| name.to_string())
            .unwrap_or_default();
        let result = self
            .admit_and_run(uid, sender, &method, subject, work)
            .await;
        if let Err(error @ (Error::AccessDenied(_) | Error::Busy(_))) = &result {
            self.log_refusal(uid, &method, error);
        }
        result
    }

    async fn admit_and_run<T, F>(
        &self,
        uid: u32,
        sender: String,
        method: &str,
        subject: Subject,
        work: F,
    ) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Service, &Caller, u64) -> Result<T, Error> + Send + 'static,
    {
        let Subject { user, source } = subject;
        let partition = Partition::of(uid, &user, || source);
        let turn = self
            .admission
            .enter(partition, &sender)
            .await
            .map_err(refused)?;
        let service = self.service.clone();
        let admission = self.admission.clone();
        let method = method.to_owned();
        blocking::unblock(move || {
            let _turn = turn;
            // It may have left while the call waited for a thread.
            if admission.has_left(&sender) {
                return Err(refused(Refusal::CallerLeft));
            }
            let caller = service.caller(uid, &sender)?;
            service.authorize(&method, &caller, &user)?;
            work(&service, &caller, now())
        })
        .await
    }

    fn log_refusal(&self, uid: u32, method: &str, error: &Error) {
        let Some(unlogged) = self.refusals.note(uid, now()) else {
            return;
        };
        let reason = match error {
            Error::Busy(_) => "busy",
            _ => "access-denied",
        };
        self.service.event_log().warning(
            Line::new("call-refused")
                .field("uid", uid)
                .field("method", method)
                .field("reason", reason)
                .field("unlogged_since_last", unlogged)
                .as_str(),
        );
    }

    /// Forget a connection that left the bus, with its pending enrollment and its room among
    /// the kept connections.
    pub fn connection_closed(&self, unique_name: &str) {
        self.uids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(unique_name);
        self.kept.release(unique_name);
        self.admission.connection_left(unique_name);
        self.service.connection_closed(unique_name);
    }

    /// Follow NameOwnerChanged until the connection closes.
    pub async fn watch_departures(&self, connection: &Connection) -> zbus::Result<()> {
        let bus = fdo::DBusProxy::new(connection).await?;
        let mut changes = bus.receive_name_owner_changed().await?;
        while let Some(signal) = changes.next().await {
            if let Ok(args) = signal.args() {
                let name = args.name().to_string();
                if name.starts_with(':') && args.new_owner().is_none() {
                    self.connection_closed(&name);
                }
            }
        }
        Ok(())
    }
}

#[zbus::interface(name = "org.twofactor.Daemon1")]
impl Daemon {
    #[zbus(out_args("action", "message", "can_send_code", "keep_connection"))]
    async fn login_plan(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
        context: LoginContext,
    ) -> Result<(LoginAction, String, bool, bool), Error> {
        let (mut plan, by_root) = self
            .run(
                &header,
                connection,
                Subject::of(&user, Some(&context)),
                move |service, caller, now| {
                    let plan = service.login_plan(caller, &user, &context, now)?;
                    Ok((plan, caller.uid == 0))
                },
            )
            .await?;
        // Only a prompt is worth keeping a connection for, and only root logins (sshd, su)
        // count against root's connections to the bus.
        if by_root
            && matches!(plan.action, LoginAction::Prompt | LoginAction::Enroll)
            && let Some(sender) = header.sender()
        {
            plan.keep_connection = self.kept.grant(sender.as_str());
            if !plan.keep_connection && self.kept.sweep_due() {
                // Full: a caller that left while its plan was being made was granted after
                // its departure was handled, and would stay forever. Keep only live names.
                if let Ok(bus) = fdo::DBusProxy::new(connection).await
                    && let Ok(live) = bus.list_names().await
                {
                    let live: HashSet<String> = live.iter().map(|name| name.to_string()).collect();
                    self.kept.retain_live(&live);
                    plan.keep_connection = self.kept.grant(sender.as_str());
                }
            }
        }
        Ok(plan.into())
    }

    #[zbus(out_args(
        "outcome",
        "backup_code_used",
        "backup_codes_left",
        "clock_skew_seconds",
        "retry_after_seconds",
        "failures_since_success",
        "last_failure_time",
        "temporary_code_used",
        "offer_new_backup_codes",
        "code_replayed"
    ))]
    async fn verify(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
        code: String,
        context: LoginContext,
    ) -> Result<
        (
            VerifyOutcome,
            bool,
            u32,
            i64,
            u64,
            u32,
            u64,
            bool,
            bool,
            bool,
        ),
        Error,
    > {
        let code = zeroize::Zeroizing::new(code);
        self.run(
            &header,
            connection,
            Subject::of(&user, Some(&context)),
            move |service, caller, now| service.verify(caller, &user, &code, &context, now),
        )
        .await
        .map(Into::into)
    }

    #[zbus(out_args("reply", "accepted_index"))]
    async fn verify_any(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
        codes: Vec<String>,
        context: LoginContext,
    ) -> Result<(VerifyReply, i32), Error> {
        let codes: Vec<zeroize::Zeroizing<String>> =
            codes.into_iter().map(zeroize::Zeroizing::new).collect();
        self.run(
            &header,
            connection,
            Subject::of(&user, Some(&context)),
            move |service, caller, now| {
                let codes: Vec<&str> = codes.iter().map(|code| code.as_str()).collect();
                service.verify_any(caller, &user, &codes, &context, now)
            },
        )
        .await
        .map(Into::into)
    }

    #[zbus(out_args(
        "user",
        "enrolled",
        "policy",
        "policy_source",
        "backup_codes_left",
        "locked",
        "retry_after_seconds",
        "failures_since_success",
        "enrolled_at",
        "last_success_time",
        "last_success_service",
        "last_success_rhost",
        "problem",
        "grace_ends_at",
        "temporary_code_expires_at",
        "delivery_enabled"
    ))]
    async fn status(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
    ) -> Result<
        (
            String,
            bool,
            OrUnknown<Policy>,
            String,
            u32,
            bool,
            u64,
            u32,
            u64,
            u64,
            String,
            String,
            String,
            u64,
            u64,
            bool,
        ),
        Error,
    > {
        self.run(
            &header,
            connection,
            Subject::of(&user, None),
            move |service, _, now| service.status(&user, now),
        )
        .await
        .map(Into::into)
    }

    #[zbus(out_args("sources"))]
    async fn throttled_sources(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
    ) -> Result<Vec<ThrottledSource>, Error> {
        self.run(
            &header,
            connection,
            Subject::of(&user, None),
            move |service, _, now| service.throttled_sources(&user, now),
        )
        .await
    }

    #[zbus(out_args(
        "otpauth_uri",
        "secret_base32",
        "label",
        "issuer",
        "algorithm",
        "digits",
        "period",
        "expires_in_seconds"
    ))]
    async fn begin_enrollment(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
        replace: bool,
        current_code: String,
    ) -> Result<
        (
            String,
            String,
            String,
            String,
            OrUnknown<Algorithm>,
            u32,
            u32,
            u64,
        ),
        Error,
    > {
        let code = zeroize::Zeroizing::new(current_code);
        self.run(
            &header,
            connection,
            Subject::of(&user, None),
            move |service, caller, now| {
                service.begin_enrollment(caller, &user, replace, &code, now)
            },
        )
        .await
        .map(Into::into)
    }

    async fn confirm_enrollment(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
        code: String,
    ) -> Result<Vec<String>, Error> {
        let code = zeroize::Zeroizing::new(code);
        self.run(
            &header,
            connection,
            Subject::of(&user, None),
            move |service, caller, now| service.confirm_enrollment(caller, &user, &code, now),
        )
        .await
    }

    async fn regenerate_backup_codes(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
        code: String,
    ) -> Result<Vec<String>, Error> {
        let code = zeroize::Zeroizing::new(code);
        self.run(
            &header,
            connection,
            Subject::of(&user, None),
            move |service, caller, now| service.regenerate_backup_codes(caller, &user, &code, now),
        )
        .await
    }

    async fn disable(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
        code: String,
    ) -> Result<(), Error> {
        let code = zeroize::Zeroizing::new(code);
        self.run(
            &header,
            connection,
            Subject::of(&user, None),
            move |service, caller, now| service.disable(caller, &user, &code, now),
        )
        .await
    }

    async fn list_users(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<Vec<UserStatus>, Error> {
        self.run(
            &header,
            connection,
            Subject::of("", None),
            move |service, _, now| service.list_users(now),
        )
        .await
    }

    async fn reset_user(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
    ) -> Result<(), Error> {
        self.run(
            &header,
            connection,
            Subject::of(&user, None),
            move |service, caller, now| service.reset_user(caller, &user, now),
        )
        .await
    }

    async fn unlock_user(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
    ) -> Result<(), Error> {
        self.run(
            &header,
            connection,
            Subject::of(&user, None),
            move |service, caller, _| service.unlock_user(caller, &user),
        )
        .await
    }

    #[zbus(out_args("user", "policy", "source", "explanation"))]
    async fn explain_policy(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
    ) -> Result<(String, OrUnknown<Policy>, String, String), Error> {
        self.run(
            &header,
            connection,
            Subject::of(&user, None),
            move |service, _, _| service.explain_policy(&user),
        )
        .await
        .map(Into::into)
    }

    #[zbus(out_args("token", "offer"))]
    async fn begin_login_enrollment(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
        context: LoginContext,
    ) -> Result<(String, EnrollmentOffer), Error> {
        self.run(
            &header,
            connection,
            Subject::of(&user, Some(&context)),
            move |service, caller, now| {
                service.begin_login_enrollment(caller, &user, &context, now)
            },
        )
        .await
        .map(Into::into)
    }

    async fn confirm_login_enrollment(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
        token: String,
        code: String,
        context: LoginContext,
    ) -> Result<Vec<String>, Error> {
        let token = zeroize::Zeroizing::new(token);
        let code = zeroize::Zeroizing::new(code);
        self.run(
            &header,
            connection,
            Subject::of(&user, Some(&context)),
            move |service, caller, now| {
                service.confirm_login_enrollment(caller, &user, &token, &code, &context, now)
            },
        )
        .await
    }

    #[zbus(out_args("code", "expires_at"))]
    async fn issue_temporary_code(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
        expires_in_seconds: u64,
    ) -> Result<(String, u64), Error> {
        self.run(
            &header,
            connection,
            Subject::of(&user, None),
            move |service, caller, now| {
                service.issue_temporary_code(caller, &user, expires_in_seconds, now)
            },
        )
        .await
        .map(Into::into)
    }

    async fn set_delivery(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
        enabled: bool,
    ) -> Result<(), Error> {
        self.run(
            &header,
            connection,
            Subject::of(&user, None),
            move |service, caller, _| service.set_delivery(caller, &user, enabled),
        )
        .await
    }

    async fn send_code(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
        context: LoginContext,
    ) -> Result<u64, Error> {
        self.run(
            &header,
            connection,
            Subject::of(&user, Some(&context)),
            move |service, caller, now| service.send_code(caller, &user, &context, now),
        )
        .await
    }

    async fn import_enrollment(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
        enrollment: ImportedEnrollment,
    ) -> Result<(), Error> {
        self.run(
            &header,
            connection,
            Subject::of(&user, None),
            move |service, caller, now| service.import_enrollment(caller, &user, &enrollment, now),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_connections_are_bounded_and_freed_when_they_leave() {
        let kept = KeptConnections::default();
        for n in 0..MAX_KEPT_CONNECTIONS {
            assert!(kept.grant(&format!(":1.{n}")), "room for {n}");
        }
        assert!(kept.grant(":1.0"), "a kept one stays kept");
        assert!(!kept.grant(":1.999"), "no room beyond the bound");
        assert_eq!(kept.len(), MAX_KEPT_CONNECTIONS);
        kept.release(":1.5");
        assert!(kept.grant(":1.999"), "room again once one left");
        assert!(!kept.grant(":1.1000"));
        kept.release(":1.unknown");
        assert_eq!(kept.len(), MAX_KEPT_CONNECTIONS);
    }

    #[test]
    fn a_full_set_keeps_only_live_names_and_is_swept_rarely() {
        let kept = KeptConnections::default();
        for n in 0..MAX_KEPT_CONNECTIONS {
            kept.grant(&format!(":1.{n}"));
        }
        assert!(kept.sweep_due());
        assert!(!kept.sweep_due(), "not again within the interval");
        let live: HashSet<String> = [":1.3", ":1.7", ":1.999"].map(String::from).into();
        kept.retain_live(&live);
        assert_eq!(kept.len(), 2, "only names the bus still has");
        assert!(kept.grant(":1.1000"));
    }
}
