"""The sudo, sudo-i, su and login recipes, used verbatim (module path and test bus substituted)
beside this host's common-* files, through the real libpam in a private mount namespace where
that directory is /etc/pam.d.

sudo, sudo-i and login run under pamtester, as root. su's recipe starts, as Debian's does, with
`auth sufficient pam_rootok.so`, which lets root through before anything else: so su is the
real setuid su, run by an unprivileged test user (`su TARGET`, and `su - TARGET` through the
host's su-l, which includes su).
"""
import collections

import pexpect
import pytest

from conftest import CLEAN_ENV, call_as
from pam_harness import PROMPT, SUCCESS, Enrolled, in_pam_namespace, pamtester_real
from recipes import recipe_pam, recipe_pam_dir

PASSWORD = "Tr0ub4dor&3-local"
PASSWORD_PROMPT = "Password: "
WRONG_CODE = "Wrong verification code."

# service: the recipe that holds its file
PAMTESTER_SERVICES = {"sudo": "sudo", "sudo-i": "sudo", "login": "login"}

Case = collections.namedtuple("Case", "who password code expect_in code_asked")
CASES = {
    "enrolled: password and code": Case("enrolled", "right", "right", True, True),
    "enrolled: password and a wrong code": Case("enrolled", "right", "wrong", False, True),
    "exempt: password alone": Case("exempt", "right", None, True, False),
    "enrolled: wrong password": Case("enrolled", "wrong", "right", False, False),
    "exempt: wrong password": Case("exempt", "wrong", None, False, False),
}

# codes_typed: the codes answered to the code prompt; with tries=3 (the default) a wrong code
# is asked again, and every code typed counts.
Outcome = collections.namedtuple("Outcome", "logged_in code_asked codes_typed output")


@pytest.fixture
def pam_dir(workdir, bus):
    services = {service: recipe_pam(recipe, service, bus.address)
                for service, recipe in PAMTESTER_SERVICES.items()}
    services["su"] = recipe_pam("su", "su", bus.address)
    return recipe_pam_dir(workdir / "pam.d", services, host_files=["su-l"])


def pamtester_login(pam_dir, service, target, password, code):
    # misc_conv reads one line per prompt: the password, then (if asked) the code; at a second
    # try it reads the end of its input, an empty answer, which ends the login.
    result = pamtester_real(pam_dir, service, target.name, [password, code or ""])
    typed = 1 if code and result.prompts > 0 else 0
    return Outcome(result.ok, result.prompts > 0, typed, result.output)


def su_login(pam_dir, service, caller, target, password, code):
    dash = ["-"] if service == "su-l" else []
    argv = in_pam_namespace(pam_dir, [
        "setpriv", f"--reuid={caller.uid}", f"--regid={caller.gid}", "--init-groups",
        "su", *dash, target.name, "-c", "echo SU-OK"])
    child = pexpect.spawn(argv[0], argv[1:], env=CLEAN_ENV, encoding="utf-8", timeout=30)
    output, asked, typed = "", False, 0
    try:
        child.expect_exact(PASSWORD_PROMPT)
        child.sendline(password)
        while child.expect_exact([PROMPT, pexpect.EOF]) == 0:
            asked = True
            output += child.before
            typed += 1 if code else 0
            child.sendline(code or "")
        output += child.before
    finally:
        child.close()
    return Outcome(child.exitstatus == 0 and "SU-OK" in output, asked, typed, output)


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("service", [*PAMTESTER_SERVICES, "su", "su-l"])
def test_local_recipe(bus, daemon, users, pam_dir, service, case):
    row = CASES[case]
    target = users.add(password=PASSWORD)
    token = Enrolled(bus.address, target) if row.who == "enrolled" else None
    code = None
    if row.code == "right":
        code = token.code()
    elif row.code == "wrong":
        code = token.wrong_code()
    password = PASSWORD if row.password == "right" else "not-" + PASSWORD
    if service in PAMTESTER_SERVICES:
        outcome = pamtester_login(pam_dir, service, target, password, code)
    else:
        outcome = su_login(pam_dir, service, users.add(), target, password, code)
    assert (outcome.logged_in, outcome.code_asked) == (row.expect_in, row.code_asked), outcome
    if row.code == "wrong":
        assert WRONG_CODE in outcome.output, outcome
    if token:
        record = call_as(bus.address, None, "Status", target.name)["ok"]
        # Only a wrong code counts, each one typed; a wrong password never reaches the daemon.
        wrong = outcome.codes_typed if row.code == "wrong" else 0
        assert row.code != "wrong" or wrong >= 1, outcome
        assert record["failures_since_success"] == wrong, record
        if row.expect_in:
            expected_service = "su" if service == "su-l" else service
            assert record["last_success_service"] in (expected_service, service), record


def test_pamtester_reports_success_only_with_the_code(bus, daemon, users, pam_dir):
    """The harness itself: pamtester without an answer to the code prompt is not a success."""
    target = users.add(password=PASSWORD)
    Enrolled(bus.address, target)
    result = pamtester_real(pam_dir, "sudo", target.name, [PASSWORD])
    assert SUCCESS not in result.output and result.prompts == 1, result
