//! What `reset`, `unlock` and `list` tell an administrator, against the fake daemon.

use clap::Parser;

use super::super::fake::Fake;
use super::super::{Invoker, dispatch};
use crate::cli::Cli;
use crate::io::testing::scripted;

fn run_as_root(fake: &Fake, args: &[&str]) -> String {
    let root = Invoker {
        uid: 0,
        name: Some("root".into()),
    };
    let cli = Cli::try_parse_from(std::iter::once("twofactor").chain(args.iter().copied()))
        .unwrap_or_else(|error| panic!("{args:?}: {error}"));
    let (mut io, out, err) = scripted("");
    let result = dispatch(cli.command, fake, &root, &mut io);
    drop(io);
    assert_eq!(result, Ok(()), "{args:?}: {}", err.text());
    out.text()
}

/// Prose is wrapped to the terminal's width: compare its sentences, not its line breaks.
fn prose(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn resetting_a_required_user_says_they_cannot_log_in_and_the_ways_back() {
    let fake = Fake::new("root", true).required();
    let out = prose(&run_as_root(&fake, &["reset", "alice", "--yes"]));
    assert!(
        out.contains("alice must use two-factor authentication (rule: group wheel) and cannot log in until enrolled again"),
        "{out}"
    );
    assert!(out.contains("`twofactor enroll --user alice`"), "{out}");
    assert!(out.contains("`twofactor temp-code alice`"), "{out}");
    assert!(out.contains("enrollment at login"), "{out}");
    assert!(
        !out.contains("can log in without a code"),
        "the optional user's sentence: {out}"
    );
}

#[test]
fn resetting_an_optional_user_says_they_can_enroll_again() {
    let fake = Fake::new("root", true);
    let out = prose(&run_as_root(&fake, &["reset", "alice", "--yes"]));
    assert!(
        out.contains("alice can log in without a code and enroll again with `twofactor enroll`"),
        "{out}"
    );
    assert!(!out.contains("cannot log in"), "{out}");
}

#[test]
fn unlock_and_status_agree_on_what_is_cleared() {
    let fake = Fake::new("root", true).enrolled();
    let out = prose(&run_as_root(&fake, &["unlock", "alice"]));
    assert!(
        out.contains("earlier failures no longer count toward a delay or a lockout"),
        "{out}"
    );
    assert!(out.contains("still shows the failed attempts"), "{out}");
    // What the daemon reports after an unlock: not locked, failures since the last success kept.
    fake.status.borrow_mut().failures_since_success = 3;
    let status = prose(&run_as_root(&fake, &["status", "alice"]));
    assert!(status.contains("Locked: no"), "{status}");
    assert!(
        status.contains("3 since the last success (the user is told at the next login; an unlock does not clear this)"),
        "{status}"
    );
}

#[test]
fn list_marks_required_users_who_are_not_enrolled() {
    let fake = Fake::new("root", true).required();
    let out = run_as_root(&fake, &["list"]);
    assert!(
        out.contains("alice  NOT ENROLLED (required: group wheel)"),
        "{out}"
    );
    assert!(
        out.contains("1 required user(s) NOT ENROLLED cannot log in"),
        "{out}"
    );
    fake.status.borrow_mut().grace_ends_at = 4_102_444_800;
    let out = run_as_root(&fake, &["list"]);
    assert!(
        out.contains("no (required: group wheel; grace until 2100-01-01 00:00:00 UTC)"),
        "{out}"
    );
    assert!(!out.contains("NOT ENROLLED"), "{out}");
}

#[test]
fn status_shows_throttled_sources_and_a_lock_that_ends() {
    let fake = Fake::new("root", true).enrolled();
    {
        let mut status = fake.status.borrow_mut();
        status.locked = true;
        status.retry_after_seconds = 2 * 3600;
    }
    *fake.throttled.borrow_mut() = vec![
        twofactor_proto::ThrottledSource {
            source: "192.0.2.7".into(),
            failures: 5,
            retry_after_seconds: 16,
        },
        twofactor_proto::ThrottledSource {
            source: "console".into(),
            failures: 1,
            retry_after_seconds: 0,
        },
    ];
    let out = run_as_root(&fake, &["status", "alice"]);
    assert!(out.contains("Locked:            yes, for 2 h"), "{out}");
    assert!(
        out.contains("Throttled source:  192.0.2.7: 5 failures, next attempt in 16 s"),
        "{out}"
    );
    assert!(
        out.contains("Throttled source:  console: 1 failure\n"),
        "{out}"
    );
    assert!(
        prose(&out).contains("logins from everywhere are refused for 2 h, or until an administrator runs `twofactor unlock alice`"),
        "{out}"
    );
    let json: serde_json::Value =
        serde_json::from_str(run_as_root(&fake, &["status", "alice", "--json"]).trim())
            .expect("json");
    assert_eq!(
        json["throttled_sources"],
        serde_json::json!([
            {"source": "192.0.2.7", "failures": 5, "retry_after_seconds": 16},
            {"source": "console", "failures": 1, "retry_after_seconds": 0},
        ])
    );
    assert_eq!(json["failures_since_success"], 0);
}

#[test]
fn a_policy_newer_than_this_cli_is_shown_by_its_name() {
    let fake = Fake::new("root", true).enrolled();
    fake.status.borrow_mut().policy = twofactor_proto::OrUnknown::from_name("enforced");
    let status = run_as_root(&fake, &["status", "alice"]);
    assert!(
        status.contains("Policy:            enforced (rule: default)"),
        "{status}"
    );
    let list = run_as_root(&fake, &["list"]);
    assert!(
        list.lines()
            .nth(1)
            .is_some_and(|row| row.starts_with("alice  yes       enforced")),
        "{list}"
    );
    let json = run_as_root(&fake, &["status", "alice", "--json"]);
    let json: serde_json::Value = serde_json::from_str(json.trim()).expect("JSON");
    assert_eq!(json["policy"], "enforced");
}
