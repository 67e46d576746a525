//! Why a command did not complete, as one line for people and an exit code for scripts.

use std::fmt;
use std::io;

use twofactor_proto::Error as DaemonError;
use zbus::fdo;

/// Exit code: the command did what was asked.
pub const EXIT_DONE: u8 = 0;
/// Exit code: refused or denied (wrong code, permission denied, locked, forbidden by policy).
pub const EXIT_REFUSED: u8 = 1;
/// Exit code: usage or system error (bad arguments, daemon unreachable, daemon failure).
pub const EXIT_FAILED: u8 = 2;

/// The hint given whenever the daemon is not on the bus.
pub const NOT_RUNNING: &str = "the twofactor daemon is not running: systemctl start twofactord";

/// A command's failure. The message is one line that says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// Refused or denied: exit 1.
    Refused(String),
    /// Bad arguments or input: exit 2.
    Usage(String),
    /// The system could not do it (daemon unreachable, daemon or I/O failure): exit 2.
    System(String),
    /// A refusal already reported on standard output (`verify`'s `rejected`): exit 1.
    Reported,
    /// Standard output was closed (e.g. `| head`): stop quietly with exit 0.
    OutputClosed,
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Refused(_) | CliError::Reported => EXIT_REFUSED,
            CliError::Usage(_) | CliError::System(_) => EXIT_FAILED,
            CliError::OutputClosed => EXIT_DONE,
        }
    }

    /// What to print on standard error; nothing for a closed output.
    pub fn message(&self) -> Option<&str> {
        match self {
            CliError::Refused(m) | CliError::Usage(m) | CliError::System(m) => Some(m),
            CliError::Reported | CliError::OutputClosed => None,
        }
    }

    /// A failed write to standard output.
    pub fn from_output(error: &io::Error) -> CliError {
        if error.kind() == io::ErrorKind::BrokenPipe {
            CliError::OutputClosed
        } else {
            CliError::System(format!("cannot write the output: {error}"))
        }
    }

    /// A failed read of standard input.
    pub fn from_input(error: &io::Error) -> CliError {
        CliError::System(format!("cannot read standard input: {error}"))
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Reported => f.write_str("refused"),
            CliError::OutputClosed => f.write_str("standard output closed"),
            _ => f.write_str(self.message().unwrap_or_default()),
        }
    }
}

impl From<DaemonError> for CliError {
    fn from(error: DaemonError) -> CliError {
        match error {
            DaemonError::AccessDenied(m) => CliError::Refused(format!("permission denied: {m}")),
            DaemonError::NoSuchUser(m) => CliError::Usage(m),
            DaemonError::NotEnrolled(m) => CliError::Refused(m),
            DaemonError::AlreadyEnrolled(m) => CliError::Refused(m),
            DaemonError::InvalidInput(m) => CliError::Usage(format!("invalid input: {m}")),
            DaemonError::WrongCode(m) => CliError::Refused(format!("wrong code: {m}")),
            DaemonError::Locked(m) => CliError::Refused(m),
            DaemonError::PolicyForbids(m) => CliError::Refused(format!("not allowed: {m}")),
            DaemonError::NoPendingEnrollment(m) => {
                CliError::Refused(format!("{m}: run `twofactor enroll` again"))
            }
            DaemonError::Internal(m) => {
                CliError::System(format!("the twofactor daemon could not do this: {m}"))
            }
            DaemonError::Busy(m) => CliError::System(format!("the twofactor daemon is busy: {m}")),
            DaemonError::ZBus(error) => from_bus(&error),
        }
    }
}

/// A transport or bus error (not one of the daemon's own).
pub fn from_bus(error: &zbus::Error) -> CliError {
    match error {
        zbus::Error::FDO(fdo_error) => match fdo_error.as_ref() {
            fdo::Error::ServiceUnknown(_)
            | fdo::Error::NameHasNoOwner(_)
            | fdo::Error::SpawnChildExited(_)
            | fdo::Error::SpawnExecFailed(_)
            | fdo::Error::SpawnFailed(_)
            | fdo::Error::SpawnServiceNotFound(_)
            | fdo::Error::SpawnServiceNotValid(_)
            | fdo::Error::SpawnForkFailed(_)
            | fdo::Error::SpawnFailedToSetup(_)
            | fdo::Error::SpawnPermissionsInvalid(_)
            | fdo::Error::SpawnChildSignaled(_)
            | fdo::Error::SpawnConfigInvalid(_)
            | fdo::Error::SpawnFileInvalid(_)
            | fdo::Error::SpawnNoMemory(_) => CliError::System(NOT_RUNNING.into()),
            fdo::Error::AccessDenied(m) => CliError::System(format!(
                "the system bus refused the call ({m}): is twofactor's D-Bus policy installed?"
            )),
            fdo::Error::NoReply(_) | fdo::Error::Timeout(_) | fdo::Error::TimedOut(_) => {
                CliError::System(
                    "the twofactor daemon did not answer: see systemctl status twofactord".into(),
                )
            }
            // InvalidArgs: the arguments' signature differs, as when a struct gained a field.
            fdo::Error::UnknownMethod(_)
            | fdo::Error::UnknownInterface(_)
            | fdo::Error::UnknownObject(_)
            | fdo::Error::InvalidArgs(_) => CliError::System(
                "the twofactor daemon does not know this call: are twofactor and twofactord \
                 the same version?"
                    .into(),
            ),
            other => CliError::System(format!("D-Bus error: {other}")),
        },
        zbus::Error::MethodError(name, _, _)
            if name.starts_with("org.freedesktop.systemd1.")
                || name.starts_with("org.freedesktop.DBus.Error.Spawn") =>
        {
            CliError::System(NOT_RUNNING.into())
        }
        zbus::Error::InputOutput(io_error) if io_error.kind() == io::ErrorKind::TimedOut => {
            CliError::System(
                "the twofactor daemon did not answer in time: see systemctl status twofactord"
                    .into(),
            )
        }
        zbus::Error::InputOutput(_) | zbus::Error::Connection(..) => CliError::System(format!(
            "lost the connection to the system bus ({error}): is dbus running?"
        )),
        other => CliError::System(format!("D-Bus error: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn code(error: DaemonError) -> u8 {
        CliError::from(error).exit_code()
    }

    #[test]
    fn refusals_exit_1() {
        for error in [
            DaemonError::AccessDenied("administrators only".into()),
            DaemonError::NotEnrolled("x".into()),
            DaemonError::AlreadyEnrolled("x".into()),
            DaemonError::WrongCode("x".into()),
            DaemonError::Locked("x".into()),
            DaemonError::PolicyForbids("x".into()),
            DaemonError::NoPendingEnrollment("x".into()),
        ] {
            assert_eq!(code(error), EXIT_REFUSED);
        }
    }

    #[test]
    fn usage_and_system_errors_exit_2() {
        for error in [
            DaemonError::InvalidInput("x".into()),
            DaemonError::NoSuchUser("x".into()),
            DaemonError::Internal("x".into()),
            DaemonError::ZBus(zbus::Error::FDO(Box::new(fdo::Error::ServiceUnknown(
                "x".into(),
            )))),
            DaemonError::ZBus(zbus::Error::InputOutput(Arc::new(io::Error::from(
                io::ErrorKind::ConnectionReset,
            )))),
        ] {
            assert_eq!(code(error), EXIT_FAILED);
        }
    }

    #[test]
    fn a_missing_daemon_says_how_to_start_it() {
        let error = CliError::from(DaemonError::ZBus(zbus::Error::FDO(Box::new(
            fdo::Error::ServiceUnknown("The name is not activatable".into()),
        ))));
        assert_eq!(error.message(), Some(NOT_RUNNING));
    }

    #[test]
    fn a_daemon_of_another_version_says_so() {
        let error = CliError::from(DaemonError::ZBus(zbus::Error::FDO(Box::new(
            fdo::Error::InvalidArgs("signature mismatch".into()),
        ))));
        assert!(
            error.message().is_some_and(|m| m.contains("same version")),
            "{error:?}"
        );
    }

    #[test]
    fn access_denied_says_permission_denied() {
        let error = CliError::from(DaemonError::AccessDenied("administrators only".into()));
        assert_eq!(
            error.message(),
            Some("permission denied: administrators only")
        );
    }

    #[test]
    fn a_closed_pipe_is_not_an_error() {
        let error = CliError::from_output(&io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(error, CliError::OutputClosed);
        assert_eq!(error.exit_code(), EXIT_DONE);
        assert_eq!(error.message(), None);
        let error = CliError::from_output(&io::Error::from(io::ErrorKind::StorageFull));
        assert_eq!(error.exit_code(), EXIT_FAILED);
    }
}
