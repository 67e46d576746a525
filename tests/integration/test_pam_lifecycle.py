"""The life of an enrollment as a login sees it, through the real pam_twofactor.so, real libpam
(pamtester under pam_wrapper, and a real sshd), the real twofactord on a private bus:
enrollment at login (the key read back from the conversation, the QR code decoded with
zbarimg, the confirming code from oathtool), where it is not allowed, grace periods, the
backup-code countdown and a new set offered at login, temporary codes, codes sent by another
channel."""
import pathlib
import re
import subprocess
import time

import pexpect
import pytest

from conftest import CLEAN_ENV, call_as, oathtool
from pam_harness import (AUTH_ERR, SUCCESS, WRONG_CODE, Enrolled, module_line, pamtester,
                         pamtester_spawn, write_service)
from test_ssh import add_key, make_sshd, ssh_with_key_and_code  # noqa: F401 (fixture)

SERVICE = "tf-pam-lifecycle"
PERMIT_FIRST = "auth required pam_permit.so"
PASSWORD = "Tr0ub4dor&3-enroll"

# The module's texts (pam_module/src/messages.rs).
ENROLL_PROMPT = "Code from your authenticator app: "
STORED_PROMPT = "Press Enter once you have stored your backup codes: "
OFFER_PROMPT = "You have no backup codes left. Create a new set now? [y/N] "
SEND_PROMPT = "Verification code or backup code (or press Enter to have a code sent): "
CODE_PROMPT = "Verification code or backup code: "
SENT = "A code was sent to you; it is valid for 5 minutes."
TEMPORARY = ("You logged in with a temporary code from an administrator. Set up two-factor on "
             "your new device now with `twofactor enroll --replace`.")
ENROLLED = "Two-factor authentication is now set up. Your backup codes:"
NEW_CODES = "Your new backup codes (the old ones no longer work):"

REQUIRED = '[policy]\ndefault = "required"\n'
REQUIRED_AT_LOGIN = REQUIRED + "[enrollment]\nat_login = true\n"
NO_LOCKOUT = "[lockout]\nmax_failures = 100\nfree_failures = 100\n"


@pytest.fixture
def pam_dir(workdir):
    return workdir / "pam.d"


def service(pam_dir, address, before=(), enroll_at_login=True):
    args = ("enroll_at_login",) if enroll_at_login else ()
    return write_service(pam_dir, SERVICE, [*before, module_line(address, timeout=5, args=args)])


def authenticate(pam_dir, user, *answers, **kwargs):
    return pamtester(pam_dir, SERVICE, user.name, answers, **kwargs)


def spawn(pam_dir, user, items=None):
    return pamtester_spawn(pam_dir, SERVICE, user.name, items=items)


def finish(child):
    """Waits for the end; returns (exit status, the rest of the output)."""
    child.expect(pexpect.EOF)
    rest = child.before
    child.close()
    return child.exitstatus, rest


# --- reading what the user is shown ----------------------------------------------------------

def read_key(text):
    """The key in groups of four from "Key:     ABCD EFGH ...", without the spaces."""
    found = re.search(r"Key:\s+([A-Z2-7]{4}(?: [A-Z2-7]{1,4})*)", text)
    assert found, text
    return found.group(1).replace(" ", "")


def read_backup_codes(text):
    codes = re.findall(r"\b\d{5}-\d{5}\b", text)
    assert len(codes) == 10 and len(set(codes)) == 10, text
    return codes


BLOCKS = {" ": (False, False), "▀": (True, False), "▄": (False, True), "█": (True, True)}


def read_qr_uri(text, directory):
    """The QR code drawn in `text` (light on dark: a drawn half is light), decoded by
    zbarimg. The drawing is the run of lines made only of block characters."""
    lines = [line.rstrip("\r") for line in text.split("\n")]
    drawing = []
    for line in lines:
        if line and set(line) <= set(BLOCKS) and "█" in line:
            drawing.append(line)
        elif drawing:
            break
    assert len(drawing) > 10, text
    width = max(len(line) for line in drawing)
    margin, scale = 4, 4
    rows = [[True] * (width + 2 * margin) for _ in range(margin)]
    for line in drawing:
        top, bottom = [True] * margin, [True] * margin
        for char in line.ljust(width):
            upper, lower = BLOCKS[char]
            top.append(not upper)
            bottom.append(not lower)
        rows += [top + [True] * margin, bottom + [True] * margin]
    rows += [[True] * (width + 2 * margin) for _ in range(margin)]
    pbm = [f"P1\n{len(rows[0]) * scale} {len(rows) * scale}"]
    for row in rows:
        line = " ".join("1" if pixel else "0" for pixel in row for _ in range(scale))
        pbm += [line] * scale
    path = pathlib.Path(directory) / "qr.pbm"
    path.write_text("\n".join(pbm) + "\n")
    done = subprocess.run(["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable",
                           str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done
    return done.stdout.strip()


def secret_of(uri):
    found = re.search(r"[?&]secret=([A-Z2-7]+)", uri)
    assert found, uri
    return found.group(1)


def enroll_through(child, workdir, wrong_first=True):
    """Drives an enrollment at login on `child` (pamtester or ssh) up to the Enter prompt:
    reads the key and the QR code, optionally types a wrong code first, confirms with a code
    from oathtool. Returns (everything shown before the first prompt, key, backup codes)."""
    child.expect_exact(ENROLL_PROMPT)
    offer = child.before
    key = read_key(offer)
    assert secret_of(read_qr_uri(offer, workdir)) == key
    if wrong_first:
        now = int(time.time())
        near = {oathtool(key, at=now + 30 * k) for k in range(-3, 4)}
        wrong = next(code for code in ("000000", "123456", "999999") if code not in near)
        child.sendline(wrong)
        child.expect_exact(WRONG_CODE)
        child.expect_exact(ENROLL_PROMPT)
    child.sendline(oathtool(key))
    child.expect_exact(STORED_PROMPT)
    codes = read_backup_codes(child.before)
    assert ENROLLED in child.before, child.before
    child.sendline("")
    return offer, key, codes


# --- enrollment at login ---------------------------------------------------------------------

def test_enrollment_at_login_then_codes_work(make_daemon, bus, users, pam_dir, workdir):
    make_daemon(REQUIRED_AT_LOGIN)
    alice = users.add()
    service(pam_dir, bus.address)
    child = spawn(pam_dir, alice)
    offer, key, codes = enroll_through(child, workdir)
    status, rest = finish(child)
    assert status == 0 and SUCCESS in rest, rest
    # The daemon's message first, then the QR code and the key by hand.
    assert f"Two-factor authentication is required for {alice.name} (default)" in offer
    assert "Scan this QR code with your authenticator app:" in offer, offer
    assert f"{alice.name}@" in offer, offer
    record = call_as(bus.address, None, "Status", alice.name)["ok"]
    assert record["enrolled"] and record["backup_codes_left"] == 10, record

    # The enrolled user now logs in like anybody else: a TOTP code, then a backup code.
    token = Enrolled.known(alice, key, codes)
    result = authenticate(pam_dir, alice, token.code())
    assert result.ok, result
    assert result.prompts == 1, result
    result = authenticate(pam_dir, alice, codes[0])
    assert result.ok, result
    assert "A backup code was used; 9 backup codes are left." in result.output, result
    # And no more enrollment is offered.
    assert ENROLL_PROMPT not in result.output


def test_enrollment_at_login_fails_after_three_wrong_codes(make_daemon, bus, users, pam_dir):
    make_daemon(REQUIRED_AT_LOGIN)
    alice = users.add()
    service(pam_dir, bus.address)
    child = spawn(pam_dir, alice)
    for _ in range(3):
        child.expect_exact(ENROLL_PROMPT)
        child.sendline("000000")
        child.expect_exact(WRONG_CODE)
    child.expect_exact("Two-factor authentication was not set up. Log in again to start over")
    status, rest = finish(child)
    assert status != 0 and AUTH_ERR in rest, rest
    assert not call_as(bus.address, None, "Status", alice.name)["ok"]["enrolled"]


def test_enrollment_at_login_only_from_allowed_hosts(make_daemon, bus, users, pam_dir):
    make_daemon(REQUIRED_AT_LOGIN + 'at_login_from = ["10.0.0.0/8"]\n')
    alice = users.add()
    service(pam_dir, bus.address)
    result = authenticate(pam_dir, alice, items={"rhost": "203.0.113.5"})
    assert result.returncode != 0 and AUTH_ERR in result.output, result
    assert SUCCESS not in result.output, result
    assert (f"Two-factor authentication is required for {alice.name} (default) but is not "
            "set up. Run `twofactor enroll` in a session that is already logged in"
            in result.output), result
    assert "Key:" not in result.output and ENROLL_PROMPT not in result.output, result
    # From inside the allowed network the same user is offered enrollment.
    child = spawn(pam_dir, alice, items={"rhost": "10.20.30.40"})
    try:
        child.expect_exact(ENROLL_PROMPT)
        assert "Key:" in child.before
    finally:
        child.close(force=True)
    assert not call_as(bus.address, None, "Status", alice.name)["ok"]["enrolled"]


def test_enrollment_at_login_needs_the_module_argument(make_daemon, bus, users, pam_dir):
    """A stack without `enroll_at_login` (say, one with a `required` password module, where
    PAM goes on after a wrong password) never shows a key, whatever the daemon allows."""
    daemon = make_daemon(REQUIRED_AT_LOGIN)
    alice = users.add()
    service(pam_dir, bus.address, enroll_at_login=False)
    result = authenticate(pam_dir, alice)
    assert result.returncode != 0 and AUTH_ERR in result.output, result
    assert "Key:" not in result.output and ENROLL_PROMPT not in result.output, result
    assert "cannot be set up during this login" in result.output, result
    assert "enrollment-started" not in daemon.log_text()


def test_enrollment_only_after_the_password(make_daemon, bus, users, pam_dir, workdir):
    """The documented stack: the password module `requisite` before ours, so whoever does not
    know the password never sees a key (and cannot enroll a device of their own)."""
    daemon = make_daemon(REQUIRED_AT_LOGIN)
    alice = users.add(password=PASSWORD)
    service(pam_dir, bus.address, before=["auth requisite pam_unix.so nodelay"])
    result = authenticate(pam_dir, alice, "not the password", "000000")
    assert result.returncode != 0 and AUTH_ERR in result.output, result
    assert "Key:" not in result.output, result
    assert "enrollment-started" not in daemon.log_text()

    child = spawn(pam_dir, alice)
    child.expect_exact("Password:")
    child.sendline(PASSWORD)
    enroll_through(child, workdir, wrong_first=False)
    status, rest = finish(child)
    assert status == 0 and SUCCESS in rest, rest
    assert "enrollment-started" in daemon.log_text()


def test_enrollment_at_login_over_ssh(make_daemon, bus, users, workdir, make_sshd):
    make_daemon(REQUIRED_AT_LOGIN)
    alice = users.add()
    key_file = add_key(alice, workdir)
    server = make_sshd([module_line(bus.address, timeout=5, args=("enroll_at_login",))],
                       "publickey,keyboard-interactive")
    child = pexpect.spawn(
        "ssh", [*server.ssh_options(), "-o", "PreferredAuthentications=publickey,keyboard-interactive",
                "-o", "IdentitiesOnly=yes", "-i", str(key_file), f"{alice.name}@127.0.0.1",
                "echo", "LOGGED-IN"],
        env=CLEAN_ENV, encoding="utf-8", timeout=30)
    try:
        # sshd folds the info message into the prompt's text; the key and the QR code arrive
        # intact through keyboard-interactive.
        offer, key, codes = enroll_through(child, workdir)
        status, rest = finish(child)
    finally:
        child.close(force=True)
    assert status == 0, (rest, server.log_text())
    assert "LOGGED-IN" in rest, rest
    assert f"Two-factor authentication is required for {alice.name}" in offer, offer
    assert "Accepted keyboard-interactive" in server.log_text()
    # The new key works for the next ssh login.
    token = Enrolled.known(alice, key, codes)
    done = ssh_with_key_and_code(server, alice, key_file, token.code())
    assert done.returncode == 0 and done.stdout.strip() == "OK", (done, server.log_text())


# --- grace period ----------------------------------------------------------------------------

def test_grace_period_then_denied(make_daemon, bus, users, pam_dir):
    daemon = make_daemon(REQUIRED + '[enrollment]\ngrace_period = "7d"\n')
    bob = users.add()
    service(pam_dir, bus.address, before=[PERMIT_FIRST])
    first = authenticate(pam_dir, bob)
    assert first.ok, first
    assert first.prompts == 0, first
    assert (f"Two-factor authentication will be required for {bob.name} from " in first.output
            and "Set it up now with `twofactor enroll`." in first.output), first

    # Eight days later: the grace period started at the first login is over.
    daemon.stop()
    state = daemon.state / "users" / f"{bob.name}.toml"
    text = state.read_text()
    assert re.search(r"^grace_started = \d+$", text, flags=re.M), text
    eight_days_ago = int(time.time()) - 8 * 86400
    state.write_text(re.sub(r"^grace_started = \d+$", f"grace_started = {eight_days_ago}",
                            text, flags=re.M))
    daemon.start()
    later = authenticate(pam_dir, bob)
    assert later.returncode != 0 and AUTH_ERR in later.output, later
    assert SUCCESS not in later.output, later
    assert (f"Two-factor authentication is required for {bob.name} (default) but is not set up"
            in later.output), later


# --- backup codes ----------------------------------------------------------------------------

def test_backup_code_countdown_then_a_new_set_at_login(make_daemon, bus, users, pam_dir):
    daemon = make_daemon(REQUIRED + NO_LOCKOUT)
    alice = users.add()
    token = Enrolled(bus.address, alice)
    service(pam_dir, bus.address)
    for index, code in enumerate(token.backup_codes):
        left = 9 - index
        result = authenticate(pam_dir, alice, code)
        assert result.ok, result
        if left >= 2:
            assert f"A backup code was used; {left} backup codes are left." in result.output
        elif left == 1:
            assert ("Warning: a backup code was used and only 1 is left. Run `twofactor "
                    "backup-codes` to get new ones." in result.output), result
        else:
            assert ("Warning: a backup code was used and none are left. Run `twofactor "
                    "backup-codes` now to get new ones." in result.output), result
        # Enrollment at login is off: no offer.
        assert OFFER_PROMPT not in result.output, result
    # All spent: the first one again is refused.
    again = authenticate(pam_dir, alice, token.backup_codes[0])
    assert again.returncode != 0 and WRONG_CODE in again.output, again

    daemon.restart(REQUIRED_AT_LOGIN + NO_LOCKOUT)
    child = spawn(pam_dir, alice)
    child.expect_exact(CODE_PROMPT)
    child.sendline(token.code())
    child.expect_exact(OFFER_PROMPT)
    child.sendline("y")
    child.expect_exact(STORED_PROMPT)
    assert NEW_CODES in child.before, child.before
    codes = read_backup_codes(child.before)
    child.sendline("")
    status, rest = finish(child)
    assert status == 0 and SUCCESS in rest, rest
    assert call_as(bus.address, None, "Status", alice.name)["ok"]["backup_codes_left"] == 10

    result = authenticate(pam_dir, alice, codes[3])
    assert result.ok, result
    assert "A backup code was used; 9 backup codes are left." in result.output, result
    assert OFFER_PROMPT not in result.output, result


def test_declining_new_backup_codes_still_logs_in(make_daemon, bus, users, pam_dir):
    make_daemon(REQUIRED_AT_LOGIN + NO_LOCKOUT)
    alice = users.add()
    token = Enrolled(bus.address, alice)
    service(pam_dir, bus.address)
    for code in token.backup_codes[:9]:
        assert authenticate(pam_dir, alice, code).ok
    # The last backup code: the warning, then the offer (declined with Enter).
    result = authenticate(pam_dir, alice, token.backup_codes[9], "")
    assert result.ok, result
    assert "none are left" in result.output, result
    assert OFFER_PROMPT in result.output, result
    assert "Run `twofactor backup-codes` to create new ones." in result.output, result
    assert call_as(bus.address, None, "Status", alice.name)["ok"]["backup_codes_left"] == 0


# --- temporary codes -------------------------------------------------------------------------

def test_temporary_code_works_once(make_daemon, bus, users, pam_dir):
    make_daemon(REQUIRED)
    alice = users.add()
    Enrolled(bus.address, alice)  # the device that is now lost
    issued = call_as(bus.address, None, "IssueTemporaryCode", alice.name, 0)["ok"]
    assert re.fullmatch(r"\d{4}-\d{4}-\d{4}", issued["code"]), issued
    service(pam_dir, bus.address)
    first = authenticate(pam_dir, alice, issued["code"])
    assert first.ok, first
    assert TEMPORARY in first.output, first
    again = authenticate(pam_dir, alice, issued["code"])
    assert again.returncode != 0 and AUTH_ERR in again.output, again
    assert WRONG_CODE in again.output and TEMPORARY not in again.output, again


# --- codes by another channel ----------------------------------------------------------------

def test_a_code_sent_by_another_channel(make_daemon, bus, users, pam_dir, workdir):
    outbox = workdir / "outbox"
    sender = workdir / "send-code"
    sender.write_text(f'#!/bin/sh\nread code\necho "$1 $code" >> {outbox}\n')
    sender.chmod(0o755)
    make_daemon(REQUIRED + NO_LOCKOUT + f'[delivery]\ncommand = "{sender}"\n')
    alice = users.add()
    token = Enrolled(bus.address, alice)
    service(pam_dir, bus.address)
    # Not allowed for alice yet: the usual prompt, and an empty answer is no code.
    plain = authenticate(pam_dir, alice, "")
    assert plain.returncode != 0 and "No verification code entered." in plain.output, plain
    assert SEND_PROMPT not in plain.output and not outbox.exists(), plain

    assert "ok" in call_as(bus.address, None, "SetDelivery", alice.name, True)
    child = spawn(pam_dir, alice)
    child.expect_exact(SEND_PROMPT)
    child.sendline("")
    child.expect_exact(SENT)
    child.expect_exact(CODE_PROMPT)
    user, sent = outbox.read_text().split()
    assert user == alice.name and re.fullmatch(r"\d{6}", sent), outbox.read_text()
    child.sendline(sent)
    status, rest = finish(child)
    assert status == 0 and SUCCESS in rest, rest
    # Single use; and a typed TOTP code still works at the same prompt.
    again = authenticate(pam_dir, alice, sent)
    assert again.returncode != 0 and WRONG_CODE in again.output, again
    result = authenticate(pam_dir, alice, token.code())
    assert result.ok, result
    assert SEND_PROMPT in result.output and SENT not in result.output, result
