//! disable, backup-codes, reset and verify, and what an ordinary user may not do.

use super::*;

#[test]
fn disable_under_required_says_which_rule_without_asking() {
    let fake = Fake::new("alice", false).enrolled().required();
    let (result, _, err) = run(&fake, &alice(), &["disable"], "123456\n");
    let error = result.unwrap_err();
    assert_eq!(error.exit_code(), 1);
    assert!(error.to_string().contains("group wheel"), "{error}");
    assert!(!err.contains("code"), "asked for a code: {err}");
    assert_eq!(fake.calls(), ["Status(alice)"]);
}

#[test]
fn disable_with_a_code() {
    let fake = Fake::new("alice", false).enrolled();
    let (result, out, _) = run(&fake, &alice(), &["disable", "--json"], "123456\n");
    assert_eq!(result, Ok(()));
    let value: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(value["disabled"], true);
}

#[test]
fn backup_codes_for_oneself_need_a_code() {
    let fake = Fake::new("alice", false).enrolled();
    let (result, out, _) = run(&fake, &alice(), &["backup-codes"], "123456\n");
    assert_eq!(result, Ok(()));
    assert!(out.contains("00000-00000"), "{out}");
    assert_eq!(
        fake.calls(),
        ["Status(alice)", "RegenerateBackupCodes(alice, 123456)"]
    );
    let fake = Fake::new("alice", false).enrolled();
    let (result, _, _) = run(&fake, &alice(), &["backup-codes"], "");
    assert_eq!(result.unwrap_err().exit_code(), 1);
}

#[test]
fn reset_needs_the_name_typed() {
    let fake = Fake::new("root", true);
    let (result, _, _) = run(&fake, &root(), &["reset", "alice"], "");
    assert_eq!(result.unwrap_err().exit_code(), 1);
    let (result, _, _) = run(&fake, &root(), &["reset", "alice"], "bob\n");
    assert_eq!(result.unwrap_err().exit_code(), 1);
    assert!(fake.calls().is_empty());
    let (result, out, _) = run(&fake, &root(), &["reset", "alice"], "alice\n");
    assert_eq!(result, Ok(()));
    assert!(out.contains("Reset alice"), "{out}");
    let (result, _, _) = run(&fake, &root(), &["reset", "alice", "--yes"], "");
    assert_eq!(result, Ok(()));
    // Each reset reads the status back to say whether the user can still log in.
    assert_eq!(
        fake.calls(),
        [
            "ResetUser(alice)",
            "Status(alice)",
            "ResetUser(alice)",
            "Status(alice)"
        ]
    );
}

#[test]
fn ordinary_users_are_denied_admin_commands() {
    let fake = Fake::new("alice", false);
    for args in [
        &["list"][..],
        &["reset", "bob", "--yes"],
        &["unlock", "bob"],
        &["status", "bob"],
        &["policy", "bob"],
    ] {
        let (result, _, _) = run(&fake, &alice(), args, "");
        let error = result.unwrap_err();
        assert_eq!(error.exit_code(), 1, "{args:?}");
        assert!(
            error.to_string().starts_with("permission denied: "),
            "{error}"
        );
    }
}

#[test]
fn verify_reports_and_exits_by_outcome() {
    let fake = Fake::new("root", true).enrolled();
    let (result, out, _) = run(&fake, &root(), &["verify", "alice"], "123456\n");
    assert_eq!(result, Ok(()));
    assert_eq!(out.trim(), "accepted");
    let (result, out, _) = run(&fake, &root(), &["verify", "alice"], "000000\n");
    assert_eq!(result, Err(CliError::Reported));
    assert_eq!(out.trim(), "rejected");
    let (result, _, _) = run(&fake, &root(), &["verify", "alice"], "");
    assert_eq!(result.unwrap_err().exit_code(), 2);
}

#[test]
fn invalid_user_names_never_reach_the_daemon() {
    let fake = Fake::new("root", true);
    let (result, _, _) = run(&fake, &root(), &["status", "../etc"], "");
    assert_eq!(result.unwrap_err().exit_code(), 2);
    assert!(fake.calls().is_empty());
}
