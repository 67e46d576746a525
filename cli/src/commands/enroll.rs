//! `twofactor enroll`: begin an enrollment, show the key, confirm it with a code from the new
//! device, show the backup codes. Begin and confirm go over the same connection: the daemon
//! ties a pending enrollment to the connection that began it.

use serde_json::json;
use twofactor_proto::{EnrollmentOffer, Error as DaemonError, codes};
use zeroize::Zeroize;

use super::{BackupCodesFile, Invoker, print_backup_codes, print_json, with_code};
use crate::cli::EnrollArgs;
use crate::client::Daemon;
use crate::error::CliError;
use crate::io::Io;
use crate::terminal::wrap;
use twofactor_qr::Background;

mod screen;

/// The offer, wiped when dropped: it holds the secret.
struct Offer(EnrollmentOffer);

impl Drop for Offer {
    fn drop(&mut self) {
        self.0.otpauth_uri.zeroize();
        self.0.secret_base32.zeroize();
    }
}

pub fn enroll(
    args: &EnrollArgs,
    daemon: &dyn Daemon,
    me: &Invoker,
    io: &mut Io<'_>,
) -> Result<(), CliError> {
    let user = me.user_or_me(args.user.as_deref())?;
    let is_self = me.is(&user);
    let user_flag = if is_self {
        String::new()
    } else {
        format!(" --user {user}")
    };
    // Before anything changes, so that a file problem cannot strand the new codes.
    let file = args
        .backup_codes_file
        .as_deref()
        .map(BackupCodesFile::create)
        .transpose()?;

    // Replacing one's own enrollment is authorized with a current code; an administrator
    // provisioning someone else is not asked.
    let needs_code = args.replace && is_self && daemon.status(&user)?.enrolled;
    let begin = |code: &str| daemon.begin_enrollment(&user, args.replace, code);
    // For some minutes after a login with a temporary code the daemon lets the user replace
    // without a current code (the lost device cannot give one). It refuses an empty code as
    // malformed before counting any failure, so asking it first costs nothing. With --json the
    // current-code line is always read, as documented (the daemon then ignores it).
    let without_code = if needs_code && !args.json {
        match begin("") {
            Ok(offer) => Some(offer),
            Err(DaemonError::InvalidInput(_)) => None,
            Err(error) => return Err(error.into()),
        }
    } else {
        None
    };
    // A temporary code from an administrator is a current code too; it is spent here.
    let mut temporary_spent = false;
    // Rows already on the screen above the offer, which must fit with it.
    let mut rows_above = 0;
    let offer = if let Some(offer) = without_code {
        if !args.json {
            let note = format!(
                "Replacing the enrollment of {user}: no current code is needed right after a \
                 login with a temporary code. The current enrollment stays active until the new \
                 device is confirmed."
            );
            rows_above += wrap(&note, io.size().columns).lines().count();
            tell!(io, "{note}")?;
        }
        offer
    } else if needs_code {
        if !args.json {
            let note = format!(
                "Replacing the enrollment of {user}: the current one stays active until the new \
                 device is confirmed."
            );
            // And the line of the question for the current code.
            rows_above += wrap(&note, io.size().columns).lines().count() + 1;
            tell!(io, "{note}")?;
        }
        with_code(
            io,
            args.json,
            "Current code (from the old device), a backup code or a temporary code: ",
            |code| {
                let offer = begin(code)?;
                temporary_spent = is_temporary_code(code);
                Ok(offer)
            },
        )?
    } else {
        begin("").map_err(|error| match error {
            DaemonError::AlreadyEnrolled(_) => CliError::Refused(format!(
                "{user} is already enrolled: to move to a new device, run `twofactor enroll \
                 --replace{user_flag}`"
            )),
            other => other.into(),
        })?
    };
    let offer = Offer(offer);
    let spent_hint = if temporary_spent {
        "; the temporary code is spent: ask an administrator for a new one"
    } else {
        ""
    };

    let confirm = |code: &str| daemon.confirm_enrollment(&user, code);
    let codes = if args.json {
        print_json(
            io,
            &json!({
                "user": user,
                "otpauth_uri": offer.0.otpauth_uri,
                "secret": offer.0.secret_base32,
                "label": offer.0.label,
                "issuer": offer.0.issuer,
                "algorithm": offer.0.algorithm,
                "digits": offer.0.digits,
                "period": offer.0.period,
                "expires_in_seconds": offer.0.expires_in_seconds,
            }),
        )?;
        let codes = with_code(io, true, "", confirm).map_err(|error| match error {
            CliError::Refused(message) => CliError::Refused(format!("{message}{spent_hint}")),
            other => other,
        })?;
        print_json(io, &json!({ "user": user, "backup_codes": codes }))?;
        codes
    } else {
        show_offer(io, &offer.0, args, &user_flag, rows_above)?;
        let question = format!("Enter the {}-digit code the app shows: ", offer.0.digits);
        let codes = with_code(io, false, &question, confirm).map_err(|error| match error {
            CliError::Refused(message) => CliError::Refused(format!(
                "{message}; the enrollment was not confirmed: run `twofactor enroll{}{user_flag}` \
                 again{spent_hint}",
                if args.replace { " --replace" } else { "" }
            )),
            other => other,
        })?;
        say!(io)?;
        tell!(
            io,
            "The device is confirmed: two-factor authentication is set up for {user}."
        )?;
        say!(io)?;
        print_backup_codes(io, &codes)?;
        codes
    };
    drop(offer);

    let mut outcome = Ok(());
    if let Some(file) = file {
        let path = file.path().to_owned();
        match file.write(&user, &codes) {
            Ok(()) if !args.json => tell!(io, "They are also in {} (mode 0600).", path.display())?,
            Ok(()) => {}
            Err(error) => outcome = Err(error),
        }
    }
    if !args.json {
        confirm_stored(io)?;
        let status = if is_self {
            "twofactor status".to_owned()
        } else {
            format!("twofactor status {user}")
        };
        say!(io)?;
        tell!(
            io,
            "Enrolled: from now on, logins of {user} that use two-factor authentication ask for \
             a code from the app (or a backup code). `{status}` shows the enrollment."
        )?;
    }
    outcome
}

/// Whether `code` has the shape of an administrator's temporary code.
fn is_temporary_code(code: &str) -> bool {
    codes::could_be_temporary_code(&codes::normalize(code))
}

fn show_offer(
    io: &mut Io<'_>,
    offer: &EnrollmentOffer,
    args: &EnrollArgs,
    user_flag: &str,
    rows_above: usize,
) -> Result<(), CliError> {
    let background = match (args.no_qr, args.qr_invert) {
        (true, _) => None,
        (false, false) => Some(Background::Dark),
        (false, true) => Some(Background::Light),
    };
    let replace_flag = if args.replace { " --replace" } else { "" };
    let invert_hint = if args.qr_invert {
        format!(
            "Drawn for a light background (`twofactor enroll{replace_flag}{user_flag}` draws it for a dark one)."
        )
    } else {
        format!("Light background? Use `twofactor enroll{replace_flag}{user_flag} --qr-invert`.")
    };
    let screen = screen::offer_screen(offer, background, &invert_hint, io.size(), rows_above);
    if screen.qr_impossible {
        io.note(format_args!("No QR code: the key is too long for one."));
    }
    say!(io, "{}", screen.lines.as_str())?;
    if let Some(qr) = screen.qr_after {
        let question = format!(
            "Press Enter to show the QR code ({} lines), or type n to go on without it: ",
            qr.rows
        );
        if io.ask(&question)?.is_some_and(|answer| answer.is_empty()) {
            say!(io, "{}", qr.drawing.as_str())?;
            tell!(io, "{invert_hint}")?;
        }
    }
    Ok(())
}

/// Ask until the user types `yes`. At end of input the codes were still shown: warn, succeed.
fn confirm_stored(io: &mut Io<'_>) -> Result<(), CliError> {
    loop {
        match io.ask("Type yes once you have stored the backup codes: ")? {
            Some(answer) if answer.eq_ignore_ascii_case("yes") => return Ok(()),
            Some(_) => {}
            None => {
                io.warn(format_args!(
                    "no confirmation read: the backup codes above were shown and will not be \
                     shown again (make new ones with `twofactor backup-codes`)"
                ));
                return Ok(());
            }
        }
    }
}
