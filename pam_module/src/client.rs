//! The real daemon client over zbus 6: one owner check per authentication, and one bus
//! connection for it when the daemon has room, else one per call.
//!
//! [`BusClient::session`] runs the whole login flow inside one `zbus::block_on`, which drives
//! every connection on the calling thread, and everything built in it (connections, proxies,
//! timers) is dropped before `session` returns. So nothing is shared between two PAM calls,
//! and no thread is left running in the host (sshd, login, su fork after PAM).
//!
//! The first call of a session:
//! 1. connects to `bus_address=` or [`proto::SYSTEM_BUS_ADDRESS`], never to an address from the
//!    environment;
//! 2. asks the bus who owns `org.twofactor.Daemon1` (starting it by D-Bus activation if nobody
//!    does) and refuses an owner that is not uid 0;
//! 3. sends the call to that owner's unique name, as every later call of the session is, so
//!    the owner cannot change between the check and any call. If the daemon restarts while the
//!    user types, its old unique name is gone and the next call fails: the login is denied,
//!    never sent elsewhere.
//!
//! When `LoginPlan` says `keep_connection`, later calls reuse the first one's connection, the
//! user's typing in between included; else each opens its own. The daemon grants it to a
//! bounded number of connections at once, so that logins left at a prompt (anyone can leave
//! `su` there) cannot use up root's connections to the bus. Either way every bus wait has a
//! deadline (`timeout=`) per call, connecting included; the user's typing is not a bus wait. A
//! kept connection whose call timed out or failed on the transport is dropped.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

use twofactor_proto::{
    self as proto, Daemon1Proxy, LoginContext, LoginEnrollment, LoginPlan, VerifyAnyReply,
    VerifyReply,
};
use zbus::Connection;
use zbus::connection::Builder;
use zbus::fdo::{self, DBusProxy};
use zbus::names::{BusName, OwnedUniqueName, WellKnownName};
use zbus::proxy::CacheProperties;

use crate::flow::DaemonClient;

/// Why a daemon call did not produce a reply.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The bus could not be reached, or nothing owns the daemon's name and it cannot be
    /// started. The only failure `unavailable=ignore` may turn into `PAM_IGNORE`.
    #[error("daemon unreachable: {0}")]
    Unreachable(String),
    /// The daemon's name is owned by a process that does not run as root.
    #[error(
        "{owner} owns {} but runs as uid {uid}, not root; refusing it",
        proto::BUS_NAME
    )]
    NotRoot { owner: String, uid: u32 },
    /// The whole interaction did not finish before the deadline.
    #[error("no answer within {} s", .0.as_secs())]
    Timeout(Duration),
    /// The daemon refused the call with one of its typed errors.
    #[error("daemon error: {0}")]
    Daemon(proto::Error),
    /// The module's configuration cannot work (a bad `bus_address=`).
    #[error("configuration: {0}")]
    Config(String),
    /// Anything else: a transport or protocol error, an unexpected reply.
    #[error("bus error: {0}")]
    Bus(String),
}

impl ClientError {
    /// Whether this is "the daemon is not there" (connect failed, or the name has no owner).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable(_))
    }

    /// A method's error: the daemon's typed errors are kept, transport errors become `Bus`.
    fn from_daemon(error: proto::Error) -> Self {
        match error {
            proto::Error::ZBus(error) => Self::Bus(error.to_string()),
            typed => Self::Daemon(typed),
        }
    }
}

/// Where and how patiently to reach `twofactord`: the system bus (or `bus_address=`), with a
/// deadline of `timeout` on every bus wait.
#[derive(Debug, Clone)]
pub struct BusClient {
    address: String,
    timeout: Duration,
    keep_connection: bool,
}

impl BusClient {
    /// A client for the bus at `address` (the system bus if `None`) that keeps its connection
    /// through a session when the daemon allows it (see
    /// [`keep_connection`](Self::keep_connection)).
    pub fn new(address: Option<&str>, timeout: Duration) -> Self {
        Self {
            address: address.unwrap_or(proto::SYSTEM_BUS_ADDRESS).to_owned(),
            timeout,
            keep_connection: true,
        }
    }

    /// Whether a session may keep its first connection for all its calls, the user's typing
    /// included, when `LoginPlan` says `keep_connection` (the daemon bounds how many are
    /// kept at once). It saves a connection's set-up per call; `false` opens one per call.
    pub fn keep_connection(mut self, keep: bool) -> Self {
        self.keep_connection = keep;
        self
    }

    /// The bus address this client connects to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Runs `work` (one authentication) inside one `zbus::block_on`, with a [`BusSession`]
    /// for its daemon calls. Everything the session builds is dropped before this returns;
    /// `work` only borrows the session, so it cannot keep it.
    pub fn session<T>(&self, work: impl AsyncFnOnce(&BusSession<'_>) -> T) -> T {
        zbus::block_on(async {
            let session = BusSession {
                client: self,
                owner: RefCell::new(None),
                connection: RefCell::new(None),
                keep: Cell::new(self.keep_connection),
            };
            let outcome = work(&session).await;
            drop(session);
            outcome
        })
    }
}

/// One authentication's calls to the daemon (see the module documentation). Only
/// [`BusClient::session`] makes one.
pub struct BusSession<'c> {
    client: &'c BusClient,
    /// The daemon's unique name, once checked to run as root. A unique name is never given to
    /// another connection and a connection's uid never changes, so later calls go to it
    /// without asking again.
    owner: RefCell<Option<OwnedUniqueName>>,
    /// While `keep`, the connection of the last call that worked.
    connection: RefCell<Option<Connection>>,
    /// Whether connections are kept: the client allows it, and no `LoginPlan` reply has said
    /// otherwise.
    keep: Cell<bool>,
}

impl std::fmt::Debug for BusSession<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusSession")
            .field("client", &self.client)
            .field("owner", &self.owner.borrow())
            .field("connected", &self.connection.borrow().is_some())
            .finish()
    }
}

impl BusSession<'_> {
    /// Runs `call` on the daemon within one deadline: connect (unless a connection is kept),
    /// find and check the owner (first call only), then the call.
    async fn call<T, F, Fut>(&self, call: F) -> Result<T, ClientError>
    where
        F: FnOnce(Daemon1Proxy<'static>) -> Fut,
        Fut: Future<Output = Result<T, proto::Error>>,
    {
        let address = self.client.address.as_str();
        // Only local sockets: the uid the bus reports for a name means nothing over TCP.
        if !address.starts_with("unix:") {
            return Err(ClientError::Config(format!(
                "bus address {address:?} is not a unix: address"
            )));
        }
        let timeout = self.client.timeout;
        let started = Instant::now();
        let deadline = started.checked_add(timeout).unwrap_or(started);
        // The runtime `session`'s `block_on` runs on this thread: its timer races the work.
        let runtime = zruntime::SharedRuntime::current()
            .map_err(|e| ClientError::Bus(format!("no runtime: {e}")))?;
        // A kept connection is taken out for the call and put back only if the call worked,
        // so a broken or stuck one is never used again.
        let kept = self.connection.take();
        let work = async {
            let conn = match kept {
                Some(conn) => conn,
                None => connect(address).await?,
            };
            let known = self.owner.borrow().clone();
            let owner = match known {
                Some(owner) => owner,
                None => {
                    let owner = root_owner(&conn).await?;
                    self.owner.replace(Some(owner.clone()));
                    owner
                }
            };
            let daemon = Daemon1Proxy::builder(&conn)
                .destination(BusName::Unique(owner.into_inner()))
                .cache_properties(CacheProperties::No)
                .build()
                .await
                .map_err(|e| ClientError::Bus(e.to_string()))?;
            let reply = call(daemon).await.map_err(ClientError::from_daemon);
            if self.keep.get() && matches!(reply, Ok(_) | Err(ClientError::Daemon(_))) {
                self.connection.replace(Some(conn));
            }
            reply
        };
        let outcome = runtime
            .timeout_at(deadline, work)
            .await
            .unwrap_or(Err(ClientError::Timeout(timeout)));
        drop(runtime);
        if self.connection.borrow().is_none() {
            // The daemon granted that connection, not a new one: from now on, one per call.
            self.keep.set(false);
        }
        outcome
    }
}

impl DaemonClient for BusSession<'_> {
    async fn login_plan(
        &self,
        user: &str,
        context: &LoginContext,
    ) -> Result<LoginPlan, ClientError> {
        let plan = self
            .call(|daemon| async move { daemon.login_plan(user, context).await })
            .await;
        if !plan.as_ref().is_ok_and(|plan| plan.keep_connection) {
            // No room among the kept connections (or no plan): hold none while the user types.
            self.keep.set(false);
            drop(self.connection.take());
        }
        plan
    }

    async fn verify(
        &self,
        user: &str,
        code: &str,
        context: &LoginContext,
    ) -> Result<VerifyReply, ClientError> {
        self.call(|daemon| async move { daemon.verify(user, code, context).await })
            .await
    }

    async fn verify_any(
        &self,
        user: &str,
        codes: &[&str],
        context: &LoginContext,
    ) -> Result<VerifyAnyReply, ClientError> {
        self.call(|daemon| async move { daemon.verify_any(user, codes, context).await })
            .await
    }

    async fn begin_login_enrollment(
        &self,
        user: &str,
        context: &LoginContext,
    ) -> Result<LoginEnrollment, ClientError> {
        self.call(|daemon| async move { daemon.begin_login_enrollment(user, context).await })
            .await
    }

    async fn confirm_login_enrollment(
        &self,
        user: &str,
        token: &str,
        code: &str,
        context: &LoginContext,
    ) -> Result<Vec<String>, ClientError> {
        self.call(|daemon| async move {
            daemon
                .confirm_login_enrollment(user, token, code, context)
                .await
        })
        .await
    }

    async fn send_code(&self, user: &str, context: &LoginContext) -> Result<u64, ClientError> {
        self.call(|daemon| async move { daemon.send_code(user, context).await })
            .await
    }

    async fn regenerate_backup_codes(
        &self,
        user: &str,
        code: &str,
    ) -> Result<Vec<String>, ClientError> {
        self.call(|daemon| async move { daemon.regenerate_backup_codes(user, code).await })
            .await
    }
}

/// A new private connection to the bus at `address`.
async fn connect(address: &str) -> Result<Connection, ClientError> {
    Builder::address(address)
        .build()
        .await
        .map_err(|error| match &error {
            zbus::Error::Connection(io, _) | zbus::Error::InputOutput(io)
                if matches!(
                    io.kind(),
                    ErrorKind::NotFound | ErrorKind::ConnectionRefused
                ) =>
            {
                ClientError::Unreachable(format!("cannot connect to {address}: {error}"))
            }
            zbus::Error::Address(_) => {
                ClientError::Config(format!("bad bus address {address:?}: {error}"))
            }
            _ => ClientError::Bus(format!("cannot connect to {address}: {error}")),
        })
}

/// The unique name owning the daemon's well-known name, checked to run as root.
async fn root_owner(conn: &Connection) -> Result<OwnedUniqueName, ClientError> {
    let bus_error = |what: &str, error: fdo::Error| ClientError::Bus(format!("{what}: {error}"));
    let dbus = DBusProxy::builder(conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .map_err(|e| ClientError::Bus(e.to_string()))?;
    let name = WellKnownName::from_static_str(proto::BUS_NAME)
        .map_err(|e| ClientError::Bus(e.to_string()))?;

    let owner = match dbus.get_name_owner(BusName::from(name.clone())).await {
        Ok(owner) => owner,
        Err(fdo::Error::NameHasNoOwner(_)) => {
            // Not running: have the bus start it (D-Bus activation), then ask again.
            match dbus.start_service_by_name(name.clone(), 0).await {
                Ok(_) => {}
                Err(fdo::Error::ServiceUnknown(message)) => {
                    return Err(ClientError::Unreachable(format!(
                        "{} has no owner and cannot be activated: {message}",
                        proto::BUS_NAME
                    )));
                }
                Err(error) => return Err(bus_error("StartServiceByName", error)),
            }
            match dbus.get_name_owner(BusName::from(name)).await {
                Ok(owner) => owner,
                Err(fdo::Error::NameHasNoOwner(message)) => {
                    return Err(ClientError::Unreachable(format!(
                        "{} has no owner: {message}",
                        proto::BUS_NAME
                    )));
                }
                Err(error) => return Err(bus_error("GetNameOwner", error)),
            }
        }
        Err(error) => return Err(bus_error("GetNameOwner", error)),
    };

    let uid = dbus
        .get_connection_unix_user(BusName::from(owner.as_ref()))
        .await
        .map_err(|error| bus_error("GetConnectionUnixUser", error))?;
    if uid != 0 {
        return Err(ClientError::NotRoot {
            owner: owner.to_string(),
            uid,
        });
    }
    Ok(owner)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn context() -> LoginContext {
        LoginContext::default()
    }

    /// `LoginPlan` for alice in a session of its own.
    fn plan(client: &BusClient) -> Result<LoginPlan, ClientError> {
        client.session(async |daemon| daemon.login_plan("alice", &context()).await)
    }

    #[test]
    fn defaults_to_the_system_bus_and_never_the_environment() {
        let client = BusClient::new(None, Duration::from_secs(1));
        assert_eq!(client.address(), proto::SYSTEM_BUS_ADDRESS);
    }

    #[test]
    fn a_missing_socket_is_unreachable() {
        let dir = tempfile::tempdir().unwrap();
        let address = format!("unix:path={}", dir.path().join("absent.sock").display());
        let client = BusClient::new(Some(&address), Duration::from_secs(2));
        let error = plan(&client).unwrap_err();
        assert!(error.is_unreachable(), "{error:?}");
        // Each call of a session tries again: nothing is cached from a failed connect.
        let errors = client.session(async |daemon| {
            let plan = daemon.login_plan("alice", &context()).await;
            let verify = daemon.verify("alice", "123456", &context()).await;
            [plan.unwrap_err(), verify.unwrap_err()]
        });
        for error in errors {
            assert!(error.is_unreachable(), "{error:?}");
        }
    }

    #[test]
    fn a_refusing_socket_is_unreachable() {
        // A socket file nobody listens on any more.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stale.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let client = BusClient::new(
            Some(&format!("unix:path={}", path.display())),
            Duration::from_secs(2),
        );
        let error = plan(&client).unwrap_err();
        assert!(error.is_unreachable(), "{error:?}");
    }

    #[test]
    fn a_silent_peer_times_out_and_is_not_unreachable() {
        // Accepts the connection and never answers the authentication handshake.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silent.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let client = BusClient::new(
            Some(&format!("unix:path={}", path.display())),
            Duration::from_secs(1),
        );
        let started = Instant::now();
        let error = plan(&client).unwrap_err();
        let elapsed = started.elapsed();
        assert!(matches!(error, ClientError::Timeout(_)), "{error:?}");
        assert!(!error.is_unreachable());
        assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    }

    #[test]
    fn only_unix_addresses() {
        for address in ["tcp:host=127.0.0.1,port=1", "garbage", ""] {
            let client = BusClient::new(Some(address), Duration::from_secs(1));
            let error = plan(&client).unwrap_err();
            assert!(
                matches!(error, ClientError::Config(_)),
                "{address}: {error:?}"
            );
        }
        let client = BusClient::new(Some("unix:nonsense=1"), Duration::from_secs(1));
        let error = plan(&client).unwrap_err();
        assert!(!error.is_unreachable(), "{error:?}");
    }

    #[test]
    fn typed_errors_stay_typed() {
        let error = ClientError::from_daemon(proto::Error::Locked("wait".into()));
        assert!(matches!(
            error,
            ClientError::Daemon(proto::Error::Locked(_))
        ));
        let error = ClientError::from_daemon(proto::Error::ZBus(zbus::Error::InvalidReply));
        assert!(matches!(error, ClientError::Bus(_)));
    }
}
