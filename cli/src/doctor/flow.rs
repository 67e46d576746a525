//! What libpam makes of an `auth` stack, given what each module answers: the rules of
//! Linux-PAM's `_pam_dispatch_aux` (impression, status, jumps, substacks) on a model of the
//! modules. A stack in which every module ignores fails, as libpam's does.

use super::pam::{Action, Entry, ModuleLine, Ret};

/// The situation a login is imagined in.
#[derive(Debug, Clone, Copy)]
pub struct World {
    /// The first factor (password, or the module that checks it) succeeds.
    pub password_ok: bool,
    /// What pam_twofactor answers where it is not told otherwise by its arguments.
    pub twofactor: Ret,
    /// sshd reported a publickey that succeeded (`SSH_AUTH_INFO_0`).
    pub key: bool,
}

/// What happened.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub success: bool,
    /// The module lines that ran, in order (file, line).
    pub ran: Vec<(String, usize)>,
}

impl Outcome {
    pub fn ran(&self, line: &ModuleLine) -> bool {
        self.ran
            .iter()
            .any(|(file, n)| *file == line.file && *n == line.line)
    }

    /// The position of `line` in the order the modules ran.
    pub fn ran_at(&self, line: &ModuleLine) -> Option<usize> {
        self.ran
            .iter()
            .position(|(file, n)| *file == line.file && *n == line.line)
    }
}

/// How a module behaves, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    TwoFactor,
    Permit,
    Deny,
    /// Succeeds only for root callers (`pam_rootok`): the attacker is not root.
    RootOk,
    /// Returns PAM_IGNORE (or does not authenticate at all).
    Ignoring,
    /// Checks who the user is but not a secret (`pam_succeed_if`, `pam_localuser`).
    Condition,
    /// A first factor: pam_unix, pam_sss, and any module the doctor does not know.
    FirstFactor,
}

pub fn kind(line: &ModuleLine) -> Kind {
    match line.name() {
        super::pam::TWOFACTOR_MODULE => Kind::TwoFactor,
        "pam_permit.so" => Kind::Permit,
        "pam_deny.so" => Kind::Deny,
        "pam_rootok.so" => Kind::RootOk,
        "pam_faildelay.so"
        | "pam_nologin.so"
        | "pam_env.so"
        | "pam_group.so"
        | "pam_cap.so"
        | "pam_echo.so"
        | "pam_warn.so"
        | "pam_motd.so"
        | "pam_mail.so"
        | "pam_lastlog.so"
        | "pam_securetty.so"
        | "pam_shells.so"
        | "pam_keyinit.so"
        | "pam_limits.so"
        | "pam_gnome_keyring.so"
        | "pam_kwallet5.so"
        | "pam_systemd.so" => Kind::Ignoring,
        "pam_succeed_if.so" | "pam_localuser.so" | "pam_usertype.so" | "pam_access.so"
        | "pam_time.so" | "pam_listfile.so" => Kind::Condition,
        "pam_faillock.so" if !line.has_arg("authfail") => Kind::Condition,
        _ => Kind::FirstFactor,
    }
}

fn answer(line: &ModuleLine, world: World) -> Ret {
    match kind(line) {
        Kind::TwoFactor if line.has_arg("require_publickey") => {
            match (world.key, world.twofactor) {
                (false, _) => Ret::AuthErr,
                (true, Ret::Ignore) => Ret::Success,
                (true, ret) => ret,
            }
        }
        Kind::TwoFactor => world.twofactor,
        Kind::Permit | Kind::Condition => Ret::Success,
        Kind::Deny | Kind::RootOk => Ret::AuthErr,
        Kind::Ignoring => Ret::Ignore,
        Kind::FirstFactor if world.password_ok => Ret::Success,
        Kind::FirstFactor => Ret::AuthErr,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Impression {
    Undef,
    Positive,
    Negative,
}

/// Runs `entries` in `world`.
pub fn run(entries: &[Entry], world: World) -> Outcome {
    let mut outcome = Outcome::default();
    let (impression, success) = run_level(entries, world, &mut outcome);
    outcome.success = impression == Impression::Positive && success;
    outcome
}

/// One stack level; returns the impression and whether the status is PAM_SUCCESS.
fn run_level(entries: &[Entry], world: World, outcome: &mut Outcome) -> (Impression, bool) {
    let mut impression = Impression::Undef;
    let mut status_success = false;
    let mut skip = 0usize;
    for entry in entries {
        if skip > 0 {
            skip -= 1;
            continue;
        }
        let (line, ret) = match entry {
            Entry::Module(line) => {
                outcome.ran.push((line.file.clone(), line.line));
                (line, answer(line, world))
            }
            Entry::Substack { at, entries } => {
                let (inner, ok) = run_level(entries, world, outcome);
                let ret = match inner {
                    Impression::Positive if ok => Ret::Success,
                    Impression::Undef => Ret::Ignore,
                    _ => Ret::AuthErr,
                };
                (at, ret)
            }
        };
        match line.control.action(ret) {
            Action::Reset => {
                impression = Impression::Undef;
                status_success = false;
            }
            action @ (Action::Ok | Action::Done) => {
                let undecided = impression == Impression::Undef
                    || (impression == Impression::Positive && status_success);
                if undecided && ret != Ret::Ignore {
                    impression = Impression::Positive;
                    status_success = ret == Ret::Success;
                }
                if impression != Impression::Negative && action == Action::Done {
                    return (impression, status_success);
                }
            }
            action @ (Action::Bad | Action::Die) => {
                if impression != Impression::Negative {
                    impression = Impression::Negative;
                    status_success = false;
                }
                if action == Action::Die {
                    return (impression, status_success);
                }
            }
            Action::Ignore => {}
            Action::Jump(n) => skip = n,
        }
    }
    (impression, status_success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::pam::Control;

    fn line(n: usize, control: Control, module: &str, args: &[&str]) -> Entry {
        Entry::Module(ModuleLine {
            file: "/etc/pam.d/x".into(),
            line: n,
            control,
            module: module.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            dash: false,
        })
    }

    fn debian_common_auth() -> Vec<Entry> {
        use crate::doctor::pam::Action::{Ignore, Jump};
        vec![
            line(
                1,
                Control::Actions(vec![
                    ("success".into(), Jump(1)),
                    ("default".into(), Ignore),
                ]),
                "pam_unix.so",
                &[],
            ),
            line(2, Control::Requisite, "pam_deny.so", &[]),
            line(3, Control::Required, "pam_permit.so", &[]),
        ]
    }

    const fn world(password_ok: bool, twofactor: Ret) -> World {
        World {
            password_ok,
            twofactor,
            key: false,
        }
    }

    #[test]
    fn alone_an_ignore_denies() {
        let stack = [line(1, Control::Required, "pam_twofactor.so", &[])];
        assert!(!run(&stack, world(true, Ret::Ignore)).success);
        assert!(run(&stack, world(true, Ret::Success)).success);
    }

    #[test]
    fn debian_common_auth_then_the_module() {
        let mut stack = debian_common_auth();
        stack.push(line(4, Control::Required, "pam_twofactor.so", &[]));
        assert!(run(&stack, world(true, Ret::Ignore)).success);
        assert!(!run(&stack, world(true, Ret::AuthErr)).success);
        let wrong = run(&stack, world(false, Ret::Success));
        assert!(!wrong.success && wrong.ran.len() == 2, "{wrong:?}");
    }

    #[test]
    fn required_password_runs_on() {
        let stack = [
            line(1, Control::Required, "pam_unix.so", &[]),
            line(2, Control::Required, "pam_twofactor.so", &[]),
        ];
        let wrong = run(&stack, world(false, Ret::Success));
        assert!(!wrong.success && wrong.ran.len() == 2);
    }

    #[test]
    fn a_substack_ends_only_itself() {
        let inner = vec![
            line(1, Control::Sufficient, "pam_unix.so", &[]),
            line(2, Control::Required, "pam_deny.so", &[]),
        ];
        let stack = vec![
            Entry::Substack {
                at: ModuleLine {
                    file: "/etc/pam.d/sshd".into(),
                    line: 1,
                    control: Control::Required,
                    module: "password-auth".into(),
                    args: vec![],
                    dash: false,
                },
                entries: inner.clone(),
            },
            line(3, Control::Required, "pam_twofactor.so", &[]),
        ];
        assert!(!run(&stack, world(true, Ret::AuthErr)).success);
        assert!(run(&stack, world(true, Ret::Ignore)).success);
        // The same lines included: sufficient ends the whole stack, the module never runs.
        let mut flat = inner;
        flat.push(line(3, Control::Required, "pam_twofactor.so", &[]));
        assert!(run(&flat, world(true, Ret::AuthErr)).success);
    }
}
