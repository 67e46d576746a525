//! Who is calling, as the transport vouches for it, never as an argument says.
//!
//! A call comes through the bus, which names its sender and tells its uid
//! (`GetConnectionUnixUser`), or over a direct connection to the daemon's own socket, whose
//! peer the kernel names (`SO_PEERCRED`). Each source is read in exactly one place here;
//! everything after (authorization, admission, the ownership of pending enrollments) takes
//! the resulting [`CallerIdentity`] and does not care where it came from.

use std::collections::HashMap;
use std::fmt;
use std::os::fd::AsFd;
use std::sync::Mutex;

use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use twofactor_proto::Error;
use zbus::message::Header;
use zbus::{Connection, fdo};

/// The uid behind a call and the connection it came on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallerIdentity {
    pub uid: u32,
    pub peer: Peer,
}

/// The connection a call came on: what pending work belongs to and departures name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Peer {
    /// Through the bus, by the sender's unique name (`:1.42`), never reused while it runs.
    Bus(String),
    /// A direct connection to the daemon, by a number the daemon never reuses.
    Direct(u64),
}

impl Peer {
    /// The connection's name where the rest of the daemon keys work by connection. Unique
    /// bus names start with `:` and direct ones never do, so the two never collide.
    pub fn key(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Bus(unique_name) => f.write_str(unique_name),
            Peer::Direct(number) => write!(f, "direct-{number}"),
        }
    }
}

fn unknown_caller() -> Error {
    Error::AccessDenied("cannot establish who you are".into())
}

/// Cached uids beyond which the cache starts over (dbus-daemon allows 2048 connections).
const MAX_CACHED_UIDS: usize = 8192;

/// The bus as a source of identities: the uid of each sender, asked once per unique name.
#[derive(Debug, Default)]
pub struct BusIdentities {
    uids: Mutex<HashMap<String, u32>>,
}

impl BusIdentities {
    /// Who sent the call with `header`, as the bus says.
    pub async fn of_sender(
        &self,
        header: &Header<'_>,
        connection: &Connection,
    ) -> Result<CallerIdentity, Error> {
        let sender = header.sender().ok_or_else(unknown_caller)?.to_string();
        let cached = self.lock().get(&sender).copied();
        let uid = match cached {
            Some(uid) => uid,
            None => {
                let bus = fdo::DBusProxy::new(connection)
                    .await
                    .map_err(|_| unknown_caller())?;
                let name = zbus::names::BusName::try_from(sender.as_str())
                    .map_err(|_| unknown_caller())?;
                let uid = bus
                    .get_connection_unix_user(name)
                    .await
                    .map_err(|_| unknown_caller())?;
                let mut uids = self.lock();
                // A caller that leaves during this lookup is stored after its departure was
                // handled, and stays: the cache is only a shortcut, so starting it over keeps
                // it bounded.
                if uids.len() >= MAX_CACHED_UIDS {
                    uids.clear();
                }
                uids.insert(sender.clone(), uid);
                uid
            }
        };
        Ok(CallerIdentity {
            uid,
            peer: Peer::Bus(sender),
        })
    }

    /// The sender left the bus.
    pub fn forget(&self, unique_name: &str) {
        self.lock().remove(unique_name);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.uids.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl CallerIdentity {
    /// Whoever is on the other end of the connected Unix socket `socket`, as the kernel
    /// recorded when it connected (`SO_PEERCRED`); `number` names the connection.
    pub fn of_direct_socket(socket: &impl AsFd, number: u64) -> std::io::Result<CallerIdentity> {
        let credentials = getsockopt(socket, PeerCredentials)?;
        Ok(CallerIdentity {
            uid: credentials.uid(),
            peer: Peer::Direct(number),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_direct_peer_is_who_the_kernel_says() {
        let (ours, _theirs) = UnixStream::pair().expect("socket pair");
        let identity = CallerIdentity::of_direct_socket(&ours, 7).expect("SO_PEERCRED");
        assert_eq!(identity.uid, nix::unistd::getuid().as_raw());
        assert_eq!(identity.peer, Peer::Direct(7));
    }

    #[test]
    fn connection_keys_never_collide() {
        assert_eq!(Peer::Bus(":1.7".into()).key(), ":1.7");
        assert_eq!(Peer::Direct(7).key(), "direct-7");
        assert!(!Peer::Direct(1).key().starts_with(':'));
    }
}
