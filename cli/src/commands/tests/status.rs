//! status and list, for people and as JSON.

use super::*;

#[test]
fn status_json_has_the_documented_keys() {
    let fake = Fake::new("alice", false).enrolled();
    let (result, out, _) = run(&fake, &alice(), &["status", "--json"], "");
    assert_eq!(result, Ok(()));
    let value: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    for key in [
        "user",
        "enrolled",
        "policy",
        "policy_source",
        "backup_codes_left",
        "locked",
        "failures_since_success",
        "last_success_time",
        "problem",
    ] {
        assert!(value.get(key).is_some(), "{key} missing: {value}");
    }
    assert_eq!(value["user"], "alice");
}

#[test]
fn status_for_people() {
    let fake = Fake::new("alice", false).enrolled();
    let (_, out, _) = run(&fake, &alice(), &["status"], "");
    assert!(
        out.contains("Enrolled:          yes, since 2023-11-14 22:13:20 UTC"),
        "{out}"
    );
    assert!(
        out.contains("Policy:            optional (rule: default)"),
        "{out}"
    );
    assert!(out.contains("Backup codes left: 10"), "{out}");
    assert!(out.contains("Last success:      never"), "{out}");
}

#[test]
fn list_is_a_table() {
    let fake = Fake::new("root", true).enrolled();
    let (result, out, _) = run(&fake, &root(), &["list"], "");
    assert_eq!(result, Ok(()));
    let mut lines = out.lines();
    assert!(
        lines.next().unwrap().starts_with("USER   ENROLLED  POLICY"),
        "{out}"
    );
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("alice  yes       optional"),
        "{out}"
    );
}

#[test]
fn status_shows_grace_temporary_code_and_delivery() {
    let fake = Fake::new("alice", false).required();
    {
        let mut status = fake.status.borrow_mut();
        status.grace_ends_at = 4_102_444_800;
        status.temporary_code_expires_at = TEMPORARY_EXPIRES_AT;
        status.delivery_enabled = true;
    }
    let (result, out, _) = run(&fake, &alice(), &["status"], "");
    assert_eq!(result, Ok(()));
    assert!(
        out.contains("Grace period:      until 2100-01-01 00:00:00 UTC"),
        "{out}"
    );
    assert!(
        out.contains("Temporary code:    issued, unused, expires 2023-11-14 23:13:20 UTC"),
        "{out}"
    );
    assert!(out.contains("Code delivery:     on"), "{out}");
    assert!(
        out.contains("required from 2100-01-01 00:00:00 UTC: set it up before then"),
        "{out}"
    );
    let (_, out, _) = run(&fake, &alice(), &["status", "--json"], "");
    let value: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(value["grace_ends_at"], 4_102_444_800u64);
    // Once it has ended, the plain requirement.
    fake.status.borrow_mut().grace_ends_at = 1_700_604_800;
    let (_, ended, _) = run(&fake, &alice(), &["status"], "");
    assert!(
        ended.contains("Grace period:      ended 2023-11-21 22:13:20 UTC"),
        "{ended}"
    );
    assert!(
        ended.contains("Two-factor authentication is required: set it up"),
        "{ended}"
    );
    fake.status.borrow_mut().grace_ends_at = 4_102_444_800;
    assert_eq!(value["temporary_code_expires_at"], TEMPORARY_EXPIRES_AT);
    assert_eq!(value["delivery_enabled"], true);
    assert_eq!(value["backup_codes_low"], false);
}

#[test]
fn status_warns_when_backup_codes_run_low() {
    let fake = Fake::new("alice", false).enrolled();
    fake.status.borrow_mut().backup_codes_left = 1;
    let (_, out, _) = run(&fake, &alice(), &["status"], "");
    assert!(out.contains("Backup codes left: 1 (running low)"), "{out}");
    assert!(
        out.contains(
            "Warning: only 1 backup code left: make a new set now with `twofactor backup-codes`"
        ),
        "{out}"
    );
    assert!(out.contains("Code delivery:     off"), "{out}");
    let (_, out, _) = run(&fake, &alice(), &["status", "--json"], "");
    let value: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(value["backup_codes_low"], true);

    fake.status.borrow_mut().backup_codes_left = 0;
    let (_, out, _) = run(&fake, &alice(), &["status"], "");
    assert!(out.contains("Backup codes left: 0 (none left)"), "{out}");
    assert!(out.contains("No backup codes are left"), "{out}");
    // An admin looking at someone else is told the command for that user.
    let fake = Fake::new("root", true).enrolled();
    fake.status.borrow_mut().backup_codes_left = 0;
    let (_, out, _) = run(&fake, &root(), &["status", "alice"], "");
    assert!(
        out.contains("`twofactor backup-codes --user alice`"),
        "{out}"
    );
}

#[test]
fn list_adds_notes_below_the_table() {
    let fake = Fake::new("root", true).enrolled();
    {
        let mut status = fake.status.borrow_mut();
        status.backup_codes_left = 1;
        status.temporary_code_expires_at = TEMPORARY_EXPIRES_AT;
        status.delivery_enabled = true;
    }
    let (result, out, _) = run(&fake, &root(), &["list"], "");
    assert_eq!(result, Ok(()));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("USER   ENROLLED  POLICY"), "{out}");
    assert_eq!(
        &lines[2..],
        [
            "temporary code: alice, unused, expires 2023-11-14 23:13:20 UTC",
            "backup codes: alice has 1 left",
            "delivery: on for alice",
        ]
    );
    let (_, out, _) = run(&fake, &root(), &["list", "--json"], "");
    let value: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(value[0]["backup_codes_low"], true);
    assert_eq!(value[0]["delivery_enabled"], true);

    let fake = Fake::new("root", true).required();
    fake.status.borrow_mut().grace_ends_at = 1_700_604_800;
    let (_, out, _) = run(&fake, &root(), &["list"], "");
    assert!(
        out.contains("grace: the grace period of alice ended 2023-11-21 22:13:20 UTC"),
        "{out}"
    );
    fake.status.borrow_mut().grace_ends_at = 4_102_444_800;
    let (_, out, _) = run(&fake, &root(), &["list"], "");
    assert!(
        out.contains("grace: alice must enroll by 2100-01-01 00:00:00 UTC"),
        "{out}"
    );
}
