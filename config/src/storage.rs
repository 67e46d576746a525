//! `[storage]`: where user records live. Local files by default; PostgreSQL for a fleet, with
//! the break-glass users (`local_users`) always in the local files.
//!
//! Only the shape is checked here. Whether the files it names are safe, and whether the
//! database answers, is the daemon's concern: a fleet problem must never keep it from
//! serving the break-glass users, so those are reported at run time, not refused at parse.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::AbsolutePath;

/// Which store holds the records of users not in `local_users`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Files,
    Postgres,
}

/// How the connection to PostgreSQL is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// No TLS: only for a database on loopback or a private test network.
    Disable,
    /// TLS, without checking who the server is: protects against a passive listener only.
    Require,
    /// TLS, the chain checked against `ca_file` and the host name against the certificate.
    #[default]
    VerifyFull,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Disable => "disable",
            TlsMode::Require => "require",
            TlsMode::VerifyFull => "verify-full",
        }
    }
}

/// `[storage]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub backend: Backend,
    /// A libpq-style URL or key=value string; a multi-host URL with
    /// `target_session_attrs=read-write` follows the writable server.
    pub url: Option<String>,
    /// The database password on its first line; root-only like the configuration.
    pub password_file: Option<AbsolutePath>,
    pub tls: TlsMode,
    /// The CA that signs the server's certificate, for `verify-full`; the system's trust
    /// store when unset.
    pub ca_file: Option<AbsolutePath>,
    /// The fleet key file: the same on every host ([`crate`] users: `twofactord storage
    /// new-key`).
    pub secret_key_file: Option<AbsolutePath>,
    /// Break-glass users: always in the local files, never in the database.
    pub local_users: Vec<String>,
    /// This host's name in logs and rows; the system's host name when unset.
    pub host_name: Option<String>,
    /// Who may change another user's fleet record, besides root: the change holds on
    /// every host. Unset: root only.
    pub admin_group: Option<String>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            backend: Backend::Files,
            url: None,
            password_file: None,
            tls: TlsMode::VerifyFull,
            ca_file: None,
            secret_key_file: None,
            local_users: vec!["root".to_owned()],
            host_name: None,
            admin_group: None,
        }
    }
}

/// The longest `host_name`: it goes into every log line and row.
pub const MAX_HOST_NAME_LEN: usize = 253;

impl StorageConfig {
    /// Problems in the section itself, each a sentence; none means usable as written.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.backend == Backend::Postgres {
            if self.url.as_deref().is_none_or(str::is_empty) {
                problems.push("backend = \"postgres\" needs url".to_owned());
            }
            if self.secret_key_file.is_none() {
                problems.push(
                    "backend = \"postgres\" needs secret_key_file (`twofactord storage \
                     new-key PATH` makes one)"
                        .to_owned(),
                );
            }
        }
        for user in &self.local_users {
            if !twofactor_proto::is_valid_username(user) {
                problems.push(format!("local_users: {user:?} is not a user name"));
            }
        }
        if let Some(host) = &self.host_name
            && !valid_host_name(host)
        {
            problems.push(format!(
                "host_name {host:?} must be 1 to {MAX_HOST_NAME_LEN} letters, digits, '.', \
                 '-' or '_'"
            ));
        }
        problems
    }

    pub fn is_fleet(&self) -> bool {
        self.backend == Backend::Postgres
    }

    /// Whether `user` is served from the database (and not from the local files).
    pub fn in_fleet(&self, user: &str) -> bool {
        self.is_fleet() && !self.local_users.iter().any(|local| local == user)
    }

    pub fn password_path(&self) -> Option<&Path> {
        self.password_file.as_ref().map(AbsolutePath::as_path)
    }

    pub fn ca_path(&self) -> Option<&Path> {
        self.ca_file.as_ref().map(AbsolutePath::as_path)
    }

    pub fn key_path(&self) -> Option<PathBuf> {
        self.secret_key_file
            .as_ref()
            .map(|path| path.as_path().to_owned())
    }
}

fn valid_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= MAX_HOST_NAME_LEN
        && host
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn storage(text: &str) -> StorageConfig {
        Config::parse(text, "test").expect("valid").storage
    }

    #[test]
    fn the_default_is_local_files_with_root_as_break_glass() {
        let config = storage("");
        assert_eq!(config.backend, Backend::Files);
        assert_eq!(config.tls, TlsMode::VerifyFull);
        assert_eq!(config.local_users, ["root"]);
        assert!(!config.in_fleet("alice") && config.problems().is_empty());
    }

    #[test]
    fn a_fleet_section_parses_and_routes_users() {
        let config = storage(
            r#"[storage]
backend = "postgres"
url = "postgresql://twofactor@db1:5432,db2:5432/twofactor?target_session_attrs=read-write"
password_file = "/etc/twofactor/db-password"
tls = "require"
ca_file = "/etc/twofactor/db-ca.pem"
secret_key_file = "/etc/twofactor/secret.key"
local_users = ["root", "breakglass"]
host_name = "bastion-3"
admin_group = "fleet-admins"
"#,
        );
        assert_eq!(config.problems(), Vec::<String>::new());
        assert_eq!(config.tls, TlsMode::Require);
        assert!(config.in_fleet("alice"));
        assert!(!config.in_fleet("root") && !config.in_fleet("breakglass"));
        assert_eq!(config.host_name.as_deref(), Some("bastion-3"));
    }

    #[test]
    fn unknown_keys_and_values_name_their_line() {
        for (text, line) in [
            ("[storage]\nbackend = \"mysql\"\n", "line 2"),
            ("[storage]\n\ntls = \"verify-ca\"\n", "line 3"),
            ("[storage]\nbackend = \"files\"\nurls = \"x\"\n", "line 3"),
            ("[storage]\nca_file = \"relative.pem\"\n", "line 2"),
        ] {
            let error = Config::parse(text, "test").expect_err(text).to_string();
            assert!(error.contains(line), "{text:?}: {error}");
        }
    }

    #[test]
    fn a_postgres_backend_needs_a_url_and_a_key() {
        let problems = storage("[storage]\nbackend = \"postgres\"\n").problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        let problems =
            storage("[storage]\nlocal_users = [\"root\", \"../x\"]\nhost_name = \"a b\"\n")
                .problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
