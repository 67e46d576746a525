//! The command line, as clap derive definitions. The man pages and shell completions are
//! generated from these (`twofactor generate`), so every word of help lives here once.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Set up and manage two-factor authentication (TOTP) for logins on this system.
#[derive(Debug, Parser)]
#[command(
    name = "twofactor",
    version,
    propagate_version = true,
    subcommand_required = true,
    arg_required_else_help = true,
    long_about = "Set up and manage two-factor authentication (TOTP) for logins on this system.\n\n\
        Every command talks to the twofactord daemon over the system bus \
        ($DBUS_SYSTEM_BUS_ADDRESS when set). The daemon decides who may do what: \
        any user may manage their own enrollment; root and members of the configured \
        admin group may act on every user.",
    after_help = "Exit status: 0 done, 1 refused or denied (wrong code, permission denied, \
        locked, forbidden by policy), 2 usage or system error (bad arguments, daemon \
        not running)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set up an authenticator app for your account (or, as an administrator, for a user).
    #[command(
        long_about = "Set up an authenticator app for your account (or, as an \
        administrator, for a user).\n\n\
        Shows a QR code and the key, asks for a code from the app to confirm, then shows \
        10 backup codes once. Codes are read from standard input, one per line.\n\n\
        With --json nothing is asked: the offer is printed as one JSON line, the \
        confirmation code is read as one line from standard input, and the backup codes \
        are printed as one JSON line. With --json --replace, when the current code is \
        needed it is read first, as the first line."
    )]
    Enroll(EnrollArgs),
    /// Show enrollment, policy, backup codes left, lockout and last use.
    Status(StatusArgs),
    /// Replace the backup codes with a new set; the old ones stop working.
    #[command(
        long_about = "Replace the backup codes with a new set; the old ones stop \
        working.\n\nFor your own account a current code (or backup code) is asked first; \
        with --json it is read as one line from standard input."
    )]
    BackupCodes(BackupCodesArgs),
    /// Remove your enrollment (asks for a current code; refused while 2FA is required).
    #[command(
        long_about = "Remove your enrollment. A current code (or backup code) is \
        asked first; with --json it is read as one line from standard input. Refused while \
        the policy requires two-factor authentication for you."
    )]
    Disable(DisableArgs),
    /// Administrators: list users with two-factor state or a policy entry.
    List(ListArgs),
    /// Administrators: remove a user's enrollment, backup codes and lockout state.
    Reset(ResetArgs),
    /// Administrators: clear a user's lockout and failure count.
    Unlock(UnlockArgs),
    /// Show which policy applies to a user and which rule decided it.
    Policy(PolicyArgs),
    /// Check a code for a user as a login would (the code is read from standard input).
    #[command(
        long_about = "Check a code for a user as a login would. The code is read as \
        one line from standard input. An accepted code is spent. Exit status 0 when the code \
        was accepted, 1 otherwise."
    )]
    Verify(VerifyArgs),
    /// Write the man pages or shell completions (for packaging).
    #[command(hide = true)]
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// Enroll USER instead of yourself (administrators).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Do not draw the QR code; show only the key.
    #[arg(long)]
    pub no_qr: bool,
    /// Draw the QR code for dark text on a light background.
    #[arg(long)]
    pub qr_invert: bool,
    /// Replace an existing enrollment (asks for a current code or backup code when the
    /// enrollment is yours).
    #[arg(long)]
    pub replace: bool,
    /// Also write the backup codes to PATH (mode 0600; an existing file is never
    /// overwritten).
    #[arg(long, value_name = "PATH")]
    pub backup_codes_file: Option<PathBuf>,
    /// Machine-readable output, no questions (see above).
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
    /// Replace USER's backup codes instead of yours (administrators).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Also write the new codes to PATH (mode 0600; an existing file is never overwritten).
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
