"""The `twofactor` CLI against the real daemon on a private bus, run as real users.

Every CLI process runs with DBUS_SYSTEM_BUS_ADDRESS pointing at the test bus and, for users
other than root, under setpriv, so the daemon sees the real uid. Codes come from pyotp and
oathtool; the daemon's answers are checked with the independent jeepney client (call_as).
"""
import json
import os
import pathlib
import pty
import re
import select
import shutil
import subprocess
import time

import pyotp
import pytest

from conftest import CLEAN_ENV, binary, call_as, oathtool

CONTEXT = {"service": "sshd", "rhost": "192.0.2.7", "tty": "ssh"}
NOT_RUNNING = "twofactor: the twofactor daemon is not running: systemctl start twofactord"


@pytest.fixture
def cli_bin(workdir):
    """The CLI copied where every test user can run it, safe from concurrent rebuilds."""
    target = workdir / "bin" / "twofactor"
    target.parent.mkdir(mode=0o755, exist_ok=True)
    shutil.copy2(binary("twofactor"), target)
    target.chmod(0o755)
    return str(target)


def as_user(user, command):
    if user is None:
        return command
    return ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--init-groups", *command]


def cli_env(bus):
    return dict(CLEAN_ENV, DBUS_SYSTEM_BUS_ADDRESS=bus.address)


class Cli:
    """Runs the CLI binary on one bus."""

    def __init__(self, path, bus):
        self.path, self.bus = path, bus

    def run(self, user, *args, input=None, timeout=60):
        return subprocess.run(as_user(user, [self.path, *args]), input=input, text=True,
                              capture_output=True, timeout=timeout, env=cli_env(self.bus),
                              cwd="/")

    def json(self, user, *args, input=None):
        out = self.run(user, *args, "--json", input=input)
        assert out.returncode == 0, (args, out.returncode, out.stderr)
        return json.loads(out.stdout)

    def enroll_json(self, user, *extra, current_code=None):
        """`enroll --json` as `user`: reads the offer, answers with a pyotp code."""
        proc = subprocess.Popen(as_user(user, [self.path, "enroll", "--json", *extra]),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=cli_env(self.bus),
                                cwd="/")
        try:
            if current_code is not None:
                proc.stdin.write(current_code + "\n")
                proc.stdin.flush()
            line = proc.stdout.readline()
            if not line:
                proc.stdin.close()
                return Result(proc.wait(timeout=60), None, None, proc.stderr.read())
            offer = json.loads(line)
            totp = pyotp.parse_uri(offer["otpauth_uri"])
            step = int(time.time()) // totp.interval
            proc.stdin.write(totp.at(step * totp.interval) + "\n")
            proc.stdin.close()
            rest = proc.stdout.read()
            code = proc.wait(timeout=60)
            codes = json.loads(rest) if rest.strip() else None
            enrolled = Enrolled(offer, codes, step) if codes else None
            return Result(code, offer, enrolled, proc.stderr.read())
        finally:
            if proc.poll() is None:
                proc.kill()


class Result:
    def __init__(self, returncode, offer, enrolled, stderr):
        self.returncode, self.offer, self.enrolled, self.stderr = (
            returncode, offer, enrolled, stderr)


class Enrolled:
    """A confirmed enrollment: its secret, backup codes and the last step the daemon accepted."""

    def __init__(self, offer, codes, step):
        self.offer = offer
        self.secret = offer["secret"]
        self.backup_codes = codes["backup_codes"]
        self.step = step

    def code(self):
        """A code for a step the daemon has not accepted yet (waits only if that step is still
        beyond the daemon's ±1 window)."""
        while True:
            now = int(time.time()) // 30
            step = max(self.step + 1, now)
            if step <= now + 1:
                self.step = step
                return oathtool(self.secret, at=step * 30)
            time.sleep(max((step - 1) * 30 - time.time() + 0.05, 0.05))

    def wrong_code(self):
        near = {oathtool(self.secret, at=time.time() + k * 30) for k in range(-3, 4)}
        return next(c for c in ("000000", "111111", "222222", "333333") if c not in near)


@pytest.fixture
def cli(cli_bin, bus):
    return Cli(cli_bin, bus)


def verify(bus, user, code, caller=None):
    reply = call_as(bus.address, caller, "Verify", user.name, code, CONTEXT)
    assert "ok" in reply, reply
    return reply["ok"]


def enroll(cli, user, by=None, *extra):
    result = cli.enroll_json(user if by is None else by, *extra)
    assert result.returncode == 0, result.stderr
    return result.enrolled


# --- enrollment ------------------------------------------------------------------------------

def test_json_enrollment_gives_codes_the_daemon_accepts(cli, bus, daemon, users):
    alice = users.add()
    result = cli.enroll_json(alice)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    offer = result.offer
    assert offer["otpauth_uri"].startswith("otpauth://totp/")
    assert re.fullmatch(r"[A-Z2-7]{32,}", offer["secret"]), offer
    assert pyotp.parse_uri(offer["otpauth_uri"]).secret == offer["secret"]
    enrolled = result.enrolled
    assert len(enrolled.backup_codes) == 10
    assert len(set(enrolled.backup_codes)) == 10

    reply = verify(bus, alice, enrolled.code())
    assert reply["outcome"] == 0, reply
    reply = verify(bus, alice, enrolled.backup_codes[0])
    assert reply["outcome"] == 0 and reply["backup_code_used"], reply
    assert verify(bus, alice, enrolled.backup_codes[0])["outcome"] == 1, "a backup code is spent"

    status = cli.json(alice, "status")
    assert status["user"] == alice.name
    assert status["enrolled"] is True
    assert status["backup_codes_left"] == 9
    assert status["locked"] is False
    assert status["policy"] == "optional" and status["policy_source"] == "default"
    assert status["last_success_service"] == "sshd"
    assert status["last_success_rhost"] == "192.0.2.7"


def test_json_enrollment_with_a_wrong_code_exits_1(cli, bus, daemon, users):
    alice = users.add()
    proc = subprocess.run(as_user(alice, [cli.path, "enroll", "--json"]), input="000000\n",
                          capture_output=True, text=True, env=cli_env(bus), timeout=60)
    offer = json.loads(proc.stdout.splitlines()[0])
    if pyotp.parse_uri(offer["otpauth_uri"]).verify("000000", valid_window=1):
        pytest.skip("000000 happened to be valid")
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("twofactor: wrong code"), proc.stderr
    assert len(proc.stdout.splitlines()) == 1
    assert cli.json(alice, "status")["enrolled"] is False


class Pty:
    """A process on a pseudo-terminal, driven like a person would."""

    def __init__(self, command, env):
        master, slave = pty.openpty()
        self.proc = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave,
                                     env=env, cwd="/", start_new_session=True)
        os.close(slave)
        self.master = master
        self.seen = ""

    def expect(self, pattern, timeout=30):
        """Read until `pattern` (a regex) appears after what earlier calls consumed."""
        deadline = time.monotonic() + timeout
        while True:
            match = re.search(pattern, self.seen)
            if match:
                consumed, self.seen = self.seen[:match.end()], self.seen[match.end():]
                return match, consumed
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{pattern!r} not seen in:\n{self.seen}")
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"{pattern!r} not seen before the end:\n{self.seen}")
                self.seen += chunk.decode("utf-8", "replace").replace("\r", "")

    def type(self, line):
        os.write(self.master, line.encode() + b"\n")

    def wait(self, timeout=30):
        code = self.proc.wait(timeout=timeout)
        # Drain what is left.
        while True:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if not ready:
                break
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                break
            if not chunk:
                break
            self.seen += chunk.decode("utf-8", "replace").replace("\r", "")
        os.close(self.master)
        return code


def test_interactive_enrollment_on_a_terminal(cli, bus, daemon, users):
    alice = users.add()
    term = Pty(as_user(alice, [cli.path, "enroll"]), cli_env(bus))
    try:
        # The key, in groups of four beside the QR code (on lines of its own), then the
        # question; all of it on an 80x24 terminal (a new pty reports no size).
        _, shown = term.expect(r"Enter the 6-digit code the app shows: ")
        key = shown[shown.index("Key:"):shown.index("Type:")]
        secret = "".join(re.findall(r"(?<![A-Z2-7])[A-Z2-7]{4}(?![A-Z2-7])", key))
        assert len(secret) == 32, shown
        assert re.search(r"Account: +\S+:" + alice.name + "@", shown), shown
        qr_lines = [line for line in shown.splitlines() if "█" in line or "▀" in line]
        assert len(qr_lines) >= 15, shown
        assert max(len(line) for line in shown.splitlines()) <= 80
        assert len(shown.splitlines()) <= 24, shown

        near = {oathtool(secret, at=time.time() + k * 30) for k in range(-3, 4)}
        term.type(next(c for c in ("000000", "111111", "222222") if c not in near))
        term.expect(r"Wrong code: the code is not valid")
        term.expect(r"Enter the 6-digit code the app shows: ")
        step = int(time.time()) // 30
        term.type(oathtool(secret, at=step * 30))
        _, shown = term.expect(r"Type yes once you have stored the backup codes: ")
        codes = re.findall(r"\b\d{5}-\d{5}\b", shown)
        assert len(codes) == 10, shown
        assert "two-factor authentication is set up for " + alice.name in shown
        term.type("not yet")
        term.expect(r"Type yes once you have stored the backup codes: ")
        term.type("yes")
        assert term.wait() == 0, term.seen
    finally:
        if term.proc.poll() is None:
            term.proc.kill()
    assert "warning" not in term.seen
    # The key shown is the key enrolled, and the codes shown work.
    assert verify(bus, alice, oathtool(secret, at=(step + 1) * 30))["outcome"] == 0
    assert verify(bus, alice, codes[3])["outcome"] == 0


def test_interactive_enrollment_with_end_of_input_after_the_codes(cli, bus, daemon, users):
    alice = users.add()
    proc = subprocess.Popen(as_user(alice, [cli.path, "enroll", "--no-qr"]),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=cli_env(bus))
    secret = None
    for line in proc.stdout:
        match = re.search(r"Key: +([A-Z2-7 ]+)$", line)
        if match:
            secret = match.group(1).replace(" ", "")
            break
    assert secret
    proc.stdin.write(oathtool(secret) + "\n")
    proc.stdin.close()
    out = proc.stdout.read()
    assert proc.wait(timeout=60) == 0
    err = proc.stderr.read()
    assert "█" not in out
    assert len(re.findall(r"\b\d{5}-\d{5}\b", out)) == 10
    assert "warning: no confirmation read" in err


def test_already_enrolled_needs_replace(cli, bus, daemon, users):
    alice = users.add()
    enroll(cli, alice)
    out = cli.run(alice, "enroll", "--no-qr", input="")
    assert out.returncode == 1
    assert "--replace" in out.stderr and out.stderr.count("\n") == 1, out.stderr


def test_replace_needs_a_valid_current_code(cli, bus, daemon, users):
    alice = users.add()
    old = enroll(cli, alice)

    refused = cli.enroll_json(alice, "--replace", current_code=old.wrong_code())
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.startswith("twofactor: wrong code"), refused.stderr
    assert refused.offer is None
    assert verify(bus, alice, old.backup_codes[0])["outcome"] == 0, "the old enrollment stays"

    replaced = cli.enroll_json(alice, "--replace", current_code=old.code())
    assert replaced.returncode == 0, replaced.stderr
    new = replaced.enrolled
    assert new.secret != old.secret
    assert verify(bus, alice, oathtool(old.secret, at=(new.step + 1) * 30))["outcome"] == 1
    assert verify(bus, alice, new.code())["outcome"] == 0
    assert verify(bus, alice, old.backup_codes[1])["outcome"] == 1
    assert verify(bus, alice, new.backup_codes[0])["outcome"] == 0


def test_replace_with_a_backup_code(cli, bus, daemon, users):
    alice = users.add()
    old = enroll(cli, alice)
    replaced = cli.enroll_json(alice, "--replace", current_code=old.backup_codes[0])
    assert replaced.returncode == 0, replaced.stderr


def test_an_admin_provisions_another_user_without_a_code(cli, bus, daemon, users):
    alice = users.add()
    enroll(cli, alice)
    result = cli.enroll_json(None, "--user", alice.name, "--replace")
    assert result.returncode == 0, result.stderr
    assert verify(bus, alice, result.enrolled.code())["outcome"] == 0


def test_backup_codes_file(cli, bus, daemon, users):
    alice = users.add()
    path = f"/home/{alice.name}/codes.txt"
    enrolled = enroll(cli, alice, None, "--backup-codes-file", path)
    stat = os.stat(path)
    assert stat.st_mode & 0o777 == 0o600
    assert stat.st_uid == alice.uid
    lines = [l for l in pathlib.Path(path).read_text().splitlines() if not l.startswith("#")]
    assert lines == enrolled.backup_codes

    again = cli.run(alice, "backup-codes", "--backup-codes-file", path, input=enrolled.code())
    assert again.returncode == 2, again.stderr
    assert "refusing to overwrite" in again.stderr
    assert cli.json(alice, "status")["backup_codes_left"] == 10, "nothing changed"


# --- changes authorized with a code ----------------------------------------------------------

def test_backup_codes_replace_the_old_set(cli, bus, daemon, users):
    alice = users.add()
    enrolled = enroll(cli, alice)
    new = cli.json(alice, "backup-codes", input=enrolled.code() + "\n")
    assert new["user"] == alice.name
    assert len(new["backup_codes"]) == 10
    assert not set(new["backup_codes"]) & set(enrolled.backup_codes)
    assert verify(bus, alice, enrolled.backup_codes[0])["outcome"] == 1
    assert verify(bus, alice, new["backup_codes"][0])["outcome"] == 0


def test_backup_codes_with_a_wrong_code_change_nothing(cli, bus, daemon, users):
    alice = users.add()
    enrolled = enroll(cli, alice)
    out = cli.run(alice, "backup-codes", "--json", input=enrolled.wrong_code() + "\n")
    assert out.returncode == 1 and "wrong code" in out.stderr, out.stderr
    assert verify(bus, alice, enrolled.backup_codes[0])["outcome"] == 0


def test_backup_codes_interactive_tries_three_times(cli, bus, daemon, users):
    alice = users.add()
    enrolled = enroll(cli, alice)
    wrong = enrolled.wrong_code()
    out = cli.run(alice, "backup-codes", input=f"{wrong}\n{wrong}\n{enrolled.code()}\n")
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("Wrong code") == 2, out.stderr
    assert len(re.findall(r"\b\d{5}-\d{5}\b", out.stdout)) == 10


def test_disable_is_refused_while_required(cli, bus, make_daemon, users):
    alice = users.add()
    make_daemon(f'[policy]\nusers = {{ {alice.name} = "required" }}\n')
    enrolled = enroll(cli, alice)
    out = cli.run(alice, "disable", input=enrolled.code() + "\n")
    assert out.returncode == 1, out.stderr
    assert out.stderr.startswith("twofactor: not allowed: ")
    assert f"user {alice.name}" in out.stderr, "names the rule"
    assert "Current code" not in out.stderr, "no code is asked for"
    assert cli.json(alice, "status")["enrolled"] is True


def test_disable_under_optional(cli, bus, daemon, users):
    alice = users.add()
    enrolled = enroll(cli, alice)
    out = cli.run(alice, "disable", "--json", input=enrolled.wrong_code() + "\n")
    assert out.returncode == 1, out.stderr
    assert cli.json(alice, "status")["enrolled"] is True
    done = cli.json(alice, "disable", input=enrolled.code() + "\n")
    assert done == {"user": alice.name, "disabled": True}
    assert cli.json(alice, "status")["enrolled"] is False
    out = cli.run(alice, "disable", input="")
    assert out.returncode == 1 and "not enrolled" in out.stderr, out.stderr


# --- reporting -------------------------------------------------------------------------------

def test_status_for_people(cli, bus, daemon, users):
    alice = users.add()
    out = cli.run(alice, "status")
    assert out.returncode == 0, out.stderr
    assert re.search(r"Enrolled: +no", out.stdout), out.stdout
    assert "twofactor enroll" in out.stdout
    enrolled = enroll(cli, alice)
    verify(bus, alice, enrolled.code())
    verify(bus, alice, enrolled.wrong_code())
    out = cli.run(alice, "status")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert re.search(rf"User: +{alice.name}\n", text), text
    assert re.search(r"Enrolled: +yes, since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", text), text
    assert re.search(r"Policy: +optional \(rule: default\)", text), text
    assert re.search(r"Backup codes left: +10", text), text
    assert re.search(r"Locked: +no", text), text
    assert re.search(r"Failed attempts: +1 since the last success", text), text
    assert re.search(r"Last success: +\d{4}-.* UTC, sshd from 192\.0\.2\.7", text), text


def test_policy_explains_the_rule(cli, bus, make_daemon, users):
    group = users.group()
    alice = users.add(groups=[group])
    make_daemon(f'[policy]\ngroups = {{ {group} = "required" }}\n')
    explained = cli.json(alice, "policy")
    assert explained["policy"] == "required"
    assert explained["source"] == f"group {group}"
    out = cli.run(alice, "policy")
    assert out.returncode == 0 and f"group {group}" in out.stdout, out
    status = cli.json(alice, "status")
    assert status["policy"] == "required" and status["policy_source"] == f"group {group}"


def test_invoking_user_comes_from_the_uid_not_the_environment(cli, bus, daemon, users):
    alice, bob = users.add(), users.add()
    out = subprocess.run(as_user(alice, [cli.path, "status", "--json"]), capture_output=True,
                         text=True, env=dict(cli_env(bus), USER=bob.name, LOGNAME=bob.name))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["user"] == alice.name


# --- administration --------------------------------------------------------------------------

ADMIN_COMMANDS = [
    ("list",),
    ("status", "{target}"),
    ("policy", "{target}"),
    ("unlock", "{target}"),
    ("reset", "{target}", "--yes"),
    ("backup-codes", "--user", "{target}", "--json"),
    ("enroll", "--user", "{target}", "--json", "--replace"),
]


@pytest.fixture
def admin_setup(cli, make_daemon, users):
    """A daemon whose admin group exists; returns (admin member, ordinary user, target)."""
    group = users.group()
    admin = users.add(groups=[group])
    ordinary = users.add()
    target = users.add()
    make_daemon(f'[admin]\ngroup = "{group}"\n[lockout]\nmax_failures = 3\nfree_failures = 5\n')
    return admin, ordinary, target


@pytest.mark.parametrize("role", ["root", "admin-group"])
def test_admin_commands(cli, bus, admin_setup, role):
    admin, _, target = admin_setup
    actor = None if role == "root" else admin
    enrolled = enroll(cli, target)

    listed = cli.json(actor, "list")
    entry = next(e for e in listed if e["user"] == target.name)
    assert entry["enrolled"] is True and entry["backup_codes_left"] == 10
    table = cli.run(actor, "list")
    assert table.returncode == 0
    assert re.match(r"USER +ENROLLED +POLICY +CODES LEFT +LOCKED +LAST USE\n", table.stdout)
    assert re.search(rf"\n{target.name} +yes +optional +10 +no +never", table.stdout), table.stdout

    assert cli.json(actor, "status", target.name)["enrolled"] is True
    assert cli.json(actor, "policy", target.name)["policy"] == "optional"

    # Lock the target, see it locked, unlock it.
    for _ in range(3):
        call_as(bus.address, None, "Verify", target.name, enrolled.wrong_code(), CONTEXT)
    assert cli.json(actor, "status", target.name)["locked"] is True
    # Locked: the code is not even checked.
    locked = cli.run(actor, "verify", target.name, input=enrolled.wrong_code() + "\n")
    assert locked.returncode == 1 and locked.stdout.startswith("locked"), locked
    assert cli.run(actor, "unlock", target.name).returncode == 0
    assert cli.json(actor, "status", target.name)["locked"] is False
    accepted = cli.run(actor, "verify", target.name, input=enrolled.code() + "\n")
    assert accepted.returncode == 0, accepted
    assert accepted.stdout.startswith("accepted; 3 failed attempts before"), accepted
    rejected = cli.run(actor, "verify", target.name, input=enrolled.wrong_code() + "\n")
    assert rejected.returncode == 1 and rejected.stdout == "rejected\n", rejected
    assert rejected.stderr == ""
    status = cli.json(actor, "status", target.name)
    assert status["last_success_service"] == "twofactor-cli"

    # New backup codes for someone else: no code asked.
    fresh = cli.json(actor, "backup-codes", "--user", target.name)
    assert len(fresh["backup_codes"]) == 10
    assert verify(bus, target, enrolled.backup_codes[0])["outcome"] == 1

    # Reset asks for the name; end of input or a wrong name refuses.
    out = cli.run(actor, "reset", target.name, input="")
    assert out.returncode == 1 and "not confirmed" in out.stderr, out.stderr
    out = cli.run(actor, "reset", target.name, input="somebody\n")
    assert out.returncode == 1, out.stderr
    assert cli.json(actor, "status", target.name)["enrolled"] is True
    out = cli.run(actor, "reset", target.name, input=target.name + "\n")
    assert out.returncode == 0, out.stderr
    assert cli.json(actor, "status", target.name)["enrolled"] is False
    out = cli.run(actor, "reset", target.name, "--yes")
    assert out.returncode == 1 and "not enrolled" in out.stderr, out.stderr

    # Provision the target again, as the administrator.
    result = cli.enroll_json(actor, "--user", target.name)
    assert result.returncode == 0, result.stderr
    assert verify(bus, target, result.enrolled.code())["outcome"] == 0


@pytest.mark.parametrize("command", ADMIN_COMMANDS, ids=lambda c: c[0])
def test_ordinary_users_are_denied(cli, bus, admin_setup, command):
    _, ordinary, target = admin_setup
    enroll(cli, target)
    args = [part.format(target=target.name) for part in command]
    out = cli.run(ordinary, *args, input="")
    assert out.returncode == 1, (args, out.returncode, out.stderr)
    assert out.stderr.startswith("twofactor: permission denied: "), out.stderr
    assert out.stderr.count("\n") == 1, out.stderr
    assert cli.json(None, "status", target.name)["enrolled"] is True


def test_verify_of_another_user_is_denied(cli, bus, admin_setup):
    _, ordinary, target = admin_setup
    enrolled = enroll(cli, target)
    out = cli.run(ordinary, "verify", target.name, input=enrolled.code() + "\n")
    assert out.returncode == 1
    assert out.stderr.startswith("twofactor: permission denied: "), out.stderr


# --- failures --------------------------------------------------------------------------------

def test_daemon_not_running(cli, bus, users):
    alice = users.add()
    for user, args in [(alice, ["status"]), (None, ["list"]), (alice, ["enroll", "--json"])]:
        out = cli.run(user, *args, input="")
        assert out.returncode == 2, (args, out.stderr)
        assert out.stderr == NOT_RUNNING + "\n", out.stderr
        assert out.stdout == ""


def test_daemon_stopped_after_start(cli, bus, daemon, users):
    alice = users.add()
    assert cli.run(alice, "status").returncode == 0
    daemon.stop()
    out = cli.run(alice, "status")
    assert out.returncode == 2 and out.stderr == NOT_RUNNING + "\n", out.stderr


def test_no_bus(cli_bin, workdir):
    out = subprocess.run([cli_bin, "status", "root"], capture_output=True, text=True,
                         env=dict(CLEAN_ENV, DBUS_SYSTEM_BUS_ADDRESS=f"unix:path={workdir}/none"))
    assert out.returncode == 2
    assert "cannot reach the system bus" in out.stderr and "systemctl start dbus" in out.stderr


def test_unknown_user_and_bad_names(cli, bus, daemon):
    out = cli.run(None, "status", "nosuchuser-tf")
    assert out.returncode == 2, out.stderr
    assert "no user nosuchuser-tf" in out.stderr
    out = cli.run(None, "status", "../etc")
    assert out.returncode == 2 and "invalid user name" in out.stderr
