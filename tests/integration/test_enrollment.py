"""Enrollment through the real daemon: the offer, its owner connection, replace, backup code
regeneration, and where the secret may (never) turn up afterwards."""
import base64
import json
import re
import socket
import stat
import time

import pyotp
import pytest

from conftest import CONTEXT, ERR, Enrollment, Session, enroll, next_code, oathtool, \
    root_call, state_file, wrong_code

ACCEPTED, REJECTED = 0, 1
NO_DELAYS = """
[lockout]
max_failures = 100
free_failures = 100
base_delay_seconds = 0
"""


def verify(bus, user, code):
    return root_call(bus.address, "Verify", user, code, CONTEXT)["ok"]["outcome"]


@pytest.mark.parametrize("totp_config,oath", [
    ("", {"digits": 6, "algorithm": "sha1", "period": 30}),
    ('[totp]\ndigits = 8\nalgorithm = "SHA256"\nperiod = 60\nissuer = "Example Corp/IT"\n',
     {"digits": 8, "algorithm": "sha256", "period": 60}),
])
def test_offer_is_a_standard_otpauth_uri_and_pyotp_confirms_it(bus, users, make_daemon,
                                                                  totp_config, oath):
    make_daemon(totp_config + NO_DELAYS)
    alice = users.add()
    with Session(bus.address, alice) as session:
        reply = session.call("BeginEnrollment", alice.name, False, "")
        offer = reply["ok"]
        totp = pyotp.parse_uri(offer["otpauth_uri"])
        assert totp.secret == offer["secret_base32"]
        if not totp_config:
            # The parameters apps assume are left out: a shorter URI, a smaller QR code.
            assert not re.search(r"[?&](algorithm|digits|period)=", offer["otpauth_uri"]), offer
        assert len(base64.b32decode(offer["secret_base32"] + "=" * (
            -len(offer["secret_base32"]) % 8))) * 8 >= 160
        assert totp.digits == oath["digits"] == offer["digits"]
        assert totp.interval == oath["period"] == offer["period"]
        assert totp.digest().name == oath["algorithm"]
        assert offer["algorithm"].lower() == oath["algorithm"]
        host = socket.gethostname()
        issuer = "Example Corp/IT" if totp_config else host
        assert totp.issuer == issuer == offer["issuer"]
        assert totp.name == f"{alice.name}@{host}"
        assert offer["label"] == f"{issuer}:{alice.name}@{host}"
        assert offer["expires_in_seconds"] == 600
        # Nothing is stored before the confirmation.
        assert session.call("Status", alice.name)["ok"]["enrolled"] is False
        assert session.call("Verify", alice.name, totp.now(), CONTEXT)["ok"]["outcome"] == \
            REJECTED
        bad = session.call("ConfirmEnrollment", alice.name, "0" * oath["digits"])
        assert bad.get("error") == ERR + "WrongCode", bad
        step = int(time.time()) // oath["period"]
        codes = session.call("ConfirmEnrollment", alice.name, totp.at(step * oath["period"]))
        assert len(codes["ok"]) == 10, codes
        assert session.call("Status", alice.name)["ok"]["enrolled"] is True
    # pyotp and oathtool agree with the daemon afterwards.
    code, used = next_code(offer["secret_base32"], step, period=oath["period"],
                           digits=oath["digits"], algorithm=oath["algorithm"])
    assert code == totp.at(used * oath["period"])
    assert verify(bus, alice.name, code) == ACCEPTED


def test_confirm_only_from_the_beginning_connection(bus, users, make_daemon):
    make_daemon(NO_DELAYS)
    alice = users.add()
    with Session(bus.address, alice) as a, Session(bus.address, alice) as b:
        assert a.unique_name() != b.unique_name()
        offer = a.call("BeginEnrollment", alice.name, False, "")["ok"]
        totp = pyotp.TOTP(offer["secret_base32"])
        for other in (b,):
            stolen = other.call("ConfirmEnrollment", alice.name, totp.now())
            assert stolen.get("error") == ERR + "NoPendingEnrollment", stolen
        # Not even root, from its own connection.
        stolen = root_call(bus.address, "ConfirmEnrollment", alice.name, totp.now())
        assert stolen.get("error") == ERR + "NoPendingEnrollment", stolen
        # The owner still can: the attempts above did not spoil the pending enrollment.
        assert len(a.call("ConfirmEnrollment", alice.name, totp.now())["ok"]) == 10


def test_pending_enrollment_goes_with_its_connection(bus, users, make_daemon):
    make_daemon(NO_DELAYS)
    alice = users.add()
    with Session(bus.address, alice) as b:
        a = Session(bus.address, alice)
        offer = a.call("BeginEnrollment", alice.name, False, "")["ok"]
        a.close()
        totp = pyotp.TOTP(offer["secret_base32"])
        assert b.call("ConfirmEnrollment", alice.name, totp.now()).get("error") == \
            ERR + "NoPendingEnrollment"
        again = b.call("BeginEnrollment", alice.name, False, "")["ok"]
        assert again["secret_base32"] != offer["secret_base32"]
        assert len(b.call("ConfirmEnrollment", alice.name,
                          pyotp.TOTP(again["secret_base32"]).now())["ok"]) == 10


def test_pending_enrollment_is_dropped_when_its_connection_leaves(bus, users, make_daemon):
    """ResetUser reports whether anything (record or pending enrollment) was there, which makes
    the daemon's pending table observable. The daemon hears of the departure by a signal that
    is handled concurrently with calls, so a miss is retried with a longer pause first."""
    make_daemon(NO_DELAYS)
    alice = users.add()
    results = []
    for pause in (0.0, 0.2, 1.0):
        a = Session(bus.address, alice)
        a.call("BeginEnrollment", alice.name, False, "")
        a.close()
        time.sleep(pause)
        reply = root_call(bus.address, "ResetUser", alice.name)
        results.append(reply)
        if reply.get("error") == ERR + "NotEnrolled":
            break
    assert results[-1].get("error") == ERR + "NotEnrolled", results
    print(f"\npending enrollment gone after {len(results)} attempt(s)")
    # Control: while the connection is open, the pending enrollment is there.
    with Session(bus.address, alice) as a:
        a.call("BeginEnrollment", alice.name, False, "")
        assert root_call(bus.address, "ResetUser", alice.name) == {"ok": None}


def test_already_enrolled_and_replace(bus, users, make_daemon):
    make_daemon(NO_DELAYS)
    alice = users.add()
    old = enroll(bus.address, alice, as_user=alice)
    with Session(bus.address, alice) as session:
        again = session.call("BeginEnrollment", alice.name, False, "")
        assert again.get("error") == ERR + "AlreadyEnrolled", again
        wrong = session.call("BeginEnrollment", alice.name, True, wrong_code(old.secret))
        assert wrong.get("error") == ERR + "WrongCode", wrong
        # A backup code proves possession too (and is spent doing so).
        offer = session.call("BeginEnrollment", alice.name, True, old.backup_codes.pop(0))
        assert "ok" in offer, offer
        new_secret = offer["ok"]["secret_base32"]
        assert new_secret != old.secret
        # Until the confirmation, the old enrollment is the one that works.
        assert verify(bus, alice.name, old.code()) == ACCEPTED
        new_step = int(time.time()) // 30
        new_codes = session.call("ConfirmEnrollment", alice.name,
                                 oathtool(new_secret, at=new_step * 30))["ok"]
        assert len(new_codes) == 10
    # Now the old secret and the old backup codes are dead, the new ones live.
    code, _ = next_code(old.secret, old.step)
    assert verify(bus, alice.name, code) == REJECTED
    assert verify(bus, alice.name, old.backup_codes[0]) == REJECTED
    new = Enrollment({"ok": {"secret": new_secret, "backup_codes": new_codes,
                             "step": new_step}})
    assert verify(bus, alice.name, new.code()) == ACCEPTED
    assert verify(bus, alice.name, new.backup_codes[0]) == ACCEPTED


def test_admin_replaces_without_a_code(bus, users, make_daemon):
    make_daemon(NO_DELAYS)
    alice = users.add()
    old = enroll(bus.address, alice)
    with Session(bus.address) as root:
        offer = root.call("BeginEnrollment", alice.name, True, "")["ok"]
        assert verify(bus, alice.name, old.code()) == ACCEPTED
        step = int(time.time()) // 30
        assert "ok" in root.call("ConfirmEnrollment", alice.name,
                                 oathtool(offer["secret_base32"], at=step * 30))
    code, _ = next_code(old.secret, old.step)
    assert verify(bus, alice.name, code) == REJECTED


def test_regenerate_backup_codes_invalidates_the_old_set(bus, users, make_daemon):
    make_daemon(NO_DELAYS)
    alice = users.add()
    enrolled = enroll(bus.address, alice)
    old = enrolled.backup_codes
    with Session(bus.address, alice) as session:
        wrong = session.call("RegenerateBackupCodes", alice.name, wrong_code(enrolled.secret))
        assert wrong.get("error") == ERR + "WrongCode", wrong
        assert verify(bus, alice.name, old[0]) == ACCEPTED  # the old set still works
        new = session.call("RegenerateBackupCodes", alice.name, enrolled.code())["ok"]
    assert len(new) == 10 and not set(new) & set(old)
    for code in old[1:4]:
        assert verify(bus, alice.name, code) == REJECTED, code
    assert verify(bus, alice.name, new[0]) == ACCEPTED
    assert root_call(bus.address, "Status", alice.name)["ok"]["backup_codes_left"] == 9
    # An administrator needs no code.
    newer = root_call(bus.address, "RegenerateBackupCodes", alice.name, "")["ok"]
    assert verify(bus, alice.name, new[1]) == REJECTED
    assert verify(bus, alice.name, newer[9]) == ACCEPTED


def secret_forms(secret):
    """The secret as base32 (any case, with or without padding) and as hex."""
    raw = base64.b32decode(secret + "=" * (-len(secret) % 8))
    return {secret, secret.lower(), raw.hex(), raw.hex().upper()}


def test_no_reply_carries_the_secret(bus, users, make_daemon):
    admin_group = users.group()
    daemon = make_daemon(NO_DELAYS + f'\n[admin]\ngroup = "{admin_group}"\n')
    alice = users.add()
    admin = users.add(groups=[admin_group])
    enrolled = enroll(bus.address, alice, as_user=alice)
    replies = []
    for caller in (None, alice, admin):
        with Session(bus.address, caller) as s:
            replies += [
                s.call("Status", alice.name),
                s.call("ListUsers"),
                s.call("ExplainPolicy", alice.name),
                s.call("LoginPlan", alice.name, CONTEXT),
                s.call("Verify", alice.name, wrong_code(enrolled.secret), CONTEXT),
                s.call("BeginEnrollment", alice.name, False, ""),
                s.call("ConfirmEnrollment", alice.name, "123456"),
                s.call("UnlockUser", alice.name),
            ]
    replies.append(root_call(bus.address, "Verify", alice.name, enrolled.code(), CONTEXT))
    replies.append(root_call(bus.address, "Verify", alice.name, enrolled.backup_codes[0],
                             CONTEXT))
    assert [r["ok"]["outcome"] for r in replies[-2:]] == [ACCEPTED, ACCEPTED]
    text = json.dumps(replies)
    assert '"ok"' in text
    for form in secret_forms(enrolled.secret):
        assert form not in text, form
    # Neither do the backup codes come back after their one showing.
    for code in enrolled.backup_codes:
        assert code not in text and code.replace("-", "") not in text
    # And the stored file holds no backup code either, only hashes.
    stored = state_file(daemon, alice.name).read_text()
    for code in enrolled.backup_codes:
        assert code.replace("-", "") not in stored


def test_state_file_and_directory_permissions(bus, users, daemon):
    alice = users.add()
    enroll(bus.address, alice)
    path = state_file(daemon, alice.name)
    for directory in (daemon.state, daemon.state / "users"):
        info = directory.stat()
        assert stat.S_IMODE(info.st_mode) == 0o700, (directory, oct(info.st_mode))
        assert info.st_uid == 0
    info = path.lstat()
    assert stat.S_ISREG(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o600, oct(info.st_mode)
    assert info.st_uid == 0
    # Rewritten files keep it.
    root_call(bus.address, "RegenerateBackupCodes", alice.name, "")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # The user cannot read it.
    with Session(bus.address, alice) as s:
        assert "ok" in s.call("Status", alice.name)
    import subprocess
    peek = subprocess.run(["setpriv", f"--reuid={alice.uid}", f"--regid={alice.gid}",
                           "--init-groups", "cat", str(path)], capture_output=True)
    assert peek.returncode != 0 and peek.stdout == b""


def test_log_never_holds_secrets_or_codes(bus, users, make_daemon):
    """Drive every code-handling path, then search the daemon's log (its stderr: this machine
    has no /dev/log) for every secret and code that went over the bus."""
    daemon = make_daemon(NO_DELAYS)
    alice = users.add()
    used = []  # codes and secrets that must never appear
    enrolled = enroll(bus.address, alice, as_user=alice)
    used += [enrolled.secret, *enrolled.backup_codes]
    secrets = [enrolled.secret]
    good = enrolled.code()
    wrong = wrong_code(enrolled.secret)
    skewed = oathtool(enrolled.secret, at=time.time() + 5 * 30)
    used += [good, wrong, skewed]
    verify(bus, alice.name, good)
    verify(bus, alice.name, good)  # replay
    verify(bus, alice.name, wrong)
    verify(bus, alice.name, skewed)
    verify(bus, alice.name, enrolled.backup_codes[0])
    verify(bus, alice.name, enrolled.backup_codes[1].replace("-", " "))
    with Session(bus.address, alice) as s:
        current = enrolled.code()
        used.append(current)
        regenerated = s.call("RegenerateBackupCodes", alice.name, current)["ok"]
        used += regenerated
        s.call("RegenerateBackupCodes", alice.name, wrong)
        offer = s.call("BeginEnrollment", alice.name, True, regenerated[0])["ok"]
        used.append(offer["secret_base32"])
        secrets.append(offer["secret_base32"])
        confirm_code = oathtool(offer["secret_base32"])
        used.append(confirm_code)
        s.call("ConfirmEnrollment", alice.name, "000000")
        final = s.call("ConfirmEnrollment", alice.name, confirm_code)["ok"]
        used += final
    verify(bus, alice.name, final[0])
    verify(bus, "nosuch" + alice.name[2:], "654321")
    used.append("654321")
    # Codes typed as input garbage are not logged either.
    root_call(bus.address, "Verify", alice.name, "1" * 40, CONTEXT)
    used.append("1" * 40)
    log = daemon.log_text()
    assert "verified" in log and "failed" in log, log  # the log is the right one
    leaks = []
    for value in used:
        forms = {value, value.replace("-", ""), value.replace("-", " ")}
        if value in secrets:
            forms |= secret_forms(value)
        for form in forms:
            if re.search(rf"(?<![0-9A-Za-z]){re.escape(form)}(?![0-9A-Za-z])", log):
                leaks.append(form)
    assert leaks == [], leaks
