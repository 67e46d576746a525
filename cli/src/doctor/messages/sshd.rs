//! The findings about sshd's configuration.

use super::super::sshd::{MAIN_FILE, MatchBlock, Setting};
use super::super::{Finding, Severity};
use super::finding;

use Severity::{Error, Note, Warning};

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
    // Inside a Match block this may be meant (users whose policy is disabled, as sftponly).
    let (severity, unless) = match scope {
        Some(_) => (
            Warning,
            " (right only if twofactor's policy disables these users)",
        ),
        None => (Error, ""),
    };
    at_setting(
        s,
        severity,
        "authentication-methods",
        scoped(
            scope,
            format!(
                "{}: {} logs in without keyboard-interactive, so no code is asked{unless}",
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
        if severity == Note {
            "none if the earlier value is the one you want; otherwise remove the earlier line"
                .into()
        } else {
            "give the twofactor drop-in a name that sorts first (00-twofactor.conf), or remove \
             the earlier line"
                .into()
        },
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
