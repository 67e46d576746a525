//! `--user NAME`: for each service whose stack has the module, what NAME is asked at login.
//! The user's state comes from the daemon (`Status`); the module's answer to it is then run
//! through the stack as libpam would.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use twofactor_proto::UserStatus;

use super::Gathered;
use super::flow::{self, World};
use super::pam::Ret;
use crate::client::Daemon;
use crate::error::CliError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Asked {
    Code,
    Nothing,
    Denied,
}

impl Asked {
    pub fn as_str(self) -> &'static str {
        match self {
            Asked::Code => "code",
            Asked::Nothing => "nothing",
            Asked::Denied => "denied",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceAnswer {
    pub service: String,
    pub asked: Asked,
    pub why: String,
}

/// What the module answers this user, and why (the daemon's plan, as the module acts on it).
fn module_answer(status: &UserStatus, now: u64, enroll_at_login: bool) -> (Ret, String) {
    if !status.problem.is_empty() {
        return (Ret::AuthErr, why_problem(&status.problem));
    }
    if status.locked {
        return (Ret::AuthErr, why_locked());
    }
    if status.enrolled {
        return (Ret::Success, why_enrolled());
    }
    match status.policy.as_str() {
        "required" if status.grace_ends_at > now => (Ret::Ignore, why_grace(status.grace_ends_at)),
        "required" => (Ret::AuthErr, why_required(enroll_at_login)),
        policy => (Ret::Ignore, why_exempt(policy, &status.policy_source)),
    }
}

pub fn dry_run(
    g: &Gathered,
    user: &str,
    daemon: &dyn Daemon,
) -> Result<Vec<ServiceAnswer>, CliError> {
    let status = daemon.status(user).map_err(|error| match error {
        twofactor_proto::Error::ZBus(_) => CliError::System(super::messages::daemon_unreachable(
            &CliError::from(error).to_string(),
        )),
        other => CliError::from(other),
    })?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let sshd_never_asks = {
        let mut found = Vec::new();
        super::sshd_checks::all(g, &mut found);
        found.iter().any(|f| {
            matches!(f.check, "usepam" | "kbd-interactive")
                || (f.check == "authentication-methods" && f.severity == super::Severity::Error)
        })
    };
    let mut out = Vec::new();
    for stack in g.stacks.iter().filter(|s| !s.twofactor_lines().is_empty()) {
        let lines = stack.twofactor_lines();
        let enroll = lines.iter().any(|l| l.has_arg("enroll_at_login"));
        let require_key = lines.iter().any(|l| l.has_arg("require_publickey"));
        let (ret, why) = module_answer(&status, now, enroll);
        let outcome = flow::run(
            &stack.entries,
            World {
                password_ok: true,
                twofactor: ret,
                key: true,
            },
        );
        let (asked, why) = if stack.service == "sshd" && sshd_never_asks {
            (Asked::Nothing, why_sshd_never_asks(&why))
        } else if !outcome.success {
            let why = if ret == Ret::AuthErr {
                why
            } else {
                why_stack_denies(&why)
            };
            (Asked::Denied, why)
        } else if ret == Ret::Success {
            (Asked::Code, why)
        } else {
            (Asked::Nothing, why)
        };
        let why = if require_key && stack.service == "sshd" {
            why_with_key(&why)
        } else {
            why
        };
        out.push(ServiceAnswer {
            service: stack.service.clone(),
            asked,
            why,
        });
    }
    Ok(out)
}

// Why, in the dry run's words.

fn why_enrolled() -> String {
    "enrolled: the module asks for a code".into()
}
fn why_problem(problem: &str) -> String {
    format!(
        "the account's two-factor state cannot be used ({problem}): denied until an administrator resets it"
    )
}
fn why_locked() -> String {
    "locked after too many wrong codes: denied until `twofactor unlock`".into()
}
fn why_exempt(policy: &str, source: &str) -> String {
    format!("policy {policy} ({source}) and not enrolled: the module asks nothing")
}
fn why_grace(until: u64) -> String {
    format!(
        "required but in the grace period (until {}): asked nothing, reminded to enroll",
        crate::format::time(until)
    )
}
fn why_required(enroll_at_login: bool) -> String {
    if enroll_at_login {
        "required and not enrolled: enrolled inside the login where [enrollment] at_login \
         allows it from there, else denied"
            .into()
    } else {
        "required and not enrolled: denied with instructions to enroll".into()
    }
}
fn why_stack_denies(why: &str) -> String {
    format!("{why}; but the stack denies it: every module ignores (see `twofactor doctor`)")
}
fn why_with_key(why: &str) -> String {
    format!("with a publickey: {why}; without one over ssh: denied (require_publickey)")
}
fn why_sshd_never_asks(why: &str) -> String {
    format!(
        "sshd never runs keyboard-interactive with PAM (see `twofactor doctor`), so the module is not reached ({why})"
    )
}
