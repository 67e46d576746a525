//! Reporting: `status`, `list`, `policy`.

use twofactor_proto::{BACKUP_CODES_LOW, Policy, ThrottledSource, UserStatus};

use super::{Invoker, print_json};
use crate::cli::{ListArgs, PolicyArgs, StatusArgs};
use crate::client::Daemon;
use crate::error::CliError;
use crate::format::{duration, table, time, yes_no};
use crate::io::Io;

/// Backup codes left at which `status` suggests making new ones.
const FEW_CODES: u32 = 3;

pub fn status(
    args: &StatusArgs,
    daemon: &dyn Daemon,
    me: &Invoker,
    io: &mut Io<'_>,
) -> Result<(), CliError> {
    let user = me.user_or_me(args.user.as_deref())?;
    let status = daemon.status(&user)?;
    let throttled = daemon.throttled_sources(&user)?;
    if args.json {
        let mut value = to_json(&status)?;
        value["throttled_sources"] = serde_json::to_value(&throttled)
            .map_err(|error| CliError::System(format!("cannot format the status: {error}")))?;
        return print_json(io, &value);
    }
    let user_flag = if me.is(&user) {
        String::new()
    } else {
        format!(" --user {user}")
    };
    let mut rows: Vec<(&str, String)> = vec![
        ("User", status.user.clone()),
        (
            "Enrolled",
            if status.enrolled && status.enrolled_at > 0 {
                format!("yes, since {}", time(status.enrolled_at))
            } else {
                yes_no(status.enrolled).into()
            },
        ),
        (
            "Policy",
            format!("{} (rule: {})", status.policy, status.policy_source),
        ),
    ];
    let in_grace = !status.enrolled && status.grace_ends_at > now();
    if !status.enrolled && status.grace_ends_at > 0 {
        rows.push((
            "Grace period",
            if in_grace {
                format!("until {}", time(status.grace_ends_at))
            } else {
                format!("ended {}", time(status.grace_ends_at))
            },
        ));
    }
    if status.enrolled {
        rows.push(("Backup codes left", codes_left(&status)));
        rows.push(("Locked", locked(&status)));
        rows.push(("Failed attempts", failed_attempts(&status)));
        for source in &throttled {
            rows.push(("Throttled source", throttled_source(source)));
        }
        rows.push(("Last success", last_use(&status)));
    }
    if status.temporary_code_expires_at > 0 {
        rows.push((
            "Temporary code",
            format!(
                "issued, unused, expires {}",
                time(status.temporary_code_expires_at)
            ),
        ));
    }
    rows.push((
        "Code delivery",
        if status.delivery_enabled {
            "on (codes by another channel allowed)".into()
        } else {
            "off".into()
        },
    ));
    if !status.problem.is_empty() {
        rows.push(("Problem", status.problem.clone()));
    }
    for (label, value) in rows {
        say!(io, "{:<18} {value}", format!("{label}:"))?;
    }
    let hint = if !status.problem.is_empty() {
        Some(format!(
            "An administrator can clear this with `twofactor reset {user}`."
        ))
    } else if status.locked && status.retry_after_seconds > 0 {
        Some(format!(
            "Too many failed attempts in a row: logins from everywhere are refused for {}, or \
             until an administrator runs `twofactor unlock {user}`.",
            duration(status.retry_after_seconds)
        ))
    } else if status.locked {
        Some(format!(
            "Logins are refused until an administrator runs `twofactor unlock {user}`."
        ))
    } else if status.policy == Policy::Required && in_grace {
        Some(format!(
            "Two-factor authentication is required from {}: set it up before then with \
             `twofactor enroll{user_flag}`.",
            time(status.grace_ends_at)
        ))
    } else if !status.enrolled && status.policy == Policy::Required {
        Some(format!(
            "Two-factor authentication is required: set it up with `twofactor enroll{user_flag}`."
        ))
    } else if !status.enrolled && status.policy == Policy::Optional {
        Some(format!("Set it up with `twofactor enroll{user_flag}`."))
    } else if status.enrolled && status.backup_codes_left == 0 {
        Some(format!(
            "No backup codes are left: make a new set with `twofactor backup-codes{user_flag}`."
        ))
    } else if status.enrolled && status.backup_codes_left <= BACKUP_CODES_LOW {
        Some(format!(
            "Warning: only {} backup code left: make a new set now with `twofactor \
             backup-codes{user_flag}`.",
            status.backup_codes_left
        ))
    } else if status.enrolled && status.backup_codes_left < FEW_CODES {
        Some(format!(
            "Few backup codes left: make a new set with `twofactor backup-codes{user_flag}`."
        ))
    } else {
        None
    };
    if let Some(hint) = hint {
        say!(io)?;
        say!(io, "{hint}")?;
    }
    Ok(())
}

/// `2024-05-06 07:08:09 UTC, sshd from 192.0.2.1`, or `never`.
fn last_use(status: &UserStatus) -> String {
    if status.last_success_time == 0 {
        return "never".into();
    }
    let mut text = time(status.last_success_time);
    if !status.last_success_service.is_empty() {
        text.push_str(&format!(", {}", status.last_success_service));
    }
    if !status.last_success_rhost.is_empty() {
        text.push_str(&format!(" from {}", status.last_success_rhost));
    }
    text
}

/// `3 since the last success, ...`: not what locks (an unlock clears that), but what the user
/// is told at the next login.
fn failed_attempts(status: &UserStatus) -> String {
    match status.failures_since_success {
        0 => "none since the last success".into(),
        failures => format!(
            "{failures} since the last success (the user is told at the next login; an \
             unlock does not clear this)"
        ),
    }
}

/// What the ENROLLED column says; those about to be locked out stand out.
fn enrolled_cell(status: &UserStatus) -> String {
    if status.enrolled {
        return "yes".into();
    }
    if status.policy != Policy::Required {
        return "no".into();
    }
    let rule = &status.policy_source;
    if status.grace_ends_at > now() {
        format!(
            "no (required: {rule}; grace until {})",
            time(status.grace_ends_at)
        )
    } else {
        format!("NOT ENROLLED (required: {rule})")
    }
}

/// `no`, `yes, for 3 h`, `yes, until an administrator unlocks`.
fn locked(status: &UserStatus) -> String {
    match (status.locked, status.retry_after_seconds) {
        (false, _) => "no".into(),
        (true, 0) => "yes, until an administrator unlocks".into(),
        (true, seconds) => format!("yes, for {}", duration(seconds)),
    }
}

/// `192.0.2.7: 5 failures, next attempt in 16 s`.
fn throttled_source(source: &ThrottledSource) -> String {
    let failures = match source.failures {
        1 => "1 failure".to_string(),
        n => format!("{n} failures"),
    };
    if source.retry_after_seconds > 0 {
        format!(
            "{}: {failures}, next attempt in {}",
            source.source,
            duration(source.retry_after_seconds)
        )
    } else {
        format!("{}: {failures}", source.source)
    }
}

/// Required, not enrolled, no grace period under way: such a user cannot log in.
fn locked_out(status: &UserStatus) -> bool {
    !status.enrolled && status.policy == Policy::Required && status.grace_ends_at <= now()
}

/// `10`, `1 (running low)`, `0 (none left)`.
fn codes_left(status: &UserStatus) -> String {
    match status.backup_codes_left {
        0 => "0 (none left)".into(),
        left if left <= BACKUP_CODES_LOW => format!("{left} (running low)"),
        left => left.to_string(),
    }
}

fn codes_low(status: &UserStatus) -> bool {
    status.enrolled && status.problem.is_empty() && status.backup_codes_left <= BACKUP_CODES_LOW
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// The daemon's fields, plus `backup_codes_low` (enrolled with at most
/// [`BACKUP_CODES_LOW`] backup codes left).
fn to_json(status: &UserStatus) -> Result<serde_json::Value, CliError> {
    let mut value = serde_json::to_value(status)
        .map_err(|error| CliError::System(format!("cannot format the status: {error}")))?;
    value["backup_codes_low"] = serde_json::Value::Bool(codes_low(status));
    Ok(value)
}

pub fn list(args: &ListArgs, daemon: &dyn Daemon, io: &mut Io<'_>) -> Result<(), CliError> {
    let users = daemon.list_users()?;
    if args.json {
        let values = users.iter().map(to_json).collect::<Result<Vec<_>, _>>()?;
        return print_json(io, &serde_json::Value::Array(values));
    }
    if users.is_empty() {
        return say!(
            io,
            "No user is enrolled, named in the policy, or in a group it requires."
        );
    }
    let mut rows = vec![
        [
            "USER",
            "ENROLLED",
            "POLICY",
            "CODES LEFT",
            "LOCKED",
            "LAST USE",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for status in &users {
        rows.push(vec![
            status.user.clone(),
            enrolled_cell(status),
            status.policy.to_string(),
            if status.enrolled {
                status.backup_codes_left.to_string()
            } else {
                "-".into()
            },
            yes_no(status.locked).into(),
            if status.enrolled {
                last_use(status)
            } else {
                "-".into()
            },
        ]);
    }
    say!(io, "{}", table(&rows))?;
    for status in &users {
        let user = &status.user;
        if !status.problem.is_empty() {
            say!(io, "problem: {user}: {}", status.problem)?;
        }
        if !status.enrolled && status.grace_ends_at > now() {
            say!(
                io,
                "grace: {user} must enroll by {}",
                time(status.grace_ends_at)
            )?;
        } else if !status.enrolled && status.grace_ends_at > 0 {
            say!(
                io,
                "grace: the grace period of {user} ended {}",
                time(status.grace_ends_at)
            )?;
        }
        if status.temporary_code_expires_at > 0 {
            say!(
                io,
                "temporary code: {user}, unused, expires {}",
                time(status.temporary_code_expires_at)
            )?;
        }
        if codes_low(status) {
            say!(
                io,
                "backup codes: {user} has {} left",
                status.backup_codes_left
            )?;
        }
        if status.delivery_enabled {
            say!(io, "delivery: on for {user}")?;
        }
    }
    let locked_out = users.iter().filter(|s| locked_out(s)).count();
    if locked_out > 0 {
        say!(
            io,
            "{locked_out} required user(s) NOT ENROLLED cannot log in: enroll them with \
             `twofactor enroll --user NAME`, or give them a temporary code with `twofactor \
             temp-code NAME`."
        )?;
    }
    Ok(())
}

pub fn policy(
    args: &PolicyArgs,
    daemon: &dyn Daemon,
    me: &Invoker,
    io: &mut Io<'_>,
) -> Result<(), CliError> {
    let user = me.user_or_me(args.user.as_deref())?;
    let explanation = daemon.explain_policy(&user)?;
    if args.json {
        let value = serde_json::to_value(&explanation)
            .map_err(|error| CliError::System(format!("cannot format the policy: {error}")))?;
        return print_json(io, &value);
    }
    say!(io, "{}: {}", explanation.user, explanation.policy)?;
    say!(io, "Rule:  {}", explanation.explanation)
}
