"""Verify and LoginPlan through the real daemon: codes from oathtool, replay, backup codes,
the clock skew hint, lockout, unknown users, bad input and unreadable state."""
import os
import re
import time

import pytest

from conftest import (CONTEXT, ERR, Session, call_as, enroll, enroll_as, hold_kept_room,
                      oathtool, root_call, state_file, wrong_code)
from pam_harness import module_line, pamtester, write_service

ACCEPTED, REJECTED, DELAYED, LOCKED = 0, 1, 2, 3
IGNORE, PROMPT, DENY = 0, 1, 2
NO_DELAYS = """
[lockout]
max_failures = 100
free_failures = 100
base_delay_seconds = 0
"""


def verify(bus, user, code, context=CONTEXT):
    return root_call(bus.address, "Verify", user, code, context)


def outcome(reply):
    assert "ok" in reply, reply
    return reply["ok"]["outcome"]


def test_oathtool_code_accepted_wrong_refused_replay_refused_even_after_restart(
        bus, users, make_daemon):
    daemon = make_daemon(NO_DELAYS)
    alice = users.add()
    enrolled = enroll(bus.address, alice)
    wrong = wrong_code(enrolled.secret)
    first = verify(bus, alice.name, wrong)
    assert outcome(first) == REJECTED and first["ok"]["clock_skew_seconds"] == 0, first

    code = enrolled.code()
    reply = verify(bus, alice.name, code)
    assert outcome(reply) == ACCEPTED, reply
    assert reply["ok"]["backup_code_used"] is False
    assert reply["ok"]["backup_codes_left"] == 10
    # The failure before the success is reported once, with its time.
    assert reply["ok"]["failures_since_success"] == 1
    assert reply["ok"]["last_failure_time"] > 0

    replay = verify(bus, alice.name, code)
    assert outcome(replay) == REJECTED, replay
    # An older step than the one accepted is a replay too (the enrollment's own step).
    older = oathtool(enrolled.secret, at=(enrolled.step - 1) * 30)
    assert outcome(verify(bus, alice.name, older)) == REJECTED

    daemon.restart()
    assert outcome(verify(bus, alice.name, code)) == REJECTED, "replay state was not durable"
    # The daemon is not simply refusing everything after the restart.
    backup = verify(bus, alice.name, enrolled.backup_codes[0])
    assert outcome(backup) == ACCEPTED, backup
    status = root_call(bus.address, "Status", alice.name)["ok"]
    assert status["last_success_service"] == "sshd"
    assert status["last_success_rhost"] == "192.0.2.1"


def test_backup_code_accepted_once_in_every_spelling(bus, users, make_daemon):
    make_daemon(NO_DELAYS)
    alice = users.add()
    enrolled = enroll(bus.address, alice)
    codes = enrolled.backup_codes
    assert len(codes) == 10 and len(set(codes)) == 10
    for code in codes:
        assert len(code) == 11 and code[5] == "-" and code.replace("-", "").isdigit(), code

    spellings = [codes[0], codes[1].replace("-", ""), codes[2].replace("-", " ")]
    assert spellings[0].count("-") == 1 and len(spellings[1]) == 10 and " " in spellings[2]
    left = 10
    for index, spelling in enumerate(spellings):
        reply = verify(bus, alice.name, spelling)
        left -= 1
        assert outcome(reply) == ACCEPTED, (spelling, reply)
        assert reply["ok"]["backup_code_used"] is True
        assert reply["ok"]["backup_codes_left"] == left
        # Spent: refused in the same and in every other spelling.
        digits = codes[index].replace("-", "")
        for again in (spelling, digits, f"{digits[:5]}-{digits[5:]}", f"{digits[:5]} {digits[5:]}"):
            refused = verify(bus, alice.name, again)
            assert outcome(refused) == REJECTED, (again, refused)
            assert refused["ok"]["backup_codes_left"] == left
    assert root_call(bus.address, "Status", alice.name)["ok"]["backup_codes_left"] == 7
    # A 10-digit code that is no backup code is refused and spends nothing.
    bogus = verify(bus, alice.name, "0000000000")
    assert outcome(bogus) == REJECTED and bogus["ok"]["backup_codes_left"] == 7


@pytest.mark.parametrize("steps", [5, -5])
def test_clock_skew_hint(bus, users, make_daemon, steps):
    """One code far off, even sent twice, gives no hint: only two different codes in a row
    at the same offset do (daemon/src/throttle tests, with injected time)."""
    make_daemon(NO_DELAYS)
    alice = users.add()
    enrolled = enroll(bus.address, alice)
    code = oathtool(enrolled.secret, at=(int(time.time()) // 30 + steps) * 30)
    for _ in range(2):
        reply = verify(bus, alice.name, code)
        assert outcome(reply) == REJECTED, reply
        assert reply["ok"]["clock_skew_seconds"] == 0, reply
    # Both count as failures; nothing was accepted or spent.
    status = root_call(bus.address, "Status", alice.name)["ok"]
    assert status["last_success_time"] == 0 and status["failures_since_success"] == 2


def test_lockout_after_max_failures_survives_restart_until_unlock(bus, users, make_daemon):
    daemon = make_daemon("""
[lockout]
max_failures = 3
free_failures = 3
base_delay_seconds = 0
""")
    alice = users.add()
    enrolled = enroll(bus.address, alice)
    wrong = wrong_code(enrolled.secret)
    for attempt in range(3):
        assert outcome(verify(bus, alice.name, wrong)) == REJECTED, attempt
    code = enrolled.code()
    assert outcome(verify(bus, alice.name, code)) == LOCKED
    assert outcome(verify(bus, alice.name, enrolled.backup_codes[0])) == LOCKED
    status = root_call(bus.address, "Status", alice.name)["ok"]
    assert status["locked"] is True and status["failures_since_success"] == 3, status

    daemon.restart()
    assert outcome(verify(bus, alice.name, code)) == LOCKED, "lockout was not durable"
    assert root_call(bus.address, "Status", alice.name)["ok"]["locked"] is True

    assert root_call(bus.address, "UnlockUser", alice.name) == {"ok": None}
    assert root_call(bus.address, "Status", alice.name)["ok"]["locked"] is False
    # The code offered while locked was not checked, so it was not spent either.
    reply = verify(bus, alice.name, code)
    assert outcome(reply) == ACCEPTED, reply
    assert reply["ok"]["failures_since_success"] == 3
    assert root_call(bus.address, "Status", alice.name)["ok"]["failures_since_success"] == 0


def test_unknown_user_is_rejected_and_prompted_like_anyone(bus, users, daemon):
    alice = users.add()
    ghost = "nosuch" + alice.name[2:]
    reply = verify(bus, ghost, "123456")
    assert outcome(reply) == REJECTED, reply
    assert reply["ok"]["backup_codes_left"] == 0
    assert outcome(verify(bus, ghost, "12345-67890")) == REJECTED
    assert root_call(bus.address, "LoginPlan", ghost, CONTEXT) == {
        "ok": {"action": PROMPT, "message": "", "can_send_code": False,
               "keep_connection": True}}
    # Known and not enrolled, default policy optional: 2FA does not apply.
    assert root_call(bus.address, "LoginPlan", alice.name, CONTEXT)["ok"]["action"] == IGNORE
    assert outcome(verify(bus, alice.name, "123456")) == REJECTED


INVALID_INPUT = [
    ("Verify", ["{user}", "abc", CONTEXT]),
    ("Verify", ["{user}", "1" * 100, CONTEXT]),
    ("Verify", ["{user}", "1" * 33, CONTEXT]),
    ("Verify", ["{user}", "", CONTEXT]),
    ("Verify", ["{user}", "---", CONTEXT]),
    ("Verify", ["{user}", "12345\n6", CONTEXT]),
    ("Verify", ["{user}", "\uff11\uff12\uff13\uff14\uff15\uff16", CONTEXT]),  # fullwidth
    ("Verify", ["../etc", "123456", CONTEXT]),
    ("Verify", ["", "123456", CONTEXT]),
    ("Verify", ["a" * 65, "123456", CONTEXT]),
    ("Verify", ["{user}", "123456", {"service": "sshd\nfake", "rhost": "", "tty": ""}]),
    ("Verify", ["{user}", "123456", {"service": "x" * 257, "rhost": "", "tty": ""}]),
    ("LoginPlan", ["../etc", CONTEXT]),
    ("LoginPlan", ["-rf", CONTEXT]),
    ("LoginPlan", ["{user}", {"service": "", "rhost": "a\u0007b", "tty": ""}]),
    ("Status", ["../etc"]),
    ("ExplainPolicy", ["a/b"]),
    ("ResetUser", ["../../etc/passwd"]),
    ("UnlockUser", [".."]),
    ("ConfirmEnrollment", ["{user}", "abc"]),
    ("Disable", ["../etc", ""]),
]
# Codes that authorize a change are checked when the user acts on itself (an administrator
# acting on someone else passes "" and the argument is not used).
INVALID_INPUT_AS_USER = [
    ("RegenerateBackupCodes", ["{user}", "x" * 100]),
    ("BeginEnrollment", ["{user}", True, "abc"]),
    ("Disable", ["{user}", "1" * 40]),
]


def test_invalid_input(bus, users, daemon):
    alice = users.add()
    enrolled = enroll(bus.address, alice)
    before = state_file(daemon, alice.name).read_bytes()
    wrong = []
    with Session(bus.address, alice) as as_alice:
        for caller, cases in ((None, INVALID_INPUT), (as_alice, INVALID_INPUT_AS_USER)):
            for method, args in cases:
                args = [a.replace("{user}", alice.name) if isinstance(a, str) else a
                        for a in args]
                if caller is None:
                    reply = root_call(bus.address, method, *args)
                else:
                    reply = caller.call(method, *args)
                if reply.get("error") != ERR + "InvalidInput":
                    wrong.append((method, args, reply))
    assert wrong == []
    # Refused before any state work: nothing counted, nothing written, nothing created.
    assert state_file(daemon, alice.name).read_bytes() == before
    assert sorted(p.name for p in (daemon.state / "users").iterdir()) == [f"{alice.name}.toml"]
    assert not (daemon.state.parent / "etc").exists()
    assert enrolled.secret not in daemon.log_text()


def test_longest_code_is_input_not_an_error(bus, users, daemon):
    """32 characters is the limit itself: a well-formed (if wrong) code, not InvalidInput."""
    alice = users.add()
    enroll(bus.address, alice)
    assert outcome(verify(bus, alice.name, "1" * 32)) == REJECTED
    assert outcome(verify(bus, alice.name, " 12345 - 67890 ")) == REJECTED


def corrupt_garbage(path):
    path.write_bytes(os.urandom(300) + b"\n[[[not toml")


def corrupt_empty(path):
    path.write_bytes(b"")


def corrupt_truncated_in_the_secret(path):
    text = path.read_text()
    cut = text.index("secret = ") + len("secret = ") + 10
    path.write_text(text[:cut])


def corrupt_wrong_version(path):
    """Version 0 was never written (a newer version is another case: see below)."""
    text, replaced = re.subn(r"\Aversion = \d+\n", "version = 0\n", path.read_text())
    assert replaced == 1
    path.write_text(text)


def corrupt_world_readable(path):
    path.chmod(0o644)


def corrupt_symlink(path):
    real = path.with_name("elsewhere")
    path.rename(real)
    path.symlink_to(real)


@pytest.mark.parametrize("corrupt", [corrupt_garbage, corrupt_empty,
                                     corrupt_truncated_in_the_secret, corrupt_wrong_version,
                                     corrupt_world_readable, corrupt_symlink])
def test_unreadable_state_fails_closed(bus, users, make_daemon, corrupt):
    daemon = make_daemon(NO_DELAYS)
    alice, bob = users.add(), users.add()
    alice_enrolled = enroll(bus.address, alice)
    bob_enrolled = enroll(bus.address, bob)
    corrupt(state_file(daemon, alice.name))

    for code in (alice_enrolled.code(), alice_enrolled.backup_codes[0], "000000"):
        reply = verify(bus, alice.name, code)
        # Never Accepted, and never Rejected-as-not-enrolled either: an error, fail closed.
        assert reply.get("error") == ERR + "Internal", (code, reply)
    plan = root_call(bus.address, "LoginPlan", alice.name, CONTEXT)
    assert plan.get("error") == ERR + "Internal", plan

    assert outcome(verify(bus, bob.name, bob_enrolled.code())) == ACCEPTED
    listed = {s["user"]: s for s in root_call(bus.address, "ListUsers")["ok"]}
    assert listed[alice.name]["problem"] != "", listed[alice.name]
    assert listed[alice.name]["locked"] is True
    assert listed[bob.name]["problem"] == "", listed[bob.name]
    assert root_call(bus.address, "Status", alice.name)["ok"]["problem"] != ""
    assert alice_enrolled.secret not in daemon.log_text()

    # An administrator's reset is the way out; afterwards alice is simply not enrolled.
    assert root_call(bus.address, "ResetUser", alice.name) == {"ok": None}
    assert root_call(bus.address, "LoginPlan", alice.name, CONTEXT)["ok"]["action"] == IGNORE


def test_a_record_of_a_newer_version_is_refused_and_the_log_says_what_to_do(
        bus, users, make_daemon, workdir):
    """After a downgrade, a record that a newer twofactord wrote: the login is denied (never
    "not enrolled"), the log names the file, its version, the newest this daemon reads and the
    way out, and the status does not advise the reset that would delete the record."""
    daemon = make_daemon(NO_DELAYS)
    alice = users.add()
    enrolled = enroll(bus.address, alice)
    path = state_file(daemon, alice.name)
    current = int(re.match(r"version = (\d+)\n", path.read_text()).group(1))
    newer = current + 1
    # A newer version may also add fields this daemon has never heard of.
    text = re.sub(r"\Aversion = \d+\n", f"version = {newer}\nfrom_the_future = true\n",
                  path.read_text())
    path.write_text(text)

    code = enrolled.code()
    reply = verify(bus, alice.name, code)
    assert reply.get("error") == ERR + "Internal", reply
    plan = root_call(bus.address, "LoginPlan", alice.name, CONTEXT)
    assert plan.get("error") == ERR + "Internal", plan
    pam_dir = write_service(workdir / "pam.d", "tf-newer", module_line(bus.address))
    login = pamtester(pam_dir, "tf-newer", alice.name, [code])
    assert login.returncode != 0 and "successfully authenticated" not in login.output, login

    log = daemon.log_text()
    for part in (str(path), "newer twofactord", f"record version {newer}",
                 f"reads versions up to {current}", "installed again"):
        assert part in log, (part, log)
    problem = root_call(bus.address, "Status", alice.name)["ok"]["problem"]
    assert "newer twofactord" in problem and "reset" not in problem, problem
    listed = {s["user"]: s for s in root_call(bus.address, "ListUsers")["ok"]}
    assert listed[alice.name]["locked"] is True
    assert path.read_text() == text, "the daemon never rewrites a record it cannot read"
    assert enrolled.secret not in log


def test_keep_connection_is_for_root_prompts_and_bounded(bus, daemon, users):
    """LoginPlan lets a root caller keep its connection through the prompt, to at most 64
    connections at once; another caller, or a plan with no prompt, is never told to."""
    import tfcall
    alice = users.add()
    enroll_as(bus.address, None, alice.name)
    bob = users.add()  # not enrolled, default policy optional: Ignore

    def keep(conn, user):
        return tfcall.call(conn, "LoginPlan", [user, CONTEXT])["ok"]["keep_connection"]

    assert call_as(bus.address, alice, "LoginPlan", alice.name, CONTEXT)["ok"] == {
        "action": PROMPT, "message": "", "can_send_code": False, "keep_connection": False}
    assert root_call(bus.address, "LoginPlan", bob.name, CONTEXT)["ok"]["action"] == IGNORE
    assert not root_call(bus.address, "LoginPlan", bob.name, CONTEXT)["ok"]["keep_connection"]

    # Room for 64, none for a 65th.
    holders = hold_kept_room(bus.address, alice.name)
    try:
        assert keep(holders[0], alice.name), "asking again on a kept connection"
        # A kept connection that leaves frees its room (once the daemon hears it left).
        holders.pop().close()
        deadline = time.monotonic() + 10
        while not root_call(bus.address, "LoginPlan", alice.name, CONTEXT)["ok"][
                "keep_connection"]:
            assert time.monotonic() < deadline, "the room was never freed"
            time.sleep(0.05)
    finally:
        for conn in holders:
            conn.close()
