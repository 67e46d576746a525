//! What a rollout relies on: where enrollment at login is allowed (the console, and a
//! context only root is believed about), and the list of required users not yet enrolled.

use super::*;

fn login_ctx(service: &str, tty: &str, rhost: &str) -> LoginContext {
    LoginContext {
        service: service.into(),
        rhost: rhost.into(),
        tty: tty.into(),
    }
}

const REQUIRED_AT_CONSOLE: &str = r#"
[policy]
default = "required"
[enrollment]
at_login = true
at_login_from = ["console"]
"#;

#[test]
fn enrollment_at_login_from_the_console_only() {
    let w = world(REQUIRED_AT_CONSOLE);
    let plan = |caller: &Caller, context: &LoginContext| {
        w.service
            .login_plan(caller, "alice", context, T0)
            .unwrap()
            .action
    };
    let r = root();
    assert_eq!(
        plan(&r, &login_ctx("login", "/dev/tty1", "")),
        LoginAction::Enroll
    );
    assert_eq!(
        plan(&r, &login_ctx("login", "ttyS0", "")),
        LoginAction::Enroll
    );
    assert_eq!(
        plan(&r, &login_ctx("gdm-password", ":0", "")),
        LoginAction::Enroll
    );
    for (service, tty, rhost) in [
        ("su", "", ""),
        ("su", "pts/3", ""),
        ("su", "/dev/ttyS0", ""),
        ("su", "/dev/tty1", ""),
        ("sudo", "/dev/tty1", ""),
        ("sshd", "ssh", "192.0.2.7"),
        ("login", "/dev/pts/0", ""),
        ("login", "/dev/tty1", "192.0.2.7"),
    ] {
        let context = login_ctx(service, tty, rhost);
        assert_eq!(plan(&r, &context), LoginAction::Deny, "{context:?}");
        let refused = w.service.begin_login_enrollment(&r, "alice", &context, T0);
        assert!(
            matches!(refused, Err(Error::PolicyForbids(_))),
            "{context:?}"
        );
    }
    // The user asking for their own plan chooses their own context: not believed.
    let alice = user_caller(&w, 1001, ":1.61");
    assert_eq!(
        plan(&alice, &login_ctx("login", "/dev/tty1", "")),
        LoginAction::Deny
    );
    let carol = user_caller(&w, 1003, ":1.62");
    assert!(carol.admin);
    assert_eq!(
        plan(&carol, &login_ctx("login", "/dev/tty1", "")),
        LoginAction::Deny,
        "an administrator is not a login program either"
    );
}

#[test]
fn no_remote_host_is_not_believed_from_anyone_but_root() {
    for origins in ["\"no-remote-host\"", "\"local\"", "\"10.0.0.0/8\""] {
        let w = world(&format!(
            "[policy]\ndefault = \"required\"\n[enrollment]\nat_login = true\n\
             at_login_from = [{origins}]\n"
        ));
        let rhost = if origins.contains('/') {
            "10.1.1.1"
        } else {
            ""
        };
        let context = login_ctx("su", "pts/1", rhost);
        let by_root = w
            .service
            .login_plan(&root(), "alice", &context, T0)
            .unwrap();
        assert_eq!(by_root.action, LoginAction::Enroll, "{origins}");
        let alice = user_caller(&w, 1001, ":1.63");
        let by_alice = w.service.login_plan(&alice, "alice", &context, T0).unwrap();
        assert_eq!(by_alice.action, LoginAction::Deny, "{origins}");
    }
    // "any" needs no context, so it is the same for everyone.
    let w = world("[policy]\ndefault = \"required\"\n[enrollment]\nat_login = true\n");
    let alice = user_caller(&w, 1001, ":1.64");
    let plan = w.service.login_plan(&alice, "alice", &ctx(), T0).unwrap();
    assert_eq!(plan.action, LoginAction::Enroll);
}

#[test]
fn the_list_shows_required_users_who_are_not_enrolled() {
    let w = world(
        "[policy]\ndefault = \"optional\"\ngroups = { wheel = \"required\", staff = \"optional\" }\n\
         users = { sftp = \"required\" }\n[enrollment]\ngrace_period = \"7d\"\n",
    );
    let listed = w.service.list_users(T0).unwrap();
    let names: Vec<&str> = listed.iter().map(|s| s.user.as_str()).collect();
    // bob through group wheel, sftp by name; alice (an optional group) is not listed.
    assert_eq!(names, ["bob", "sftp"]);
    let bob = &listed[0];
    assert!(!bob.enrolled);
    assert_eq!(
        (bob.policy.as_str(), bob.policy_source.as_str()),
        ("required", "group wheel")
    );
    assert_eq!(
        bob.grace_ends_at, 0,
        "no login yet: no grace period under way"
    );
    // bob's first login starts the grace period; the list shows it.
    w.service.login_plan(&root(), "bob", &ctx(), T0).unwrap();
    let listed = w.service.list_users(T0 + 1).unwrap();
    assert_eq!(listed[0].grace_ends_at, T0 + 7 * 86_400);
    // Once enrolled, still listed (a record), now enrolled.
    enroll(&w, "bob", 1002, T0 + 60);
    let listed = w.service.list_users(T0 + 60).unwrap();
    assert!(listed.iter().any(|s| s.user == "bob" && s.enrolled));
}

#[test]
fn after_an_unlock_the_status_shows_no_lock_and_keeps_what_the_user_is_told() {
    let w = world(POLICY);
    let (secret, _) = enroll(&w, "alice", 1001, T0);
    // Wrong codes, each after its delay, up to the lockout (max_failures = 5).
    let mut now = T0 + 60;
    for _ in 0..5 {
        assert_eq!(
            verify(&w, "alice", "000000", now).outcome,
            VerifyOutcome::Rejected
        );
        now += 100;
    }
    let locked = w.service.status("alice", now).unwrap();
    assert!(locked.locked);
    w.service.unlock_user(&root(), "alice").unwrap();
    let status = w.service.status("alice", now).unwrap();
    assert_eq!(
        (
            status.locked,
            status.retry_after_seconds,
            status.failures_since_success
        ),
        (false, 0, 5),
        "the lock and its delays are gone; the user is still told of the 5 failures"
    );
    let reply = verify(&w, "alice", &code(&secret, now), now);
    assert_eq!(reply.outcome, VerifyOutcome::Accepted);
    assert_eq!(reply.failures_since_success, 5);
}

#[test]
fn a_replaced_config_applies_to_the_next_call() {
    let w = world(POLICY);
    let plan = || w.service.login_plan(&root(), "alice", &ctx(), T0).unwrap();
    assert_eq!(plan().action, LoginAction::Ignore);
    let stricter = Config::parse("[policy]\ndefault = \"required\"\n", "reloaded").unwrap();
    w.service.replace_config(stricter, Arc::new(NoNotifier));
    assert_eq!(plan().action, LoginAction::Deny);
}
