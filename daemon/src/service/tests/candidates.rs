//! `VerifyAny` and replayed codes.

use super::*;

fn verify_any(w: &World, user: &str, candidates: &[&str], now: u64) -> VerifyAnyReply {
    w.service
        .verify_any(&root(), user, candidates, &ctx(), now)
        .unwrap()
}

fn failures(w: &World, user: &str) -> u32 {
    w.store
        .load(user)
        .unwrap()
        .unwrap()
        .attempts
        .failures_since_success
}

#[test]
fn a_replayed_code_says_so_and_still_fails() {
    let w = world(POLICY);
    let (secret, _) = enroll(&w, "alice", 1001, T0);
    let next = code(&secret, T0 + 30);
    let first = verify(&w, "alice", &next, T0 + 30);
    assert_eq!(first.outcome, VerifyOutcome::Accepted);
    assert!(!first.code_replayed);
    let again = verify(&w, "alice", &next, T0 + 31);
    assert_eq!(again.outcome, VerifyOutcome::Rejected);
    assert!(again.code_replayed, "{again:?}");
    assert_eq!(failures(&w, "alice"), 1, "a replay is a failed attempt");
    let wrong = verify(&w, "alice", "000000", T0 + 32);
    assert!(!wrong.code_replayed);
}

#[test]
fn several_candidates_are_one_attempt() {
    let w = world(POLICY);
    let (secret, backup) = enroll(&w, "alice", 1001, T0);
    let now = T0 + 600;
    // "hunter2" + a TOTP code: the 6- and 7-digit readings.
    let totp = code(&secret, now);
    let seven = format!("2{totp}");
    let reply = verify_any(&w, "alice", &[&totp, &seven], now);
    assert_eq!(reply.reply.outcome, VerifyOutcome::Accepted);
    assert_eq!(reply.accepted_index, 0);
    // A backup code with its dash, among TOTP-shaped readings of the same answer.
    let dashed = backup[0].as_str();
    let reply = verify_any(&w, "alice", &["567890", "4567890", dashed], now + 1);
    assert_eq!(reply.reply.outcome, VerifyOutcome::Accepted);
    assert_eq!(reply.accepted_index, 2);
    assert!(reply.reply.backup_code_used);
    // Every reading wrong: one failure, not one per candidate.
    let reply = verify_any(
        &w,
        "alice",
        &[
            "000000",
            "0000000",
            "00000000",
            "0000000000",
            "000000000000",
        ],
        now + 2,
    );
    assert_eq!(reply.reply.outcome, VerifyOutcome::Rejected);
    assert_eq!(reply.accepted_index, -1);
    assert_eq!(failures(&w, "alice"), 1);
}

#[test]
fn more_candidates_give_no_more_guesses() {
    let w = world(POLICY);
    let (secret, _) = enroll(&w, "alice", 1001, T0);
    let now = T0 + 600;
    let right = code(&secret, now);
    // Only the first 6-digit candidate is tried as a TOTP code.
    let reply = verify_any(&w, "alice", &["000000", &right], now);
    assert_eq!(reply.reply.outcome, VerifyOutcome::Rejected);
    assert_eq!(failures(&w, "alice"), 1);
}

#[test]
fn candidates_are_bounded_and_checked() {
    let w = world(POLICY);
    enroll(&w, "alice", 1001, T0);
    let call = |candidates: &[&str]| {
        w.service
            .verify_any(&root(), "alice", candidates, &ctx(), T0 + 600)
    };
    let nine = ["123456"; 9];
    for bad in [
        &[][..],
        &nine[..],
        &["123456", "12a456"][..],
        &["1".repeat(33).as_str()][..],
    ] {
        assert!(matches!(call(bad), Err(Error::InvalidInput(_))), "{bad:?}");
    }
    assert!(call(&["123456"; 8]).is_ok());
    let stranger = user_caller(&w, 1002, ":1.90");
    let denied = w.service.authorize("VerifyAny", &stranger, "alice");
    assert!(matches!(denied, Err(Error::AccessDenied(_))), "as Verify");
}

#[test]
fn a_temporary_code_is_found_among_candidates() {
    let w = world(POLICY);
    enroll(&w, "alice", 1001, T0);
    let issued = w
        .service
        .issue_temporary_code(&root(), "alice", 0, T0)
        .unwrap();
    let plain = issued.code.replace('-', "");
    let reply = verify_any(
        &w,
        "alice",
        &["789012", "6789012", "56789012", &plain],
        T0 + 60,
    );
    assert_eq!(reply.reply.outcome, VerifyOutcome::Accepted);
    assert_eq!(reply.accepted_index, 3);
    assert!(reply.reply.temporary_code_used);
}

#[test]
fn the_invalid_input_message_names_every_length() {
    let w = world(POLICY);
    let Err(Error::InvalidInput(message)) =
        w.service.verify(&root(), "alice", "not a code", &ctx(), T0)
    else {
        panic!("refused");
    };
    for length in ["6", "8", "10", "12"] {
        assert!(message.contains(length), "{message}");
    }
}
