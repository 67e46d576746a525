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

fn plan_at(w: &World, user: &str, rhost: &str, now: u64) -> LoginPlan {
    w.service
        .login_plan(&root(), user, &ctx_from(rhost), now)
        .unwrap()
}

fn ctx_from(rhost: &str) -> LoginContext {
    LoginContext {
        rhost: rhost.into(),
        ..ctx()
    }
}

mod candidates;
mod enrollment;
mod lifecycle;
mod lookups;
#[path = "tests_rollout.rs"]
mod rollout;
mod transactions;
