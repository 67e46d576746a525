//! Every struct, with a distinct value in every field (so that two fields of one type
//! swapped anywhere fail), through its wire tuple and back, and through the D-Bus encoding:
//! as itself, and as the out arguments a reply carries.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;
use zbus::Type;
use zbus::wire::serialized::Context;
use zbus::wire::{LE, to_bytes};

use super::*;

fn login_plan() -> LoginPlan {
    LoginPlan {
        action: LoginAction::Enroll,
        message: "message".into(),
        can_send_code: true,
        keep_connection: false,
    }
}

fn login_context() -> LoginContext {
    LoginContext {
        service: "sshd".into(),
        rhost: "192.0.2.7".into(),
        tty: "pts/3".into(),
    }
}

fn verify_reply() -> VerifyReply {
    // Each bool differs from its neighbours and each number from the others of its type.
    VerifyReply {
        outcome: VerifyOutcome::Delayed,
        backup_code_used: true,
        backup_codes_left: 3,
        clock_skew_seconds: -90,
        retry_after_seconds: 17,
        failures_since_success: 5,
        last_failure_time: 1_700_000_000,
        temporary_code_used: false,
        offer_new_backup_codes: true,
        code_replayed: false,
    }
}

fn user_status() -> UserStatus {
    UserStatus {
        user: "alice".into(),
        enrolled: true,
        policy: Policy::Required.into(),
        policy_source: "group wheel".into(),
        backup_codes_left: 7,
        locked: false,
        retry_after_seconds: 11,
        failures_since_success: 2,
        enrolled_at: 1_600_000_001,
        last_success_time: 1_600_000_002,
        last_success_service: "su".into(),
        last_success_rhost: "198.51.100.4".into(),
        problem: "problem".into(),
        grace_ends_at: 1_600_000_003,
        temporary_code_expires_at: 1_600_000_004,
        delivery_enabled: true,
    }
}

fn enrollment_offer() -> EnrollmentOffer {
    EnrollmentOffer {
        otpauth_uri: "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP".into(),
        secret_base32: "JBSWY3DPEHPK3PXP".into(),
        label: "issuer:alice@host".into(),
        issuer: "issuer".into(),
        algorithm: Algorithm::Sha256.into(),
        digits: 8,
        period: 60,
        expires_in_seconds: 600,
    }
}

fn imported_enrollment() -> ImportedEnrollment {
    ImportedEnrollment {
        secret_base32: "JBSWY3DPEHPK3PXP".into(),
        algorithm: Algorithm::Sha512.into(),
        digits: 7,
        period: 30,
        window: 2,
        last_step: 56_000_000,
        scratch_codes: vec!["12345678".into(), "87654321".into()],
        source: "pam_oath".into(),
        last_code: "123456".into(),
    }
}

/// `value` survives its tuple, and the D-Bus encoding both as a struct and as out arguments:
/// the tuple's encoding is what a reply's body carries, and clients decode it as the struct.
fn round_trip<S, A>(value: S)
where
    S: Clone + PartialEq + Debug + Serialize + DeserializeOwned + Type + From<A>,
    A: Clone + Serialize + DeserializeOwned + Type + From<S>,
{
    let args = A::from(value.clone());
    assert_eq!(S::from(args.clone()), value, "through the tuple");

    let ctxt = Context::new(LE, 0);
    let as_struct = to_bytes(ctxt, &value).expect("encode the struct");
    let (decoded, _) = as_struct.deserialize::<S>().expect("decode the struct");
    assert_eq!(decoded, value, "through the D-Bus encoding");

    let as_args = to_bytes(ctxt, &args).expect("encode the out arguments");
    assert_eq!(as_args.bytes(), as_struct.bytes(), "same bytes either way");
    let (decoded, _) = as_args.deserialize::<S>().expect("decode a reply's body");
    assert_eq!(
        decoded, value,
        "a reply's out arguments decode as the struct"
    );
}

#[test]
fn every_struct_survives_its_tuple_and_the_wire() {
    round_trip::<LoginPlan, LoginPlanArgs>(login_plan());
    round_trip::<LoginContext, LoginContextArgs>(login_context());
    round_trip::<VerifyReply, VerifyReplyArgs>(verify_reply());
    round_trip::<VerifyAnyReply, VerifyAnyReplyArgs>(VerifyAnyReply {
        reply: verify_reply(),
        accepted_index: 4,
    });
    round_trip::<UserStatus, UserStatusArgs>(user_status());
    round_trip::<ThrottledSource, ThrottledSourceArgs>(ThrottledSource {
        source: "192.0.2.9".into(),
        failures: 6,
        retry_after_seconds: 120,
    });
    round_trip::<PolicyExplanation, PolicyExplanationArgs>(PolicyExplanation {
        user: "bob".into(),
        policy: Policy::Disabled.into(),
        source: "user bob".into(),
        explanation: "user bob → disabled".into(),
    });
    round_trip::<EnrollmentOffer, EnrollmentOfferArgs>(enrollment_offer());
    round_trip::<LoginEnrollment, LoginEnrollmentArgs>(LoginEnrollment {
        token: "token".into(),
        offer: enrollment_offer(),
    });
    round_trip::<TemporaryCode, TemporaryCodeArgs>(TemporaryCode {
        code: "1234-5678-9012".into(),
        expires_at: 1_700_003_600,
    });
    round_trip::<ImportedEnrollment, ImportedEnrollmentArgs>(imported_enrollment());
}

/// The signatures of the previous release, which old modules and clients decode.
#[test]
fn signatures_are_those_of_the_previous_release() {
    let signatures = [
        (LoginPlan::SIGNATURE.to_string(), "(ysbb)"),
        (LoginContext::SIGNATURE.to_string(), "(sss)"),
        (VerifyReply::SIGNATURE.to_string(), "(ybuxtutbbb)"),
        (VerifyAnyReply::SIGNATURE.to_string(), "((ybuxtutbbb)i)"),
        (UserStatus::SIGNATURE.to_string(), "(sbssubtuttsssttb)"),
        (ThrottledSource::SIGNATURE.to_string(), "(sut)"),
        (PolicyExplanation::SIGNATURE.to_string(), "(ssss)"),
        (EnrollmentOffer::SIGNATURE.to_string(), "(sssssuut)"),
        (LoginEnrollment::SIGNATURE.to_string(), "(s(sssssuut))"),
        (TemporaryCode::SIGNATURE.to_string(), "(st)"),
        (ImportedEnrollment::SIGNATURE.to_string(), "(ssuuutasss)"),
    ];
    for (signature, expected) in signatures {
        assert_eq!(signature, expected);
    }
    assert_eq!(UserStatusArgs::SIGNATURE.to_string(), "(sbssubtuttsssttb)");
}

#[test]
fn field_names_follow_the_declaration() {
    assert_eq!(
        LoginPlan::FIELD_NAMES,
        ["action", "message", "can_send_code", "keep_connection"]
    );
    assert_eq!(VerifyAnyReply::FIELD_NAMES, ["reply", "accepted_index"]);
    assert_eq!(UserStatus::FIELD_NAMES.len(), 16);
}

#[test]
fn an_older_client_reads_a_newer_daemons_names() {
    let mut status = user_status();
    status.policy = OrUnknown::from_name("enforced");
    let ctxt = Context::new(LE, 0);
    let encoded = to_bytes(ctxt, &UserStatusArgs::from(status.clone())).expect("encode");
    let (decoded, _) = encoded.deserialize::<UserStatus>().expect("still decodes");
    assert_eq!(decoded.policy.as_str(), "enforced");
    assert_eq!(decoded.policy.known(), None);
    assert_eq!(decoded, status);
}

#[test]
fn debug_redacts_secrets() {
    let shown = format!(
        "{:?} {:?} {:?}",
        LoginEnrollment {
            token: "the-token".into(),
            offer: enrollment_offer()
        },
        TemporaryCode {
            code: "1234-5678-9012".into(),
            expires_at: 1
        },
        imported_enrollment()
    );
    for secret in [
        "JBSWY3DPEHPK3PXP",
        "the-token",
        "1234-5678-9012",
        "12345678",
    ] {
        assert!(!shown.contains(secret), "{shown}");
    }
}
