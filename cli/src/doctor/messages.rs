//! Every finding's sentences (why it matters, the exact fix) and the errors that stop
//! `twofactor doctor`. The dry run's reasons are in `dry_run`.

use std::path::Path;

use super::pam::{ModuleLine, PAM_DIR};
use super::sshd::{MAIN_FILE, MatchBlock, Setting};
use super::system::{ACTIVATION_FILE, CONFIG_FILE};
use super::{Finding, Severity};

use Severity::{Error, Note, Warning};

fn finding(
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

fn at(
    line: &ModuleLine,
    severity: Severity,
    check: &'static str,
    message: String,
    fix: String,
) -> Finding {
    finding(severity, check, &line.file, Some(line.line), message, fix)
}

fn at_setting(
    s: &Setting,
    severity: Severity,
    check: &'static str,
    message: String,
    fix: String,
) -> Finding {
    finding(severity, check, &s.file, s.line, message, fix)
}

fn scoped(scope: Option<&MatchBlock>, message: String) -> String {
    match scope {
        Some(block) => format!(
            "For connections matching `Match {}` ({}:{}): {message}",
            block.criteria, block.file, block.line
        ),
        None => message,
    }
}

/// sshd's spelling of a keyword the doctor keeps in lower case.
fn keyword(lower: &str) -> &str {
    match lower {
        "usepam" => "UsePAM",
        "kbdinteractiveauthentication" => "KbdInteractiveAuthentication",
        "passwordauthentication" => "PasswordAuthentication",
        "authenticationmethods" => "AuthenticationMethods",
        "permitrootlogin" => "PermitRootLogin",
        other => other,
    }
}

/// `KEYWORD VALUE` as written, or as the default.
fn shown(s: &Setting) -> String {
    let name = keyword(&s.keyword);
    match s.line {
        Some(_) => format!("`{name} {}`", s.value),
        None => format!(
            "`{name} {}` (the default or what `sshd -T` reports)",
            s.value
        ),
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

pub fn unknown_argument(line: &ModuleLine, arg: &str) -> Finding {
    at(
        line,
        Warning,
        "argument",
        format!("pam_twofactor.so does not know `{arg}`: it logs and ignores it"),
        "see pam_twofactor(8) for the arguments: require_publickey, forward_pass, \
         enroll_at_login, unavailable=ignore|fail, use_first_pass, try_first_pass, tries=N, \
         timeout=SECONDS, prompt=TEXT, echo_code, debug, bus_address=unix:..."
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

pub fn exempt_denied(line: &ModuleLine, service: &str) -> Finding {
    at(
        line,
        Error,
        "exempt-denied",
        format!(
            "in the {service} stack the module may answer \"ignore\" (users not enrolled \
                 under an optional policy, disabled users, users in a grace period), and no \
                 other module there succeeds: libpam then denies them"
        ),
        "put a first factor that succeeds before it (`@include common-auth` on Debian), or for \
         sshd with keys add `require_publickey`"
            .into(),
    )
}

pub fn failure_ignored(line: &ModuleLine, service: &str) -> Finding {
    at(
        line,
        Error,
        "bypass",
        format!(
            "in the {service} stack a wrong code still logs in: the controls around the \
                 module let the stack succeed after it failed"
        ),
        "give pam_twofactor.so `required` and no jump over it".into(),
    )
}

pub fn module_skipped(line: &ModuleLine, service: &str) -> Finding {
    at(
        line,
        Error,
        "bypass",
        format!(
            "in the {service} stack the module never runs after a right password: a \
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
    at(
        line,
        Error,
        "no-first-factor",
        format!(
            "the {service} stack has no first factor before the module: a user it exempts \
                 logs in with no password at all"
        ),
        "put the password check first (`@include common-auth`); pam_permit after the module \
         is correct only where sshd demands a key first"
            .into(),
    )
}

pub fn code_alone_logs_in(line: &ModuleLine, service: &str) -> Finding {
    at(
        line,
        Error,
        "no-first-factor",
        format!("the {service} stack has no first factor: a code alone logs in"),
        "put the password check before the module (`@include common-auth`)".into(),
    )
}

pub fn first_factor_does_not_stop(line: &ModuleLine, service: &str) -> Finding {
    at(
        line,
        Warning,
        "first-factor-stops",
        format!(
            "in the {service} stack a wrong password does not stop the stack: anyone who \
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

pub fn enroll_before_password(line: &ModuleLine, service: &str) -> Finding {
    at(
        line,
        Error,
        "enroll-at-login",
        format!(
            "`enroll_at_login` in the {service} stack runs even after a wrong password: \
                 whoever knows a user name could bind their own device to that account"
        ),
        "put a password module that stops the stack (`requisite`) before it, or remove \
         `enroll_at_login`"
            .into(),
    )
}

pub fn asked_twice(second: &ModuleLine, first: &ModuleLine, service: &str) -> Finding {
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
            "the {service} stack asks for the code twice: here and at {}:{}{via}",
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

// sshd.

pub fn no_sshd_config() -> Finding {
    finding(
        Note,
        "sshd-config",
        MAIN_FILE,
        None,
        "the sshd stack has pam_twofactor.so but there is no sshd_config: sshd was not checked"
            .into(),
        "check again where sshd is installed".into(),
    )
}

pub fn use_pam_off(s: &Setting) -> Finding {
    at_setting(
        s,
        Error,
        "usepam",
        format!(
            "{}: sshd never runs the PAM stack, so the code is never asked over SSH",
            shown(s)
        ),
        "set `UsePAM yes` in /etc/ssh/sshd_config.d/00-twofactor.conf".into(),
    )
}

pub fn kbd_off(s: &Setting, scope: Option<&MatchBlock>) -> Finding {
    at_setting(
        s,
        Error,
        "kbd-interactive",
        scoped(
            scope,
            format!(
                "{}: the code is never asked over SSH (it needs \
                                keyboard-interactive)",
                shown(s)
            ),
        ),
        "set `KbdInteractiveAuthentication yes` in a drop-in that sorts first \
         (/etc/ssh/sshd_config.d/00-twofactor.conf)"
            .into(),
    )
}

pub fn methods_any(s: &Setting, scope: Option<&MatchBlock>) -> Finding {
    at_setting(
        s,
        Warning,
        "authentication-methods",
        scoped(
            scope,
            format!(
                "{}: a key alone logs in, and sshd never runs the PAM stack for \
                                it, so no code is asked",
                shown(s)
            ),
        ),
        "set `AuthenticationMethods publickey,keyboard-interactive` (key and code) or \
         `keyboard-interactive` (password and code)"
            .into(),
    )
}

pub fn methods_without_kbd(s: &Setting, without: &[String], scope: Option<&MatchBlock>) -> Finding {
    at_setting(
        s,
        Error,
        "authentication-methods",
        scoped(
            scope,
            format!(
                "{}: {} logs in without keyboard-interactive, so no code is asked",
                shown(s),
                without.join(" and ")
            ),
        ),
        "add keyboard-interactive to every list: `AuthenticationMethods \
         publickey,keyboard-interactive`"
            .into(),
    )
}

pub fn password_authentication(s: &Setting, scope: Option<&MatchBlock>) -> Finding {
    at_setting(
        s,
        Warning,
        "password-authentication",
        scoped(
            scope,
            format!(
                "{} with PAM: sshd answers the module's prompt with the password, \
                                so enrolled users fail and each try counts as a wrong code",
                shown(s)
            ),
        ),
        "set `PasswordAuthentication no` in a drop-in that sorts first; passwords still work \
         through keyboard-interactive"
            .into(),
    )
}

pub fn root_prohibit_password(s: &Setting, scope: Option<&MatchBlock>) -> Finding {
    at_setting(
        s,
        Warning,
        "permit-root-login",
        scoped(
            scope,
            format!(
                "{}: sshd refuses keyboard-interactive for root and feeds PAM a \
                                fake password, so root's logins waste a code or end in sshd's \
                                fatal \"PAM auth succeeded when it should have failed\"",
                shown(s)
            ),
        ),
        "set `PermitRootLogin no` (admins log in as themselves and use sudo), or \
         `PermitRootLogin yes` with `AuthenticationMethods publickey,keyboard-interactive`"
            .into(),
    )
}

pub fn shadowed(loser: &Setting, winner: &Setting, severity: Severity) -> Finding {
    let winner_at = match winner.line {
        Some(line) => format!("{}:{line}", winner.file),
        None => winner.file.clone(),
    };
    at_setting(
        loser,
        severity,
        "drop-in-order",
        format!(
            "`{} {}` is ignored: sshd keeps the first value it reads, `{}` from {winner_at}",
            keyword(&loser.keyword),
            loser.value,
            winner.value
        ),
        "give the twofactor drop-in a name that sorts first (00-twofactor.conf), or remove the \
         earlier line"
            .into(),
    )
}

pub fn match_block_read(block: &MatchBlock) -> Finding {
    let keywords: Vec<String> = block
        .settings
        .iter()
        .map(|s| format!("`{} {}`", keyword(&s.keyword), s.value))
        .collect();
    finding(
        Note,
        "match",
        &block.file,
        Some(block.line),
        format!(
            "`Match {}` sets {} for the connections it matches",
            block.criteria,
            keywords.join(", ")
        ),
        "check that it still asks those users for the code (`sshd -T -C user=NAME,host=H,addr=A`)"
            .into(),
    )
}
