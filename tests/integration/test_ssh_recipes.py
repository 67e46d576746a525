"""The two SSH recipes of packaging/recipes/, used verbatim, through a real sshd and the real
OpenSSH client (driven by pexpect).

For each recipe, sshd runs in a private mount namespace where /etc/pam.d holds the recipe's
pam.d/sshd (only the module path replaced by the built .so's and `bus_address=` added) beside
this host's common-* files, and /etc/ssh/sshd_config.d holds the recipe's drop-in and a cloud
image's 50-cloud-init.conf. sshd's main file is a few harness lines (port, host key, pidfile,
where the keys are), then Debian's stock sshd_config, whose first line includes the drop-ins
and which says `KbdInteractiveAuthentication no`: the drop-in must win over both.

One sshd per setup and many users, one table: each row says who logs in, with which first
factor and code, whether they get in and which prompts they see, and the failure count is
checked before and after every row (only a wrong code may count).
"""
import collections
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import time

import pexpect
import pytest

from conftest import CLEAN_ENV, CONTEXT, Bus, Daemon, Users, root_call
from pam_harness import Enrolled
from recipes import RECIPES, recipe_pam, recipe_pam_dir
from test_ssh import free_port

SSHD = "/usr/sbin/sshd"
# Debian's stock main file, as openssh-server installs it as /etc/ssh/sshd_config.
DEBIAN_SSHD_CONFIG = pathlib.Path("/usr/share/openssh/sshd_config")
# What Debian's cloud images drop in (and, sorting after 00-, must lose).
CLOUD_INIT_DROPIN = "PasswordAuthentication yes\n"
PASSWORD = "Tr0ub4dor&3-recipe"

CODE_PROMPT = "Verification code"
PASSWORD_PROMPT = "Password:"
# prompt_after_notices: after messages that follow the last prompt of a login.
READ_PROMPT = "Press Enter to continue: "
KEY_REQUIRED = "This login needs an SSH key first."

KEY, PASSWORD_RECIPE = "ssh-key-and-code", "ssh-password-and-code"
KINDS = ("enrolled", "optional", "disabled", "grace", "required")


def recipe_dropin(recipe, replace=None):
    """The recipe's drop-in, verbatim unless `replace` = (KEYWORD, VALUE) loosens one line."""
    text = (RECIPES / recipe / "sshd_config.d" / "00-twofactor.conf").read_text()
    if replace:
        keyword, value = replace
        text, count = re.subn(rf"^{keyword} .*$", f"{keyword} {value}", text, flags=re.M)
        assert count == 1, keyword
    return text


class RecipeSshd:
    def __init__(self, directory, pam_text, dropin_text):
        self.dir = pathlib.Path(directory)
        pam_dir, dropins = self.dir / "pam.d", self.dir / "sshd_config.d"
        for path in (self.dir, dropins):
            path.mkdir(parents=True)
            path.chmod(0o755)
        recipe_pam_dir(pam_dir, {"sshd": pam_text})
        (dropins / "00-twofactor.conf").write_text(dropin_text)
        (dropins / "50-cloud-init.conf").write_text(CLOUD_INIT_DROPIN)
        self.keys = self.dir / "keys"
        self.keys.mkdir(mode=0o755)
        host_key = self.dir / "host_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)],
                       check=True)
        self.port = free_port()
        harness = [
            "# The test harness: where to listen, the host key, where the client keys are.",
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
            f"PidFile {self.dir / 'sshd.pid'}", f"AuthorizedKeysFile {self.keys}/%u",
            "StrictModes no", "UseDNS no", "LogLevel VERBOSE",
        ]
        self.config = self.dir / "sshd_config"
        self.config.write_text("\n".join(harness) + "\n" + DEBIAN_SSHD_CONFIG.read_text())
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.mounts = [(pam_dir, "/etc/pam.d"), (dropins, "/etc/ssh/sshd_config.d")]
        effective = subprocess.run(self.namespaced([SSHD, "-T", "-f", self.config]),
                                   capture_output=True, text=True, env=CLEAN_ENV)
        assert effective.returncode == 0, effective.stderr
        self.effective = effective.stdout
        self.log = self.dir / "sshd.log"
        self.log_file = open(self.log, "w")
        # sshd's PAM service is the basename of its path: "sshd", as on a real host.
        self.proc = subprocess.Popen(self.namespaced([SSHD, "-D", "-e", "-f", self.config]),
                                     stdout=self.log_file, stderr=subprocess.STDOUT,
                                     env=CLEAN_ENV)
        deadline = time.monotonic() + 20
        while "Server listening on 127.0.0.1" not in self.log_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("sshd did not start: " + self.log_text())
            time.sleep(0.01)

    def namespaced(self, argv):
        binds = " && ".join(f"mount --bind {shlex.quote(str(source))} {target}"
                            for source, target in self.mounts)
        return ["unshare", "-m", "sh", "-c", binds + ' && exec "$@"', "sh", *map(str, argv)]

    def log_text(self):
        return self.log.read_text()

    def authorize(self, name, key):
        (self.keys / name).write_text(key.with_suffix(".pub").read_text())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.log_file.close()


Login = collections.namedtuple("Login", "status prompts output")


def ssh_login(server, name, key=None, password=None, code=None):
    """The OpenSSH client as `name`: with `key` (publickey, then keyboard-interactive) or
    without (keyboard-interactive alone); answers "Password:" with `password` and the code
    prompt with `code()`. Returns the exit status, the prompts seen, and what it printed."""
    # LogLevel INFO (the default): the client prints sshd's keyboard-interactive
    # instructions, which carry PAM's messages on a refusal, only at INFO.
    options = ["-F", "/dev/null", "-o", "LogLevel=INFO", "-o", "StrictHostKeyChecking=no",
               "-o", "UserKnownHostsFile=/dev/null", "-o", "NumberOfPasswordPrompts=1",
               "-o", "ConnectTimeout=20", "-p", str(server.port)]
    if key:
        options += ["-o", "PreferredAuthentications=publickey,keyboard-interactive",
                    "-o", "IdentitiesOnly=yes", "-i", str(key)]
    else:
        options += ["-o", "PreferredAuthentications=keyboard-interactive",
                    "-o", "PubkeyAuthentication=no"]
    child = pexpect.spawn("ssh", [*options, f"{name}@127.0.0.1", "echo", "LOGGED-IN"],
                          env=CLEAN_ENV, encoding="utf-8", timeout=30)
    prompts, output = [], ""
    try:
        while True:
            seen = child.expect([PASSWORD_PROMPT, CODE_PROMPT, READ_PROMPT, pexpect.EOF])
            output += child.before + (child.after if seen < 3 else "")
            if seen == 3:
                break
            if seen == 2:
                # Not a factor: not in `prompts`, and the messages before it are checked.
                child.sendline("")
                continue
            prompts.append("password" if seen == 0 else "code")
            answer = password if seen == 0 else (code() if code else "")
            child.sendline(answer)
    finally:
        child.close()
    return Login(child.exitstatus, tuple(prompts), output)


class World:
    """The test bus, the daemon, the users of both recipes and root, and the sshds (started
    when a row first needs one)."""

    def __init__(self, top):
        self.top = top
        self.users = Users()
        self.bus = Bus(top / "bus")
        self.names, accounts = {}, {}
        for recipe in (KEY, PASSWORD_RECIPE):
            for kind in KINDS:
                user = self.users.add(password=PASSWORD)
                self.names[recipe, kind] = user.name
                accounts[user.name] = user
        policy = "\n".join(
            f'{self.names[recipe, kind]} = "{ {"disabled": "disabled"}.get(kind, "required") }"'
            for recipe in (KEY, PASSWORD_RECIPE) for kind in ("disabled", "grace", "required"))
        config = ('[policy]\ndefault = "optional"\n[policy.users]\n' + policy +
                  '\n[enrollment]\ngrace_period = "7d"\n'
                  '[lockout]\nmax_failures = 100\nfree_failures = 100\nbase_delay_seconds = 0\n')
        self.daemon = Daemon(self.bus, top / "daemon", config)
        self.tokens = {}
        for recipe in (KEY, PASSWORD_RECIPE):
            name = self.names[recipe, "enrolled"]
            self.tokens[name] = Enrolled(self.bus.address, accounts[name])
        self.tokens["root"] = Enrolled(self.bus.address, UsersRoot)
        self.expire_grace([self.names[r, "required"] for r in (KEY, PASSWORD_RECIPE)])
        self.keys = {}
        for name in [*self.names.values(), "root"]:
            key = top / "client-keys" / f"id_{name}"
            key.parent.mkdir(exist_ok=True)
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                           check=True)
            self.keys[name] = key
        self.servers = {}

    def expire_grace(self, names):
        """Starts the grace period of `names` (a first login), then moves it 8 days back."""
        for name in names:
            assert root_call(self.bus.address, "LoginPlan", name, CONTEXT)["ok"]["action"] == 0
        self.daemon.stop()
        long_ago = int(time.time()) - 8 * 86400
        for name in names:
            state = self.daemon.state / "users" / f"{name}.toml"
            text, count = re.subn(r"^grace_started = \d+$", f"grace_started = {long_ago}",
                                  state.read_text(), flags=re.M)
            assert count == 1, text
            state.write_text(text)
        self.daemon.start()

    def sshd(self, setup):
        if setup not in self.servers:
            recipe, pam_extra, dropin_replace = SETUPS[setup]
            pam_text = recipe_pam(recipe, "sshd", self.bus.address, pam_extra(self))
            slug = re.sub(r"[^a-z0-9]+", "-", setup)
            server = RecipeSshd(self.top / slug, pam_text, recipe_dropin(recipe, dropin_replace))
            self.servers[setup] = server
            for name, key in self.keys.items():
                server.authorize(name, key)
        return self.servers[setup]

    def failures(self, name):
        return root_call(self.bus.address, "Status", name)["ok"]["failures_since_success"]

    def close(self):
        for server in self.servers.values():
            server.stop()
        self.daemon.stop()
        self.bus.stop()
        self.users.cleanup()


class UsersRoot:
    """root, as `Enrolled` needs it."""
    name, uid, gid = "root", 0, 0


def probe_line(world):
    """A pam_exec line that writes SSH_AUTH_INFO_0 from the PAM environment to a file."""
    out = world.top / "auth-info"
    script = world.top / "probe.sh"
    script.write_text(f'#!/bin/sh\nprintf "%s" "${{SSH_AUTH_INFO_0-UNSET}}" > {out}\n')
    script.chmod(0o755)
    return [f"auth    optional    pam_exec.so {script}"]


# setup: (recipe, extra auth lines before the module, drop-in line replaced)
SETUPS = {
    "key": (KEY, lambda world: [], None),
    "password": (PASSWORD_RECIPE, lambda world: [], None),
    # Someone loosened sshd: the key recipe's pam.d with keyboard-interactive alone.
    "key, kbd-int alone": (KEY, lambda world: [],
                           ("AuthenticationMethods", "keyboard-interactive")),
    # The trap: Debian's default for root.
    "key, root prohibit-password": (KEY, lambda world: [],
                                    ("PermitRootLogin", "prohibit-password")),
    # The documented alternative for root.
    "key, root yes": (KEY, lambda world: [], ("PermitRootLogin", "yes")),
    "key, probe": (KEY, probe_line, None),
}

IN, OUT = True, False
NOTHING, CODE, PASSWORD_ONLY, PASSWORD_AND_CODE = (), ("code",), ("password",), \
    ("password", "code")
# The module's default tries=3: a rejected code is asked again, up to three codes in all.
TRIES = 3
WRONG_CODES = CODE * TRIES
DENIED_TEXT = "Two-factor authentication is required for {name} (user {name}) but is not set up"

Row = collections.namedtuple("Row", "setup who first code expect prompts text")
# who: a user kind of the setup's recipe, or "root"; first: "key", "no key", "password",
# "wrong password"; code: "right", "wrong" or None.
MATRIX = [
    Row("key", "enrolled", "key", "right", IN, CODE, None),
    Row("key", "enrolled", "key", "wrong", OUT, WRONG_CODES, None),
    Row("key", "optional", "key", None, IN, NOTHING, None),
    Row("key", "disabled", "key", None, IN, NOTHING, None),
    Row("key", "grace", "key", None, IN, NOTHING, None),
    Row("key", "required", "key", None, OUT, NOTHING, DENIED_TEXT),
    Row("key", "enrolled", "no key", "right", OUT, NOTHING, None),
    Row("key", "optional", "no key", None, OUT, NOTHING, None),
    Row("key", "disabled", "no key", None, OUT, NOTHING, None),
    Row("key", "root", "key", "right", OUT, NOTHING, None),
    Row("password", "enrolled", "password", "right", IN, PASSWORD_AND_CODE, None),
    Row("password", "enrolled", "password", "wrong", OUT, PASSWORD_ONLY + WRONG_CODES, None),
    Row("password", "optional", "password", None, IN, PASSWORD_ONLY, None),
    Row("password", "disabled", "password", None, IN, PASSWORD_ONLY, None),
    Row("password", "grace", "password", None, IN, PASSWORD_ONLY,
        None),
    Row("password", "required", "password", None, OUT, PASSWORD_ONLY, DENIED_TEXT),
    Row("password", "enrolled", "wrong password", "right", OUT, PASSWORD_ONLY, None),
    Row("password", "optional", "wrong password", None, OUT, PASSWORD_ONLY, None),
    Row("password", "disabled", "wrong password", None, OUT, PASSWORD_ONLY, None),
    # sshd feeds PAM a fake password for root: pam_unix fails it.
    Row("password", "root", "password", "right", OUT, PASSWORD_ONLY, None),
    Row("key, kbd-int alone", "enrolled", "no key", "right", OUT, NOTHING, KEY_REQUIRED),
    Row("key, kbd-int alone", "optional", "no key", None, OUT, NOTHING, KEY_REQUIRED),
    Row("key, kbd-int alone", "disabled", "no key", None, OUT, NOTHING, KEY_REQUIRED),
    Row("key, kbd-int alone", "grace", "no key", None, OUT, NOTHING, KEY_REQUIRED),
    Row("key, kbd-int alone", "root", "no key", "right", OUT, NOTHING, KEY_REQUIRED),
    # sshd asks, then swaps root's answer for "\b\n\r\177INCORRECT": refused, never counted.
    Row("key, root prohibit-password", "root", "key", "right", OUT, WRONG_CODES, None),
    Row("key, root yes", "root", "key", "right", IN, CODE, None),
    Row("key, root yes", "root", "key", "wrong", OUT, WRONG_CODES, None),
]


def row_id(row):
    return f"{row.setup}: {row.who}, {row.first}" + (f", {row.code} code" if row.code else "")


@pytest.fixture(scope="module")
def world():
    import tempfile
    top = pathlib.Path(tempfile.mkdtemp(prefix="twofactor-recipes-"))
    top.chmod(0o755)
    made = World(top)
    yield made
    made.close()
    shutil.rmtree(top, ignore_errors=True)


@pytest.mark.parametrize("row", MATRIX, ids=row_id)
def test_recipe_matrix(world, row):
    server = world.sshd(row.setup)
    recipe = SETUPS[row.setup][0]
    name = "root" if row.who == "root" else world.names[recipe, row.who]
    token = world.tokens.get(name)

    def code():
        """Taken only when the prompt shows, so no TOTP step is spent for nothing."""
        return token.code() if row.code == "right" else token.wrong_code()

    failures_before = world.failures(name)
    log_start = len(server.log_text())
    login = ssh_login(server, name,
                      key=world.keys[name] if row.first == "key" else None,
                      password=PASSWORD if row.first == "password" else "not-the-password",
                      code=code if row.code else None)
    where = f"{row_id(row)}: {login}\nsshd log:\n{server.log_text()[-3000:]}"
    assert (login.status == 0 and "LOGGED-IN" in login.output) == row.expect, where
    assert login.prompts == row.prompts, where
    if row.text:
        # Once: sshd prints a successful login's last messages twice without
        # prompt_after_notices (test_ssh_messages.py).
        assert login.output.count(row.text.format(name=name)) == 1, where
    failures_after = world.failures(name)
    if row.code == "wrong" and "code" in row.prompts:
        # Every try counts toward the daemon's throttling.
        assert failures_after == failures_before + row.prompts.count("code"), where
    elif row.expect and row.code == "right":
        assert failures_after == 0, where
    else:
        # No key, a wrong password, a refusal, sshd's fake password: nothing counts.
        assert failures_after == failures_before, where
    assert "PAM auth succeeded when it should have failed" not in server.log_text()[log_start:]


def test_the_drop_in_wins_over_debians_main_file_and_the_cloud_drop_in(world):
    stock = DEBIAN_SSHD_CONFIG.read_text()
    directives = [line for line in stock.splitlines() if line and not line.startswith("#")]
    assert directives[0] == "Include /etc/ssh/sshd_config.d/*.conf", directives
    assert "KbdInteractiveAuthentication no" in directives, directives
    for setup in ("key", "password"):
        effective = world.sshd(setup).effective
        assert "kbdinteractiveauthentication yes\n" in effective, effective
        assert "passwordauthentication no\n" in effective, effective
        assert "permitrootlogin no\n" in effective, effective
        assert "usepam yes\n" in effective, effective
    assert "authenticationmethods publickey,keyboard-interactive\n" in world.sshd("key").effective
    assert "authenticationmethods keyboard-interactive\n" in world.sshd("password").effective


def test_debians_sshd_puts_the_key_in_the_pam_environment(world):
    """OpenSSH 9.2 sets SSH_AUTH_INFO_0 in the PAM environment during keyboard-interactive
    after a key, as require_publickey expects: a pam_exec probe before the module reads it."""
    server = world.sshd("key, probe")
    name = world.names[KEY, "optional"]
    login = ssh_login(server, name, key=world.keys[name])
    assert login.status == 0, login
    seen = (world.top / "auth-info").read_text()
    public = world.keys[name].with_suffix(".pub").read_text().split()
    assert seen.startswith(f"publickey {public[0]} {public[1]}"), seen


def test_an_exempt_root_under_prohibit_password_is_cut_off_by_sshd(world):
    """Why the recipes do not keep Debian's `PermitRootLogin prohibit-password`: root's key
    succeeds, the module answers success for an exempt root, and sshd aborts the connection
    because PAM said yes where it had to fail."""
    server = world.sshd("key, root prohibit-password")
    assert "ok" in root_call(world.bus.address, "ResetUser", "root")
    try:
        login = ssh_login(server, "root", key=world.keys["root"])
        assert login.status != 0 and "LOGGED-IN" not in login.output, login
        assert login.prompts == NOTHING, login
        assert "PAM auth succeeded when it should have failed" in server.log_text()
    finally:
        world.tokens["root"] = Enrolled(world.bus.address, UsersRoot)
