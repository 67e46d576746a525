//! The daemon as the commands see it: a trait with the methods of `org.twofactor.Daemon1`,
//! implemented over the bus by [`BusDaemon`] with proto's proxy, and by fakes in tests.

use std::io::ErrorKind;
use std::time::Duration;

use twofactor_proto::{
    self as proto, Daemon1Proxy, EnrollmentOffer, Error, ImportedEnrollment, LoginContext,
    PolicyExplanation, TemporaryCode, ThrottledSource, UserStatus, VerifyReply,
};
use zbus::proxy::CacheProperties;

use crate::error::CliError;

/// The daemon's methods, blocking.
pub trait Daemon {
    fn verify(&self, user: &str, code: &str, context: &LoginContext) -> Result<VerifyReply, Error>;
    fn status(&self, user: &str) -> Result<UserStatus, Error>;
    fn throttled_sources(&self, user: &str) -> Result<Vec<ThrottledSource>, Error>;
    fn begin_enrollment(
        &self,
        user: &str,
        replace: bool,
        current_code: &str,
    ) -> Result<EnrollmentOffer, Error>;
    fn confirm_enrollment(&self, user: &str, code: &str) -> Result<Vec<String>, Error>;
    fn regenerate_backup_codes(&self, user: &str, code: &str) -> Result<Vec<String>, Error>;
    fn disable(&self, user: &str, code: &str) -> Result<(), Error>;
    fn list_users(&self) -> Result<Vec<UserStatus>, Error>;
    fn reset_user(&self, user: &str) -> Result<(), Error>;
    fn unlock_user(&self, user: &str) -> Result<(), Error>;
    fn explain_policy(&self, user: &str) -> Result<PolicyExplanation, Error>;
    fn issue_temporary_code(
        &self,
        user: &str,
        expires_in_seconds: u64,
    ) -> Result<TemporaryCode, Error>;
    fn set_delivery(&self, user: &str, enabled: bool) -> Result<(), Error>;
    fn import_enrollment(&self, user: &str, enrollment: &ImportedEnrollment) -> Result<(), Error>;
}

/// How long one call may take (a backup code check costs one argon2 hash per call).
const METHOD_TIMEOUT: Duration = Duration::from_secs(60);

/// The bus address: `$DBUS_SYSTEM_BUS_ADDRESS` when set, else the system bus socket.
pub fn bus_address() -> String {
    match std::env::var("DBUS_SYSTEM_BUS_ADDRESS") {
        Ok(address) if !address.is_empty() => address,
        _ => proto::SYSTEM_BUS_ADDRESS.to_owned(),
    }
}

/// One connection to the system bus, kept for the whole command: a pending enrollment belongs
/// to the connection that began it.
#[derive(Debug)]
pub struct BusDaemon {
    proxy: Daemon1Proxy<'static>,
}

impl BusDaemon {
    pub fn connect(address: &str) -> Result<BusDaemon, CliError> {
        zbus::block_on(async {
            let connection = zbus::connection::Builder::address(address)
                .method_timeout(METHOD_TIMEOUT)
                .build()
                .await
                .map_err(|error| connect_error(address, &error))?;
            let proxy = Daemon1Proxy::builder(&connection)
                .cache_properties(CacheProperties::No)
                .build()
                .await
                .map_err(|error| crate::error::from_bus(&error))?;
            Ok(BusDaemon { proxy })
        })
    }
}

fn connect_error(address: &str, error: &zbus::Error) -> CliError {
    match error {
        zbus::Error::Address(_) => CliError::Usage(format!(
            "bad bus address {address:?} (from DBUS_SYSTEM_BUS_ADDRESS): {error}"
        )),
        zbus::Error::Connection(io, _) | zbus::Error::InputOutput(io)
            if matches!(
                io.kind(),
                ErrorKind::NotFound | ErrorKind::ConnectionRefused
            ) =>
        {
            CliError::System(format!(
                "cannot reach the system bus at {address}: systemctl start dbus"
            ))
        }
        _ => CliError::System(format!(
            "cannot connect to the system bus at {address}: {error}"
        )),
    }
}

impl Daemon for BusDaemon {
    fn verify(&self, user: &str, code: &str, context: &LoginContext) -> Result<VerifyReply, Error> {
        zbus::block_on(self.proxy.verify(user, code, context))
    }

    fn status(&self, user: &str) -> Result<UserStatus, Error> {
        zbus::block_on(self.proxy.status(user))
    }

    fn throttled_sources(&self, user: &str) -> Result<Vec<ThrottledSource>, Error> {
        zbus::block_on(self.proxy.throttled_sources(user))
    }

    fn begin_enrollment(
        &self,
        user: &str,
        replace: bool,
        current_code: &str,
    ) -> Result<EnrollmentOffer, Error> {
        zbus::block_on(self.proxy.begin_enrollment(user, replace, current_code))
    }

    fn confirm_enrollment(&self, user: &str, code: &str) -> Result<Vec<String>, Error> {
        zbus::block_on(self.proxy.confirm_enrollment(user, code))
    }

    fn regenerate_backup_codes(&self, user: &str, code: &str) -> Result<Vec<String>, Error> {
        zbus::block_on(self.proxy.regenerate_backup_codes(user, code))
    }

    fn disable(&self, user: &str, code: &str) -> Result<(), Error> {
        zbus::block_on(self.proxy.disable(user, code))
    }

    fn list_users(&self) -> Result<Vec<UserStatus>, Error> {
        zbus::block_on(self.proxy.list_users())
    }

    fn reset_user(&self, user: &str) -> Result<(), Error> {
        zbus::block_on(self.proxy.reset_user(user))
    }

    fn unlock_user(&self, user: &str) -> Result<(), Error> {
        zbus::block_on(self.proxy.unlock_user(user))
    }

    fn explain_policy(&self, user: &str) -> Result<PolicyExplanation, Error> {
        zbus::block_on(self.proxy.explain_policy(user))
    }

    fn issue_temporary_code(
        &self,
        user: &str,
        expires_in_seconds: u64,
    ) -> Result<TemporaryCode, Error> {
        zbus::block_on(self.proxy.issue_temporary_code(user, expires_in_seconds))
    }

    fn set_delivery(&self, user: &str, enabled: bool) -> Result<(), Error> {
        zbus::block_on(self.proxy.set_delivery(user, enabled))
    }

    fn import_enrollment(&self, user: &str, enrollment: &ImportedEnrollment) -> Result<(), Error> {
        zbus::block_on(self.proxy.import_enrollment(user, enrollment))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_bus_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let address = format!("unix:path={}", dir.path().join("none.sock").display());
        let error = BusDaemon::connect(&address).unwrap_err();
        assert_eq!(error.exit_code(), crate::error::EXIT_FAILED);
        assert!(
            error
                .message()
                .unwrap()
                .contains("cannot reach the system bus"),
            "{error}"
        );
    }

    #[test]
    fn a_bad_address_is_a_usage_error() {
        let error = BusDaemon::connect("nonsense").unwrap_err();
        assert!(matches!(error, CliError::Usage(_)), "{error:?}");
    }
}
