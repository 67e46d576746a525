"""The real pam_twofactor.so through real libpam (pamtester), on a private bus with the real
twofactord; codes from oathtool. See pam_harness.py for how libpam finds our service files."""
import os
import pathlib
import shlex
import signal
import subprocess

import pytest

from conftest import Bus, call_as, hold_kept_room, name_owner
from pam_harness import (AUTH_ERR, AUTHINFO_UNAVAIL, LOCKED, PROMPT, REPLAYED, SUCCESS,
                         UNAVAILABLE, WRONG_CODE, Enrolled, Impostor, Result, module_line,
                         pamtester, pamtester_command, pamtester_real, pamtester_spawn,
                         wrapper_env, write_service)

SERVICE = "tf-pam-test"
PERMIT_FIRST = "auth required pam_permit.so"
LOCKOUT = "[lockout]\nmax_failures = 3\nbase_delay_seconds = 0\n"
# No delays or lockout in the way of many failures.
NO_LOCKOUT = "[lockout]\nmax_failures = 100\nfree_failures = 100\n"


@pytest.fixture
def pam_dir(workdir):
    return workdir / "pam.d"


def service(pam_dir, address, *, timeout=None, args=(), before=(), keep_guid=False):
    """Our module alone (after `before`) in SERVICE, talking to `address`."""
    line = module_line(address, timeout=timeout, args=args, keep_guid=keep_guid)
    return write_service(pam_dir, SERVICE, [*before, line])


def authenticate(pam_dir, user, *answers, **kwargs):
    name = user if isinstance(user, str) else user.name
    return pamtester(pam_dir, SERVICE, name, answers, **kwargs)


def assert_refused(result, pam_text=AUTH_ERR):
    assert result.returncode != 0, result
    assert SUCCESS not in result.output, result
    assert pam_text in result.output, result


# --- codes ---------------------------------------------------------------------------------

def test_correct_code_is_accepted(bus, daemon, users, pam_dir):
    alice = users.add()
    token = Enrolled(bus.address, alice)
    service(pam_dir, bus.address)
    result = authenticate(pam_dir, alice, token.code())
    assert result.ok, result
    assert result.prompts == 1, result
    # The daemon saw this login, with PAM_SERVICE as its context.
    status = call_as(bus.address, None, "Status", alice.name)["ok"]
    assert status["last_success_service"] == SERVICE, status
    assert status["last_success_time"] > 0, status


def test_wrong_code_is_refused(bus, daemon, users, pam_dir):
    alice = users.add()
    token = Enrolled(bus.address, alice)
    service(pam_dir, bus.address, args=["tries=1"])
    result = authenticate(pam_dir, alice, token.wrong_code())
    assert_refused(result)
    assert WRONG_CODE in result.output, result
    assert result.prompts == 1, result


def test_same_code_twice_is_refused_and_says_it_was_used(bus, daemon, users, pam_dir):
    alice = users.add()
    token = Enrolled(bus.address, alice)
    service(pam_dir, bus.address, args=["tries=1"])
    code = token.code()
    first = authenticate(pam_dir, alice, code)
    assert first.ok, first
    again = authenticate(pam_dir, alice, code)
    assert_refused(again)
    assert REPLAYED in again.output, again
    assert WRONG_CODE not in again.output, again
    # Still a failed attempt.
    status = call_as(bus.address, None, "Status", alice.name)["ok"]
    assert status["failures_since_success"] == 1, status
    # (control: a code that was never right is only wrong)
    wrong = authenticate(pam_dir, alice, token.wrong_code())
    assert WRONG_CODE in wrong.output and REPLAYED not in wrong.output, wrong


def test_backup_code_is_accepted_once_and_says_how_many_are_left(bus, daemon, users, pam_dir):
    alice = users.add()
    token = Enrolled(bus.address, alice)
    service(pam_dir, bus.address)
    backup = token.backup_codes[0]
    first = authenticate(pam_dir, alice, backup)
    assert first.ok, first
    assert "A backup code was used; 9 backup codes are left." in first.output, first
    again = authenticate(pam_dir, alice, backup)
    assert_refused(again)
    assert WRONG_CODE in again.output, again
    # Another one still works, and the count went down again.
    second = authenticate(pam_dir, alice, token.backup_codes[1])
    assert second.ok, second
    assert "A backup code was used; 8 backup codes are left." in second.output, second


def test_failed_attempts_are_reported_after_success(bus, daemon, users, pam_dir):
    alice = users.add()
    token = Enrolled(bus.address, alice)
    service(pam_dir, bus.address)
    assert_refused(authenticate(pam_dir, alice, token.wrong_code()))
    result = authenticate(pam_dir, alice, token.code())
    assert result.ok, result
    assert "1 failed attempt since your last login, at " in result.output, result


def test_one_code_far_off_gets_no_clock_skew_hint(bus, daemon, users, pam_dir):
    """A single code never gives the hint (it would tell a guesser that it hit a real code
    outside the window); two different codes in a row at one offset do, which needs two time
    steps: daemon/src/service/tests.rs::window_is_one_step_either_side checks that with
    injected time, and pam_module's tests the sentence."""
    alice = users.add()
    token = Enrolled(bus.address, alice)
    service(pam_dir, bus.address)
    for offset in (5, 5, -5):
        result = authenticate(pam_dir, alice, token.code_at_offset(offset))
        assert_refused(result)
        assert WRONG_CODE in result.output, result
        assert "Your device's clock seems" not in result.output, result


def test_locked_out_user_is_refused_even_with_a_correct_code(make_daemon, bus, users, pam_dir):
    make_daemon(LOCKOUT)
    alice = users.add()
    token = Enrolled(bus.address, alice)
    service(pam_dir, bus.address)
    for _ in range(3):
        assert_refused(authenticate(pam_dir, alice, token.wrong_code()))
    assert call_as(bus.address, None, "Status", alice.name)["ok"]["locked"] is True
    code = token.code()
    locked = authenticate(pam_dir, alice, code)
    assert_refused(locked)
    assert LOCKED in locked.output, locked
    # It was the lock, not the code: once unlocked, the same (unspent) code works.
    assert call_as(bus.address, None, "UnlockUser", alice.name) == {"ok": None}
    unlocked = authenticate(pam_dir, alice, code)
    assert unlocked.ok, unlocked


def test_unknown_user_is_prompted_and_fails_like_a_wrong_code(bus, daemon, users, pam_dir):
    alice = users.add()
    token = Enrolled(bus.address, alice)
    service(pam_dir, bus.address, args=["tries=1"])
    ghost = "tfghost" + alice.name[2:]
    known = authenticate(pam_dir, alice, token.wrong_code())
    unknown = authenticate(pam_dir, ghost, "123456")
    assert_refused(unknown)
    assert unknown.prompts == 1, unknown
    assert unknown.output.replace(ghost, "USER") == known.output.replace(alice.name, "USER")


def test_code_with_spaces_and_backup_code_with_spaces_are_accepted(bus, daemon, users,
                                                                    pam_dir):
    alice = users.add()
    token = Enrolled(bus.address, alice)
    service(pam_dir, bus.address)
    code = token.code()
    assert authenticate(pam_dir, alice, f" {code[:3]} {code[3:]} ").ok
    assert authenticate(pam_dir, alice, token.backup_codes[0].replace("-", " ")).ok


def test_answers_that_are_not_codes_never_reach_the_daemon(bus, daemon, users, pam_dir):
    alice = users.add()
    token = Enrolled(bus.address, alice)
    service(pam_dir, bus.address, args=["tries=1"])
    empty = authenticate(pam_dir, alice, "")
    assert_refused(empty)
    assert "No verification code entered." in empty.output, empty
    for answer in ("1" * 100, "12345a", "abcdef"):
        result = authenticate(pam_dir, alice, answer)
        assert_refused(result)
        assert WRONG_CODE in result.output, result
    # Not UTF-8: the conversation failed (PAM_CONV_ERR).
    done = subprocess.run(pamtester_command(SERVICE, alice.name), input=b"\xff\xfe12\n",
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          env=wrapper_env(pam_dir), timeout=60)
    assert done.returncode != 0, done
    assert b"Conversation error" in done.stdout, done
    # A name no account can have: asked for a code like anyone, then refused.
    for name in ("../etc", "-rf", "a" * 65):
        result = authenticate(pam_dir, name, "123456")
        assert_refused(result)
        assert result.prompts == 1 and WRONG_CODE in result.output, result
    # None of it was counted as an attempt, or seen by the daemon at all.
    status = call_as(bus.address, None, "Status", alice.name)["ok"]
    assert status["failures_since_success"] == 0, status
    # (control: a real wrong code does show up in the daemon's log, once)
    assert_refused(authenticate(pam_dir, alice, token.wrong_code()))
    assert daemon.log_text().count("twofactord: failed user=") == 1, daemon.log_text()


def test_the_same_code_in_parallel_logins_is_accepted_once(make_daemon, bus, users,
                                                           pam_dir):
    make_daemon(NO_LOCKOUT)
    alice = users.add()
    token = Enrolled(bus.address, alice)
    service(pam_dir, bus.address, args=["tries=1"])
    code = token.code()
    command = pamtester_command(SERVICE, alice.name)
    procs = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=wrapper_env(pam_dir))
             for _ in range(6)]
    outputs = [proc.communicate(code + "\n", timeout=60)[0] for proc in procs]
    accepted = [out for proc, out in zip(procs, outputs) if proc.returncode == 0]
    assert len(accepted) == 1, outputs
    assert all(SUCCESS in out for out in accepted), outputs
    assert sum(REPLAYED in out for out in outputs) == 5, outputs


def test_login_context_reaches_the_daemon_cleaned(bus, daemon, users, pam_dir):
    """PAM_RHOST and PAM_TTY are passed on; control characters become '?' and overlong
    values are cut to what the daemon accepts (256 bytes) instead of failing the login."""
    alice = users.add()
    token = Enrolled(bus.address, alice)
    service(pam_dir, bus.address)
    result = authenticate(pam_dir, alice, token.code(),
                          items={"rhost": "evil\nhost\x1b[0m" + "x" * 300, "tty": "pts/7"})
    assert result.ok, result
    status = call_as(bus.address, None, "Status", alice.name)["ok"]
    assert status["last_success_rhost"] == ("evil?host?[0m" + "x" * 300)[:256], status


# --- policy --------------------------------------------------------------------------------

def test_optional_and_not_enrolled_is_ignored_without_a_prompt(bus, daemon, users, pam_dir):
    bob = users.add()
    service(pam_dir, bus.address, before=[PERMIT_FIRST], args=["tries=1"])
    result = authenticate(pam_dir, bob)
    assert result.ok, result
    assert result.prompts == 0, result
    # Control: the same stack does prompt an enrolled user, so the module did run.
    alice = users.add()
    token = Enrolled(bus.address, alice)
    enrolled = authenticate(pam_dir, alice, token.wrong_code())
    assert_refused(enrolled)
    assert enrolled.prompts == 1, enrolled


def test_disabled_policy_is_ignored_even_when_enrolled(make_daemon, bus, users, pam_dir):
    daemon = make_daemon()
    alice = users.add()
    Enrolled(bus.address, alice)
    daemon.restart(f'[policy]\nusers = {{ {alice.name} = "disabled" }}\n')
    service(pam_dir, bus.address, before=[PERMIT_FIRST])
    result = authenticate(pam_dir, alice)
    assert result.ok, result
    assert result.prompts == 0, result


def test_required_and_not_enrolled_is_denied_with_the_reason(make_daemon, bus, users, pam_dir):
    make_daemon('[policy]\ndefault = "required"\n')
    bob = users.add()
    service(pam_dir, bus.address, before=[PERMIT_FIRST])
    result = authenticate(pam_dir, bob)
    assert_refused(result)
    assert result.prompts == 0, result
    assert (f"Two-factor authentication is required for {bob.name} (default) but is not set up"
            in result.output), result


# --- an absent or hung daemon --------------------------------------------------------------

def test_killed_daemon_means_denied(bus, daemon, users, pam_dir):
    alice = users.add()
    token = Enrolled(bus.address, alice)
    service(pam_dir, bus.address, timeout=2, before=[PERMIT_FIRST])
    daemon.stop(signal.SIGKILL)
    assert name_owner(bus.address) is None
    result = authenticate(pam_dir, alice, token.code())
    assert_refused(result, AUTHINFO_UNAVAIL)
    assert UNAVAILABLE in result.output, result
    assert result.prompts == 0, result


def test_stopped_daemon_means_denied_within_the_timeout(bus, daemon, users, pam_dir):
    alice = users.add()
    token = Enrolled(bus.address, alice)
    timeout = 2
    service(pam_dir, bus.address, timeout=timeout, before=[PERMIT_FIRST])
    code = token.code()
    daemon.proc.send_signal(signal.SIGSTOP)
    try:
        result = authenticate(pam_dir, alice, code, timeout=60)
    finally:
        daemon.proc.send_signal(signal.SIGCONT)
    assert_refused(result, AUTHINFO_UNAVAIL)
    assert UNAVAILABLE in result.output, result
    # At most two calls, each with its own deadline; generous slack for process start-up.
    assert result.elapsed < 2 * timeout + 3, result
    # The answer really came from the deadline (the name still had its owner).
    assert result.elapsed >= timeout * 0.9, result
    # Resumed, the daemon serves again; the code was never checked, so it still works.
    again = authenticate(pam_dir, alice, code)
    assert again.ok, again


# A login keeps its bus connection through the prompt while the daemon has room for it (at
# most 64 at once), and opens one per call beyond that. Both must behave the same.
LOGIN_KINDS = pytest.mark.parametrize("room", [True, False], ids=["kept", "no-room"])


@pytest.fixture
def kept_room(bus, daemon, request):
    """With `room` False, 64 other root connections hold all of the daemon's room for kept
    connections (each asked for a plan and stays open), for the duration of the test."""
    room = request.node.callspec.params.get("room", True)
    holders = [] if room else hold_kept_room(bus.address)
    yield room
    for conn in holders:
        conn.close()


def spawn_at_prompt(pam_dir, user):
    """pamtester on a pty, stopped at the code prompt (the plan has been asked for)."""
    import pexpect
    child = pamtester_spawn(pam_dir, SERVICE, user.name)
    child.expect_exact(PROMPT)
    return child, pexpect


def finish(child, pexpect, answer):
    child.sendline(answer)
    child.expect(pexpect.EOF)
    output = child.before
    child.close()
    return child.exitstatus, output


@LOGIN_KINDS
def test_a_daemon_stopped_while_the_user_types_means_denied_within_the_timeout(
        bus, daemon, users, pam_dir, room, kept_room):
    """The code check after the prompt has a deadline of its own."""
    import time
    alice = users.add()
    token = Enrolled(bus.address, alice)
    timeout = 2
    service(pam_dir, bus.address, timeout=timeout)
    child, pexpect = spawn_at_prompt(pam_dir, alice)
    code = token.code()
    daemon.proc.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        status, output = finish(child, pexpect, code)
        elapsed = time.monotonic() - started
    finally:
        daemon.proc.send_signal(signal.SIGCONT)
    assert status != 0 and SUCCESS not in output, output
    assert AUTHINFO_UNAVAIL in output and UNAVAILABLE in output, output
    assert timeout * 0.9 <= elapsed < timeout + 3, elapsed
    # Resumed, the daemon serves again. It may have checked the late code, and the next step's
    # would mean waiting for the clock: a backup code instead.
    assert authenticate(pam_dir, alice, token.backup_codes.pop()).ok


@LOGIN_KINDS
def test_a_daemon_restarted_while_the_user_types_means_denied(bus, daemon, users, pam_dir,
                                                               room, kept_room):
    """The module sends the code only to the owner it checked at the plan: after a restart
    that owner is gone, so the login fails instead of going to whoever owns the name now
    (on the kept connection, or on a new one)."""
    alice = users.add()
    token = Enrolled(bus.address, alice)
    service(pam_dir, bus.address, timeout=5)
    child, pexpect = spawn_at_prompt(pam_dir, alice)
    before = name_owner(bus.address)
    daemon.stop()
    daemon.start()
    assert name_owner(bus.address) not in (None, before)
    code = token.code()
    status, output = finish(child, pexpect, code)
    assert status != 0 and SUCCESS not in output, output
    assert AUTHINFO_UNAVAIL in output and UNAVAILABLE in output, output
    # The new daemon never saw the code, and serves the next login.
    assert authenticate(pam_dir, alice, code).ok


def method_calls_seen(monitor_output):
    """(sender, member) of every method call in `dbus-monitor` text output."""
    calls = []
    for line in monitor_output.splitlines():
        if line.startswith("method call "):
            fields = dict(word.split("=", 1) for word in line.replace(";", "").split()
                          if "=" in word)
            calls.append((fields["sender"], fields["member"]))
    return calls


@LOGIN_KINDS
def test_the_owner_is_checked_once_per_login(bus, daemon, users, pam_dir, room, kept_room):
    """Per login: one GetNameOwner for the daemon's name, from the connection of the first
    call; with room among the daemon's kept connections both calls use that connection,
    without it the code goes on a new one. The next login starts over. Watched with
    dbus-monitor (as root)."""
    import threading
    # Two users, so that neither login waits for the clock to give a fresh code.
    tokens = [Enrolled(bus.address, users.add()) for _ in range(2)]
    service(pam_dir, bus.address)
    monitor = subprocess.Popen(
        ["dbus-monitor", "--address", bus.address, "interface='org.twofactor.Daemon1'",
         "type='method_call',member='GetNameOwner',arg0='org.twofactor.Daemon1'"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    # Never wait forever on the monitor's output.
    watchdog = threading.Timer(30, monitor.kill)
    watchdog.start()
    try:
        # Once it is a monitor, the bus takes its name away: from then on it sees our calls.
        for line in monitor.stdout:
            if "member=NameLost" in line:
                break
        for token in tokens:
            result = pamtester(pam_dir, SERVICE, token.user.name, [token.code()])
            assert result.ok, result
        calls = []
        for line in monitor.stdout:
            calls += method_calls_seen(line)
            if len(calls) == 6:
                break
    finally:
        watchdog.cancel()
        monitor.kill()
        monitor.wait()
    members = [member for _, member in calls]
    assert members == ["GetNameOwner", "LoginPlan", "Verify"] * 2, members
    senders = [sender for sender, _ in calls]
    for login in (senders[:3], senders[3:]):
        owner_check, plan, verify = login
        assert owner_check == plan, senders
        assert (verify == plan) == room, senders
    assert senders[0] != senders[3], "a new connection for the next login"


# --- whom the module trusts ----------------------------------------------------------------

@pytest.fixture
def impostor_bus(workdir):
    b = Bus(workdir / "impostor-bus")
    yield b
    b.stop()


@pytest.fixture
def root_impostor(impostor_bus, workdir):
    imp = Impostor(impostor_bus.address, workdir / "impostor")
    yield imp
    imp.stop()


def impostor_env(address):
    return {"DBUS_SYSTEM_BUS_ADDRESS": address, "DBUS_SESSION_BUS_ADDRESS": address,
            "DBUS_STARTER_ADDRESS": address, "DBUS_STARTER_BUS_TYPE": "system"}


def test_control_a_root_impostor_on_the_configured_bus_is_believed(
        impostor_bus, root_impostor, users, pam_dir):
    """The impostor really answers like the daemon: the tests below could fail."""
    alice = users.add()
    service(pam_dir, impostor_bus.address)
    result = authenticate(pam_dir, alice, "000000")
    assert result.ok, result
    assert [call["member"] for call in root_impostor.calls()] == ["LoginPlan", "Verify"]


def authenticate_with_system_bus(pam_dir, user, answer, system_socket, env):
    """pamtester under pam_wrapper in a private mount namespace whose /run/dbus is an empty
    tmpfs, holding only `system_socket` (when given) as system_bus_socket: what the module
    reaches at the system bus's fixed address is the test's, whatever runs on the host.
    `env` goes into the process's environment and the PAM environment (pam_putenv)."""
    link = f"ln -s {shlex.quote(str(system_socket))} /run/dbus/system_bus_socket && " \
        if system_socket else ""
    # Where the host has no /run/dbus, a tmpfs over /run (mkdir would change the host).
    script = ("if [ -d /run/dbus ]; then mount -t tmpfs tf-dbus /run/dbus; "
              "else mount -t tmpfs tf-run /run && mkdir /run/dbus; fi && " + link + "exec " +
              " ".join(shlex.quote(w) for w in pamtester_command(SERVICE, user.name,
                                                                 pam_env=env)))
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                          input=answer + "\n", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, env=wrapper_env(pam_dir, env), timeout=60)
    return Result(done.returncode, done.stdout, 0.0)


def test_environment_bus_address_is_not_used(impostor_bus, root_impostor, users, pam_dir,
                                             workdir):
    """With no bus_address= the module goes to the system bus's fixed address, never to the
    DBUS_*_ADDRESS of its process or PAM environment (there a root impostor would accept any
    code). The fixed address is the test's own in a private mount namespace: a second root
    impostor, which gets the calls, then nothing at all, which makes the module unavailable.
    The host's own system bus, running or not, plays no part."""
    alice = users.add()
    write_service(pam_dir, SERVICE, module_line(None, timeout=2))
    env = impostor_env(impostor_bus.address)
    system_bus = Bus(workdir / "system-bus")
    try:
        at_fixed_address = Impostor(system_bus.address, workdir / "system-impostor")
        try:
            result = authenticate_with_system_bus(pam_dir, alice, "000000",
                                                  system_bus.socket, env)
            assert result.ok, result
            assert [c["member"] for c in at_fixed_address.calls()] == ["LoginPlan", "Verify"]
        finally:
            at_fixed_address.stop()
    finally:
        system_bus.stop()
    result = authenticate_with_system_bus(pam_dir, alice, "000000", None, env)
    assert_refused(result, AUTHINFO_UNAVAIL)
    assert root_impostor.calls() == []


def test_environment_bus_address_does_not_override_bus_address(
        bus, daemon, impostor_bus, root_impostor, users, pam_dir):
    alice = users.add()
    token = Enrolled(bus.address, alice)
    service(pam_dir, bus.address)
    env = impostor_env(impostor_bus.address)
    wrong = authenticate(pam_dir, alice, token.wrong_code(), extra_env=env, pam_env=env)
    assert_refused(wrong)
    assert WRONG_CODE in wrong.output, wrong
    right = authenticate(pam_dir, alice, token.code(), extra_env=env, pam_env=env)
    assert right.ok, right
    assert root_impostor.calls() == []


def test_non_root_owner_of_the_name_is_not_trusted(users, workdir, pam_dir):
    mallory = users.add()
    policy = (f'<policy user="{mallory.name}">'
              '<allow own="org.twofactor.Daemon1"/></policy>')
    evil_bus = Bus(workdir / "evil-bus", extra_xml=policy)
    try:
        impostor = Impostor(evil_bus.address, workdir / "mallory", user=mallory)
        try:
            assert name_owner(evil_bus.address) == impostor.unique_name
            service(pam_dir, evil_bus.address, timeout=2)
            alice = users.add()
            result = authenticate(pam_dir, alice, "000000")
            assert_refused(result, AUTHINFO_UNAVAIL)
            assert result.prompts == 0, result
            # The owner's uid is checked before any call reaches it.
            assert impostor.calls() == []
        finally:
            impostor.stop()
    finally:
        evil_bus.stop()


# --- arguments and the real /etc layout ----------------------------------------------------

def test_bus_address_with_its_guid(bus, daemon, users, pam_dir):
    assert ",guid=" in bus.address
    alice = users.add()
    token = Enrolled(bus.address, alice)
    service(pam_dir, bus.address, keep_guid=True)
    result = authenticate(pam_dir, alice, token.code())
    assert result.ok, result


def test_custom_prompt(bus, daemon, users, pam_dir):
    alice = users.add()
    token = Enrolled(bus.address, alice)
    service(pam_dir, bus.address, args=["[prompt=Code from your phone: ]"])
    result = authenticate(pam_dir, alice, token.code())
    assert result.ok, result
    assert "Code from your phone: " in result.output, result
    assert result.prompts == 0, result


def test_forward_pass_with_pam_unix(bus, daemon, users, pam_dir):
    """One answer, password then code; pam_unix takes the password from PAM_AUTHTOK."""
    line = module_line(bus.address, args=["forward_pass"])
    write_service(pam_dir, SERVICE, [line, "auth required pam_unix.so use_first_pass nodelay"])
    alice = users.add(password="correct horse 1")
    right = authenticate(pam_dir, alice,
                         "correct horse 1" + Enrolled(bus.address, alice).code())
    assert right.ok, right
    assert "Password & verification code: " in right.output, right
    # A correct code does not make up for a wrong password (one TOTP step per user).
    bob = users.add(password="correct horse 2")
    wrong = authenticate(pam_dir, bob, "wrong horse 2" + Enrolled(bus.address, bob).code())
    assert_refused(wrong)


def test_real_libpam_with_the_etc_layout(bus, daemon, users, pam_dir):
    """Unmodified libpam reading /etc/pam.d (our directory, bind-mounted in a private mount
    namespace), with modules named as on a real system."""
    alice = users.add()
    token = Enrolled(bus.address, alice)
    write_service(pam_dir, SERVICE, [
        "auth requisite pam_nologin.so",
        module_line(bus.address, timeout=5),
    ], account=["account required pam_unix.so"])
    right = pamtester_real(pam_dir, SERVICE, alice.name, [token.code()])
    assert right.ok, right
    assert right.prompts == 1, right
    wrong = pamtester_real(pam_dir, SERVICE, alice.name, [token.wrong_code()])
    assert_refused(wrong)
    assert WRONG_CODE in wrong.output, wrong
    # The host's /etc/pam.d was never touched.
    assert not pathlib.Path("/etc/pam.d", SERVICE).exists()


# --- unavailable=ignore: only an unreachable daemon is ignored -----------------------------

IGNORE_UNAVAILABLE = ["unavailable=ignore"]


def test_unavailable_ignore_skips_a_missing_daemon(bus, daemon, users, pam_dir):
    alice = users.add()
    Enrolled(bus.address, alice)
    service(pam_dir, bus.address, timeout=2, args=IGNORE_UNAVAILABLE, before=[PERMIT_FIRST])
    daemon.stop(signal.SIGKILL)
    result = authenticate(pam_dir, alice)
    assert result.ok, result
    assert result.prompts == 0, result


def test_unavailable_ignore_skips_a_missing_bus_socket(users, workdir, pam_dir):
    alice = users.add()
    absent = f"unix:path={workdir}/no-such-bus.sock"
    service(pam_dir, absent, timeout=2, args=IGNORE_UNAVAILABLE, before=[PERMIT_FIRST])
    assert authenticate(pam_dir, alice).ok
    # Without the argument, the default is to fail.
    service(pam_dir, absent, timeout=2, before=[PERMIT_FIRST])
    assert_refused(authenticate(pam_dir, alice), AUTHINFO_UNAVAIL)


def test_unavailable_ignore_does_not_skip_a_hung_daemon(bus, daemon, users, pam_dir):
    alice = users.add()
    Enrolled(bus.address, alice)
    service(pam_dir, bus.address, timeout=1, args=IGNORE_UNAVAILABLE, before=[PERMIT_FIRST])
    daemon.proc.send_signal(signal.SIGSTOP)
    try:
        result = authenticate(pam_dir, alice, "000000")
    finally:
        daemon.proc.send_signal(signal.SIGCONT)
    assert_refused(result, AUTHINFO_UNAVAIL)
    assert result.elapsed < 2 * 1 + 3, result


def test_unavailable_ignore_does_not_skip_a_non_root_owner(users, workdir, pam_dir):
    mallory = users.add()
    policy = (f'<policy user="{mallory.name}">'
              '<allow own="org.twofactor.Daemon1"/></policy>')
    evil_bus = Bus(workdir / "evil-bus", extra_xml=policy)
    try:
        impostor = Impostor(evil_bus.address, workdir / "mallory", user=mallory)
        try:
            service(pam_dir, evil_bus.address, timeout=2, args=IGNORE_UNAVAILABLE,
                    before=[PERMIT_FIRST])
            result = authenticate(pam_dir, users.add(), "000000")
            assert_refused(result, AUTHINFO_UNAVAIL)
            assert impostor.calls() == []
        finally:
            impostor.stop()
    finally:
        evil_bus.stop()


# --- what the login reveals ----------------------------------------------------------------

# Timing is the property here (user enumeration), so this one is timed, as a ratio of
# medians over alternating runs.
def test_a_wrong_code_fails_as_fast_for_an_unknown_user_as_for_a_known_one(
        make_daemon, bus, users, pam_dir):
    make_daemon(NO_LOCKOUT)
    alice = users.add()
    token = Enrolled(bus.address, alice)
    service(pam_dir, bus.address)
    ghost = "tfghost" + alice.name[2:]
    code = token.wrong_code()
    known, unknown = [], []
    for _ in range(15):  # alternating, so load affects both alike
        for name, times in ((alice.name, known), (ghost, unknown)):
            result = authenticate(pam_dir, name, code)
            assert_refused(result)
            times.append(result.elapsed)
    known_median, unknown_median = sorted(known)[7], sorted(unknown)[7]
    # Equal cost within noise (a ratio, so it holds on slow and fast machines alike).
    assert unknown_median < known_median * 1.5 + 0.001, (known_median, unknown_median)


def test_the_module_needs_only_libpam_and_libc():
    """What loading pam_twofactor.so pulls into sshd, login or su: libpam and libc, nothing
    else (the unwinder is linked in: pam_module/build.rs says why)."""
    from pam_harness import module_path
    dynamic = subprocess.run(["readelf", "--dynamic", module_path()], capture_output=True,
                             text=True, check=True).stdout
    needed = {line.split("[", 1)[1].rstrip("]") for line in dynamic.splitlines()
              if "(NEEDED)" in line}
    assert needed == {"libpam.so.0", "libc.so.6", "ld-linux-x86-64.so.2"}, needed
