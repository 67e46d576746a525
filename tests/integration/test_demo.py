"""scripts/demo: the sandbox demo logs in through the real module and leaves nothing behind.

Runs the script itself (as root, like `sudo scripts/demo`): once with --non-interactive and
stdin not a terminal, once on a pseudo-terminal answering every question with Enter (the demo
then computes the codes), once interrupted with Ctrl-C at the login prompt, and once stopped
by SIGTERM during enrollment. Each time it checks that the demo's temporary directory is gone,
that no process started by the demo is left, that pam_wrapper's copy of the demo's PAM service
is gone from /tmp, and that /etc is unchanged.
"""
import hashlib
import os
import pathlib
import pty
import re
import select
import signal
import subprocess
import time

import pytest

from conftest import BIN_DIR, REPO

DEMO = REPO / "scripts" / "demo"
SUCCESS = "== Result: login succeeded"
# Account databases are left out of the /etc comparison only because other suites running on
# the same machine at the same time add and remove users; the demo itself creates no user.
ACCOUNT_FILES = {"passwd", "group", "shadow", "gshadow", "subuid", "subgid", ".pwd.lock"}


def demo_env():
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "TERM": "xterm",
           "TWOFACTOR_BIN_DIR": str(BIN_DIR), "HOME": "/root"}
    return env                                   # no SUDO_USER: the demo enrolls root


def account_file(name):
    """passwd, shadow, ... and their backups (-), new copies (+) and lock files (.lock)."""
    for suffix in (".lock", "+", "-"):
        name = name.removesuffix(suffix)
    return name in ACCOUNT_FILES


def snapshot_etc():
    state = {}
    for root, dirs, files in os.walk("/etc"):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(root, name)
            if root == "/etc" and account_file(name):
                continue
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                continue
            digest = None
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
            state[path] = (info.st_mode, info.st_uid, info.st_gid, digest,
                           os.readlink(path) if os.path.islink(path) else None)
    return state


def processes_mentioning(text):
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            parts = [pathlib.Path(f"/proc/{pid}/cmdline").read_bytes(),
                     pathlib.Path(f"/proc/{pid}/environ").read_bytes(),
                     os.readlink(f"/proc/{pid}/exe").encode()]
        except OSError:
            continue
        if any(text.encode() in part for part in parts):
            found.append((pid, parts[0].replace(b"\0", b" ").decode(errors="replace")))
    return found


def pam_wrapper_leftovers():
    """pam_wrapper copies the service files into /tmp/pam.X/ while its process runs."""
    return [str(p) for p in pathlib.Path("/tmp").glob("pam.?/twofactor-demo")]


@pytest.fixture
def etc_unchanged():
    before = snapshot_etc()
    yield
    after = snapshot_etc()
    changed = sorted(path for path in before.keys() | after.keys()
                     if before.get(path) != after.get(path))
    assert not changed, f"/etc changed: {changed}"


def assert_nothing_left(output):
    match = re.search(r"Everything lives in (/tmp/twofactor-demo-\S+) ", output)
    assert match, output
    workdir = match.group(1)
    assert f"Cleaned up: stopped the bus and the daemon, removed {workdir}." in output
    assert not os.path.exists(workdir), f"{workdir} is left"
    deadline = time.monotonic() + 5            # killed children may take a moment to go
    while processes_mentioning(workdir) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_mentioning(workdir) == [], "processes left behind"
    assert pam_wrapper_leftovers() == []


def test_non_interactive_demo_logs_in_and_leaves_nothing(etc_unchanged):
    started = time.monotonic()
    done = subprocess.run([str(DEMO), "--non-interactive"], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, env=demo_env(), timeout=60)
    elapsed = time.monotonic() - started
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert SUCCESS in output, output
    assert "pamtester: successfully authenticated" in output
    # The real CLI drew its QR code and showed the key the codes were computed from.
    qr = [line for line in output.splitlines() if "█" in line or "▀" in line]
    assert len(qr) >= 15, output
    key = re.search(r"Key:(.*?)Type:", output, re.S)
    assert key and len(re.findall(r"(?<![A-Z2-7])[A-Z2-7]{4}(?![A-Z2-7])", key.group(1))) == 8, \
        output
    assert re.search(r"Enter the 6-digit code the app shows: \d{6} +\[computed", output)
    assert re.search(r"Verification code or backup code: \d{6} +\[computed", output)
    # The status shown after the login is the daemon's record of it.
    assert re.search(r"Last success: +.*twofactor-demo", output), output
    assert_nothing_left(output)
    assert elapsed < 30, elapsed


class Console:
    """The demo on a pseudo-terminal that is its controlling terminal, like `sudo scripts/demo`
    typed in a terminal (so Ctrl-C is the terminal's SIGINT, not a signal we send)."""

    def __init__(self):
        env = demo_env()
        pid, fd = pty.fork()
        if pid == 0:                               # the child: become the demo
            try:
                os.execve(str(DEMO), [str(DEMO)], env)
            finally:
                os._exit(127)
        self.pid, self.fd, self.seen = pid, fd, ""

    def expect(self, pattern, timeout=30):
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.seen):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{pattern!r} not seen in:\n{self.seen}")
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready and not self.read():
                raise AssertionError(f"{pattern!r} not seen before the end:\n{self.seen}")
        return self.seen

    def read(self):
        try:
            chunk = os.read(self.fd, 4096)
        except OSError:
            return False
        self.seen += chunk.decode("utf-8", "replace").replace("\r", "")
        return bool(chunk)

    def type(self, data):
        os.write(self.fd, data)

    def wait(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready and not self.read():
                break
        pid, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)

    def kill(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def test_interactive_demo_with_enter_for_every_answer(etc_unchanged):
    console = Console()
    try:
        console.expect(r"press Enter to have the demo compute the code")
        console.expect(r"Enter the 6-digit code the app shows: ")
        console.type(b"\n")
        console.expect(r"Type yes once you have stored the backup codes: ")
        console.type(b"\n")
        console.expect(r"Verification code or backup code: ")
        console.type(b"\n")
        console.expect(r"Cleaned up")
        status = console.wait()
    finally:
        console.kill()
    assert status == 0, console.seen
    assert SUCCESS in console.seen
    assert re.search(r"-> \d{6} +\[computed by oathtool\]", console.seen), console.seen
    assert_nothing_left(console.seen)


def test_ctrl_c_at_the_login_prompt_cleans_up(etc_unchanged):
    console = Console()
    try:
        console.expect(r"Enter the 6-digit code the app shows: ")
        console.type(b"\n")
        console.expect(r"Type yes once you have stored the backup codes: ")
        console.type(b"yes\n")
        console.expect(r"Verification code or backup code: ")
        # pamtester is waiting in the module's conversation, pam_wrapper's /tmp/pam.X is there.
        assert pam_wrapper_leftovers(), "the check below would prove nothing"
        console.type(b"\x03")                       # Ctrl-C
        console.expect(r"Cleaned up")
        status = console.wait()
    finally:
        console.kill()
    assert status == 130, console.seen
    assert "Interrupted." in console.seen
    assert SUCCESS not in console.seen
    assert_nothing_left(console.seen)


def test_sigterm_during_enrollment_cleans_up(etc_unchanged):
    console = Console()
    try:
        console.expect(r"Enter the 6-digit code the app shows: ")
        os.kill(console.pid, signal.SIGTERM)
        console.expect(r"Cleaned up")
        status = console.wait()
    finally:
        console.kill()
    assert status == 143, console.seen
    assert "Stopped by SIGTERM." in console.seen
    assert_nothing_left(console.seen)
