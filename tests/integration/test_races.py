"""Concurrency and crashes: one code raced from many connections, lost updates, and SIGKILL
in the middle of state changes."""
import collections
import json
import os
import pathlib
import random
import re
import shutil
import signal
import subprocess
import threading
import time
import tomllib

import pytest
from jeepney.io.blocking import open_dbus_connection

from conftest import REPO, CONTEXT, Session, binary, enroll, root_call, state_file, \
    wait_for_owner, wrong_code
from tfcall import call as jeepney_call

ACCEPTED, REJECTED, DELAYED, LOCKED = 0, 1, 2, 3
# The version the daemon writes, from its source.
RECORD_VERSION = int(re.search(r"^pub const RECORD_VERSION: u32 = (\d+);$",
                               (REPO / "daemon/src/record.rs").read_text(), re.M).group(1))
RACERS = 32
NO_DELAYS = """
[lockout]
max_failures = 100
free_failures = 100
base_delay_seconds = 0
"""


def race(address, method, args_for):
    """RACERS threads, each on its own connection opened beforehand, released at once."""
    connections = [open_dbus_connection(bus=address) for _ in range(RACERS)]
    barrier = threading.Barrier(RACERS)
    replies = [None] * RACERS

    def run(index):
        barrier.wait()
        replies[index] = jeepney_call(connections[index], method, args_for(index))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RACERS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        for conn in connections:
            conn.close()
    assert all(reply is not None for reply in replies), replies
    return replies


def outcomes(replies):
    assert all("ok" in reply for reply in replies), replies
    return collections.Counter(reply["ok"]["outcome"] for reply in replies)


def test_one_totp_code_raced_is_accepted_once(bus, users, make_daemon):
    make_daemon(NO_DELAYS)
    alice = users.add()
    enrolled = enroll(bus.address, alice)
    code = enrolled.code()
    replies = race(bus.address, "Verify", lambda i: [alice.name, code, CONTEXT])
    assert outcomes(replies) == {ACCEPTED: 1, REJECTED: RACERS - 1}

    # The same through the user's own connections (separate processes, as the user).
    code = enrolled.code()
    sessions = [Session(bus.address, alice) for _ in range(8)]
    try:
        for s in sessions:
            s.unique_name()  # connected and ready
        request = '{"method": "Verify", "args": %s}\n' % (
            json.dumps([alice.name, code, CONTEXT]))
        for s in sessions:
            s.proc.stdin.write(request)
        for s in sessions:
            s.proc.stdin.flush()
        answers = [json.loads(s.proc.stdout.readline()) for s in sessions]
    finally:
        for s in sessions:
            s.close()
    assert outcomes(answers) == {ACCEPTED: 1, REJECTED: 7}, answers


def test_one_backup_code_raced_in_several_spellings_is_accepted_once(bus, users, make_daemon):
    make_daemon(NO_DELAYS)
    alice = users.add()
    enrolled = enroll(bus.address, alice)
    code = enrolled.backup_codes[3]
    digits = code.replace("-", "")
    spellings = [code, digits, f"{digits[:5]} {digits[5:]}", f" {code} "]
    replies = race(bus.address, "Verify",
                   lambda i: [alice.name, spellings[i % len(spellings)], CONTEXT])
    assert outcomes(replies) == {ACCEPTED: 1, REJECTED: RACERS - 1}
    winner = next(r["ok"] for r in replies if r["ok"]["outcome"] == ACCEPTED)
    assert winner["backup_code_used"] is True and winner["backup_codes_left"] == 9
    assert root_call(bus.address, "Status", alice.name)["ok"]["backup_codes_left"] == 9
    # The others were not spent in the crowd.
    assert root_call(bus.address, "Verify", alice.name, enrolled.backup_codes[4],
                     CONTEXT)["ok"]["outcome"] == ACCEPTED


def test_concurrent_failures_are_all_counted(bus, users, make_daemon):
    """Read-modify-write of the failure counter under concurrency: no lost update."""
    make_daemon(NO_DELAYS)
    alice = users.add()
    enrolled = enroll(bus.address, alice)
    wrong = wrong_code(enrolled.secret)
    replies = race(bus.address, "Verify", lambda i: [alice.name, wrong, CONTEXT])
    assert outcomes(replies) == {REJECTED: RACERS}
    status = root_call(bus.address, "Status", alice.name)["ok"]
    assert status["failures_since_success"] == RACERS, status


def test_concurrent_failures_stop_exactly_at_lockout(bus, users, make_daemon):
    make_daemon("[lockout]\nmax_failures = 3\nfree_failures = 3\nbase_delay_seconds = 0\n")
    alice = users.add()
    enrolled = enroll(bus.address, alice)
    wrong = wrong_code(enrolled.secret)
    replies = race(bus.address, "Verify", lambda i: [alice.name, wrong, CONTEXT])
    assert outcomes(replies) == {REJECTED: 3, LOCKED: RACERS - 3}
    status = root_call(bus.address, "Status", alice.name)["ok"]
    assert status["locked"] and status["failures_since_success"] == 3, status


def check_record(text, original):
    """The file is a whole record: it parses and every part is there and well formed."""
    record = tomllib.loads(text)
    assert record["version"] == RECORD_VERSION
    totp, original_totp = record["enrollment"]["totp"], original["enrollment"]["totp"]
    assert totp == {**original_totp, "last_step": totp["last_step"]}
    backup_codes = record["enrollment"]["backup_codes"]
    hashes = backup_codes["hashes"]
    assert len(hashes) == 10 and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes)
    assert re.fullmatch(r"[0-9a-f]{32}", backup_codes["salt"])
    assert set(record["attempts"]) == {"consecutive_failures", "last_failure", "locked",
                                       "failures_since_success", "locked_until", "last_lock",
                                       "locks", "sources"}
    return record


def test_sigkill_during_state_changes_never_tears_the_record(bus, users, make_daemon):
    """SIGKILL at random instants while clients keep changing the user's state (failed codes,
    unlocks, new backup codes). After every kill the record must be whole: the old or a new
    version, never a mix or a prefix; and no temp file may keep the daemon from starting."""
    daemon = make_daemon(NO_DELAYS)
    alice = users.add()
    enrolled = enroll(bus.address, alice)
    path = state_file(daemon, alice.name)
    users_dir = path.parent
    original = check_record(path.read_text(), tomllib.loads(path.read_text()))
    wrong = wrong_code(enrolled.secret)
    stop = threading.Event()
    done = collections.Counter()
    address = bus.address

    def client(kind, seed):
        rng = random.Random(seed)
        calls = 0
        while not stop.is_set():
            try:
                conn = open_dbus_connection(bus=address)
            except Exception:
                time.sleep(0.005)
                continue
            try:
                while not stop.is_set():
                    calls += 1
                    if kind == "regenerate":
                        # 10 argon2 hashes under the user's lock: not back to back, or the
                        # failure counting clients would only ever wait for it.
                        time.sleep(rng.uniform(0, 0.15))
                        reply = jeepney_call(conn, "RegenerateBackupCodes", [alice.name, ""])
                    elif calls % 40 == 0:
                        reply = jeepney_call(conn, "UnlockUser", [alice.name])
                    else:
                        reply = jeepney_call(conn, "Verify", [alice.name, wrong, CONTEXT])
                    if "ok" in reply:
                        done[kind] += 1
                    else:  # the daemon is down, or went down during the call
                        done[reply.get("error", "?").rsplit(".", 1)[-1]] += 1
                        time.sleep(0.002)
            except Exception:
                done["broken connection"] += 1
            finally:
                conn.close()

    threads = [threading.Thread(target=client, args=(kind, seed), daemon=True)
               for seed, kind in enumerate(("verify", "verify", "regenerate"))]
    for thread in threads:
        thread.start()
    kills, changed, temp_left = 20, 0, 0
    rng = random.Random(20240601)
    last = path.read_bytes()
    try:
        # At least `kills`, and on until a regeneration (10 argon2 hashes under the user's
        # lock, easily cut short by the next kill on 2 busy cores) has completed between two
        # of them: after the first `kills`, with longer pauses that leave it time.
        kill = -1
        while kill < kills - 1 or (done["regenerate"] == 0 and kill < 3 * kills):
            kill += 1
            time.sleep(rng.uniform(0.01, 0.2) if kill < kills else rng.uniform(0.3, 0.8))
            daemon.stop(signal.SIGKILL)
            text = path.read_bytes()  # it must exist: rename replaces, never removes
            try:
                check_record(text.decode(), original)
            except Exception as error:
                raise AssertionError(f"kill {kill}: torn record: {error!r}\n{text!r}")
            changed += text != last
            last = text
            temp_left += any(p.name.startswith(".tmp") for p in users_dir.iterdir())
            assert [p.name for p in users_dir.iterdir() if not p.name.startswith(".tmp")] \
                == [path.name]
            if kill == kills // 2:
                (users_dir / ".tmpPLANTED").write_text("half a record\n[totp\n")
                (users_dir / ".tmpPLANTED").chmod(0o600)
            daemon.start()
            # A stale temp file never stops the daemon and is removed at start (the clients'
            # own writes make new ones meanwhile, so only the planted one can be checked).
            assert not (users_dir / ".tmpPLANTED").exists()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    kills = kill + 1
    print(f"\n{kills} kills: the record changed between kills {changed} times, a temp file "
          f"was left {temp_left} times; calls {dict(done)}")
    assert done["verify"] > kills and done["regenerate"] > 0, done
    assert changed > kills // 2, "the kills did not land among writes"
    # After the storm: the daemon starts clean and the user is whole and usable.
    daemon.restart()
    assert [p.name for p in users_dir.iterdir()] == [path.name]
    status = root_call(bus.address, "Status", alice.name)["ok"]
    assert status["problem"] == "" and status["enrolled"], status
    root_call(bus.address, "UnlockUser", alice.name)
    assert root_call(bus.address, "Verify", alice.name, enrolled.code(),
                     CONTEXT)["ok"]["outcome"] == ACCEPTED
    fresh = root_call(bus.address, "RegenerateBackupCodes", alice.name, "")["ok"]
    assert root_call(bus.address, "Verify", alice.name, fresh[0],
                     CONTEXT)["ok"]["outcome"] == ACCEPTED


def children(pid):
    found = []
    for task in pathlib.Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def run_until_injected_kill(bus, daemon, syscall, when, action, kill=True):
    """Run the daemon under strace, which fails the `when`-th `syscall` of a thread with EIO
    (the syscall itself is not executed) and, if `kill`, SIGKILLs it there; then do `action`;
    returns what the call got."""
    fault = f"inject={syscall}:error=EIO:when={when}" + (":signal=KILL" if kill else "")
    command = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", f"trace={syscall}",
               "-e", fault,
               binary("twofactord"), "--bus-address", bus.address,
               "--state-dir", str(daemon.state), "--config", str(daemon.config)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_owner(bus.address, proc)
        reply = action()
        if not kill:
            for child in children(proc.pid):
                os.kill(child, signal.SIGTERM)
        proc.wait(timeout=20)
        return reply
    finally:
        if proc.poll() is None:  # never leave a traced daemon behind
            for child in children(proc.pid):
                os.kill(child, signal.SIGKILL)
            proc.kill()
            proc.wait()


# A save is: create .tmpXXXX, write, fsync(temp), renameat(temp, record), fsync(directory).
CRASH_POINTS = [("fsync", 1, "old"), ("renameat", 1, "old"), ("fsync", 2, "new")]


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
@pytest.mark.parametrize("syscall,when,version", CRASH_POINTS,
                         ids=["before-fsync-of-temp", "before-rename", "before-fsync-of-dir"])
def test_crash_at_each_step_of_a_save(bus, users, make_daemon, syscall, when, version):
    """Deterministic crashes at each step of saving an accepted code: before the rename the
    old record is intact (and the code, never answered, is still good); after it the new one
    is (and the code is spent, though no login got Accepted). Either way the daemon restarts
    past the temp file."""
    daemon = make_daemon(NO_DELAYS)
    alice = users.add()
    enrolled = enroll(bus.address, alice)
    path = state_file(daemon, alice.name)
    old = path.read_bytes()
    daemon.stop()
    code = enrolled.code()
    reply = run_until_injected_kill(
        bus, daemon, syscall, when,
        lambda: root_call(bus.address, "Verify", alice.name, code, CONTEXT))
    assert reply.get("error") == "org.freedesktop.DBus.Error.NoReply", reply
    now = path.read_bytes()
    record = check_record(now.decode(), tomllib.loads(old.decode()))
    temps = [p for p in path.parent.iterdir() if p.name.startswith(".tmp")]
    if version == "old":
        assert now == old
        assert len(temps) == 1 and tomllib.loads(temps[0].read_text())  # written, not renamed
    else:
        assert now != old and record["enrollment"]["totp"]["last_step"] == enrolled.step
        assert temps == []
    daemon.start()
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    again = root_call(bus.address, "Verify", alice.name, code, CONTEXT)["ok"]["outcome"]
    assert again == (ACCEPTED if version == "old" else REJECTED)


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_crash_before_rename_keeps_the_old_backup_codes(bus, users, make_daemon):
    daemon = make_daemon(NO_DELAYS)
    alice = users.add()
    enrolled = enroll(bus.address, alice)
    daemon.stop()
    reply = run_until_injected_kill(
        bus, daemon, "renameat", 1,
        lambda: root_call(bus.address, "RegenerateBackupCodes", alice.name, ""))
    assert reply.get("error") == "org.freedesktop.DBus.Error.NoReply", reply
    daemon.start()
    assert root_call(bus.address, "Verify", alice.name, enrolled.backup_codes[0],
                     CONTEXT)["ok"]["outcome"] == ACCEPTED


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_a_reset_that_cannot_be_written_leaves_the_enrollment(bus, users, make_daemon):
    """A failed rename must not turn into "no record": a required user would get a fresh
    grace period and log in without a code."""
    required = "[policy]\ndefault = \"required\"\n" + NO_DELAYS
    daemon = make_daemon(required)
    alice = users.add()
    enrolled = enroll(bus.address, alice)
    path = state_file(daemon, alice.name)
    old = path.read_bytes()
    daemon.stop()
    reply = run_until_injected_kill(
        bus, daemon, "renameat", 1,
        lambda: root_call(bus.address, "ResetUser", alice.name), kill=False)
    assert reply.get("error") == "org.twofactor.Error.Internal", reply
    assert path.read_bytes() == old
    daemon.start()
    plan = root_call(bus.address, "LoginPlan", alice.name, CONTEXT)["ok"]
    assert plan["action"] == 1, plan  # still asked for a code
    assert root_call(bus.address, "Verify", alice.name, enrolled.code(),
                     CONTEXT)["ok"]["outcome"] == ACCEPTED
