"""Floods: one caller keeping the daemon busy must not starve another user's login, must be
refused beyond its share (org.twofactor.Error.Busy), and must leave nothing behind.

The attacker is tests/integration/flood.py (16 connections x 128 calls in flight, each answer
followed by a new call), as a local user who is not enrolled, or as root for the attacker's
own name (what `su` to oneself makes the PAM module send). The victim logs in through the real
pam_twofactor.so (pamtester under pam_wrapper) with a correct code from oathtool, with the
module argument timeout=1: a daemon that makes the login wait behind the flood fails it
("unavailable"). No assertion is about speed (that is tests/bench/bench_flood.py's); polls
for the daemon to settle have generous limits only so that a broken daemon fails the test
instead of hanging it.
"""
import signal
import time

import pytest

from conftest import ERR, call_as
from flood import BusOutput, Flood, cpu_ticks, ping, proc_status, wait_until_idle
from pam_harness import Enrolled, module_line, pamtester, write_service

BUSY = ERR + "Busy"
CONNECTIONS, IN_FLIGHT = 16, 128
LOGINS = 3  # each by its own victim, so every code is for the current or the next step
VICTIM_ITEMS = {"rhost": "192.0.2.7", "tty": "ssh"}
MIB = 1024


@pytest.fixture(autouse=True)
def bus_output(bus):
    """dbus-daemon's complaints about the flood, read so that its stderr pipe never fills."""
    return BusOutput(bus)


@pytest.fixture
def pam_dir(workdir):
    return workdir / "pam.d"


def victims(bus, users, count=LOGINS):
    return [Enrolled(bus.address, users.add()) for _ in range(count)]


def login(pam_dir, victim):
    """One sshd login of `victim` from 192.0.2.7 with a correct, unspent code."""
    return pamtester(pam_dir, "sshd", victim.user.name, [victim.code()], items=VICTIM_ITEMS)


def logins_during(flood, pam_dir, victims):
    """Each victim logs in once while the flood is on; checks it stayed on throughout."""
    started = flood.wait_until_flooding()
    assert started["answered"] > 0 and started["queued"] == 0, \
        f"the flood never got going: {started} {flood.ready}"
    results = [login(pam_dir, victim) for victim in victims]
    during = flood.totals()
    # The logins ran against a live flood (the bus kept every connection, the client ran).
    assert during["alive"] == len(flood.procs) and during["open"] == CONNECTIONS, during
    return results


def assert_logged_in(enrolled, results):
    failed = [f"{victim.user.name}: {result}" for victim, result in zip(enrolled, results)
              if not result.ok]
    assert not failed, f"{len(failed)} of {len(results)} logins failed during the flood:\n" + \
        "\n".join(failed)


def assert_logins_pass_a_flood(bus, users, pam_dir, kind, as_attacker):
    """Logins through the module, with a 1 s deadline, while `kind` floods the daemon, sent
    by the attacker itself or (`as_attacker` false) by root for the attacker's name."""
    attacker = users.add()
    enrolled = victims(bus, users)
    write_service(pam_dir, "sshd", module_line(bus.address, timeout=1))
    with Flood(bus.address, kind, attacker.name, user=attacker if as_attacker else None,
               connections=CONNECTIONS, in_flight=IN_FLIGHT) as flood:
        assert flood.opened == CONNECTIONS, flood.ready
        results = logins_during(flood, pam_dir, enrolled)
    assert_logged_in(enrolled, results)


def test_a_login_is_not_starved_by_a_local_users_verify_flood(bus, users, daemon, pam_dir):
    assert_logins_pass_a_flood(bus, users, pam_dir, "verify", as_attacker=True)


def test_a_login_is_not_starved_by_root_calls_for_the_attackers_own_name(
        bus, users, daemon, pam_dir):
    """`su attacker` run by the attacker makes the PAM module call as root; a flood of such
    calls (service su, tty pts/9, no remote host: a local source) must not hold up a login of
    someone else from 192.0.2.7."""
    assert_logins_pass_a_flood(bus, users, pam_dir, "root-verify", as_attacker=False)


def test_a_flood_is_refused_beyond_its_share_and_leaves_the_daemon_idle(bus, users, daemon):
    attacker = users.add()
    flood = Flood(bus.address, "verify", attacker.name, user=attacker,
                  connections=CONNECTIONS, in_flight=IN_FLIGHT)
    with flood:
        started = flood.wait_until_flooding()
        assert started["answered"] > 0, f"the flood never got going: {started}"
        # The first round put 16 x 128 calls in flight at once, far beyond any one caller's
        # share: a daemon that refuses the rest does so at once, so Busy comes among the
        # first answers. 512 answered without one means none was refused.
        during = flood.wait_for(
            lambda t: t["errors"].get(BUSY, 0) > 0 or t["answered"] >= 4 * IN_FLIGHT,
            limit=90)
        flood.stop(signal.SIGKILL)
    pid = daemon.proc.pid
    settled = wait_until_idle(pid, quiet=1.0, limit=120)
    assert settled is not None, \
        f"the daemon still uses CPU 120 s after the attacker was killed ({cpu_ticks(pid)} ticks)"
    assert daemon.proc.poll() is None, daemon.log_text()[-2000:]
    assert ping(bus.address, timeout=30) == "method_return"
    status = call_as(bus.address, attacker, "Status", attacker.name)
    assert "ok" in status and status["ok"]["enrolled"] is False, status
    assert during["errors"].get(BUSY, 0) >= 1, \
        f"no attacker call was refused with {BUSY}: {during}"


def test_memory_is_given_back_after_a_flood_of_30_mb_arguments(bus, users, daemon):
    attacker = users.add()
    pid = daemon.proc.pid
    with Flood(bus.address, "big", attacker.name, user=attacker, connections=4,
               in_flight=2) as flood:
        # Until the daemon answered a hundred 30 MB calls (or refused them some other way: the
        # bus closing the connections). Not fewer: after two dozen, a daemon that keeps memory
        # after longer floods was seen to give it all back.
        during = flood.wait_for(lambda t: t["answered"] >= 100 or t["closed"] >= 8, limit=120)
        flood.stop()
    assert during["answered"] + during["closed"] > 0, f"nothing came of the flood: {during}"
    rss = None
    for _ in range(300):  # up to 30 s
        rss = proc_status(pid, "VmRSS")
        if rss < 30 * MIB:
            break
        time.sleep(0.1)
    peak = proc_status(pid, "VmHWM")
    assert daemon.proc.poll() is None, daemon.log_text()[-2000:]
    problems = [f"VmRSS still {rss} KiB 30 s after the flood"] if rss >= 30 * MIB else []
    if peak >= 100 * MIB:
        problems.append(f"peak VmHWM {peak} KiB")
    assert not problems, f"{'; '.join(problems)} (VmRSS {rss} KiB at the end; {during})"
