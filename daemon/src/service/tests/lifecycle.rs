//! Codes by another channel, imports, notifications, and races of enrollment.

use super::*;

fn sender_script(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("send");
    let out = dir.join("sent");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nread code\necho \"$1 $code\" >> {}\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn codes_by_another_channel() {
    let dir = tempfile::tempdir().unwrap();
    let sender = sender_script(dir.path());
    let w = world(&format!("[delivery]\ncommand = \"{}\"\n", sender.display()));
    enroll(&w, "alice", 1001, T0);
    let alice = user_caller(&w, 1001, ":1.80");
    let off = w.service.send_code(&alice, "alice", &ctx(), T0);
    assert!(
        matches!(off, Err(Error::PolicyForbids(_))),
        "off until an admin turns it on"
    );
    assert!(!plan_at(&w, "alice", "", T0).can_send_code);
    assert!(matches!(
        w.service.authorize("SetDelivery", &alice, "alice"),
        Err(Error::AccessDenied(_))
    ));
    w.service.set_delivery(&root(), "alice", true).unwrap();
    assert!(plan_at(&w, "alice", "", T0).can_send_code);
    assert_eq!(
        w.service.send_code(&alice, "alice", &ctx(), T0).unwrap(),
        300
    );
    let sent = std::fs::read_to_string(dir.path().join("sent")).unwrap();
    let (user, sent_code) = sent.trim().split_once(' ').unwrap();
    assert_eq!((user, sent_code.len()), ("alice", 6));
    let stored = format!("{:?}", w.store.load("alice").unwrap());
    assert!(!stored.contains(sent_code));
    assert!(!w.log.lines().join("\n").contains(sent_code));
    // Valid for 5 minutes, once.
    let late = verify(&w, "alice", sent_code, T0 + 300);
    assert_eq!(late.outcome, VerifyOutcome::Rejected);
    w.service
        .send_code(&alice, "alice", &ctx(), T0 + 301)
        .unwrap();
    let sent = std::fs::read_to_string(dir.path().join("sent")).unwrap();
    let fresh = sent
        .lines()
        .last()
        .unwrap()
        .split_once(' ')
        .unwrap()
        .1
        .to_string();
    assert_eq!(
        verify(&w, "alice", &fresh, T0 + 302).outcome,
        VerifyOutcome::Accepted
    );
    assert_eq!(
        verify(&w, "alice", &fresh, T0 + 303).outcome,
        VerifyOutcome::Rejected
    );
    // Rate limited: three sends per 15 minutes.
    w.service
        .send_code(&alice, "alice", &ctx(), T0 + 310)
        .unwrap();
    let limited = w.service.send_code(&alice, "alice", &ctx(), T0 + 320);
    assert!(matches!(limited, Err(Error::Locked(_))), "{limited:?}");
    assert!(
        w.service
            .send_code(&alice, "alice", &ctx(), T0 + 320 + 900)
            .is_ok()
    );
}

#[test]
fn a_failing_sender_leaves_no_working_code() {
    let w = world("[delivery]\ncommand = \"/bin/false\"\n");
    enroll(&w, "alice", 1001, T0);
    w.service.set_delivery(&root(), "alice", true).unwrap();
    let result = w.service.send_code(&root(), "alice", &ctx(), T0);
    assert!(matches!(result, Err(Error::Internal(_))));
    assert!(w.store.load("alice").unwrap().unwrap().sent_code.is_none());
}

fn imported(secret: &str) -> twofactor_proto::ImportedEnrollment {
    twofactor_proto::ImportedEnrollment {
        secret_base32: secret.into(),
        algorithm: twofactor_config::Algorithm::Sha1.into(),
        digits: 6,
        period: 30,
        window: 8,
        last_step: T0 / 30,
        scratch_codes: vec!["12345678".into(), "87654321".into()],
        source: "google-authenticator".into(),
        last_code: String::new(),
    }
}

#[test]
fn imports_keep_the_phone_working() {
    let w = world(POLICY);
    // An 80-bit secret, as google-authenticator makes.
    let secret_text = "JBSWY3DPEHPK3PXP";
    let carol = user_caller(&w, 1003, ":1.90");
    let alice = user_caller(&w, 1001, ":1.91");
    assert!(matches!(
        w.service.authorize("ImportEnrollment", &alice, "alice"),
        Err(Error::AccessDenied(_))
    ));
    w.service
        .import_enrollment(&carol, "alice", &imported(secret_text), T0)
        .unwrap();
    let secret = Secret::from_base32(secret_text).unwrap();
    // The step already used in the old tool stays spent; the imported window of ±8 applies.
    assert_eq!(
        verify(&w, "alice", &code(&secret, T0), T0).outcome,
        VerifyOutcome::Rejected
    );
    assert_eq!(
        verify(&w, "alice", &code(&secret, T0 + 8 * 30), T0).outcome,
        VerifyOutcome::Accepted
    );
    // Scratch codes are single-use backup codes.
    let reply = verify(&w, "alice", "87654321", T0 + 1);
    assert!(reply.outcome == VerifyOutcome::Accepted && reply.backup_code_used);
    assert_eq!(reply.backup_codes_left, 1);
    assert_eq!(
        verify(&w, "alice", "87654321", T0 + 2).outcome,
        VerifyOutcome::Rejected
    );
    assert!(matches!(
        w.service
            .import_enrollment(&carol, "alice", &imported(secret_text), T0),
        Err(Error::AlreadyEnrolled(_))
    ));
}

#[test]
fn the_last_code_of_an_import_stays_spent_with_every_older_one() {
    let w = world(POLICY);
    let secret_text = "JBSWY3DPEHPK3PXP";
    let secret = Secret::from_base32(secret_text).unwrap();
    let mut pam_oath = imported(secret_text);
    pam_oath.last_step = 0;
    pam_oath.scratch_codes.clear();
    pam_oath.last_code = code(&secret, T0 + 30);
    // Imported a minute after the last login with pam_oath.
    w.service
        .import_enrollment(&root(), "alice", &pam_oath, T0 + 90)
        .unwrap();
    for spent in [T0, T0 + 30] {
        assert_eq!(
            verify(&w, "alice", &code(&secret, spent), T0 + 90).outcome,
            VerifyOutcome::Rejected
        );
    }
    assert_eq!(
        verify(&w, "alice", &code(&secret, T0 + 60), T0 + 90).outcome,
        VerifyOutcome::Accepted
    );
    pam_oath.last_code = "12345".into();
    assert!(matches!(
        w.service.import_enrollment(&root(), "bob", &pam_oath, T0),
        Err(Error::InvalidInput(_))
    ));
}

#[test]
fn bad_imports_are_refused() {
    let w = world(POLICY);
    let mut short = imported("JBSWY3DP");
    assert!(matches!(
        w.service.import_enrollment(&root(), "alice", &short, T0),
        Err(Error::InvalidInput(_))
    ));
    short = imported("JBSWY3DPEHPK3PXP");
    short.scratch_codes = vec!["123456".into()];
    assert!(
        matches!(
            w.service.import_enrollment(&root(), "alice", &short, T0),
            Err(Error::InvalidInput(_))
        ),
        "scratch codes that look like TOTP codes"
    );
    short.scratch_codes = vec!["12345678".into(), "123456789".into()];
    assert!(matches!(
        w.service.import_enrollment(&root(), "alice", &short, T0),
        Err(Error::InvalidInput(_))
    ));
    short.scratch_codes = vec![];
    short.digits = 9;
    assert!(matches!(
        w.service.import_enrollment(&root(), "alice", &short, T0),
        Err(Error::InvalidInput(_))
    ));
}

#[test]
fn every_change_is_notified() {
    let w = world(POLICY);
    let (secret, _) = enroll(&w, "alice", 1001, T0);
    let alice = user_caller(&w, 1001, ":1.95");
    w.service
        .regenerate_backup_codes(&alice, "alice", &code(&secret, T0 + 30), T0 + 30)
        .unwrap();
    let offer = w
        .service
        .begin_enrollment(&alice, "alice", true, &code(&secret, T0 + 60), T0 + 60)
        .unwrap();
    let new = Secret::from_base32(&offer.secret_base32).unwrap();
    w.service
        .confirm_enrollment(&alice, "alice", &code(&new, T0 + 90), T0 + 90)
        .unwrap();
    w.service
        .disable(&alice, "alice", &code(&new, T0 + 120), T0 + 120)
        .unwrap();
    assert_eq!(
        w.events.names(),
        [
            "enrolled",
            "backup-codes-regenerated",
            "enrollment-replaced",
            "disabled"
        ]
    );
    let events = w.events.0.lock().unwrap();
    assert!(events.iter().all(|e| e.user == "alice" && e.by_uid == 1001));
}

#[test]
fn a_lockout_is_notified() {
    let w = world("[lockout]\nmax_failures = 2\n");
    enroll(&w, "alice", 1001, T0);
    verify(&w, "alice", "000000", T0 + 1);
    verify(&w, "alice", "000000", T0 + 2);
    assert_eq!(w.events.names(), ["enrolled", "locked"]);
    assert_eq!(w.events.0.lock().unwrap()[1].rhost, "192.0.2.7");
}

// --- found in review -----------------------------------------------------------------------

#[test]
fn one_code_confirms_a_pending_enrollment_once() {
    let w = Arc::new(world(POLICY));
    let (old, _) = enroll(&w, "alice", 1001, T0);
    let alice = user_caller(&w, 1001, ":1.100");
    let offer = w
        .service
        .begin_enrollment(&alice, "alice", true, &code(&old, T0 + 30), T0 + 30)
        .unwrap();
    let new = Secret::from_base32(&offer.secret_base32).unwrap();
    let confirm_code = code(&new, T0 + 60);
    let successes: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (w, alice, confirm_code) = (w.clone(), alice.clone(), confirm_code.clone());
                scope.spawn(move || {
                    w.service
                        .confirm_enrollment(&alice, "alice", &confirm_code, T0 + 60)
                        .is_ok()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|ok| *ok)
            .count()
    });
    assert_eq!(successes, 1);
}

#[test]
fn a_reset_drops_an_enrollment_begun_before_it() {
    let w = world(POLICY);
    enroll(&w, "alice", 1001, T0);
    let offer = w
        .service
        .begin_enrollment(&root(), "alice", true, "", T0 + 10)
        .unwrap();
    w.service.reset_user(&root(), "alice", T0 + 20).unwrap();
    let new = Secret::from_base32(&offer.secret_base32).unwrap();
    let late = w
        .service
        .confirm_enrollment(&root(), "alice", &code(&new, T0 + 30), T0 + 30);
    assert!(
        matches!(late, Err(Error::NoPendingEnrollment(_))),
        "{late:?}"
    );
    assert!(!w.service.status("alice", T0 + 31).unwrap().enrolled);
}

#[test]
fn an_unchecked_replace_cannot_overwrite_an_enrollment_that_appeared_meanwhile() {
    let w = world(POLICY);
    let alice = user_caller(&w, 1001, ":1.102");
    // Not enrolled yet, so "replace" needs no code...
    let offer = w
        .service
        .begin_enrollment(&alice, "alice", true, "", T0)
        .unwrap();
    // ...then an admin imports alice's existing phone.
    w.service
        .import_enrollment(&root(), "alice", &imported("JBSWY3DPEHPK3PXP"), T0 + 5)
        .unwrap();
    let new = Secret::from_base32(&offer.secret_base32).unwrap();
    let result = w
        .service
        .confirm_enrollment(&alice, "alice", &code(&new, T0 + 30), T0 + 30);
    assert!(
        result.is_err(),
        "the imported enrollment must stay: {result:?}"
    );
    let phone = Secret::from_base32("JBSWY3DPEHPK3PXP").unwrap();
    assert_eq!(
        verify(&w, "alice", &code(&phone, T0 + 300), T0 + 300).outcome,
        VerifyOutcome::Accepted
    );
}

#[test]
fn a_sent_code_or_temporary_code_does_not_authorize_changes() {
    let dir = tempfile::tempdir().unwrap();
    let sender = sender_script(dir.path());
    let w = world(&format!("[delivery]\ncommand = \"{}\"\n", sender.display()));
    enroll(&w, "alice", 1001, T0);
    w.service.set_delivery(&root(), "alice", true).unwrap();
    let alice = user_caller(&w, 1001, ":1.103");
    w.service
        .send_code(&alice, "alice", &ctx(), T0 + 1)
        .unwrap();
    let sent = std::fs::read_to_string(dir.path().join("sent")).unwrap();
    let sent_code = sent.trim().split_once(' ').unwrap().1.to_string();
    let regenerate = w
        .service
        .regenerate_backup_codes(&alice, "alice", &sent_code, T0 + 2);
    assert!(
        matches!(regenerate, Err(Error::WrongCode(_))),
        "{regenerate:?}"
    );
    let replace = w
        .service
        .begin_enrollment(&alice, "alice", true, &sent_code, T0 + 3);
    assert!(matches!(replace, Err(Error::WrongCode(_))), "{replace:?}");
    w.service.unlock_user(&root(), "alice").unwrap();
    let temporary = w
        .service
        .issue_temporary_code(&root(), "alice", 0, T0 + 4)
        .unwrap();
    let disable = w.service.disable(&alice, "alice", &temporary.code, T0 + 5);
    assert!(matches!(disable, Err(Error::WrongCode(_))), "{disable:?}");
    // The temporary code is still good for what it is for: replacing the device.
    assert!(
        w.service
            .begin_enrollment(&alice, "alice", true, &temporary.code, T0 + 6)
            .is_ok()
    );
}
