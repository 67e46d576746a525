//! The logic at exact instants, with an in-memory store and a fixed user table.

use std::sync::Arc;

use twofactor_config::Config;
use twofactor_proto::{Error, LoginAction, LoginContext, VerifyOutcome};

use super::*;
use crate::accounts::FixedAccounts;
use crate::log::MemoryLog;
use crate::programs::MemoryNotifier;
use crate::store::MemoryStore;

const T0: u64 = 1_800_000_000; // a step boundary: 1_800_000_000 / 30 = 60_000_000
const ADMIN_GROUP: &str = "twofactor-admin";

struct World {
    service: Service,
    store: Arc<MemoryStore>,
    log: Arc<MemoryLog>,
    events: Arc<MemoryNotifier>,
}

fn world(config_text: &str) -> World {
    let config = Config::parse(config_text, "test").unwrap();
    let accounts = FixedAccounts::default()
        .with("alice", 1001, &["alice", "staff"])
        .with("bob", 1002, &["bob", "wheel"])
        .with("carol", 1003, &["carol", ADMIN_GROUP])
        .with("sftp", 1004, &["sftponly"]);
    let store = Arc::new(MemoryStore::default());
    let log = Arc::new(MemoryLog::default());
    let events = Arc::new(MemoryNotifier::default());
    let service = Service::new(
        config,
        store.clone(),
        Arc::new(accounts),
        log.clone(),
        "bastion".into(),
    )
    .with_notifier(events.clone());
    World {
        service,
        store,
        log,
        events,
    }
}

const POLICY: &str = r#"
[policy]
default = "optional"
groups = { wheel = "required", sftponly = "disabled" }
[lockout]
max_failures = 5
free_failures = 2
base_delay_seconds = 10
max_delay_seconds = 40
"#;

fn root() -> Caller {
    Caller {
        uid: 0,
        name: Some("root".into()),
        admin: true,
        connection: ":1.1".into(),
    }
}

fn user_caller(world: &World, uid: u32, connection: &str) -> Caller {
    let identity = crate::identity::CallerIdentity {
        uid,
        peer: crate::identity::Peer::Bus(connection.into()),
    };
    world.service.caller(&identity).unwrap()
}

fn ctx() -> LoginContext {
    LoginContext {
        service: "sshd".into(),
        rhost: "192.0.2.7".into(),
        tty: "ssh".into(),
    }
}

/// Enroll `user` at `now` as the user; returns the secret and backup codes.
fn enroll(world: &World, user: &str, uid: u32, now: u64) -> (Secret, Vec<String>) {
    let caller = user_caller(world, uid, ":1.50");
    let offer = world
        .service
        .begin_enrollment(&caller, user, false, "", now)
        .unwrap();
    let secret = Secret::from_base32(&offer.secret_base32).unwrap();
    let code = totp::code_at_step(&secret, TotpParams::default(), now / 30);
    let codes = world
        .service
        .confirm_enrollment(&caller, user, &code, now)
        .unwrap();
    (secret, codes)
}

fn code(secret: &Secret, at: u64) -> String {
    totp::code_at_step(secret, TotpParams::default(), at / 30)
}

fn verify(world: &World, user: &str, code: &str, now: u64) -> VerifyReply {
    world
        .service
        .verify(&root(), user, code, &ctx(), now)
        .unwrap()
}

#[test]
fn login_plan_follows_policy_and_enrollment() {
    let w = world(POLICY);
    let plan = |user: &str| w.service.login_plan(&root(), user, &ctx(), T0).unwrap();
    assert_eq!(
        plan("alice").action,
        LoginAction::Ignore,
        "optional, not enrolled"
    );
    let denied = plan("bob");
    assert_eq!(denied.action, LoginAction::Deny, "required, not enrolled");
    assert!(denied.message.contains("group wheel"), "{}", denied.message);
    assert!(
        denied.message.contains("twofactor enroll"),
        "{}",
        denied.message
    );
    assert_eq!(plan("sftp").action, LoginAction::Ignore, "disabled");
    assert_eq!(
        plan("nobody-here").action,
        LoginAction::Prompt,
        "unknown: no enumeration"
    );
    enroll(&w, "alice", 1001, T0);
    enroll(&w, "bob", 1002, T0);
    assert_eq!(plan("alice").action, LoginAction::Prompt);
    assert_eq!(plan("bob").action, LoginAction::Prompt);
}

#[test]
fn disabled_policy_ignores_even_an_enrolled_user() {
    let w = world(POLICY);
    enroll(&w, "sftp", 1004, T0);
    let plan = w.service.login_plan(&root(), "sftp", &ctx(), T0).unwrap();
    assert_eq!(plan.action, LoginAction::Ignore);
}

#[test]
fn accepted_code_is_spent_and_replay_refused() {
    let w = world(POLICY);
    let (secret, _) = enroll(&w, "alice", 1001, T0);
    // The enrollment code's step is spent already.
    assert_eq!(
        verify(&w, "alice", &code(&secret, T0), T0 + 5).outcome,
        VerifyOutcome::Rejected
    );
    let next = code(&secret, T0 + 30);
    assert_eq!(
        verify(&w, "alice", &next, T0 + 30).outcome,
        VerifyOutcome::Accepted
    );
    assert_eq!(
        verify(&w, "alice", &next, T0 + 31).outcome,
        VerifyOutcome::Rejected
    );
    // The stored step moved before the reply.
    let stored = w.store.load("alice").unwrap().unwrap();
    assert_eq!(
        stored.enrollment.unwrap().totp.last_step,
        Some((T0 + 30) / 30)
    );
    assert_eq!(stored.last_success.unwrap().service, "sshd");
}

#[test]
fn window_is_one_step_either_side() {
    let w = world(POLICY);
    let (secret, _) = enroll(&w, "alice", 1001, T0);
    let now = T0 + 300;
    assert_eq!(
        verify(&w, "alice", &code(&secret, now - 60), now).outcome,
        VerifyOutcome::Rejected
    );
    assert_eq!(
        verify(&w, "alice", &code(&secret, now - 30), now).outcome,
        VerifyOutcome::Accepted
    );
    assert_eq!(
        verify(&w, "alice", &code(&secret, now + 30), now).outcome,
        VerifyOutcome::Accepted
    );
    let far = verify(&w, "alice", &code(&secret, now + 90), now + 30);
    assert_eq!(far.outcome, VerifyOutcome::Rejected);
    assert_eq!(far.clock_skew_seconds, 0, "one code never gives a hint");
    let again = verify(&w, "alice", &code(&secret, now + 90), now + 31);
    assert_eq!(again.clock_skew_seconds, 0, "nor does the same code twice");
    let next = verify(&w, "alice", &code(&secret, now + 120), now + 60);
    assert_eq!(next.outcome, VerifyOutcome::Rejected);
    assert_eq!(next.clock_skew_seconds, 60, "a hint, never an acceptance");
}

fn from(rhost: &str) -> LoginContext {
    LoginContext {
        rhost: rhost.into(),
        ..ctx()
    }
}

#[test]
fn one_source_failing_never_delays_the_right_code_from_another() {
    let w = world(POLICY);
    let (secret, _) = enroll(&w, "alice", 1001, T0);
    let now = T0 + 600;
    let attempt = |code: &str, rhost: &str| {
        w.service
            .verify(&root(), "alice", code, &from(rhost), now)
            .unwrap()
    };
    for _ in 0..3 {
        attempt("000000", "192.0.2.66");
    }
    assert_eq!(
        attempt("000000", "192.0.2.66").outcome,
        VerifyOutcome::Delayed
    );
    let status = w.service.status("alice", now).unwrap();
    assert!(!status.locked);
    let throttled = w.service.throttled_sources("alice", now).unwrap();
    assert_eq!(throttled.len(), 1);
    assert_eq!(throttled[0].source, "192.0.2.66");
    assert_eq!(throttled[0].failures, 3);
    assert_eq!(throttled[0].retry_after_seconds, 10);
    let ok = attempt(&code(&secret, now), "198.51.100.7");
    assert_eq!(ok.outcome, VerifyOutcome::Accepted);
    assert_eq!(ok.failures_since_success, 3);
    // The success cleared its own source, not the attacker's.
    let throttled = w.service.throttled_sources("alice", now).unwrap();
    assert_eq!(throttled[0].source, "192.0.2.66");
}

#[test]
fn the_ceiling_locks_every_source_and_the_notification_names_the_one_that_reached_it() {
    let w = world(POLICY);
    let (secret, _) = enroll(&w, "alice", 1001, T0);
    let now = T0 + 600;
    for n in 0..5 {
        let reply = w
            .service
            .verify(
                &root(),
                "alice",
                "000000",
                &from(&format!("203.0.113.{n}")),
                now,
            )
            .unwrap();
        assert_eq!(reply.outcome, VerifyOutcome::Rejected);
    }
    let locked = w
        .service
        .verify(
            &root(),
            "alice",
            &code(&secret, now),
            &from("198.51.100.7"),
            now,
        )
        .unwrap();
    assert_eq!(locked.outcome, VerifyOutcome::Locked);
    assert_eq!(locked.retry_after_seconds, 86_400);
    assert!(
        w.log
            .lines()
            .iter()
            .any(|line| line.starts_with("WARNING locked user=alice")
                && line.contains("source=203.0.113.4"))
    );
    let events = w.events.0.lock().unwrap();
    let event = events
        .iter()
        .find(|event| event.name == "locked")
        .expect("notified");
    assert_eq!(event.source, "203.0.113.4");
}

#[test]
fn backup_codes_are_single_use_and_counted() {
    let w = world(POLICY);
    let (_, codes) = enroll(&w, "alice", 1001, T0);
    assert_eq!(codes.len(), 10);
    let first = verify(&w, "alice", &codes[0], T0 + 1);
    assert_eq!(first.outcome, VerifyOutcome::Accepted);
    assert!(first.backup_code_used);
    assert_eq!(first.backup_codes_left, 9);
    assert_eq!(
        verify(&w, "alice", &codes[0], T0 + 2).outcome,
        VerifyOutcome::Rejected
    );
    let spaced = codes[1].replace('-', " ");
    assert_eq!(verify(&w, "alice", &spaced, T0 + 3).backup_codes_left, 8);
}

#[test]
fn delays_grow_then_lock_and_a_locked_account_hides_the_truth() {
    let w = world(POLICY);
    let (secret, _) = enroll(&w, "alice", 1001, T0);
    let mut now = T0 + 600;
    // Two free failures, then delays of 10, 20, 40 s; the fifth failure locks.
    let expected_delays = [0, 0, 10, 20];
    for delay in expected_delays {
        assert_eq!(
            verify(&w, "alice", "000000", now).outcome,
            VerifyOutcome::Rejected
        );
        if delay > 0 {
            let early = verify(&w, "alice", &code(&secret, now), now + delay - 1);
            assert_eq!(
                early.outcome,
                VerifyOutcome::Delayed,
                "a correct code must wait too"
            );
            assert_eq!(early.retry_after_seconds, 1);
        }
        now += delay;
    }
    assert_eq!(
        verify(&w, "alice", "000000", now).outcome,
        VerifyOutcome::Rejected
    );
    let status = w.service.status("alice", now).unwrap();
    assert!(status.locked);
    assert_eq!(status.failures_since_success, 5);
    // Locked: even the right code, much later, is refused without being checked.
    let later = now + 3600;
    let locked = verify(&w, "alice", &code(&secret, later), later);
    assert_eq!(locked.outcome, VerifyOutcome::Locked);
    assert_eq!(locked.clock_skew_seconds, 0);
    assert!(
        w.log
            .lines()
            .iter()
            .any(|l| l.starts_with("WARNING locked user=alice"))
    );
    // An admin unlock clears it; the next success reports the failures.
    w.service.unlock_user(&root(), "alice").unwrap();
    let ok = verify(&w, "alice", &code(&secret, later), later);
    assert_eq!(ok.outcome, VerifyOutcome::Accepted);
    assert_eq!(ok.failures_since_success, 5);
    assert_eq!(ok.last_failure_time, now);
    let after = w.service.status("alice", later).unwrap();
    assert!(!after.locked);
    assert_eq!(after.failures_since_success, 0);
}

#[test]
fn a_success_resets_the_failure_count() {
    let w = world(POLICY);
    let (secret, _) = enroll(&w, "alice", 1001, T0);
    let now = T0 + 600;
    verify(&w, "alice", "000000", now);
    verify(&w, "alice", "000000", now);
    let ok = verify(&w, "alice", &code(&secret, now), now);
    assert_eq!(
        (ok.outcome, ok.failures_since_success),
        (VerifyOutcome::Accepted, 2)
    );
    // Two more free failures again, no delay.
    verify(&w, "alice", "000000", now + 1);
    assert_eq!(
        verify(&w, "alice", "000000", now + 1).outcome,
        VerifyOutcome::Rejected
    );
}

#[test]
fn lockout_applies_to_root_callers_too() {
    let w = world("[lockout]\nmax_failures = 2\n");
    let (secret, _) = enroll(&w, "alice", 1001, T0);
    for _ in 0..2 {
        verify(&w, "alice", "000000", T0 + 100);
    }
    assert_eq!(
        verify(&w, "alice", &code(&secret, T0 + 100), T0 + 100).outcome,
        VerifyOutcome::Locked
    );
}

#[test]
fn unknown_and_unenrolled_users_are_rejected_alike() {
    let w = world(POLICY);
    for user in ["ghost", "alice"] {
        let reply = verify(&w, user, "123456", T0);
        assert_eq!(reply.outcome, VerifyOutcome::Rejected, "{user}");
        assert_eq!(reply.backup_codes_left, 0);
    }
}

#[test]
fn malformed_input_is_refused_before_any_work() {
    let w = world(POLICY);
    let long = "1".repeat(40);
    for bad_code in ["abcdef", "", long.as_str(), "12 34\u{0}56"] {
        let result = w.service.verify(&root(), "alice", bad_code, &ctx(), T0);
        assert!(
            matches!(result, Err(Error::InvalidInput(_))),
            "{bad_code:?}"
        );
    }
    for bad_user in ["../etc/passwd", "", "a b"] {
        let result = w.service.verify(&root(), bad_user, "123456", &ctx(), T0);
        assert!(
            matches!(result, Err(Error::InvalidInput(_))),
            "{bad_user:?}"
        );
    }
    let long_context = LoginContext {
        rhost: "x".repeat(300),
        ..ctx()
    };
    let result = w
        .service
        .verify(&root(), "alice", "123456", &long_context, T0);
    assert!(matches!(result, Err(Error::InvalidInput(_))));
}

#[test]
fn unreadable_state_fails_closed_for_that_user_only() {
    let w = world(POLICY);
    let (secret, _) = enroll(&w, "alice", 1001, T0);
    enroll(&w, "bob", 1002, T0);
    w.store.broken.lock().unwrap().push("bob".into());
    let result = w.service.verify(&root(), "bob", "123456", &ctx(), T0 + 60);
    assert!(matches!(result, Err(Error::Internal(_))), "{result:?}");
    let plan = w.service.login_plan(&root(), "bob", &ctx(), T0);
    assert!(
        matches!(plan, Err(Error::Internal(_))),
        "never 'not enrolled': {plan:?}"
    );
    assert!(
        w.log
            .lines()
            .iter()
            .any(|l| l.contains("state-error user=bob"))
    );
    // alice is unaffected.
    assert_eq!(
        verify(&w, "alice", &code(&secret, T0 + 60), T0 + 60).outcome,
        VerifyOutcome::Accepted
    );
    // The admin view shows the problem; a reset clears it.
    let listed = w.service.list_users(T0).unwrap();
    let bob = listed.iter().find(|s| s.user == "bob").unwrap();
    assert!(!bob.problem.is_empty() && bob.locked);
    w.service.reset_user(&root(), "bob", T0).unwrap();
    assert_eq!(
        w.service
            .login_plan(&root(), "bob", &ctx(), T0)
            .unwrap()
            .action,
        LoginAction::Deny
    );
}

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

fn ctx_from(rhost: &str) -> LoginContext {
    LoginContext {
        rhost: rhost.into(),
        ..ctx()
    }
}

fn plan_at(w: &World, user: &str, rhost: &str, now: u64) -> LoginPlan {
    w.service
        .login_plan(&root(), user, &ctx_from(rhost), now)
        .unwrap()
}

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

/// The users of `inner`, but every lookup with groups fails, and so does every lookup of a
/// user named in `broken`.
struct GroupsDown {
    inner: FixedAccounts,
    broken: &'static str,
}

impl Accounts for GroupsDown {
    fn by_name(&self, _name: &str) -> Result<Option<Account>, String> {
        Err("group lookup failed".into())
    }

    fn by_uid(&self, uid: u32) -> Result<Option<Account>, String> {
        self.inner.by_uid(uid)
    }

    fn name_of(&self, name: &str) -> Result<Option<String>, String> {
        if name == self.broken {
            return Err("passwd lookup failed".into());
        }
        self.inner.name_of(name)
    }
}

#[test]
fn verify_looks_up_only_whether_the_user_exists() {
    let w = world(POLICY);
    let (secret, _) = enroll(&w, "alice", 1001, T0);
    let config = Config::parse(POLICY, "test").unwrap();
    let accounts = GroupsDown {
        inner: FixedAccounts::default().with("alice", 1001, &["alice"]),
        broken: "bob",
    };
    let service = Service::new(
        config,
        w.store.clone(),
        Arc::new(accounts),
        w.log.clone(),
        "bastion".into(),
    );
    // Groups decide policy, which Verify does not need: no group lookup, so it still works.
    let reply = service
        .verify(&root(), "alice", &code(&secret, T0 + 30), &ctx(), T0 + 30)
        .unwrap();
    assert_eq!(reply.outcome, VerifyOutcome::Accepted);
    // LoginPlan needs them under group rules, and fails closed.
    let plan = service.login_plan(&root(), "alice", &ctx(), T0 + 60);
    assert!(matches!(plan, Err(Error::Internal(_))), "{plan:?}");
    // A failed existence lookup is not "no such user".
    let broken = service.verify(&root(), "bob", "123456", &ctx(), T0 + 60);
    assert!(matches!(broken, Err(Error::Internal(_))), "{broken:?}");
}

#[test]
fn login_plan_looks_up_groups_only_when_a_group_rule_can_apply() {
    let w = world(POLICY);
    enroll(&w, "alice", 1001, T0);
    let service = |config_text: &str| {
        Service::new(
            Config::parse(config_text, "test").unwrap(),
            w.store.clone(),
            Arc::new(GroupsDown {
                inner: FixedAccounts::default().with("alice", 1001, &["alice"]),
                broken: "bob",
            }),
            w.log.clone(),
            "bastion".into(),
        )
    };
    let plan = |service: &Service, user: &str| service.login_plan(&root(), user, &ctx(), T0);
    // No group rules: existence is all the policy needs.
    let no_groups = service("[policy]\ndefault = \"required\"\n");
    assert_eq!(
        plan(&no_groups, "alice").unwrap().action,
        LoginAction::Prompt
    );
    assert_eq!(
        plan(&no_groups, "nobody-here").unwrap().action,
        LoginAction::Prompt,
        "unknown: no enumeration"
    );
    let broken = plan(&no_groups, "bob");
    assert!(matches!(broken, Err(Error::Internal(_))), "{broken:?}");
    // A user rule wins over any group rule.
    let own_rule =
        service("[policy]\ngroups = { wheel = \"disabled\" }\nusers = { alice = \"required\" }\n");
    assert_eq!(
        plan(&own_rule, "alice").unwrap().action,
        LoginAction::Prompt
    );
    // A group rule may apply: the groups are needed, and their lookup fails closed.
    let group_rule = service("[policy]\ngroups = { wheel = \"disabled\" }\n");
    let failed = plan(&group_rule, "alice");
    assert!(matches!(failed, Err(Error::Internal(_))), "{failed:?}");
}

/// The users of `inner` under any capitalization of their names, as a case-insensitive
/// directory (SSSD, winbind) answers.
struct CaseInsensitive(FixedAccounts);

impl Accounts for CaseInsensitive {
    fn by_name(&self, name: &str) -> Result<Option<Account>, String> {
        self.0.by_name(&name.to_lowercase())
    }

    fn by_uid(&self, uid: u32) -> Result<Option<Account>, String> {
        self.0.by_uid(uid)
    }
}

#[test]
fn another_spelling_of_an_enrolled_name_is_no_such_user() {
    // Enrolled alice must give a code in each; another spelling must not get past it.
    for config_text in [
        "[policy]\ndefault = \"optional\"\n",
        "[policy]\ndefault = \"optional\"\nusers = { alice = \"required\" }\n",
        "[policy]\ndefault = \"disabled\"\ngroups = { staff = \"required\" }\n",
    ] {
        let w = world(config_text);
        let (secret, _) = enroll(&w, "alice", 1001, T0);
        let service = Service::new(
            Config::parse(config_text, "test").unwrap(),
            w.store.clone(),
            Arc::new(CaseInsensitive(FixedAccounts::default().with(
                "alice",
                1001,
                &["alice", "staff"],
            ))),
            w.log.clone(),
            "bastion".into(),
        );
        let plan = |user: &str| service.login_plan(&root(), user, &ctx(), T0).unwrap();
        assert_eq!(plan("alice").action, LoginAction::Prompt);
        // Not Ignore (as not enrolled under "ALICE" with the default policy would be), and
        // not Deny: exactly what an unknown name gets.
        assert_eq!(plan("ALICE").action, LoginAction::Prompt, "{config_text}");
        let right = code(&secret, T0 + 30);
        let reply = service
            .verify(&root(), "ALICE", &right, &ctx(), T0 + 30)
            .unwrap();
        assert_eq!(reply.outcome, VerifyOutcome::Rejected, "{config_text}");
        assert!(
            w.log
                .lines()
                .iter()
                .any(|line| line.contains("user-name-differs")),
            "the refusal is logged: {config_text}"
        );
        // The right spelling still works with the same code.
        let reply = service
            .verify(&root(), "alice", &right, &ctx(), T0 + 30)
            .unwrap();
        assert_eq!(reply.outcome, VerifyOutcome::Accepted);
    }
}

mod candidates;
#[path = "tests_rollout.rs"]
mod rollout;

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
