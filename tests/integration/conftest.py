"""Fixtures for integration tests against the real binaries.

A private dbus-daemon built from this machine's real system.conf (so its default policy is the
system bus's) that includes our real policy file from packaging/dbus/; the real twofactord on
it; real test users made with useradd and removed afterwards; codes from oathtool and pyotp.
"""
import json
import os
import pathlib
import secrets
import shutil
import signal
import subprocess
import sys
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BIN_DIR = pathlib.Path(os.environ.get("TWOFACTOR_BIN_DIR", REPO / "target" / "release"))
POLICY = REPO / "packaging" / "dbus" / "org.twofactor.Daemon1.conf"
TFCALL = pathlib.Path(__file__).with_name("tfcall.py")
# Debian's interpreter and its python3-jeepney/python3-pyotp: readable by the test users,
# unlike anything under /root.
SYSTEM_PYTHON = "/usr/bin/python3"
CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"}
sys.path.insert(0, str(pathlib.Path(__file__).parent))
sys.path.insert(0, str(REPO / "tests" / "bus"))
from make_bus_config import bus_config  # noqa: E402
from tfcall import call as _jeepney_call  # noqa: E402

from jeepney.io.blocking import open_dbus_connection  # noqa: E402


def binary(name):
    path = BIN_DIR / name
    if not path.exists():
        pytest.fail(f"{path} is missing: build with `cargo build --release` first")
    return str(path)


class Bus:
    def __init__(self, workdir, extra_xml=""):
        self.dir = pathlib.Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)
        self.socket = self.dir / "bus.sock"
        config = self.dir / "bus.conf"
        config.write_text(bus_config(self.socket, extra_xml))
        self.proc = subprocess.Popen(
            ["dbus-daemon", f"--config-file={config}", "--nofork", "--nopidfile",
             "--print-address=1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if not line:
            raise RuntimeError("dbus-daemon did not start: " + self.proc.stderr.read())
        self.address = line
        self.socket.chmod(0o777)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Daemon:
    """The real twofactord binary on a bus."""

    def __init__(self, bus, workdir, config_text="", extra_args=(), env=None):
        self.bus = bus
        self.env = dict(env or {})
        self.dir = pathlib.Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state = self.dir / "state"
        self.config = self.dir / "twofactor.toml"
        self.config.write_text(config_text)
        self.log = self.dir / "daemon.log"
        self.extra_args = list(extra_args)
        self.proc = None
        self.start()

    def start(self):
        self.log_file = open(self.log, "a")
        self.proc = subprocess.Popen(
            [binary("twofactord"), "--bus-address", self.bus.address,
             "--state-dir", str(self.state), "--config", str(self.config), *self.extra_args],
            stdout=self.log_file, stderr=subprocess.STDOUT,
            env={**os.environ, **self.env} if self.env else None)
        wait_for_owner(self.bus.address, self.proc)

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.log_file.close()

    def restart(self, config_text=None):
        self.stop()
        if config_text is not None:
            self.config.write_text(config_text)
        self.start()

    def log_text(self):
        return self.log.read_text()

    def memory_kib(self, field):
        """VmRSS, VmHWM, ... of the running daemon, in KiB."""
        for line in open(f"/proc/{self.proc.pid}/status"):
            key, _, value = line.partition(":")
            if key == field:
                return int(value.split()[0])
        raise KeyError(field)


def name_owner(address):
    from jeepney import new_method_call
    from jeepney.bus_messages import message_bus
    conn = open_dbus_connection(bus=address)
    try:
        reply = conn.send_and_get_reply(message_bus.GetNameOwner("org.twofactor.Daemon1"))
        return reply.body[0] if reply.body and isinstance(reply.body[0], str) and reply.body[0].startswith(":") else None
    finally:
        conn.close()


def wait_for_owner(address, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"twofactord exited with {proc.returncode}")
        if name_owner(address):
            return
        time.sleep(0.02)
    raise RuntimeError("twofactord did not take its bus name")


class User:
    def __init__(self, name, uid, gid):
        self.name, self.uid, self.gid = name, uid, gid

    def __repr__(self):
        return f"User({self.name})"


class Users:
    """Real accounts with unique names, removed at the end."""

    def __init__(self):
        self.made = []
        self.groups = []

    def group(self, name=None):
        name = name or "tfg" + secrets.token_hex(3)
        subprocess.run(["groupadd", name], check=True)
        self.groups.append(name)
        return name

    def add(self, groups=(), password=None):
        name = "tf" + secrets.token_hex(4)
        command = ["useradd", "--create-home", "--shell", "/bin/bash", name]
        if groups:
            command[1:1] = ["--groups", ",".join(groups)]
        subprocess.run(command, check=True)
        self.made.append(name)
        if password:
            subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
        out = subprocess.run(["id", "-u", name], capture_output=True, text=True, check=True)
        gid = subprocess.run(["id", "-g", name], capture_output=True, text=True, check=True)
        return User(name, int(out.stdout), int(gid.stdout))

    def cleanup(self):
        for name in self.made:
            subprocess.run(["userdel", "--remove", name], capture_output=True)
        for name in self.groups:
            subprocess.run(["groupdel", name], capture_output=True)


def call_as(address, user, method, *args):
    """Call a method as `user` (a User, or None for root in-process)."""
    if user is None:
        conn = open_dbus_connection(bus=address)
        try:
            return _jeepney_call(conn, method, list(args))
        finally:
            conn.close()
    command = ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--init-groups",
               SYSTEM_PYTHON, str(TFCALL), address, method, json.dumps(list(args))]
    out = subprocess.run(command, capture_output=True, text=True, timeout=60, env=CLEAN_ENV)
    if out.returncode != 0:
        raise RuntimeError(f"tfcall failed: {out.stderr}")
    return json.loads(out.stdout)


def enroll_as(address, user, target):
    command = [SYSTEM_PYTHON, str(TFCALL), address, "enroll", target]
    if user is not None:
        command[0:0] = ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--init-groups"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=60, env=CLEAN_ENV)
    if out.returncode != 0:
        raise RuntimeError(f"tfcall failed: {out.stderr}")
    return json.loads(out.stdout)


def oathtool(secret, at=None, digits=6, algorithm="sha1", period=30):
    """A code from oathtool, the independent reference implementation."""
    command = ["oathtool", f"--totp={algorithm}", "-b", f"--digits={digits}",
               f"--time-step-size={period}s"]
    if at is not None:
        command.append(f"--now=@{int(at)}")
    command.append(secret)
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def fresh_code(secret, after_step=None):
    """A code for a step the daemon has not accepted yet: waits for the next step only when
    the current one is spent (a replay would be refused). Returns (code, step)."""
    step = int(time.time()) // 30
    if after_step is not None and step <= after_step:
        # Next step's code is inside the ±1 window already, so no waiting is needed.
        step = after_step + 1
    return oathtool(secret, at=step * 30), step


CONTEXT = {"service": "sshd", "rhost": "192.0.2.1", "tty": "ssh"}
# Error names, spelled once.
ERR = "org.twofactor.Error."
ACCESS_DENIED = ERR + "AccessDenied"

# How often next_code() had to wait for the clock: the suite is written so this stays 0.
CLOCK_WAITS = []


def next_code(secret, last_step, period=30, digits=6, algorithm="sha1"):
    """(code, step) for the earliest step after `last_step` that is not behind the current
    one, so it stays inside the ±1 window even if the clock ticks before the daemon checks.
    Waits only when that step is still beyond the window; tests are written to avoid it."""
    while True:
        now_step = int(time.time()) // period
        step = max(last_step + 1, now_step)
        if step <= now_step + 1:
            return oathtool(secret, at=step * period, digits=digits, algorithm=algorithm,
                            period=period), step
        wait = (step - 1) * period - time.time() + 0.05
        CLOCK_WAITS.append(wait)
        time.sleep(max(wait, 0.05))


def wrong_code(secret, reach=25, period=30, digits=6):
    """A well-formed code that matches no step within `reach` steps of now (so no skew hint
    and no accidental acceptance)."""
    import pyotp
    totp = pyotp.TOTP(secret, digits=digits, interval=period)
    now = time.time()
    near = {totp.at(now + k * period) for k in range(-reach, reach + 1)}
    for candidate in ("000000", "123456", "999999", "314159", "271828"):
        candidate = candidate[:digits].ljust(digits, "0")
        if candidate not in near:
            return candidate
    raise AssertionError("no wrong code found")


class Session:
    """One D-Bus connection kept open by a tfcall.py process running as `user` (a User,
    None for root, or a bare uid for a uid with no passwd entry)."""

    def __init__(self, address, user=None):
        command = [SYSTEM_PYTHON, str(TFCALL), address, "serve"]
        if isinstance(user, int):
            command[0:0] = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"]
        elif user is not None:
            command[0:0] = ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}",
                            "--init-groups"]
        self.user = user
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=CLEAN_ENV)

    def _ask(self, request):
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"tfcall session died: {self.proc.stderr.read()}")
        return json.loads(line)

    def call(self, method, *args):
        return self._ask({"method": method, "args": list(args)})

    def enroll(self, user, replace=False, current_code=""):
        return self._ask({"op": "enroll", "user": user, "replace": replace,
                          "current_code": current_code})

    def unique_name(self):
        return self._ask({"op": "unique_name"})["ok"]

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Enrollment:
    """What a test knows about an enrolled user: the secret, unused backup codes and the
    highest step the daemon has accepted."""

    def __init__(self, result):
        assert "ok" in result, result
        self.secret = result["ok"]["secret"]
        self.backup_codes = list(result["ok"]["backup_codes"])
        self.step = result["ok"]["step"]
        self.offer = result["ok"].get("offer")

    def code(self):
        """A code the daemon will accept now; marks its step as spent."""
        code, self.step = next_code(self.secret, self.step)
        return code


def enroll(address, user, as_user="root"):
    """Enroll `user` (a User or a name) from a connection of `as_user` (default: root)."""
    name = user if isinstance(user, str) else user.name
    caller = None if as_user == "root" else as_user
    with Session(address, caller) as session:
        return Enrollment(session.enroll(name))


def root_call(address, method, *args):
    return call_as(address, None, method, *args)


# The daemon's bound on connections kept through a prompt (MAX_KEPT_CONNECTIONS).
KEPT_CONNECTIONS = 64


def hold_kept_room(address, user="nobody-here"):
    """KEPT_CONNECTIONS root connections that each asked for a plan for `user` (one that gets
    a prompt) and were let to stay open: all of the daemon's room for kept connections.
    Checks that one more connection gets none. Close them to free the room."""
    holders = []
    try:
        for _ in range(KEPT_CONNECTIONS):
            conn = open_dbus_connection(bus=address)
            holders.append(conn)
            plan = _jeepney_call(conn, "LoginPlan", [user, CONTEXT])["ok"]
            assert plan["keep_connection"], f"room for the first {KEPT_CONNECTIONS}"
        probe = root_call(address, "LoginPlan", user, CONTEXT)["ok"]
        assert not probe["keep_connection"], f"no room beyond {KEPT_CONNECTIONS}"
    except BaseException:
        for conn in holders:
            conn.close()
        raise
    return holders


def state_file(daemon, name):
    return daemon.state / "users" / f"{name}.toml"


@pytest.fixture
def workdir():
    """A directory the test users can reach (pytest's own tmp_path is root-only)."""
    import tempfile
    path = pathlib.Path(tempfile.mkdtemp(prefix="twofactor-it-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def bus(workdir):
    b = Bus(workdir / "bus")
    yield b
    b.stop()


@pytest.fixture
def users():
    u = Users()
    yield u
    u.cleanup()


@pytest.fixture
def make_daemon(bus, workdir):
    made = []

    def make(config_text="", bus_override=None, name="daemon", env=None):
        d = Daemon(bus_override or bus, workdir / name, config_text, env=env)
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop(signal.SIGKILL)


@pytest.fixture
def daemon(make_daemon):
    return make_daemon()


def pytest_terminal_summary(terminalreporter):
    if CLOCK_WAITS:
        terminalreporter.write_line(
            f"next_code() waited for the TOTP clock {len(CLOCK_WAITS)} time(s), "
            f"{sum(CLOCK_WAITS):.1f} s in all")
