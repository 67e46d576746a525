"""`twofactor import`: enrollments of google-authenticator and pam_oath taken over by the real
daemon, so that the user's phone keeps working unchanged.

The google-authenticator files are written by the real `google-authenticator` tool (Debian's
libpam-google-authenticator), run as the test user; one of them is then used for a real login
through the real pam_google_authenticator.so (pamtester under pam_wrapper), which records the
time step it accepted. Codes come from oathtool with the secret read from the file, and the
daemon's answers from the independent jeepney client.
"""
import json
import pathlib
import secrets
import shutil
import subprocess
import time

import pytest

from conftest import CLEAN_ENV, call_as, oathtool
# cli and cli_bin are test_cli's fixtures, shared here.
from test_cli import as_user, cli, cli_bin, enroll  # noqa: F401

CONTEXT = {"service": "sshd", "rhost": "192.0.2.9", "tty": "ssh"}
GA_MODULE = pathlib.Path("/lib/x86_64-linux-gnu/security/pam_google_authenticator.so")
# The recipe from shared/FACTS.md.
GA_RECIPE = ["-t", "-D", "-f", "-u", "-w", "3", "-Q", "NONE", "-q", "-e", "5"]


@pytest.fixture(autouse=True)
def needs_google_authenticator():
    if shutil.which("google-authenticator") is None or not GA_MODULE.exists():
        pytest.fail("google-authenticator is missing: apt-get install libpam-google-authenticator")


def google_authenticator(user, *options, path=None):
    """Run the real tool as `user`; returns the path of the file it wrote."""
    path = path or f"/home/{user.name}/.google_authenticator"
    env = dict(CLEAN_ENV, HOME=f"/home/{user.name}", USER=user.name)
    out = subprocess.run(as_user(user, ["google-authenticator", *options, "-s", path]),
                         capture_output=True, text=True, env=env, timeout=30, cwd="/")
    assert out.returncode == 0, out.stderr
    return pathlib.Path(path)


def secret_of(path):
    return path.read_text().splitlines()[0].strip()


def scratch_codes_of(path):
    return [line for line in path.read_text().splitlines()[1:]
            if line.isdigit() and len(line) == 8]


def verify(bus, user, code):
    reply = call_as(bus.address, None, "Verify", user.name, code, CONTEXT)
    assert "ok" in reply, reply
    return reply["ok"]


def status(bus, user):
    reply = call_as(bus.address, None, "Status", user.name)
    assert "ok" in reply, reply
    return reply["ok"]


def snapshot(path):
    stat = path.stat()
    return path.read_bytes(), stat.st_mtime_ns, stat.st_mode, stat.st_uid


def step_now(period=30):
    return int(time.time()) // period


def test_a_default_google_authenticator_file(cli, bus, daemon, users):
    alice = users.add()
    path = google_authenticator(alice, *GA_RECIPE)
    before = snapshot(path)
    secret = secret_of(path)
    scratch = scratch_codes_of(path)
    assert len(scratch) == 5

    # Default FILE: ~alice/.google_authenticator, found through the user database.
    out = cli.run(None, "import", "google-authenticator", "--user", alice.name)
    assert out.returncode == 0, out.stderr
    assert f"Imported {alice.name} from {path}" in out.stdout, out.stdout
    assert "no DISALLOW_REUSE" in out.stdout, out.stdout
    assert "The 5 scratch codes are now backup codes" in out.stdout, out.stdout
    assert secret not in out.stdout + out.stderr
    assert not any(code in out.stdout for code in scratch)
    assert snapshot(path) == before, "the file is left untouched"

    state = status(bus, alice)
    assert state["enrolled"] is True and state["backup_codes_left"] == 5

    # The phone keeps working: oathtool with the file's secret, as the app computes it.
    step = step_now()
    assert verify(bus, alice, oathtool(secret, at=step * 30))["outcome"] == 0
    assert verify(bus, alice, oathtool(secret, at=step * 30))["outcome"] == 1, "spent"
    # Scratch codes work once each, as backup codes.
    reply = verify(bus, alice, scratch[0])
    assert reply["outcome"] == 0 and reply["backup_code_used"], reply
    assert reply["backup_codes_left"] == 4
    assert verify(bus, alice, scratch[0])["outcome"] == 1
    assert verify(bus, alice, scratch[4])["outcome"] == 0
    # The same through the CLI.
    again = cli.run(None, "verify", alice.name, input=scratch[1] + "\n")
    assert again.returncode == 0 and again.stdout.startswith("accepted"), again


def pam_google_authenticator_login(workdir, user, path, code):
    """One login through the real pam_google_authenticator.so, which records the used step."""
    services = workdir / "ga-pam.d"
    services.mkdir(exist_ok=True)
    (services / "ga-test").write_text(
        f"auth required {GA_MODULE} secret={path}\naccount required pam_permit.so\n")
    (services / "other").write_text("auth required pam_deny.so\n")
    env = dict(CLEAN_ENV, LD_PRELOAD="libpam_wrapper.so", PAM_WRAPPER="1",
               PAM_WRAPPER_SERVICE_DIR=str(services))
    out = subprocess.run(["pamtester", "ga-test", user.name, "authenticate"], input=code + "\n",
                         capture_output=True, text=True, env=env, timeout=30)
    assert out.returncode == 0, out.stderr


def test_window_step_reuse_and_rate_limit_carry_over(cli, bus, daemon, users, workdir):
    bob = users.add()
    path = google_authenticator(bob, "-t", "-d", "-f", "-r", "3", "-R", "30", "-w", "17",
                                "-Q", "NONE", "-q", "-e", "5")
    secret = secret_of(path)
    assert '" WINDOW_SIZE 17' in path.read_text()
    # A real login with google-authenticator spends the current step.
    used = step_now()
    code = oathtool(secret, at=used * 30)
    pam_google_authenticator_login(workdir, bob, path, code)
    assert f'" DISALLOW_REUSE {used}' in path.read_text(), path.read_text()
    before = snapshot(path)

    out = cli.run(None, "import", "google-authenticator", "--user", bob.name, str(path),
                  "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["source"] == "google-authenticator" and report["file"] == str(path)
    entry = report["users"][0]
    assert entry["user"] == bob.name and entry["imported"] is True, entry
    assert entry["enrollment"]["window"] == 8, "WINDOW_SIZE 17 is 8 steps either side"
    assert entry["enrollment"]["last_step"] == used
    assert entry["enrollment"]["period"] == 30
    assert any(n.startswith("RATE_LIMIT (3 logins every 30 s)") for n in entry["notes"]), entry
    assert not any("DISALLOW_REUSE" in n for n in entry["notes"]), entry
    assert snapshot(path) == before

    # The step google-authenticator accepted stays spent.
    reply = verify(bus, bob, code)
    assert reply["outcome"] == 1, reply
    # 7 steps ahead is inside bob's window of 8 (the daemon's default window is 1).
    assert verify(bus, bob, oathtool(secret, at=(used + 7) * 30))["outcome"] == 0
    # Codes at or below the newest accepted step are spent.
    assert verify(bus, bob, oathtool(secret, at=(used + 1) * 30))["outcome"] == 1
    # 9 steps ahead of now is outside the window.
    far = oathtool(secret, at=(step_now() + 9) * 30)
    near = {oathtool(secret, at=(step_now() + k) * 30) for k in range(-8, 9)}
    if far not in near:
        assert verify(bus, bob, far)["outcome"] == 1


def test_a_counter_based_file_is_refused_and_nothing_changes(cli, bus, daemon, users):
    carol = users.add()
    path = google_authenticator(carol, "-c", "-f", "-u", "-w", "3", "-Q", "NONE", "-q",
                                "-e", "5")
    assert '" HOTP_COUNTER' in path.read_text()
    before = snapshot(path)
    out = cli.run(None, "import", "google-authenticator", "--user", carol.name)
    assert out.returncode == 1, (out.returncode, out.stderr)
    assert "counter-based" in out.stderr and "nothing was changed" in out.stderr, out.stderr
    assert out.stderr.count("\n") == 1, out.stderr
    assert secret_of(path) not in out.stderr
    assert status(bus, carol)["enrolled"] is False
    assert snapshot(path) == before


def test_refusals_leave_the_existing_state(cli, bus, daemon, users, workdir):
    dave = users.add()
    current = enroll(cli, dave)
    path = google_authenticator(dave, *GA_RECIPE)
    out = cli.run(None, "import", "google-authenticator", "--user", dave.name)
    assert out.returncode == 1, out.stderr
    assert f"twofactor reset {dave.name}" in out.stderr, out.stderr
    # dave's twofactor enrollment is unchanged: its codes work, the file's do not.
    assert verify(bus, dave, current.code())["outcome"] == 0
    step = step_now()
    file_code = oathtool(secret_of(path), at=step * 30)
    if file_code not in {oathtool(current.secret, at=(step + k) * 30) for k in (-1, 0, 1)}:
        assert verify(bus, dave, file_code)["outcome"] == 1

    # Not as an administrator: refused, and the file is not readable anyway.
    erin = users.add()
    google_authenticator(erin, *GA_RECIPE)
    out = cli.run(dave, "import", "google-authenticator", "--user", erin.name)
    assert out.returncode == 1, out.stderr
    assert status(bus, erin)["enrolled"] is False

    # A symbolic link in place of the file is not followed (as root).
    frank = users.add()
    link = pathlib.Path(f"/home/{frank.name}/.google_authenticator")
    link.symlink_to("/etc/shadow")
    out = cli.run(None, "import", "google-authenticator", "--user", frank.name)
    assert out.returncode == 1 and "symbolic link" in out.stderr, out.stderr
    assert "root:" not in out.stdout + out.stderr


def oath_line(kind, user, pin, hexsecret, *rest):
    return "\t".join([kind, user, pin, hexsecret, *rest]) + "\n"


def oathtool_hex(hexsecret, at, digits=6):
    """oathtool in hex mode (no -b), the way pam_oath's secrets are written."""
    return subprocess.run(["oathtool", "--totp", f"--digits={digits}", f"--now=@{int(at)}",
                           hexsecret], capture_output=True, text=True, check=True).stdout.strip()


def test_a_pam_oath_usersfile(cli, bus, daemon, users, workdir):
    totp, hotp, pinned, used = users.add(), users.add(), users.add(), users.add()
    secrets_hex = {user.name: secrets.token_hex(20) for user in (totp, hotp, pinned, used)}
    step = step_now()
    last = oathtool_hex(secrets_hex[used.name], step * 30)
    usersfile = workdir / "users.oath"
    text = ("# pam_oath users\n"
            + oath_line("HOTP/T30/6", totp.name, "-", secrets_hex[totp.name])
            + oath_line("HOTP", hotp.name, "-", secrets_hex[hotp.name])
            + oath_line("HOTP/T30/8", pinned.name, "4711", secrets_hex[pinned.name])
            # As liboath rewrites a line after a login: counter, last OTP, local time.
            + oath_line("HOTP/T30", used.name, "-", secrets_hex[used.name], "0", last,
                        time.strftime("%Y-%m-%dT%H:%M:%SL")))
    usersfile.write_text(text)
    usersfile.chmod(0o600)
    before = snapshot(usersfile)

    out = cli.run(None, "import", "oath", str(usersfile), "--json")
    assert out.returncode == 1, "the HOTP entry was not imported: " + out.stderr
    assert "1 of 4 entries were not imported" in out.stderr, out.stderr
    report = json.loads(out.stdout)
    assert report["source"] == "pam_oath"
    by_user = {entry["user"]: entry for entry in report["users"]}
    assert by_user[totp.name]["imported"] is True
    assert by_user[hotp.name]["imported"] is False
    assert "event-based" in by_user[hotp.name]["reason"]
    assert by_user[pinned.name]["imported"] is True
    assert any("PIN does not carry over" in n for n in by_user[pinned.name]["notes"])
    assert "4711" not in out.stdout
    # pam_oath records the last code, not its step: the daemon finds the step, the CLI never
    # shows the code.
    assert by_user[used.name]["enrollment"]["last_code_given"] is True
    assert by_user[used.name]["enrollment"]["last_step"] == 0
    assert by_user[totp.name]["enrollment"]["last_code_given"] is False
    assert last not in out.stdout + out.stderr
    assert not any(s in out.stdout + out.stderr for s in secrets_hex.values())
    assert snapshot(usersfile) == before

    # oathtool in hex mode, as pam_oath users' tokens compute them.
    assert verify(bus, totp, oathtool_hex(secrets_hex[totp.name], step * 30))["outcome"] == 0
    assert verify(bus, pinned, oathtool_hex(secrets_hex[pinned.name], step * 30, 8))["outcome"] == 0
    assert status(bus, hotp)["enrolled"] is False
    # The code last used with pam_oath stays spent, and so does the one before; the next works.
    assert verify(bus, used, last)["outcome"] == 1
    assert verify(bus, used, oathtool_hex(secrets_hex[used.name], (step - 1) * 30))["outcome"] == 1
    assert verify(bus, used, oathtool_hex(secrets_hex[used.name], (step + 1) * 30))["outcome"] == 0

    # Text summary, one user selected; already imported now.
    out = cli.run(None, "import", "oath", str(usersfile), "--user", totp.name)
    assert out.returncode == 1
    assert f"{totp.name}: skipped (line 2): {totp.name} is already enrolled" in out.stdout, out


def test_a_struct_of_another_version_is_refused_not_misread(bus, daemon, users):
    """An ImportedEnrollment without last_code (what a daemon older than it expects) is refused
    by the signature check: the same check makes an older daemon refuse today's struct."""
    from jeepney import DBusAddress, MessageType, new_method_call
    from jeepney.io.blocking import open_dbus_connection
    from jeepney.low_level import HeaderFields
    dave = users.add()
    address = DBusAddress("/org/twofactor/Daemon1", bus_name="org.twofactor.Daemon1",
                          interface="org.twofactor.Daemon1")
    old = ("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "SHA1", 6, 30, 0, 0, [], "pam_oath")
    conn = open_dbus_connection(bus=bus.address)
    try:
        reply = conn.send_and_get_reply(
            new_method_call(address, "ImportEnrollment", "s(ssuuutass)", (dave.name, old)),
            timeout=30)
    finally:
        conn.close()
    assert reply.header.message_type == MessageType.error
    assert reply.header.fields.get(HeaderFields.error_name) == \
        "org.freedesktop.DBus.Error.InvalidArgs", reply.body
    assert status(bus, dave)["enrolled"] is False


def test_an_80_bit_secret_is_taken_over_and_keeps_working(cli, bus, daemon, users, workdir):
    """Old google-authenticator versions and many pam_oath setups have 80-bit secrets: they are
    imported (with advice to re-enroll later), stored, read back and checked like any other."""
    gus = users.add()
    hexsecret = secrets.token_hex(10)
    usersfile = workdir / "short.oath"
    usersfile.write_text(oath_line("HOTP/T30", gus.name, "-", hexsecret))
    out = cli.run(None, "import", "oath", str(usersfile))
    assert out.returncode == 0, (out.stdout, out.stderr)
    assert "80 bits, fewer than 128" in out.stdout, out.stdout
    state = status(bus, gus)
    assert state["enrolled"] is True and state["problem"] == "", state
    step = step_now()
    assert verify(bus, gus, oathtool_hex(hexsecret, step * 30))["outcome"] == 0
    # After a restart too: the record is read back from disk.
    daemon.restart()
    assert verify(bus, gus, oathtool_hex(hexsecret, (step + 1) * 30))["outcome"] == 0
