"""`[notify] command`: the real daemon runs an admin's program on events, with the event as
its argument and TWOFACTOR_* variables only, and never lets it slow down or break a login.

The events are caused through the real CLI, run as real users, and the independent jeepney
client; the program is a shell script that records its argument and environment.
"""
import pathlib
import re
import signal
import subprocess
import time

import pytest

from conftest import Daemon, call_as
# cli and cli_bin are test_cli's fixtures, shared here.
from test_cli import cli, cli_bin, enroll  # noqa: F401

CONTEXT = {"service": "sshd", "rhost": "192.0.2.7", "tty": "ssh"}
ALLOWED = {"PATH", "PWD", "SHLVL", "_"}
TWOFACTOR_VARIABLES = {"TWOFACTOR_EVENT", "TWOFACTOR_USER", "TWOFACTOR_BY_UID",
                       "TWOFACTOR_SERVICE", "TWOFACTOR_RHOST", "TWOFACTOR_SOURCE",
                       "TWOFACTOR_TIME"}


@pytest.fixture
def notify_daemon(bus, workdir, monkeypatch):
    """Start twofactord with a config; its own environment carries variables that must not
    reach the notify program. Log lines go to daemon.log even where /dev/log exists."""
    monkeypatch.setenv("TF_CANARY_SECRET", "must-not-leak")
    monkeypatch.setenv("TWOFACTOR_CANARY", "must-not-leak-either")
    made = []

    def make(config_text):
        daemon = Daemon(bus, workdir / "daemon", config_text,
                        extra_args=["--syslog-socket", str(workdir / "no-syslog")])
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        daemon.stop(signal.SIGKILL)


def script(workdir, name, body):
    path = workdir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def recorder(workdir):
    """A notify program that writes each event to a file of its own: $1, then `env`."""
    events = workdir / "events"
    events.mkdir()
    path = script(workdir, "record-event",
                  f'out="{events}/$(date +%s%N).$$"\n'
                  '{ printf \'ARG=%s\\n\' "$1"; env; } > "$out.tmp" && mv "$out.tmp" "$out.event"')
    return path, events


def read_events(events):
    found = []
    for path in sorted(events.glob("*.event")):
        lines = path.read_text().splitlines()
        assert lines[0].startswith("ARG=")
        env = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
        found.append((lines[0][4:], env))
    return found


def wait_for_events(events, count, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = read_events(events)
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{count} events expected, got {read_events(events)}")


def wait_for_log(daemon, pattern, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if re.search(pattern, daemon.log_text()):
            return
        time.sleep(0.1)
    raise AssertionError(f"{pattern!r} not in the daemon log:\n{daemon.log_text()}")


def verify(bus, user, code):
    reply = call_as(bus.address, None, "Verify", user.name, code, CONTEXT)
    assert "ok" in reply, reply
    return reply["ok"]


def test_events_arrive_with_their_environment_only(cli, bus, notify_daemon, users, workdir):
    command, events = recorder(workdir)
    group = users.group()
    admin = users.add(groups=[group])
    alice, bob = users.add(), users.add()
    notify_daemon(f'[notify]\ncommand = "{command}"\n[admin]\ngroup = "{group}"\n'
                  "[lockout]\nmax_failures = 3\nfree_failures = 5\n")
    started = int(time.time())

    expected = []  # (event, user, by_uid, service, rhost)
    enrolled = enroll(cli, alice)
    expected.append(("enrolled", alice, alice.uid, "twofactor", ""))
    assert verify(bus, alice, enrolled.backup_codes[0])["backup_code_used"]
    expected.append(("backup-code-used", alice, 0, "sshd", "192.0.2.7"))
    assert len(cli.json(admin, "backup-codes", "--user", alice.name)["backup_codes"]) == 10
    expected.append(("backup-codes-regenerated", alice, admin.uid, "twofactor", ""))
    assert "code" in cli.json(admin, "temp-code", alice.name)
    expected.append(("temporary-code-issued", alice, admin.uid, "twofactor", ""))
    for _ in range(3):
        verify(bus, alice, enrolled.wrong_code())
    assert cli.json(None, "status", alice.name)["locked"] is True
    expected.append(("locked", alice, 0, "sshd", "192.0.2.7"))
    assert cli.run(None, "reset", alice.name, "--yes").returncode == 0
    expected.append(("reset", alice, 0, "twofactor", ""))
    bobs = enroll(cli, bob)
    expected.append(("enrolled", bob, bob.uid, "twofactor", ""))
    assert cli.json(bob, "disable", input=bobs.code() + "\n")["disabled"] is True
    expected.append(("disabled", bob, bob.uid, "twofactor", ""))

    found = wait_for_events(events, len(expected))
    finished = int(time.time())
    assert len(found) == len(expected), found
    for name, user, by_uid, service, rhost in expected:
        matching = [env for arg, env in found
                    if arg == name and env.get("TWOFACTOR_USER") == user.name]
        assert len(matching) == 1, (name, user, found)
        env = matching[0]
        assert env["TWOFACTOR_EVENT"] == name
        assert env["TWOFACTOR_BY_UID"] == str(by_uid), (name, env)
        assert env["TWOFACTOR_SERVICE"] == service, (name, env)
        assert env["TWOFACTOR_RHOST"] == rhost, (name, env)
        assert started <= int(env["TWOFACTOR_TIME"]) <= finished, (name, env)
        # Nothing else is inherited from the daemon's environment.
        assert {k for k in env if k.startswith("TWOFACTOR_")} == TWOFACTOR_VARIABLES, env
        assert set(env) - TWOFACTOR_VARIABLES <= ALLOWED, (name, sorted(env))
        assert env["PATH"] == "/usr/sbin:/usr/bin:/sbin:/bin"
    # Never a code, in the argument or the environment.
    text = "".join(p.read_text() for p in events.glob("*.event"))
    for code in enrolled.backup_codes + bobs.backup_codes:
        assert code not in text


def timed_verify(bus, user, code):
    started = time.monotonic()
    reply = verify(bus, user, code)
    return reply, time.monotonic() - started


@pytest.mark.parametrize("kind", ["fails", "missing"])
def test_a_failing_notify_command_is_logged_and_changes_nothing(cli, bus, notify_daemon, users,
                                                                 workdir, kind):
    if kind == "fails":
        command = script(workdir, "fail", "exit 3")
        error = r'error="exit status 3"'
    else:
        command = workdir / "no-such-program"
        error = r"error=.*No such file"
    daemon = notify_daemon(f'[notify]\ncommand = "{command}"\n')
    alice = users.add()
    enrolled = enroll(cli, alice)
    reply, seconds = timed_verify(bus, alice, enrolled.backup_codes[0])
    assert reply["outcome"] == 0 and reply["backup_code_used"], reply
    assert seconds < 2, f"Verify took {seconds:.2f} s"
    wait_for_log(daemon, r"notify-failed event=backup-code-used " + error)
    wait_for_log(daemon, r"notify-failed event=enrolled " + error)
    # The daemon goes on as before.
    assert verify(bus, alice, enrolled.code())["outcome"] == 0
    assert cli.json(None, "status", alice.name)["backup_codes_left"] == 9


def test_a_hanging_notify_command_does_not_delay_a_login(cli, bus, notify_daemon, users,
                                                         workdir):
    command = script(workdir, "hang", "exec sleep 60")
    daemon = notify_daemon(f'[notify]\ncommand = "{command}"\n'
                           "[lockout]\nmax_failures = 2\nfree_failures = 5\n")
    alice, bob = users.add(), users.add()
    enrolled = enroll(cli, alice)
    enrolled_at = time.monotonic()
    # Each of these starts a notification that hangs.
    reply, seconds = timed_verify(bus, alice, enrolled.backup_codes[0])
    assert reply["outcome"] == 0, reply
    assert seconds < 2, f"Verify with a backup code took {seconds:.2f} s"
    for _ in range(2):
        reply, seconds = timed_verify(bus, alice, enrolled.wrong_code())
        assert seconds < 2, f"a rejected Verify took {seconds:.2f} s"
    assert reply["outcome"] == 1
    assert cli.json(None, "status", alice.name)["locked"] is True
    # Other users are not held up either.
    bobs = enroll(cli, bob)
    reply, seconds = timed_verify(bus, bob, bobs.code())
    assert reply["outcome"] == 0 and seconds < 2, (reply, seconds)
    # After the 10 s limit the program is killed, and that is logged.
    wait_for_log(daemon, r'notify-failed event=backup-code-used error="killed after the time '
                         r'limit"', timeout=25)
    assert time.monotonic() - enrolled_at >= 9, "killed at the limit, not before"
    wait_for_log(daemon, r'notify-failed event=locked error="killed after the time limit"',
                 timeout=25)
    # Every hanging program is gone (enrolled twice, backup-code-used, locked): none is left
    # behind when the daemon stops.
    deadline = time.monotonic() + 25
    while daemon.log_text().count("killed after the time limit") < 4:
        assert time.monotonic() < deadline, daemon.log_text()
        time.sleep(0.1)


MAIL_SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "packaging" / "notify" / \
    "twofactor-notify-mail"


def test_the_example_mail_script(cli, bus, notify_daemon, users, workdir):
    """packaging/notify/twofactor-notify-mail under the real daemon, with a stand-in for
    sendmail that keeps each message."""
    mails = workdir / "mails"
    mails.mkdir()
    sendmail = script(workdir, "sendmail",
                      f'out="{mails}/$(date +%s%N).$$"\n'
                      '{ echo "ARGS: $*"; cat; } > "$out.tmp" && mv "$out.tmp" "$out.mail"')
    text = MAIL_SCRIPT.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert 'SENDMAIL="sendmail"' in text
    command = script(workdir, "twofactor-notify-mail",
                     text.replace('SENDMAIL="sendmail"', f'SENDMAIL="{sendmail}"')
                     .removeprefix("#!/bin/sh\n"))
    for shell in ("dash", "bash"):
        assert subprocess.run([shell, "-n", str(MAIL_SCRIPT)]).returncode == 0, shell
    daemon = notify_daemon(f'[notify]\ncommand = "{command}"\n')
    alice = users.add()
    enrolled = enroll(cli, alice)
    assert verify(bus, alice, enrolled.backup_codes[0])["backup_code_used"]
    temporary = cli.json(None, "temp-code", alice.name)["code"]

    deadline = time.monotonic() + 15
    while len(list(mails.glob("*.mail"))) < 3:
        assert time.monotonic() < deadline, daemon.log_text()
        time.sleep(0.05)
    messages = [p.read_text() for p in sorted(mails.glob("*.mail"))]
    subjects = sorted(re.search(r"^Subject: (.*)$", m, re.M).group(1) for m in messages)
    host = subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip()
    assert subjects == sorted([
        f"[{host}] Two-factor authentication was set up for {alice.name}",
        f"[{host}] A backup code was used to log in as {alice.name}",
        f"[{host}] A temporary code was issued for {alice.name}",
    ]), subjects
    for message in messages:
        assert message.startswith("ARGS: -t -oi\n"), message
        assert re.search(rf"^To: {alice.name}$", message, re.M), message
        assert "Auto-Submitted: auto-generated" in message
        for secret in [temporary, enrolled.secret, *enrolled.backup_codes]:
            assert secret not in message, "a mail never carries a code"
    backup = next(m for m in messages if "backup code was used" in m)
    assert "through sshd from 192.0.2.7" in backup, backup
    assert "notify-failed" not in daemon.log_text()
