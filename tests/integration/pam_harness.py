"""Running the real pam_twofactor.so through real libpam, for the PAM, ssh and su tests.

Two ways to get libpam to read our service files without touching the host's /etc/pam.d:

* `pamtester()`: pam_wrapper (LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1
  PAM_WRAPPER_SERVICE_DIR=DIR). pam_wrapper loads a copy of the system's own libpam whose
  "/etc/pam.d" is redirected to DIR, so the module runs in real libpam, only the service files
  come from elsewhere.
* `pamtester_real()` / `in_pam_namespace()`: the unmodified libpam and the real /etc layout,
  in a private mount namespace where DIR is bind-mounted over /etc/pam.d (as root).

Service files name the module by absolute path and pass `bus_address=` so it talks to the
test's private bus; every directory also gets an `other` file that denies everything.
"""
import collections
import glob
import json
import os
import pathlib
import shlex
import subprocess
import time

from conftest import BIN_DIR, CLEAN_ENV, SYSTEM_PYTHON, enroll_as, oathtool

MODULE = BIN_DIR / "libpam_twofactor.so"
IMPOSTOR = pathlib.Path(__file__).with_name("impostor.py")

# pam_strerror() texts that pamtester prints for the codes the module returns.
SUCCESS = "pamtester: successfully authenticated"
AUTH_ERR = "Authentication failure"                                          # PAM_AUTH_ERR
AUTHINFO_UNAVAIL = "Authentication service cannot retrieve authentication info"  # ..._UNAVAIL
PROMPT = "Verification code or backup code: "

# The module's texts (pam_module/src/messages.rs), spelled once for the tests.
WRONG_CODE = "Wrong verification code."
REPLAYED = "This code was already used. Wait for the next one."
UNAVAILABLE = ("Two-factor authentication is unavailable right now. Try again later, "
               "or ask an administrator.")
LOCKED = ("Too many failed attempts: verification codes for this account are locked. "
          "Ask an administrator to unlock it.")

OTHER = "auth required pam_deny.so\naccount required pam_deny.so\n" \
        "password required pam_deny.so\nsession required pam_deny.so\n"


def pam_wrapper_library():
    found = glob.glob("/usr/lib/*/libpam_wrapper.so") + glob.glob("/usr/lib/libpam_wrapper.so")
    if not found:
        raise RuntimeError("libpam_wrapper.so not found: apt-get install libpam-wrapper")
    return found[0]


def module_path():
    if not MODULE.exists():
        raise RuntimeError(f"{MODULE} is missing: cargo build --release -p pam_twofactor")
    return str(MODULE)


def bus_address_arg(address, keep_guid=False):
    """`bus_address=unix:path=...` for a dbus-daemon address (optionally with its ,guid=)."""
    return "bus_address=" + (address if keep_guid else address.split(",guid=")[0])


def module_line(address=None, timeout=None, control="required", args=(), keep_guid=False):
    """`auth CONTROL /abs/libpam_twofactor.so [bus_address=...] [timeout=N] ARGS...`."""
    words = ["auth", control, module_path()]
    if address is not None:
        words.append(bus_address_arg(address, keep_guid))
    if timeout is not None:
        words.append(f"timeout={timeout}")
    words.extend(args)
    return " ".join(words)


def write_service(directory, service, auth, account=("account required pam_permit.so",),
                  session=("session required pam_permit.so",)):
    """Writes DIR/SERVICE (the given auth lines, then account and session) and DIR/other.
    `auth` is one line or a list of lines. Returns DIR."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    lines = [auth] if isinstance(auth, str) else list(auth)
    text = "\n".join([*lines, *account, *session]) + "\n"
    (directory / service).write_text(text)
    (directory / "other").write_text(OTHER)
    return directory


class Result(collections.namedtuple("Result", "returncode output elapsed")):
    """pamtester's exit status, its stdout and stderr together, and the wall time (s)."""

    @property
    def ok(self):
        return self.returncode == 0 and SUCCESS in self.output

    @property
    def prompts(self):
        return self.output.count(PROMPT)

    def __str__(self):
        return f"rc={self.returncode} elapsed={self.elapsed:.3f}s output:\n{self.output}"


def _run(command, answers, env, timeout):
    stdin = "".join(answer + "\n" for answer in answers)
    started = time.monotonic()
    done = subprocess.run(command, input=stdin, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=env, timeout=timeout)
    return Result(done.returncode, done.stdout, time.monotonic() - started)


def pamtester_command(service, user, operation="authenticate", items=None, pam_env=None):
    """pamtester's argv; `items` ({"rhost": ..., "tty": ...}) become PAM items (-I) and
    `pam_env` entries the PAM environment (-E, pam_putenv), not the process's."""
    options = []
    for name, value in (items or {}).items():
        options += ["-I", f"{name}={value}"]
    for name, value in (pam_env or {}).items():
        options += ["-E", f"{name}={value}"]
    return ["pamtester", "-v", *options, service, user, operation]


def wrapper_env(service_dir, extra_env=None):
    env = dict(CLEAN_ENV)
    env.update({"LD_PRELOAD": pam_wrapper_library(), "PAM_WRAPPER": "1",
                "PAM_WRAPPER_SERVICE_DIR": str(service_dir)})
    env.update(extra_env or {})
    return env


def pamtester(service_dir, service, user, answers=(), extra_env=None, timeout=60, items=None,
              pam_env=None):
    """pamtester SERVICE USER authenticate under pam_wrapper with `answers` on stdin, one a
    line (misc_conv reads one line per prompt). Returns a Result."""
    return _run(pamtester_command(service, user, items=items, pam_env=pam_env), answers,
                wrapper_env(service_dir, extra_env), timeout)


def pamtester_spawn(service_dir, service, user, items=None, timeout=30):
    """pamtester under pam_wrapper on a pty (pexpect), for conversations that must be read
    before they are answered: misc_conv prints info text to stdout and prompts to stderr,
    both on the pty. Returns the spawned child."""
    import pexpect
    command = pamtester_command(service, user, items=items)
    return pexpect.spawn(command[0], command[1:], env=wrapper_env(service_dir),
                         encoding="utf-8", timeout=timeout)


def answer_password_and_code(child, password, code):
    """Answers a spawned login's "Password:" (pam_unix) and the code prompt (ours) with `code`
    (or each of a list of codes, one per try), then an empty line to any further try, and
    waits for it to end. Returns (exit status, everything it printed after the first code)."""
    import pexpect
    codes = [code] if isinstance(code, str) else list(code)
    output = ""
    try:
        child.expect("Password:")
        child.sendline(password)
        child.expect_exact(PROMPT)
        child.sendline(codes.pop(0))
        while child.expect_exact([PROMPT, pexpect.EOF]) == 0:
            output += child.before + PROMPT
            child.sendline(codes.pop(0) if codes else "")
        output += child.before
    finally:
        child.close()
    return child.exitstatus, output


def in_pam_namespace(service_dir, argv):
    """argv run in a private mount namespace where `service_dir` is /etc/pam.d (as root;
    util-linux unshare makes the namespace's mounts private, so the host never sees it)."""
    script = f"mount --bind {shlex.quote(str(service_dir))} /etc/pam.d && exec " + \
        " ".join(shlex.quote(str(word)) for word in argv)
    return ["unshare", "-m", "sh", "-c", script]


def pamtester_real(service_dir, service, user, answers=(), extra_env=None, timeout=60):
    """The same with the unmodified libpam reading /etc/pam.d (bind-mounted over)."""
    env = dict(CLEAN_ENV)
    env.update(extra_env or {})
    return _run(in_pam_namespace(service_dir, pamtester_command(service, user)), answers,
                env, timeout)


class Enrolled:
    """A user enrolled by root through the daemon: the secret (for oathtool), unused backup
    codes, and the last TOTP step the daemon has accepted, so no code is used twice."""

    def __init__(self, address, user):
        started_step = int(time.time()) // 30
        result = enroll_as(address, None, user.name)
        assert "ok" in result, result
        self.user = user
        self.secret = result["ok"]["secret"]
        self.backup_codes = list(result["ok"]["backup_codes"])
        # The enrollment was confirmed with a code for some step up to now (tfcall may report
        # which); assume the latest possible one was spent.
        self.step = result["ok"].get("step", int(time.time()) // 30)
        self.step = max(self.step, started_step)
        self.waits = 0

    @classmethod
    def known(cls, user, secret, backup_codes=(), step=None):
        """A user enrolled some other way (e.g. at login), whose secret the test read: `step`
        is the last step spent (default: the current one)."""
        token = cls.__new__(cls)
        token.user = user
        token.secret = secret
        token.backup_codes = list(backup_codes)
        token.step = int(time.time()) // 30 if step is None else step
        token.waits = 0
        return token

    def code(self, digits=6):
        """The code (of `digits` digits) for the earliest unspent step inside the daemon's ±1
        window (oathtool). Waits for the clock only if the next step is still beyond it."""
        while True:
            now_step = int(time.time()) // 30
            step = max(self.step + 1, now_step)
            if step <= now_step + 1:
                self.step = step
                return oathtool(self.secret, at=step * 30, digits=digits)
            self.waits += 1
            time.sleep(max((step - 1) * 30 - time.time() + 0.05, 0.05))

    def code_at_offset(self, steps):
        """A code for `steps` steps from now (not spent: outside the window if |steps| > 1)."""
        return oathtool(self.secret, at=(int(time.time()) // 30 + steps) * 30)

    def wrong_code(self, reach=25):
        """A well-formed code matching no step within `reach` steps of now: no acceptance
        and no clock skew hint."""
        import pyotp
        totp = pyotp.TOTP(self.secret)
        now_step = int(time.time()) // 30
        near = {totp.at((now_step + k) * 30) for k in range(-reach, reach + 1)}
        for candidate in ("000000", "123456", "999999", "314159", "271828"):
            if candidate not in near:
                return candidate
        raise AssertionError("no wrong code found")


class Impostor:
    """impostor.py on a bus, as root (`user=None`) or as a test user via setpriv."""

    def __init__(self, address, workdir, user=None):
        self.dir = pathlib.Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "impostor-calls.jsonl"
        self.log.touch()
        command = [SYSTEM_PYTHON, str(IMPOSTOR), address, str(self.log)]
        if user is not None:
            os.chown(self.dir, user.uid, user.gid)
            os.chown(self.log, user.uid, user.gid)
            command[0:0] = ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}",
                            "--init-groups"]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=CLEAN_ENV)
        self.status = self.proc.stdout.readline().strip()
        if not self.status.startswith("READY "):
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            self.stop()
            raise RuntimeError(f"impostor did not start: {self.status!r} {err}")
        self.unique_name = self.status.split()[1]

    def calls(self):
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
