"""`twofactor doctor --user NAME`: the dry run against the real daemon on a private bus.

The stacks come from the doctor corpus (tests/doctor/): Debian 12's files with the shipped
recipes' lines. The user's policy and enrollment come from the real twofactord; the users are
real accounts.
"""
import json
import pathlib
import shutil
import subprocess

import pytest

from conftest import CLEAN_ENV, REPO, binary, enroll

DOCTOR = REPO / "tests" / "doctor"


def tree(workdir, *corpus):
    """Debian 12 with the package installed, plus the `root/` of each corpus tree named."""
    root = workdir / "tree"
    for layer in ("debian12", "installed"):
        shutil.copytree(DOCTOR / "layers" / layer, root, dirs_exist_ok=True)
    for name in corpus:
        shutil.copytree(DOCTOR / "corpus" / name / "root", root, dirs_exist_ok=True)
    return root


def dry_run(address, root, user):
    out = subprocess.run([binary("twofactor"), "doctor", "--root", str(root), "--user", user,
                          "--json"], capture_output=True, text=True, timeout=60,
                         env=dict(CLEAN_ENV, DBUS_SYSTEM_BUS_ADDRESS=address))
    assert out.returncode == 0, (out.returncode, out.stderr)
    answer = json.loads(out.stdout)
    assert answer["user"] == user
    return {s["service"]: (s["asked"], s["why"]) for s in answer["services"]}


@pytest.fixture
def people(users, make_daemon):
    """An enrolled user, an optional one, a disabled one and a required one, on one daemon."""
    enrolled, optional, disabled, required = (users.add() for _ in range(4))
    config = (f'[policy]\ndefault = "optional"\nusers = {{ {disabled.name} = "disabled", '
              f'{required.name} = "required" }}\n')
    daemon = make_daemon(config)
    enroll(daemon.bus.address, enrolled)
    return daemon.bus.address, enrolled, optional, disabled, required


def test_what_each_user_is_asked_under_the_recipes(people, workdir):
    address, enrolled, optional, disabled, required = people
    root = tree(workdir, "correct-sudo-su-login", "correct-ssh-key-and-code")
    services = {"sshd", "sudo", "sudo-i", "su", "su-l", "login"}

    answers = dry_run(address, root, enrolled.name)
    assert set(answers) == services, answers
    assert all(asked == "code" for asked, _ in answers.values()), answers
    assert "enrolled" in answers["sudo"][1]

    for user, why in ((optional, "policy optional"), (disabled, "policy disabled")):
        answers = dry_run(address, root, user.name)
        assert all(asked == "nothing" for asked, _ in answers.values()), answers
        assert why in answers["su"][1], answers
        # The key recipe: the module itself refuses a login without a key.
        assert "without one over ssh: denied" in answers["sshd"][1], answers

    answers = dry_run(address, root, required.name)
    assert all(asked == "denied" for asked, _ in answers.values()), answers
    assert "required and not enrolled" in answers["login"][1]


def test_the_module_alone_denies_an_exempt_user(people, workdir):
    address, enrolled, optional, _, _ = people
    root = tree(workdir, "ssh-key-module-alone")
    assert dry_run(address, root, optional.name)["sshd"][0] == "denied"
    assert dry_run(address, root, enrolled.name)["sshd"][0] == "code"


def test_sshd_that_never_asks_says_nothing(people, workdir):
    address, enrolled, *_ = people
    root = tree(workdir, "ssh-no-drop-in")
    asked, why = dry_run(address, root, enrolled.name)["sshd"]
    assert asked == "nothing" and "keyboard-interactive" in why, why


def test_an_unreachable_daemon_exits_2(bus, workdir, users):
    root = tree(workdir, "correct-sudo-su-login")
    out = subprocess.run([binary("twofactor"), "doctor", "--root", str(root), "--user",
                          users.add().name], capture_output=True, text=True, timeout=60,
                         env=dict(CLEAN_ENV, DBUS_SYSTEM_BUS_ADDRESS=bus.address))
    assert out.returncode == 2, out
    assert "--user asks the twofactor daemon" in out.stderr, out.stderr
    assert out.stdout == ""
