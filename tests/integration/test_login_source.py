"""Where enrollment at login is allowed: `at_login_from = ["console"]` through the real
pam_twofactor.so (pamtester under pam_wrapper, with the service names login and su), and the
context a caller other than root reports is never believed. The console's definition lives in
config/src/login_source.rs."""
import pexpect
import pytest

from conftest import call_as
from pam_harness import AUTH_ERR, module_line, pamtester, pamtester_spawn, write_service

ENROLL_PROMPT = "Code from your authenticator app: "
CONSOLE = ('[policy]\ndefault = "required"\n'
           '[enrollment]\nat_login = true\nat_login_from = ["console"]\n')
LOGIN, ENROLL, DENY = "login", 3, 2


@pytest.fixture
def pam_dir(workdir):
    return workdir / "pam.d"


def stack(pam_dir, address, service):
    line = module_line(address, timeout=5, args=("enroll_at_login",))
    return write_service(pam_dir, service, ["auth required pam_permit.so", line])


def offered_enrollment(pam_dir, service, user, tty):
    """Whether a login of `service` on `tty` shows the enrollment prompt."""
    child = pamtester_spawn(pam_dir, service, user.name, items={"tty": tty} if tty else None)
    try:
        index = child.expect_exact([ENROLL_PROMPT, AUTH_ERR, pexpect.EOF])
        return index == 0, child.before
    finally:
        child.close(force=True)


def test_login_on_a_virtual_console_is_offered_enrollment(make_daemon, bus, users, pam_dir):
    make_daemon(CONSOLE)
    alice = users.add()
    stack(pam_dir, bus.address, LOGIN)
    offered, shown = offered_enrollment(pam_dir, LOGIN, alice, "/dev/tty1")
    assert offered, shown
    assert "Key:" in shown, shown
    # The same program on a pseudo-terminal is not at the machine.
    offered, shown = offered_enrollment(pam_dir, LOGIN, alice, "/dev/pts/3")
    assert not offered, shown


@pytest.mark.parametrize("tty", [None, "pts/3", "/dev/pts/3", "/dev/ttyS0", "/dev/tty1"])
def test_su_is_never_the_console(make_daemon, bus, users, pam_dir, tty):
    """su takes its tty from its stdin, which its caller chooses (`su victim </dev/ttyS0`)."""
    make_daemon(CONSOLE)
    alice = users.add()
    stack(pam_dir, bus.address, "su")
    items = {"tty": tty} if tty else None
    result = pamtester(pam_dir, "su", alice.name, items=items)
    assert result.returncode != 0 and AUTH_ERR in result.output, result
    assert "Key:" not in result.output and ENROLL_PROMPT not in result.output, result
    assert "is required for" in result.output and "not set up" in result.output, result


def test_a_caller_other_than_root_claiming_the_console_is_not_believed(make_daemon, bus, users):
    make_daemon(CONSOLE)
    alice = users.add()
    claimed = {"service": LOGIN, "rhost": "", "tty": "tty1"}
    by_alice = call_as(bus.address, alice, "LoginPlan", alice.name, claimed)
    assert by_alice["ok"]["action"] == DENY, by_alice
    # The very same context from root (a login program) is the console.
    by_root = call_as(bus.address, None, "LoginPlan", alice.name, claimed)
    assert by_root["ok"]["action"] == ENROLL, by_root


def test_no_remote_host_is_not_believed_from_the_user_either(make_daemon, bus, users):
    make_daemon('[policy]\ndefault = "required"\n'
                '[enrollment]\nat_login = true\nat_login_from = ["no-remote-host"]\n')
    alice = users.add()
    context = {"service": "su", "rhost": "", "tty": "pts/1"}
    assert call_as(bus.address, alice, "LoginPlan", alice.name, context)["ok"]["action"] == DENY
    assert call_as(bus.address, None, "LoginPlan", alice.name, context)["ok"]["action"] == ENROLL


def test_the_old_local_still_works_and_the_daemon_says_what_it_means(make_daemon, bus, users,
                                                                      pam_dir):
    daemon = make_daemon('[policy]\ndefault = "required"\n'
                         '[enrollment]\nat_login = true\nat_login_from = ["local"]\n')
    alice = users.add()
    stack(pam_dir, bus.address, "su")
    offered, shown = offered_enrollment(pam_dir, "su", alice, "pts/2")
    assert offered, "\"local\" is \"no-remote-host\": su without a remote host matches"
    log = daemon.log_text()
    assert "config-warning" in log and "enrollment.at_login_from" in log, log
    assert 'use \\"console\\"' in log or 'use "console"' in log, log
