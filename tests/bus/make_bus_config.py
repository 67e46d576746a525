"""A private, system-like D-Bus: this machine's real system.conf with our policy file.

Used by scripts/demo, tests/integration/test_package.py and (once switched)
tests/integration/conftest.py. Importable with the directory on sys.path:

    sys.path.insert(0, str(REPO / "tests" / "bus"))
    from make_bus_config import bus_config, PrivateBus

Or from a shell:  python3 tests/bus/make_bus_config.py SOCKET [--policy FILE]... > bus.conf

`bus_config(socket, extra_xml)` produces exactly what conftest.py's bus_config() produced;
`policy=` replaces our packaging/dbus policy file by others (e.g. the installed copy in
/usr/share/dbus-1/system.d).
"""
import os
import pathlib
import re
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
POLICY = REPO / "packaging" / "dbus" / "org.twofactor.Daemon1.conf"
SYSTEM_CONF = pathlib.Path("/usr/share/dbus-1/system.conf")

# What makes the system bus the host's: its user switch, fork, pidfile, activation, syslog and
# the host's policy directories. Everything else (auth EXTERNAL, default deny, limits) stays.
_DROP = [r"<user>.*?</user>", r"<fork\s*/>", r"<pidfile>.*?</pidfile>",
         r"<standard_system_servicedirs\s*/>", r"<servicehelper>.*?</servicehelper>",
         r"<syslog\s*/>", r"<includedir>.*?</includedir>", r"<include[^>]*>.*?</include>"]


def bus_config(socket, extra_xml="", policy=POLICY, system_conf=SYSTEM_CONF):
    """The system bus configuration, made private: our socket, no user switch, no fork,
    no pidfile, no activation, and `policy` (a path or a list of paths; default our
    packaging/dbus file) instead of the host's system.d."""
    text = pathlib.Path(system_conf).read_text()
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    for pattern in _DROP:
        text = re.sub(pattern, "", text, flags=re.S)
    text = re.sub(r"<listen>.*?</listen>", f"<listen>unix:path={socket}</listen>", text)
    if "<auth>EXTERNAL</auth>" not in text or "<type>system</type>" not in text:
        raise RuntimeError(f"{system_conf} is not a system bus configuration")
    policies = [policy] if isinstance(policy, (str, os.PathLike)) else list(policy)
    includes = "".join(f"<include>{path}</include>\n" for path in policies)
    return text.replace("</busconfig>", f"{includes}{extra_xml}\n</busconfig>")


class PrivateBus:
    """A dbus-daemon with bus_config() and its files in `directory`. `address` is what it printed
    (with its guid); `path_address` is `unix:path=...` alone, as module arguments want it.
    The directory is made 0755 and the socket 0777 so processes of other users can connect
    (the bus policy, not file modes, decides what they may do). `prefix` goes before the
    dbus-daemon command (e.g. nsenter into another mount namespace, where `policy` is read
    and `socket`, default `directory`/bus.sock, is made)."""

    def __init__(self, directory, policy=POLICY, extra_xml="", prefix=(), socket=None):
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)
        self.socket = pathlib.Path(socket) if socket else self.dir / "bus.sock"
        self.config = self.dir / "bus.conf"
        self.config.write_text(bus_config(self.socket, extra_xml, policy=policy))
        self.proc = subprocess.Popen(
            [*prefix, "dbus-daemon", f"--config-file={self.config}", "--nofork", "--nopidfile",
             "--print-address=1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True)
        line = self.proc.stdout.readline().strip()
        if not line:
            self.proc.wait(timeout=10)
            raise RuntimeError("dbus-daemon did not start: " + self.proc.stderr.read())
        self.address = line
        self.path_address = line.split(",guid=")[0]
        if prefix:
            subprocess.run([*prefix, "chmod", "0777", str(self.socket)], check=True)
        else:
            self.socket.chmod(0o777)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def main(argv):
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("socket", help="path of the bus socket to listen on")
    parser.add_argument("--policy", action="append",
                        help=f"a policy file to include (repeatable; default {POLICY})")
    args = parser.parse_args(argv)
    sys.stdout.write(bus_config(args.socket, policy=args.policy or POLICY))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
