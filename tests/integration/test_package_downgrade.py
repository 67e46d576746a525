"""The package refuses a downgrade over user records its twofactord cannot read.

A twofactord refuses a record of a version newer than it reads (every login of that user
fails), so the package's preinst refuses to install while such records exist, and names them
(docs/storage-format.md). The preinst is taken from the built .deb (`dpkg-deb -e`): first run
alone over copies of a state directory (DPKG_ROOT, which dpkg itself sets for another root),
then by the real dpkg in the sandbox of test_package.py (its fixtures, made anew here).
"""
import re
import shutil
import subprocess

# pkg and host_before are fixtures, pytestmark the skip conditions: used by name.
from conftest import REPO
from test_package import DEB, ENV, host_before, pkg, pytestmark  # noqa: F401
from test_package import test_the_host_saw_none_of_it as host_unchanged

FIXTURES = REPO / "tests" / "fixtures" / "records"
USERS = "var/lib/twofactor/users"


def record_version():
    """RECORD_VERSION as the daemon's source has it."""
    source = (REPO / "daemon" / "src" / "record.rs").read_text()
    return int(re.search(r"^pub const RECORD_VERSION: u32 = (\d+);$", source, re.M).group(1))


def newer_record():
    """The current golden record as a newer twofactord might write it: a higher version and a
    field this one does not know."""
    text = (FIXTURES / f"v{record_version()}-enrolled.toml").read_text()
    return re.sub(r"\Aversion = \d+\n", f"version = {record_version() + 1}\nnew_field = 1\n",
                  text)


def packaged_preinst(tmp_path):
    control = tmp_path / "control"
    subprocess.run(["dpkg-deb", "-e", DEB, str(control)], check=True)
    return control / "preinst"


def run_preinst(preinst, root, *args):
    return subprocess.run(["sh", str(preinst), *args], capture_output=True, text=True,
                          env={**ENV, "DPKG_ROOT": str(root)}, timeout=30)


def state_dir(root, records):
    users = root / USERS
    users.mkdir(parents=True)
    users.chmod(0o700)
    for name, text in records.items():
        (users / name).write_text(text)
        (users / name).chmod(0o600)
    return users


def test_the_packaged_preinst_carries_the_daemons_record_version(tmp_path):
    text = packaged_preinst(tmp_path).read_text()
    assert "@RECORD_VERSION@" not in text
    assert f"\nreadable={record_version()}\n" in text


def test_preinst_accepts_every_version_this_daemon_reads(tmp_path):
    preinst = packaged_preinst(tmp_path)
    # No state at all, an empty one, and every golden record (each version this build reads).
    assert run_preinst(preinst, tmp_path / "none", "install").returncode == 0
    empty = tmp_path / "empty"
    state_dir(empty, {})
    assert run_preinst(preinst, empty, "install").returncode == 0
    golden = tmp_path / "golden"
    records = {f"user{i}.toml": path.read_text()
               for i, path in enumerate(sorted(FIXTURES.glob("*.toml")))}
    assert len(records) >= 2
    # Not records, left to the daemon to report: no version, garbage, a table's `version`.
    records |= {"empty.toml": "", "garbage.toml": "\x00[[[", ".tmp0123": "version = 99\n",
                "tabled.toml": "[attempts]\nversion = 99\n"}
    state_dir(golden, records)
    for args in (["install"], ["upgrade", "0.1.0", "0.1.0"]):
        done = run_preinst(preinst, golden, *args)
        assert (done.returncode, done.stderr) == (0, ""), done


def test_preinst_refuses_newer_records_and_names_each(tmp_path):
    preinst = packaged_preinst(tmp_path)
    root = tmp_path / "root"
    newer = record_version() + 1
    users = state_dir(root, {
        "alice.toml": newer_record(),
        "bob.toml": (FIXTURES / "v1-17a7768-enrolled.toml").read_text(),
        "carol.toml": f"version = {newer + 7}  # from far ahead\n",
    })
    for args in (["install"], ["install", "0.1.0"], ["upgrade", "0.1.0", "0.1.0"]):
        done = run_preinst(preinst, root, *args)
        assert done.returncode != 0, (args, done)
        assert f"{users}/alice.toml: version {newer}" in done.stderr, done.stderr
        assert f"{users}/carol.toml: version {newer + 7}" in done.stderr, done.stderr
        assert "bob.toml" not in done.stderr, done.stderr
        assert f"reads record versions up to {record_version()}" in done.stderr
        assert "Install a twofactor package that reads them" in done.stderr
    # dpkg's other calls (abort-upgrade after a failed upgrade) are never refused.
    assert run_preinst(preinst, root, "abort-upgrade", "0.1.0").returncode == 0
    # The records are only read.
    assert (users / "alice.toml").read_text() == newer_record()
    shutil.rmtree(root)


def test_dpkg_refuses_the_downgrade_until_no_newer_record_is_left(pkg):
    sb = pkg.sandbox
    path = f"/{USERS}/downgraded.toml"
    staged = sb.work / "downgraded.toml"
    staged.write_text(newer_record())
    sb.run(["install", "-D", "-m", "0600", str(staged), path])
    before = sb.run(["md5sum", "/usr/sbin/twofactord"]).stdout

    refused = sb.run(["dpkg", "-i", DEB], timeout=120, check=False)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0, output
    assert f"{path}: version {record_version() + 1}" in output, output
    status = sb.run(["dpkg-query", "-W", "-f=${Status}", "twofactor"]).stdout
    assert status == "install ok installed", status
    assert sb.run(["md5sum", "/usr/sbin/twofactord"]).stdout == before
    assert sb.read(path) == newer_record()

    sb.run(["rm", path])
    sb.run(["dpkg", "-i", DEB], timeout=120)


def test_the_host_saw_none_of_it(pkg, host_before):
    host_unchanged(pkg, host_before)
