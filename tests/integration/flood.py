#!/usr/bin/python3
"""A flood of twofactord calls from one caller, kept in flight continuously: the attacker of
tests/integration/test_flood.py and tests/bench/bench_flood.py, written once.

As a script (run by `Flood` below, as the attacker's uid through setpriv, or as root):

    flood.py ADDRESS KIND TARGET CONNECTIONS IN_FLIGHT [--size BYTES]

opens CONNECTIONS connections to the bus (as many as the bus allows: it refuses a uid more
than 256), sends IN_FLIGHT calls on each without waiting, and each time a reply or an error
comes back sends another, in one selector loop with non-blocking sockets (jeepney only does
the handshake and the parsing). Each call is serialised once and only its serial is patched,
so a 30 MB argument costs the client no copy per call. A connection the bus closes is opened
again. KIND is one of

    verify         Verify(TARGET, "1234567890", context): a 10-digit answer, which costs the
                   daemon a (dummy) argon2 hash when TARGET is not enrolled;
    plan           LoginPlan(TARGET, context);
    status-unread  Status(TARGET), written as fast as the socket takes them, replies never
                   read (the bus, not this client, bounds what is pending);
    root-verify    Verify(TARGET, "1234567890", su on pts/9, no remote host): what `su TARGET`
                   run by TARGET makes the PAM module send as root (run this kind as root);
    big            Verify(TARGET, "1" * --size, context) (default 30,000,000 bytes, under
                   dbus-daemon's 32 MiB max_message_size).

It prints `READY OPENED [REASON]` once the connections are open (REASON: why no more could
be), then a JSON line of cumulative counts every 0.2 s ({"open", "sent", "queued", "replies",
"errors": {name: n}, "closed", "reopened"}), and a last one when it gets SIGTERM.

Imports nothing but jeepney and the standard library: the attacker's uid runs it with
Debian's /usr/bin/python3.
"""
import collections
import itertools
import json
import os
import selectors
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

from jeepney import DBusAddress, HeaderFields, MessageType, new_method_call
from jeepney.io.blocking import open_dbus_connection

NAME = "org.twofactor.Daemon1"
OBJECT = DBusAddress("/org/twofactor/Daemon1", bus_name=NAME, interface=NAME)
PEER = DBusAddress("/org/twofactor/Daemon1", bus_name=NAME,
                   interface="org.freedesktop.DBus.Peer")
# (service, rhost, tty): the LoginContext struct.
CONTEXT = ("sshd", "192.0.2.66", "ssh")
SU_CONTEXT = ("su", "", "pts/9")
BACKUP_SHAPED = "1234567890"
BIG_SIZE = 30_000_000
KINDS = ("verify", "plan", "status-unread", "root-verify", "big")
BUSY = "org.twofactor.Error.Busy"
STATS_EVERY = 0.2
CONNECTIONS_PER_PROCESS = 64


def call_message(kind, target, size=BIG_SIZE):
    if kind == "verify":
        return new_method_call(OBJECT, "Verify", "ss(sss)", (target, BACKUP_SHAPED, CONTEXT))
    if kind == "plan":
        return new_method_call(OBJECT, "LoginPlan", "s(sss)", (target, CONTEXT))
    if kind == "status-unread":
        return new_method_call(OBJECT, "Status", "s", (target,))
    if kind == "root-verify":
        return new_method_call(OBJECT, "Verify", "ss(sss)", (target, BACKUP_SHAPED, SU_CONTEXT))
    if kind == "big":
        return new_method_call(OBJECT, "Verify", "ss(sss)", (target, "1" * size, CONTEXT))
    raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")


# ---------------------------------------------------------------------------------------------
# The client (script mode)


class _Conn:
    """One bus connection: jeepney's handshake, then our own non-blocking I/O. Its parser is
    jeepney's (it may hold bytes read after Hello, e.g. the NameAcquired signal)."""

    def __init__(self, address):
        self.dbus = open_dbus_connection(bus=address)
        self.sock = self.dbus.sock
        self.sock.setblocking(False)
        self.parser = self.dbus.parser
        self.serials = itertools.count(next(self.dbus.outgoing_serial))
        self.out = collections.deque()   # [memoryview, ends a call] still to write
        self.queued = 0                  # calls not yet completely written
        self.in_flight = 0
        self.events = 0

    def close(self):
        try:
            self.dbus.close()
        except OSError:
            pass


class Client:
    def __init__(self, address, kind, target, connections, in_flight, size):
        self.address = address
        self.kind = kind
        self.read = kind != "status-unread"
        self.in_flight = in_flight
        self.template = call_message(kind, target, size).serialise(serial=1)
        self.body = memoryview(self.template)[16:]
        self.wanted = connections
        self.stats = {"open": 0, "sent": 0, "queued": 0, "replies": 0, "errors": {},
                      "closed": 0, "reopened": 0}
        self.selector = selectors.DefaultSelector()
        self.conns = []
        self.refused = ""
        self.stop = False

    def open_all(self):
        for _ in range(self.wanted):
            try:
                conn = _Conn(self.address)
            except Exception as error:  # the bus's per-uid limit, most likely
                self.refused = f"{type(error).__name__}: {error}".replace("\n", " ")
                break
            self._add(conn)
        # Only connections the bus closes later are opened again, not those it refused.
        self.wanted = len(self.conns)
        return len(self.conns)

    def _add(self, conn):
        self.conns.append(conn)
        self.stats["open"] += 1
        self._fill(conn)
        self._register(conn, first=True)

    def _call(self, conn):
        header = bytearray(self.template[:16])
        struct.pack_into("<I", header, 8, next(conn.serials))
        conn.out.append([memoryview(header), False])
        conn.out.append([self.body, True])
        conn.queued += 1
        self.stats["sent"] += 1

    def _fill(self, conn):
        if self.read:
            while conn.in_flight < self.in_flight:
                self._call(conn)
                conn.in_flight += 1
        elif not conn.out:
            self._call(conn)

    def _register(self, conn, first=False):
        events = (selectors.EVENT_READ if self.read else 0) | \
            (selectors.EVENT_WRITE if conn.out else 0)
        if not events:
            events = selectors.EVENT_WRITE
        if first:
            self.selector.register(conn.sock, events, conn)
        elif events != conn.events:
            self.selector.modify(conn.sock, events, conn)
        conn.events = events

    def _flush(self, conn):
        while conn.out:
            entry = conn.out[0]
            try:
                sent = conn.sock.send(entry[0])
            except (BlockingIOError, InterruptedError):
                return True
            except OSError:
                return False
            if sent < len(entry[0]):
                entry[0] = entry[0][sent:]
                return True
            conn.out.popleft()
            if entry[1]:
                conn.queued -= 1
        return True

    def _receive(self, conn):
        try:
            data = conn.sock.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
        if not data:
            return False
        conn.parser.add_data(data)
        while True:
            message = conn.parser.get_next_message()
            if message is None:
                return True
            header = message.header
            if HeaderFields.reply_serial not in header.fields:
                continue  # a signal (NameAcquired)
            if header.message_type == MessageType.error:
                name = header.fields.get(HeaderFields.error_name, "?")
                self.stats["errors"][name] = self.stats["errors"].get(name, 0) + 1
            else:
                self.stats["replies"] += 1
            conn.in_flight -= 1

    def _drop(self, conn):
        self.selector.unregister(conn.sock)
        conn.close()
        self.conns.remove(conn)
        self.stats["open"] -= 1
        self.stats["closed"] += 1

    def _reopen(self):
        try:
            conn = _Conn(self.address)
        except Exception as error:
            self.refused = f"{type(error).__name__}: {error}".replace("\n", " ")
            return
        self.stats["reopened"] += 1
        self._add(conn)

    def report(self):
        self.stats["queued"] = sum(conn.queued for conn in self.conns)
        self.stats["refused"] = self.refused
        print(json.dumps(self.stats), flush=True)

    def run(self):
        next_report = 0.0
        next_reopen = 0.0
        while not self.stop:
            for key, events in self.selector.select(0.05):
                conn = key.data
                alive = True
                if events & selectors.EVENT_READ:
                    alive = self._receive(conn)
                if alive and events & selectors.EVENT_WRITE:
                    alive = self._flush(conn)
                if not alive:
                    self._drop(conn)
                    continue
                self._fill(conn)
                if conn.out and not events & selectors.EVENT_WRITE:
                    alive = self._flush(conn)  # usually all of it, without another select
                    if not alive:
                        self._drop(conn)
                        continue
                self._register(conn)
            now = time.monotonic()
            if len(self.conns) < self.wanted and now >= next_reopen:
                self._reopen()
                next_reopen = now + 0.01
            if now >= next_report:
                self.report()
                next_report = now + STATS_EVERY
        self.report()


def main(argv):
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("address")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("target", help="the user name the calls name")
    parser.add_argument("connections", type=int)
    parser.add_argument("in_flight", type=int)
    parser.add_argument("--size", type=int, default=BIG_SIZE, help="argument size for big")
    args = parser.parse_args(argv)
    client = Client(args.address, args.kind, args.target, args.connections, args.in_flight,
                    args.size)

    def stop(*_):
        client.stop = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    opened = client.open_all()
    print(f"READY {opened} {client.refused}".rstrip(), flush=True)
    if not opened:
        return 1
    client.run()
    # Exit at once: closing hundreds of sockets one by one is the kernel's job.
    sys.stdout.flush()
    os._exit(0)


# ---------------------------------------------------------------------------------------------
# The controller (imported by the tests and the benchmark, which run as root)


class Flood:
    """flood.py processes as `user` (a conftest.User, or None for root), CONNECTIONS split
    over ceil(CONNECTIONS / 64) processes, each keeping IN_FLIGHT calls on each connection.
    Waits for every process to be READY. `totals()` adds up their latest counts."""

    def __init__(self, address, kind, target, user=None, connections=16, in_flight=128,
                 size=BIG_SIZE, processes=None):
        from conftest import CLEAN_ENV, SYSTEM_PYTHON
        self.kind = kind
        processes = processes or max(1, -(-connections // CONNECTIONS_PER_PROCESS))
        shares = [connections // processes + (1 if i < connections % processes else 0)
                  for i in range(processes)]
        self.procs, self.latest, self.readers, self.ready = [], [], [], []
        self.lock = threading.Lock()
        try:
            for index, share in enumerate(shares):
                command = [SYSTEM_PYTHON, os.path.abspath(__file__), address, kind, target,
                           str(share), str(in_flight), "--size", str(size)]
                if user is not None:
                    command[0:0] = ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}",
                                    "--init-groups"]
                stderr = tempfile.TemporaryFile(mode="w+")
                proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr,
                                        stdin=subprocess.DEVNULL, text=True, env=CLEAN_ENV)
                proc.stderr_file = stderr
                self.procs.append(proc)
                self.latest.append(None)
            for index, proc in enumerate(self.procs):
                line = proc.stdout.readline().strip()
                if not line.startswith("READY "):
                    raise RuntimeError(f"flood process did not start: {line!r} "
                                       f"{self._stderr(proc)}")
                self.ready.append(line)
                reader = threading.Thread(target=self._read, args=(index, proc), daemon=True)
                reader.start()
                self.readers.append(reader)
        except BaseException:
            self.stop(signal.SIGKILL)
            raise
        # How many connections the bus let the processes open, and why not more.
        self.opened = sum(int(line.split()[1]) for line in self.ready)
        self.refused = [" ".join(line.split()[2:]) for line in self.ready
                        if len(line.split()) > 2]

    @staticmethod
    def _stderr(proc):
        proc.stderr_file.seek(0)
        return proc.stderr_file.read()[-2000:]

    def _read(self, index, proc):
        for line in proc.stdout:
            try:
                stats = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                self.latest[index] = stats

    def totals(self):
        """Counts over all processes: open, sent, queued, replies, closed, reopened, errors
        ({name: n}), answered (replies + errors), alive (processes still running)."""
        total = {"open": 0, "sent": 0, "queued": 0, "replies": 0, "closed": 0, "reopened": 0,
                 "errors": {}}
        with self.lock:
            latest = list(self.latest)
        for stats in latest:
            if not stats:
                continue
            for key in ("open", "sent", "queued", "replies", "closed", "reopened"):
                total[key] += stats.get(key, 0)
            for name, count in stats.get("errors", {}).items():
                total["errors"][name] = total["errors"].get(name, 0) + count
        total["answered"] = total["replies"] + sum(total["errors"].values())
        total["alive"] = sum(1 for proc in self.procs if proc.poll() is None)
        return total

    def wait_for(self, predicate, limit=60.0):
        """Polls totals() until predicate(totals) holds or `limit` seconds pass; returns the
        last totals (check the predicate again to know which)."""
        deadline = time.monotonic() + limit
        while True:
            total = self.totals()
            if predicate(total) or time.monotonic() >= deadline:
                return total
            time.sleep(0.05)

    def wait_until_flooding(self, limit=60.0):
        """Until every call of the first round is written and the daemon answered some."""
        return self.wait_for(lambda t: t["sent"] > 0 and t["queued"] == 0 and
                             t["answered"] > 0, limit)

    def stop(self, sig=signal.SIGTERM):
        """Ends the processes (SIGTERM: they report their last counts, then exit at once;
        SIGKILL: the counts of the last report stand). Returns totals()."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(sig)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for reader in self.readers:
            reader.join(timeout=10)
        for proc in self.procs:
            proc.stdout.close()
            proc.stderr_file.close()
        return self.totals()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if any(proc.poll() is None for proc in self.procs):
            self.stop(signal.SIGKILL)


# ---------------------------------------------------------------------------------------------
# The daemon seen from /proc


def proc_status(pid, field):
    """VmRSS, VmHWM, Threads, ... of a process (KiB for the Vm fields)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key == field:
                return int(value.split()[0])
    raise KeyError(field)


def cpu_ticks(pid):
    """utime + stime of a process, in clock ticks (os.sysconf('SC_CLK_TCK') a second)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def reset_peak(pid):
    """Starts VmHWM over from the current VmRSS (Linux: clear_refs 5)."""
    with open(f"/proc/{pid}/clear_refs", "w") as clear:
        clear.write("5")


def wait_until_idle(pid, quiet=1.0, limit=120.0, busy_ticks=None):
    """Polls until the process used at most `busy_ticks` (default: 2% of a CPU) of CPU time
    over `quiet` seconds. Returns the seconds waited, or None if it stayed busy for `limit`."""
    tick = os.sysconf("SC_CLK_TCK")
    allowed = busy_ticks if busy_ticks is not None else max(1, int(0.02 * tick * quiet))
    started = time.monotonic()
    while time.monotonic() - started < limit:
        before = cpu_ticks(pid)
        time.sleep(quiet)
        if cpu_ticks(pid) - before <= allowed:
            return time.monotonic() - started
    return None


class BusOutput:
    """Reads a conftest.Bus's dbus-daemon stderr in a thread. Under a flood dbus-daemon
    complains about every refused message there, and once the unread pipe is full it blocks
    in write(2) and the whole bus stops. Keeps a count and the last lines."""

    def __init__(self, bus, keep=20):
        self.lines = collections.deque(maxlen=keep)
        self.count = 0
        self.thread = threading.Thread(target=self._read, args=(bus.proc.stderr,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        try:
            for line in stream:
                self.count += 1
                self.lines.append(line.rstrip("\n"))
        except (OSError, ValueError):
            pass


def ping(address, timeout=30.0):
    """Peer.Ping to the daemon as root; returns the reply's type name ('method_return' or
    'error') or raises TimeoutError."""
    conn = open_dbus_connection(bus=address)
    try:
        reply = conn.send_and_get_reply(new_method_call(PEER, "Ping"), timeout=timeout)
        return reply.header.message_type.name
    finally:
        conn.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
