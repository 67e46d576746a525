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

Shows a QR code and the key (on a light terminal background, add --qr-invert),
asks for a code from the app to confirm, then shows 10 backup codes once.
Answers are read from standard input, one a line.

With --json nothing is asked: the offer is printed as one JSON line, the
confirmation code is read as one line from standard input, and the backup
codes are printed as one JSON line. With --json --replace of your own
enrollment, a line with the current code is read first (it may be empty right
after a login with a temporary code, when none is needed).";

const BACKUP_CODES_ABOUT: &str = "\
Make a new set of backup codes; the old ones stop working.

For your own account a current code (or a backup code) is asked first; with
--json it is read as one line from standard input.";

const DISABLE_ABOUT: &str = "\
Remove your enrollment.

A current code (or a backup code) is asked first; with --json it is read as
one line from standard input. Refused while the policy requires two-factor
authentication for you.";

const LIST_ABOUT: &str = "\
Admin: list users with two-factor state or a policy entry.

Also listed: the members of every group the policy requires, as NSS lists them
(the group's member list, and the users whose primary group it is). Those who
are required but not enrolled are marked NOT ENROLLED: they cannot log in
unless a grace period is under way. Directories that refuse enumeration (SSSD
with enumerate = false, many LDAP servers) can hide users whose primary group
it is, and at most 10000 members of one group are listed (twofactord logs
list-cut-short when it stops there).";

const VERIFY_ABOUT: &str = "\
Check a user's code as a login would.

The code is read as one line from standard input; an accepted code is spent.
Exit status 0 when the code was accepted, 1 otherwise.";

const TEMP_CODE_ABOUT: &str = "\
Admin: make a single-use code for a user who lost their device.

The code is shown once (only its hash is kept) and works once, until it
expires: at a login in place of a code from the app, or as the current code of
`twofactor enroll --replace`, which sets up the new device. Give it to the
user over a channel you trust. A new code replaces an unused earlier one.";

const DELIVERY_ABOUT: &str = "\
Admin: allow or forbid codes by another channel for a user.

With delivery on and a [delivery] command configured for twofactord, the user
may ask at a login for a single-use code sent by that program (SMS, mail).
Such codes are weaker than the authenticator app: they can be phished, and they
travel over channels an attacker may control. Turning it off also cancels a
code already sent.";

const IMPORT_ABOUT: &str = "\
Admin: take over enrollments from google-authenticator or pam_oath.

The user's authenticator app keeps working unchanged. Each user is imported
with one call to the daemon, so a failure changes nothing for that user, and
the files read are left as they are. What does not carry over is reported.
Then replace the old module with pam_twofactor.so in the PAM stack.";

const IMPORT_GOOGLE_ABOUT: &str = "\
Import a user's ~/.google_authenticator (or FILE), read as root.

The secret, WINDOW_SIZE, STEP_SIZE, the time steps already used
(DISALLOW_REUSE) and the scratch codes carry over; the scratch codes become
backup codes. RATE_LIMIT does not: twofactor's own delays and lockout apply.
Counter-based (HOTP) files are refused.";

const IMPORT_OATH_ABOUT: &str = "\
Import the time-based entries of a pam_oath usersfile (often /etc/users.oath).

Each line reads `HOTP/T30/6 USER PIN HEXSECRET ...`. Event-based (HOTP)
entries and users with more than one entry are refused and reported; a PIN
does not carry over (twofactor asks for the code alone). Exit status 1 when
any entry was not imported.";

const DOCTOR_ABOUT: &str = "\
Admin: check this machine's PAM stacks, sshd configuration and twofactor.toml
for setups that lock users out or let them in without a code.

Each finding names the file and line, why it matters and the fix. Needs root
on the live system (it runs `sshd -T`); with --root DIR it reads a copy of a
system under DIR instead. Exit status: 2 when something it needs could not be
read, else 1 when a finding is a warning or an error, else 0. With --user, a
dry run: what USER is asked at each service's login (exit 0, or 2 when the
daemon cannot be reached).";

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
    /// Admin: list users, marking those about to be locked out.
    #[command(long_about = LIST_ABOUT)]
    List(ListArgs),
    /// Admin: remove a user's enrollment, codes and lockout state.
    Reset(ResetArgs),
    /// Admin: end a user's lockout and its delays.
    Unlock(UnlockArgs),
    /// Show which policy applies to a user and which rule decided it.
    Policy(PolicyArgs),
    /// Check a user's code as a login would (code from stdin).
    #[command(long_about = VERIFY_ABOUT)]
    Verify(VerifyArgs),
    /// Admin: a single-use code for a user who lost their device.
    #[command(long_about = TEMP_CODE_ABOUT)]
    TempCode(TempCodeArgs),
    /// Admin: allow or forbid codes by SMS or mail for a user.
    #[command(long_about = DELIVERY_ABOUT)]
    Delivery(DeliveryArgs),
    /// Admin: take over google-authenticator or pam_oath enrollments.
    #[command(long_about = IMPORT_ABOUT)]
    Import(ImportArgs),
    /// Admin: check PAM and sshd setups for lockouts and bypasses.
    #[command(long_about = DOCTOR_ABOUT)]
    Doctor(DoctorArgs),
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
    #[arg(
        long,
        help = "QR code for a light terminal background",
        long_help = "Draw the QR code for a light terminal background (dark text on white):\n\
                     use it when the app does not read the code"
    )]
    pub qr_invert: bool,
    #[arg(
        long,
        help = "Replace an existing enrollment",
        long_help = "Replace an existing enrollment; your own needs a current code, a\n\
                     backup code or a temporary code from an administrator"
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
pub struct TempCodeArgs {
    /// The user who gets the code.
    #[arg(value_name = "USER")]
    pub user: String,
    /// How long it works: 30m, 1h (default), 24h at most.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "1h",
        hide_default_value = true,
        value_parser = crate::format::parse_temporary_code_lifetime
    )]
    pub expires: u64,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DeliveryArgs {
    /// The user whose codes by another channel are switched.
    #[arg(value_name = "USER")]
    pub user: String,
    /// on: allowed; off: forbidden.
    #[arg(value_enum, value_name = "on|off", hide_possible_values = true)]
    pub state: OnOff,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// A switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, Args)]
#[command(
    subcommand_required = true,
    arg_required_else_help = true,
    disable_help_subcommand = true
)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub from: ImportFrom,
    /// Print one JSON object.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ImportFrom {
    /// A user's ~/.google_authenticator file.
    #[command(long_about = IMPORT_GOOGLE_ABOUT)]
    GoogleAuthenticator(GoogleAuthenticatorArgs),
    /// The time-based entries of a pam_oath usersfile.
    #[command(long_about = IMPORT_OATH_ABOUT)]
    Oath(OathArgs),
}

#[derive(Debug, Args)]
pub struct GoogleAuthenticatorArgs {
    /// The user whose enrollment is taken over.
    #[arg(long, value_name = "USER")]
    pub user: String,
    /// The file to read (default: ~USER/.google_authenticator).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct OathArgs {
    /// The pam_oath usersfile to read.
    #[arg(value_name = "USERSFILE")]
    pub usersfile: PathBuf,
    /// Import only USER (repeatable; default: everyone).
    #[arg(long = "user", value_name = "USER")]
    pub users: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Check the system under DIR (its etc/pam.d, etc/ssh, ...).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Dry run: what USER is asked at each login with the module.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
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
