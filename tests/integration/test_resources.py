"""The daemon's memory: argon2id (19 MiB per hash, for every backup code made or checked)
must not leave the daemon holding that memory once the work is done."""
import threading

import pytest
from jeepney.io.blocking import open_dbus_connection

import tfcall

ENROLLERS = 8  # concurrent enrollments: 10 argon2 hashes each, so at most 8 live at once
USERS = 8
IDLE_LIMIT_KIB = 64 * 1024  # the idle daemon is ~6 MiB; one argon2 buffer is ~19 MiB
NO_DELAYS = "[lockout]\nmax_failures = 100\nfree_failures = 100\nbase_delay_seconds = 0\n"


def enroll_concurrently(address, names):
    errors = []

    def work(chunk):
        conn = open_dbus_connection(bus=address)
        try:
            for name in chunk:
                result = tfcall.enroll(conn, name)
                if "ok" not in result:
                    errors.append(result)
        finally:
            conn.close()

    threads = [threading.Thread(target=work, args=(names[i::ENROLLERS],))
               for i in range(ENROLLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []


def run(bus, users, make_daemon, env=None):
    daemon = make_daemon(NO_DELAYS, env=env)
    idle = daemon.memory_kib("VmRSS")
    assert idle < 32 * 1024, idle
    names = [users.add().name for _ in range(USERS)]
    enroll_concurrently(bus.address, names)
    # All calls have returned: nothing is in flight, so the memory still held is kept memory.
    return idle, daemon.memory_kib("VmRSS"), daemon.memory_kib("VmHWM")


def test_argon2_memory_is_given_back_with_a_fixed_mmap_threshold(bus, users, make_daemon):
    """Control for the test below, and the diagnosis: with glibc's mmap threshold pinned, each
    argon2 buffer is its own mapping, returned to the system when the hash is done."""
    idle, after, peak = run(bus, users, make_daemon, env={"MALLOC_MMAP_THRESHOLD_": "131072"})
    print(f"\npinned mmap threshold: idle {idle} KiB, after {after} KiB, peak {peak} KiB")
    assert after < IDLE_LIMIT_KIB, (idle, after, peak)
    # The peak is the true working set: at most one 19 MiB buffer per concurrent hash.
    assert peak < (ENROLLERS + 2) * 20 * 1024, peak


# Fixed: the daemon reuses a pool of at most one argon2 work area per CPU (backup.rs
# WorkAreas), so memory stays bounded after a burst of enrollments.
def test_argon2_memory_is_given_back(bus, users, make_daemon):
    idle, after, peak = run(bus, users, make_daemon)
    print(f"\ndefault malloc: idle {idle} KiB, after {after} KiB, peak {peak} KiB")
    assert after < IDLE_LIMIT_KIB, (idle, after, peak)
