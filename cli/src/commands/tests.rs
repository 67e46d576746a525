//! The commands driven with scripted input against the fake daemon.

use clap::Parser;

use super::fake::{Fake, GOOD, SECRET, TEMPORARY, TEMPORARY_EXPIRES_AT};
use super::{Invoker, dispatch};
use crate::cli::Cli;
use crate::error::CliError;
use crate::io::testing::scripted;

fn alice() -> Invoker {
    Invoker {
        uid: 1000,
        name: Some("alice".into()),
    }
}

fn root() -> Invoker {
    Invoker {
        uid: 0,
        name: Some("root".into()),
    }
}

/// Run `args` as `me` with `input`; returns the result, standard output and standard error.
fn run(
    fake: &Fake,
    me: &Invoker,
    args: &[&str],
    input: &str,
) -> (Result<(), CliError>, String, String) {
    let cli = Cli::try_parse_from(std::iter::once("twofactor").chain(args.iter().copied()))
        .unwrap_or_else(|error| panic!("{args:?}: {error}"));
    let (mut io, out, err) = scripted(input);
    let result = dispatch(cli.command, fake, me, &mut io);
    drop(io);
    (result, out.text(), err.text())
}

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
fn invalid_user_names_never_reach_the_daemon() {
    let fake = Fake::new("root", true);
    let (result, _, _) = run(&fake, &root(), &["status", "../etc"], "");
    assert_eq!(result.unwrap_err().exit_code(), 2);
    assert!(fake.calls().is_empty());
}

// --- temporary codes, delivery ---------------------------------------------------------------

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

// --- status of the new fields ----------------------------------------------------------------

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

// --- import ----------------------------------------------------------------------------------

fn file_with(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

const GA_FILE: &str = "JF6C54BAUUCPKN2XFK3Y5G5LLM\n\" RATE_LIMIT 3 30\n\" WINDOW_SIZE 17\n\
                       \" DISALLOW_REUSE 58820449\n\" TOTP_AUTH\n98522760\n17405866\n";

#[test]
fn import_google_authenticator_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_with(&dir, "ga", GA_FILE);
    let fake = Fake::new("root", true);
    let (result, out, err) = run(
        &fake,
        &root(),
        &["import", "google-authenticator", "--user", "alice", &path],
        "",
    );
    assert_eq!(result, Ok(()), "{err}");
    assert_eq!(
        fake.calls(),
        ["ImportEnrollment(alice, google-authenticator)"]
    );
    let imported = fake.imported.borrow();
    let (user, e) = &imported[0];
    assert_eq!(user, "alice");
    assert_eq!(e.secret_base32, "JF6C54BAUUCPKN2XFK3Y5G5LLM");
    assert_eq!(
        (e.digits, e.period, e.window, e.last_step),
        (6, 30, 8, 58_820_449)
    );
    assert_eq!(e.scratch_codes, ["98522760", "17405866"]);
    assert!(out.contains("Imported alice"), "{out}");
    assert!(out.contains("every 30 s, 8 steps either side"), "{out}");
    assert!(
        out.contains("RATE_LIMIT (3 logins every 30 s) does not carry over"),
        "{out}"
    );
    assert!(
        out.contains("2 scratch codes are now backup codes"),
        "{out}"
    );
    assert!(out.contains("is left as it was"), "{out}");
    assert!(
        !out.contains("JF6C54") && !out.contains("98522760"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        GA_FILE,
        "untouched"
    );
}

#[test]
fn import_google_authenticator_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_with(&dir, "ga", "JF6C54BAUUCPKN2XFK3Y5G5LLM\n\" TOTP_AUTH\n");
    let fake = Fake::new("root", true);
    let (result, out, _) = run(
        &fake,
        &root(),
        &[
            "import",
            "--json",
            "google-authenticator",
            "--user",
            "alice",
            &path,
        ],
        "",
    );
    assert_eq!(result, Ok(()));
    let value: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(value["source"], "google-authenticator");
    assert_eq!(value["file"], path.as_str());
    let user = &value["users"][0];
    assert_eq!(user["user"], "alice");
    assert_eq!(user["imported"], true);
    assert_eq!(user["reason"], serde_json::Value::Null);
    assert_eq!(user["enrollment"]["window"], 1);
    assert_eq!(user["enrollment"]["scratch_codes"], 0);
    assert_eq!(user["enrollment"]["secret_bits"], 128);
    let notes = user["notes"].as_array().unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n.as_str().unwrap().contains("DISALLOW_REUSE"))
    );
    assert!(
        notes
            .iter()
            .any(|n| n.as_str().unwrap().contains("backup-codes --user alice"))
    );
    assert!(!out.contains("JF6C54"));
}

#[test]
fn import_google_authenticator_refusals_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hotp = file_with(
        &dir,
        "hotp",
        "QWKEADFS63ON7O5DOOSZLMXCRY\n\" WINDOW_SIZE 3\n\" HOTP_COUNTER 1\n20406225\n",
    );
    let fake = Fake::new("root", true);
    let args = ["import", "google-authenticator", "--user", "alice"];
    let (result, _, _) = run(&fake, &root(), &[&args[..], &[hotp.as_str()]].concat(), "");
    let error = result.unwrap_err();
    assert_eq!(error.exit_code(), 1);
    assert!(error.to_string().contains("counter-based"), "{error}");
    assert!(error.to_string().contains("nothing was changed"), "{error}");
    assert!(fake.calls().is_empty());
    // --json still reports, then fails.
    let (result, out, _) = run(
        &fake,
        &root(),
        &[&args[..], &[hotp.as_str(), "--json"]].concat(),
        "",
    );
    assert_eq!(result.unwrap_err().exit_code(), 1);
    let value: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(value["users"][0]["imported"], false);

    let bad = file_with(&dir, "bad", "root:x:0:0:root:/root:/bin/bash\n");
    let (result, _, _) = run(&fake, &root(), &[&args[..], &[bad.as_str()]].concat(), "");
    let error = result.unwrap_err();
    assert_eq!(error.exit_code(), 2);
    assert!(
        !error.to_string().contains("root:x"),
        "never quotes the file: {error}"
    );

    let good = file_with(&dir, "good", GA_FILE);
    let mut fake = Fake::new("root", true);
    fake.enrolled_users.push("alice".into());
    let (result, _, _) = run(&fake, &root(), &[&args[..], &[good.as_str()]].concat(), "");
    let error = result.unwrap_err();
    assert_eq!(error.exit_code(), 1);
    assert!(
        error.to_string().contains("twofactor reset alice"),
        "{error}"
    );
    assert!(fake.imported.borrow().is_empty());
}

#[test]
fn import_google_authenticator_reads_carefully() {
    let dir = tempfile::tempdir().unwrap();
    let target = file_with(&dir, "ga", GA_FILE);
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let fake = Fake::new("root", true);
    let base = ["import", "google-authenticator", "--user", "alice"];
    let (result, _, _) = run(
        &fake,
        &root(),
        &[&base[..], &[link.to_str().unwrap()]].concat(),
        "",
    );
    let error = result.unwrap_err();
    assert!(error.to_string().contains("symbolic link"), "{error}");
    let (result, _, _) = run(&fake, &root(), &[&base[..], &["/dev/null"]].concat(), "");
    assert!(
        result
            .unwrap_err()
            .to_string()
            .contains("not a regular file")
    );
    let (result, _, _) = run(
        &fake,
        &root(),
        &[&base[..], &[dir.path().join("none").to_str().unwrap()]].concat(),
        "",
    );
    assert!(result.unwrap_err().to_string().contains("does not exist"));
    let (result, _, _) = run(
        &fake,
        &root(),
        &["import", "google-authenticator", "--user", "nosuchuser-tf"],
        "",
    );
    let error = result.unwrap_err();
    assert_eq!(error.exit_code(), 2);
    assert!(
        error.to_string().contains("no user nosuchuser-tf"),
        "{error}"
    );
    assert!(fake.calls().is_empty());
}

const HEX: &str = "3132333435363738393031323334353637383930";

#[test]
fn import_oath_reports_every_user() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "# pam_oath\nHOTP/T30/6 alice - {HEX}\nHOTP bob - {HEX}\nHOTP/T30 carol 4711 {HEX}\n\
         HOTP/T30 dave - {HEX}\nHOTP/T60 dave - {HEX}\nHOTP/T30 nobody-here - {HEX}\n"
    );
    let path = file_with(&dir, "users.oath", &text);
    let fake = Fake::new("root", true);
    let (result, out, _) = run(&fake, &root(), &["import", "oath", &path], "");
    let error = result.unwrap_err();
    assert_eq!(error.exit_code(), 1);
    assert!(
        error
            .to_string()
            .starts_with("4 of 6 entries were not imported"),
        "{error}"
    );
    assert_eq!(
        fake.calls(),
        [
            "ImportEnrollment(alice, pam_oath)",
            "ImportEnrollment(carol, pam_oath)",
            "ImportEnrollment(nobody-here, pam_oath)",
        ]
    );
    assert!(out.contains("alice: imported (line 2)"), "{out}");
    assert!(
        out.contains("bob: skipped (line 3): it is event-based (HOTP)"),
        "{out}"
    );
    assert!(out.contains("carol: imported (line 4)"), "{out}");
    assert!(out.contains("PIN does not carry over"), "{out}");
    assert!(!out.contains("4711"), "{out}");
    assert!(
        out.contains("dave: skipped (line 5): dave has 2 entries"),
        "{out}"
    );
    assert!(
        out.contains("nobody-here: skipped (line 7): no user nobody-here"),
        "{out}"
    );
    assert!(!out.contains(HEX));
    let imported = fake.imported.borrow();
    assert_eq!(
        imported[0].1.secret_base32,
        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "untouched");
}

#[test]
fn import_oath_selected_users_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_with(
        &dir,
        "users.oath",
        &format!("HOTP/T30/8 alice - {HEX}\nHOTP/E bob - {HEX}\n"),
    );
    let fake = Fake::new("root", true);
    let (result, out, _) = run(
        &fake,
        &root(),
        &["import", "oath", &path, "--user", "alice", "--json"],
        "",
    );
    assert_eq!(result, Ok(()));
    let value: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(value["source"], "pam_oath");
    let users = value["users"].as_array().unwrap();
    assert_eq!(users.len(), 1, "bob is not selected: {value}");
    assert_eq!(users[0]["user"], "alice");
    assert_eq!(users[0]["imported"], true);
    assert_eq!(users[0]["line"], 1);
    assert_eq!(users[0]["enrollment"]["digits"], 8);

    let (result, out, _) = run(
        &fake,
        &root(),
        &[
            "import", "oath", &path, "--user", "bob", "--user", "zed", "--json",
        ],
        "",
    );
    assert_eq!(result.unwrap_err().exit_code(), 1);
    let value: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let reasons: Vec<&str> = value["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["reason"].as_str().unwrap())
        .collect();
    assert!(reasons[0].contains("event-based"), "{reasons:?}");
    assert!(reasons[1].contains("zed is not in"), "{reasons:?}");
    assert_eq!(fake.calls(), ["ImportEnrollment(alice, pam_oath)"]);
}

#[test]
fn import_oath_stops_when_denied() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_with(
        &dir,
        "users.oath",
        &format!("HOTP/T30 alice - {HEX}\nHOTP/T30 bob - {HEX}\n"),
    );
    let fake = Fake::new("alice", false);
    let (result, _, _) = run(&fake, &alice(), &["import", "oath", &path], "");
    let error = result.unwrap_err();
    assert!(
        error.to_string().starts_with("permission denied"),
        "{error}"
    );
    assert_eq!(fake.calls(), ["ImportEnrollment(alice, pam_oath)"]);
}
