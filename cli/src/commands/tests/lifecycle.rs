//! Temporary codes, delivery, and replacing after a temporary code.

use super::*;

#[test]
fn temp_code_shows_the_code_once_with_its_expiry_and_what_to_do() {
    let fake = Fake::new("root", true).enrolled();
    let (result, out, _) = run(&fake, &root(), &["temp-code", "alice"], "");
    assert_eq!(result, Ok(()));
    assert_eq!(fake.calls(), ["IssueTemporaryCode(alice, 3600)"]);
    assert_eq!(out.matches(TEMPORARY).count(), 1, "{out}");
    assert!(
        out.contains("until 2023-11-14 23:13:20 UTC (in 1 h)"),
        "{out}"
    );
    assert!(out.contains("twofactor enroll --replace"), "{out}");

    let fake = Fake::new("root", true);
    let (result, out, _) = run(
        &fake,
        &root(),
        &["temp-code", "alice", "--expires", "30m", "--json"],
        "",
    );
    assert_eq!(result, Ok(()));
    assert_eq!(fake.calls(), ["IssueTemporaryCode(alice, 1800)"]);
    let value: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(value["user"], "alice");
    assert_eq!(value["code"], TEMPORARY);
    assert_eq!(value["expires_at"], TEMPORARY_EXPIRES_AT);
    assert_eq!(value["expires_in_seconds"], 1800);
}

#[test]
fn temp_code_lifetimes_are_checked_before_the_daemon() {
    for (text, ok) in [
        ("24h", true),
        ("90s", true),
        ("25h", false),
        ("0", false),
        ("1w", false),
    ] {
        let parsed = Cli::try_parse_from(["twofactor", "temp-code", "alice", "--expires", text]);
        assert_eq!(parsed.is_ok(), ok, "{text}");
        if let Err(error) = parsed {
            assert_eq!(error.exit_code(), 2);
        }
    }
}

#[test]
fn delivery_on_and_off() {
    let fake = Fake::new("root", true);
    let (result, out, _) = run(&fake, &root(), &["delivery", "alice", "on"], "");
    assert_eq!(result, Ok(()));
    assert!(out.contains("on for alice"), "{out}");
    assert!(out.contains("weaker"), "{out}");
    let (result, out, _) = run(&fake, &root(), &["delivery", "alice", "off", "--json"], "");
    assert_eq!(result, Ok(()));
    let value: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        value,
        serde_json::json!({"user": "alice", "delivery_enabled": false})
    );
    assert_eq!(
        fake.calls(),
        ["SetDelivery(alice, true)", "SetDelivery(alice, false)"]
    );
    assert!(Cli::try_parse_from(["twofactor", "delivery", "alice", "maybe"]).is_err());
}

#[test]
fn lifecycle_commands_are_for_admins() {
    let fake = Fake::new("alice", false).enrolled();
    for args in [&["temp-code", "alice"][..], &["delivery", "alice", "on"]] {
        let (result, out, _) = run(&fake, &alice(), args, "");
        let error = result.unwrap_err();
        assert_eq!(error.exit_code(), 1, "{args:?}: {error}");
        assert!(
            error.to_string().starts_with("permission denied"),
            "{error}"
        );
        assert!(!out.contains(TEMPORARY));
    }
}

#[test]
fn replace_accepts_a_temporary_code_as_the_current_code() {
    let fake = Fake::new("alice", false).enrolled();
    let (result, _, err) = run(
        &fake,
        &alice(),
        &["enroll", "--replace", "--no-qr"],
        &format!("{TEMPORARY}\n{GOOD}\nyes\n"),
    );
    assert_eq!(result, Ok(()), "{err}");
    assert!(err.contains("or a temporary code"), "{err}");
    assert_eq!(
        fake.calls(),
        [
            "Status(alice)",
            "BeginEnrollment(alice, true, )",
            &format!("BeginEnrollment(alice, true, {TEMPORARY})"),
            "ConfirmEnrollment(alice, 123456)",
        ]
    );
    // A failed confirmation says the temporary code is gone.
    let fake = Fake::new("alice", false).enrolled();
    let (result, _, _) = run(
        &fake,
        &alice(),
        &["enroll", "--replace", "--json"],
        &format!("{TEMPORARY}\n000000\n"),
    );
    let error = result.unwrap_err();
    assert_eq!(error.exit_code(), 1);
    assert!(
        error.to_string().contains("temporary code is spent"),
        "{error}"
    );
}

#[test]
fn right_after_a_temporary_code_login_replace_asks_for_no_code() {
    let mut fake = Fake::new("alice", false).enrolled();
    fake.replace_without_code = true;
    let (result, out, err) = run(
        &fake,
        &alice(),
        &["enroll", "--replace", "--no-qr"],
        &format!("{GOOD}\nyes\n"),
    );
    assert_eq!(result, Ok(()), "{err}");
    assert!(!err.contains("Current code"), "{err}");
    assert!(out.contains("no current code is needed"), "{out}");
    assert_eq!(
        fake.calls(),
        [
            "Status(alice)",
            "BeginEnrollment(alice, true, )",
            "ConfirmEnrollment(alice, 123456)",
        ]
    );
    // With --json the current-code line is read as always; it may be empty.
    let (result, out, _) = run(
        &fake,
        &alice(),
        &["enroll", "--replace", "--json"],
        "\n123456\n",
    );
    assert_eq!(result, Ok(()));
    assert_eq!(out.lines().count(), 2, "{out}");
}
