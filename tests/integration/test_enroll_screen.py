"""The screen of `twofactor enroll` (the real CLI and daemon, not a terminal: 80x24 is
assumed): everything printed before the code is asked fits 80 columns and 24 rows, and the QR
code on it, read back from the printed characters, decodes with zbarimg to the exact URI,
which pyotp parses to the shown key and the daemon's parameters.

The daemon takes the host name for the issuer and the account, so it runs in a UTS namespace
of its own with the host name each case needs; nothing on the host changes.
"""
import os
import pathlib
import re
import secrets
import select
import shutil
import signal
import subprocess
import time

import pyotp
import pytest

from conftest import CLEAN_ENV, User, binary, wait_for_owner

# HOST_NAME_MAX, and useradd's longest user name (the daemon allows 64 bytes, but an account
# must exist to be enrolled).
LONGEST_HOST = "h" * 29 + "." + "example-organisation-long-name.org"
LONGEST_USER_LEN = 32
CODE_PROMPT = "Enter the 6-digit code the app shows: "
QR_QUESTION = "or type n to go on without it: "
BLOCKS = set("█▀▄ ")

pytestmark = pytest.mark.skipif(not shutil.which("zbarimg"),
                                reason="zbarimg is not installed (apt install zbar-tools)")


@pytest.fixture
def on_host(bus, workdir):
    """Start twofactord on `bus` with the given host name."""
    started = []

    def start(hostname):
        directory = workdir / f"daemon-{hostname[:8]}"
        directory.mkdir()
        config = directory / "twofactor.toml"
        config.write_text("")
        log = open(directory / "daemon.log", "w")
        proc = subprocess.Popen(
            ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', hostname,
             binary("twofactord"), "--bus-address", bus.address, "--state-dir",
             str(directory / "state"), "--config", str(config)],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        started.append(proc)
        wait_for_owner(bus.address, proc)
        return proc

    yield start
    for proc in started:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)


def add_user(users, length):
    name = "tf" + secrets.token_hex(length)[:length - 2]
    subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", name], check=True)
    users.made.append(name)
    uid = int(subprocess.run(["id", "-u", name], capture_output=True, text=True).stdout)
    gid = int(subprocess.run(["id", "-g", name], capture_output=True, text=True).stdout)
    return User(name, uid, gid)


class Enrolling:
    """`twofactor enroll` as a user, standard output and error on one pipe, read as it goes."""

    def __init__(self, bus, user):
        self.proc = subprocess.Popen(
            ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--init-groups",
             binary("twofactor"), "enroll"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=dict(CLEAN_ENV, DBUS_SYSTEM_BUS_ADDRESS=bus.address), cwd="/")
        self.seen = ""

    def until(self, text, timeout=10):
        """Everything printed from here up to and including `text` (a prompt)."""
        start = len(self.seen)
        deadline = time.monotonic() + timeout
        data = b""
        while not (self.seen + data.decode("utf-8", "ignore")).endswith(text):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(left, 0))
            assert ready, f"no {text!r} in:\n{self.seen}{data.decode('utf-8', 'ignore')}"
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            assert chunk, f"the CLI ended before {text!r}:\n{self.seen}{data.decode()}"
            data += chunk
        self.seen += data.decode("utf-8")
        return self.seen[start:]

    def answer(self, line):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def finish(self):
        self.proc.stdin.close()
        rest = self.proc.stdout.read().decode()
        self.seen += rest
        return self.proc.wait(timeout=30), rest


def assert_fits(screen):
    """The screen, up to and including the question it ends with, on 80x24."""
    lines = screen.split("\n")
    assert len(lines) <= 24, f"{len(lines)} rows:\n{screen}"
    widest = max(len(line) for line in lines)
    assert widest <= 80, f"{widest} columns:\n{screen}"


def qr_block(screen):
    """The QR drawing's lines on `screen`: its top line is the quiet zone, all full blocks, and
    the drawing is as wide as that; the lines below it as far as they are all blocks."""
    lines = screen.split("\n")
    top = next(i for i, line in enumerate(lines) if line.startswith("█" * 20))
    width = len(lines[top]) - len(lines[top].lstrip("█"))
    block = []
    for line in lines[top:]:
        part = line[:width]
        if len(part) < width or not set(part) <= BLOCKS or part.strip() == "":
            break
        block.append(part)
    return block


def decode(block, path):
    """zbarimg's reading of the drawing as a dark-background terminal shows it: a drawn half
    is light, everything around the drawing is dark."""
    scale, margin = 4, 4
    width = len(block[0]) + 2 * margin
    rows = [[1] * width for _ in range(margin)]
    halves = {" ": (0, 0), "▀": (1, 0), "▄": (0, 1), "█": (1, 1)}
    for line in block:
        top = [1] * margin + [1 - halves[c][0] for c in line] + [1] * margin
        bottom = [1] * margin + [1 - halves[c][1] for c in line] + [1] * margin
        rows += [top, bottom]
    rows += [[1] * width for _ in range(margin)]
    pixels = [[p for p in row for _ in range(scale)] for row in rows for _ in range(scale)]
    text = f"P1\n{len(pixels[0])} {len(pixels)}\n" + "\n".join(
        " ".join(map(str, row)) for row in pixels) + "\n"
    pathlib.Path(path).write_text(text)
    done = subprocess.run(["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable",
                           str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.rstrip("\n")


def check_uri(uri, host, user, screen):
    totp = pyotp.parse_uri(uri)
    # Exactly what the daemon made: label and issuer kept, the defaults left out.
    assert uri == f"otpauth://totp/{host}:{user.name}@{host}?secret={totp.secret}&issuer={host}"
    assert (totp.digits, totp.interval, totp.digest().name) == (6, 30, "sha1")
    assert totp.issuer == host and totp.name == f"{user.name}@{host}"
    groups = re.findall("....", totp.secret)
    shown = re.findall(r"(?<![A-Z2-7])[A-Z2-7]{4}(?![A-Z2-7])",
                       screen[screen.index("Key:"):])
    assert shown[:len(groups)] == groups, "the key on the screen is the QR code's"
    return totp


def confirm(enrolling, totp):
    enrolling.answer(totp.at(int(time.time())))
    enrolling.until("Type yes once you have stored the backup codes: ")
    enrolling.answer("yes")
    status, rest = enrolling.finish()
    assert status == 0, enrolling.seen
    assert "Enrolled:" in rest and "twofactor status" in rest, rest


def test_a_short_host_name_shows_the_qr_code_beside_the_key(bus, on_host, users, workdir):
    on_host("bastion")
    user = add_user(users, 10)
    enrolling = Enrolling(bus, user)
    screen = enrolling.until(CODE_PROMPT)
    assert_fits(screen)
    assert "--qr-invert" in screen
    block = qr_block(screen)
    assert len(block) >= 15
    uri = decode(block, workdir / "short.pbm")
    confirm(enrolling, check_uri(uri, "bastion", user, screen))


def test_the_longest_names_show_the_key_first_then_the_qr_code_on_enter(
        bus, on_host, users, workdir):
    assert len(LONGEST_HOST) == 64
    on_host(LONGEST_HOST)
    user = add_user(users, LONGEST_USER_LEN)
    enrolling = Enrolling(bus, user)
    screen = enrolling.until(QR_QUESTION)
    assert_fits(screen)
    assert "█" not in screen, "no QR code yet: it cannot fit with the key"
    assert "Key:" in screen and "make the window taller" in screen
    enrolling.answer("")
    shown = enrolling.until(CODE_PROMPT)
    assert "--qr-invert" in shown
    uri = decode(qr_block(shown), workdir / "long.pbm")
    confirm(enrolling, check_uri(uri, LONGEST_HOST, user, screen))
