//! Logging to syslog (facility `LOG_AUTHPRIV`, ident `pam_twofactor`), and nowhere else.
//!
//! A PAM module must never write to stdout or stderr: they belong to the host (sshd's protocol,
//! login's terminal). When no syslog socket can be reached, messages are dropped silently.
//!
//! Only datagram sockets are used: a stream socket is written with plain `write(2)`, which
//! raises `SIGPIPE` in the host if the syslog daemon goes away, and the host may not ignore it.

use std::os::unix::net::UnixDatagram;
use std::path::Path;

use syslog::{Facility, Formatter3164, Logger, LoggerBackend};

/// How important a log message is (the syslog severities the module uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Notice,
    Info,
    Debug,
}

/// Where the login flow's log messages go. Messages never contain a code or a password.
pub trait Log {
    fn log(&mut self, level: Level, message: &str);
}

/// The syslog identity of every message.
pub const IDENT: &str = "pam_twofactor";

/// Where syslog listens, tried in order (the same list as the `syslog` crate's).
const SOCKET_PATHS: [&str; 3] = ["/dev/log", "/var/run/syslog", "/var/run/log"];

/// A syslog connection opened for one PAM call (or none, if syslog is unreachable).
pub struct Syslog {
    logger: Option<Logger<LoggerBackend, Formatter3164>>,
}

impl std::fmt::Debug for Syslog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syslog")
            .field("connected", &self.logger.is_some())
            .finish()
    }
}

impl Syslog {
    /// Connects to the system's syslog socket, if there is one.
    pub fn open() -> Self {
        let logger = SOCKET_PATHS
            .iter()
            .find_map(|path| connect(Path::new(path)));
        Self { logger }
    }

    /// Connects to the datagram socket at `path` (for tests).
    pub fn open_at(path: &Path) -> Self {
        Self {
            logger: connect(path),
        }
    }

    /// Whether messages go anywhere.
    pub fn is_connected(&self) -> bool {
        self.logger.is_some()
    }
}

fn connect(path: &Path) -> Option<Logger<LoggerBackend, Formatter3164>> {
    let socket = UnixDatagram::unbound().ok()?;
    socket.connect(path).ok()?;
    let formatter = Formatter3164 {
        facility: Facility::LOG_AUTHPRIV,
        hostname: None,
        process: IDENT.to_owned(),
        pid: std::process::id(),
    };
    Some(Logger::new(LoggerBackend::Unix(socket), formatter))
}

impl Log for Syslog {
    fn log(&mut self, level: Level, message: &str) {
        let Some(logger) = self.logger.as_mut() else {
            return;
        };
        // A message that cannot be sent is dropped: logging must not change the outcome.
        let _ = match level {
            Level::Error => logger.err(message),
            Level::Warning => logger.warning(message),
            Level::Notice => logger.notice(message),
            Level::Info => logger.info(message),
            Level::Debug => logger.debug(message),
        };
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_the_socket_with_authpriv_and_the_ident() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        let mut log = Syslog::open_at(&path);
        assert!(log.is_connected());

        log.log(Level::Notice, "code rejected for user \"alice\"");
        let mut buffer = [0u8; 1024];
        let length = server.recv(&mut buffer).unwrap();
        let line = String::from_utf8_lossy(buffer.get(..length).unwrap()).into_owned();
        // LOG_AUTHPRIV is facility 10; notice is severity 5: 10 * 8 + 5.
        assert!(line.starts_with("<85>"), "{line}");
        assert!(
            line.contains(&format!("pam_twofactor[{}]: ", std::process::id())),
            "{line}"
        );
        assert!(line.ends_with("code rejected for user \"alice\""), "{line}");

        log.log(Level::Error, "x");
        let length = server.recv(&mut buffer).unwrap();
        assert!(buffer.get(..length).unwrap().starts_with(b"<83>"));
    }

    #[test]
    fn no_socket_drops_messages_silently() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Syslog::open_at(&dir.path().join("absent"));
        assert!(!log.is_connected());
        log.log(Level::Error, "goes nowhere");
    }

    #[test]
    fn a_vanished_syslog_does_not_fail_the_caller() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        let mut log = Syslog::open_at(&path);
        drop(server);
        log.log(Level::Info, "nobody listens");
    }
}
