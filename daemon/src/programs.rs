//! The admin's programs the daemon runs: the `[notify]` command on events and the
//! `[delivery]` command that sends codes. No shell, a fixed argv, a clean environment, a time
//! limit; a notification never blocks or fails what caused it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use twofactor_config::file_safety;

use crate::log::{EventLog, Line};

/// How long a program may run before it is killed.
pub const PROGRAM_TIME_LIMIT: Duration = Duration::from_secs(10);

/// Something that happened to a user, for the `[notify]` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `enrolled`, `enrollment-replaced`, `disabled`, `reset`, `backup-code-used`,
    /// `backup-codes-low`, `backup-codes-regenerated`, `temporary-code-issued`, `locked`.
    pub name: &'static str,
    pub user: String,
    pub by_uid: u32,
    pub service: String,
    pub rhost: String,
    /// The login's source ([`twofactor_config::Source`]): for `locked`, the one whose failure
    /// reached the ceiling.
    pub source: String,
    pub time: u64,
}

/// Where events go.
pub trait Notifier: Send + Sync {
    /// Must return at once.
    fn notify(&self, event: Event);
}

/// No `[notify]` command.
#[derive(Debug, Default)]
pub struct NoNotifier;

impl Notifier for NoNotifier {
    fn notify(&self, _event: Event) {}
}

/// Runs `[notify] command EVENT` on a thread of its own, with `TWOFACTOR_*` variables only.
pub struct CommandNotifier {
    command: PathBuf,
    log: Arc<dyn EventLog>,
    time_limit: Duration,
}

impl std::fmt::Debug for CommandNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandNotifier")
            .field("command", &self.command)
            .finish()
    }
}

impl CommandNotifier {
    pub fn new(command: &Path, log: Arc<dyn EventLog>) -> CommandNotifier {
        CommandNotifier {
            command: command.to_owned(),
            log,
            time_limit: PROGRAM_TIME_LIMIT,
        }
    }

    #[cfg(test)]
    fn with_time_limit(mut self, limit: Duration) -> CommandNotifier {
        self.time_limit = limit;
        self
    }
}

/// Whether `program` is still root's alone (the configuration was checked when it was loaded;
/// this catches a later chmod or chown). Logs and answers `false` when not.
fn still_safe(program: &Path, kind: &str, event: &str, log: &dyn EventLog) -> bool {
    match file_safety::check_root_only_file(program) {
        Ok(_) => true,
        // Running it fails and is logged as any failure; only root could add it.
        Err(reason) if reason.problem == file_safety::Problem::Missing => true,
        Err(reason) => {
            log.warning(
                Line::new(&format!("{kind}-refused"))
                    .field("event", event)
                    .field("error", reason)
                    .as_str(),
            );
            false
        }
    }
}

impl Notifier for CommandNotifier {
    fn notify(&self, event: Event) {
        if !still_safe(&self.command, "notify", event.name, self.log.as_ref()) {
            return;
        }
        let mut command = Command::new(&self.command);
        command
            .arg(event.name)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("TWOFACTOR_EVENT", event.name)
            .env("TWOFACTOR_USER", &event.user)
            .env("TWOFACTOR_BY_UID", event.by_uid.to_string())
            .env("TWOFACTOR_SERVICE", &event.service)
            .env("TWOFACTOR_RHOST", &event.rhost)
            .env("TWOFACTOR_SOURCE", &event.source)
            .env("TWOFACTOR_TIME", event.time.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let log = self.log.clone();
        let limit = self.time_limit;
        let name = event.name;
        let spawned = std::thread::Builder::new()
            .name("notify".into())
            .spawn(move || {
                let outcome = command.spawn().and_then(|child| wait_limited(child, limit));
                report(log.as_ref(), "notify", name, outcome);
            });
        if spawned.is_err() {
            self.log.warning(
                Line::new("notify-failed")
                    .field("event", name)
                    .field("error", "no thread")
                    .as_str(),
            );
        }
    }
}

/// How a program ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Killed,
}

/// Wait for `child`, killing it after `limit`.
pub fn wait_limited(mut child: Child, limit: Duration) -> std::io::Result<Ended> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Ended::Exited(status.code().unwrap_or(-1)));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(Ended::Killed);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn report(log: &dyn EventLog, kind: &str, event: &str, outcome: std::io::Result<Ended>) -> bool {
    let failure = match outcome {
        Ok(Ended::Exited(0)) => return true,
        Ok(Ended::Exited(code)) => format!("exit status {code}"),
        Ok(Ended::Killed) => "killed after the time limit".to_string(),
        Err(error) => error.to_string(),
    };
    log.warning(
        Line::new(&format!("{kind}-failed"))
            .field("event", event)
            .field("error", failure)
            .as_str(),
    );
    false
}

/// Runs `[delivery] command USER` with the code on standard input, and waits for it.
pub fn deliver(command: &Path, user: &str, code: &str, log: &dyn EventLog) -> bool {
    if !still_safe(command, "delivery", "send-code", log) {
        return false;
    }
    let spawned = Command::new(command)
        .arg(user)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("TWOFACTOR_USER", user)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let outcome = spawned.and_then(|mut child| {
        if let Some(mut stdin) = child.stdin.take() {
            // A sender that does not read is still waited for and then killed.
            let _ = writeln!(stdin, "{code}");
        }
        wait_limited(child, PROGRAM_TIME_LIMIT)
    });
    report(log, "delivery", "send-code", outcome)
}

#[cfg(any(test, feature = "test-doubles"))]
/// Collects events, for tests.
#[derive(Debug, Default)]
pub struct MemoryNotifier(pub std::sync::Mutex<Vec<Event>>);

#[cfg(any(test, feature = "test-doubles"))]
impl MemoryNotifier {
    pub fn names(&self) -> Vec<&'static str> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|e| e.name)
            .collect()
    }
}

#[cfg(any(test, feature = "test-doubles"))]
impl Notifier for MemoryNotifier {
    fn notify(&self, event: Event) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::MemoryLog;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn event() -> Event {
        Event {
            name: "enrolled",
            user: "alice".into(),
            by_uid: 0,
            service: "sshd".into(),
            rhost: "192.0.2.1".into(),
            source: "192.0.2.1".into(),
            time: 1_800_000_000,
        }
    }

    fn wait_for(path: &Path) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(text) = std::fs::read_to_string(path)
                && text.ends_with("END\n")
            {
                return text;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{} never written", path.display());
    }

    #[test]
    fn the_command_gets_the_event_and_a_clean_environment() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let command = script(
            dir.path(),
            "notify",
            &format!(
                "{{ echo \"$1\"; env | sort; echo END; }} > {}",
                out.display()
            ),
        );
        // SAFETY-free: the variable must not reach the program.
        let log = Arc::new(MemoryLog::default());
        CommandNotifier::new(&command, log.clone()).notify(event());
        let text = wait_for(&out);
        assert!(text.starts_with("enrolled\n"), "{text}");
        for expected in [
            "TWOFACTOR_EVENT=enrolled",
            "TWOFACTOR_USER=alice",
            "TWOFACTOR_BY_UID=0",
            "TWOFACTOR_SERVICE=sshd",
            "TWOFACTOR_RHOST=192.0.2.1",
            "TWOFACTOR_TIME=1800000000",
        ] {
            assert!(text.lines().any(|l| l == expected), "{expected} in {text}");
        }
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k))
            .collect();
        for name in names {
            assert!(
                name.starts_with("TWOFACTOR_") || ["PATH", "PWD", "SHLVL", "_"].contains(&name),
                "{name} leaked"
            );
        }
    }

    #[test]
    fn notify_returns_at_once_and_a_hanging_command_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let command = script(dir.path(), "hang", "sleep 30");
        let log = Arc::new(MemoryLog::default());
        let notifier =
            CommandNotifier::new(&command, log.clone()).with_time_limit(Duration::from_millis(200));
        let started = Instant::now();
        notifier.notify(event());
        assert!(started.elapsed() < Duration::from_secs(1));
        let deadline = Instant::now() + Duration::from_secs(10);
        while log.lines().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            log.lines().iter().any(|l| l
                .contains("notify-failed event=enrolled error=\"killed after the time limit\"")),
            "{:?}",
            log.lines()
        );
    }

    #[test]
    fn failures_are_logged() {
        let dir = tempfile::tempdir().unwrap();
        let log = MemoryLog::default();
        let failing = script(dir.path(), "fail", "exit 3");
        assert!(!deliver(&failing, "alice", "123456", &log));
        assert!(
            log.lines()[0].contains("delivery-failed") && log.lines()[0].contains("exit status 3")
        );
        assert!(!log.lines()[0].contains("123456"));
        assert!(!deliver(
            &dir.path().join("absent"),
            "alice",
            "123456",
            &log
        ));
    }

    #[test]
    fn a_program_changed_to_be_writable_by_others_is_no_longer_run() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let sender = script(dir.path(), "send", &format!("echo ran > {}", out.display()));
        std::fs::set_permissions(&sender, std::fs::Permissions::from_mode(0o777)).unwrap();
        let log = MemoryLog::default();
        assert!(!deliver(&sender, "alice", "654321", &log));
        assert!(!out.exists(), "the program ran");
        let line = &log.lines()[0];
        assert!(
            line.contains("delivery-refused") && line.contains("chmod go-w"),
            "{line}"
        );
        let notify_log = Arc::new(MemoryLog::default());
        CommandNotifier::new(&sender, notify_log.clone()).notify(event());
        // Refused before any thread starts, so the log already says so.
        assert!(notify_log.lines()[0].contains("notify-refused"));
    }

    #[test]
    fn the_sender_reads_the_code_on_stdin_not_argv() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let sender = script(
            dir.path(),
            "send",
            &format!(
                "{{ echo \"args=$*\"; read code; echo \"code=$code\"; echo END; }} > {}",
                out.display()
            ),
        );
        assert!(deliver(&sender, "alice", "654321", &MemoryLog::default()));
        let text = std::fs::read_to_string(out).unwrap();
        assert_eq!(text, "args=alice\ncode=654321\nEND\n");
    }
}
