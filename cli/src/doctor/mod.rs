//! `twofactor doctor`: reads this machine's PAM stacks, sshd configuration and the daemon's
//! config (or those under `--root DIR`) and reports the setups that lock people out or let
//! them in without a code, each with its file, line and fix.

mod checks;
mod dry_run;
mod flow;
mod messages;
mod pam;
mod report;
mod sshd;
mod sshd_checks;
mod system;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cli::DoctorArgs;
use crate::error::CliError;
use crate::io::Io;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Note,
    Warning,
    Error,
}

/// One thing found: where, why it matters, and the exact fix.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// The path on the checked system (`/etc/pam.d/sshd`), also under `--root`.
    pub file: String,
    /// None for a finding about a whole file or a missing one.
    pub line: Option<usize>,
    pub message: String,
    pub fix: String,
    /// Which check made it: one finding per check and line.
    #[serde(skip)]
    pub check: &'static str,
}

/// The system being checked: `/`, or the tree given with `--root`.
#[derive(Debug, Clone)]
pub struct Root {
    dir: PathBuf,
    /// The running system: `sshd -T` and the bus may be asked.
    pub live: bool,
}

impl Root {
    pub fn new(dir: &Path, live: bool) -> Root {
        Root {
            dir: dir.to_owned(),
            live,
        }
    }

    /// Where `system_path` (absolute on the checked system) is on this machine.
    pub fn path(&self, system_path: &str) -> PathBuf {
        self.dir.join(system_path.trim_start_matches('/'))
    }

    pub fn exists(&self, system_path: &str) -> bool {
        self.path(system_path).exists()
    }

    /// The file's text; None if it does not exist. Any other failure stops the doctor.
    pub fn read_optional(&self, system_path: &str) -> Result<Option<String>, String> {
        let path = self.path(system_path);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) if error.raw_os_error() == Some(nix::libc::EISDIR) => Ok(None),
            Err(error) => Err(messages::cannot_read(&path, &error)),
        }
    }

    /// The names in a directory that must exist.
    pub fn list_dir(&self, system_path: &str) -> Result<Vec<String>, String> {
        let path = self.path(system_path);
        let entries =
            std::fs::read_dir(&path).map_err(|error| messages::cannot_read(&path, &error))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|error| messages::cannot_read(&path, &error))?;
            if entry.path().is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(names)
    }

    /// The files matching a glob of system paths, in sorted order, as system paths.
    pub fn glob(&self, pattern: &str) -> Result<Vec<String>, String> {
        let base = self.dir.to_string_lossy();
        let full = format!(
            "{}/{}",
            glob::Pattern::escape(base.trim_end_matches('/')),
            pattern.trim_start_matches('/')
        );
        let paths = glob::glob(&full).map_err(|error| messages::bad_glob(pattern, &error))?;
        let mut out = Vec::new();
        for path in paths {
            let path = path.map_err(|error| messages::cannot_read(error.path(), error.error()))?;
            if !path.is_file() {
                continue;
            }
            let relative = path.strip_prefix(&self.dir).unwrap_or(&path);
            out.push(format!("/{}", relative.display()));
        }
        out.sort();
        Ok(out)
    }
}

/// Everything the checks look at, read once.
#[derive(Debug)]
pub struct Gathered {
    pub root: Root,
    /// The `auth` stack of each service.
    pub stacks: Vec<pam::Stack>,
    pub sshd: Option<sshd::SshdConfig>,
    /// `twofactor.toml`'s text, if there is one.
    pub config: Option<String>,
    /// Whether the daemon can be reached or started, with the reason if not.
    pub daemon: system::DaemonState,
    /// Findings made while reading (unparseable lines, missing includes, `sshd -T` refusals).
    pub read_findings: Vec<Finding>,
}

impl Gathered {
    pub fn stack(&self, service: &str) -> Option<&pam::Stack> {
        self.stacks.iter().find(|stack| stack.service == service)
    }
}

pub fn gather(root: Root) -> Result<Gathered, String> {
    let mut read_findings = Vec::new();
    let mut stacks = Vec::new();
    for service in pam::services(&root)? {
        stacks.push(pam::load_stack(
            &root,
            &service,
            "auth",
            &mut read_findings,
        )?);
    }
    let mut sshd = sshd::read(&root, &mut read_findings)?;
    if let Some(config) = sshd.as_mut() {
        system::effective_sshd(&root, config, &mut read_findings);
    }
    let config = root.read_optional(system::CONFIG_FILE)?;
    let daemon = system::daemon_state(&root);
    Ok(Gathered {
        root,
        stacks,
        sshd,
        config,
        daemon,
        read_findings,
    })
}

/// `twofactor doctor`.
pub fn doctor(args: &DoctorArgs, io: &mut Io<'_>) -> Result<(), CliError> {
    let root = match &args.root {
        Some(dir) => Root::new(dir, false),
        None => {
            if !nix::unistd::geteuid().is_root() {
                return Err(CliError::System(messages::NEEDS_ROOT.into()));
            }
            Root::new(Path::new("/"), true)
        }
    };
    let gathered = gather(root).map_err(CliError::System)?;
    if let Some(user) = &args.user {
        crate::commands::valid_user(user)?;
        let daemon = crate::client::BusDaemon::connect(&crate::client::bus_address())
            .map_err(|error| CliError::System(messages::daemon_unreachable(&error.to_string())))?;
        let services = dry_run::dry_run(&gathered, user, &daemon)?;
        return report::print_dry_run(io, user, &services, args.json);
    }
    let findings = checks::all(&gathered);
    report::print_findings(io, &findings, args.json)?;
    if findings.iter().any(|f| f.severity >= Severity::Warning) {
        Err(CliError::Reported)
    } else {
        Ok(())
    }
}
