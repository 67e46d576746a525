//! The sshd traps: where the sshd stack has the module but sshd never asks for the code, asks
//! it of a password, or ends root's logins badly. Checked globally and in each `Match` block.

use super::flow::{self, World};
use super::messages as m;
use super::pam::Ret;
use super::sshd::{self, MatchBlock, Setting, SshdConfig};
use super::{Finding, Gathered, Severity};

/// The keywords that decide whether 2FA is asked over SSH.
const RELEVANT: &[&str] = &[
    "usepam",
    "kbdinteractiveauthentication",
    "passwordauthentication",
    "authenticationmethods",
    "permitrootlogin",
];

/// Whether the sshd stack runs the module at a login (it has it and reaches it).
fn sshd_has_module(g: &Gathered) -> bool {
    g.stack("sshd").is_some_and(|stack| {
        let outcome = flow::run(
            &stack.entries,
            World {
                password_ok: true,
                twofactor: Ret::Success,
                key: true,
            },
        );
        stack.twofactor_lines().iter().any(|l| outcome.ran(l))
    })
}

/// Whether every `AuthenticationMethods` list has `publickey` before keyboard-interactive:
/// then sshd checked a key before the PAM stack runs.
pub fn key_first(g: &Gathered) -> bool {
    let Some(config) = &g.sshd else { return false };
    lists_key_first(&config.effective("authenticationmethods").value)
}

fn lists_key_first(methods: &str) -> bool {
    let lists = sshd::method_lists(methods);
    !methods.eq_ignore_ascii_case("any")
        && lists.iter().all(|list| {
            let key = list.iter().position(|m| m == "publickey");
            let kbd = list.iter().position(|m| m == "keyboard-interactive");
            matches!((key, kbd), (Some(k), Some(i)) if k < i)
        })
}

pub fn all(g: &Gathered, out: &mut Vec<Finding>) {
    if !sshd_has_module(g) {
        return;
    }
    let Some(config) = &g.sshd else {
        out.push(m::no_sshd_config());
        return;
    };
    let global = |keyword: &str| config.effective(keyword);
    use_pam(&global("usepam"), out);
    effective_checks(&global, None, out);
    drop_in_order(config, out);
    for block in &config.matches {
        match_block(config, block, out);
    }
}

/// The checks that apply globally and again inside each `Match` block.
fn effective_checks(
    get: &dyn Fn(&str) -> Setting,
    scope: Option<&MatchBlock>,
    out: &mut Vec<Finding>,
) {
    let kbd = get("kbdinteractiveauthentication");
    let methods = get("authenticationmethods");
    keyboard_interactive(&kbd, scope, out);
    authentication_methods(&methods, &get("pubkeyauthentication"), scope, out);
    password_authentication(&get("passwordauthentication"), &methods, scope, out);
    root_login(&get("permitrootlogin"), &methods, scope, out);
}

fn is_yes(setting: &Setting) -> bool {
    setting.value.eq_ignore_ascii_case("yes")
}

fn use_pam(setting: &Setting, out: &mut Vec<Finding>) {
    if !is_yes(setting) {
        out.push(m::use_pam_off(setting));
    }
}

fn keyboard_interactive(setting: &Setting, scope: Option<&MatchBlock>, out: &mut Vec<Finding>) {
    if !is_yes(setting) {
        out.push(m::kbd_off(setting, scope));
    }
}

fn allows(methods: &str, method: &str) -> bool {
    methods.eq_ignore_ascii_case("any")
        || sshd::method_lists(methods)
            .iter()
            .any(|list| list.iter().any(|m| m == method))
}

fn authentication_methods(
    methods: &Setting,
    pubkey: &Setting,
    scope: Option<&MatchBlock>,
    out: &mut Vec<Finding>,
) {
    if methods.value.eq_ignore_ascii_case("any") {
        if is_yes(pubkey) {
            out.push(m::methods_any(methods, scope));
        }
        return;
    }
    let without: Vec<String> = sshd::method_lists(&methods.value)
        .into_iter()
        .filter(|list| !list.iter().any(|m| m == "keyboard-interactive"))
        .map(|list| list.join(","))
        .collect();
    if !without.is_empty() {
        out.push(m::methods_without_kbd(methods, &without, scope));
    }
}

fn password_authentication(
    password: &Setting,
    methods: &Setting,
    scope: Option<&MatchBlock>,
    out: &mut Vec<Finding>,
) {
    if is_yes(password) && allows(&methods.value, "password") {
        out.push(m::password_authentication(password, scope));
    }
}

fn root_login(
    root: &Setting,
    methods: &Setting,
    scope: Option<&MatchBlock>,
    out: &mut Vec<Finding>,
) {
    let value = root.value.to_ascii_lowercase();
    if (value == "prohibit-password" || value == "without-password")
        && allows(&methods.value, "keyboard-interactive")
    {
        out.push(m::root_prohibit_password(root, scope));
    }
}

/// A drop-in line that loses to an earlier one with another value (sshd keeps the first).
/// Losing lines of the main file are the usual Debian layout (its drop-ins come first).
fn drop_in_order(config: &SshdConfig, out: &mut Vec<Finding>) {
    for keyword in RELEVANT {
        for (winner, loser) in config.shadowed(keyword) {
            if loser.file == sshd::MAIN_FILE || loser.file == winner.file {
                continue;
            }
            let severity = if loser.file.contains("twofactor") {
                Severity::Warning
            } else {
                Severity::Note
            };
            out.push(m::shadowed(loser, winner, severity));
        }
    }
}

/// A `Match` block that changes how users log in: reported, and checked as above.
fn match_block(config: &SshdConfig, block: &MatchBlock, out: &mut Vec<Finding>) {
    let sets: Vec<&str> = block
        .settings
        .iter()
        .map(|s| s.keyword.as_str())
        .filter(|k| RELEVANT.contains(k))
        .collect();
    if sets.is_empty() {
        return;
    }
    out.push(m::match_block_read(block));
    let mut found = Vec::new();
    let get = |keyword: &str| config.effective_in(block, keyword);
    effective_checks(&get, Some(block), &mut found);
    // Only what the block itself changes: the global findings are already reported.
    out.extend(found.into_iter().filter(|f| {
        block
            .settings
            .iter()
            .any(|s| s.file == f.file && s.line == f.line)
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_first_lists() {
        assert!(lists_key_first("publickey,keyboard-interactive"));
        assert!(lists_key_first(
            "publickey,keyboard-interactive:pam publickey,password,keyboard-interactive"
        ));
        assert!(!lists_key_first("keyboard-interactive"));
        assert!(!lists_key_first("any"));
        assert!(!lists_key_first(
            "publickey,keyboard-interactive keyboard-interactive"
        ));
    }
}
