//! Everything the module tells the user, in one place.

use std::fmt::Write as _;

use time::{OffsetDateTime, UtcOffset};
use twofactor_proto::EnrollmentOffer;
use zeroize::Zeroizing;

/// The code prompt, unless `prompt=` says otherwise.
pub const CODE_PROMPT: &str = "Verification code or backup code: ";
/// The one prompt of `forward_pass`.
pub const FORWARD_PASS_PROMPT: &str = "Password & verification code: ";

/// A wrong code, and every answer that is not a code: the same text whatever the reason, so
/// that the answer does not tell an unknown user from a known one.
pub const WRONG_CODE: &str = "Wrong verification code.";
/// A right code whose time step was already used (by this login or on another host).
pub const CODE_REPLAYED: &str = "This code was already used. Wait for the next one.";
/// An empty answer.
pub const NO_CODE: &str = "No verification code entered.";
/// `Deny` without a message from the daemon.
pub const DENIED: &str = "Two-factor authentication is required for this account but is not set up. Ask an administrator.";
/// `require_publickey`, and sshd reports no key on this connection.
pub const PUBLICKEY_REQUIRED: &str = "This login needs an SSH key first.";
/// The daemon could not be asked.
pub const UNAVAILABLE: &str =
    "Two-factor authentication is unavailable right now. Try again later, or ask an administrator.";
/// The daemon refused the call with a typed error that has no better text.
pub const FAILED: &str = "Two-factor authentication failed.";
/// `Locked`.
pub const LOCKED: &str = "Too many failed attempts: verification codes for this account are locked. Ask an administrator to unlock it.";

/// The code prompt when the daemon can send a code (`can_send_code`), unless `prompt=` says
/// otherwise.
pub const SEND_PROMPT: &str =
    "Verification code or backup code (or press Enter to have a code sent): ";
/// A code was sent, but could not be: why, when the daemon gives no better text.
pub const SEND_FAILED: &str = "No code could be sent.";
/// Sending failed on the daemon's side (the delivery program failed).
pub const SEND_UNAVAILABLE: &str =
    "The code could not be sent. Try again later, or ask an administrator.";

/// The prompt for the code that confirms an enrollment at login.
pub const ENROLL_CODE_PROMPT: &str = "Code from your authenticator app: ";
/// `Enroll`, but this login cannot show the key or ask for a code (`use_first_pass`,
/// `forward_pass`, `PAM_SILENT`).
pub const ENROLL_NOT_HERE: &str = "Two-factor authentication is required for this account but is not set up, and it cannot be set up during this login. Run `twofactor enroll` in a session that is already logged in, or ask an administrator.";
/// The pending enrollment expired (or was replaced by another login) before it was confirmed.
pub const ENROLL_EXPIRED: &str =
    "This enrollment has expired. Log in again to start over with a new key.";
/// Every try to confirm the enrollment was wrong.
pub const ENROLL_GAVE_UP: &str =
    "Two-factor authentication was not set up. Log in again to start over with a new key.";
/// After the backup codes of an enrollment at login.
pub const ENROLLED: &str = "Two-factor authentication is now set up. Your backup codes:";
/// After backup codes were shown: the user acknowledges them.
pub const STORED_PROMPT: &str = "Press Enter once you have stored your backup codes: ";

/// `prompt_after_notices`: the last prompt, after messages that would otherwise follow it.
pub const NOTICES_READ_PROMPT: &str = "Press Enter to continue: ";

/// After an accepted temporary code from an administrator.
pub const TEMPORARY_CODE_USED: &str = "You logged in with a temporary code from an administrator. Set up two-factor on your new device now with `twofactor enroll --replace`.";
/// After an accepted code, when the last backup code is gone (`offer_new_backup_codes`).
pub const OFFER_NEW_BACKUP_CODES: &str =
    "You have no backup codes left. Create a new set now? [y/N] ";
/// No backup codes are left, and this login may not ask (`use_first_pass`, `forward_pass`).
pub const NO_BACKUP_CODES_LEFT: &str =
    "You have no backup codes left. Run `twofactor backup-codes` to create new ones.";
/// The offer was declined.
pub const NO_NEW_BACKUP_CODES: &str = "Run `twofactor backup-codes` to create new ones.";
/// The offer was accepted but the daemon could not make them.
pub const NEW_BACKUP_CODES_FAILED: &str =
    "New backup codes could not be created. Run `twofactor backup-codes` to create them.";
/// Before a new set of backup codes.
pub const NEW_BACKUP_CODES: &str = "Your new backup codes (the old ones no longer work):";

/// After `SendCode`.
pub fn code_sent(seconds_valid: u64) -> String {
    format!(
        "A code was sent to you; it is valid for {}.",
        wait_time(seconds_valid)
    )
}

/// `SendCode` refused with the daemon's reason (too many codes sent lately, or locked).
pub fn send_refused(reason: &str) -> String {
    let reason: String = reason
        .trim()
        .trim_end_matches('.')
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if reason.is_empty() {
        return SEND_FAILED.to_owned();
    }
    format!("No code could be sent: {reason}.")
}

/// Whether an answer to a `[y/N]` question is yes.
pub fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Everything the user needs to add the account to an app, as **one** message (sshd folds
/// info messages into the next prompt's text): the daemon's `intro`, the QR code if it could
/// be drawn, and the key in groups of four with its parameters.
pub fn enrollment_offer(
    intro: &str,
    offer: &EnrollmentOffer,
    qr: Option<&str>,
) -> Zeroizing<String> {
    let key = twofactor_qr::group_key(&offer.secret_base32);
    let qr = qr.map(|drawing| drawing.trim_end_matches('\n'));
    // Room for everything, so the text holding the key is never reallocated (and an unwiped
    // copy left behind).
    let capacity = intro.len()
        + qr.map_or(0, str::len)
        + key.len()
        + offer.label.len()
        + offer.algorithm.as_str().len()
        + 1024;
    let mut text = Zeroizing::new(String::with_capacity(capacity));
    if !intro.is_empty() {
        text.push_str(intro);
        text.push_str("\n\n");
    }
    match qr {
        Some(drawing) => {
            text.push_str("Scan this QR code with your authenticator app:\n\n");
            text.push_str(drawing);
            text.push_str("\n\nOr add the account by hand:\n");
        }
        None => text.push_str("Add this account to your authenticator app:\n"),
    }
    let _ = write!(
        text,
        "  Account: {}\n  Key:     {}\n  Type:    time-based, {}, {} digits, every {} seconds\n\n\
         Then enter the code the app shows, within {}.",
        offer.label,
        key.as_str(),
        offer.algorithm,
        offer.digits,
        offer.period,
        wait_time(offer.expires_in_seconds)
    );
    text
}

/// Backup codes under `header`, two to a line, with how to keep them, as one message.
pub fn backup_codes(header: &str, codes: &[String]) -> Zeroizing<String> {
    let capacity = header.len() + codes.iter().map(|code| code.len() + 5).sum::<usize>() + 256;
    let mut text = Zeroizing::new(String::with_capacity(capacity));
    text.push_str(header);
    text.push_str("\n\n");
    for pair in codes.chunks(2) {
        text.push_str("  ");
        for (index, code) in pair.iter().enumerate() {
            if index > 0 {
                text.push_str("   ");
            }
            text.push_str(code);
        }
        text.push('\n');
    }
    text.push_str(
        "\nEach works once, in place of a code from your app (for example if you lose your \
         phone). Store them somewhere safe now: they are not shown again.",
    );
    text
}

/// `Delayed`.
pub fn delayed(retry_after_seconds: u64) -> String {
    format!(
        "Too many failed attempts. Try again in {}.",
        wait_time(retry_after_seconds)
    )
}

/// The hint for a rejected code that would match the device's clock `skew_seconds` off
/// (positive: the device is ahead of the server), or `None` without skew.
pub fn clock_skew_hint(skew_seconds: i64) -> Option<String> {
    if skew_seconds == 0 {
        return None;
    }
    let direction = if skew_seconds > 0 { "ahead" } else { "behind" };
    Some(format!(
        "Your device's clock seems to be about {} {direction}. Check its date and time settings.",
        rough_amount(skew_seconds.unsigned_abs())
    ))
}

/// After an accepted backup code: how many are left, with a warning near the end.
pub fn backup_code_used(left: u32) -> String {
    match left {
        0 => "Warning: a backup code was used and none are left. Run `twofactor backup-codes` now to get new ones.".to_owned(),
        1 => "Warning: a backup code was used and only 1 is left. Run `twofactor backup-codes` to get new ones.".to_owned(),
        _ => format!("A backup code was used; {left} backup codes are left."),
    }
}

/// After an accepted code: the failed attempts since the last success, if any.
pub fn failures_since_success(
    failures: u32,
    last_failure_time: u64,
    local_offset: fn(u64) -> UtcOffset,
) -> Option<String> {
    if failures == 0 {
        return None;
    }
    let when = (last_failure_time != 0)
        .then(|| format_time(last_failure_time, local_offset(last_failure_time)));
    Some(match (failures, when) {
        (1, Some(when)) => format!("1 failed attempt since your last login, at {when}."),
        (1, None) => "1 failed attempt since your last login.".to_owned(),
        (n, Some(when)) => {
            format!("{n} failed attempts since your last login, the last at {when}.")
        }
        (n, None) => format!("{n} failed attempts since your last login."),
    })
}

/// `2024-05-01 14:03 +02:00`, or `... UTC` at offset zero.
pub fn format_time(unix_seconds: u64, offset: UtcOffset) -> String {
    let shown = i64::try_from(unix_seconds)
        .ok()
        .and_then(|seconds| OffsetDateTime::from_unix_timestamp(seconds).ok())
        .and_then(|utc| utc.checked_to_offset(offset));
    let Some(t) = shown else {
        return format!("@{unix_seconds}");
    };
    let zone = if offset.is_utc() {
        "UTC".to_owned()
    } else {
        let sign = if offset.is_negative() { '-' } else { '+' };
        format!(
            "{sign}{:02}:{:02}",
            offset.whole_hours().unsigned_abs(),
            offset.minutes_past_hour().unsigned_abs()
        )
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} {zone}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// The local UTC offset at `unix_seconds`, or UTC if it cannot be known (the `time` crate
/// refuses in a multi-threaded process, where reading the time zone is not safe).
pub fn local_offset_at(unix_seconds: u64) -> UtcOffset {
    i64::try_from(unix_seconds)
        .ok()
        .and_then(|seconds| OffsetDateTime::from_unix_timestamp(seconds).ok())
        .and_then(|t| UtcOffset::local_offset_at(t).ok())
        .unwrap_or(UtcOffset::UTC)
}

/// A wait, rounded up so the user never retries too early: `1 second`, `40 seconds`,
/// `3 minutes`, `2 hours 5 minutes`.
fn wait_time(seconds: u64) -> String {
    fn unit(n: u64, one: &str) -> String {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {one}s")
        }
    }
    if seconds < 60 {
        return unit(seconds.max(1), "second");
    }
    let minutes = seconds.div_ceil(60);
    if minutes < 60 {
        return unit(minutes, "minute");
    }
    let (hours, minutes) = (minutes / 60, minutes % 60);
    if minutes == 0 {
        unit(hours, "hour")
    } else {
        format!("{} {}", unit(hours, "hour"), unit(minutes, "minute"))
    }
}

/// An approximate amount of time: `90 s`, `5 min`, `3 h`, `2 days`.
fn rough_amount(seconds: u64) -> String {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    let rounded = |unit: u64| (seconds + unit / 2) / unit;
    if seconds < 2 * MINUTE {
        format!("{seconds} s")
    } else if seconds < 2 * HOUR {
        format!("{} min", rounded(MINUTE))
    } else if seconds < 2 * DAY {
        format!("{} h", rounded(HOUR))
    } else {
        format!("{} days", rounded(DAY))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_algorithm_newer_than_the_module_is_shown_by_its_name() {
        let offer = EnrollmentOffer {
            otpauth_uri: "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP".into(),
            secret_base32: "JBSWY3DPEHPK3PXP".into(),
            label: "host:alice@host".into(),
            issuer: "host".into(),
            algorithm: twofactor_proto::OrUnknown::from_name("SHA3-256"),
            digits: 8,
            period: 60,
            expires_in_seconds: 600,
        };
        let text = enrollment_offer("", &offer, None);
        assert!(
            text.contains("Type:    time-based, SHA3-256, 8 digits, every 60 seconds"),
            "{}",
            text.as_str()
        );
    }

    #[test]
    fn skew_says_ahead_or_behind() {
        assert_eq!(clock_skew_hint(0), None);
        assert_eq!(
            clock_skew_hint(90).unwrap(),
            "Your device's clock seems to be about 90 s ahead. Check its date and time settings."
        );
        assert_eq!(
            clock_skew_hint(-90).unwrap(),
            "Your device's clock seems to be about 90 s behind. Check its date and time settings."
        );
        assert!(
            clock_skew_hint(-330)
                .unwrap()
                .contains("about 6 min behind")
        );
        assert!(
            clock_skew_hint(3 * 3600)
                .unwrap()
                .contains("about 3 h ahead")
        );
        assert!(clock_skew_hint(i64::MIN).unwrap().contains("days behind"));
    }

    #[test]
    fn waits_round_up() {
        assert_eq!(wait_time(0), "1 second");
        assert_eq!(wait_time(1), "1 second");
        assert_eq!(wait_time(45), "45 seconds");
        assert_eq!(wait_time(60), "1 minute");
        assert_eq!(wait_time(61), "2 minutes");
        assert_eq!(wait_time(3600), "1 hour");
        assert_eq!(wait_time(3601), "1 hour 1 minute");
        assert_eq!(wait_time(2 * 3600 + 300), "2 hours 5 minutes");
        assert!(!wait_time(u64::MAX).is_empty());
        assert_eq!(
            delayed(30),
            "Too many failed attempts. Try again in 30 seconds."
        );
    }

    #[test]
    fn backup_code_messages() {
        assert_eq!(
            backup_code_used(7),
            "A backup code was used; 7 backup codes are left."
        );
        assert!(backup_code_used(1).starts_with("Warning: "));
        assert!(backup_code_used(1).contains("only 1 is left"));
        assert!(backup_code_used(1).contains("twofactor backup-codes"));
        assert!(backup_code_used(0).contains("none are left"));
        assert!(backup_code_used(0).contains("twofactor backup-codes"));
    }

    #[test]
    fn times() {
        // 2024-05-01 12:34:56 UTC
        let t = 1_714_566_896;
        assert_eq!(format_time(t, UtcOffset::UTC), "2024-05-01 12:34 UTC");
        let plus_two = UtcOffset::from_hms(2, 0, 0).unwrap();
        assert_eq!(format_time(t, plus_two), "2024-05-01 14:34 +02:00");
        let minus = UtcOffset::from_hms(-3, -30, 0).unwrap();
        assert_eq!(format_time(t, minus), "2024-05-01 09:04 -03:30");
        assert_eq!(
            format_time(u64::MAX, UtcOffset::UTC),
            format!("@{}", u64::MAX)
        );
    }

    #[test]
    fn failures() {
        let utc = |_| UtcOffset::UTC;
        assert_eq!(failures_since_success(0, 0, utc), None);
        assert_eq!(
            failures_since_success(3, 1_714_566_896, utc).unwrap(),
            "3 failed attempts since your last login, the last at 2024-05-01 12:34 UTC."
        );
        assert_eq!(
            failures_since_success(1, 1_714_566_896, utc).unwrap(),
            "1 failed attempt since your last login, at 2024-05-01 12:34 UTC."
        );
        assert_eq!(
            failures_since_success(2, 0, utc).unwrap(),
            "2 failed attempts since your last login."
        );
    }

    #[test]
    fn local_offset_never_fails() {
        // Whatever the machine's zone, and in this multi-threaded test process (where the
        // `time` crate refuses to read it), an offset comes back.
        let _ = local_offset_at(1_714_566_896);
        let _ = local_offset_at(u64::MAX);
    }
}
