//! The command line, as clap derive definitions. The man pages and shell completions are
//! generated from these (`twofactor generate`), so every word of help lives here once.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

// Long help, wrapped by hand to fit 80 columns (clap's wrap_help is off).
const ABOUT: &str = "\
Set up and manage two-factor authentication (TOTP) for logins on this system.

Every command talks to the twofactord daemon over the system bus
($DBUS_SYSTEM_BUS_ADDRESS when set). The daemon decides who may do what: any
user may manage their own enrollment; root and members of the configured admin
group may act on every user.";

const EXIT_STATUS: &str = "\
Exit status: 0 done; 1 refused or denied (wrong code, permission denied, locked,
forbidden by policy); 2 usage or system error (bad arguments, daemon not
running).";

const ENROLL_ABOUT: &str = "\
Set up an authenticator app for yourself or, as an administrator, for a user.

Shows a QR code and the key, asks for a code from the app to confirm, then
shows 10 backup codes once. Answers are read from standard input, one a line.

With --json nothing is asked: the offer is printed as one JSON line, the
confirmation code is read as one line from standard input, and the backup
codes are printed as one JSON line. With --json --replace, the current code,
when it is needed, is read first.";

const BACKUP_CODES_ABOUT: &str = "\
Make a new set of backup codes; the old ones stop working.

For your own account a current code (or a backup code) is asked first; with
--json it is read as one line from standard input.";

const DISABLE_ABOUT: &str = "\
Remove your enrollment.

A current code (or a backup code) is asked first; with --json it is read as
one line from standard input. Refused while the policy requires two-factor
authentication for you.";

const VERIFY_ABOUT: &str = "\
Check a user's code as a login would.

The code is read as one line from standard input; an accepted code is spent.
Exit status 0 when the code was accepted, 1 otherwise.";

/// Set up and manage two-factor authentication (TOTP) for logins on this system.
#[derive(Debug, Parser)]
#[command(
    name = "twofactor",
    version,
    propagate_version = true,
    subcommand_required = true,
    arg_required_else_help = true,
    long_about = ABOUT,
    after_help = EXIT_STATUS
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set up an authenticator app for yourself or, as admin, a user.
    #[command(long_about = ENROLL_ABOUT)]
    Enroll(EnrollArgs),
    /// Show enrollment, policy, backup codes left, lockout and last use.
    Status(StatusArgs),
    /// Make a new set of backup codes; the old ones stop working.
    #[command(long_about = BACKUP_CODES_ABOUT)]
    BackupCodes(BackupCodesArgs),
    /// Remove your enrollment (refused while 2FA is required).
    #[command(long_about = DISABLE_ABOUT)]
    Disable(DisableArgs),
    /// Admin: list users with two-factor state or a policy entry.
    List(ListArgs),
    /// Admin: remove a user's enrollment, codes and lockout state.
    Reset(ResetArgs),
    /// Admin: clear a user's lockout and failure count.
    Unlock(UnlockArgs),
    /// Show which policy applies to a user and which rule decided it.
    Policy(PolicyArgs),
    /// Check a user's code as a login would (code from stdin).
    #[command(long_about = VERIFY_ABOUT)]
    Verify(VerifyArgs),
    /// Write the man pages or shell completions (for packaging).
    #[command(hide = true)]
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// Enroll USER instead of yourself (admins).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Do not draw the QR code; show only the key.
    #[arg(long)]
    pub no_qr: bool,
    /// QR code for a light terminal background.
    #[arg(long)]
    pub qr_invert: bool,
    #[arg(
        long,
        help = "Replace an existing enrollment",
        long_help = "Replace an existing enrollment; your own needs a current code or a\n\
                     backup code"
    )]
    pub replace: bool,
    /// Also write the codes to PATH (new, mode 0600).
    #[arg(long, value_name = "PATH")]
    pub backup_codes_file: Option<PathBuf>,
    /// One JSON line per step; no questions.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The user to show (default: you).
    #[arg(value_name = "USER")]
    pub user: Option<String>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BackupCodesArgs {
    /// Replace USER's codes instead of yours (admins).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Also write the codes to PATH (new, mode 0600).
    #[arg(long, value_name = "PATH")]
    pub backup_codes_file: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DisableArgs {
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print one JSON array.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    /// The user whose two-factor state is removed.
    #[arg(value_name = "USER")]
    pub user: String,
    /// Do not ask to type the user name to confirm.
    #[arg(long)]
    pub yes: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// The user to unlock.
    #[arg(value_name = "USER")]
    pub user: String,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// The user to explain (default: you).
    #[arg(value_name = "USER")]
    pub user: Option<String>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The user whose code is checked.
    #[arg(value_name = "USER")]
    pub user: String,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(subcommand)]
    pub what: Generate,
}

#[derive(Debug, Subcommand)]
pub enum Generate {
    /// The man pages: twofactor.1 and one page per command.
    Man {
        /// Write the pages into DIR (default: print twofactor.1 to standard output).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// A completion script for SHELL.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: Shell,
        /// Write the script into DIR (default: print it to standard output).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

/// Shells with generated completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_reporting_command_has_json() {
        let command = Cli::command();
        for sub in command.get_subcommands() {
            if sub.get_name() == "generate" || sub.get_name() == "help" {
                continue;
            }
            assert!(
                sub.get_arguments().any(|arg| arg.get_id() == "json"),
                "{} has no --json",
                sub.get_name()
            );
        }
    }
}
