//! `require_publickey`: the module refuses every login on which sshd reports no succeeded
//! `publickey` method, and lets an exempt user whose key succeeded in with `PAM_SUCCESS`.

use super::*;
use crate::flow::publickey_missing;
use crate::messages;

const KEY_INFO: &str = "publickey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKeyMaterialNotASecret\n";

fn with_auth_info(user: &str, auth_info: Option<&str>) -> Request {
    Request {
        ssh_auth_info: auth_info.map(str::to_owned),
        ..request(user)
    }
}

fn never_planned() -> Result<LoginPlan, ClientError> {
    panic!("LoginPlan must not be called without a key")
}

#[test]
fn what_counts_as_a_succeeded_key() {
    assert!(publickey_missing(Some(KEY_INFO)).is_none());
    assert!(publickey_missing(Some("password\npublickey ssh-rsa AAAA")).is_none());
    for missing in [
        None,
        Some(""),
        Some("\n"),
        Some("keyboard-interactive\n"),
        Some("password\n"),
        Some("publickey"),
        Some(" publickey ssh-ed25519 AAAA"),
        Some("publickey-hostbound-v00@openssh.com ssh-ed25519 AAAA"),
    ] {
        assert!(publickey_missing(missing).is_some(), "{missing:?}");
    }
}

#[test]
fn without_a_key_everyone_is_refused_before_the_daemon_is_asked() {
    for auth_info in [
        None,
        Some(""),
        Some("password\n"),
        Some("keyboard-interactive\n"),
    ] {
        for user in ["alice", "root", "not a user"] {
            let daemon = FakeDaemon::new(never_planned, never_verify);
            let done = run(
                &["require_publickey"],
                &with_auth_info(user, auth_info),
                vec![error(messages::PUBLICKEY_REQUIRED)],
                &daemon,
            );
            assert_eq!(
                done.verdict.outcome,
                Outcome::AuthErr,
                "{user} {auth_info:?}"
            );
            assert!(daemon.calls().is_empty(), "{:?}", daemon.calls());
            assert!(
                done.log
                    .contains(Level::Notice, "require_publickey, and SSH_AUTH_INFO_0"),
                "{:?}",
                done.log.0
            );
        }
    }
}

#[test]
fn an_exempt_user_whose_key_succeeded_gets_success_not_ignore() {
    let daemon = FakeDaemon::new(|| Ok(plan(LoginAction::Ignore, "")), never_verify);
    let done = run(
        &["require_publickey"],
        &with_auth_info("alice", Some(KEY_INFO)),
        vec![],
        &daemon,
    );
    assert_eq!(done.verdict.outcome, Outcome::Success);
    assert_eq!(
        daemon.calls(),
        vec![Call::LoginPlan("alice".into(), context())]
    );
    done.log.assert_never_mentions(&["AAAAC3Nza"]);
}

#[test]
fn an_enrolled_user_whose_key_succeeded_still_needs_the_code() {
    let daemon = FakeDaemon::prompting(accepted);
    let done = run(
        &["require_publickey"],
        &with_auth_info("alice", Some(KEY_INFO)),
        vec![code("123456")],
        &daemon,
    );
    assert_eq!(done.verdict.outcome, Outcome::Success);
    assert_eq!(daemon.verified_codes(), vec!["123456".to_owned()]);

    let daemon = FakeDaemon::prompting(rejected);
    let done = run(
        &["require_publickey", "tries=1"],
        &with_auth_info("alice", Some(KEY_INFO)),
        vec![code("654321"), error(WRONG)],
        &daemon,
    );
    assert_eq!(done.verdict.outcome, Outcome::AuthErr);
}

#[test]
fn deny_stays_deny_with_a_key() {
    let daemon = FakeDaemon::new(|| Ok(plan(LoginAction::Deny, "")), never_verify);
    let done = run(
        &["require_publickey"],
        &with_auth_info("alice", Some(KEY_INFO)),
        vec![error(messages::DENIED)],
        &daemon,
    );
    assert_eq!(done.verdict.outcome, Outcome::AuthErr);
}

#[test]
fn without_the_argument_the_auth_info_changes_nothing() {
    let daemon = FakeDaemon::new(|| Ok(plan(LoginAction::Ignore, "")), never_verify);
    let done = run(
        &[],
        &with_auth_info("alice", Some(KEY_INFO)),
        vec![],
        &daemon,
    );
    assert_eq!(done.verdict.outcome, Outcome::Ignore);

    let daemon = FakeDaemon::prompting(accepted);
    let done = run(
        &[],
        &with_auth_info("alice", None),
        vec![code("123456")],
        &daemon,
    );
    assert_eq!(done.verdict.outcome, Outcome::Success);
}

#[test]
fn an_unreachable_daemon_with_unavailable_ignore_is_still_no_success() {
    let daemon = FakeDaemon::new(unreachable_daemon, never_verify);
    let done = run(
        &["require_publickey", "unavailable=ignore"],
        &with_auth_info("alice", Some(KEY_INFO)),
        vec![],
        &daemon,
    );
    assert_eq!(done.verdict.outcome, Outcome::Ignore);
}

/// sshd answers every prompt with `"\b\n\r\x7fINCORRECT"`, cut to the length of what was typed,
/// when it will refuse the login anyway (root under `PermitRootLogin prohibit-password`, an
/// invalid user): that answer must never reach the daemon, where it would count as a failure.
#[test]
fn sshds_fake_password_never_reaches_the_daemon() {
    for fake in ["\u{8}\n\r\u{7f}IN", "\u{8}\n\r\u{7f}INCORRECT", "\u{8}"] {
        let daemon = FakeDaemon::prompting(never_verify);
        let steps = vec![
            Step::Secret(messages::CODE_PROMPT, Answer::Text(fake)),
            error(WRONG),
        ];
        // One try: sshd swaps in its fake answer at every prompt, and none may count.
        let done = run(
            &["require_publickey", "tries=1"],
            &with_auth_info("root", Some(KEY_INFO)),
            steps,
            &daemon,
        );
        assert_eq!(done.verdict.outcome, Outcome::AuthErr, "{fake:?}");
        assert!(daemon.verified_codes().is_empty());
    }
}
