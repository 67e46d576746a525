use super::*;

fn groups(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

const EXAMPLE: &str = r#"
[policy]
default = "optional"
groups  = { wheel = "required", sftponly = "disabled", staff = "optional" }
users   = { alice = "required", bob = "disabled" }

[totp]
digits = 8
period = 30
algorithm = "SHA256"
window = 2

[lockout]
max_failures = 5

[admin]
group = "secadmins"
"#;

#[test]
fn missing_file_means_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::load(&dir.path().join("absent.toml")).unwrap();
    assert_eq!(config, Config::default());
    assert_eq!(config.policy.default, Policy::Optional);
    assert_eq!(config.totp.digits.get(), 6);
    assert_eq!(config.totp.period.get(), 30);
    assert_eq!(config.totp.algorithm, Algorithm::Sha1);
    assert_eq!(config.totp.window.get(), 1);
    assert_eq!(config.lockout.max_failures.get(), 30);
    assert_eq!(config.admin.group, "twofactor-admin");
}

#[test]
fn empty_file_means_defaults() {
    assert_eq!(Config::parse("", "x").unwrap(), Config::default());
}

#[test]
fn full_example_parses() {
    let config = Config::parse(EXAMPLE, "example").unwrap();
    assert_eq!(config.totp.digits.get(), 8);
    assert_eq!(config.totp.algorithm, Algorithm::Sha256);
    assert_eq!(config.totp.window.get(), 2);
    assert_eq!(config.lockout.max_failures.get(), 5);
    assert_eq!(config.lockout.free_failures, 3);
    assert_eq!(config.admin.group, "secadmins");
}

#[test]
fn resolution_table() {
    let config = Config::parse(EXAMPLE, "example").unwrap().policy;
    let cases: &[(&str, &[&str], Policy, &str)] = &[
        // A user entry wins over any group.
        (
            "alice",
            &["sftponly"],
            Policy::Required,
            "user alice → required",
        ),
        ("bob", &["wheel"], Policy::Disabled, "user bob → disabled"),
        // The strictest group wins, whatever the order of membership.
        (
            "carol",
            &["sftponly", "wheel"],
            Policy::Required,
            "group wheel → required",
        ),
        (
            "carol",
            &["wheel", "sftponly"],
            Policy::Required,
            "group wheel → required",
        ),
        (
            "dave",
            &["sftponly", "staff"],
            Policy::Optional,
            "group staff → optional",
        ),
        (
            "erin",
            &["sftponly"],
            Policy::Disabled,
            "group sftponly → disabled",
        ),
        // No rule: the default.
        ("frank", &["users"], Policy::Optional, "default → optional"),
        ("grace", &[], Policy::Optional, "default → optional"),
    ];
    for &(user, member_of, policy, explanation) in cases {
        let decision = config.resolve(user, &groups(member_of));
        assert_eq!(decision.policy, policy, "{user} in {member_of:?}");
        assert_eq!(
            decision.explanation(),
            explanation,
            "{user} in {member_of:?}"
        );
    }
}

#[test]
fn default_can_be_required() {
    let config = Config::parse("[policy]\ndefault = \"required\"\n", "x").unwrap();
    let decision = config.policy.resolve("anyone", &[]);
    assert_eq!(decision.policy, Policy::Required);
    assert_eq!(decision.source, PolicySource::Default);
}

fn error_of(text: &str) -> String {
    Config::parse(text, "/etc/twofactor/twofactor.toml")
        .unwrap_err()
        .to_string()
}

#[test]
fn invalid_files_name_the_line() {
    let cases = [
        ("[policy]\n\ndefault = \"mandatory\"\n", "line 3"),
        ("[policy]\ndefault = \"optional\"\ncolour = 1\n", "line 3"),
        ("[totp]\n\n\ndigits = 7\n", "line 4"),
        ("[totp]\nperiod = 5\n", "line 2"),
        ("[totp]\nalgorithm = \"MD5\"\n", "line 2"),
        ("[totp]\nwindow = 50\n", "line 2"),
        ("[lockout]\nmax_failures = 101\n", "line 2"),
        ("[lockout]\nmax_failures = 0\n", "line 2"),
        ("[admin]\ngroup = 3\n", "line 2"),
        ("[unknown]\n", "line 1"),
        ("[policy\n", "line 1"),
    ];
    for (text, line) in cases {
        let message = error_of(text);
        assert!(message.contains(line), "{text:?}: {message}");
        assert!(
            message.contains("/etc/twofactor/twofactor.toml"),
            "{message}"
        );
    }
}

#[test]
fn range_errors_say_what_is_allowed() {
    assert!(error_of("[totp]\ndigits = 7\n").contains("digits must be 6 or 8"));
    assert!(error_of("[lockout]\nmax_failures = 1000\n").contains("between 1 and 100"));
}

#[test]
fn unreadable_file_is_an_error_not_defaults() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file should be cannot be read as text.
    let error = Config::load(dir.path()).unwrap_err();
    assert!(
        error.to_string().contains("is not a regular file"),
        "{error}"
    );
}

#[test]
fn delays_grow_then_cap() {
    let lockout = LockoutConfig::default();
    let delays: Vec<u64> = (0..=12).map(|n| lockout.delay_after(n)).collect();
    assert_eq!(delays, [0, 0, 0, 0, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
    assert!(!lockout.locks_at(29));
    assert!(lockout.locks_at(30));
}

#[test]
fn delay_math_never_overflows() {
    let lockout = LockoutConfig {
        base_delay_seconds: u64::MAX,
        max_delay_seconds: u64::MAX,
        free_failures: 0,
        ..LockoutConfig::default()
    };
    assert_eq!(lockout.delay_after(u32::MAX), u64::MAX);
}

#[test]
fn groups_are_needed_only_with_group_rules_and_no_user_rule() {
    let mut config = PolicyConfig::default();
    assert!(!config.needs_groups("alice"), "no group rules");
    config.groups.insert("wheel".into(), Policy::Required);
    assert!(config.needs_groups("alice"));
    config.users.insert("alice".into(), Policy::Optional);
    assert!(!config.needs_groups("alice"), "alice's own rule wins");
    assert!(config.needs_groups("bob"));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn policy() -> impl Strategy<Value = Policy> {
        prop_oneof![
            Just(Policy::Disabled),
            Just(Policy::Optional),
            Just(Policy::Required)
        ]
    }

    proptest! {
        /// Without a user entry, the result is the strictest matching group, else the default.
        #[test]
        fn strictest_group_or_default(
            rules in proptest::collection::btree_map("[a-e]", policy(), 0..5),
            member_of in proptest::collection::vec("[a-g]", 0..6),
            default in policy(),
        ) {
            let config = PolicyConfig { default, groups: rules.clone(), users: BTreeMap::new() };
            let decision = config.resolve("someone", &member_of);
            let expected = member_of.iter().filter_map(|g| rules.get(g)).max().copied();
            prop_assert_eq!(decision.policy, expected.unwrap_or(default));
            match decision.source {
                PolicySource::Group(group) => prop_assert_eq!(rules.get(&group).copied(), expected),
                PolicySource::Default => prop_assert!(expected.is_none()),
                PolicySource::User(_) => prop_assert!(false, "no user rules"),
            }
        }

        /// When `needs_groups` says no, no set of groups changes the answer.
        #[test]
        fn groups_matter_only_when_needed(
            group_rules in proptest::collection::btree_map("[a-e]", policy(), 0..4),
            user_rules in proptest::collection::btree_map("[u-w]", policy(), 0..3),
            user in "[u-x]",
            member_of in proptest::collection::vec("[a-g]", 0..6),
            default in policy(),
        ) {
            let config = PolicyConfig { default, groups: group_rules, users: user_rules };
            if !config.needs_groups(&user) {
                prop_assert_eq!(config.resolve(&user, &member_of), config.resolve(&user, &[]));
            }
        }

        #[test]
        fn delays_never_decrease(failures in 0u32..200) {
            let lockout = LockoutConfig::default();
            prop_assert!(lockout.delay_after(failures) <= lockout.delay_after(failures + 1));
        }
    }
}

#[test]
fn the_shipped_example_config_is_valid_and_means_the_defaults() {
    let text = include_str!("../../packaging/config/twofactor.toml");
    assert_eq!(Config::parse(text, "example").unwrap(), Config::default());
    // Every commented-out setting is valid when uncommented.
    let uncommented: String = text
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest) if rest.contains(" = ") => rest,
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let config = Config::parse(&uncommented, "uncommented").unwrap();
    assert_eq!(config.totp.issuer.as_deref(), Some("Example Corp"));
    assert_eq!(config.policy.groups.len(), 2);
}

#[test]
fn enrollment_section() {
    let config = Config::parse(
        "[enrollment]\nat_login = true\nat_login_from = [\"no-remote-host\", \"10.0.0.0/8\", \"2001:db8::/32\", \"192.0.2.7\"]\ngrace_period = \"7d\"\n",
        "x",
    )
    .unwrap();
    let enrollment = &config.enrollment;
    assert_eq!(enrollment.grace_period.unwrap().get(), 7 * 86_400);
    assert!(!enrollment.says_local());
    let from = |rhost: &str| LoginSource::new("sshd", "ssh", rhost, true);
    for (rhost, allowed) in [
        ("", true),
        ("10.1.2.3", true),
        ("::ffff:10.9.9.9", true),
        ("11.0.0.1", false),
        ("192.0.2.7", true),
        ("192.0.2.8", false),
        ("2001:db8::1", true),
        ("2001:db9::1", false),
        ("attacker.example", false),
    ] {
        assert_eq!(
            enrollment.allows_at_login(&from(rhost)),
            allowed,
            "{rhost:?}"
        );
        // A context from a caller other than root is never believed.
        let claimed = LoginSource::new("sshd", "ssh", rhost, false);
        assert!(!enrollment.allows_at_login(&claimed), "claimed {rhost:?}");
    }
    let off = Config::default().enrollment;
    assert!(!off.allows_at_login(&from("")));
    let anywhere = Config::parse("[enrollment]\nat_login = true\n", "x")
        .unwrap()
        .enrollment;
    assert!(anywhere.allows_at_login(&from("203.0.113.9")));
    assert!(
        anywhere.allows_at_login(&LoginSource::new("sshd", "ssh", "203.0.113.9", false)),
        "\"any\" is the one origin that needs no trusted context"
    );
}

#[test]
fn console_and_the_old_name_local() {
    let parse = |origins: &str| {
        Config::parse(
            &format!("[enrollment]\nat_login = true\nat_login_from = [{origins}]\n"),
            "x",
        )
        .unwrap()
        .enrollment
    };
    let console = parse("\"console\"");
    let login_tty1 = LoginSource::new("login", "/dev/tty1", "", true);
    let su_in_ssh = LoginSource::new("su", "pts/2", "", true);
    assert!(console.allows_at_login(&login_tty1));
    assert!(!console.allows_at_login(&su_in_ssh));
    assert!(!console.allows_at_login(&LoginSource::new("login", "tty1", "", false)));
    // "local" keeps working, as "no-remote-host": su inside SSH matches it, and it is flagged.
    let local = parse("\"local\"");
    assert!(local.says_local());
    assert!(local.allows_at_login(&su_in_ssh));
    assert!(local.allows_at_login(&login_tty1));
    assert!(!local.allows_at_login(&LoginSource::new("sshd", "ssh", "192.0.2.1", true)));
    assert_eq!(
        local.at_login_from,
        [LoginOrigin::NoRemoteHost {
            written_as_local: true
        }]
    );
    let message = error_of("[enrollment]\nat_login_from = [\"locals\"]\n");
    assert!(message.contains("\"console\""), "{message}");
    assert!(LOCAL_MEANS.contains("\"console\""));
}

#[test]
fn durations() {
    for (text, seconds) in [
        ("\"45s\"", 45),
        ("\"30m\"", 1800),
        ("\"12h\"", 43_200),
        ("3600", 3600),
        ("\"3600\"", 3600),
        ("\"1h30m\"", 5400),
    ] {
        let config = Config::parse(&format!("[enrollment]\ngrace_period = {text}\n"), "x").unwrap();
        assert_eq!(
            config.enrollment.grace_period.unwrap().get(),
            seconds,
            "{text}"
        );
    }
    for bad in ["\"7w\"", "\"d\"", "\"-1d\"", "\"1.5h\""] {
        let message = error_of(&format!("[enrollment]\n\ngrace_period = {bad}\n"));
        assert!(message.contains("line 3"), "{bad}: {message}");
    }
    // humantime's months are refused: "1M" would be a month where "1m" is a minute.
    let message = error_of("[lockout]\nlock_duration = \"1M\"\n");
    assert!(
        message.contains("line 2") && message.contains("\"M\" in \"1M\" is not a unit"),
        "{message}"
    );
}

#[test]
fn bad_origins_and_commands_name_the_line() {
    assert!(error_of("[enrollment]\nat_login_from = [\"10.0.0.0/33\"]\n").contains("line 2"));
    assert!(error_of("[enrollment]\nat_login_from = [\"lan\"]\n").contains("line 2"));
    let message = error_of("[notify]\ncommand = \"mail-me\"\n");
    assert!(
        message.contains("line 2") && message.contains("absolute path"),
        "{message}"
    );
    let config = Config::parse("[notify]\ncommand = \"/usr/local/bin/notify\"\n[delivery]\ncommand = \"/usr/local/bin/sms\"\n", "x").unwrap();
    assert!(config.notify.command.is_some() && config.delivery.command.is_some());
}

mod unsafe_files {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, chown};

    fn root_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    fn write(path: &Path, text: &str, mode: u32) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_world_writable_config_owned_by_a_user_is_refused() {
        let dir = root_dir();
        let path = dir.path().join("twofactor.toml");
        write(&path, "[policy]\ndefault = \"disabled\"\n", 0o666);
        chown(&path, Some(1000), None).unwrap();
        let message = Config::load(&path).unwrap_err().to_string();
        assert!(
            message.starts_with(&format!("refusing the configuration {}: ", path.display()))
                && message.contains(&format!("chown root {}", path.display())),
            "{message}"
        );
        chown(&path, Some(0), None).unwrap();
        let message = Config::load(&path).unwrap_err().to_string();
        assert!(
            message.contains(&format!("chmod go-w {}", path.display())),
            "{message}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            Config::load(&path).unwrap().policy.default,
            Policy::Disabled
        );
    }

    #[test]
    fn a_missing_config_in_a_user_owned_directory_is_refused() {
        let dir = root_dir();
        let etc = dir.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        chown(&etc, Some(1000), None).unwrap();
        let error = Config::load(&etc.join("twofactor.toml")).unwrap_err();
        assert!(matches!(error, ConfigError::Unsafe { .. }), "{error}");
    }

    #[test]
    fn programs_anyone_but_root_could_change_are_refused() {
        let dir = root_dir();
        let config = dir.path().join("twofactor.toml");
        let user_bin = dir.path().join("bin");
        std::fs::create_dir(&user_bin).unwrap();
        std::fs::set_permissions(&user_bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let program = user_bin.join("notify");
        write(
            &config,
            &format!("[notify]\ncommand = \"{}\"\n", program.display()),
            0o644,
        );
        assert!(
            Config::load(&config).is_ok(),
            "a missing program in root's directory"
        );
        write(&program, "#!/bin/sh\n", 0o755);
        for section in ["notify", "delivery"] {
            write(
                &config,
                &format!("[{section}]\ncommand = \"{}\"\n", program.display()),
                0o644,
            );
            assert!(Config::load(&config).is_ok());
            chown(&program, Some(1000), None).unwrap();
            let message = Config::load(&config).unwrap_err().to_string();
            assert!(
                message.starts_with(&format!(
                    "refusing the [{section}] command {}: {} belongs to uid 1000",
                    program.display(),
                    program.display()
                )),
                "{message}"
            );
            chown(&program, Some(0), None).unwrap();
            chown(&user_bin, Some(1000), None).unwrap();
            let message = Config::load(&config).unwrap_err().to_string();
            assert!(
                message.contains(&format!("{} belongs to uid 1000", user_bin.display())),
                "{message}"
            );
            chown(&user_bin, Some(0), None).unwrap();
        }
    }
}

#[test]
fn the_default_guess_budget_keeps_a_year_of_guessing_under_one_in_a_thousand() {
    let lockout = LockoutConfig::default();
    // Locks of 1, 2, 4, ... 256 days begin within a year: 9 of them, 30 failures before each.
    assert_eq!(lockout.attempts_per_year(), 30 * 9 + 29);
    let window = TotpConfig::default().window.get();
    let odds = lockout.guess_probability_per_year(6, 2 * window + 1);
    assert!(odds <= 1e-3, "{odds}");
    // A lock that does not grow would not do: 30 failures a day.
    let flat = LockoutConfig {
        lock_duration: Seconds::from_secs(SECONDS_PER_YEAR),
        ..LockoutConfig::default()
    };
    assert_eq!(flat.attempts_per_year(), 30 + 29);
}

#[test]
fn lock_lengths_double_and_never_overflow() {
    let lockout = LockoutConfig::default();
    assert_eq!(lockout.lock_seconds(0), 86_400);
    assert_eq!(lockout.lock_seconds(3), 8 * 86_400);
    assert_eq!(lockout.lock_seconds(u32::MAX), u64::MAX);
    assert!(error_of("[lockout]\nlock_duration = \"10s\"\n").contains("at least 60"));
}
