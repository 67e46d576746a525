"""End to end over SSH: a real sshd on a loopback port with our module in its PAM stack, the
real daemon on a private bus, and the OpenSSH client (through sshpass or pexpect).

sshd takes its PAM service name from the basename of argv[0], so it runs as a symlink named
tf-sshd-<hex>, in a private mount namespace where the test's pam.d directory is /etc/pam.d:
nothing on the host's /etc changes. Keyboard-interactive carries the code (with
PasswordAuthentication, sshd would answer the module's prompt with the password).
"""
import os
import pathlib
import pwd
import secrets
import socket
import subprocess
import time

import pexpect
import pytest

from conftest import CLEAN_ENV, call_as
from pam_harness import (Enrolled, answer_password_and_code, in_pam_namespace, module_line,
                         write_service)

SSHD = "/usr/sbin/sshd"
PASSWORD = "Tr0ub4dor&3-ssh"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Sshd:
    def __init__(self, workdir, auth_lines, methods, account=("account required pam_permit.so",)):
        self.dir = pathlib.Path(workdir) / "sshd"
        self.dir.mkdir(parents=True)
        self.dir.chmod(0o755)
        self.service = "tf-sshd-" + secrets.token_hex(4)
        self.pam_dir = write_service(self.dir / "pam.d", self.service, auth_lines,
                                     account=account)
        host_key = self.dir / "host_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)],
                       check=True)
        self.port = free_port()
        self.config = self.dir / "sshd_config"
        self.config.write_text("\n".join([
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {host_key}",
            f"PidFile {self.dir / 'sshd.pid'}",
            "UsePAM yes",
            "KbdInteractiveAuthentication yes",
            "PasswordAuthentication no",
            "PubkeyAuthentication yes",
            f"AuthenticationMethods {methods}",
            "StrictModes no",
            "PermitRootLogin no",
            "UseDNS no",
            "LogLevel VERBOSE",
        ]) + "\n")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        # An absolute path: sshd re-executes itself for each connection.
        self.binary = self.dir / self.service
        self.binary.symlink_to(SSHD)
        self.log = self.dir / "sshd.log"
        self.log_file = open(self.log, "w")
        argv = [self.binary, "-D", "-e", "-f", self.config]
        self.proc = subprocess.Popen(in_pam_namespace(self.pam_dir, argv),
                                     stdout=self.log_file, stderr=subprocess.STDOUT,
                                     env=CLEAN_ENV)
        try:
            self._wait_listening()
        except BaseException:
            self.stop()
            raise

    def _wait_listening(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited {self.proc.returncode}: {self.log_text()}")
            if "Server listening on 127.0.0.1" in self.log_text():
                return
            time.sleep(0.01)
        raise RuntimeError("sshd did not start: " + self.log_text())

    def log_text(self):
        return self.log.read_text()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()

    def ssh_options(self):
        return ["-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "NumberOfPasswordPrompts=1",
                "-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR", "-p", str(self.port)]


@pytest.fixture
def make_sshd(workdir):
    made = []

    def make(*args, **kwargs):
        server = Sshd(workdir, *args, **kwargs)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


def add_key(user, workdir):
    """A client key for `user`, authorized in ~user/.ssh/authorized_keys."""
    key = pathlib.Path(workdir) / f"id_{user.name}"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    ssh_dir = pathlib.Path(pwd.getpwnam(user.name).pw_dir, ".ssh")
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    authorized = ssh_dir / "authorized_keys"
    authorized.write_text(key.with_suffix(".pub").read_text())
    for path in (ssh_dir, authorized):
        os.chown(path, user.uid, user.gid)
    authorized.chmod(0o600)
    return key


def ssh_with_key_and_code(server, user, key, code):
    command = ["sshpass", "-P", "Verification code", "-p", code, "ssh", *server.ssh_options(),
               "-o", "PreferredAuthentications=publickey,keyboard-interactive",
               "-o", "IdentitiesOnly=yes", "-i", str(key), f"{user.name}@127.0.0.1",
               "echo", "OK"]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=CLEAN_ENV)


def test_publickey_then_code(bus, daemon, users, workdir, make_sshd):
    alice = users.add()
    token = Enrolled(bus.address, alice)
    key = add_key(alice, workdir)
    server = make_sshd([module_line(bus.address, timeout=5)], "publickey,keyboard-interactive")
    done = ssh_with_key_and_code(server, alice, key, token.code())
    assert done.returncode == 0, (done, server.log_text())
    assert done.stdout.strip() == "OK", done
    # sshd handed the module its PAM items: our service name and the client's address.
    status = call_as(bus.address, None, "Status", alice.name)["ok"]
    assert status["last_success_service"] == server.service, status
    assert status["last_success_rhost"] == "127.0.0.1", status


def test_publickey_then_wrong_code_is_refused(bus, daemon, users, workdir, make_sshd):
    alice = users.add()
    token = Enrolled(bus.address, alice)
    key = add_key(alice, workdir)
    server = make_sshd([module_line(bus.address, timeout=5)], "publickey,keyboard-interactive")
    done = ssh_with_key_and_code(server, alice, key, token.wrong_code())
    assert done.returncode != 0, done
    assert "OK" not in done.stdout, done
    # The key alone was not enough: sshd accepted it, then wanted keyboard-interactive.
    log = server.log_text()
    assert "Partial publickey for " + alice.name in log, log
    assert "Accepted keyboard-interactive" not in log, log
    assert call_as(bus.address, None, "Status", alice.name)["ok"]["failures_since_success"] == 1


def password_and_code(server, user, password, code):
    """The OpenSSH client driven through a pty: "Password:" (pam_unix), then
    the code prompt (ours). Returns (exit status, everything the client printed)."""
    child = pexpect.spawn(
        "ssh", [*server.ssh_options(), "-o", "PreferredAuthentications=keyboard-interactive",
                "-o", "PubkeyAuthentication=no", f"{user.name}@127.0.0.1", "echo", "OK"],
        env=CLEAN_ENV, encoding="utf-8", timeout=30)
    return answer_password_and_code(child, password, code)


def password_stack(bus):
    return ["auth required pam_unix.so nodelay", module_line(bus.address, timeout=5)]


def test_password_then_code(bus, daemon, users, make_sshd):
    alice = users.add(password=PASSWORD)
    token = Enrolled(bus.address, alice)
    server = make_sshd(password_stack(bus), "keyboard-interactive",
                       account=["account required pam_unix.so"])
    status, output = password_and_code(server, alice, PASSWORD, token.code())
    assert status == 0, (output, server.log_text())
    assert output.strip().splitlines()[-1].strip() == "OK", output
    record = call_as(bus.address, None, "Status", alice.name)["ok"]
    assert record["last_success_service"] == server.service, record


def test_password_then_wrong_code_is_refused(bus, daemon, users, make_sshd):
    alice = users.add(password=PASSWORD)
    token = Enrolled(bus.address, alice)
    server = make_sshd(password_stack(bus), "keyboard-interactive",
                       account=["account required pam_unix.so"])
    status, output = password_and_code(server, alice, PASSWORD, token.wrong_code())
    assert status != 0, output
    assert "OK" not in output, output
    assert "Permission denied" in output, output
    assert "Accepted keyboard-interactive" not in server.log_text()
