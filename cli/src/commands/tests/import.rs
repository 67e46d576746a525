//! import from google-authenticator and pam_oath.

use super::*;

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
