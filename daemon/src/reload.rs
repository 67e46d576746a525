//! `SIGHUP` re-reads the configuration. A file that does not load is refused, logged with the
//! file and the error, and the configuration in force stays.
//!
//! No async runtime: signal-hook's handler writes to a pipe that one plain thread reads. No
//! signal is blocked, so the programs the daemon runs (notify, delivery, getent) start with
//! the signal mask they expect.
//!
//! A file that is missing or empty at a reload is refused too: most likely it is being
//! edited or rewritten, and reading it as "the defaults" would quietly weaken the policy
//! (a missing file means the defaults only when the daemon starts).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use signal_hook::consts::SIGHUP;
use signal_hook::iterator::Signals;
use twofactor_config::{Config, ConfigError};

use crate::accounts::Accounts;
use crate::config_check;
use crate::log::{EventLog, Line};
use crate::programs::{CommandNotifier, NoNotifier, Notifier};
use crate::service::Service;

/// Catch SIGHUP from now on (call it early: until then SIGHUP would end the daemon); the
/// signals arrive through [`reload_on_sighup`].
pub fn catch_sighup() -> std::io::Result<Signals> {
    Signals::new([SIGHUP])
}

/// The configuration at `path` for a reload: as [`Config::load`], but a missing or empty file
/// is refused instead of meaning the defaults.
fn load_for_reload(path: &Path) -> Result<Config, ConfigError> {
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.len() == 0 => Err(ConfigError::Invalid {
            path: path.display().to_string(),
            message: "the file is empty (being rewritten?); not read as the defaults".into(),
        }),
        Ok(_) => Config::load(path),
        Err(source) => Err(ConfigError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// The notifier of `config`'s `[notify]` command.
pub fn notifier_for(config: &Config, log: Arc<dyn EventLog>) -> Arc<dyn Notifier> {
    match &config.notify.command {
        Some(command) => Arc::new(CommandNotifier::new(command.as_path(), log)),
        None => Arc::new(NoNotifier),
    }
}

/// Log what [`config_check::warnings`] finds, one line each.
pub fn log_warnings(config: &Config, accounts: &dyn Accounts, log: &dyn EventLog) {
    for warning in config_check::warnings(config, accounts) {
        log.warning(
            Line::new("config-warning")
                .field("key", &warning.key)
                .field("warning", &warning.message)
                .as_str(),
        );
    }
}

/// Re-read `path` and put it in force, or refuse it and keep the one in force.
pub fn reload(
    service: &Service,
    path: &Path,
    accounts: &dyn Accounts,
    log: &Arc<dyn EventLog>,
) -> bool {
    match load_for_reload(path) {
        Ok(config) => {
            log_warnings(&config, accounts, log.as_ref());
            let notifier = notifier_for(&config, log.clone());
            service.replace_config(config, notifier);
            log.info(
                Line::new("config-reloaded")
                    .field("path", path.display())
                    .as_str(),
            );
            true
        }
        Err(error) => {
            log.warning(
                Line::new("config-reload-refused")
                    .field("path", path.display())
                    .field("error", &error)
                    .field("kept", "the configuration in force")
                    .as_str(),
            );
            false
        }
    }
}

/// A thread that reloads `path` into `service` at every SIGHUP, for the life of the process.
pub fn reload_on_sighup(
    mut hangups: Signals,
    service: Arc<Service>,
    path: PathBuf,
    accounts: Arc<dyn Accounts>,
    log: Arc<dyn EventLog>,
    after_reload: Box<dyn Fn(&Config) + Send>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("sighup".into())
        .spawn(move || {
            for _ in hangups.forever() {
                if reload(&service, &path, accounts.as_ref(), &log) {
                    after_reload(&service.config());
                }
            }
        })
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::FixedAccounts;
    use crate::log::MemoryLog;
    use crate::store::MemoryStore;

    #[test]
    fn a_valid_file_takes_effect_and_an_invalid_one_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("twofactor.toml");
        std::fs::write(&path, "[policy]\ndefault = \"optional\"\n").unwrap();
        let memory = Arc::new(MemoryLog::default());
        let log: Arc<dyn EventLog> = memory.clone();
        let accounts = FixedAccounts::default().with("alice", 1001, &["alice"]);
        let service = Service::new(
            Config::load(&path).unwrap(),
            Arc::new(MemoryStore::default()),
            Arc::new(accounts.clone()),
            log.clone(),
            "host".into(),
        );
        let policy = || service.config().policy.default;
        assert_eq!(policy(), twofactor_config::Policy::Optional);

        std::fs::write(&path, "[policy]\ndefault = \"required\"\n").unwrap();
        assert!(reload(&service, &path, &accounts, &log));
        assert_eq!(policy(), twofactor_config::Policy::Required);

        std::fs::write(&path, "[policy]\ndefault = \"requird\"\n").unwrap();
        assert!(!reload(&service, &path, &accounts, &log));
        assert_eq!(
            policy(),
            twofactor_config::Policy::Required,
            "the old one stays"
        );
        let lines = memory.lines();
        let refused = lines
            .iter()
            .find(|line| line.contains("config-reload-refused"))
            .unwrap_or_else(|| panic!("{lines:?}"));
        assert!(refused.contains(&path.display().to_string()), "{refused}");
        assert!(refused.contains("requird"), "{refused}");

        // A file being rewritten (empty) or moved away (missing) is not "the defaults".
        std::fs::write(&path, "").unwrap();
        assert!(!reload(&service, &path, &accounts, &log));
        assert_eq!(policy(), twofactor_config::Policy::Required);
        std::fs::remove_file(&path).unwrap();
        assert!(!reload(&service, &path, &accounts, &log));
        assert_eq!(policy(), twofactor_config::Policy::Required);
    }
}
