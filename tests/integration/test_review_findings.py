"""Findings of the hostile review of issue 10, against the real twofactord on a private bus.

Each test marked xfail(strict=True) shows a bug that is not fixed yet: it fails today, and
the lead removes the mark with the fix. The others guard a property the review checked.
"""
import json
import secrets
import shutil
import signal
import subprocess
import time

import pytest

from conftest import CLEAN_ENV, CONTEXT, REPO, binary, enroll, root_call
from test_admin_rollout import wait_for_log

DENY = 2


def plan_action(bus, user):
    return root_call(bus.address, "LoginPlan", user.name, CONTEXT)["ok"]["action"]


def test_sighup_after_the_config_file_is_gone_keeps_the_policy_in_force(make_daemon, bus,
                                                                          users):
    """An admin moves the file away to edit it (or a tool deletes, then rewrites it) and
    something sends SIGHUP in between (logrotate, a config manager): `Config::load` takes a
    missing file for the defaults, so the reload silently puts `default = "optional"` in
    force, and a required, unenrolled user stops being denied."""
    daemon = make_daemon('[policy]\ndefault = "required"\n')
    alice = users.add()
    assert plan_action(bus, alice) == DENY

    daemon.config.unlink()
    daemon.proc.send_signal(signal.SIGHUP)
    log = wait_for_log(daemon, "config-reload")
    assert plan_action(bus, alice) == DENY, log


def test_notify_programs_start_with_no_signal_blocked(make_daemon, bus, users, workdir):
    """The daemon blocks SIGHUP in every thread for its reload thread; the programs it runs
    must not inherit that mask (a `[notify]` program that waits on a child or traps HUP would
    misbehave). Checked with a notify program that records its own SigBlk."""
    record = workdir / "sigblk"
    program = workdir / "record-sigblk"
    # Python, not sh: dash clears the signal mask when it starts, which would hide it.
    program.write_text("#!/usr/bin/python3\nimport os\n"
                       "status = open('/proc/self/status').read()\n"
                       f"open('{record}.tmp', 'w').write(status)\n"
                       f"os.rename('{record}.tmp', '{record}')\n")
    program.chmod(0o755)
    make_daemon(f'[notify]\ncommand = "{program}"\n')
    enroll(bus.address, users.add())
    deadline = time.monotonic() + 15
    while not record.exists():
        assert time.monotonic() < deadline, "the notify program never ran"
        time.sleep(0.05)
    fields = dict(line.split(":", 1) for line in record.read_text().splitlines() if ":" in line)
    assert int(fields["SigBlk"].strip(), 16) == 0, fields


def test_list_shows_primary_members_listed_after_a_non_utf8_passwd_entry(make_daemon, bus,
                                                                         users):
    """A GECOS field in Latin-1 (common in old /etc/passwd files and LDAP) is a line that is
    not UTF-8. Every user after it is missing from `ListUsers`, with no `list-cut-short`
    warning: the required, unenrolled users the listing exists to show stay hidden."""
    group = users.group()
    latin1 = users.add()
    subprocess.run(["usermod", "--comment", b"Jos\xe9", latin1.name], check=True)
    primary = "tf" + secrets.token_hex(4)
    subprocess.run(["useradd", "--no-create-home", "--gid", group, primary], check=True)
    users.made.append(primary)
    daemon = make_daemon(f'[policy]\ndefault = "optional"\ngroups = {{ {group} = "required" }}\n')

    listed = {s["user"] for s in root_call(bus.address, "ListUsers")["ok"]}
    assert primary in listed or "list-cut-short" in daemon.log_text(), sorted(listed)


def doctor_on_su(workdir, su_stack):
    """`twofactor doctor --root` on Debian 12 with the package installed, /etc/pam.d/su
    replaced by `su_stack`: its JSON findings."""
    layers = REPO / "tests" / "doctor" / "layers"
    root = workdir / ("tree-" + secrets.token_hex(4))
    for layer in ("debian12", "installed"):
        shutil.copytree(layers / layer, root, dirs_exist_ok=True)
    (root / "etc/pam.d/su").write_text(su_stack)
    out = subprocess.run([binary("twofactor"), "doctor", "--root", str(root), "--json"],
                         capture_output=True, text=True, timeout=60, env=CLEAN_ENV)
    return out.returncode, json.loads(out.stdout)["findings"]


@pytest.mark.parametrize("control", ["required", "requisite",
                                     "[success=ok ignore=ignore default=die]"])
def test_doctor_flags_the_module_before_the_password(workdir, control):
    """With the code asked before the password, anyone who knows a user name reaches the
    code prompt without the password: every wrong code counts toward that user's delays and
    lockout (an unauthenticated lockout of any enrolled user), and whether a prompt comes at
    all tells enrolled from exempt users. The issue's trap list names it."""
    code, findings = doctor_on_su(workdir, "auth sufficient pam_rootok.so\n"
                                           f"auth {control} pam_twofactor.so\n"
                                           "@include common-auth\n@include common-account\n")
    assert code == 1 and any(f["line"] == 2 and f["severity"] in ("error", "warning")
                             for f in findings), (code, findings)


def test_forward_pass_lets_an_exempt_user_in_with_the_password(bus, daemon, users, workdir):
    """Under the default `optional` policy, during a rollout, every user not yet enrolled is
    exempt. With the forward_pass stack of test_codes.py (the module, then
    `pam_unix.so use_first_pass`), such a user must get in with the password alone."""
    from pam_harness import module_line, pamtester, write_service
    pam_dir = workdir / "pam.d"
    write_service(pam_dir, "tf-review-fp", [
        module_line(bus.address, args=["forward_pass"]),
        "auth required pam_unix.so use_first_pass nodelay",
    ])
    bob = users.add(password="bob-Pa55word")
    result = pamtester(pam_dir, "tf-review-fp", bob.name, ["bob-Pa55word"])
    assert result.ok, result
    wrong = pamtester(pam_dir, "tf-review-fp", bob.name, ["bob-Pa55word-not"])
    assert not wrong.ok, wrong
