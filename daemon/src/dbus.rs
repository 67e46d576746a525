//! The D-Bus face of the daemon: `org.twofactor.Daemon1` at `/org/twofactor/Daemon1`.
//!
//! Each method first establishes who calls ([`crate::identity`]: the bus, or the kernel for a
//! direct connection), then runs the plain logic in [`crate::service`] on a blocking thread
//! (argon2, fsync) so that other users' calls go on meanwhile.
//! The methods themselves are in `interface`.

use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use futures_lite::StreamExt;
use twofactor_proto::{Error, LoginContext, OBJECT_PATH};
use zbus::message::Header;
use zbus::{Connection, fdo};

use twofactor_config::Source;

use crate::admission::{Admission, Partition, Refusal};
use crate::identity::{BusIdentities, CallerIdentity};
use crate::log::Line;
use crate::refusals::RefusedCalls;
use crate::service::{Caller, Service, login_source};

mod interface;
mod kept;
pub use kept::{KeptConnections, MAX_KEPT_CONNECTIONS};

/// Largest call body accepted. The largest real one (`VerifyAny` with every candidate and a
/// full context, or an import with its scratch codes) is under 4 KiB.
const MAX_CALL_BYTES: u32 = 64 * 1024;

/// What a caller is told when its call was not run.
fn refused(refusal: Refusal) -> Error {
    Error::Busy(match refusal {
        Refusal::Busy => {
            "too many calls for this user are running or waiting; try again shortly".into()
        }
        Refusal::CallerLeft => "the caller left".into(),
    })
}

/// Unix seconds by this host's clock: the one place the daemon reads it. The service turns
/// it into the store's clock ([`Service::now`]).
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

/// The interface object.
#[derive(Debug, Clone)]
pub struct Daemon {
    service: Arc<Service>,
    identities: Arc<BusIdentities>,
    kept: Arc<KeptConnections>,
    admission: Arc<Admission>,
    refusals: Arc<RefusedCalls>,
    /// The number of the next direct connection.
    direct_connections: Arc<AtomicU64>,
    /// Set on the object that serves one direct connection: who is on its other end.
    direct_peer: Option<CallerIdentity>,
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
            identities: Arc::new(BusIdentities::default()),
            kept: Arc::new(KeptConnections::default()),
            admission: Arc::new(Admission::default()),
            refusals: Arc::new(RefusedCalls::default()),
            direct_connections: Arc::new(AtomicU64::new(1)),
            direct_peer: None,
        }
    }

    /// Serve the interface on a direct connection over `stream` (peer to peer, no bus), for
    /// the uid the kernel names at its other end. Whoever accepted `stream` reports its end
    /// with [`Daemon::connection_closed`] and the key of the identity this returns.
    pub async fn serve_direct(
        &self,
        stream: UnixStream,
    ) -> zbus::Result<(Connection, CallerIdentity)> {
        let number = self.direct_connections.fetch_add(1, Ordering::Relaxed);
        let identity = CallerIdentity::of_direct_socket(&stream, number)?;
        let daemon = Daemon {
            direct_peer: Some(identity.clone()),
            ..self.clone()
        };
        let connection = zbus::connection::Builder::unix_stream(stream)
            .server(zbus::Guid::generate())
            .p2p()
            .serve_at(OBJECT_PATH, daemon)
            .build()
            .await?;
        Ok((connection, identity))
    }

    /// Who makes the call with `header`.
    async fn identify(
        &self,
        header: &Header<'_>,
        connection: &Connection,
    ) -> Result<CallerIdentity, Error> {
        match &self.direct_peer {
            Some(identity) => Ok(identity.clone()),
            None => self.identities.of_sender(header, connection).await,
        }
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
        let identity = self.identify(header, connection).await?;
        let method = header
            .member()
            .map(|name| name.to_string())
            .unwrap_or_default();
        let uid = identity.uid;
        let result = self.admit_and_run(identity, &method, subject, work).await;
        if let Err(error @ (Error::AccessDenied(_) | Error::Busy(_))) = &result {
            self.log_refusal(uid, &method, error);
        }
        result
    }

    async fn admit_and_run<T, F>(
        &self,
        identity: CallerIdentity,
        method: &str,
        subject: Subject,
        work: F,
    ) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Service, &Caller, u64) -> Result<T, Error> + Send + 'static,
    {
        let Subject { user, source } = subject;
        let partition = Partition::of(&identity, &user, || source);
        let connection = identity.peer.key();
        let turn = self
            .admission
            .enter(partition, &connection)
            .await
            .map_err(refused)?;
        let service = self.service.clone();
        let admission = self.admission.clone();
        let method = method.to_owned();
        blocking::unblock(move || {
            let _turn = turn;
            // It may have left while the call waited for a thread.
            if admission.has_left(&connection) {
                return Err(refused(Refusal::CallerLeft));
            }
            let caller = service.caller(&identity)?;
            service.authorize(&method, &caller, &user)?;
            work(&service, &caller, service.now(now()))
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

    /// Forget a connection that ended, by its key ([`crate::identity::Peer::key`]: a unique
    /// bus name, or a direct connection's), with its pending enrollment, its calls still
    /// waiting and its room among the kept connections.
    pub fn connection_closed(&self, connection: &str) {
        self.identities.forget(connection);
        self.kept.release(connection);
        self.admission.connection_left(connection);
        self.service.connection_closed(connection);
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

#[cfg(test)]
mod tests;
