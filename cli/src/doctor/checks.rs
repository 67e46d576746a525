//! The PAM traps, one function each. Each looks at a stack (or the whole system) and adds
//! findings; the sentences are in `messages`.

use super::flow::{self, Kind, World};
use super::messages as m;
use super::pam::{Action, Control, ModuleLine, Ret, Stack};
use super::system::{self, DaemonState};
use super::{Finding, Gathered};

/// Every check, deduplicated (a line of common-auth is seen once per service including it),
/// in file and line order.
pub fn all(g: &Gathered) -> Vec<Finding> {
    let mut out = g.read_findings.clone();
    let key_first = super::sshd_checks::key_first(g);
    for stack in g.stacks.iter().filter(|s| !s.twofactor_lines().is_empty()) {
        let sshd_key = stack.service == "sshd" && key_first;
        for line in stack.twofactor_lines() {
            let control_found = control(line, &mut out);
            unavailable_ignore(line, &mut out);
            require_publickey_outside_sshd(stack, line, &mut out);
            forward_pass(line, &mut out);
            use_first_pass_after_password(stack, line, &mut out);
            arguments(line, &mut out);
            if !control_found {
                bypass(stack, line, &mut out);
            }
        }
        never_succeeds(stack, &mut out);
        exempt_denied(stack, &mut out);
        no_first_factor(stack, sshd_key, &mut out);
        first_factor_does_not_stop(stack, sshd_key, &mut out);
        module_before_first_factor(stack, sshd_key, &mut out);
        enroll_before_password(stack, sshd_key, &mut out);
        asked_twice(stack, &mut out);
    }
    sudo_and_sudo_i(g, &mut out);
    module_paths(g, &mut out);
    daemon_reachable(g, &mut out);
    not_configured(g, &mut out);
    at_login_from_local(g, &mut out);
    super::sshd_checks::all(g, &mut out);
    dedupe(out)
}

fn dedupe(findings: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for finding in findings {
        let seen = out
            .iter()
            .any(|f| f.file == finding.file && f.line == finding.line && f.check == finding.check);
        if !seen {
            out.push(finding);
        }
    }
    out.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    out
}

fn world(password_ok: bool, twofactor: Ret, key: bool) -> World {
    World {
        password_ok,
        twofactor,
        key,
    }
}

/// `sufficient`, `optional`, or a bracket control that lets a wrong code through.
fn control(line: &ModuleLine, out: &mut Vec<Finding>) -> bool {
    let lets_through = match &line.control {
        Control::Sufficient | Control::Optional => true,
        Control::Actions(_) => {
            matches!(
                line.control.default_action(),
                Some(Action::Ignore | Action::Ok)
            ) || !matches!(line.control.action(Ret::AuthErr), Action::Bad | Action::Die)
        }
        Control::Required | Control::Requisite => false,
    };
    if lets_through {
        out.push(m::weak_control(line));
    }
    lets_through
}

fn unavailable_ignore(line: &ModuleLine, out: &mut Vec<Finding>) {
    if line.arg_value("unavailable") == Some("ignore") {
        out.push(m::unavailable_ignore(line));
    }
}

fn require_publickey_outside_sshd(stack: &Stack, line: &ModuleLine, out: &mut Vec<Finding>) {
    if line.has_arg("require_publickey") && stack.service != "sshd" {
        out.push(m::require_publickey_outside_sshd(line, &stack.service));
    }
}

fn forward_pass(line: &ModuleLine, out: &mut Vec<Finding>) {
    if line.has_arg("forward_pass") {
        out.push(m::forward_pass(line));
    }
}

/// `use_first_pass` after a password module: PAM_AUTHTOK holds the password, not a code.
fn use_first_pass_after_password(stack: &Stack, line: &ModuleLine, out: &mut Vec<Finding>) {
    if !line.has_arg("use_first_pass") {
        return;
    }
    let modules = stack.modules();
    let before = modules
        .iter()
        .take_while(|other| other.file != line.file || other.line != line.line)
        .any(|other| flow::kind(other) == Kind::FirstFactor && !other.has_arg("forward_pass"));
    if before {
        out.push(m::use_first_pass_after_password(line));
    }
}

/// Unknown or malformed arguments (the module logs and ignores them).
fn arguments(line: &ModuleLine, out: &mut Vec<Finding>) {
    let mut unknown = Vec::new();
    for arg in &line.args {
        let (name, value) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (arg.as_str(), None),
        };
        let valid = match (name, value) {
            (
                "require_publickey"
                | "forward_pass"
                | "enroll_at_login"
                | "use_first_pass"
                | "try_first_pass"
                | "echo_code"
                | "debug"
                | "prompt_after_notices",
                None,
            ) => true,
            ("unavailable", Some(v)) => v == "ignore" || v == "fail",
            ("tries" | "timeout", Some(v)) => v.parse::<u32>().is_ok_and(|n| n >= 1),
            ("bus_address", Some(v)) => v.starts_with("unix:"),
            ("prompt", Some(_)) => true,
            _ => false,
        };
        if !valid {
            unknown.push(arg.as_str());
        } else if name == "bus_address" {
            out.push(m::bus_address(line));
        }
    }
    if !unknown.is_empty() {
        out.push(m::unknown_arguments(line, &unknown));
    }
}

/// Even the right password and the right code fail: the stack locks everyone out.
fn never_succeeds(stack: &Stack, out: &mut Vec<Finding>) {
    if !flow::run(&stack.entries, world(true, Ret::Success, true)).success
        && let Some(line) = stack.twofactor_lines().into_iter().next()
    {
        out.push(m::never_succeeds(line, &stack.service));
    }
}

/// The module answers PAM_IGNORE to exempt users; a stack with nothing else that succeeds
/// then denies them (libpam: every module ignored → PAM_PERM_DENIED).
fn exempt_denied(stack: &Stack, out: &mut Vec<Finding>) {
    let exempt = flow::run(&stack.entries, world(true, Ret::Ignore, true));
    let enrolled = flow::run(&stack.entries, world(true, Ret::Success, true));
    if exempt.success || !enrolled.success {
        return;
    }
    if let Some(line) = stack.twofactor_lines().into_iter().find(|l| exempt.ran(l)) {
        out.push(m::exempt_denied(line, &stack.service));
    }
}

/// A wrong code still logs in: the module is skipped, or its failure does not count.
fn bypass(stack: &Stack, line: &ModuleLine, out: &mut Vec<Finding>) {
    let outcome = flow::run(&stack.entries, world(true, Ret::AuthErr, true));
    if !outcome.success {
        return;
    }
    if outcome.ran(line) {
        out.push(m::failure_ignored(line, &stack.service));
    } else {
        out.push(m::module_skipped(line, &stack.service));
    }
}

/// Without any first factor in the stack (and no key demanded by sshd), a code alone, or
/// nothing at all for an exempt user, logs in.
fn no_first_factor(stack: &Stack, sshd_key: bool, out: &mut Vec<Finding>) {
    let Some(first) = stack.twofactor_lines().into_iter().next() else {
        return;
    };
    let nothing = flow::run(&stack.entries, world(false, Ret::Ignore, sshd_key)).success;
    let code_alone = flow::run(&stack.entries, world(false, Ret::Success, sshd_key)).success;
    if !nothing && !code_alone {
        return;
    }
    let permit_after = stack
        .modules()
        .into_iter()
        .skip_while(|l| !l.is_twofactor())
        .find(|l| flow::kind(l) == Kind::Permit);
    if sshd_key {
        if let Some(permit) = permit_after {
            out.push(m::permit_after_with_key(permit));
        }
    } else if nothing {
        out.push(m::nothing_logs_in(
            permit_after.unwrap_or(first),
            &stack.service,
        ));
    } else {
        out.push(m::code_alone_logs_in(first, &stack.service));
    }
}

/// With a wrong password, the stack runs on to the module: anyone who knows a user name
/// reaches the code prompt and spends that user's failed attempts.
fn first_factor_does_not_stop(stack: &Stack, sshd_key: bool, out: &mut Vec<Finding>) {
    if sshd_key {
        return;
    }
    let outcome = flow::run(&stack.entries, world(false, Ret::AuthErr, false));
    let modules = stack.modules();
    let Some(module_at) = stack
        .twofactor_lines()
        .into_iter()
        .filter(|l| !l.has_arg("require_publickey") && !l.has_arg("forward_pass"))
        .find_map(|l| outcome.ran_at(l))
    else {
        return;
    };
    let first_factor = modules.iter().find(|l| {
        flow::kind(l) == Kind::FirstFactor && outcome.ran_at(l).is_some_and(|at| at < module_at)
    });
    if let Some(first_factor) = first_factor {
        out.push(m::first_factor_does_not_stop(first_factor, &stack.service));
    }
}

/// The module asks for the code before the password is checked (a first factor only later in
/// the stack): anyone who knows a user name reaches the code prompt, spends that user's
/// failed attempts, and learns from the prompt who is enrolled. forward_pass has its own
/// finding; sshd with the key first and require_publickey are safe.
fn module_before_first_factor(stack: &Stack, sshd_key: bool, out: &mut Vec<Finding>) {
    if sshd_key {
        return;
    }
    let outcome = flow::run(&stack.entries, world(false, Ret::AuthErr, false));
    let modules = stack.modules();
    for line in stack.twofactor_lines() {
        if line.has_arg("require_publickey") || line.has_arg("forward_pass") {
            continue;
        }
        let Some(module_at) = outcome.ran_at(line) else {
            continue;
        };
        let checked_before = modules.iter().any(|l| {
            flow::kind(l) == Kind::FirstFactor && outcome.ran_at(l).is_some_and(|at| at < module_at)
        });
        // A password module stands after it in the stack.
        let checked_later = modules
            .iter()
            .skip_while(|l| !(l.file == line.file && l.line == line.line))
            .any(|l| flow::kind(l) == Kind::FirstFactor);
        if !checked_before && checked_later {
            out.push(m::module_before_first_factor(line, &stack.service));
        }
    }
}

/// `enroll_at_login` where a caller with a wrong password reaches the module: they could bind
/// their own device to the account.
fn enroll_before_password(stack: &Stack, sshd_key: bool, out: &mut Vec<Finding>) {
    if sshd_key {
        return;
    }
    let outcome = flow::run(&stack.entries, world(false, Ret::AuthErr, false));
    for line in stack.twofactor_lines() {
        if line.has_arg("enroll_at_login")
            && !line.has_arg("require_publickey")
            && outcome.ran(line)
        {
            out.push(m::enroll_before_password(line, &stack.service));
        }
    }
}

/// The module twice in one stack (pam-auth-update's profile plus a hand-added line).
fn asked_twice(stack: &Stack, out: &mut Vec<Finding>) {
    let outcome = flow::run(&stack.entries, world(true, Ret::Success, true));
    let ran: Vec<&ModuleLine> = stack
        .twofactor_lines()
        .into_iter()
        .filter(|l| outcome.ran(l))
        .collect();
    if let [first, second, ..] = ran[..] {
        out.push(m::asked_twice(second, first, &stack.service));
    }
}

/// Debian's `sudo -i` reads `sudo-i`: both or neither should have the module.
fn sudo_and_sudo_i(g: &Gathered, out: &mut Vec<Finding>) {
    let (Some(sudo), Some(sudo_i)) = (g.stack("sudo"), g.stack("sudo-i")) else {
        return;
    };
    let has = |s: &Stack| !s.twofactor_lines().is_empty();
    match (has(sudo), has(sudo_i)) {
        (true, false) => out.push(m::sudo_pair_missing("sudo-i", "sudo")),
        (false, true) => out.push(m::sudo_pair_missing("sudo", "sudo-i")),
        _ => {}
    }
}

fn module_paths(g: &Gathered, out: &mut Vec<Finding>) {
    let mut unchecked = false;
    for stack in &g.stacks {
        for line in stack.twofactor_lines() {
            match system::module_exists(&g.root, &line.module) {
                Ok(Some(true)) => {}
                Ok(Some(false)) if !line.dash => out.push(m::module_missing(line)),
                Ok(Some(false)) => {}
                Ok(None) => unchecked = true,
                Err(error) => out.push(m::module_unchecked(line, &error)),
            }
        }
    }
    if unchecked {
        out.push(m::no_module_dir());
    }
}

fn daemon_reachable(g: &Gathered, out: &mut Vec<Finding>) {
    let DaemonState::Unreachable(why) = &g.daemon else {
        return;
    };
    let with_module: Vec<&str> = g
        .stacks
        .iter()
        .filter(|s| !s.twofactor_lines().is_empty())
        .map(|s| s.service.as_str())
        .collect();
    if !with_module.is_empty() {
        out.push(m::daemon_unreachable_for_logins(
            why,
            &with_module,
            g.root.live,
        ));
    }
}

fn not_configured(g: &Gathered, out: &mut Vec<Finding>) {
    if g.stacks.iter().all(|s| s.twofactor_lines().is_empty()) {
        out.push(m::not_configured());
    }
}

/// `[enrollment] at_login_from` with `"local"`, read as plain TOML so that this check does
/// not depend on the config crate's types.
fn at_login_from_local(g: &Gathered, out: &mut Vec<Finding>) {
    let Some(text) = &g.config else { return };
    let table: toml::Table = match toml::from_str(text) {
        Ok(table) => table,
        Err(error) => {
            out.push(m::config_invalid(&error.to_string()));
            return;
        }
    };
    let from = table.get("enrollment").and_then(|e| e.get("at_login_from"));
    let has_local = match from {
        Some(toml::Value::String(s)) => s == "local",
        Some(toml::Value::Array(items)) => items.iter().any(|v| v.as_str() == Some("local")),
        _ => false,
    };
    if has_local {
        let line = text
            .lines()
            .position(|l| l.trim_start().starts_with("at_login_from"))
            .map(|i| i + 1);
        out.push(m::at_login_from_local(line));
    }
}
