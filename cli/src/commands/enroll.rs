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
use twofactor_qr::{Background, group_key, render_qr};

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
    let offer = if let Some(offer) = without_code {
        if !args.json {
            say!(
                io,
                "Replacing the enrollment of {user}: no current code is needed right after a \
                 login with a temporary code. The current enrollment stays active until the new \
                 device is confirmed."
            )?;
        }
        offer
    } else if needs_code {
        if !args.json {
            say!(
                io,
                "Replacing the enrollment of {user}: the current one stays active until the new \
                 device is confirmed."
            )?;
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
        show_offer(io, &offer.0, args)?;
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
        say!(
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
            Ok(()) if !args.json => say!(io, "They are also in {} (mode 0600).", path.display())?,
            Ok(()) => {}
            Err(error) => outcome = Err(error),
        }
    }
    if !args.json {
        confirm_stored(io)?;
    }
    outcome
}

/// Whether `code` has the shape of an administrator's temporary code.
fn is_temporary_code(code: &str) -> bool {
    codes::could_be_temporary_code(&codes::normalize(code))
}

fn show_offer(io: &mut Io<'_>, offer: &EnrollmentOffer, args: &EnrollArgs) -> Result<(), CliError> {
    if !args.no_qr {
        let background = if args.qr_invert {
            Background::Light
        } else {
            Background::Dark
        };
        match render_qr(&offer.otpauth_uri, background) {
            Ok(drawing) => {
                say!(io, "Scan this QR code with your authenticator app:")?;
                say!(io)?;
                say!(io, "{}", drawing.as_str())?;
                say!(io)?;
                say!(io, "Or add the account by hand:")?;
            }
            Err(error) => {
                io.note(format_args!("No QR code: {error}."));
                say!(io, "Add the account to your authenticator app by hand:")?;
            }
        }
    } else {
        say!(io, "Add the account to your authenticator app by hand:")?;
    }
    say!(io, "    Account: {}", offer.label)?;
    say!(
        io,
        "    Key:     {}",
        group_key(&offer.secret_base32).as_str()
    )?;
    say!(
        io,
        "    Type:    time-based, {}, {} digits, every {} seconds",
        offer.algorithm,
        offer.digits,
        offer.period
    )?;
    say!(io)?;
    say!(
        io,
        "Confirm within {} minutes with a code from the app.",
        offer.expires_in_seconds.div_ceil(60)
    )
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
