//! Every fuzz target as a plain function over bytes. `fuzz/` (cargo-fuzz, nightly) drives them
//! with libFuzzer; `tests/replay.rs` runs them over the committed corpus and regression inputs
//! on stable, so CI needs neither nightly nor cargo-fuzz.
//!
//! Each function feeds outside input to the real parser or method and asserts what must hold
//! whatever the input; a panic is a finding.

mod records;
mod service;

/// The google-authenticator and pam_oath parsers, compiled from the CLI's own source file:
/// the CLI is a binary crate, and its parsers are pure functions of the text.
#[allow(dead_code)]
#[path = "../../cli/src/migrate.rs"]
mod migrate;

pub use records::{record, user_name};
pub use service::service;

/// A fuzz target: it panics on a finding.
pub type Target = fn(&[u8]);

/// Every target by name, as the corpus directories under `fuzz/` are named.
pub const TARGETS: &[(&str, Target)] = &[
    ("code", code),
    ("user_name", user_name),
    ("record", record),
    ("config", config),
    ("google_authenticator", google_authenticator),
    ("oath_usersfile", oath_usersfile),
    ("service", service),
];

/// A code answer as the PAM module or the CLI sends it: the shape check, then the digits the
/// daemon keeps.
pub fn code(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if !twofactor_proto::is_plausible_code(text) {
        return;
    }
    let digits = twofactor_proto::codes::normalize(text);
    assert!(!digits.is_empty(), "a plausible code has a digit");
    assert!(digits.len() <= twofactor_proto::MAX_CODE_LEN);
    assert!(digits.bytes().all(|b| b.is_ascii_digit()));
    let _ = twofactor_proto::codes::could_be_backup_code(&digits);
    let _ = twofactor_proto::codes::could_be_temporary_code(&digits);
    assert!(
        twofactor_proto::is_plausible_code(&digits),
        "normalising is stable"
    );
}

/// `twofactor.toml`: parse, then ask the questions the daemon asks of it.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = twofactor_config::Config::parse(text, "fuzz") else {
        return;
    };
    let groups = ["wheel".to_owned(), "sudo".to_owned(), "staff".to_owned()];
    for user in ["root", "alice"] {
        let _ = config.policy.needs_groups(user);
        let decision = config.policy.resolve(user, &groups);
        let _ = decision.explanation();
    }
    for failures in [0, 1, 3, 10, 64, 100, u32::MAX] {
        let delay = config.lockout.delay_after(failures);
        assert!(delay <= config.lockout.max_delay_seconds);
        let _ = config.lockout.locks_at(failures);
    }
    for rhost in [
        "",
        "192.0.2.1",
        "2001:db8::1",
        "host.example",
        "::ffff:10.0.0.1",
    ] {
        for (service, tty, by_root) in [
            ("sshd", "ssh", true),
            ("login", "tty1", true),
            ("login", "tty1", false),
        ] {
            let source =
                twofactor_config::login_source::LoginSource::new(service, tty, rhost, by_root);
            let _ = config.enrollment.allows_at_login(&source);
        }
    }
}

/// A `~/.google_authenticator` file, as `twofactor import google-authenticator` reads it.
pub fn google_authenticator(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = migrate::google_authenticator(text) {
        check_parsed(&parsed);
    }
}

/// A pam_oath usersfile, as `twofactor import oath` reads it.
pub fn oath_usersfile(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for entry in migrate::oath_usersfile(text) {
        assert!(entry.line >= 1);
        if let Ok(parsed) = &entry.parsed {
            check_parsed(parsed);
        }
    }
}

/// What an importer hands the daemon is always within what the daemon takes.
fn check_parsed(parsed: &migrate::Parsed) {
    let e = &parsed.enrollment;
    assert!(migrate::DIGITS.contains(&e.digits), "digits {}", e.digits);
    assert!(migrate::PERIODS.contains(&e.period), "period {}", e.period);
    assert!(e.window <= migrate::MAX_WINDOW, "window {}", e.window);
    assert!(parsed.secret_bits >= migrate::MIN_SECRET_BITS);
    assert!(
        ["SHA1", "SHA256", "SHA512"].contains(&e.algorithm.as_str()),
        "algorithm {}",
        e.algorithm
    );
    assert!(
        base32::decode(
            base32::Alphabet::Rfc4648 { padding: false },
            &e.secret_base32
        )
        .is_some(),
        "the secret is base32"
    );
}
