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
from pam_harness import PROMPT, bus_address_arg, module_path, pamtester

DOCTOR = REPO / "tests" / "doctor"


def tree(workdir, *corpus):
    """Debian 12 with the package installed, plus the `root/` of each corpus tree named."""
    root = workdir / "-".join(("tree",) + corpus)
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


PASSWORD = "doctor-Pa55word"


class People(tuple):
    """(address, enrolled, optional, disabled, required), and the enrolled user's secret."""


@pytest.fixture
def people(users, make_daemon):
    """An enrolled user, an optional one, a disabled one and a required one, on one daemon,
    each with PASSWORD."""
    enrolled, optional, disabled, required = (users.add(password=PASSWORD) for _ in range(4))
    config = (f'[policy]\ndefault = "optional"\nusers = {{ {disabled.name} = "disabled", '
              f'{required.name} = "required" }}\n')
    daemon = make_daemon(config)
    result = People((daemon.bus.address, enrolled, optional, disabled, required))
    result.enrollment = enroll(daemon.bus.address, enrolled)
    return result


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


def live(address, pam_d, sshd_config_d):
    """`twofactor doctor --json` on this machine, with /etc/pam.d and /etc/ssh/sshd_config.d
    replaced in a private mount namespace: the live path (`sshd -T`, the bus)."""
    script = (f'mount --bind "$1" /etc/pam.d && mount --bind "$2" /etc/ssh/sshd_config.d && '
              f'exec "$3" doctor --json')
    out = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(pam_d),
                          str(sshd_config_d), binary("twofactor")], capture_output=True,
                         text=True, timeout=60,
                         env=dict(CLEAN_ENV, DBUS_SYSTEM_BUS_ADDRESS=address))
    return out.returncode, json.loads(out.stdout)["findings"]


def recipe_dirs(workdir, sshd_conf):
    pam_d = workdir / "pam.d"
    shutil.copytree("/etc/pam.d", pam_d)
    root = DOCTOR / "corpus" / "correct-ssh-password-and-code" / "root" / "etc"
    shutil.copy(root / "pam.d" / "sshd", pam_d / "sshd")
    conf_d = workdir / "sshd_config.d"
    conf_d.mkdir()
    (conf_d / "00-twofactor.conf").write_text(sshd_conf)
    return pam_d, conf_d


PASSWORD_CONF = (DOCTOR / "corpus" / "correct-ssh-password-and-code" / "root" / "etc" / "ssh"
                 / "sshd_config.d" / "00-twofactor.conf").read_text()


def test_live_uses_sshd_t_and_the_bus(daemon, workdir):
    pam_d, conf_d = recipe_dirs(workdir, PASSWORD_CONF)
    code, findings = live(daemon.bus.address, pam_d, conf_d)
    serious = [f for f in findings if f["severity"] != "note"
               and not f["message"].startswith("`pam_twofactor.so` does not exist")]
    assert serious == [], findings
    assert code in (0, 1)  # 1 where the module is not installed on this host

    # sshd -T refuses keyboard-interactive methods while keyboard-interactive is off: the
    # doctor's reader alone would not say so.
    broken = PASSWORD_CONF.replace("KbdInteractiveAuthentication yes",
                                   "KbdInteractiveAuthentication no")
    pam_d, conf_d = recipe_dirs(workdir / "b", broken)
    code, findings = live(daemon.bus.address, pam_d, conf_d)
    refused = [f for f in findings if "`sshd -T` refuses" in f["message"]]
    assert code == 1 and refused and refused[0]["severity"] == "error", findings


def test_live_without_the_daemon(bus, workdir):
    pam_d, conf_d = recipe_dirs(workdir, PASSWORD_CONF)
    code, findings = live(bus.address, pam_d, conf_d)
    down = [f for f in findings if f["file"].endswith("org.twofactor.Daemon1.service")]
    assert code == 1 and down and "not running" in down[0]["message"], findings


def real_pam_d(root, address):
    """The tree's pam.d with the built module by absolute path on the test bus."""
    pam_d = root.parent / (root.name + "-pam.d")
    shutil.copytree(root / "etc" / "pam.d", pam_d)
    for path in pam_d.iterdir():
        path.write_text(path.read_text().replace(
            "pam_twofactor.so", f"{module_path()} {bus_address_arg(address)}"))
    return pam_d


@pytest.mark.parametrize("corpus,service", [("correct-sudo-su-login", "sudo"),
                                            ("ssh-key-module-alone", "sshd"),
                                            ("correct-ssh-key-and-code", "sshd")])
def test_the_dry_run_agrees_with_real_libpam(people, workdir, corpus, service):
    """What the doctor predicts from its model of libpam is what real libpam does with the real
    module (pam_wrapper, pamtester; a key reported as sshd does, in SSH_AUTH_INFO_0)."""
    address, *persons = people
    if corpus == "correct-ssh-key-and-code" and b"require_publickey" not in open(
            module_path(), "rb").read():
        pytest.skip("this build of pam_twofactor.so does not know require_publickey yet")
    root = tree(workdir, corpus)
    pam_d = real_pam_d(root, address)
    key = {"SSH_AUTH_INFO_0": "publickey ssh-ed25519 AAAAC3Nz"} if service == "sshd" else None
    seen = set()
    for user in persons:
        asked, why = dry_run(address, root, user.name)[service]
        seen.add(asked)
        answers = [PASSWORD, people.enrollment.code()] if asked == "code" else [PASSWORD]
        if service == "sshd":
            answers = answers[1:]  # sshd checked the key; the stack asks no password
        result = pamtester(pam_d, service, user.name, answers=answers, pam_env=key)
        assert result.ok == (asked != "denied"), (user, asked, why, str(result))
        assert (PROMPT in result.output) == (asked == "code"), (user, asked, why, str(result))
    assert "denied" in seen and ("nothing" in seen) == (corpus != "ssh-key-module-alone")
