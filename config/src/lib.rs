//! `/etc/twofactor/twofactor.toml`: its types, loading, and the policy rules.
//!
//! No I/O beyond reading the file. Group membership comes in as a parameter so the rules are
//! tested as a plain table.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;

mod bounded;
pub mod file_safety;
pub mod human;
mod lockout;
pub mod login_source;
mod network;
pub mod storage;
pub use bounded::{Digits, FailureLimit, Period, Seconds, Window};
pub use lockout::{LOCK_LEVEL_MEMORY_SECONDS, LockoutConfig, SECONDS_PER_YEAR};
pub use login_source::{LoginSource, Source};
pub use network::{LOCAL_MEANS, LoginOrigin};
pub use storage::{Backend, StorageConfig, TlsMode};
// Their names cross the bus too, so the contract owns them; this file spells them the same way.
pub use twofactor_proto::{Algorithm, Policy};

/// Where the daemon reads its configuration unless told otherwise.
pub const DEFAULT_PATH: &str = "/etc/twofactor/twofactor.toml";

/// The whole configuration file. Every section is optional; unknown keys are errors.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub policy: PolicyConfig,
    pub totp: TotpConfig,
    pub lockout: LockoutConfig,
    pub admin: AdminConfig,
    pub enrollment: EnrollmentConfig,
    pub notify: CommandConfig,
    pub delivery: CommandConfig,
    pub storage: StorageConfig,
}

/// `[policy]`: a user entry wins, then the strictest of the user's groups, then the default.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    pub default: Policy,
    pub groups: BTreeMap<String, Policy>,
    pub users: BTreeMap<String, Policy>,
}

/// Which rule decided a user's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    User(String),
    Group(String),
    Default,
}

impl fmt::Display for PolicySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicySource::User(name) => write!(f, "user {name}"),
            PolicySource::Group(name) => write!(f, "group {name}"),
            PolicySource::Default => f.write_str("default"),
        }
    }
}

/// A resolved policy and the rule behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDecision {
    pub policy: Policy,
    pub source: PolicySource,
}

impl PolicyDecision {
    /// One line for people, e.g. `group wheel → required`.
    pub fn explanation(&self) -> String {
        format!("{} → {}", self.source, self.policy)
    }
}

impl PolicyConfig {
    /// Whether `user`'s groups can change [`resolve`](Self::resolve)'s answer: not when a
    /// user rule names them (it wins), nor when there are no group rules. Group lookups cost
    /// NSS far more than the rest of a login's decision.
    pub fn needs_groups(&self, user: &str) -> bool {
        !self.groups.is_empty() && !self.users.contains_key(user)
    }

    /// Resolve the policy for `user`, a member of `groups` (primary and supplementary names).
    /// Among several matching groups the strictest wins; ties go to the first name in sorted
    /// order, so the explanation is stable.
    pub fn resolve(&self, user: &str, groups: &[String]) -> PolicyDecision {
        if let Some(&policy) = self.users.get(user) {
            return PolicyDecision {
                policy,
                source: PolicySource::User(user.to_owned()),
            };
        }
        let strictest = self
            .groups
            .iter()
            .filter(|(group, _)| groups.iter().any(|member_of| member_of == *group))
            .fold(
                None,
                |best: Option<(&String, Policy)>, (group, &policy)| match best {
                    Some((_, best_policy)) if best_policy >= policy => best,
                    _ => Some((group, policy)),
                },
            );
        match strictest {
            Some((group, policy)) => PolicyDecision {
                policy,
                source: PolicySource::Group(group.clone()),
            },
            None => PolicyDecision {
                policy: self.default,
                source: PolicySource::Default,
            },
        }
    }
}

/// `[totp]`: parameters of newly enrolled secrets (existing enrollments keep theirs).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TotpConfig {
    pub digits: Digits,
    pub period: Period,
    pub algorithm: Algorithm,
    /// Steps accepted either side of the current one.
    pub window: Window,
    /// Issuer shown by authenticator apps; the host name when unset.
    pub issuer: Option<String>,
}

/// `[admin]`: members of `group` (and root) may act on any user.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub group: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            group: "twofactor-admin".to_owned(),
        }
    }
}

/// `[enrollment]`: what happens to required users who have not enrolled.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EnrollmentConfig {
    /// Enroll them inside the login, through the PAM conversation. Whoever knows the password
    /// first can then enroll: restrict it with `at_login_from`.
    pub at_login: bool,
    /// Where login-time enrollment is allowed: `"any"`, `"console"`, `"no-remote-host"`
    /// (`"local"`, the old name), or IP addresses and networks such as `"10.0.0.0/8"`.
    pub at_login_from: Vec<LoginOrigin>,
    /// How long a user who became required may still log in without a code, counted from
    /// their first login attempt after that (`"7d"`, `"12h"`, `"30m"`, seconds); none by
    /// default.
    pub grace_period: Option<Seconds>,
}

impl Default for EnrollmentConfig {
    fn default() -> Self {
        EnrollmentConfig {
            at_login: false,
            at_login_from: vec![LoginOrigin::Any],
            grace_period: None,
        }
    }
}

impl EnrollmentConfig {
    /// Whether a login from `source` may enroll.
    pub fn allows_at_login(&self, source: &LoginSource) -> bool {
        self.at_login
            && self
                .at_login_from
                .iter()
                .any(|origin| origin.matches(source))
    }

    /// Whether `at_login_from` uses the old name `"local"` (see [`LOCAL_MEANS`]).
    pub fn says_local(&self) -> bool {
        self.at_login_from.iter().any(|origin| {
            matches!(
                origin,
                LoginOrigin::NoRemoteHost {
                    written_as_local: true
                }
            )
        })
    }
}

/// `[notify]` and `[delivery]`: a program the daemon runs (no shell, fixed argv).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CommandConfig {
    /// Absolute path of the program; unset means off.
    pub command: Option<AbsolutePath>,
}

/// An absolute path, checked while parsing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct AbsolutePath(std::path::PathBuf);

impl AbsolutePath {
    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

impl TryFrom<String> for AbsolutePath {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        if value.starts_with('/') {
            Ok(AbsolutePath(value.into()))
        } else {
            Err(format!("command must be an absolute path, not {value:?}"))
        }
    }
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// toml's message names the line and column.
    #[error("invalid configuration {path}: {message}")]
    Invalid { path: String, message: String },
    /// Anyone but root could change it, and the daemon would act on it as root.
    #[error("refusing {what} {path}: {reason}")]
    Unsafe {
        what: &'static str,
        path: String,
        reason: file_safety::UnsafePath,
    },
}

impl Config {
    /// Read `path`. A missing file means the defaults; anything else unreadable or invalid is
    /// an error, so a typo never silently weakens the policy. So is a file, or a `[notify]` or
    /// `[delivery]` program, that anyone but root could change (see [`file_safety`]).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let checked = match file_safety::check_root_only_file(path) {
            Ok(resolved) => resolved,
            // Every directory down to the missing one is root's: nobody else can add it.
            Err(reason) if reason.problem == file_safety::Problem::Missing => {
                return Ok(Config::default());
            }
            Err(reason) => {
                return Err(ConfigError::Unsafe {
                    what: "the configuration",
                    path: shown,
                    reason,
                });
            }
        };
        let text = std::fs::read_to_string(&checked).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        let config = Config::parse(&text, &shown)?;
        config.check_programs()?;
        Ok(config)
    }

    /// Refuse a `[notify]` or `[delivery]` program that anyone but root could change: the
    /// daemon runs it as root. A missing one in root's directories is no risk.
    pub fn check_programs(&self) -> Result<(), ConfigError> {
        for (what, command) in [
            ("the [notify] command", &self.notify.command),
            ("the [delivery] command", &self.delivery.command),
        ] {
            let Some(command) = command else { continue };
            match file_safety::check_root_only_file(command.as_path()) {
                Ok(_) => {}
                // Only root could add it; running it fails and is logged, as before.
                Err(reason) if reason.problem == file_safety::Problem::Missing => {}
                Err(reason) => {
                    return Err(ConfigError::Unsafe {
                        what,
                        path: command.as_path().display().to_string(),
                        reason,
                    });
                }
            }
        }
        Ok(())
    }

    /// Parse TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|error| ConfigError::Invalid {
            path: origin.to_owned(),
            message: error.to_string().trim_end().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests;
