//! The shapes of every code a user types, in one place: the daemon checks against them, the
//! PAM module splits `forward_pass` answers with them and the CLI tells codes apart with them.
//!
//! A code is decimal digits. People may type it in groups separated by [`SEPARATORS`]
//! (`12345-67890`, `1234 5678 9012`); [`normalize`] keeps only the digits, and the daemon
//! compares digits only.

use zeroize::Zeroizing;

/// Longest code argument: a temporary code with generous spacing still fits.
pub const MAX_CODE_LEN: usize = 32;

/// Digits of a TOTP code that the configuration may ask for (`[totp] digits`).
pub const CONFIGURABLE_TOTP_DIGITS: [u32; 2] = [6, 8];
/// Digits of every TOTP code the daemon checks: the configurable ones, and 7 from an
/// imported pam_oath enrollment (`HOTP/T30/7`).
pub const TOTP_DIGITS: std::ops::RangeInclusive<usize> = 6..=8;

/// Digits of one of our backup codes, shown as [`BACKUP_CODE_GROUPS`] (`12345-67890`).
/// Imported scratch codes keep their own length (google-authenticator's have 8).
pub const BACKUP_CODE_DIGITS: usize = 10;
pub const BACKUP_CODE_GROUPS: [usize; 2] = [5, 5];

/// Digits of an administrator's temporary code, shown as [`TEMPORARY_CODE_GROUPS`]
/// (`1234-5678-9012`).
pub const TEMPORARY_CODE_DIGITS: usize = 12;
pub const TEMPORARY_CODE_GROUPS: [usize; 3] = [4, 4, 4];

/// Digits of a code sent by the delivery channel (`SendCode`).
pub const SENT_CODE_DIGITS: usize = 6;

/// What may stand between groups of digits. The separator we print is the first.
pub const SEPARATORS: [char; 2] = ['-', ' '];

/// The ways a code may end a `forward_pass` answer (password and code typed as one), as groups
/// of digits joined by a dash: every TOTP length, a backup code and a temporary code, each
/// plain and as printed. Spaces are not among them: they may belong to the password.
pub const TYPED_SHAPES: [&[usize]; 7] = [
    &[6],
    &[7],
    &[8],
    &[BACKUP_CODE_DIGITS],
    &BACKUP_CODE_GROUPS,
    &[TEMPORARY_CODE_DIGITS],
    &TEMPORARY_CODE_GROUPS,
];

/// Whether `code` has the shape of a code: at most [`MAX_CODE_LEN`] bytes of ASCII digits and
/// [`SEPARATORS`], with at least one digit. Checked before any file or crypto work.
pub fn is_plausible_code(code: &str) -> bool {
    code.len() <= MAX_CODE_LEN
        && code.bytes().any(|b| b.is_ascii_digit())
        && code
            .chars()
            .all(|c| c.is_ascii_digit() || SEPARATORS.contains(&c))
}

/// The digits of a typed code: `12345-67890`, `12345 67890` and `1234567890` are one code.
pub fn normalize(code: &str) -> Zeroizing<String> {
    Zeroizing::new(code.chars().filter(char::is_ascii_digit).collect())
}

/// `1234567890` as `12345-67890`: groups of `size` joined by the first separator.
pub fn group(digits: &str, size: usize) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(digits.len() + digits.len() / size));
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && size > 0 && index % size == 0 {
            out.push(SEPARATORS[0]);
        }
        out.push(digit);
    }
    out
}

/// Whether normalized `digits` could be a TOTP code of `length` digits.
pub fn could_be_totp(digits: &str, length: usize) -> bool {
    TOTP_DIGITS.contains(&length) && is_digits(digits, length)
}

/// Whether normalized `digits` could be one of our backup codes.
pub fn could_be_backup_code(digits: &str) -> bool {
    is_digits(digits, BACKUP_CODE_DIGITS)
}

/// Whether normalized `digits` could be an administrator's temporary code.
pub fn could_be_temporary_code(digits: &str) -> bool {
    is_digits(digits, TEMPORARY_CODE_DIGITS)
}

/// Whether `text` is exactly `groups` of digits joined by single dashes, e.g. `[5, 5]`:
/// `12345-67890`.
pub fn has_shape(text: &str, groups: &[usize]) -> bool {
    let mut parts = text.split(SEPARATORS[0]);
    groups
        .iter()
        .all(|&size| parts.next().is_some_and(|part| is_digits(part, size)))
        && parts.next().is_none()
}

/// Where a code may begin at the end of `answer`: the byte offsets of every suffix that has
/// one of the [`TYPED_SHAPES`], shortest suffix first, each once.
pub fn code_suffix_starts(answer: &str) -> Vec<usize> {
    let mut starts: Vec<usize> = Vec::new();
    let mut shapes = TYPED_SHAPES.to_vec();
    shapes.sort_by_key(|groups| shape_len(groups));
    for groups in shapes {
        let Some(start) = answer.len().checked_sub(shape_len(groups)) else {
            continue;
        };
        if answer
            .get(start..)
            .is_some_and(|suffix| has_shape(suffix, groups))
            && !starts.contains(&start)
        {
            starts.push(start);
        }
    }
    starts
}

fn shape_len(groups: &[usize]) -> usize {
    groups.iter().sum::<usize>() + groups.len().saturating_sub(1)
}

fn is_digits(text: &str, length: usize) -> bool {
    text.len() == length && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plausible_codes() {
        for ok in [
            "123456",
            "12345-67890",
            "1234 5678 90",
            " 123456 ",
            "1234-5678-9012",
        ] {
            assert!(is_plausible_code(ok), "{ok}");
        }
        for bad in [
            "",
            "abcdef",
            "12345a",
            "---",
            &"1".repeat(33),
            "１２３",
            "12_34",
        ] {
            assert!(!is_plausible_code(bad), "{bad:?}");
        }
    }

    #[test]
    fn printed_codes_have_their_shapes() {
        let backup = group("1234567890", BACKUP_CODE_GROUPS[0]);
        assert_eq!(backup.as_str(), "12345-67890");
        assert!(has_shape(&backup, &BACKUP_CODE_GROUPS));
        let temporary = group("123456789012", TEMPORARY_CODE_GROUPS[0]);
        assert_eq!(temporary.as_str(), "1234-5678-9012");
        assert!(has_shape(&temporary, &TEMPORARY_CODE_GROUPS));
        assert!(could_be_backup_code(&normalize(&backup)));
        assert!(could_be_temporary_code(&normalize(&temporary)));
        assert!(is_plausible_code(&temporary) && temporary.len() <= MAX_CODE_LEN);
    }

    #[test]
    fn shapes() {
        assert!(could_be_totp("123456", 6) && could_be_totp("12345678", 8));
        assert!(!could_be_totp("123456", 8) && !could_be_totp("12345", 5));
        assert!(!could_be_backup_code("12345-67890"), "normalize first");
        assert!(!has_shape("12345-6789", &BACKUP_CODE_GROUPS));
        assert!(!has_shape("12345--67890", &BACKUP_CODE_GROUPS));
        assert!(!has_shape("12345-67890-", &BACKUP_CODE_GROUPS));
        for configured in CONFIGURABLE_TOTP_DIGITS {
            assert!(TOTP_DIGITS.contains(&(configured as usize)));
        }
    }

    #[test]
    fn suffixes_of_passwords_that_end_in_digits() {
        let split = |answer: &str| -> Vec<(String, String)> {
            code_suffix_starts(answer)
                .into_iter()
                .map(|at| (answer[..at].to_owned(), answer[at..].to_owned()))
                .collect()
        };
        assert_eq!(
            split("hunter2123456"),
            [("hunter2", "123456"), ("hunter", "2123456")].map(|(p, c)| (p.into(), c.into()))
        );
        assert_eq!(
            split("pass12345678"),
            [
                ("pass12", "345678"),
                ("pass1", "2345678"),
                ("pass", "12345678")
            ]
            .map(|(p, c)| (p.into(), c.into()))
        );
        assert_eq!(
            split("pw12345-67890"),
            [("pw".into(), "12345-67890".into())]
        );
        assert_eq!(
            split("pw1234-5678-9012"),
            [("pw".into(), "1234-5678-9012".into())]
        );
        assert_eq!(split("123456").len(), 1, "a code alone: an empty password");
        assert!(split("password").is_empty());
        assert!(
            split("pw 123456 ").is_empty(),
            "trailing space is the password's"
        );
        assert!(split("pé12345").is_empty());
        assert!(code_suffix_starts("").is_empty());
    }

    proptest! {
        /// Whatever is typed, a suffix start is a char boundary and the suffix normalizes to
        /// a length the daemon checks.
        #[test]
        fn every_suffix_is_a_code_the_daemon_checks(answer in "\\PC{0,12}[0-9 -]{0,16}") {
            for at in code_suffix_starts(&answer) {
                let suffix = answer.get(at..).expect("a char boundary");
                prop_assert!(is_plausible_code(suffix));
                let digits = normalize(suffix);
                prop_assert!(
                    TOTP_DIGITS.contains(&digits.len())
                        || could_be_backup_code(&digits)
                        || could_be_temporary_code(&digits),
                    "{suffix:?}"
                );
            }
        }

        /// Typing a code in groups changes nothing: it normalizes to the same digits.
        #[test]
        fn grouping_is_undone_by_normalizing(digits in "[0-9]{1,12}", size in 1usize..6) {
            let grouped = group(&digits, size);
            let normalized = normalize(&grouped);
            prop_assert_eq!(normalized.as_str(), digits.as_str());
            prop_assert!(is_plausible_code(&grouped));
        }
    }
}
