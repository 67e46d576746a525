//! One line per event to syslog (AUTHPRIV), or to stderr where there is no syslog socket.
//! Never a secret or a code: events carry names, uids and outcomes only.

use std::fmt::Write as _;
use std::sync::Mutex;

use syslog::{Facility, Formatter3164, LoggerBackend};

/// Where log lines go.
pub trait EventLog: Send + Sync {
    fn info(&self, line: &str);
    fn warning(&self, line: &str);
}

/// syslog with a stderr fallback.
pub struct SyslogLog {
    logger: Option<Mutex<syslog::Logger<LoggerBackend, Formatter3164>>>,
}

impl std::fmt::Debug for SyslogLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyslogLog")
            .field("syslog", &self.logger.is_some())
            .finish()
    }
}

impl SyslogLog {
    /// Connect to `/dev/log` (or `socket`); without one, lines go to stderr.
    pub fn connect(socket: Option<&std::path::Path>) -> SyslogLog {
        let formatter = Formatter3164 {
            facility: Facility::LOG_AUTHPRIV,
            hostname: None,
            process: "twofactord".into(),
            pid: std::process::id(),
        };
        let logger = match socket {
            Some(path) => syslog::unix_custom(formatter, path),
            None => syslog::unix(formatter),
        };
        SyslogLog {
            logger: logger.ok().map(Mutex::new),
        }
    }

    fn send(&self, warning: bool, line: &str) {
        let sent = self.logger.as_ref().is_some_and(|logger| {
            let mut logger = logger
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if warning {
                logger.warning(line)
            } else {
                logger.info(line)
            }
            .is_ok()
        });
        if !sent {
            eprintln!("twofactord: {line}");
        }
    }
}

impl EventLog for SyslogLog {
    fn info(&self, line: &str) {
        self.send(false, line);
    }

    fn warning(&self, line: &str) {
        self.send(true, line);
    }
}

/// Builds `event user=alice uid=0 service=sshd ...`, quoting values that need it.
#[derive(Debug)]
pub struct Line(String);

impl Line {
    pub fn new(event: &str) -> Line {
        Line(event.to_owned())
    }

    pub fn field(mut self, key: &str, value: impl std::fmt::Display) -> Line {
        let value = value.to_string();
        let plain = !value.is_empty()
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-:/@[]".contains(c));
        if plain {
            let _ = write!(self.0, " {key}={value}");
        } else {
            let escaped: String = value
                .chars()
                .flat_map(|c| match c {
                    '"' | '\\' => vec!['\\', c],
                    c if c.is_control() => vec!['?'],
                    c => vec![c],
                })
                .collect();
            let _ = write!(self.0, " {key}=\"{escaped}\"");
        }
        self
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Lines to stderr only: for commands an administrator runs by hand.
#[derive(Debug, Default)]
pub struct StderrLog;

impl EventLog for StderrLog {
    fn info(&self, line: &str) {
        eprintln!("twofactord: {line}");
    }

    fn warning(&self, line: &str) {
        eprintln!("twofactord: {line}");
    }
}

#[cfg(any(test, feature = "test-doubles"))]
/// Keeps lines in memory, for tests.
#[derive(Debug, Default)]
pub struct MemoryLog(pub Mutex<Vec<String>>);

#[cfg(any(test, feature = "test-doubles"))]
impl MemoryLog {
    pub fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

#[cfg(any(test, feature = "test-doubles"))]
impl EventLog for MemoryLog {
    fn info(&self, line: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line.to_owned());
    }

    fn warning(&self, line: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("WARNING {line}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn values_are_quoted_and_control_characters_removed() {
        let line = Line::new("verified")
            .field("user", "alice")
            .field("rhost", "10.0.0.1")
            .field("tty", "evil\nline \"x\"");
        assert_eq!(
            line.as_str(),
            "verified user=alice rhost=10.0.0.1 tty=\"evil?line \\\"x\\\"\""
        );
    }

    #[test]
    fn lines_reach_a_syslog_socket_as_authpriv() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sock");
        let receiver = UnixDatagram::bind(&path).unwrap();
        let log = SyslogLog::connect(Some(&path));
        log.info("verified user=alice");
        let mut buffer = [0u8; 512];
        let size = receiver.recv(&mut buffer).unwrap();
        let datagram = String::from_utf8_lossy(&buffer[..size]);
        // AUTHPRIV (10) * 8 + info (6) = 86.
        assert!(datagram.starts_with("<86>"), "{datagram}");
        assert!(
            datagram.contains("twofactord[") && datagram.ends_with("verified user=alice"),
            "{datagram}"
        );
    }

    #[test]
    fn no_socket_falls_back_without_failing() {
        let log = SyslogLog::connect(Some(std::path::Path::new("/nonexistent/log")));
        log.warning("still works");
    }
}
