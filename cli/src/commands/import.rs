//! `twofactor import`: take over enrollments from google-authenticator and pam_oath, so that
//! users keep their authenticator app. Parsing is in [`crate::migrate`]; here the files are
//! read (carefully: as root, from places users control) and each user is imported with one
//! daemon call, so a failure changes nothing for that user. The files are never written.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde_json::{Value, json};
use twofactor_proto::Error as DaemonError;
use zeroize::Zeroizing;

use super::{print_json, valid_user};
use crate::cli::{GoogleAuthenticatorArgs, ImportArgs, ImportFrom, OathArgs};
use crate::client::Daemon;
use crate::error::CliError;
use crate::io::Io;
use crate::migrate::{self, Parsed, Problem};

/// Larger than any real file of either kind.
const MAX_FILE_BYTES: u64 = 64 * 1024;

pub fn import(args: &ImportArgs, daemon: &dyn Daemon, io: &mut Io<'_>) -> Result<(), CliError> {
    match &args.from {
        ImportFrom::GoogleAuthenticator(from) => google_authenticator(from, args.json, daemon, io),
        ImportFrom::Oath(from) => oath(from, args.json, daemon, io),
    }
}

/// What happened to one user (or one line without a usable user).
#[derive(Debug)]
struct Outcome {
    user: String,
    line: Option<usize>,
    /// `None`: imported.
    skipped: Option<String>,
    notes: Vec<String>,
    summary: Option<Value>,
}

impl Outcome {
    fn skipped(user: &str, line: Option<usize>, reason: impl Into<String>) -> Outcome {
        Outcome {
            user: user.to_owned(),
            line,
            skipped: Some(reason.into()),
            notes: Vec::new(),
            summary: None,
        }
    }

    fn to_json(&self) -> Value {
        let mut value = json!({
            "user": self.user,
            "imported": self.skipped.is_none(),
            "reason": self.skipped,
            "notes": self.notes,
        });
        if let Some(line) = self.line {
            value["line"] = json!(line);
        }
        if let Some(summary) = &self.summary {
            value["enrollment"] = summary.clone();
        }
        value
    }
}

/// Parameters of an import, for the summary (never the secret or the codes).
fn summary_of(parsed: &Parsed) -> Value {
    let e = &parsed.enrollment;
    json!({
        "algorithm": e.algorithm,
        "digits": e.digits,
        "period": e.period,
        "window": e.window,
        "last_step": e.last_step,
        "last_code_given": !e.last_code.is_empty(),
        "scratch_codes": e.scratch_codes.len(),
        "secret_bits": parsed.secret_bits,
    })
}

/// Hand `parsed` to the daemon. `Err` only for failures that would stop every other user too
/// (permission, the bus); anything about this user is a skipped outcome.
fn import_one(
    daemon: &dyn Daemon,
    user: &str,
    line: Option<usize>,
    parsed: &Parsed,
) -> Result<Outcome, CliError> {
    match daemon.import_enrollment(user, &parsed.enrollment) {
        Ok(()) => Ok(Outcome {
            user: user.to_owned(),
            line,
            skipped: None,
            notes: parsed.notes.clone(),
            summary: Some(summary_of(parsed)),
        }),
        Err(error @ (DaemonError::AccessDenied(_) | DaemonError::ZBus(_))) => Err(error.into()),
        Err(DaemonError::AlreadyEnrolled(_)) => Ok(Outcome::skipped(
            user,
            line,
            format!(
                "{user} is already enrolled with twofactor; to replace that enrollment with \
                 this one, run `twofactor reset {user}` first"
            ),
        )),
        Err(error) => Ok(Outcome::skipped(
            user,
            line,
            CliError::from(error).to_string(),
        )),
    }
}

/// Read a file that may sit where a user controls it, as root: no symbolic link, no device
/// or FIFO, not huge; with `owner`, it must belong to that user (or root). Errors never quote
/// the contents.
fn read_file(path: &Path, owner: Option<(u32, &str)>) -> Result<Zeroizing<String>, CliError> {
    use nix::fcntl::OFlag;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let shown = path.display();
    let flags = OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits())
        .open(path)
        .map_err(|error| {
            if error.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32) {
                return CliError::Refused(format!(
                    "{shown} is a symbolic link: not followed; name the file itself"
                ));
            }
            match error.kind() {
                std::io::ErrorKind::NotFound => {
                    CliError::Usage(format!("{shown} does not exist: nothing to import"))
                }
                std::io::ErrorKind::PermissionDenied => CliError::Refused(format!(
                    "cannot read {shown}: permission denied (run the import as root)"
                )),
                _ => CliError::System(format!("cannot read {shown}: {error}")),
            }
        })?;
    let metadata = file
        .metadata()
        .map_err(|error| CliError::System(format!("cannot read {shown}: {error}")))?;
    if !metadata.is_file() {
        return Err(CliError::Usage(format!("{shown} is not a regular file")));
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(CliError::Usage(format!(
            "{shown} is larger than {} KiB: not such a file",
            MAX_FILE_BYTES / 1024
        )));
    }
    if let Some((uid, user)) = owner
        && metadata.uid() != uid
        && metadata.uid() != 0
    {
        return Err(CliError::Refused(format!(
            "{shown} belongs to uid {}, not to {user}: not imported",
            metadata.uid()
        )));
    }
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| CliError::System(format!("cannot read {shown}: {error}")))?;
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_owned())),
        Err(_) => Err(CliError::Usage(format!("{shown} is not a text file"))),
    }
}

fn google_authenticator(
    args: &GoogleAuthenticatorArgs,
    json_output: bool,
    daemon: &dyn Daemon,
    io: &mut Io<'_>,
) -> Result<(), CliError> {
    let user = &args.user;
    valid_user(user)?;
    let (path, owner) = match &args.file {
        Some(file) => (file.clone(), None),
        None => {
            let account = nix::unistd::User::from_name(user)
                .map_err(|error| CliError::System(format!("cannot look up {user}: {error}")))?
                .ok_or_else(|| CliError::Usage(format!("no user {user} on this system")))?;
            (
                account.dir.join(".google_authenticator"),
                Some(account.uid.as_raw()),
            )
        }
    };
    let shown = path.display().to_string();
    let text = read_file(&path, owner.map(|uid| (uid, user.as_str())))?;
    let outcome = match migrate::google_authenticator(&text) {
        Ok(parsed) => {
            let mut outcome = import_one(daemon, user, None, &parsed)?;
            if outcome.skipped.is_none() {
                outcome.notes.push(scratch_note(user, &parsed));
            }
            outcome
        }
        Err(problem) => {
            let outcome = Outcome::skipped(user, None, problem.message());
            let reason = format!(
                "{shown}: {}; nothing was changed",
                problem.message().trim_end_matches('.')
            );
            if json_output {
                print_report(io, migrate::GOOGLE_AUTHENTICATOR, &shown, &[outcome])?;
            }
            return Err(match problem {
                Problem::Unsupported(_) => CliError::Refused(reason),
                Problem::Malformed(_) => CliError::Usage(reason),
            });
        }
    };
    if json_output {
        print_report(
            io,
            migrate::GOOGLE_AUTHENTICATOR,
            &shown,
            std::slice::from_ref(&outcome),
        )?;
    }
    if let Some(reason) = &outcome.skipped {
        return Err(CliError::Refused(format!("{reason}; nothing was changed")));
    }
    if !json_output {
        tell!(
            io,
            "Imported {user} from {shown}: the authenticator app keeps working unchanged."
        )?;
        print_notes(io, &outcome)?;
        say!(io)?;
        tell!(
            io,
            "{shown} is left as it was. Once pam_twofactor.so replaces \
             pam_google_authenticator.so in the PAM stack, remove it."
        )?;
    }
    Ok(())
}

fn scratch_note(user: &str, parsed: &Parsed) -> String {
    match parsed.enrollment.scratch_codes.len() {
        0 => format!(
            "There were no scratch codes: make backup codes with `twofactor backup-codes --user \
             {user}`."
        ),
        count => format!("The {count} scratch codes are now backup codes; each works once."),
    }
}

fn oath(
    args: &OathArgs,
    json_output: bool,
    daemon: &dyn Daemon,
    io: &mut Io<'_>,
) -> Result<(), CliError> {
    for user in &args.users {
        valid_user(user)?;
    }
    let shown = args.usersfile.display().to_string();
    let text = read_file(&args.usersfile, None)?;
    let entries = migrate::oath_usersfile(&text);
    drop(text);
    let selected = |user: &str| args.users.is_empty() || args.users.iter().any(|u| u == user);
    let mut per_user: BTreeMap<&str, usize> = BTreeMap::new();
    for entry in &entries {
        if let Some(user) = entry.user.as_deref() {
            *per_user.entry(user).or_default() += 1;
        }
    }

    let mut outcomes = Vec::new();
    for entry in &entries {
        let line = Some(entry.line);
        let Some(user) = entry.user.as_deref() else {
            if args.users.is_empty() {
                outcomes.push(Outcome::skipped("", line, "no user name on this line"));
            }
            continue;
        };
        if !selected(user) {
            continue;
        }
        let count = per_user.get(user).copied().unwrap_or(0);
        let outcome = if !twofactor_proto::is_valid_username(user) {
            Outcome::skipped(user, line, "not a valid user name")
        } else if count > 1 {
            Outcome::skipped(
                user,
                line,
                format!(
                    "{user} has {count} entries (several tokens), and twofactor keeps one \
                     device per user: enroll {user} anew instead"
                ),
            )
        } else {
            match &entry.parsed {
                Err(problem) => Outcome::skipped(user, line, problem.message()),
                Ok(parsed) => match import_one(daemon, user, line, parsed) {
                    Ok(mut outcome) => {
                        if outcome.skipped.is_none() {
                            outcome.notes.push(format!(
                                "No backup codes yet: make a set with `twofactor backup-codes \
                                 --user {user}`."
                            ));
                        }
                        outcome
                    }
                    Err(error) => {
                        // Permission or the bus: the rest would fail alike. Show what was done.
                        report_oath(io, json_output, &shown, &outcomes)?;
                        return Err(error);
                    }
                },
            }
        };
        outcomes.push(outcome);
    }
    for user in &args.users {
        if !per_user.contains_key(user.as_str()) {
            outcomes.push(Outcome::skipped(
                user,
                None,
                format!("{user} is not in {shown}"),
            ));
        }
    }
    report_oath(io, json_output, &shown, &outcomes)?;
    let skipped = outcomes.iter().filter(|o| o.skipped.is_some()).count();
    if outcomes.is_empty() {
        Err(CliError::Refused(format!(
            "{shown} has no entries: nothing was imported"
        )))
    } else if skipped > 0 {
        Err(CliError::Refused(format!(
            "{skipped} of {} entries were not imported (see above); nothing was changed for \
             those users",
            outcomes.len()
        )))
    } else {
        Ok(())
    }
}

fn report_oath(
    io: &mut Io<'_>,
    json_output: bool,
    shown: &str,
    outcomes: &[Outcome],
) -> Result<(), CliError> {
    if json_output {
        return print_report(io, migrate::PAM_OATH, shown, outcomes);
    }
    for outcome in outcomes {
        let who = if outcome.user.is_empty() {
            "(no user)"
        } else {
            outcome.user.as_str()
        };
        let line = outcome
            .line
            .map(|line| format!(" (line {line})"))
            .unwrap_or_default();
        match &outcome.skipped {
            None => say!(io, "{who}: imported{line}")?,
            Some(reason) => say!(io, "{who}: skipped{line}: {reason}")?,
        }
        print_notes(io, outcome)?;
    }
    let imported = outcomes.iter().filter(|o| o.skipped.is_none()).count();
    if imported > 0 {
        say!(io)?;
        tell!(
            io,
            "{imported} imported; their authenticator apps keep working unchanged. {shown} is \
             left as it was: remove the imported users from it once pam_twofactor.so replaces \
             pam_oath.so in the PAM stack."
        )?;
    }
    Ok(())
}

fn print_notes(io: &mut Io<'_>, outcome: &Outcome) -> Result<(), CliError> {
    if let Some(summary) = &outcome.summary {
        let window = match summary["window"].as_u64() {
            Some(0) | None => "the configured window".to_owned(),
            Some(1) => "1 step either side".to_owned(),
            Some(steps) => format!("{steps} steps either side"),
        };
        say!(
            io,
            "  Codes: {}, {} digits, every {} s, {window}.",
            summary["algorithm"].as_str().unwrap_or("SHA1"),
            summary["digits"],
            summary["period"]
        )?;
    }
    for note in &outcome.notes {
        say!(io, "  - {note}")?;
    }
    Ok(())
}

fn print_report(
    io: &mut Io<'_>,
    source: &str,
    file: &str,
    outcomes: &[Outcome],
) -> Result<(), CliError> {
    print_json(
        io,
        &json!({
            "source": source,
            "file": file,
            "users": outcomes.iter().map(Outcome::to_json).collect::<Vec<_>>(),
        }),
    )
}
