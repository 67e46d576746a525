//! One module per group of commands. Each command is a function of its arguments, the daemon
//! (a trait, so tests use fakes), who is invoking, and the standard streams.

mod admin;
mod codes;
mod enroll;
mod generate;
mod import;
mod lifecycle;
mod status;

use twofactor_proto as proto;
use zeroize::Zeroizing;

use crate::cli::{Cli, Command};
use crate::client::{BusDaemon, Daemon};
use crate::error::CliError;
use crate::io::Io;

/// How many times a code is asked before giving up.
pub const CODE_TRIES: u32 = 3;

/// Run the parsed command line.
pub fn run(cli: Cli, io: &mut Io<'_>) -> Result<(), CliError> {
    if let Command::Generate(args) = &cli.command {
        return generate::generate(args, io);
    }
    if let Command::Doctor(args) = &cli.command {
        return crate::doctor::doctor(args, io);
    }
    let me = Invoker::current();
    let daemon = BusDaemon::connect(&crate::client::bus_address())?;
    dispatch(cli.command, &daemon, &me, io)
}

/// Run a command against `daemon`.
pub fn dispatch(
    command: Command,
    daemon: &dyn Daemon,
    me: &Invoker,
    io: &mut Io<'_>,
) -> Result<(), CliError> {
    match command {
        Command::Enroll(args) => enroll::enroll(&args, daemon, me, io),
        Command::Status(args) => status::status(&args, daemon, me, io),
        Command::BackupCodes(args) => codes::backup_codes(&args, daemon, me, io),
        Command::Disable(args) => codes::disable(&args, daemon, me, io),
        Command::List(args) => status::list(&args, daemon, io),
        Command::Reset(args) => admin::reset(&args, daemon, io),
        Command::Unlock(args) => admin::unlock(&args, daemon, io),
        Command::Policy(args) => status::policy(&args, daemon, me, io),
        Command::Verify(args) => admin::verify(&args, daemon, io),
        Command::TempCode(args) => lifecycle::temp_code(&args, daemon, io),
        Command::Delivery(args) => lifecycle::delivery(&args, daemon, io),
        Command::Import(args) => import::import(&args, daemon, io),
        Command::Doctor(args) => crate::doctor::doctor(&args, io),
        Command::Generate(args) => generate::generate(&args, io),
    }
}

/// Who runs this command, from the real uid and the user database (never from `$USER`). The
/// daemon decides what that user may do; this only picks defaults and which questions to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoker {
    pub uid: u32,
    pub name: Option<String>,
}

impl Invoker {
    pub fn current() -> Invoker {
        let uid = nix::unistd::getuid();
        let name = nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map(|user| user.name);
        Invoker {
            uid: uid.as_raw(),
            name,
        }
    }

    /// Whether `user` is the invoking user.
    pub fn is(&self, user: &str) -> bool {
        self.name.as_deref() == Some(user)
    }

    /// `user` if given, else the invoking user; checked to be a valid user name.
    pub fn user_or_me(&self, user: Option<&str>) -> Result<String, CliError> {
        let user = match user {
            Some(user) => user,
            None => self.name.as_deref().ok_or_else(|| {
                CliError::Usage(format!(
                    "your uid {} has no user name: name the user",
                    self.uid
                ))
            })?,
        };
        valid_user(user)?;
        Ok(user.to_owned())
    }
}

/// A user name checked before it is sent anywhere.
pub fn valid_user(user: &str) -> Result<(), CliError> {
    if proto::is_valid_username(user) {
        Ok(())
    } else {
        Err(CliError::Usage(format!("invalid user name {user:?}")))
    }
}

/// A JSON value as one line of output.
pub fn print_json(io: &mut Io<'_>, value: &serde_json::Value) -> Result<(), CliError> {
    say!(io, "{value}")
}

/// Get a code and pass it to `attempt`, which calls the daemon.
///
/// With `json`, one line is read from standard input, without a prompt, and tried once.
/// Otherwise `question` is asked up to [`CODE_TRIES`] times; after a wrong code the daemon's
/// message is shown and the question asked again.
pub fn with_code<T>(
    io: &mut Io<'_>,
    json: bool,
    question: &str,
    mut attempt: impl FnMut(&str) -> Result<T, proto::Error>,
) -> Result<T, CliError> {
    if json {
        let code = io.read_line()?.ok_or_else(|| {
            CliError::Refused("no code on standard input: give the code as one line".into())
        })?;
        return Ok(attempt(&code)?);
    }
    let mut last_error = CliError::Refused("no code entered".into());
    for _ in 0..CODE_TRIES {
        let Some(code) = io.ask(question)? else {
            return Err(CliError::Refused(
                "no code entered: nothing was changed".into(),
            ));
        };
        if !proto::is_plausible_code(&code) {
            io.note(format_args!(
                "That is not a code: type the digits your app shows, or a backup code."
            ));
            last_error = CliError::Usage("that is not a code".into());
            continue;
        }
        match attempt(&code) {
            Ok(value) => return Ok(value),
            Err(proto::Error::WrongCode(message)) => {
                io.note(format_args!("Wrong code: {message}."));
                last_error = CliError::Refused(format!("wrong code: {message}"));
            }
            Err(error) => return Err(error.into()),
        }
    }
    Err(match last_error {
        CliError::Refused(message) => CliError::Refused(format!("{message} ({CODE_TRIES} tries)")),
        other => other,
    })
}

/// Show backup codes, two to a line.
pub fn print_backup_codes(io: &mut Io<'_>, codes: &[String]) -> Result<(), CliError> {
    tell!(
        io,
        "Backup codes: each works once, in place of a code from the app, if you lose the device."
    )?;
    say!(io)?;
    for pair in codes.chunks(2) {
        say!(io, "    {}", pair.join("    "))?;
    }
    say!(io)?;
    tell!(
        io,
        "Store them somewhere safe now (a password manager, or on paper): they are not shown again."
    )
}

/// A file for backup codes: created (mode 0600, never over an existing file) before anything
/// changes, written once the codes exist, removed again if they never do.
#[derive(Debug)]
pub struct BackupCodesFile {
    path: std::path::PathBuf,
    file: Option<std::fs::File>,
}

impl BackupCodesFile {
    pub fn create(path: &std::path::Path) -> Result<BackupCodesFile, CliError> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|error| {
                if error.kind() == std::io::ErrorKind::AlreadyExists {
                    CliError::Usage(format!(
                        "{} exists: refusing to overwrite it; name a new file",
                        path.display()
                    ))
                } else {
                    CliError::System(format!("cannot create {}: {error}", path.display()))
                }
            })?;
        Ok(BackupCodesFile {
            path: path.to_owned(),
            file: Some(file),
        })
    }

    /// Write the codes and keep the file.
    pub fn write(mut self, user: &str, codes: &[String]) -> Result<(), CliError> {
        use std::io::Write;
        let Some(mut file) = self.file.take() else {
            return Ok(());
        };
        let mut text = Zeroizing::new(format!(
            "# twofactor backup codes for {user}. Each works once, in place of a code.\n"
        ));
        for code in codes {
            text.push_str(code);
            text.push('\n');
        }
        let written = file
            .write_all(text.as_bytes())
            .and_then(|()| file.sync_all());
        match written {
            Ok(()) => Ok(()),
            Err(error) => {
                let _ = std::fs::remove_file(&self.path);
                Err(CliError::System(format!(
                    "cannot write {}: {error}; the codes shown are the only copy",
                    self.path.display()
                )))
            }
        }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for BackupCodesFile {
    fn drop(&mut self) {
        // Still open: the codes were never written, so the empty file goes.
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
pub mod fake;

#[cfg(test)]
mod tests;
