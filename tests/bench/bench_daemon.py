#!/usr/bin/env python3
"""Benchmark of the real twofactord on a private system-like bus (not a test).

    cargo build --release -p twofactord
    /usr/bin/python3 tests/bench/bench_daemon.py [--seconds 2.5] [--json FILE]
                                                 [--pin-mmap-threshold]

Run as root (it makes throwaway users with useradd and removes them). It measures, through
dbus-daemon with the real bus policy, from jeepney clients in separate processes:

- Peer.Ping to the daemon: the bus + zbus round trip with none of our logic (for scale);
- LoginPlan: the read-only half of a login (caller uid lookup, NSS user and groups, policy,
  reading the user's file);
- Verify with a wrong TOTP code: the full work of a code check (load the record, the TOTP
  window plus the clock-skew search, then a durable write of the failure counter: temp file,
  fsync, rename, fsync of the directory). An accepted code does the same load-check-save
  minus the skew search, but each user has only a couple of fresh codes per 30 s, so a
  sustained rate can only be measured on failures. Lockout is configured out of the way
  (max_failures = 100, free_failures = 100, base_delay_seconds = 0) and each client unlocks
  its user (as root, untimed) every 50 attempts;
- a backup-code check: Verify with a wrong and with a right 10-digit code (one argon2id
  hash each, plus the save);
- the daemon's peak RSS (VmHWM) after the enrollments and at the end, and its threads.
  --pin-mmap-threshold runs the daemon with MALLOC_MMAP_THRESHOLD_=131072, for comparison:
  see tests/integration/test_resources.py for why the default retains argon2's memory.

1, 8 and 64 concurrent clients, each with its own connection and its own enrolled user, so
the per-user lock never serializes them: what is measured is the daemon (and this machine:
clients, dbus-daemon and twofactord share its cores).
"""
import argparse
import json
import multiprocessing
import os
import pathlib
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
from conftest import Bus, Daemon  # noqa: E402
import tfcall  # noqa: E402
from jeepney import DBusAddress, new_method_call  # noqa: E402
from jeepney.io.blocking import open_dbus_connection  # noqa: E402

CONFIG = """
[lockout]
max_failures = 100
free_failures = 100
base_delay_seconds = 0
"""
LEVELS = (1, 8, 64)
CONTEXT = ("sshd", "192.0.2.1", "ssh")
OBJECT = DBusAddress("/org/twofactor/Daemon1", bus_name="org.twofactor.Daemon1",
                     interface="org.twofactor.Daemon1")
PEER = DBusAddress("/org/twofactor/Daemon1", bus_name="org.twofactor.Daemon1",
                   interface="org.freedesktop.DBus.Peer")


def make_users(count):
    names = []
    for _ in range(count):
        name = "tfb" + secrets.token_hex(4)
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                       check=True)
        names.append(name)
    return names


def remove_users(names):
    for name in names:
        subprocess.run(["userdel", name], capture_output=True)


def enroll_all(address, names):
    """Enroll every user as root, a few at a time (each enrollment hashes 10 backup codes)."""
    results, errors = {}, []

    def work(chunk):
        conn = open_dbus_connection(bus=address)
        try:
            for name in chunk:
                result = tfcall.enroll(conn, name)
                if "ok" in result:
                    results[name] = result["ok"]
                else:
                    errors.append(result)
        finally:
            conn.close()

    threads = [threading.Thread(target=work, args=(names[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"enrollment failed: {errors[:3]}")
    return results


def message(kind, user):
    if kind == "ping":
        return new_method_call(PEER, "Ping")
    if kind == "loginplan":
        return new_method_call(OBJECT, "LoginPlan", "s(sss)", (user, CONTEXT))
    if kind == "verify":
        return new_method_call(OBJECT, "Verify", "ss(sss)", (user, "000000", CONTEXT))
    raise ValueError(kind)


def worker(address, kind, user, barrier, deadline_box, out):
    conn = open_dbus_connection(bus=address)
    latencies, errors = [], 0
    try:
        barrier.wait()
        deadline = deadline_box.value
        count = 0
        while time.time() < deadline:
            count += 1
            if kind == "verify" and count % 50 == 0:  # untimed: keep clear of the lockout
                conn.send_and_get_reply(new_method_call(OBJECT, "UnlockUser", "s", (user,)))
            msg = message(kind, user)
            start = time.perf_counter()
            reply = conn.send_and_get_reply(msg, timeout=60)
            latencies.append(time.perf_counter() - start)
            if reply.header.message_type.name != "method_return" or (
                    kind == "verify" and reply.body[0] != 1):
                errors += 1
    finally:
        conn.close()
    out.send((latencies, errors))
    out.close()


def sample_threads(pid, stop, peak):
    while not stop.is_set():
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("Threads:"):
                    peak[0] = max(peak[0], int(line.split()[1]))
        except OSError:
            pass
        stop.wait(0.05)


def run_level(address, kind, users, clients, seconds, daemon_pid):
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(clients + 1)
    deadline = ctx.Value("d", 0.0)
    pipes, procs = [], []
    for index in range(clients):
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=worker,
                           args=(address, kind, users[index], barrier, deadline, send))
        proc.start()
        send.close()
        pipes.append(receive)
        procs.append(proc)
    stop, peak = threading.Event(), [0]
    sampler = threading.Thread(target=sample_threads, args=(daemon_pid, stop, peak))
    sampler.start()
    deadline.value = time.time() + seconds + 0.05
    barrier.wait()
    started = time.perf_counter()
    latencies, errors = [], 0
    for pipe in pipes:
        got, bad = pipe.recv()
        latencies += got
        errors += bad
    elapsed = time.perf_counter() - started
    for proc in procs:
        proc.join()
    stop.set()
    sampler.join()
    latencies.sort()
    return {
        "kind": kind, "clients": clients, "calls": len(latencies), "errors": errors,
        "per_second": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "daemon_threads_peak": peak[0],
    }


def backup_code_checks(address, user, codes, samples=15):
    conn = open_dbus_connection(bus=address)
    wrong, right = [], []
    try:
        for index in range(samples):
            if index % 10 == 9:
                conn.send_and_get_reply(new_method_call(OBJECT, "UnlockUser", "s", (user,)))
            start = time.perf_counter()
            reply = conn.send_and_get_reply(
                new_method_call(OBJECT, "Verify", "ss(sss)", (user, "0000000000", CONTEXT)))
            wrong.append(time.perf_counter() - start)
            assert reply.body[0] == 1, reply.body
        for code in codes[:8]:
            start = time.perf_counter()
            reply = conn.send_and_get_reply(
                new_method_call(OBJECT, "Verify", "ss(sss)", (user, code, CONTEXT)))
            right.append(time.perf_counter() - start)
            assert reply.body[0] == 0 and reply.body[1], reply.body
    finally:
        conn.close()
    return {"wrong_backup_code_ms": 1000 * statistics.median(wrong),
            "right_backup_code_ms": 1000 * statistics.median(right)}


def memory(pid):
    fields = {}
    for line in open(f"/proc/{pid}/status"):
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "Threads"):
            fields[key] = value.strip()
    return fields


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.5, help="per measurement")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--pin-mmap-threshold", action="store_true",
                        help="run the daemon with MALLOC_MMAP_THRESHOLD_=131072")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark makes throwaway users")
    began = time.perf_counter()
    work = pathlib.Path(tempfile.mkdtemp(prefix="twofactor-bench-"))
    work.chmod(0o755)
    names = []
    bus = Bus(work / "bus")
    daemon = None
    try:
        env = {"MALLOC_MMAP_THRESHOLD_": "131072"} if args.pin_mmap_threshold else None
        daemon = Daemon(bus, work / "daemon", CONFIG, env=env)
        pid = daemon.proc.pid
        idle = memory(pid)
        names = make_users(max(LEVELS) + 1)
        t0 = time.perf_counter()
        enrolled = enroll_all(bus.address, names)
        enroll_seconds = time.perf_counter() - t0
        enrolled_memory = memory(pid)
        users, spare = names[:-1], names[-1]
        results = []
        for kind in ("ping", "loginplan", "verify"):
            for clients in LEVELS:
                results.append(run_level(bus.address, kind, users, clients, args.seconds, pid))
        backup = backup_code_checks(bus.address, spare, enrolled[spare]["backup_codes"])
        after = memory(pid)
        # Nothing went wrong on the way: the daemon is still serving and logged no error.
        log = daemon.log_text()
        figures = {
            "machine": {"cpus": os.cpu_count(), "kernel": os.uname().release},
            "enrollments": {"users": len(names), "seconds": enroll_seconds},
            "levels": results, "backup": backup,
            "memory": {"idle": idle, "after_enrollments": enrolled_memory, "after": after},
            "pinned_mmap_threshold": args.pin_mmap_threshold,
            "daemon_warnings": log.count("state-error") + log.count("nss-error"),
        }
    finally:
        if daemon is not None:
            if daemon.proc.poll() is not None:
                print(f"twofactord exited during the benchmark with {daemon.proc.returncode}; "
                      f"the end of its log:\n{daemon.log_text()[-2000:]}", file=sys.stderr)
            daemon.stop()
        bus.stop()
        remove_users(names)
        subprocess.run(["rm", "-rf", str(work)])
    names_of = {"ping": "Peer.Ping (bus + zbus only)", "loginplan": "LoginPlan",
                "verify": "Verify, wrong TOTP code"}
    print(f"twofactord benchmark: {os.cpu_count()} CPUs, {args.seconds} s per row, "
          f"clients are separate processes on the same machine"
          + (", MALLOC_MMAP_THRESHOLD_=131072" if args.pin_mmap_threshold else ""))
    print(f"{'call':32} {'clients':>7} {'calls/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'threads':>7} {'errors':>6}")
    for row in figures["levels"]:
        print(f"{names_of[row['kind']]:32} {row['clients']:7d} {row['per_second']:9.0f} "
              f"{row['p50_ms']:8.2f} {row['p99_ms']:8.2f} {row['daemon_threads_peak']:7d} "
              f"{row['errors']:6d}")
    print(f"backup code check (argon2id, median of Verify): wrong "
          f"{backup['wrong_backup_code_ms']:.1f} ms, right {backup['right_backup_code_ms']:.1f} ms")
    print(f"enrolling {len(names)} users (10 backup code hashes each): "
          f"{figures['enrollments']['seconds']:.1f} s")
    print(f"daemon memory: idle VmRSS {idle.get('VmRSS')}; after the enrollments VmRSS "
          f"{enrolled_memory.get('VmRSS')}, VmHWM {enrolled_memory.get('VmHWM')}; at the end "
          f"VmRSS {after.get('VmRSS')}, peak VmHWM {after.get('VmHWM')}, "
          f"threads {after.get('Threads')}")
    print(f"daemon state/NSS warnings in its log: {figures['daemon_warnings']}")
    print(f"total {time.perf_counter() - began:.1f} s")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
