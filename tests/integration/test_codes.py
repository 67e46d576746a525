"""Every kind of code through the real module and libpam (pamtester under pam_wrapper):
`tries=`, and `forward_pass` with a TOTP code of 6 or 8 digits, a backup code with or without
its dash and a temporary code with or without dashes, password and code in one answer, the
password checked by the real pam_unix (`use_first_pass`)."""
import pytest

from conftest import call_as
from pam_harness import (AUTH_ERR, SUCCESS, WRONG_CODE, Enrolled, module_line, pamtester,
                         write_service)

SERVICE = "tf-codes-test"
FORWARD_PROMPT = "Password & verification code: "


@pytest.fixture
def pam_dir(workdir):
    return workdir / "pam.d"


def failures(bus, user):
    return call_as(bus.address, None, "Status", user.name)["ok"]["failures_since_success"]


def refused(result):
    return result.returncode != 0 and SUCCESS not in result.output and AUTH_ERR in result.output


# --- tries= ---------------------------------------------------------------------------------

def test_two_wrong_codes_then_the_right_one_log_in(bus, daemon, users, pam_dir):
    alice = users.add()
    token = Enrolled(bus.address, alice)
    write_service(pam_dir, SERVICE, module_line(bus.address))
    wrong = token.wrong_code()
    result = pamtester(pam_dir, SERVICE, alice.name, [wrong, wrong, token.code()])
    assert result.ok, result
    assert result.prompts == 3 and result.output.count(WRONG_CODE) == 2, result
    # Each try was its own attempt, counted by the daemon (and reported after the success).
    status = call_as(bus.address, None, "Status", alice.name)["ok"]
    assert status["failures_since_success"] == 0, status
    assert "2 failed attempts since your last login" in result.output, result


def test_n_wrong_codes_are_denied_and_each_counts(bus, daemon, users, pam_dir):
    alice = users.add()
    token = Enrolled(bus.address, alice)
    write_service(pam_dir, SERVICE, module_line(bus.address, args=["tries=2"]))
    wrong = token.wrong_code()
    # A third answer is there, but never asked for.
    result = pamtester(pam_dir, SERVICE, alice.name, [wrong, wrong, token.code()])
    assert refused(result), result
    assert result.prompts == 2, result
    assert failures(bus, alice) == 2


# --- forward_pass: every kind of code -------------------------------------------------------

def forward_pass_stack(pam_dir, bus):
    write_service(pam_dir, SERVICE, [
        module_line(bus.address, args=["forward_pass"]),
        "auth required pam_unix.so use_first_pass nodelay",
    ])


def login(pam_dir, user, answer):
    return pamtester(pam_dir, SERVICE, user.name, [answer])


def test_forward_pass_with_a_password_ending_in_digits_and_an_8_digit_code(
        make_daemon, bus, users, pam_dir):
    make_daemon("[totp]\ndigits = 8\n")
    forward_pass_stack(pam_dir, bus)
    alice = users.add(password="pass1234")
    token = Enrolled(bus.address, alice)
    result = login(pam_dir, alice, "pass1234" + token.code(digits=8))
    assert result.ok, result
    assert FORWARD_PROMPT in result.output, result


def test_forward_pass_takes_backup_and_temporary_codes(bus, daemon, users, pam_dir):
    forward_pass_stack(pam_dir, bus)
    alice = users.add(password="hunter2")
    token = Enrolled(bus.address, alice)
    with_dash, without_dash = token.backup_codes[0], token.backup_codes[1].replace("-", "")
    assert "-" in with_dash
    for code in (with_dash, without_dash):
        result = login(pam_dir, alice, "hunter2" + code)
        assert result.ok, (code, result)
    for dashes in (True, False):
        issued = call_as(bus.address, None, "IssueTemporaryCode", alice.name, 0)["ok"]
        code = issued["code"] if dashes else issued["code"].replace("-", "")
        result = login(pam_dir, alice, "hunter2" + code)
        assert result.ok, (dashes, result)
    result = login(pam_dir, alice, "hunter2" + token.code())
    assert result.ok, result
    assert failures(bus, alice) == 0


def test_forward_pass_readings_are_one_attempt(bus, daemon, users, pam_dir):
    forward_pass_stack(pam_dir, bus)
    alice = users.add(password="hunter2")
    token = Enrolled(bus.address, alice)
    # "hunter2" + a wrong code reads as 6 and as 7 digits: still one failure.
    result = login(pam_dir, alice, "hunter2" + token.wrong_code())
    assert refused(result), result
    assert WRONG_CODE in result.output, result
    assert failures(bus, alice) == 1
    # A right code with a wrong password: the code is spent, pam_unix refuses.
    result = login(pam_dir, alice, "hunter3" + token.code())
    assert refused(result), result
