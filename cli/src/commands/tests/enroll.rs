//! Enrollment: interactive and --json, replacing, and the backup codes file.

use super::*;

#[test]
fn interactive_enrollment_retries_a_wrong_code_and_waits_for_yes() {
    let fake = Fake::new("alice", false);
    let (result, out, err) = run(&fake, &alice(), &["enroll"], "000000\n123456\nno\nyes\n");
    assert_eq!(result, Ok(()), "{err}");
    assert!(out.contains('█'), "no QR code:\n{out}");
    // Beside the QR code, in two lines of four groups.
    assert!(out.contains("Key:     JBSW Y3DP EHPK 3PXP\n"), "{out}");
    assert!(out.contains("host:alice@host"), "{out}");
    // What happened and what comes next, after "yes".
    let words = out.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.ends_with(
            "Enrolled: from now on, logins of alice that use two-factor \
        authentication ask for a code from the app (or a backup code). `twofactor status` shows \
        the enrollment."
        ),
        "{out}"
    );
    assert!(err.contains("Wrong code: the code is not valid"), "{err}");
    assert_eq!(err.matches("Type yes once").count(), 2, "{err}");
    for i in 0..10 {
        assert!(out.contains(&format!("{i}{i}{i}{i}{i}-0000{i}")), "{out}");
    }
    assert_eq!(
        fake.calls(),
        [
            "BeginEnrollment(alice, false, )",
            "ConfirmEnrollment(alice, 000000)",
            "ConfirmEnrollment(alice, 123456)",
        ]
    );
}

#[test]
fn end_of_input_after_the_codes_warns_but_succeeds() {
    let fake = Fake::new("alice", false);
    let (result, _, err) = run(&fake, &alice(), &["enroll", "--no-qr"], "123456\n");
    assert_eq!(result, Ok(()));
    assert!(err.contains("warning: no confirmation read"), "{err}");
}

#[test]
fn no_qr_draws_no_blocks() {
    let fake = Fake::new("alice", false);
    let (_, out, _) = run(&fake, &alice(), &["enroll", "--no-qr"], "123456\nyes\n");
    assert!(!out.contains('█') && !out.contains('▀'), "{out}");
    assert!(out.contains("Key:"), "{out}");
}

#[test]
fn three_wrong_codes_give_up_with_exit_1() {
    let fake = Fake::new("alice", false);
    let (result, _, _) = run(&fake, &alice(), &["enroll"], "1\n000000\n999999\n123456\n");
    let error = result.unwrap_err();
    assert_eq!(error.exit_code(), 1, "{error}");
    assert!(
        error.to_string().contains("run `twofactor enroll` again"),
        "{error}"
    );
    // Three tries; the fourth line is never read.
    let calls = fake.calls();
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert_eq!(calls[3], "ConfirmEnrollment(alice, 999999)");
}

#[test]
fn json_enrollment_asks_nothing() {
    let fake = Fake::new("alice", false);
    let (result, out, err) = run(&fake, &alice(), &["enroll", "--json"], "123456\n");
    assert_eq!(result, Ok(()));
    assert_eq!(err, "");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["secret"], SECRET);
    assert!(
        lines[0]["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    assert_eq!(lines[1]["backup_codes"].as_array().unwrap().len(), 10);
}

#[test]
fn json_enrollment_with_a_wrong_code_exits_1() {
    let fake = Fake::new("alice", false);
    let (result, out, _) = run(&fake, &alice(), &["enroll", "--json"], "000000\n");
    assert_eq!(result.unwrap_err().exit_code(), 1);
    assert_eq!(out.lines().count(), 1, "only the offer: {out}");
}

#[test]
fn already_enrolled_points_to_replace() {
    let fake = Fake::new("alice", false).enrolled();
    let (result, _, _) = run(&fake, &alice(), &["enroll"], "");
    let error = result.unwrap_err();
    assert_eq!(error.exit_code(), 1);
    assert!(error.to_string().contains("--replace"), "{error}");
}

#[test]
fn replacing_ones_own_enrollment_asks_for_a_current_code() {
    let fake = Fake::new("alice", false).enrolled();
    let (result, _, err) = run(
        &fake,
        &alice(),
        &["enroll", "--replace", "--no-qr"],
        "654321\n123456\n123456\nyes\n",
    );
    assert_eq!(result, Ok(()), "{err}");
    assert!(err.contains("Current code"), "{err}");
    assert_eq!(
        fake.calls(),
        [
            "Status(alice)",
            "BeginEnrollment(alice, true, )",
            "BeginEnrollment(alice, true, 654321)",
            "BeginEnrollment(alice, true, 123456)",
            "ConfirmEnrollment(alice, 123456)",
        ]
    );
}

#[test]
fn an_admin_provisioning_someone_else_is_not_asked() {
    let fake = Fake::new("root", true).enrolled();
    let (result, _, err) = run(
        &fake,
        &root(),
        &["enroll", "--user", "alice", "--replace", "--json"],
        &format!("{GOOD}\n"),
    );
    assert_eq!(result, Ok(()), "{err}");
    assert_eq!(
        fake.calls(),
        [
            "BeginEnrollment(alice, true, )",
            "ConfirmEnrollment(alice, 123456)"
        ]
    );
}

#[test]
fn backup_codes_file_is_private_and_never_overwritten() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("codes.txt");
    let path_arg = path.to_str().unwrap();
    let fake = Fake::new("alice", false);
    let (result, _, _) = run(
        &fake,
        &alice(),
        &["enroll", "--json", "--backup-codes-file", path_arg],
        "123456\n",
    );
    assert_eq!(result, Ok(()));
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 10);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let fake = Fake::new("alice", false);
    let (result, _, _) = run(
        &fake,
        &alice(),
        &["enroll", "--json", "--backup-codes-file", path_arg],
        "123456\n",
    );
    let error = result.unwrap_err();
    assert_eq!(error.exit_code(), 2);
    assert!(
        error.to_string().contains("refusing to overwrite"),
        "{error}"
    );
    assert!(
        fake.calls().is_empty(),
        "nothing may start: {:?}",
        fake.calls()
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn a_failed_enrollment_leaves_no_codes_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("codes.txt");
    let fake = Fake::new("alice", false);
    let (result, _, _) = run(
        &fake,
        &alice(),
        &[
            "enroll",
            "--json",
            "--backup-codes-file",
            path.to_str().unwrap(),
        ],
        "000000\n",
    );
    assert!(result.is_err());
    assert!(!path.exists());
}
