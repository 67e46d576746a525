"""What an administrator rolling twofactor out relies on, against the real twofactord and the
real CLI on a private bus, with real users and groups: SIGHUP re-reads the configuration (and
refuses an invalid one), --check-config warns about names this machine does not know, `list`
shows the required users who are not enrolled, and unlock, status and reset say what is so."""
import grp
import json
import re
import signal
import subprocess
import time

import pytest

from conftest import CONTEXT, binary, call_as, enroll, root_call, wrong_code
from test_cli import cli, cli_bin  # noqa: F401 (fixtures)

ROOT = None


def prose(text):
    """The CLI wraps prose to the terminal's width: compare sentences, not line breaks."""
    return " ".join(text.split())


def wait_for_log(daemon, text, timeout=20):
    """The daemon's log once it holds `text` (the daemon writes it when done)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = daemon.log_text()
        if text in log:
            return log
        assert daemon.proc.poll() is None, log
        time.sleep(0.02)
    raise AssertionError(f"{text!r} never logged:\n{daemon.log_text()}")


def policy_of(bus, user):
    return root_call(bus.address, "ExplainPolicy", user.name)["ok"]


# --- SIGHUP ------------------------------------------------------------------------------------

def test_sighup_puts_a_new_config_in_force_and_refuses_an_invalid_one(make_daemon, bus, users):
    daemon = make_daemon('[policy]\ndefault = "optional"\n')
    alice = users.add()
    assert policy_of(bus, alice)["policy"] == "optional"

    daemon.config.write_text(f'[policy]\nusers = {{ {alice.name} = "required" }}\n')
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for_log(daemon, "config-reloaded")
    assert policy_of(bus, alice) == {"user": alice.name, "policy": "required",
                                     "source": f"user {alice.name}",
                                     "explanation": f"user {alice.name} → required"}
    # A login sees it too: required and not enrolled is denied.
    plan = root_call(bus.address, "LoginPlan", alice.name, CONTEXT)["ok"]
    assert plan["action"] == 2, plan

    daemon.config.write_text('[policy]\ndefault = "requird"\n')
    daemon.proc.send_signal(signal.SIGHUP)
    log = wait_for_log(daemon, "config-reload-refused")
    refused = next(line for line in log.splitlines() if "config-reload-refused" in line)
    assert str(daemon.config) in refused, refused
    assert "requird" in refused and "line 2" in refused, refused
    assert policy_of(bus, alice)["policy"] == "required", "the old configuration stays"
    assert daemon.proc.poll() is None


# --- --check-config ----------------------------------------------------------------------------

def check_config(workdir, text):
    config = workdir / "check.toml"
    config.write_text(text)
    return subprocess.run([binary("twofactord"), "--check-config", "--config", str(config),
                           "--state-dir", str(workdir / "unused-state")],
                          capture_output=True, text=True, timeout=20)


def group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def test_check_config_warns_about_unknown_users_and_groups(workdir, users):
    real_group = users.group()
    real_user = users.add()
    out = check_config(workdir, f"""
[policy]
groups = {{ wheel = "required", {real_group} = "required", tfnogroup-x1 = "required" }}
users = {{ {real_user.name} = "optional", tfnouser-x1 = "disabled" }}
[admin]
group = "{real_group}"
[enrollment]
at_login_from = ["local"]
""")
    assert out.returncode == 0, out
    warnings = [line for line in out.stdout.splitlines() if line.startswith("warning: ")]
    assert ("warning: policy.groups.tfnogroup-x1: group tfnogroup-x1 does not exist here; its "
            "rule (required) applies to nobody") in warnings, out.stdout
    assert ("warning: policy.users.tfnouser-x1: user tfnouser-x1 does not exist here; its "
            "rule (disabled) applies to nobody") in warnings, out.stdout
    assert any(line.startswith("warning: enrollment.at_login_from: \"local\" means "
                               "\"no-remote-host\"") and "\"console\"" in line
               for line in warnings), out.stdout
    if not group_exists("wheel") and group_exists("sudo"):
        assert ("warning: policy.groups.wheel: group wheel does not exist here; Debian's admin "
                "group is sudo; its rule (required) applies to nobody") in warnings, out.stdout
    assert not any(real_group in line or real_user.name in line for line in warnings), warnings
    assert out.stdout.rstrip().endswith(": valid"), out.stdout
    # Invalid stays invalid: exit 2.
    assert check_config(workdir, '[policy]\ndefault = "requird"\n').returncode == 2


# --- list --------------------------------------------------------------------------------------

def test_list_shows_required_group_members_who_are_not_enrolled(make_daemon, bus, users, cli):
    group = users.group()
    member = users.add(groups=[group])
    primary = "tf" + member.name[2:][::-1]
    subprocess.run(["useradd", "--no-create-home", "--gid", group, primary], check=True)
    users.made.append(primary)
    outsider = users.add()
    make_daemon(f'[policy]\ndefault = "optional"\ngroups = {{ {group} = "required" }}\n')

    listed = {s["user"]: s for s in root_call(bus.address, "ListUsers")["ok"]}
    for name in (member.name, primary):
        assert name in listed, (name, sorted(listed))
        entry = listed[name]
        assert (entry["enrolled"], entry["policy"], entry["policy_source"]) == \
            (False, "required", f"group {group}"), entry
    assert outsider.name not in listed

    out = cli.run(ROOT, "list")
    assert out.returncode == 0, out.stderr
    for name in (member.name, primary):
        assert re.search(rf"^{name} +NOT ENROLLED \(required: group {group}\)", out.stdout,
                         re.MULTILINE), out.stdout
    assert "2 required user(s) NOT ENROLLED cannot log in" in out.stdout, out.stdout
    # Enrolled, the member is no longer marked.
    enroll(bus.address, member)
    out = cli.run(ROOT, "list")
    assert not re.search(rf"^{member.name} +NOT ENROLLED", out.stdout, re.MULTILINE), out.stdout
    assert "1 required user(s) NOT ENROLLED" in out.stdout, out.stdout
    assert "(SSSD" in cli.run(ROOT, "list", "--help").stdout


# --- unlock, status, reset ---------------------------------------------------------------------

LOCK_AT_3 = "[lockout]\nmax_failures = 3\nfree_failures = 10\n"


def test_after_unlock_status_says_what_was_cleared(make_daemon, bus, users, cli):
    make_daemon(LOCK_AT_3)
    alice = users.add()
    enrolled = enroll(bus.address, alice)
    for _ in range(3):
        reply = call_as(bus.address, ROOT, "Verify", alice.name, wrong_code(enrolled.secret),
                        CONTEXT)
        assert reply["ok"]["outcome"] == 1, reply
    assert cli.json(ROOT, "status", alice.name)["locked"]

    out = cli.run(ROOT, "unlock", alice.name)
    assert out.returncode == 0, out.stderr
    said = prose(out.stdout)
    assert "earlier failures no longer count toward a delay or a lockout" in said, said
    assert f"`twofactor status {alice.name}` still shows the failed attempts" in said, said

    state = cli.json(ROOT, "status", alice.name)
    assert (state["locked"], state["retry_after_seconds"], state["failures_since_success"]) \
        == (False, 0, 3), state
    text = cli.run(ROOT, "status", alice.name).stdout
    assert re.search(r"Locked: +no", text), text
    assert ("3 since the last success (the user is told at the next login; an unlock does not "
            "clear this)") in text, text
    # Logins work again, and the user is told of the 3 failures.
    reply = call_as(bus.address, ROOT, "Verify", alice.name, enrolled.backup_codes[0], CONTEXT)
    assert reply["ok"]["outcome"] == 0 and reply["ok"]["failures_since_success"] == 3, reply


def test_reset_of_a_required_user_gives_the_ways_back_in(make_daemon, bus, users, cli):
    group = users.group()
    bob = users.add(groups=[group])
    make_daemon(f'[policy]\ngroups = {{ {group} = "required" }}\n')
    enroll(bus.address, bob)
    out = cli.run(ROOT, "reset", bob.name, "--yes")
    assert out.returncode == 0, out.stderr
    said = prose(out.stdout)
    assert (f"{bob.name} must use two-factor authentication (rule: group {group}) and cannot "
            "log in until enrolled again") in said, said
    assert f"`twofactor enroll --user {bob.name}`" in said
    assert f"`twofactor temp-code {bob.name}`" in said
    assert "can enroll again with `twofactor enroll`" not in said
    # It is so: the login is denied; a temporary code lets bob in to enroll.
    assert root_call(bus.address, "LoginPlan", bob.name, CONTEXT)["ok"]["action"] == 2
    issued = json.loads(cli.run(ROOT, "temp-code", bob.name, "--json").stdout)
    assert root_call(bus.address, "LoginPlan", bob.name, CONTEXT)["ok"]["action"] == 1
    assert issued["code"]
