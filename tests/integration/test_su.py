"""`su` to an enrolled user, run by another (unprivileged) test user: the setuid su of this
system with the unmodified libpam, in a private mount namespace whose /etc/pam.d is ours
(pam_unix for the password, then our module for the code)."""
import pexpect
import pytest

from conftest import CLEAN_ENV, call_as
from pam_harness import (Enrolled, answer_password_and_code, in_pam_namespace, module_line,
                         write_service)

PASSWORD = "Tr0ub4dor&3-su"


@pytest.fixture
def su_pam_dir(workdir, bus):
    auth = ["auth required pam_unix.so nodelay", module_line(bus.address, timeout=5)]
    directory = workdir / "pam.d"
    # `su -` uses the su-l service, plain `su` the su service: both get the same stack.
    for service in ("su", "su-l"):
        write_service(directory, service, auth)
    return directory


def su(pam_dir, caller, target, password, code):
    """`su - TARGET -c 'echo SU-OK'` as `caller`, answering both prompts. Returns
    (exit status, the terminal's text after the code was typed)."""
    argv = in_pam_namespace(pam_dir, [
        "setpriv", f"--reuid={caller.uid}", f"--regid={caller.gid}", "--init-groups",
        "su", "-", target.name, "-c", "echo SU-OK"])
    child = pexpect.spawn(argv[0], argv[1:], env=CLEAN_ENV, encoding="utf-8", timeout=30)
    return answer_password_and_code(child, password, code)


def test_su_with_password_and_code(bus, daemon, users, su_pam_dir):
    caller = users.add()
    target = users.add(password=PASSWORD)
    token = Enrolled(bus.address, target)
    status, output = su(su_pam_dir, caller, target, PASSWORD, token.code())
    assert status == 0, output
    assert "SU-OK" in output, output
    record = call_as(bus.address, None, "Status", target.name)["ok"]
    assert record["last_success_service"] in ("su", "su-l"), record


def test_su_with_a_wrong_code_fails(bus, daemon, users, su_pam_dir):
    caller = users.add()
    target = users.add(password=PASSWORD)
    token = Enrolled(bus.address, target)
    status, output = su(su_pam_dir, caller, target, PASSWORD, token.wrong_code())
    assert status != 0, output
    assert "Authentication failure" in output, output
    assert "Wrong verification code." in output, output
    assert "SU-OK" not in output, output
