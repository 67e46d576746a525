//! What `twofactord --check-config`, the start and a reload say about a configuration beyond
//! whether it parses: names the policy uses that this machine does not know, and the old
//! spelling `"local"`. Warnings only: such a configuration is still used.

use std::fmt;

use twofactor_config::{Config, LOCAL_MEANS};

use crate::accounts::Accounts;

/// One warning, about one TOML key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Dotted TOML key, e.g. `policy.groups.wheel`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// `name` as a TOML key segment: bare if it can be, else quoted.
fn key_segment(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if bare {
        name.to_owned()
    } else {
        format!("{name:?}")
    }
}

/// Debian and its derivatives call the administrators' group `sudo`; other systems `wheel`.
fn admin_group_hint(group: &str, accounts: &dyn Accounts) -> &'static str {
    match group {
        "wheel" if accounts.group_exists("sudo").unwrap_or(false) => {
            "; Debian's admin group is sudo"
        }
        "sudo" if accounts.group_exists("wheel").unwrap_or(false) => {
            "; this system's admin group is wheel"
        }
        _ => "",
    }
}

/// Every warning about `config` on this machine, in the file's order of sections.
pub fn warnings(config: &Config, accounts: &dyn Accounts) -> Vec<Warning> {
    let mut found = Vec::new();
    let mut warn = |key: String, message: String| found.push(Warning { key, message });
    for (group, policy) in &config.policy.groups {
        let key = format!("policy.groups.{}", key_segment(group));
        match accounts.group_exists(group) {
            Ok(true) => {}
            Ok(false) => warn(
                key,
                format!(
                    "group {group} does not exist here{}; its rule ({policy}) applies to nobody",
                    admin_group_hint(group, accounts)
                ),
            ),
            Err(error) => warn(key, format!("cannot look group {group} up: {error}")),
        }
    }
    for (user, policy) in &config.policy.users {
        let key = format!("policy.users.{}", key_segment(user));
        match accounts.name_of(user) {
            Ok(Some(found)) if found == *user => {}
            Ok(_) => warn(
                key,
                format!("user {user} does not exist here; its rule ({policy}) applies to nobody"),
            ),
            Err(error) => warn(key, format!("cannot look user {user} up: {error}")),
        }
    }
    let admin = &config.admin.group;
    match accounts.group_exists(admin) {
        Ok(true) => {}
        Ok(false) => warn(
            "admin.group".into(),
            format!("group {admin} does not exist here: only root can administer twofactor"),
        ),
        Err(error) => warn(
            "admin.group".into(),
            format!("cannot look group {admin} up: {error}"),
        ),
    }
    if config.enrollment.says_local() {
        warn("enrollment.at_login_from".into(), LOCAL_MEANS.into());
    }
    // The widest window a record can have is the configured one (imports carry their own).
    let lockout = &config.lockout;
    let window = config.totp.window.get();
    let odds = lockout.guess_probability_per_year(config.totp.digits.get(), 2 * window + 1);
    if odds > GUESS_ODDS_PER_YEAR {
        warn(
            "lockout".into(),
            format!(
                "an attacker with many sources gets {} guesses a year, a {odds:.1e} chance of \
                 a {}-digit code with window {window}; raise lock_duration or lower \
                 max_failures to keep it under {GUESS_ODDS_PER_YEAR:.0e} (docs/security.md)",
                lockout.attempts_per_year(),
                config.totp.digits.get(),
            ),
        );
    }
    found
}

/// The chance of a guessed code in a year of attack that the defaults stay under.
pub const GUESS_ODDS_PER_YEAR: f64 = 1e-3;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::FixedAccounts;

    #[test]
    fn a_guess_budget_above_one_in_a_thousand_a_year_is_warned_about() {
        let accounts = FixedAccounts::default().with("root", 0, &["twofactor-admin"]);
        let lockout_warnings = |text: &str| {
            warnings(&Config::parse(text, "x").expect("valid"), &accounts)
                .into_iter()
                .filter(|warning| warning.key == "lockout")
                .count()
        };
        assert_eq!(lockout_warnings(""), 0, "the defaults keep it");
        assert_eq!(lockout_warnings("[lockout]\nmax_failures = 100\n"), 1);
        assert_eq!(lockout_warnings("[totp]\nwindow = 3\n"), 1);
        assert_eq!(lockout_warnings("[lockout]\nlock_duration = \"10m\"\n"), 1);
    }

    #[test]
    fn unknown_names_and_the_old_local_are_warned_about_with_their_key() {
        let config = Config::parse(
            "[policy]\ngroups = { wheel = \"required\", staff = \"optional\" }\n\
             users = { alice = \"required\", ghost = \"disabled\", \"a.b\" = \"optional\" }\n\
             [admin]\ngroup = \"staff\"\n\
             [enrollment]\nat_login = true\nat_login_from = [\"local\"]\n",
            "x",
        )
        .unwrap();
        let accounts = FixedAccounts::default()
            .with("alice", 1001, &["alice", "staff", "sudo"])
            .with("bob", 1002, &["bob"]);
        let lines: Vec<String> = warnings(&config, &accounts)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "policy.groups.wheel: group wheel does not exist here; Debian's admin group is \
                 sudo; its rule (required) applies to nobody",
                "policy.users.\"a.b\": user a.b does not exist here; its rule (optional) applies \
                 to nobody",
                "policy.users.ghost: user ghost does not exist here; its rule (disabled) applies \
                 to nobody",
                &format!("enrollment.at_login_from: {LOCAL_MEANS}"),
            ]
        );
    }

    #[test]
    fn a_config_whose_names_all_exist_gets_no_warning() {
        let config = Config::parse(
            "[policy]\ngroups = { sudo = \"required\" }\nusers = { alice = \"optional\" }\n\
             [admin]\ngroup = \"sudo\"\n[enrollment]\nat_login_from = [\"console\"]\n",
            "x",
        )
        .unwrap();
        let accounts = FixedAccounts::default().with("alice", 1001, &["sudo"]);
        assert_eq!(warnings(&config, &accounts), []);
    }
}
