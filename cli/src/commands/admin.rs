//! Administration: `reset`, `unlock`, `verify`. The daemon refuses non-administrators
//! (`verify` is also open to the user themself).

use serde_json::json;
use twofactor_proto::{LoginContext, VerifyOutcome};

use super::{print_json, valid_user};
use crate::cli::{ResetArgs, UnlockArgs, VerifyArgs};
use crate::client::Daemon;
use crate::error::CliError;
use crate::format::time;
use crate::io::Io;

/// The service name `verify` reports to the daemon (it shows in logs and last-use records).
pub const VERIFY_SERVICE: &str = "twofactor-cli";

pub fn reset(args: &ResetArgs, daemon: &dyn Daemon, io: &mut Io<'_>) -> Result<(), CliError> {
    let user = &args.user;
    valid_user(user)?;
    if !args.yes {
        io.note(format_args!(
            "This removes the two-factor enrollment, backup codes and lockout state of {user}."
        ));
        match io.ask("Type the user name to confirm: ")? {
            Some(answer) if answer.as_str() == user => {}
            Some(_) => {
                return Err(CliError::Refused(format!(
                    "not confirmed: the name typed is not {user}; nothing was changed"
                )));
            }
            None => {
                return Err(CliError::Refused(
                    "not confirmed: no answer on standard input; use --yes to reset without \
                     asking"
                        .into(),
                ));
            }
        }
    }
    daemon.reset_user(user)?;
    if args.json {
        return print_json(io, &json!({ "user": user, "reset": true }));
    }
    tell!(
        io,
        "Reset {user}: the enrollment, backup codes and lockout state are removed."
    )?;
    // Whether the user can still log in to enroll again depends on the policy.
    let status = daemon.status(user).ok();
    match status
        .as_ref()
        .map(|s| (s.policy.as_str(), s.policy_source.as_str()))
    {
        Some(("required", rule)) => {
            tell!(
                io,
                "{user} must use two-factor authentication (rule: {rule}) and cannot log in \
                 until enrolled again. Ways back in:"
            )?;
            tell!(
                io,
                "  - enroll {user} yourself: `twofactor enroll --user {user}`, with {user} there \
                 to scan the code;"
            )?;
            tell!(
                io,
                "  - give {user} a temporary code: `twofactor temp-code {user}`; {user} logs in \
                 with it, then runs `twofactor enroll`;"
            )?;
            tell!(
                io,
                "  - enrollment at login, where twofactord's [enrollment] at_login allows it."
            )
        }
        Some(("disabled", _)) => tell!(io, "The policy does not ask {user} for a second factor."),
        _ => tell!(
            io,
            "{user} can log in without a code and enroll again with `twofactor enroll`."
        ),
    }
}

pub fn unlock(args: &UnlockArgs, daemon: &dyn Daemon, io: &mut Io<'_>) -> Result<(), CliError> {
    let user = &args.user;
    valid_user(user)?;
    daemon.unlock_user(user)?;
    if args.json {
        print_json(io, &json!({ "user": user, "unlocked": true }))
    } else {
        tell!(
            io,
            "Unlocked {user}: logins are allowed again, and earlier failures no longer count \
             toward a delay or a lockout. `twofactor status {user}` still shows the failed \
             attempts since the last success: {user} is told of them at the next login."
        )
    }
}

fn outcome_name(outcome: VerifyOutcome) -> &'static str {
    match outcome {
        VerifyOutcome::Accepted => "accepted",
        VerifyOutcome::Rejected => "rejected",
        VerifyOutcome::Delayed => "delayed",
        VerifyOutcome::Locked => "locked",
    }
}

pub fn verify(args: &VerifyArgs, daemon: &dyn Daemon, io: &mut Io<'_>) -> Result<(), CliError> {
    let user = &args.user;
    valid_user(user)?;
    let code = io
        .read_line()?
        .ok_or_else(|| CliError::Usage("no code on standard input".into()))?;
    let context = LoginContext {
        service: VERIFY_SERVICE.into(),
        rhost: String::new(),
        tty: String::new(),
    };
    let reply = daemon.verify(user, &code, &context)?;
    let outcome = outcome_name(reply.outcome);
    if args.json {
        print_json(
            io,
            &json!({
                "user": user,
                "outcome": outcome,
                "backup_code_used": reply.backup_code_used,
                "backup_codes_left": reply.backup_codes_left,
                "clock_skew_seconds": reply.clock_skew_seconds,
                "retry_after_seconds": reply.retry_after_seconds,
                "failures_since_success": reply.failures_since_success,
                "last_failure_time": reply.last_failure_time,
                "code_replayed": reply.code_replayed,
            }),
        )?;
    } else {
        match reply.outcome {
            VerifyOutcome::Accepted => {
                let mut line = String::from("accepted");
                if reply.backup_code_used {
                    line.push_str(&format!(
                        " (a backup code; {} left)",
                        reply.backup_codes_left
                    ));
                }
                if reply.failures_since_success > 0 {
                    line.push_str(&format!(
                        "; {} failed attempts before, the last at {}",
                        reply.failures_since_success,
                        time(reply.last_failure_time)
                    ));
                }
                say!(io, "{line}")?;
            }
            VerifyOutcome::Rejected if reply.clock_skew_seconds != 0 => say!(
                io,
                "rejected (the code matches a clock {} s off: check the device's clock)",
                reply.clock_skew_seconds
            )?,
            VerifyOutcome::Rejected if reply.code_replayed => say!(
                io,
                "rejected (the code was already used: wait for the next one)"
            )?,
            VerifyOutcome::Rejected => say!(io, "rejected")?,
            VerifyOutcome::Delayed => say!(
                io,
                "delayed: too many failures, try again in {} s",
                reply.retry_after_seconds
            )?,
            VerifyOutcome::Locked => say!(
                io,
                "locked: an administrator can run `twofactor unlock {user}`"
            )?,
        }
    }
    if reply.outcome == VerifyOutcome::Accepted {
        Ok(())
    } else {
        Err(CliError::Reported)
    }
}

#[cfg(test)]
#[path = "admin_tests.rs"]
mod tests;
