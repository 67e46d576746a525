//! RFC 6238 TOTP checks with replay protection and a clock-skew hint. Time is a parameter.

use twofactor_config::Algorithm;

use crate::record::SkewMatch;
use crate::secret::{Secret, constant_time_eq};

/// How far off a device's clock may be for the daemon to say so (never accepted).
pub const SKEW_HINT_SECONDS: u64 = 600;

/// Parameters fixed at enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpParams {
    pub algorithm: Algorithm,
    pub digits: u32,
    pub period: u32,
}

impl Default for TotpParams {
    fn default() -> Self {
        TotpParams {
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
        }
    }
}

/// Result of checking one code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpCheck {
    /// Matched this time step, which is newer than any accepted before.
    Accepted { step: u64 },
    /// Matched a step at or below the last accepted one (RFC 6238 §5.2).
    Replayed,
    /// No match in the window; `skew` when it matches further out.
    Wrong { skew: Option<SkewMatch> },
}

fn engine(secret: &Secret, params: TotpParams) -> totp_rs::Totp {
    let algorithm = match params.algorithm {
        Algorithm::Sha1 => totp_rs::Algorithm::SHA1,
        Algorithm::Sha256 => totp_rs::Algorithm::SHA256,
        Algorithm::Sha512 => totp_rs::Algorithm::SHA512,
    };
    // Digits (6 or 8) and period are validated by config, so the unchecked build is safe and
    // also admits the short RFC test seeds.
    totp_rs::Builder::new()
        .with_algorithm(algorithm)
        .with_digits(params.digits as u8)
        .with_step_duration(u64::from(params.period))
        .with_skew(0)
        .with_secret(secret.as_bytes())
        .build_noncompliant()
}

/// The code for a time step.
pub fn code_at_step(secret: &Secret, params: TotpParams, step: u64) -> String {
    engine(secret, params)
        .generate(step.saturating_mul(u64::from(params.period)))
        .to_string()
}

/// Check `code` (digits only) at `now` with `window` steps either side, refusing steps at or
/// below `last_step`. Every candidate is compared in constant time.
pub fn check(
    secret: &Secret,
    params: TotpParams,
    code: &str,
    now: u64,
    window: u32,
    last_step: Option<u64>,
) -> TotpCheck {
    if code.len() != params.digits as usize {
        return TotpCheck::Wrong { skew: None };
    }
    let totp = engine(secret, params);
    let period = u64::from(params.period);
    let current = now / period;
    let matches = |step: u64| {
        let expected = totp.generate(step.saturating_mul(period)).to_string();
        constant_time_eq(expected.as_bytes(), code.as_bytes())
    };
    let window = u64::from(window);
    let mut replayed = false;
    for step in current.saturating_sub(window)..=current.saturating_add(window) {
        if matches(step) {
            if last_step.is_some_and(|last| step <= last) {
                replayed = true;
            } else {
                return TotpCheck::Accepted { step };
            }
        }
    }
    if replayed {
        return TotpCheck::Replayed;
    }
    // Nearest match outside the window, for a "your clock is off" hint.
    let reach = SKEW_HINT_SECONDS / period;
    let skew = (window + 1..=reach).find_map(|distance| {
        let seconds = (distance * period) as i64;
        let ahead = current.saturating_add(distance);
        if matches(ahead) {
            Some(SkewMatch {
                seconds,
                step: ahead,
            })
        } else if distance <= current && matches(current - distance) {
            Some(SkewMatch {
                seconds: -seconds,
                step: current - distance,
            })
        } else {
            None
        }
    });
    TotpCheck::Wrong { skew }
}

/// How far either side of now the last code an imported enrollment records is looked for.
pub const IMPORTED_LAST_CODE_REACH_STEPS: u64 = 10;

/// The newest time step within `reach` steps of `now` whose code is `code`: the step an
/// imported enrollment's last used code belongs to, so that it stays spent. `None` when no step
/// there has that code (it is older, or was never right). Compared in constant time.
pub fn newest_step_of_code(
    secret: &Secret,
    params: TotpParams,
    code: &str,
    now: u64,
    reach: u64,
) -> Option<u64> {
    if code.len() != params.digits as usize {
        return None;
    }
    let totp = engine(secret, params);
    let period = u64::from(params.period);
    let current = now / period;
    (current.saturating_sub(reach)..=current.saturating_add(reach))
        .rev()
        .find(|step| {
            let expected = totp.generate(step.saturating_mul(period)).to_string();
            constant_time_eq(expected.as_bytes(), code.as_bytes())
        })
}

/// The cost of a failed check (window and skew search), for users that do not exist, so that
/// timing does not tell them apart.
pub fn dummy_check(code: &str, now: u64, window: u32, params: TotpParams) {
    let secret = Secret::from_bytes(vec![0u8; crate::secret::SECRET_LEN]);
    let _ = check(&secret, params, code, now, window, None);
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str = include_str!("../tests/data/rfc6238.json");

    fn ascii_secret(text: &str) -> Secret {
        Secret::from_bytes(text.as_bytes().to_vec())
    }

    #[test]
    fn rfc6238_appendix_b() {
        let vectors: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
        let totp = &vectors["totp"];
        let cases = totp["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 6);
        for (name, algorithm) in [
            ("SHA1", Algorithm::Sha1),
            ("SHA256", Algorithm::Sha256),
            ("SHA512", Algorithm::Sha512),
        ] {
            let secret = ascii_secret(totp["seeds_ascii"][name].as_str().unwrap());
            let params = TotpParams {
                algorithm,
                digits: 8,
                period: 30,
            };
            for case in cases {
                let time = case["time"].as_u64().unwrap();
                let expected = case[name].as_str().unwrap();
                assert_eq!(
                    code_at_step(&secret, params, time / 30),
                    expected,
                    "{name} {time}"
                );
                assert_eq!(
                    check(&secret, params, expected, time, 0, None),
                    TotpCheck::Accepted { step: time / 30 },
                    "{name} {time}"
                );
            }
        }
    }

    #[test]
    fn rfc4226_appendix_d() {
        // HOTP is TOTP with a one-second step where the time is the counter.
        let vectors: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
        let hotp = &vectors["hotp"];
        let secret = ascii_secret(hotp["seed_ascii"].as_str().unwrap());
        let params = TotpParams {
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 1,
        };
        for (counter, expected) in hotp["by_counter"].as_array().unwrap().iter().enumerate() {
            assert_eq!(
                code_at_step(&secret, params, counter as u64),
                expected.as_str().unwrap()
            );
        }
    }

    fn app_secret() -> Secret {
        Secret::from_base32("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").unwrap()
    }

    #[test]
    fn window_edges() {
        let secret = app_secret();
        let params = TotpParams::default();
        let now = 1_700_000_000; // step 56666666, 20 s into it
        let step = now / 30;
        for (offset, accepted) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let candidate = (step as i64 + offset) as u64;
            let code = code_at_step(&secret, params, candidate);
            let result = check(&secret, params, &code, now, 1, None);
            if accepted {
                assert_eq!(
                    result,
                    TotpCheck::Accepted { step: candidate },
                    "offset {offset}"
                );
            } else {
                assert!(matches!(result, TotpCheck::Wrong { .. }), "offset {offset}");
            }
        }
        // The first and last second of a step belong to it.
        let first = step * 30;
        let code = code_at_step(&secret, params, step + 1);
        assert_eq!(
            check(&secret, params, &code, first, 0, None),
            TotpCheck::Wrong {
                skew: Some(SkewMatch {
                    seconds: 30,
                    step: step + 1
                })
            }
        );
        assert_eq!(
            check(&secret, params, &code, first + 30, 0, None),
            TotpCheck::Accepted { step: step + 1 }
        );
    }

    #[test]
    fn replay_is_refused() {
        let secret = app_secret();
        let params = TotpParams::default();
        let now = 1_700_000_000;
        let code = code_at_step(&secret, params, now / 30);
        let TotpCheck::Accepted { step } = check(&secret, params, &code, now, 1, None) else {
            panic!("not accepted");
        };
        assert_eq!(
            check(&secret, params, &code, now, 1, Some(step)),
            TotpCheck::Replayed
        );
        // An older code inside the window is refused too once a newer step was accepted.
        let older = code_at_step(&secret, params, step - 1);
        assert_eq!(
            check(&secret, params, &older, now, 1, Some(step)),
            TotpCheck::Replayed
        );
        // The next step's code is still fine.
        let newer = code_at_step(&secret, params, step + 1);
        assert_eq!(
            check(&secret, params, &newer, now, 1, Some(step)),
            TotpCheck::Accepted { step: step + 1 }
        );
    }

    #[test]
    fn skew_hint_both_ways_and_bounded() {
        let secret = app_secret();
        let params = TotpParams::default();
        let now = 1_700_000_000;
        let step = now / 30;
        for offset in [-20i64, -3, 3, 20] {
            let code = code_at_step(&secret, params, (step as i64 + offset) as u64);
            assert_eq!(
                check(&secret, params, &code, now, 1, None),
                TotpCheck::Wrong {
                    skew: Some(SkewMatch {
                        seconds: offset * 30,
                        step: (step as i64 + offset) as u64
                    })
                },
                "offset {offset}"
            );
        }
        let far = code_at_step(&secret, params, step + 21);
        assert_eq!(
            check(&secret, params, &far, now, 1, None),
            TotpCheck::Wrong { skew: None }
        );
    }

    #[test]
    fn the_step_of_a_last_code_near_now() {
        // RFC 6238 Appendix B, SHA1, 8 digits: T = 1111111109 (step 37037036) gives 07081804,
        // T = 1111111111 (step 37037037) gives 14050471.
        let secret = ascii_secret("12345678901234567890");
        let params = TotpParams {
            algorithm: Algorithm::Sha1,
            digits: 8,
            period: 30,
        };
        let step = 1_111_111_109 / 30;
        for now in [1_111_111_109, 1_111_111_109 + 300, 1_111_111_109 - 300] {
            assert_eq!(
                newest_step_of_code(&secret, params, "07081804", now, 10),
                Some(step),
                "{now}"
            );
        }
        assert_eq!(
            newest_step_of_code(&secret, params, "14050471", 1_111_111_111, 10),
            Some(step + 1)
        );
        // Further than the reach, a wrong code, or the wrong length: no step.
        assert_eq!(
            newest_step_of_code(&secret, params, "07081804", 1_111_111_109 + 330, 10),
            None
        );
        assert_eq!(
            newest_step_of_code(&secret, params, "07081805", 1_111_111_109, 10),
            None
        );
        assert_eq!(
            newest_step_of_code(&secret, params, "7081804", 1_111_111_109, 10),
            None
        );
        // SHA256 with its 32-byte seed: T = 2000000000 gives 90698825.
        let secret = ascii_secret("12345678901234567890123456789012");
        let params = TotpParams {
            algorithm: Algorithm::Sha256,
            ..params
        };
        assert_eq!(
            newest_step_of_code(&secret, params, "90698825", 2_000_000_000, 10),
            Some(2_000_000_000 / 30)
        );
    }

    #[test]
    fn the_newest_of_several_matching_steps_wins() {
        // One-digit codes over 61 steps: some code repeats (pigeonhole), and the newest step
        // with it is the one to keep spent.
        let secret = app_secret();
        let params = TotpParams {
            digits: 1,
            ..TotpParams::default()
        };
        let now = 1_700_000_000;
        let steps = now / 30 - 30..=now / 30 + 30;
        let code = code_at_step(&secret, params, *steps.start());
        let newest = steps
            .clone()
            .filter(|step| code_at_step(&secret, params, *step) == code)
            .max()
            .unwrap();
        assert!(newest > *steps.start());
        assert_eq!(
            newest_step_of_code(&secret, params, &code, now, 30),
            Some(newest)
        );
    }

    #[test]
    fn dummy_checks_take_any_input() {
        for code in ["123456", "12345678", "123456789012", "1"] {
            dummy_check(code, 1_700_000_000, 1, TotpParams::default());
        }
    }

    #[test]
    fn wrong_length_never_matches() {
        let secret = app_secret();
        let params = TotpParams::default();
        let code = code_at_step(&secret, params, 1);
        assert_eq!(
            check(&secret, params, &format!("0{code}"), 30, 1, None),
            TotpCheck::Wrong { skew: None }
        );
    }
}
