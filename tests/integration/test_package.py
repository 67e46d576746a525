"""The Debian package (scripts/build-deb): install, inspect, log in through it, purge.

Skipped unless TWOFACTOR_DEB names the built .deb (scripts/test sets it).

Everything happens in a sandbox that is the real system seen through a private mount
namespace: /usr and /var are overlays and /etc a copy (writes go to a tmpfs and vanish with
the namespace), and /run/dbus (the sandbox's own system bus socket goes there) and /run/systemd
are empty tmpfs (the maintainer scripts see a machine without systemd, like this one).
Inside it the package is installed with the real dpkg, the real maintainer scripts run
(groupadd, pam-auth-update), the real libpam loads the installed module from its module
directory, and the installed twofactord serves a private dbus-daemon whose configuration is the
system bus's plus the installed policy file. The host's /etc, dpkg database, groups and
processes are never changed, which the last test checks; nothing needs restoring.
"""
import base64
import json
import os
import pathlib
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import REPO, oathtool

sys.path.insert(0, str(REPO / "tests" / "bus"))
from make_bus_config import PrivateBus  # noqa: E402

DEB = os.environ.get("TWOFACTOR_DEB")
pytestmark = [
    pytest.mark.skipif(not DEB, reason="TWOFACTOR_DEB is not set: scripts/test builds the "
                                        "package with scripts/build-deb and sets it"),
    pytest.mark.skipif(os.geteuid() != 0, reason="installs a package: needs root"),
]

NAME = "org.twofactor.Daemon1"
INSTALLED_POLICY = "/usr/share/dbus-1/system.d/org.twofactor.Daemon1.conf"
SYSTEM_SOCKET = "/run/dbus/system_bus_socket"
SUCCESS = "pamtester: successfully authenticated"
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8",
       "DEBIAN_FRONTEND": "noninteractive", "HOME": "/root"}
# What the package would change on the host. (The group and package databases as a whole are
# compared by entry only: other suites on the same machine may add users or packages.)
HOST_WATCH = ["/etc/pam.d", "/etc/pam.d/common-auth", "/etc/pam.d/common-account",
              "/etc/pam.d/common-password", "/etc/pam.d/common-session",
              "/etc/pam.d/common-session-noninteractive", "/var/lib/pam/seen",
              "/usr/sbin/twofactord", "/usr/bin/twofactor", "/etc/twofactor",
              "/var/lib/twofactor", INSTALLED_POLICY, "/usr/share/pam-configs/twofactor",
              "/lib/systemd/system/twofactord.service", "/run/dbus"]

MOUNT = r"""
set -e
top=$1
unsupported() { echo "unsupported: $*"; exit 3; }
mount -t tmpfs -o mode=0755 tf-pkg "$top" || unsupported "mount -t tmpfs"
for d in usr var; do
    mkdir -p "$top/upper/$d" "$top/work/$d"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$top/upper/$d,workdir=$top/work/$d" "/$d" ||
        unsupported "mount -t overlay"
done
# /etc is a copy, not an overlay of the live one: shadow's lock files (/etc/*.lock, which
# name a live PID while another program on the host edits the user database) stay out.
# (tar, not cp: a lock file may vanish while it is read.)
(cd / && tar --create --file=- --exclude='etc/*.lock' --warning=no-file-removed \
     --warning=no-file-changed etc) | tar --directory="$top" --extract --file=-
mount --bind "$top/etc" /etc
mkdir -p /run/dbus
mount -t tmpfs -o mode=0755 tf-pkg-run /run/dbus
# The maintainer scripts must not reach a systemd of the host: they take the branch for
# machines without one (the daemon is then stopped by start-stop-daemon, as tested).
if [ -d /run/systemd ]; then mount -t tmpfs -o mode=0755 tf-pkg-systemd /run/systemd; fi
echo ready
exec sleep 3600
"""

# RequestName as whoever runs it; prints the reply code or the error name.
REQUEST_NAME = r"""
import sys
from jeepney import MessageType, HeaderFields
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection
conn = open_dbus_connection(bus=sys.argv[1])
reply = conn.send_and_get_reply(message_bus.RequestName(sys.argv[2]))
if reply.header.message_type == MessageType.error:
    print(reply.header.fields[HeaderFields.error_name])
else:
    print(reply.body[0])
"""

STAT = r"""
import json, os, sys
out = {}
for path in sys.argv[1:]:
    try:
        st = os.lstat(path)
        out[path] = {"mode": st.st_mode & 0o7777, "uid": st.st_uid, "gid": st.st_gid,
                     "dir": os.path.isdir(path), "link": os.path.islink(path),
                     "real": os.path.realpath(path)}
    except FileNotFoundError:
        out[path] = None
print(json.dumps(out))
"""


def fingerprint(path):
    """What a host path looks like: absent, or its mode and content."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if os.path.isdir(path):
        return ("dir", st.st_mode, sorted(os.listdir(path)))
    return ("file", st.st_mode, st.st_size, pathlib.Path(path).read_bytes())


class Sandbox:
    """This system behind a private mount namespace: /usr, /var overlaid, /etc copied."""

    def __init__(self):
        self.top = tempfile.mkdtemp(prefix="tf-pkg-")
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", MOUNT, "sh",
             self.top], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
            start_new_session=True)
        line = self.holder.stdout.readline().strip()
        if line != "ready":
            self.holder.wait(timeout=10)
            errors = self.holder.stderr.read().strip()
            os.rmdir(self.top)
            if line.startswith("unsupported") or "unshare failed" in errors:
                pytest.skip(f"no sandbox here (unshare -m, tmpfs, overlayfs): {line} {errors}")
            pytest.fail(f"the sandbox failed: {line} {errors}")
        self.pid = self.holder.pid
        self.namespace = os.readlink(f"/proc/{self.pid}/ns/mnt")
        self.procs = []
        self.work = pathlib.Path(tempfile.mkdtemp(prefix="tf-pkg-work-"))
        self.work.chmod(0o755)

    def cmd(self, argv):
        return ["nsenter", f"--target={self.pid}", "--mount", "--", *argv]

    def run(self, argv, input=None, check=True, timeout=60, env=None):
        done = subprocess.run(self.cmd(argv), input=input, capture_output=True, text=True,
                              timeout=timeout, env=env or ENV, cwd="/")
        if check and done.returncode != 0:
            raise AssertionError(f"{argv} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done

    def popen(self, argv, **kwargs):
        proc = subprocess.Popen(self.cmd(argv), env=ENV, cwd="/", start_new_session=True,
                                **kwargs)
        self.procs.append(proc)
        return proc

    def read(self, path):
        return self.run(["cat", path]).stdout

    def stat(self, *paths):
        return json.loads(self.run(["/usr/bin/python3", "-c", STAT, *paths]).stdout)

    def bus(self, name, socket=None):
        bus = PrivateBus(self.work / name, policy=INSTALLED_POLICY, prefix=self.cmd([]),
                         socket=socket)
        self.procs.append(bus.proc)
        return bus

    def members(self):
        """Processes in the sandbox's mount namespace, other than its holder."""
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if int(pid) != self.pid and os.readlink(f"/proc/{pid}/ns/mnt") == self.namespace:
                    found.append(int(pid))
            except OSError:
                pass
        return found

    def close(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
        for pid in self.members():
            os.kill(pid, signal.SIGKILL)
        self.holder.kill()
        self.holder.wait(timeout=10)
        os.rmdir(self.top)                    # the tmpfs went with the namespace
        shutil.rmtree(self.work, ignore_errors=True)


class Installed:
    def __init__(self, sandbox, seconds, files):
        self.sandbox, self.seconds, self.files = sandbox, seconds, files


def host_group():
    return subprocess.run(["getent", "group", "twofactor-admin"], capture_output=True,
                          text=True).stdout


def host_status():
    return subprocess.run(["dpkg-query", "-W", "-f=${Status} ${Version}", "twofactor"],
                          capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def host_before():
    return {path: fingerprint(path) for path in HOST_WATCH}


@pytest.fixture(scope="module")
def pkg(host_before):
    group, status = host_group(), host_status()
    sandbox = Sandbox()
    try:
        started = time.monotonic()
        done = sandbox.run(["dpkg", "-i", DEB], timeout=120, check=False)
        if done.returncode != 0 and "dependency problems" in done.stdout + done.stderr:
            # A dependency is not installed on this machine: apt fetches it (into the sandbox).
            sandbox.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "-f"],
                        timeout=300)
        elif done.returncode != 0:
            raise AssertionError(f"dpkg -i failed:\n{done.stdout}{done.stderr}")
        seconds = time.monotonic() - started
        files = sandbox.run(["dpkg-query", "-L", "twofactor"]).stdout.split("\n")
        print(f"\ndpkg -i: {seconds:.1f} s; {os.path.getsize(DEB)} bytes")
        installed = Installed(sandbox, seconds, [f for f in files if f])
        installed.host_group, installed.host_status = group, status
        yield installed
    finally:
        sandbox.close()


def deb_field(name):
    return subprocess.run(["dpkg-deb", "-f", DEB, name], capture_output=True, text=True,
                          check=True).stdout.strip()


def add_user(sandbox, password=None):
    name = "tfpkg" + secrets.token_hex(3)
    sandbox.run(["useradd", "--no-create-home", "--shell", "/bin/sh", name])
    if password:
        sandbox.run(["chpasswd"], input=f"{name}:{password}\n")
    uid = int(sandbox.run(["id", "-u", name]).stdout)
    gid = int(sandbox.run(["id", "-g", name]).stdout)
    return name, uid, gid


def pam_service(sandbox, text):
    name = "tf-pkg-" + secrets.token_hex(4)
    path = sandbox.work / name
    path.write_text(text)
    sandbox.run(["install", "-m", "0644", str(path), f"/etc/pam.d/{name}"])
    return name


def pamtester(sandbox, service, user, answers):
    """pamtester's exit status and its output (stdout and stderr in order) as `.output`."""
    done = subprocess.run(sandbox.cmd(["pamtester", "-v", service, user, "authenticate"]),
                          input="".join(a + "\n" for a in answers), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=30, env=ENV, cwd="/")
    done.output = done.stdout
    return done


def start_daemon(sandbox, bus, *args):
    log = open(sandbox.work / f"twofactord-{secrets.token_hex(2)}.log", "w")
    proc = sandbox.popen(["/usr/sbin/twofactord", *args], stdout=log, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    log.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"twofactord exited: {pathlib.Path(log.name).read_text()}"
        owner = subprocess.run(sandbox.cmd(
            ["dbus-send", f"--bus={bus.address}", "--print-reply", "--dest=org.freedesktop.DBus",
             "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", f"string:{NAME}"]),
            capture_output=True, text=True)
        if "boolean true" in owner.stdout:
            return proc
        time.sleep(0.02)
    raise AssertionError("twofactord did not take its name")


def enroll(sandbox, user, as_uid=None, bus_env=None):
    """`twofactor enroll --json` with the installed CLI: by root for `user`, or by the user
    itself (as_uid=(uid, gid)). Returns (secret, step used)."""
    argv = ["/usr/bin/twofactor", "enroll", "--json"]
    if as_uid is None:
        argv += ["--user", user]
    else:
        argv = ["setpriv", f"--reuid={as_uid[0]}", f"--regid={as_uid[1]}", "--init-groups",
                *argv]
    proc = subprocess.Popen(sandbox.cmd(["env", *(bus_env or []), *argv]),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, cwd="/")
    offer = json.loads(proc.stdout.readline())
    step = int(time.time()) // 30
    proc.stdin.write(oathtool(offer["secret"], at=step * 30) + "\n")
    proc.stdin.close()
    codes = json.loads(proc.stdout.read())
    assert proc.wait(timeout=30) == 0, proc.stderr.read()
    assert len(codes["backup_codes"]) == 10
    return offer["secret"], step


def wrong_code(secret):
    """A well-formed code that is none of the codes near now."""
    near = {oathtool(secret, at=time.time() + k * 30) for k in range(-3, 4)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in near)


def next_code(secret, step):
    """The code of a step after `step` (a code works once) that is not behind now, so it is
    inside the daemon's ±1 window."""
    return oathtool(secret, at=max(step + 1, int(time.time()) // 30) * 30)


# --- the package itself ----------------------------------------------------------------------

def test_control_fields_and_dependencies_are_satisfiable(pkg):
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert deb_field("Package") == "twofactor"
    assert deb_field("Architecture") == arch
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", deb_field("Version"))
    assert os.path.basename(DEB) == f"twofactor_{deb_field('Version')}_{arch}.deb"
    # Each dependency has an alternative that is installed or that apt can install.
    for clause in deb_field("Depends").split(","):
        alternatives = [re.match(r"\s*([^\s(]+)", alt).group(1) for alt in clause.split("|")]
        usable = []
        for name in alternatives:
            status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", name],
                                    capture_output=True, text=True).stdout
            policy = subprocess.run(["apt-cache", "policy", name], capture_output=True,
                                    text=True).stdout
            if "install ok installed" in status or re.search(r"Candidate: (?!\(none\))", policy):
                usable.append(name)
        assert usable, f"no alternative of {clause.strip()!r} is installed or installable"
    # The generated completion script needs bash-completion's helpers (_init_completion).
    recommends = [alt.strip() for clause in deb_field("Recommends").split(",")
                  for alt in clause.split("|")]
    assert "bash-completion" in recommends, deb_field("Recommends")
    # apt's own resolver agrees (against the installed packages and its lists).
    simulated = pkg.sandbox.run(["apt-get", "install", "--simulate", "-q", DEB], check=False)
    assert simulated.returncode == 0, simulated.stdout + simulated.stderr
    status = pkg.sandbox.run(["dpkg-query", "-W", "-f=${Status} ${Version}", "twofactor"])
    assert status.stdout == f"install ok installed {deb_field('Version')}"


def test_files_owners_and_modes(pkg):
    sb = pkg.sandbox
    pam_unix = sb.run(["sh", "-c", "dpkg-query -L libpam-modules | grep '/pam_unix.so$'"]).stdout
    module_dir = os.path.dirname(pam_unix.strip())
    expected = {
        "/usr/sbin/twofactord": 0o755,
        "/usr/bin/twofactor": 0o755,
        f"{module_dir}/pam_twofactor.so": 0o644,
        INSTALLED_POLICY: 0o644,
        "/usr/share/dbus-1/system-services/org.twofactor.Daemon1.service": 0o644,
        "/lib/systemd/system/twofactord.service": 0o644,
        "/usr/share/pam-configs/twofactor": 0o644,
        "/usr/share/man/man1/twofactor.1.gz": 0o644,
        "/usr/share/man/man8/twofactord.8.gz": 0o644,
        "/usr/share/man/man8/pam_twofactor.8.gz": 0o644,
        "/usr/share/man/man5/twofactor.toml.5.gz": 0o644,
        "/usr/share/bash-completion/completions/twofactor": 0o644,
        "/usr/share/zsh/vendor-completions/_twofactor": 0o644,
        "/usr/share/fish/vendor_completions.d/twofactor.fish": 0o644,
        "/etc/twofactor/twofactor.toml": 0o644,
        "/usr/share/doc/twofactor/copyright": 0o644,
    }
    found = sb.stat(*expected, *pkg.files)
    for path, mode in expected.items():
        info = found[path]
        assert info is not None, f"{path} is not installed"
        assert path in pkg.files or info["real"] in pkg.files, f"{path} is not the package's"
        assert (info["mode"], info["uid"], info["gid"]) == (mode, 0, 0), (path, info)
    # The module sits next to pam_unix.so, where libpam looks for bare module names.
    assert found[f"{module_dir}/pam_twofactor.so"]["real"] == os.path.join(
        os.path.realpath(module_dir), "pam_twofactor.so")
    # Nothing the package ships is owned by anyone but root or writable by others.
    for path in pkg.files:
        info = found[path]
        assert info is not None, f"dpkg lists {path} but it is missing"
        assert (info["uid"], info["gid"]) == (0, 0), (path, info)
        assert info["mode"] & 0o022 == 0 or info["link"], (path, oct(info["mode"]))
        assert info["mode"] & 0o6000 == 0, f"{path} is setuid/setgid"
    assert sb.run(["dpkg", "--verify", "twofactor"]).stdout == ""
    conffiles = sb.run(["dpkg-query", "-W", "-f=${Conffiles}", "twofactor"]).stdout
    assert conffiles.split()[0] == "/etc/twofactor/twofactor.toml", conffiles
    # The activation file starts the installed daemon, as root, or hands over to systemd.
    activation = sb.read("/usr/share/dbus-1/system-services/org.twofactor.Daemon1.service")
    assert f"Name={NAME}" in activation and "Exec=/usr/sbin/twofactord" in activation
    assert "User=root" in activation and "SystemdService=twofactord.service" in activation


def test_recipes_are_installed_as_shipped(pkg):
    """Every file of packaging/recipes/ under /usr/share/twofactor/recipes/, root's, 0644, the
    same bytes; nothing else there."""
    sb = pkg.sandbox
    sources = REPO / "packaging" / "recipes"
    shipped = sorted(str(p.relative_to(sources)) for p in sources.rglob("*") if p.is_file())
    assert len(shipped) == 8, shipped
    installed_root = "/usr/share/twofactor/recipes"
    listed = sb.run(["find", installed_root, "-type", "f", "-printf", "%P\\n"]).stdout.split()
    assert sorted(listed) == shipped
    paths = [f"{installed_root}/{name}" for name in shipped]
    found = sb.stat(*paths)
    for name, path in zip(shipped, paths):
        assert path in pkg.files, f"{path} is not the package's"
        info = found[path]
        assert (info["mode"], info["uid"], info["gid"]) == (0o644, 0, 0), (path, info)
        installed = sb.run(["base64", "-w0", path]).stdout
        assert base64.b64decode(installed) == (sources / name).read_bytes(), path


def test_state_directory_admin_group_and_configuration(pkg):
    sb = pkg.sandbox
    info = sb.stat("/var/lib/twofactor")["/var/lib/twofactor"]
    assert info and info["dir"] and (info["mode"], info["uid"], info["gid"]) == (0o700, 0, 0)
    group = sb.run(["getent", "group", "twofactor-admin"]).stdout.split(":")
    assert int(group[2]) < 1000, "a system group"
    assert sb.run(["/usr/sbin/twofactord", "--check-config"]).returncode == 0
    version = deb_field("Version")
    assert version in sb.run(["/usr/bin/twofactor", "--version"]).stdout
    # Enabled for systemd (deb-systemd-helper makes the link even where systemd is not running).
    wants = "/etc/systemd/system/multi-user.target.wants/twofactord.service"
    assert sb.run(["readlink", wants]).stdout.strip() == "/lib/systemd/system/twofactord.service"
    # The pam-configs profile is registered, and off until an admin enables it.
    assert "twofactor" in sb.read("/var/lib/pam/seen").split()
    assert "pam_twofactor" not in sb.read("/etc/pam.d/common-auth")


def test_man_pages_render_and_completions_parse(pkg):
    sb = pkg.sandbox
    if not shutil.which("man"):
        pytest.skip("man is not installed (package man-db)")
    for page in ["man1/twofactor.1.gz", "man8/twofactord.8.gz", "man8/pam_twofactor.8.gz",
                 "man5/twofactor.toml.5.gz", "man1/twofactor-enroll.1.gz"]:
        done = sb.run(["env", "MANWIDTH=80", "man", "--warnings", "-P", "cat", "-l",
                       f"/usr/share/man/{page}"])
        assert "NAME" in done.stdout, page
        assert done.stderr == "", (page, done.stderr)
    assert sb.run(["bash", "-n", "/usr/share/bash-completion/completions/twofactor"])
    completion = sb.run(["bash", "-c", ". /usr/share/bash-completion/completions/twofactor; "
                                       "complete -p twofactor"]).stdout
    assert "twofactor" in completion


# --- the D-Bus policy and the unit ------------------------------------------------------------

def test_installed_dbus_policy_lets_only_root_own_the_name(pkg):
    sb = pkg.sandbox
    bus = sb.bus("policy-bus")
    try:
        nobody = sb.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                         "/usr/bin/python3", "-c", REQUEST_NAME, bus.address, NAME])
        assert nobody.stdout.strip() == "org.freedesktop.DBus.Error.AccessDenied", nobody
        root = sb.run(["/usr/bin/python3", "-c", REQUEST_NAME, bus.address, NAME])
        assert root.stdout.strip() == "1", root            # DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER
    finally:
        bus.stop()
    # The control: the same configuration without the installed file lets nobody own the
    # name, not even root, so the file is what grants it (and dbus-daemon parsed it).
    bare = PrivateBus(sb.work / "bare-bus", policy=[], prefix=sb.cmd([]))
    sb.procs.append(bare.proc)
    try:
        root = sb.run(["/usr/bin/python3", "-c", REQUEST_NAME, bare.address, NAME])
        assert root.stdout.strip() == "org.freedesktop.DBus.Error.AccessDenied", root
    finally:
        bare.stop()


def need_systemd_analyze():
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed (package systemd)")


def test_systemd_analyze_verify_the_unit(pkg):
    need_systemd_analyze()
    done = pkg.sandbox.run(["systemd-analyze", "verify", "/lib/systemd/system/twofactord.service"],
                           check=False)
    output = done.stdout + done.stderr
    if "System has not been booted with systemd" in output or "Failed to connect" in output:
        pytest.skip(f"systemd-analyze verify cannot run here: {output.strip()}")
    assert done.returncode == 0 and output.strip() == "", output


def test_systemd_analyze_security_offline(pkg):
    """The unit file's sandboxing as systemd rates it, from the file alone (--offline, systemd
    >= 250: no running systemd needed). 0.7 ("SAFE") when written; fail above 1.0."""
    need_systemd_analyze()
    done = pkg.sandbox.run(["systemd-analyze", "security", "--offline=yes", "--threshold=10",
                            "/lib/systemd/system/twofactord.service"], check=False)
    level = re.search(r"Overall exposure level for twofactord.service: ([\d.]+)", done.stdout)
    assert level, done.stdout + done.stderr
    print(f"\nsystemd-analyze security --offline: exposure {level.group(1)}")
    assert done.returncode == 0, done.stdout


def test_systemd_analyze_security_of_the_running_service():
    """Online `systemd-analyze security` asks PID 1 about a loaded unit: only where systemd
    runs and twofactord.service is installed on the host itself (the sandbox's copy is
    invisible to the host's systemd). The --offline test above rates the same unit file."""
    if not os.path.isdir("/run/systemd/system"):
        pytest.skip("systemd-analyze security (online) needs a running systemd as PID 1: this "
                    "machine has none (the --offline test rates the unit file)")
    if subprocess.run(["systemctl", "cat", "twofactord.service"], capture_output=True).returncode:
        pytest.skip("twofactord.service is not installed on this host (only in the sandbox)")
    done = subprocess.run(["systemd-analyze", "security", "--threshold=10",
                           "twofactord.service"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


# --- logins through the installed module -------------------------------------------------------

def test_login_through_the_installed_module_and_daemon(pkg):
    """A service file naming just `pam_twofactor.so` (libpam finds it in its module directory)
    with bus_address= a private bus; the installed twofactord with its installed configuration
    and state directory serves that bus."""
    sb = pkg.sandbox
    bus = sb.bus("login-bus")
    daemon = start_daemon(sb, bus, "--bus-address", bus.address)
    try:
        user, uid, gid = add_user(sb)
        secret, step = enroll(sb, user, bus_env=[f"DBUS_SYSTEM_BUS_ADDRESS={bus.address}"])
        service = pam_service(sb, f"auth required pam_twofactor.so bus_address={bus.path_address}\n"
                                  "account required pam_permit.so\n")
        denied = pamtester(sb, service, user, [wrong_code(secret)])
        assert denied.returncode != 0 and "Authentication failure" in denied.output, denied
        done = pamtester(sb, service, user, [next_code(secret, step)])
        assert done.returncode == 0 and SUCCESS in done.output, done
        # The state went where the installed daemon keeps it, root-only.
        path = f"/var/lib/twofactor/users/{user}.toml"
        state = sb.stat(path)[path]
        assert state and (state["mode"], state["uid"]) == (0o600, 0), state
        # Any user may use the installed CLI on themselves through the installed policy.
        status = sb.run(["env", f"DBUS_SYSTEM_BUS_ADDRESS={bus.address}", "setpriv",
                         f"--reuid={uid}", f"--regid={gid}", "--init-groups",
                         "/usr/bin/twofactor", "status", "--json"])
        assert json.loads(status.stdout)["enrolled"] is True
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
        bus.stop()


def test_reinstall_keeps_the_administrators_configuration(pkg):
    """The maintainer scripts run again (as on an upgrade) without error, and dpkg keeps an
    edited conffile."""
    sb = pkg.sandbox
    edited = sb.read("/etc/twofactor/twofactor.toml") + "\n# edited by the administrator\n"
    path = sb.work / "twofactor.toml"
    path.write_text(edited)
    sb.run(["cp", str(path), "/etc/twofactor/twofactor.toml"])
    started = time.monotonic()
    sb.run(["dpkg", "-i", DEB], timeout=120)
    print(f"\ndpkg -i again: {time.monotonic() - started:.1f} s")
    assert sb.read("/etc/twofactor/twofactor.toml") == edited
    status = sb.run(["dpkg-query", "-W", "-f=${Status}", "twofactor"]).stdout
    assert status == "install ok installed"
    assert sb.run(["/usr/sbin/twofactord", "--check-config"]).returncode == 0
    assert sb.read("/etc/group").count("twofactor-admin:") == 1


def system_like(pkg):
    """The profile enabled, a bus on the sandbox's /run/dbus/system_bus_socket and the
    installed daemon started with no arguments, as the package runs it; a user with a password
    who enrolled themselves with the installed CLI. Made once, kept for the purge test."""
    if getattr(pkg, "system", None):
        return pkg.system
    sb = pkg.sandbox
    sb.run(["pam-auth-update", "--enable", "twofactor"])
    bus = sb.bus("system-bus", socket=SYSTEM_SOCKET)
    daemon = start_daemon(sb, bus)
    password = "pw-" + secrets.token_hex(6)
    user, uid, gid = add_user(sb, password=password)
    secret, step = enroll(sb, user, as_uid=(uid, gid))      # no bus address: the system bus
    service = pam_service(sb, "@include common-auth\naccount required pam_permit.so\n")
    pkg.system = dict(bus=bus, daemon=daemon, user=user, password=password, secret=secret,
                      step=step, service=service)
    return pkg.system


def test_pam_auth_update_enables_the_profile_for_common_auth(pkg):
    """`pam-auth-update --enable twofactor` puts the module after the password in common-auth;
    a service that only includes common-auth then asks for the password and the code."""
    system = system_like(pkg)
    sb = pkg.sandbox
    common = sb.read("/etc/pam.d/common-auth")
    lines = [line.split() for line in common.splitlines() if line and not line.startswith("#")]
    assert ["auth", "required", "pam_twofactor.so"] in lines, common
    unix = next(i for i, line in enumerate(lines) if "pam_unix.so" in line)
    assert lines.index(["auth", "required", "pam_twofactor.so"]) > unix, "after the password"

    user, password = system["user"], system["password"]
    done = pamtester(sb, system["service"], user, [password, next_code(system["secret"],
                                                                       system["step"])])
    assert done.returncode == 0 and SUCCESS in done.output, done
    assert "Verification code" in done.output
    # The password was right, the code is not (each failure costs pam_unix's 2 s delay).
    denied = pamtester(sb, system["service"], user, [password, wrong_code(system["secret"])])
    assert denied.returncode != 0 and SUCCESS not in denied.output, denied


def test_purge_removes_everything_and_pam_still_works(pkg):
    sb = pkg.sandbox
    system = system_like(pkg)
    # A twofactord that is not the installed one (as tests and scripts/demo run it) must
    # survive the purge; the installed one must be stopped by prerm.
    # Same name (as a process name matcher sees it), another file.
    (sb.work / "copy").mkdir()
    sb.run(["cp", "/usr/sbin/twofactord", str(sb.work / "copy" / "twofactord")])
    other_bus = sb.bus("other-bus")
    other = sb.popen([str(sb.work / "copy" / "twofactord"), "--bus-address", other_bus.address,
                      "--state-dir", str(sb.work / "other-state"),
                      # No file: the defaults. (Not /dev/null: anyone may write to it, and the
                      # daemon refuses a configuration that anyone but root could change.)
                      "--config", str(sb.work / "no-such-config.toml")],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.2)
    assert other.poll() is None, "the copy did not start"

    # The services the tests made name the module: removal would be refused
    # (test_package_removal.py).
    sb.run(["sh", "-c", "grep -l pam_twofactor /etc/pam.d/tf-pkg-* | xargs -r rm"], check=False)
    started = time.monotonic()
    sb.run(["dpkg", "--purge", "twofactor"], timeout=120)
    print(f"\ndpkg --purge: {time.monotonic() - started:.1f} s")

    assert system["daemon"].wait(timeout=15) is not None, "prerm stopped the installed daemon"
    assert other.poll() is None, "prerm killed a twofactord that is not the package's"
    assert "pam_twofactor" not in sb.read("/etc/pam.d/common-auth")
    assert "twofactor" not in sb.read("/var/lib/pam/seen").split()
    status = sb.run(["dpkg-query", "-W", "-f=${Status}", "twofactor"], check=False).stdout
    assert "installed" not in status.replace("not-installed", ""), status
    left = sb.stat(*pkg.files, "/etc/twofactor", "/var/lib/twofactor",
                   "/usr/share/doc/twofactor")
    ours = [path for path, info in left.items()
            if info is not None and (not info["dir"] or "twofactor" in path)]
    assert ours == [], f"left after purge: {ours}"
    links = sb.run(["find", "/etc/systemd", "-name", "twofactord*"]).stdout
    assert links == "", f"systemd links left after purge: {links}"

    # PAM still works without the module: the password alone, no code prompt.
    user, password = system["user"], system["password"]
    done = pamtester(sb, system["service"], user, [password])
    assert done.returncode == 0 and SUCCESS in done.output, done
    assert "Verification code" not in done.output
    refused = pamtester(sb, system["service"], user, ["not-" + password])
    assert refused.returncode != 0, refused
    # Debian leaves system groups in place on purge (files may still name it).
    print("twofactor-admin after purge:",
          sb.run(["getent", "group", "twofactor-admin"], check=False).stdout.strip() or "gone")


def test_the_host_saw_none_of_it(pkg, host_before):
    """The install, the PAM changes and the purge happened only in the sandbox."""
    assert {path: fingerprint(path) for path in HOST_WATCH} == host_before
    assert host_group() == pkg.host_group
    assert host_status() == pkg.host_status
