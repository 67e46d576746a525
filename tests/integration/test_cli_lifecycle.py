"""The CLI's lifecycle commands against the real daemon, run as real users: temporary codes for
a lost device, codes by another channel, grace periods and running out of backup codes.

Codes come from oathtool and pyotp; the daemon's answers are checked with the independent
jeepney client (call_as).
"""
import re
import subprocess
import time

import pytest

from conftest import call_as
# cli and cli_bin are test_cli's fixtures, shared here.
from test_cli import as_user, cli, cli_bin, cli_env, enroll  # noqa: F401

CONTEXT = {"service": "sshd", "rhost": "192.0.2.8", "tty": "ssh"}
TEMPORARY = re.compile(r"\d{4}-\d{4}-\d{4}")


@pytest.fixture
def people(make_daemon, users):
    """A daemon whose admin group exists; returns (admin member, ordinary user, target)."""
    group = users.group()
    admin = users.add(groups=[group])
    ordinary = users.add()
    target = users.add()
    make_daemon(f'[admin]\ngroup = "{group}"\n')
    return admin, ordinary, target


def status(cli, user, caller=None):
    return cli.json(caller, "status", user.name)


@pytest.mark.parametrize("role", ["root", "admin-group"])
def test_a_temporary_code_for_a_lost_device(cli, bus, people, role):
    admin, _, target = people
    actor = None if role == "root" else admin
    lost = enroll(cli, target)

    before = int(time.time())
    issued = cli.json(actor, "temp-code", target.name)
    assert issued["user"] == target.name
    assert TEMPORARY.fullmatch(issued["code"]), issued
    assert before + 3600 <= issued["expires_at"] <= int(time.time()) + 3600
    assert issued["expires_in_seconds"] == 3600
    assert status(cli, target)["temporary_code_expires_at"] == issued["expires_at"]
    shown = cli.run(target, "status")
    assert re.search(r"Temporary code: +issued, unused, expires \d{4}-", shown.stdout), shown

    # It works once, like a login would use it.
    used = cli.run(None, "verify", target.name, input=issued["code"] + "\n")
    assert used.returncode == 0 and used.stdout.startswith("accepted"), used
    again = cli.run(None, "verify", target.name, input=issued["code"] + "\n")
    assert again.returncode == 1 and again.stdout == "rejected\n", again
    assert status(cli, target)["temporary_code_expires_at"] == 0

    # A second one, for people, lasting 30 minutes: the code once, its expiry, what to do.
    text = cli.run(actor, "temp-code", target.name, "--expires", "30m")
    assert text.returncode == 0, text.stderr
    codes = TEMPORARY.findall(text.stdout)
    assert len(codes) == 1, text.stdout
    assert re.search(r"until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(in 30 min\)", text.stdout)
    assert "twofactor enroll --replace" in text.stdout
    assert text.stderr == ""

    # `enroll --replace` takes it as the current code; the lost device stops working.
    replaced = cli.enroll_json(target, "--replace", current_code=codes[0])
    assert replaced.returncode == 0, replaced.stderr
    new = replaced.enrolled
    assert new.secret != lost.secret
    reply = call_as(bus.address, None, "Verify", target.name, new.code(), CONTEXT)
    assert reply["ok"]["outcome"] == 0, reply
    old = call_as(bus.address, None, "Verify", target.name, lost.code(), CONTEXT)
    assert old["ok"]["outcome"] == 1, "the lost device's codes no longer work"
    assert call_as(bus.address, None, "Verify", target.name, lost.backup_codes[0],
                   CONTEXT)["ok"]["outcome"] == 1, "the lost device's backup codes are gone"
    assert status(cli, target)["temporary_code_expires_at"] == 0


def test_temporary_codes_are_for_administrators(cli, bus, people):
    _, ordinary, target = people
    enroll(cli, target)
    for user, whom in [(ordinary, target), (target, target), (ordinary, ordinary)]:
        out = cli.run(user, "temp-code", whom.name)
        assert out.returncode == 1, (user, out.stderr)
        assert out.stderr.startswith("twofactor: permission denied: "), out.stderr
        assert not TEMPORARY.search(out.stdout)
    assert status(cli, target)["temporary_code_expires_at"] == 0
    # Lifetimes beyond a day never reach the daemon.
    out = cli.run(None, "temp-code", target.name, "--expires", "25h")
    assert out.returncode == 2 and "24h" in out.stderr, out.stderr


def test_after_a_temporary_code_login_replace_asks_for_no_code(cli, bus, people):
    """The daemon lets a user who just logged in with a temporary code replace the device
    without a current code (the lost device cannot give one); the CLI then asks for none."""
    admin, ordinary, target = people
    lost = enroll(cli, target)
    code = cli.json(admin, "temp-code", target.name)["code"]
    login = call_as(bus.address, None, "Verify", target.name, code, CONTEXT)["ok"]
    assert login["outcome"] == 0 and login["temporary_code_used"], login
    # Interactively nothing is asked before the new key is shown.
    term = subprocess.run(as_user(target, [cli.path, "enroll", "--replace", "--no-qr"]),
                          input="", capture_output=True, text=True, env=cli_env(bus),
                          timeout=60)
    assert "no current code is needed" in term.stdout, term
    assert "Current code" not in term.stderr, term.stderr
    assert re.search(r"Key: +[A-Z2-7 ]+\n", term.stdout), term.stdout
    # With --json the current-code line may be empty.
    replaced = cli.enroll_json(target, "--replace", current_code="")
    assert replaced.returncode == 0, replaced.stderr
    new = replaced.enrolled
    assert new.secret != lost.secret
    assert call_as(bus.address, None, "Verify", target.name, new.code(),
                   CONTEXT)["ok"]["outcome"] == 0
    # Without such a login a current code is still needed.
    other = enroll(cli, ordinary)
    refused = cli.enroll_json(ordinary, "--replace", current_code="")
    assert refused.returncode == 2 and refused.offer is None, refused.stderr
    refused = cli.enroll_json(ordinary, "--replace", current_code=other.wrong_code())
    assert refused.returncode == 1 and "wrong code" in refused.stderr, refused.stderr


@pytest.mark.parametrize("role", ["root", "admin-group"])
def test_delivery_on_and_off(cli, bus, people, role):
    admin, ordinary, target = people
    actor = None if role == "root" else admin
    enroll(cli, target)
    assert status(cli, target)["delivery_enabled"] is False
    assert re.search(r"Code delivery: +off\n", cli.run(target, "status").stdout)

    assert cli.json(actor, "delivery", target.name, "on") == {
        "user": target.name, "delivery_enabled": True}
    assert status(cli, target)["delivery_enabled"] is True
    assert re.search(r"Code delivery: +on", cli.run(target, "status").stdout)
    listed = cli.run(actor, "list")
    assert f"\ndelivery: on for {target.name}\n" in listed.stdout, listed.stdout

    out = cli.run(actor, "delivery", target.name, "off")
    assert out.returncode == 0 and "off for" in out.stdout, out
    assert status(cli, target)["delivery_enabled"] is False

    denied = cli.run(ordinary, "delivery", target.name, "on")
    assert denied.returncode == 1 and "permission denied" in denied.stderr, denied.stderr
    denied = cli.run(target, "delivery", target.name, "on")
    assert denied.returncode == 1, denied.stderr
    assert status(cli, target)["delivery_enabled"] is False


def test_status_shows_the_grace_period(cli, bus, make_daemon, users):
    make_daemon('[policy]\ndefault = "required"\n[enrollment]\ngrace_period = "7d"\n')
    alice = users.add()
    assert status(cli, alice)["grace_ends_at"] == 0, "counted from the first login"

    before = int(time.time())
    plan = call_as(bus.address, None, "LoginPlan", alice.name, CONTEXT)
    assert plan["ok"]["action"] == 0, plan
    after = int(time.time())
    state = status(cli, alice)
    assert before + 7 * 86400 <= state["grace_ends_at"] <= after + 7 * 86400, state
    assert state["enrolled"] is False and state["policy"] == "required"

    text = cli.run(alice, "status").stdout
    assert re.search(r"Grace period: +until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", text), text
    assert re.search(r"required from \d{4}-.* UTC: set it up before then with `twofactor "
                     r"enroll`", text), text
    listed = cli.run(None, "list")
    assert re.search(rf"\ngrace: {alice.name} must enroll by \d{{4}}-", listed.stdout), listed

    # Once enrolled, no grace period is shown.
    enroll(cli, alice)
    assert status(cli, alice)["grace_ends_at"] == 0
    assert "Grace period" not in cli.run(alice, "status").stdout


def test_status_warns_as_backup_codes_run_out(cli, bus, daemon, users):
    alice = users.add()
    enrolled = enroll(cli, alice)
    for code in enrolled.backup_codes[:8]:
        assert call_as(bus.address, None, "Verify", alice.name, code, CONTEXT)["ok"]["outcome"] == 0
    state = status(cli, alice)
    assert state["backup_codes_left"] == 2 and state["backup_codes_low"] is False

    call_as(bus.address, None, "Verify", alice.name, enrolled.backup_codes[8], CONTEXT)
    state = status(cli, alice)
    assert state["backup_codes_left"] == 1 and state["backup_codes_low"] is True
    text = cli.run(alice, "status").stdout
    assert re.search(r"Backup codes left: 1 \(running low\)", text), text
    assert "Warning: only 1 backup code left: make a new set now with `twofactor " \
           "backup-codes`" in text, text
    listed = cli.run(None, "list", "--json").stdout
    assert '"backup_codes_low":true' in listed.replace(" ", "")

    call_as(bus.address, None, "Verify", alice.name, enrolled.backup_codes[9], CONTEXT)
    text = cli.run(alice, "status").stdout
    assert re.search(r"Backup codes left: 0 \(none left\)", text), text
    assert "No backup codes are left: make a new set with `twofactor backup-codes`" in text
    assert f"backup codes: {alice.name} has 0 left" in cli.run(None, "list").stdout

    # A new set clears the warning.
    cli.json(alice, "backup-codes", input=enrolled.code() + "\n")
    state = status(cli, alice)
    assert state["backup_codes_left"] == 10 and state["backup_codes_low"] is False
