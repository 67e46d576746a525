#!/usr/bin/python3
"""Benchmark: another user's login while one caller floods twofactord (not a test).

    cargo build --release -p twofactord -p pam_twofactor
    /usr/bin/python3 tests/bench/bench_flood.py [--attack KIND] [--connections 16]
        [--in-flight 128] [--logins 20] [--flood-seconds 8] [--json FILE]
    # the bus's whole allowance for one uid: 256 connections x 128 pending replies
    /usr/bin/python3 tests/bench/bench_flood.py --attack verify --connections 256

Run as root. TWOFACTOR_BIN_DIR (default target/release) holds twofactord and
libpam_twofactor.so. A private dbus-daemon with our real policy (conftest.Bus) and the real
daemon (conftest.Daemon); throwaway users made with useradd and removed at the end.

The attacker is a local user who is not enrolled, running tests/integration/flood.py (as
its uid, through setpriv, with /usr/bin/python3 and jeepney): CONNECTIONS connections x
IN_FLIGHT calls kept in flight, each answer followed by a new call. --attack (default: each
in turn, a freshly started daemon for each so that its peak memory is its own):

  verify         Verify(self, "1234567890", context): 10 digits cost the daemon a dummy
                 argon2 hash for a user who is not enrolled;
  plan           LoginPlan(self, context);
  status-unread  Status(self), replies never read;
  root-verify    the same Verify as ROOT for the attacker's name, context su / pts/9 / no
                 remote host: what the attacker gets the PAM module to send by running
                 `su` to itself (at 256 connections this is also root's whole allowance on
                 the bus, which the victim's PAM module needs too);
  big            Verify(self, "1" * 30,000,000, context) on --big-connections (4) x
                 --big-in-flight (2).

The victims: --victims users (30), enrolled by root before any flood. While the flood runs,
they log in one after another through the real pam_twofactor.so (pamtester under
pam_wrapper, service sshd, PAM_RHOST 192.0.2.7, module argument timeout=10 so that a slow
daemon shows as latency rather than failure), up to --logins (20) logins or --flood-seconds
(8) of flood, with a correct oathtool code each. A code is accepted once per 30 s step, and
only inside the default window (the previous, current and next step), so each login uses a
victim who has not used the current or the next step's code yet, with that code: every
login is a real one with the default configuration. (Victims are enrolled with the previous
step's code, so each starts with two; if every one is spent the benchmark waits for the next
step before the flood and says so.)

Printed per attack: the victim logins' latency (pamtester's wall time, process start and
libpam included) p50 / p99 / max and how many succeeded, with the failures' reasons; the
daemon's CPU use during the flood; its peak RSS during the flood (VmHWM: a fresh daemon per
attack); its VmRSS 1 s, 10 s and 30 s after the attacker's processes exited (the goal:
under 30 MiB within 30 s); and for how long after that its CPU stayed busy (the end of the
last 0.5 s in which it used at least 10% of a CPU). Sampling after the flood stops early
from 10 s on once the daemon has been idle for 3 s with an unchanged VmRSS (an idle process's
RSS does not move: marked "settled"; --full-aftermath waits the 30 s). A default run takes
about 3 minutes.
"""
import argparse
import concurrent.futures
import json
import math
import os
import pathlib
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
from conftest import Bus, Daemon, User, enroll, oathtool  # noqa: E402
from flood import (KINDS, BusOutput, Flood, cpu_ticks, proc_status,  # noqa: E402
                   reset_peak)
from pam_harness import (REPLAYED, UNAVAILABLE, WRONG_CODE,  # noqa: E402
                         module_line, pamtester, write_service)

SERVICE = "sshd"
VICTIM_ITEMS = {"rhost": "192.0.2.7", "tty": "ssh"}
MIB = 1024
TICK = os.sysconf("SC_CLK_TCK")


def percentile(values, fraction):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def make_user(prefix):
    name = prefix + secrets.token_hex(4)
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                   check=True)
    uid = int(subprocess.run(["id", "-u", name], capture_output=True, text=True,
                             check=True).stdout)
    gid = int(subprocess.run(["id", "-g", name], capture_output=True, text=True,
                             check=True).stdout)
    return User(name, uid, gid)


def remove_users(users):
    for user in users:
        subprocess.run(["userdel", user.name], capture_output=True)


class Victim:
    def __init__(self, user, enrollment):
        self.user = user
        self.secret = enrollment.secret
        self.step = enrollment.step  # the last step spent (or reserved)


def reserve_codes(victims, count):
    """`count` (victim, code) logins, each code for the current or the next step and above
    the victim's last: still inside the ±1 window if the clock ticks once during the flood.
    A victim's two codes come in step order, in two rounds. Waits for the next step (and
    returns the seconds waited) if there are not enough."""
    waited = 0.0
    while True:
        now = int(time.time()) // 30
        first, second = [], []
        for victim in victims:
            steps = [step for step in (now, now + 1) if step > victim.step]
            if steps:
                first.append((victim, steps[0]))
            if len(steps) > 1:
                second.append((victim, steps[1]))
        chosen = (first + second)[:count]
        if len(chosen) == count or count == 0:
            break
        pause = (now + 1) * 30 - time.time() + 0.1
        waited += pause
        time.sleep(pause)
    logins = []
    for victim, step in chosen:
        victim.step = max(victim.step, step)
        logins.append((victim, oathtool(victim.secret, at=step * 30)))
    return logins, waited


def reason(result):
    if result.ok:
        return "ok"
    for text, name in ((UNAVAILABLE, "unavailable"), (WRONG_CODE, "wrong code"),
                       (REPLAYED, "replayed")):
        if text in result.output:
            return name
    return f"rc={result.returncode}"


class Sampler:
    """The daemon's VmRSS every 0.1 s, for the peak between two moments."""

    def __init__(self, pid):
        self.pid, self.max_rss, self.stop = pid, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                self.max_rss = max(self.max_rss, proc_status(self.pid, "VmRSS"))
            except (OSError, KeyError):
                return
            self.stop.wait(0.1)

    def end(self):
        self.stop.set()
        self.thread.join()
        return self.max_rss


def aftermath(pid, seconds, full):
    """VmRSS at 1, 10 and 30 s after the attacker left, and when the CPU went quiet."""
    started = time.monotonic()
    samples = []  # (t, rss KiB, cpu ticks)
    settled = None
    while True:
        t = time.monotonic() - started
        samples.append((t, proc_status(pid, "VmRSS"), cpu_ticks(pid)))
        if t >= seconds:
            break
        if not full and t >= 10:
            recent = [s for s in samples if s[0] >= t - 3]
            if (recent[0][0] <= t - 2.9 and recent[-1][2] - recent[0][2] <= 1
                    and len({s[1] for s in recent}) == 1):
                settled = t
                break
        time.sleep(0.1)
    # Busy: at least 10% of a CPU over the trailing 0.5 s.
    busy_until = 0.0
    for index, (t, _, ticks) in enumerate(samples):
        back = [s for s in samples[:index] if s[0] <= t - 0.5]
        if back and ticks - back[-1][2] >= 0.1 * TICK * (t - back[-1][0]):
            busy_until = t

    def rss_at(mark):
        for t, rss, _ in samples:
            if t >= mark:
                return rss
        return samples[-1][1]  # settled before the mark: idle and unchanged since
    return {"rss_1s": rss_at(1), "rss_10s": rss_at(10), "rss_30s": rss_at(30),
            "cpu_busy_s": busy_until, "still_busy": busy_until >= samples[-1][0] - 0.2,
            "settled_at": settled, "sampled_s": samples[-1][0]}


def run_attack(kind, args, bus, daemon, attacker, victims, pam_dir, bus_output):
    # A fresh daemon for each attack: its VmHWM is this attack's peak.
    try:
        daemon.stop()
    except subprocess.TimeoutExpired:
        daemon.stop(signal.SIGKILL)
    daemon.start()
    pid = daemon.proc.pid
    idle_rss = proc_status(pid, "VmRSS")
    logins, code_wait = reserve_codes(victims, args.logins)
    reset_peak(pid)
    complaints = bus_output.count
    big = kind == "big"
    flood = Flood(bus.address, kind, attacker.name, user=None if kind == "root-verify" else attacker,
                  connections=args.big_connections if big else args.connections,
                  in_flight=args.big_in_flight if big else args.in_flight, size=args.big_size)
    results = []
    with flood:
        if kind == "status-unread":
            flood.wait_for(lambda t: t["sent"] >= flood.opened, limit=30)
        else:
            flood.wait_until_flooding(limit=30)
        time.sleep(args.ramp)
        sampler = Sampler(pid)
        before = flood.totals()
        ticks_before = cpu_ticks(pid)
        flood_started = time.monotonic()
        for victim, code in logins:
            if time.monotonic() - flood_started >= args.flood_seconds:
                break
            result = pamtester(pam_dir, SERVICE, victim.user.name, [code], items=VICTIM_ITEMS,
                               timeout=120)
            results.append(result)
        while time.monotonic() - flood_started < args.min_flood_seconds:
            time.sleep(0.05)
        flood_seconds = time.monotonic() - flood_started
        during = flood.totals()
        cpu = (cpu_ticks(pid) - ticks_before) / TICK / flood_seconds
        peak_hwm = proc_status(pid, "VmHWM")
        peak_rss = sampler.end()
        final = flood.stop()
    after = aftermath(pid, args.after_seconds, args.full_aftermath)
    latencies = [result.elapsed * 1000 for result in results]
    reasons = {}
    for result in results:
        reasons[reason(result)] = reasons.get(reason(result), 0) + 1
    return {
        "attack": kind, "connections_opened": flood.opened, "refused": flood.refused,
        "in_flight": args.big_in_flight if big else args.in_flight,
        "flood_seconds": flood_seconds, "code_wait_seconds": code_wait,
        "attacker_answered_per_second": (during["answered"] - before["answered"]) / flood_seconds,
        "attacker_errors": final["errors"], "attacker_closed": final["closed"],
        "bus_complaints": bus_output.count - complaints,
        "logins": len(results), "logins_ok": sum(1 for result in results if result.ok),
        "login_outcomes": reasons,
        "login_p50_ms": percentile(latencies, 0.5) if latencies else None,
        "login_p99_ms": percentile(latencies, 0.99) if latencies else None,
        "login_max_ms": max(latencies) if latencies else None,
        "daemon_cpu_during": cpu, "idle_rss_kib": idle_rss,
        "peak_hwm_kib": peak_hwm, "peak_rss_sampled_kib": peak_rss,
        **{key: value for key, value in after.items()},
        "daemon_alive": daemon.proc.poll() is None,
    }


def mib(kib):
    return f"{kib / MIB:.1f}"


def report(rows, args, setup_seconds, total_seconds):
    print(f"twofactord under a flood: {os.cpu_count()} CPUs; attacker {args.connections} "
          f"connections x {args.in_flight} calls in flight (big: {args.big_connections} x "
          f"{args.big_in_flight} x {args.big_size:,} bytes); victim logins through "
          f"pam_twofactor.so timeout={args.module_timeout}, up to {args.logins} logins or "
          f"{args.flood_seconds:g} s of flood")
    print(f"{'attack':14} {'logins ok':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'cpu':>5} {'HWM MiB':>8} {'RSS 1s':>7} {'10s':>6} {'30s':>6} {'busy s':>7}  "
          f"attacker")
    for row in rows:
        def ms(key):
            return f"{row[key]:8.0f}" if row[key] is not None else f"{'-':>8}"
        busy = f"{row['cpu_busy_s']:.1f}" + ("+" if row["still_busy"] else "")
        thirty = mib(row["rss_30s"]) + ("*" if row["settled_at"] is not None else "")
        errors = ", ".join(f"{name.rsplit('.', 1)[-1]} {count}"
                           for name, count in sorted(row["attacker_errors"].items()))
        print(f"{row['attack']:14} {row['logins_ok']:>4}/{row['logins']:<4} {ms('login_p50_ms')} "
              f"{ms('login_p99_ms')} {ms('login_max_ms')} {row['daemon_cpu_during']:5.2f} "
              f"{mib(row['peak_hwm_kib']):>8} {mib(row['rss_1s']):>7} {mib(row['rss_10s']):>6} "
              f"{thirty:>6} {busy:>7}  {row['connections_opened']} conns, "
              f"{row['attacker_answered_per_second']:.0f} answers/s"
              + (f"; errors: {errors}" if errors else "")
              + (f"; bus refused connections: {row['refused'][0]}" if row["refused"] else ""))
        failures = {k: v for k, v in row["login_outcomes"].items() if k != "ok"}
        notes = []
        if failures:
            notes.append("failed logins: " + ", ".join(f"{k} {v}" for k, v in failures.items()))
        if row["code_wait_seconds"]:
            notes.append(f"waited {row['code_wait_seconds']:.0f} s for a TOTP step before it")
        if row["bus_complaints"]:
            notes.append(f"dbus-daemon logged {row['bus_complaints']} complaints")
        if not row["daemon_alive"]:
            notes.append("THE DAEMON DIED")
        if notes:
            print(f"{'':14} " + "; ".join(notes))
    print("cpu: the daemon's CPU use during the flood, in CPUs; HWM: its peak RSS (fresh daemon"
          " per attack); RSS after the attacker left (goal: under 30 MiB within 30 s; "
          "* settled earlier: idle, unchanged); busy s: how long its CPU stayed busy after "
          "(+: still busy when sampling ended)")
    print(f"setup {setup_seconds:.1f} s, total {total_seconds:.1f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--attack", choices=KINDS, action="append",
                        help="an attack to run (repeatable; default: each in turn)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--in-flight", type=int, default=128)
    parser.add_argument("--big-connections", type=int, default=4)
    parser.add_argument("--big-in-flight", type=int, default=2)
    parser.add_argument("--big-size", type=int, default=30_000_000)
    parser.add_argument("--logins", type=int, default=20, help="victim logins per attack")
    parser.add_argument("--victims", type=int, default=30, help="enrolled victim users")
    parser.add_argument("--flood-seconds", type=float, default=8.0,
                        help="no login starts after this much flood")
    parser.add_argument("--min-flood-seconds", type=float, default=5.0)
    parser.add_argument("--ramp", type=float, default=1.0,
                        help="seconds of flood before the first login")
    parser.add_argument("--after-seconds", type=float, default=30.0)
    parser.add_argument("--full-aftermath", action="store_true",
                        help="always sample the whole --after-seconds")
    parser.add_argument("--module-timeout", type=int, default=10)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark makes throwaway users")
    kinds = args.attack or list(KINDS)
    began = time.monotonic()
    work = pathlib.Path(tempfile.mkdtemp(prefix="twofactor-flood-"))
    work.chmod(0o755)
    made = []
    bus = Bus(work / "bus")
    bus_output = BusOutput(bus)
    daemon = None
    rows = []
    try:
        daemon = Daemon(bus, work / "daemon")
        attacker = make_user("tfa")
        made.append(attacker)
        victim_users = [make_user("tfv") for _ in range(args.victims)]
        made.extend(victim_users)
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            enrollments = list(pool.map(lambda user: enroll(bus.address, user), victim_users))
        victims = [Victim(user, enrollment)
                   for user, enrollment in zip(victim_users, enrollments)]
        pam_dir = write_service(work / "pam.d", SERVICE,
                                module_line(bus.address, timeout=args.module_timeout))
        setup_seconds = time.monotonic() - began
        for kind in kinds:
            rows.append(run_attack(kind, args, bus, daemon, attacker, victims, pam_dir,
                                   bus_output))
            row = rows[-1]
            print(f"# {kind}: {row['logins_ok']}/{row['logins']} logins, "
                  f"{time.monotonic() - began:.0f} s so far", file=sys.stderr, flush=True)
    finally:
        if daemon is not None:
            daemon.stop(signal.SIGKILL)
        bus.stop()
        remove_users(made)
        subprocess.run(["rm", "-rf", str(work)])
    total = time.monotonic() - began
    report(rows, args, setup_seconds, total)
    if args.json:
        figures = {"machine": {"cpus": os.cpu_count(), "kernel": os.uname().release},
                   "options": vars(args), "attacks": rows, "total_seconds": total}
        pathlib.Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
