//! Authorization, enrollment and its changes, grace periods, temporary codes.

use super::*;

#[test]
fn authorization_rules() {
    let w = world(POLICY);
    let alice = user_caller(&w, 1001, ":1.10");
    let carol_admin = user_caller(&w, 1003, ":1.11");
    let stranger = user_caller(&w, 4242, ":1.12");
    assert!(carol_admin.admin && !alice.admin && stranger.name.is_none());
    // The bus layer asks `authorize` before every method; the rules are crate::authz's.
    let denied = |result: Result<(), Error>| matches!(result, Err(Error::AccessDenied(_)));
    let may = |method: &str, caller: &Caller, user: &str| w.service.authorize(method, caller, user);
    assert!(may("Status", &alice, "alice").is_ok());
    assert!(denied(may("Status", &alice, "bob")));
    assert!(may("Status", &carol_admin, "bob").is_ok());
    assert!(denied(may("Status", &stranger, "alice")));
    assert!(denied(may("ListUsers", &alice, "")));
    assert!(denied(may("ResetUser", &alice, "alice")));
    assert!(denied(may("UnlockUser", &alice, "alice")));
    assert!(may("ListUsers", &carol_admin, "").is_ok());
    assert!(denied(may("Verify", &alice, "bob")));
    // A malformed name is invalid input before it is anyone's.
    assert!(matches!(
        may("Status", &stranger, "../x"),
        Err(Error::InvalidInput(_))
    ));
    // A screen locker runs as the user and may verify that user.
    assert!(may("Verify", &alice, "alice").is_ok());
    assert!(
        w.service
            .verify(&alice, "alice", "123456", &ctx(), T0)
            .is_ok()
    );
}

#[test]
fn pending_enrollment_belongs_to_its_connection_and_expires() {
    let w = world(POLICY);
    let first = user_caller(&w, 1001, ":1.20");
    let other = user_caller(&w, 1001, ":1.21");
    let offer = w
        .service
        .begin_enrollment(&first, "alice", false, "", T0)
        .unwrap();
    assert!(
        offer
            .otpauth_uri
            .starts_with("otpauth://totp/bastion:alice@bastion?secret=")
    );
    // The parameters apps assume (SHA1, 6 digits, 30 s) are left out of the URI.
    assert!(
        offer.otpauth_uri.ends_with("&issuer=bastion"),
        "{}",
        offer.otpauth_uri
    );
    let secret = Secret::from_base32(&offer.secret_base32).unwrap();
    let now = T0 + 60;
    let result = w
        .service
        .confirm_enrollment(&other, "alice", &code(&secret, now), now);
    assert!(
        matches!(result, Err(Error::NoPendingEnrollment(_))),
        "{result:?}"
    );
    // Expiry at exactly 10 minutes.
    let at_expiry = T0 + ENROLLMENT_TTL_SECONDS;
    let result =
        w.service
            .confirm_enrollment(&first, "alice", &code(&secret, at_expiry), at_expiry);
    assert!(matches!(result, Err(Error::NoPendingEnrollment(_))));
    let just_before = at_expiry - 1;
    let codes = w
        .service
        .confirm_enrollment(&first, "alice", &code(&secret, just_before), just_before)
        .unwrap();
    assert_eq!(codes.len(), 10);
}

#[test]
fn a_departed_connection_takes_its_pending_enrollment_along() {
    let w = world(POLICY);
    let caller = user_caller(&w, 1001, ":1.30");
    w.service
        .begin_enrollment(&caller, "alice", false, "", T0)
        .unwrap();
    assert_eq!(w.service.pending_count(), 1);
    w.service.connection_closed(":1.99");
    assert_eq!(w.service.pending_count(), 1);
    w.service.connection_closed(":1.30");
    assert_eq!(w.service.pending_count(), 0);
}

#[test]
fn wrong_confirmation_codes_are_bounded() {
    let w = world(POLICY);
    let caller = user_caller(&w, 1001, ":1.31");
    w.service
        .begin_enrollment(&caller, "alice", false, "", T0)
        .unwrap();
    for _ in 0..5 {
        let result = w.service.confirm_enrollment(&caller, "alice", "000000", T0);
        assert!(matches!(result, Err(Error::WrongCode(_))));
    }
    let result = w.service.confirm_enrollment(&caller, "alice", "000000", T0);
    assert!(matches!(result, Err(Error::NoPendingEnrollment(_))));
}

#[test]
fn replacing_needs_a_current_code_and_keeps_the_old_device_until_confirmed() {
    let w = world(POLICY);
    let (old, _) = enroll(&w, "alice", 1001, T0);
    let alice = user_caller(&w, 1001, ":1.40");
    let again = w
        .service
        .begin_enrollment(&alice, "alice", false, "", T0 + 30);
    assert!(matches!(again, Err(Error::AlreadyEnrolled(_))));
    let wrong = w
        .service
        .begin_enrollment(&alice, "alice", true, "000000", T0 + 30);
    assert!(matches!(wrong, Err(Error::WrongCode(_))));
    let offer = w
        .service
        .begin_enrollment(&alice, "alice", true, &code(&old, T0 + 30), T0 + 30)
        .unwrap();
    // The old device still works while the new one is pending.
    assert_eq!(
        verify(&w, "alice", &code(&old, T0 + 60), T0 + 60).outcome,
        VerifyOutcome::Accepted
    );
    let new = Secret::from_base32(&offer.secret_base32).unwrap();
    w.service
        .confirm_enrollment(&alice, "alice", &code(&new, T0 + 90), T0 + 90)
        .unwrap();
    assert_eq!(
        verify(&w, "alice", &code(&old, T0 + 120), T0 + 120).outcome,
        VerifyOutcome::Rejected
    );
    assert_eq!(
        verify(&w, "alice", &code(&new, T0 + 150), T0 + 150).outcome,
        VerifyOutcome::Accepted
    );
    assert!(
        w.log
            .lines()
            .iter()
            .any(|l| l.starts_with("enrollment-replaced user=alice by_uid=1001"))
    );
}

#[test]
fn an_admin_provisions_and_replaces_without_a_code() {
    let w = world(POLICY);
    let carol = user_caller(&w, 1003, ":1.41");
    let offer = w
        .service
        .begin_enrollment(&carol, "bob", false, "", T0)
        .unwrap();
    let secret = Secret::from_base32(&offer.secret_base32).unwrap();
    w.service
        .confirm_enrollment(&carol, "bob", &code(&secret, T0), T0)
        .unwrap();
    assert!(
        w.service
            .begin_enrollment(&carol, "bob", true, "", T0)
            .is_ok()
    );
}

#[test]
fn regenerating_backup_codes_invalidates_the_old_set() {
    let w = world(POLICY);
    let (secret, old_codes) = enroll(&w, "alice", 1001, T0);
    let alice = user_caller(&w, 1001, ":1.42");
    let refused = w
        .service
        .regenerate_backup_codes(&alice, "alice", "", T0 + 30);
    assert!(matches!(refused, Err(Error::InvalidInput(_))));
    let new_codes = w
        .service
        .regenerate_backup_codes(&alice, "alice", &code(&secret, T0 + 30), T0 + 30)
        .unwrap();
    assert_eq!(new_codes.len(), 10);
    assert_eq!(
        verify(&w, "alice", &old_codes[5], T0 + 40).outcome,
        VerifyOutcome::Rejected
    );
    assert_eq!(
        verify(&w, "alice", &new_codes[5], T0 + 41).outcome,
        VerifyOutcome::Accepted
    );
    // A backup code can authorize it too.
    assert!(
        w.service
            .regenerate_backup_codes(&alice, "alice", &new_codes[0], T0 + 50)
            .is_ok()
    );
}

#[test]
fn disabling_needs_a_code_and_is_refused_while_required() {
    let w = world(POLICY);
    let (secret, _) = enroll(&w, "alice", 1001, T0);
    enroll(&w, "bob", 1002, T0);
    let bob = user_caller(&w, 1002, ":1.43");
    let refused = w.service.disable(&bob, "bob", "123456", T0 + 30);
    match refused {
        Err(Error::PolicyForbids(message)) => assert!(message.contains("group wheel"), "{message}"),
        other => panic!("{other:?}"),
    }
    let alice = user_caller(&w, 1001, ":1.44");
    let wrong = w.service.disable(&alice, "alice", "000000", T0 + 30);
    assert!(matches!(wrong, Err(Error::WrongCode(_))));
    w.service
        .disable(&alice, "alice", &code(&secret, T0 + 30), T0 + 30)
        .unwrap();
    assert!(
        w.store
            .load("alice")
            .unwrap()
            .is_none_or(|r| !r.is_enrolled())
    );
    assert!(
        w.log
            .lines()
            .iter()
            .any(|l| l.starts_with("disabled user=alice"))
    );
}

#[test]
fn explanations_name_the_rule() {
    let w = world(POLICY);
    let explain = |user: &str| w.service.explain_policy(user).unwrap().explanation;
    assert_eq!(explain("bob"), "group wheel → required");
    assert_eq!(explain("sftp"), "group sftponly → disabled");
    assert_eq!(explain("alice"), "default → optional");
    assert!(matches!(
        w.service.explain_policy("ghost"),
        Err(Error::NoSuchUser(_))
    ));
}

#[test]
fn status_never_reveals_secrets_and_reports_last_use() {
    let w = world(POLICY);
    let (secret, codes) = enroll(&w, "alice", 1001, T0);
    verify(&w, "alice", &code(&secret, T0 + 30), T0 + 30);
    let status = w.service.status("alice", T0 + 31).unwrap();
    assert!(status.enrolled);
    assert_eq!(status.backup_codes_left, 10);
    assert_eq!(status.last_success_time, T0 + 30);
    assert_eq!(status.last_success_rhost, "192.0.2.7");
    let shown = format!("{status:?}{:?}", w.service.list_users(T0).unwrap());
    assert!(!shown.contains(secret.to_base32().as_str()));
    for backup in &codes {
        assert!(!shown.contains(backup.as_str()));
    }
}

#[test]
fn logs_never_contain_codes_or_secrets() {
    let w = world(POLICY);
    let (secret, codes) = enroll(&w, "alice", 1001, T0);
    let totp_code = code(&secret, T0 + 30);
    verify(&w, "alice", &totp_code, T0 + 30);
    verify(&w, "alice", &codes[0], T0 + 31);
    verify(&w, "alice", "987654", T0 + 32);
    let text = w.log.lines().join("\n");
    assert!(
        text.contains("verified user=alice by_uid=0 service=sshd"),
        "{text}"
    );
    for needle in [
        totp_code.as_str(),
        codes[0].as_str(),
        "987654",
        secret.to_base32().as_str(),
    ] {
        assert!(!text.contains(needle), "{needle} leaked into: {text}");
    }
}

#[test]
fn concurrent_use_of_one_code_succeeds_once() {
    // No delays, so losing racers cannot hold up the winner.
    let w = Arc::new(world(
        "[lockout]\nmax_failures = 100\nfree_failures = 100\n",
    ));
    let (secret, codes) = enroll(&w, "alice", 1001, T0);
    for attempt in [code(&secret, T0 + 30), codes[0].clone()] {
        let accepted: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..16)
                .map(|_| {
                    let w = w.clone();
                    let attempt = attempt.clone();
                    scope.spawn(move || verify(&w, "alice", &attempt, T0 + 30).outcome)
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|o| *o == VerifyOutcome::Accepted)
                .count()
        });
        assert_eq!(accepted, 1);
    }
}

// --- the life of an enrollment ------------------------------------------------------------

const REQUIRED_AT_LOGIN: &str = r#"
[policy]
default = "required"
[enrollment]
at_login = true
at_login_from = ["local", "10.0.0.0/8"]
[lockout]
max_failures = 100
free_failures = 100
"#;

#[test]
fn enrollment_at_login_only_from_allowed_places() {
    let w = world(REQUIRED_AT_LOGIN);
    assert_eq!(plan_at(&w, "alice", "", T0).action, LoginAction::Enroll);
    assert_eq!(
        plan_at(&w, "alice", "10.2.3.4", T0).action,
        LoginAction::Enroll
    );
    let elsewhere = plan_at(&w, "alice", "203.0.113.5", T0);
    assert_eq!(elsewhere.action, LoginAction::Deny);
    // Beginning is refused where the plan is not Enroll, and for anyone but root.
    let refused = w
        .service
        .begin_login_enrollment(&root(), "alice", &ctx_from("203.0.113.5"), T0);
    assert!(
        matches!(refused, Err(Error::PolicyForbids(_))),
        "{refused:?}"
    );
    let alice = user_caller(&w, 1001, ":1.60");
    let not_root = w.service.authorize("BeginLoginEnrollment", &alice, "alice");
    assert!(matches!(not_root, Err(Error::AccessDenied(_))));
}

#[test]
fn enrollment_at_login_is_held_by_its_token() {
    let w = world(REQUIRED_AT_LOGIN);
    let local = ctx_from("");
    let started = w
        .service
        .begin_login_enrollment(&root(), "alice", &local, T0)
        .unwrap();
    assert_eq!(started.token.len(), 32);
    let secret = Secret::from_base32(&started.offer.secret_base32).unwrap();
    let code_now = code(&secret, T0);
    // Another connection of root's without the token, or a wrong token, cannot confirm.
    let by_connection = w
        .service
        .confirm_enrollment(&root(), "alice", &code_now, T0);
    assert!(matches!(by_connection, Err(Error::NoPendingEnrollment(_))));
    let wrong_token = w.service.confirm_login_enrollment(
        &root(),
        "alice",
        &"0".repeat(32),
        &code_now,
        &local,
        T0,
    );
    assert!(matches!(wrong_token, Err(Error::NoPendingEnrollment(_))));
    let codes = w
        .service
        .confirm_login_enrollment(&root(), "alice", &started.token, &code_now, &local, T0)
        .unwrap();
    assert_eq!(codes.len(), 10);
    assert_eq!(plan_at(&w, "alice", "", T0).action, LoginAction::Prompt);
    assert_eq!(w.events.names(), ["enrolled"]);
    let status = w.service.status("alice", T0).unwrap();
    assert_eq!(
        (
            status.last_success_time,
            status.last_success_service.as_str()
        ),
        (T0, "sshd")
    );
    assert_eq!(w.events.0.lock().unwrap()[0].service, "sshd");
}

#[test]
fn grace_period_counts_from_the_first_login_and_ends() {
    let w = world("[policy]\ndefault = \"required\"\n[enrollment]\ngrace_period = \"7d\"\n");
    let first = T0 + 1000;
    let during = plan_at(&w, "alice", "", first);
    assert_eq!(during.action, LoginAction::Ignore);
    let ends = first + 7 * 86_400;
    assert!(
        during.message.contains(&format_utc(ends)),
        "{}",
        during.message
    );
    assert!(during.message.contains("twofactor enroll"));
    // Stored durably at the first attempt; later attempts do not restart it.
    assert_eq!(
        w.store.load("alice").unwrap().unwrap().grace_started,
        Some(first)
    );
    assert_eq!(
        plan_at(&w, "alice", "", ends - 1).action,
        LoginAction::Ignore
    );
    let status = w.service.status("alice", ends - 1).unwrap();
    assert_eq!(status.grace_ends_at, ends);
    assert_eq!(plan_at(&w, "alice", "", ends).action, LoginAction::Deny);
}

#[test]
fn a_reset_user_gets_no_new_grace_period() {
    let w = world("[policy]\ndefault = \"required\"\n[enrollment]\ngrace_period = \"7d\"\n");
    enroll(&w, "alice", 1001, T0);
    w.service.reset_user(&root(), "alice", T0 + 10).unwrap();
    assert_eq!(plan_at(&w, "alice", "", T0 + 20).action, LoginAction::Deny);
    let again = w.service.reset_user(&root(), "alice", T0 + 30);
    assert!(matches!(again, Err(Error::NotEnrolled(_))), "{again:?}");
    assert!(w.events.names().contains(&"reset"));
}

#[test]
fn leaving_a_required_group_keeps_the_enrollment() {
    let w = world(POLICY);
    enroll(&w, "bob", 1002, T0);
    // bob is in wheel (required); the same store seen with bob out of wheel:
    let config = Config::parse(POLICY, "test").unwrap();
    let moved = Service::new(
        config,
        w.store.clone(),
        Arc::new(FixedAccounts::default().with("bob", 1002, &["bob"])),
        w.log.clone(),
        "bastion".into(),
    );
    let plan = moved.login_plan(&root(), "bob", &ctx(), T0).unwrap();
    assert_eq!(
        plan.action,
        LoginAction::Prompt,
        "still enrolled, still asked"
    );
    let status = moved.status("bob", T0).unwrap();
    assert!(status.enrolled);
    assert_eq!(status.policy, Policy::Optional);
}

#[test]
fn backup_codes_count_down_warn_and_offer_a_new_set() {
    let w = world(REQUIRED_AT_LOGIN);
    let (secret, codes) = enroll(&w, "alice", 1001, T0);
    for (index, backup) in codes.iter().enumerate() {
        let reply = verify(&w, "alice", backup, T0 + index as u64);
        assert_eq!(reply.outcome, VerifyOutcome::Accepted);
        assert_eq!(reply.backup_codes_left, 9 - index as u32);
        assert_eq!(reply.offer_new_backup_codes, index == 9, "{index}");
    }
    let names = w.events.names();
    assert_eq!(
        names.iter().filter(|n| **n == "backup-code-used").count(),
        10
    );
    assert_eq!(
        names.iter().filter(|n| **n == "backup-codes-low").count(),
        2,
        "{names:?}"
    );
    // With none left, a TOTP login is offered a new set too.
    let totp_login = verify(&w, "alice", &code(&secret, T0 + 60), T0 + 60);
    assert!(totp_login.offer_new_backup_codes);
    assert_eq!(w.service.status("alice", T0).unwrap().backup_codes_left, 0);
}

#[test]
fn temporary_code_is_single_use_expires_and_allows_replacing() {
    let w = world(POLICY);
    let (_lost, _) = enroll(&w, "alice", 1001, T0);
    let alice = user_caller(&w, 1001, ":1.70");
    let refused = w.service.authorize("IssueTemporaryCode", &alice, "alice");
    assert!(matches!(refused, Err(Error::AccessDenied(_))));
    let too_long = w.service.issue_temporary_code(&root(), "alice", 86_401, T0);
    assert!(matches!(too_long, Err(Error::InvalidInput(_))));
    let issued = w
        .service
        .issue_temporary_code(&root(), "alice", 0, T0)
        .unwrap();
    assert_eq!(issued.expires_at, T0 + 3600);
    assert_eq!(issued.code.len(), 14, "{}", issued.code);
    let stored = format!("{:?}", w.store.load("alice").unwrap());
    assert!(
        !stored.contains(&issued.code.replace('-', "")),
        "only the hash is kept"
    );
    let used = verify(&w, "alice", &issued.code, T0 + 10);
    assert_eq!(used.outcome, VerifyOutcome::Accepted);
    assert!(used.temporary_code_used);
    assert_eq!(
        verify(&w, "alice", &issued.code, T0 + 11).outcome,
        VerifyOutcome::Rejected
    );
    // Expiry.
    let short = w
        .service
        .issue_temporary_code(&root(), "alice", 60, T0 + 100)
        .unwrap();
    assert_eq!(
        verify(&w, "alice", &short.code, T0 + 160).outcome,
        VerifyOutcome::Rejected
    );
    // `enroll --replace` accepts it.
    let again = w
        .service
        .issue_temporary_code(&root(), "alice", 0, T0 + 200)
        .unwrap();
    assert!(
        w.service
            .begin_enrollment(&alice, "alice", true, &again.code, T0 + 210)
            .is_ok()
    );
    assert!(w.events.names().contains(&"temporary-code-issued"));
}

#[test]
fn a_temporary_code_lets_a_reset_user_in_to_enroll_again() {
    let w = world(REQUIRED_AT_LOGIN);
    enroll(&w, "alice", 1001, T0);
    w.service.reset_user(&root(), "alice", T0).unwrap();
    let issued = w
        .service
        .issue_temporary_code(&root(), "alice", 0, T0)
        .unwrap();
    assert_eq!(
        plan_at(&w, "alice", "203.0.113.5", T0).action,
        LoginAction::Prompt
    );
    assert_eq!(
        verify(&w, "alice", &issued.code, T0 + 1).outcome,
        VerifyOutcome::Accepted
    );
    assert_eq!(
        plan_at(&w, "alice", "203.0.113.5", T0 + 2).action,
        LoginAction::Deny
    );
}

#[test]
fn the_otpauth_uri_percent_encodes_what_is_not_unreserved() {
    let w = world("[totp]\nissuer = \"Example Corp/Ops+Dev é\"\n");
    let alice = user_caller(&w, 1001, ":1.200");
    let offer = w
        .service
        .begin_enrollment(&alice, "alice", false, "", T0)
        .unwrap();
    assert!(
        offer
            .otpauth_uri
            .starts_with("otpauth://totp/Example%20Corp%2FOps%2BDev%20%C3%A9:alice"),
        "{}",
        offer.otpauth_uri
    );
    assert!(
        offer
            .otpauth_uri
            .contains("issuer=Example%20Corp%2FOps%2BDev%20%C3%A9")
    );
}
