"""Issue 11: the daemon runs as root, so it refuses a configuration, or a `[notify]` or
`[delivery]` program, that anyone but root could change: at start, with --check-config, and
(for programs) again before each run.

Each case is one of the issue's observations, with the real binary and real accounts: a
world-writable config owned by an ordinary user that says `default = "disabled"`, a notify
program owned by that user, a program in a directory the user can write.
"""
import subprocess

import pytest

from conftest import binary
# cli and cli_bin are test_cli's fixtures, shared here.
from test_cli import cli, cli_bin, enroll  # noqa: F401
from test_notify import notify_daemon, script, wait_for_log  # noqa: F401


def run_daemon(bus, workdir, config, *extra):
    """twofactord as root with `config`; it must exit at once with its refusal."""
    command = [binary("twofactord"), "--bus-address", bus.address,
               "--state-dir", str(workdir / "state"), "--config", str(config), *extra]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail(f"twofactord {' '.join(extra)} accepted {config} and kept running")


def assert_refused(result, message):
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert message in result.stderr, result.stderr
    assert "valid" not in result.stdout, result.stdout


@pytest.mark.parametrize("mode", ["start", "--check-config"])
def test_a_world_writable_config_owned_by_a_user_is_refused(bus, users, workdir, mode):
    mallory = users.add()
    config = workdir / "twofactor.toml"
    config.write_text('[policy]\ndefault = "disabled"\n')
    config.chmod(0o666)
    subprocess.run(["chown", mallory.name, str(config)], check=True)
    extra = ["--check-config"] if mode == "--check-config" else []
    assert_refused(run_daemon(bus, workdir, config, *extra),
                   f"refusing the configuration {config}: {config} belongs to uid "
                   f"{mallory.uid}, not root")
    subprocess.run(["chown", "root", str(config)], check=True)
    assert_refused(run_daemon(bus, workdir, config, *extra),
                   f"is writable by group and others (mode 0666), so they could change what "
                   f"the daemon trusts as root; fix: chmod go-w {config}")
    config.chmod(0o644)
    checked = run_daemon(bus, workdir, config, "--check-config")
    assert checked.returncode == 0 and f"{config}: valid" in checked.stdout, checked


@pytest.mark.parametrize("section", ["notify", "delivery"])
@pytest.mark.parametrize("mode", ["start", "--check-config"])
def test_a_program_owned_by_a_user_is_refused(bus, users, workdir, section, mode):
    mallory = users.add()
    program = script(workdir, "program", "id > /tmp/pwned")
    subprocess.run(["chown", mallory.name, str(program)], check=True)
    config = workdir / "twofactor.toml"
    config.write_text(f'[{section}]\ncommand = "{program}"\n')
    extra = ["--check-config"] if mode == "--check-config" else []
    assert_refused(run_daemon(bus, workdir, config, *extra),
                   f"refusing the [{section}] command {program}: {program} belongs to uid "
                   f"{mallory.uid}, not root, so that user could change what the daemon "
                   f"trusts as root; fix: chown root {program}")


@pytest.mark.parametrize("writable", ["owned by the user", "mode 0777"])
def test_a_program_in_a_user_writable_directory_is_refused(bus, users, workdir, writable):
    mallory = users.add()
    bin_dir = workdir / "bin"
    bin_dir.mkdir()
    program = script(bin_dir, "notify", "exit 0")
    if writable == "mode 0777":
        bin_dir.chmod(0o777)
        message = f"{bin_dir} is writable by group and others (mode 0777)"
    else:
        subprocess.run(["chown", mallory.name, str(bin_dir)], check=True)
        message = f"{bin_dir} belongs to uid {mallory.uid}, not root"
    config = workdir / "twofactor.toml"
    config.write_text(f'[notify]\ncommand = "{program}"\n')
    for extra in ([], ["--check-config"]):
        assert_refused(run_daemon(bus, workdir, config, *extra),
                       f"refusing the [notify] command {program}: {message}")


def test_a_program_made_writable_after_start_is_not_run(cli, bus, notify_daemon, users,
                                                        workdir):
    """The user then sets off an event by enrolling: the program is checked again first."""
    ran = workdir / "ran"
    program = script(workdir, "notify", f"id >> {ran}")
    daemon = notify_daemon(f'[notify]\ncommand = "{program}"\n')
    program.chmod(0o777)
    alice = users.add()
    enroll(cli, alice)
    wait_for_log(daemon, r"notify-refused event=enrolled error=.*chmod go-w")
    assert not ran.exists(), ran.read_text()
