//! The real bus client leaves no thread and no open file behind: counts `/proc/self/task`
//! before, during (seen by the fake daemon, which counts this process's threads while it
//! answers) and after real sessions, and `/proc/self/fd` before and after them: to a missing
//! socket, to a private `dbus-daemon` with no daemon on it, to a fake daemon, and into a
//! timeout. With the fake daemon it also checks that one session is one connection (every
//! call from the same unique name) and that no connection is reused by the next session.
//!
//! `harness = false`: this is the whole process, so the count is exactly this thread. The
//! fake daemon is this same binary, started again with `fake-daemon ADDRESS PARENT_PID`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use pam_twofactor::client::{BusClient, BusSession, ClientError};
use pam_twofactor::flow::DaemonClient;
use twofactor_proto::{
    self as proto, LoginAction, LoginContext, LoginPlan, VerifyOutcome, VerifyReply,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("fake-daemon") {
        fake_daemon(&args[1], &args[2]);
        return;
    }
    if args.iter().any(|arg| arg == "--list") {
        println!("threads: test");
        return;
    }
    check_threads();
}

fn threads_of(pid: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count()
}

fn threads() -> usize {
    threads_of("self")
}

fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// `LoginPlan` in a session of its own.
fn plan(client: &BusClient, user: &str, context: &LoginContext) -> Result<LoginPlan, ClientError> {
    client.session(async |daemon: &BusSession<'_>| daemon.login_plan(user, context).await)
}

/// Kills and reaps a child we started, also when the test fails.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim().to_owned()
}

fn check_threads() {
    let context = LoginContext {
        service: "threads-test".into(),
        ..LoginContext::default()
    };
    let before = threads();
    assert_eq!(before, 1, "a harness-less test starts with one thread");
    let files = open_files();

    // 1. No bus at all.
    let dir = tempfile::tempdir().unwrap();
    let absent = format!("unix:path={}", dir.path().join("absent.sock").display());
    let client = BusClient::new(Some(&absent), Duration::from_secs(2));
    for _ in 0..3 {
        let error = plan(&client, "alice", &context).unwrap_err();
        assert!(error.is_unreachable(), "{error:?}");
        assert_eq!(threads(), before, "after a failed connect");
        assert_eq!(open_files(), files, "after a failed connect");
    }
    println!("threads: missing socket ok");

    if Command::new("dbus-daemon")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("threads: dbus-daemon not installed; live-bus checks skipped");
        return;
    }

    // 2. A private bus with nobody owning the daemon's name (and nothing to activate).
    let socket = dir.path().join("bus.sock");
    let config = dir.path().join("bus.conf");
    std::fs::write(
        &config,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
            socket.display()
        ),
    )
    .unwrap();
    let mut bus = Reaped(
        Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // It complains about fd limits when it may not raise them; nothing to see.
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let address = first_line(&mut bus.0);
    assert!(address.starts_with("unix:"), "{address:?}");
    // The bus's stdout pipe is ours now.
    let files = open_files();

    let client = BusClient::new(Some(&address), Duration::from_secs(5)).keep_connection(true);
    for _ in 0..3 {
        let error = plan(&client, "alice", &context).unwrap_err();
        assert!(error.is_unreachable(), "no owner: {error:?}");
        assert_eq!(
            threads(),
            before,
            "after a call to a bus without the daemon"
        );
        assert_eq!(
            open_files(),
            files,
            "after a call to a bus without the daemon"
        );
    }
    println!("threads: bus without daemon ok");

    // 3. A fake daemon owning the name, run as this same user.
    let mut daemon = Reaped(
        Command::new(std::env::current_exe().unwrap())
            .args(["fake-daemon", &address, &std::process::id().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    assert_eq!(first_line(&mut daemon.0), "ready");
    let files = open_files();
    let as_root = std::fs::metadata("/proc/self").unwrap().uid() == 0;

    for round in 0..3 {
        // One authentication: the plan, a right code, a wrong one.
        let (plan, verify, wrong) = client.session(async |daemon: &BusSession<'_>| {
            let plan = daemon.login_plan("alice", &context).await;
            let verify = daemon.verify("alice", "123456", &context).await;
            let wrong = daemon.verify("alice", "654321", &context).await;
            (plan, verify, wrong)
        });
        if as_root {
            assert_eq!(
                plan.unwrap(),
                LoginPlan {
                    action: LoginAction::Prompt,
                    message: String::new(),
                    can_send_code: false,
                    keep_connection: true,
                }
            );
            let reply = verify.unwrap();
            assert_eq!(reply.outcome, VerifyOutcome::Accepted);
            // The fake daemon counted our threads while it answered.
            assert_eq!(
                reply.failures_since_success as usize, before,
                "threads during the call, round {round}"
            );
            let wrong = wrong.unwrap();
            assert_eq!(wrong.outcome, VerifyOutcome::Rejected);
            // The fake daemon counts the unique names it has been called from: one more per
            // session, however many calls it made.
            assert_eq!(
                (reply.backup_codes_left, wrong.backup_codes_left),
                (round + 1, round + 1),
                "connections used by sessions 1..={}",
                round + 1
            );
        } else {
            // Not root: the owner check must refuse our own fake daemon, at every call.
            for error in [plan.unwrap_err(), verify.unwrap_err(), wrong.unwrap_err()] {
                assert!(matches!(error, ClientError::NotRoot { .. }), "{error:?}");
            }
        }
        assert_eq!(threads(), before, "after round {round}");
        assert_eq!(
            open_files(),
            files,
            "the connection is closed after round {round}"
        );
    }
    if as_root {
        // A connection per call: when the client does not keep them, and when the daemon's
        // plan says not to (its room for kept connections is full). The owner is still
        // checked only once per session.
        let per_call =
            BusClient::new(Some(&address), Duration::from_secs(5)).keep_connection(false);
        for (client, user, expected) in [(&per_call, "alice", (5, 6)), (&client, "nokeep", (8, 9))]
        {
            let (verify, wrong) = client.session(async |daemon: &BusSession<'_>| {
                let plan = daemon.login_plan(user, &context).await.unwrap();
                assert_eq!(plan.keep_connection, user != "nokeep");
                let verify = daemon.verify(user, "123456", &context).await;
                let wrong = daemon.verify(user, "654321", &context).await;
                (verify.unwrap(), wrong.unwrap())
            });
            assert_eq!(verify.outcome, VerifyOutcome::Accepted);
            assert_eq!(wrong.outcome, VerifyOutcome::Rejected);
            assert_eq!(
                (verify.backup_codes_left, wrong.backup_codes_left),
                expected,
                "a new unique name for each call ({user})"
            );
            assert_eq!(threads(), before, "after a session of per-call connections");
            assert_eq!(
                open_files(),
                files,
                "after a session of per-call connections"
            );
        }
    }
    println!("threads: fake daemon ok (as root: {as_root})");

    // 4. A daemon that never answers: the deadline holds, and nothing is left behind.
    if as_root {
        let client = BusClient::new(Some(&address), Duration::from_secs(1)).keep_connection(true);
        let started = Instant::now();
        let error = plan(&client, "slow", &context).unwrap_err();
        let elapsed = started.elapsed();
        assert!(matches!(error, ClientError::Timeout(_)), "{error:?}");
        assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        assert_eq!(threads(), before, "after a timeout");
        assert_eq!(open_files(), files, "after a timeout");

        // A later call of the same authentication gets a deadline of its own, and the
        // connection the stuck call was on is not reused.
        let started = Instant::now();
        let (slow, then) = client.session(async |daemon: &BusSession<'_>| {
            let slow = daemon.login_plan("slow", &context).await;
            let then = daemon.verify("alice", "123456", &context).await;
            (slow, then)
        });
        let elapsed = started.elapsed();
        assert!(matches!(slow, Err(ClientError::Timeout(_))), "{slow:?}");
        assert_eq!(then.unwrap().outcome, VerifyOutcome::Accepted);
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        assert_eq!(threads(), before, "after a timeout and a call");
        assert_eq!(open_files(), files, "after a timeout and a call");
        println!("threads: timeout ok ({elapsed:?})");
    }

    // 5. The daemon gone again.
    drop(daemon);
    let error = plan(&client, "alice", &context).unwrap_err();
    assert!(error.is_unreachable(), "{error:?}");
    assert_eq!(threads(), before);
    drop(bus);
    println!("threads: all ok, {before} thread throughout");
}

/// Owns `org.twofactor.Daemon1` on the bus at `address` and answers like the daemon would:
/// `slow` gets no answer at all; `Verify` accepts 123456 and reports, in
/// `failures_since_success`, how many threads `parent` has while it waits for the reply, and
/// in `backup_codes_left` how many unique names have called it so far.
fn fake_daemon(address: &str, parent: &str) {
    zbus::block_on(async {
        let conn = zbus::connection::Builder::address(address)
            .build()
            .await
            .unwrap();
        let mut stream = zbus::MessageStream::from(&conn);
        conn.request_name(proto::BUS_NAME).await.unwrap();
        let mut senders = std::collections::HashSet::new();
        println!("ready");
        std::io::stdout().flush().unwrap();

        while let Some(message) = stream.next().await {
            let message = message.unwrap();
            let header = message.header();
            if header.message_type() != zbus::message::Type::MethodCall
                || header.interface().map(|i| i.as_str()) != Some(proto::INTERFACE)
            {
                continue;
            }
            if let Some(sender) = header.sender() {
                senders.insert(sender.to_string());
            }
            match header.member().map(|m| m.as_str()) {
                Some("LoginPlan") => {
                    let (user, _context): (String, LoginContext) =
                        message.body().deserialize().unwrap();
                    if user == "slow" {
                        continue;
                    }
                    // `keep` says whether the client may keep its connection.
                    let plan = LoginPlan {
                        action: LoginAction::Prompt,
                        message: String::new(),
                        can_send_code: false,
                        keep_connection: user != "nokeep",
                    };
                    conn.reply(&header, &plan).await.unwrap();
                }
                Some("Verify") => {
                    let (_user, code, _context): (String, String, LoginContext) =
                        message.body().deserialize().unwrap();
                    let outcome = if code == "123456" {
                        VerifyOutcome::Accepted
                    } else {
                        VerifyOutcome::Rejected
                    };
                    let reply = VerifyReply {
                        outcome,
                        backup_code_used: false,
                        backup_codes_left: u32::try_from(senders.len()).unwrap(),
                        clock_skew_seconds: 0,
                        retry_after_seconds: 0,
                        failures_since_success: u32::try_from(threads_of(parent)).unwrap(),
                        last_failure_time: 0,
                        temporary_code_used: false,
                        offer_new_backup_codes: false,
                        code_replayed: false,
                    };
                    conn.reply(&header, &reply).await.unwrap();
                }
                _ => {}
            }
        }
    });
}
