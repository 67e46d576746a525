//! `backup-codes` and `disable`: changes to one's own enrollment, authorized with a code.

use serde_json::json;
use twofactor_proto::Policy;

use super::{BackupCodesFile, Invoker, print_backup_codes, print_json, with_code};
use crate::cli::{BackupCodesArgs, DisableArgs};
use crate::client::Daemon;
use crate::error::CliError;
use crate::io::Io;

const CODE_QUESTION: &str = "Current code from the app, or a backup code: ";

pub fn backup_codes(
    args: &BackupCodesArgs,
    daemon: &dyn Daemon,
    me: &Invoker,
    io: &mut Io<'_>,
) -> Result<(), CliError> {
    let user = me.user_or_me(args.user.as_deref())?;
    let is_self = me.is(&user);
    let file = args
        .backup_codes_file
        .as_deref()
        .map(BackupCodesFile::create)
        .transpose()?;
    let status = daemon.status(&user)?;
    if !status.enrolled {
        return Err(not_enrolled(&user, is_self));
    }
    let regenerate = |code: &str| daemon.regenerate_backup_codes(&user, code);
    let codes = if is_self {
        with_code(io, args.json, CODE_QUESTION, regenerate)?
    } else {
        regenerate("")?
    };
    if args.json {
        print_json(io, &json!({ "user": user, "backup_codes": codes }))?;
    } else {
        tell!(
            io,
            "New backup codes for {user}; the previous ones no longer work."
        )?;
        say!(io)?;
        print_backup_codes(io, &codes)?;
    }
    if let Some(file) = file {
        let path = file.path().to_owned();
        file.write(&user, &codes)?;
        if !args.json {
            tell!(io, "They are also in {} (mode 0600).", path.display())?;
        }
    }
    Ok(())
}

pub fn disable(
    args: &DisableArgs,
    daemon: &dyn Daemon,
    me: &Invoker,
    io: &mut Io<'_>,
) -> Result<(), CliError> {
    let user = me.user_or_me(None)?;
    let status = daemon.status(&user)?;
    if !status.enrolled {
        return Err(not_enrolled(&user, true));
    }
    if status.policy == Policy::Required {
        // The daemon refuses too; saying it now spares asking for a code.
        return Err(CliError::Refused(format!(
            "not allowed: two-factor authentication is required for {user} (rule: {}); \
             only an administrator can change the policy",
            status.policy_source
        )));
    }
    with_code(io, args.json, CODE_QUESTION, |code| {
        daemon.disable(&user, code)
    })?;
    if args.json {
        print_json(io, &json!({ "user": user, "disabled": true }))
    } else {
        tell!(
            io,
            "Two-factor authentication is disabled for {user}; the key and backup codes are \
             deleted. Remove the account from your authenticator app."
        )
    }
}

fn not_enrolled(user: &str, is_self: bool) -> CliError {
    CliError::Refused(if is_self {
        format!("{user} is not enrolled: set it up with `twofactor enroll`")
    } else {
        format!("{user} is not enrolled")
    })
}
