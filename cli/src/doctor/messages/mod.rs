//! Every finding's sentences (why it matters, the exact fix) and the errors that stop
//! `twofactor doctor`. The dry run's reasons are in `dry_run`.

use std::path::Path;

use super::pam::{ModuleLine, PAM_DIR};
use super::sshd::MAIN_FILE;
use super::system::{ACTIVATION_FILE, CONFIG_FILE};
use super::{Finding, Severity};

use Severity::{Error, Note, Warning};

pub(super) fn finding(
    severity: Severity,
    check: &'static str,
    file: &str,
    line: Option<usize>,
    message: String,
    fix: String,
) -> Finding {
    Finding {
        severity,
        file: file.to_owned(),
        line,
        message,
        fix,
        check,
    }
}

pub(super) fn at(
    line: &ModuleLine,
    severity: Severity,
    check: &'static str,
    message: String,
    fix: String,
) -> Finding {
    finding(severity, check, &line.file, Some(line.line), message, fix)
}

/// "the sudo stack", or for a line of an included file, the stacks that include it.
fn stack_name(line: &ModuleLine, service: &str) -> String {
    if line.file == format!("{PAM_DIR}/{service}") {
        format!("the {service} stack")
    } else {
        format!("every stack that includes {} ({service} is one)", line.file)
    }
}

// Errors that stop the doctor (exit 2).

pub const NEEDS_ROOT: &str = "doctor reads every PAM file, the daemon's config and `sshd -T`, \
     which need root: run `sudo twofactor doctor` (or check a copy with --root DIR)";

pub fn cannot_read(path: &Path, error: &std::io::Error) -> String {
    format!("cannot read {}: {error}", path.display())
}

pub fn bad_glob(pattern: &str, error: &glob::PatternError) -> String {
    format!("cannot expand the sshd Include {pattern:?}: {error}")
}

pub fn daemon_unreachable(error: &str) -> String {
    format!(
        "--user asks the twofactor daemon for the user's policy and enrollment, and it cannot be reached: {error}"
    )
}

// The daemon's state.

pub const NO_ACTIVATION_FILE: &str = "no D-Bus activation file, so the bus cannot start twofactord";
pub const NOT_ON_BUS: &str = "twofactord is not running and the bus cannot start it";

pub fn no_bus(error: &str) -> String {
    format!("the system bus cannot be reached ({error})")
}

pub fn daemon_unreachable_for_logins(why: &str, services: &[&str], live: bool) -> Finding {
    let fix = if live {
        "start it (`systemctl start twofactord`, or `twofactord &` without systemd) and \
         install the package's D-Bus files so the bus can start it"
    } else {
        "install the twofactor package, which ships this file and the daemon"
    };
    finding(
        Error,
        "daemon",
        ACTIVATION_FILE,
        None,
        format!(
            "{why}: every login through a stack with pam_twofactor.so ({}) fails with \
             \"authentication information unavailable\"",
            services.join(", ")
        ),
        fix.to_owned(),
    )
}

// Reading.

pub fn unparsed_pam_line(file: &str, line: usize) -> Finding {
    finding(
        Warning,
        "pam-syntax",
        file,
        Some(line),
        "libpam cannot parse this line and skips it (or fails the stack)".into(),
        "write it as `TYPE CONTROL MODULE [ARGS]`".into(),
    )
}

pub fn include_loop(file: &str) -> Finding {
    finding(
        Error,
        "pam-include",
        file,
        None,
        "includes nest too deep (a loop?): libpam fails the stack".into(),
        "remove the @include that includes a file including it".into(),
    )
}

pub fn missing_include(file: &str) -> Finding {
    finding(
        Error,
        "pam-include",
        file,
        None,
        "this file is included but does not exist: libpam fails every stack that includes it"
            .into(),
        format!("create {file}, or remove the line that includes it"),
    )
}

pub fn sshd_include_too_deep(file: &str, line: usize) -> Finding {
    finding(
        Error,
        "sshd-include",
        file,
        Some(line),
        "Include nests too deep: sshd refuses to start".into(),
        "remove the Include that includes a file including it".into(),
    )
}

pub fn sshd_refuses(stderr: &str) -> Finding {
    finding(
        Error,
        "sshd-t",
        MAIN_FILE,
        None,
        format!("`sshd -T` refuses the configuration ({stderr}): sshd will not restart with it"),
        "fix what it names; `sshd -t` checks again".into(),
    )
}

// The module's line.

pub fn weak_control(line: &ModuleLine) -> Finding {
    at(
        line,
        Error,
        "control",
        "a wrong code does not fail the login: with `sufficient`, `optional` or a \
         `default=ignore`/`default=ok` control the stack goes on as if the module had not run"
            .into(),
        "use `required` for pam_twofactor.so".into(),
    )
}

pub fn unavailable_ignore(line: &ModuleLine) -> Finding {
    at(
        line,
        Warning,
        "unavailable-ignore",
        "`unavailable=ignore`: anyone who can stop twofactord (or the bus) turns the second \
         factor off for everyone"
            .into(),
        "remove `unavailable=ignore` (the default, `unavailable=fail`, denies instead)".into(),
    )
}

pub fn require_publickey_outside_sshd(line: &ModuleLine, service: &str) -> Finding {
    at(
        line,
        Error,
        "require-publickey",
        format!(
            "`require_publickey` in the {service} stack: only sshd says which keys \
                 succeeded, so the module denies every {service} login"
        ),
        "remove `require_publickey` from this line; it belongs only in /etc/pam.d/sshd".into(),
    )
}

pub fn forward_pass(line: &ModuleLine) -> Finding {
    at(
        line,
        Warning,
        "forward-pass",
        "`forward_pass` checks the code before the password: anyone who knows a user name can \
         spend that user's failed attempts and lock them out"
            .into(),
        "put a password module that stops the stack first (`@include common-auth`) and drop \
         `forward_pass`"
            .into(),
    )
}

pub fn use_first_pass_after_password(line: &ModuleLine) -> Finding {
    at(
        line,
        Warning,
        "use-first-pass",
        "`use_first_pass` takes the code from PAM_AUTHTOK, which the password module above \
         set to the password: every enrolled user fails"
            .into(),
        "remove `use_first_pass` (the module then asks for the code)".into(),
    )
}

pub fn unknown_arguments(line: &ModuleLine, args: &[&str]) -> Finding {
    at(
        line,
        Warning,
        "argument",
        format!(
            "pam_twofactor.so does not know `{}`: it logs and ignores it",
            args.join("`, `")
        ),
        "see pam_twofactor(8) for the arguments: require_publickey, forward_pass, \
         enroll_at_login, unavailable=ignore|fail, use_first_pass, try_first_pass, tries=N, \
         timeout=SECONDS, prompt=TEXT, prompt_after_notices, echo_code, debug, \
         bus_address=unix:..."
            .into(),
    )
}

pub fn bus_address(line: &ModuleLine) -> Finding {
    at(
        line,
        Note,
        "bus-address",
        "`bus_address=` points the module at another bus: meant for tests".into(),
        "remove it on a real system (the module uses the system bus)".into(),
    )
}

// The stack around it.

pub fn never_succeeds(line: &ModuleLine, service: &str) -> Finding {
    let stack = stack_name(line, service);
    at(
        line,
        Error,
        "never-succeeds",
        format!(
            "{stack} denies every login, even with the right password and code: a module \
             before or after pam_twofactor.so always fails or ends the stack"
        ),
        "compare the stack with the stock file (Debian: common-auth's `[success=1 \
         default=ignore] pam_unix.so`, `requisite pam_deny.so`, `required pam_permit.so`)"
            .into(),
    )
}

pub fn exempt_denied(line: &ModuleLine, service: &str) -> Finding {
    let stack = stack_name(line, service);
    at(
        line,
        Error,
        "exempt-denied",
        format!(
            "in {stack} the module may answer \"ignore\" (users not enrolled \
                 under an optional policy, disabled users, users in a grace period), and no \
                 other module there succeeds: libpam then denies them"
        ),
        "put a first factor that succeeds before it (`@include common-auth` on Debian), or for \
         sshd with keys add `require_publickey`"
            .into(),
    )
}

pub fn failure_ignored(line: &ModuleLine, service: &str) -> Finding {
    let stack = stack_name(line, service);
    at(
        line,
        Error,
        "bypass",
        format!(
            "in {stack} a wrong code still logs in: the controls around the \
                 module let the stack succeed after it failed"
        ),
        "give pam_twofactor.so `required` and no jump over it".into(),
    )
}

pub fn module_skipped(line: &ModuleLine, service: &str) -> Finding {
    let stack = stack_name(line, service);
    at(
        line,
        Error,
        "bypass",
        format!(
            "in {stack} the module never runs after a right password: a \
                 `sufficient` module or a jump before it ends the stack first"
        ),
        "put the module where the stack always reaches it (for RHEL-style files: \
         `auth substack password-auth` then the module)"
            .into(),
    )
}

pub fn permit_after_with_key(permit: &ModuleLine) -> Finding {
    at(
        permit,
        Note,
        "permit-after",
        "pam_permit after pam_twofactor.so is correct only because sshd demands a key first \
         (`AuthenticationMethods publickey,keyboard-interactive`)"
            .into(),
        "keep `AuthenticationMethods publickey,keyboard-interactive`; better, use \
         `require_publickey` and no pam_permit"
            .into(),
    )
}

pub fn nothing_logs_in(line: &ModuleLine, service: &str) -> Finding {
    let stack = stack_name(line, service);
    at(
        line,
        Error,
        "no-first-factor",
        format!(
            "{stack} has no first factor before the module: a user it exempts \
                 logs in with no password at all"
        ),
        "put the password check first (`@include common-auth`); pam_permit after the module \
         is correct only where sshd demands a key first"
            .into(),
    )
}

pub fn code_alone_logs_in(line: &ModuleLine, service: &str) -> Finding {
    let stack = stack_name(line, service);
    at(
        line,
        Error,
        "no-first-factor",
        format!("{stack} has no first factor: a code alone logs in"),
        "put the password check before the module (`@include common-auth`)".into(),
    )
}

pub fn first_factor_does_not_stop(line: &ModuleLine, service: &str) -> Finding {
    let stack = stack_name(line, service);
    at(
        line,
        Warning,
        "first-factor-stops",
        format!(
            "in {stack} a wrong password does not stop the stack: anyone who \
                 knows a user name reaches the code prompt and spends that user's failed \
                 attempts"
        ),
        format!(
            "make `{}` stop the stack: `requisite`, or Debian's `[success=1 default=ignore]` \
                 jump over `auth requisite pam_deny.so` (as in common-auth)",
            line.name()
        ),
    )
}

pub fn module_before_first_factor(line: &ModuleLine, service: &str) -> Finding {
    let stack = stack_name(line, service);
    at(
        line,
        Warning,
        "module-before-first-factor",
        format!(
            "in {stack} the code is asked before the password is checked: anyone who knows a \
                 user name reaches the code prompt, spends that user's failed attempts toward \
                 delays and a lockout, and sees from the prompt who is enrolled"
        ),
        format!(
            "put `{}` after the password module (after `@include common-auth`, which stops \
                 the stack on a wrong password), or use forward_pass for one prompt",
            line.name()
        ),
    )
}

pub fn enroll_before_password(line: &ModuleLine, service: &str) -> Finding {
    let stack = stack_name(line, service);
    at(
        line,
        Error,
        "enroll-at-login",
        format!(
            "`enroll_at_login` in {stack} runs even after a wrong password: \
                 whoever knows a user name could bind their own device to that account"
        ),
        "put a password module that stops the stack (`requisite`) before it, or remove \
         `enroll_at_login`"
            .into(),
    )
}

pub fn asked_twice(second: &ModuleLine, first: &ModuleLine, service: &str) -> Finding {
    let stack = stack_name(second, service);
    let via = if first.file.ends_with("/common-auth") {
        " (the pam-auth-update profile)"
    } else {
        ""
    };
    at(
        second,
        Warning,
        "asked-twice",
        format!(
            "{stack} asks for the code twice: here and at {}:{}{via}",
            first.file, first.line
        ),
        "pick one: remove this line, or `pam-auth-update --disable twofactor`".into(),
    )
}

pub fn sudo_pair_missing(missing: &str, has: &str) -> Finding {
    finding(
        Warning,
        "sudo-i",
        &format!("{PAM_DIR}/{missing}"),
        None,
        format!(
            "{PAM_DIR}/{has} has pam_twofactor.so but {missing} does not: `sudo -i` reads \
                 sudo-i on Debian, so one of them skips the second factor"
        ),
        format!(
            "add the same `auth required pam_twofactor.so` line to {PAM_DIR}/{missing} \
                 (recipe: /usr/share/twofactor/recipes/sudo/)"
        ),
    )
}

pub fn module_missing(line: &ModuleLine) -> Finding {
    at(
        line,
        Error,
        "module-path",
        format!(
            "`{}` does not exist: libpam fails this stack (\"Module is unknown\")",
            line.module
        ),
        if line.module.starts_with('/') {
            "correct the path, or write the bare name `pam_twofactor.so` (libpam finds it in \
             its module directory)"
                .into()
        } else {
            "install the twofactor package (it puts pam_twofactor.so in libpam's module directory)"
                .into()
        },
    )
}

pub fn module_unchecked(line: &ModuleLine, error: &str) -> Finding {
    at(
        line,
        Note,
        "module-path",
        format!("could not check that the module exists: {error}"),
        "check the path by hand".into(),
    )
}

pub fn no_module_dir() -> Finding {
    finding(
        Note,
        "module-dir",
        "/lib",
        None,
        "no PAM module directory here: bare module names were not checked".into(),
        "check with --root on a tree that holds /lib/*/security".into(),
    )
}

pub fn not_configured() -> Finding {
    finding(
        Note,
        "not-configured",
        PAM_DIR,
        None,
        "pam_twofactor.so is in no PAM stack: no login asks for a code".into(),
        "copy a recipe from /usr/share/twofactor/recipes/, or `pam-auth-update --enable \
         twofactor`"
            .into(),
    )
}

pub fn config_invalid(error: &str) -> Finding {
    let first = error.lines().next().unwrap_or(error);
    finding(
        Error,
        "config",
        CONFIG_FILE,
        None,
        format!("not valid TOML ({first}): twofactord refuses to start"),
        "fix it; `twofactord --check-config` checks again".into(),
    )
}

pub fn at_login_from_local(line: Option<usize>) -> Finding {
    finding(
        Warning,
        "at-login-from",
        CONFIG_FILE,
        line,
        "`at_login_from` has \"local\", which means only \"no PAM_RHOST\": su and sudo inside an \
         SSH session have none either, so anyone with a shell and a password can enroll their \
         own device there"
            .into(),
        "use \"console\" (login on a local terminal) instead of \"local\"".into(),
    )
}

mod sshd;
pub use sshd::*;
