"""`twofactord storage new-key PATH`: the fleet key file, made by the real binary."""
import base64
import os
import re
import stat
import subprocess

from conftest import CLEAN_ENV, binary

BASE64_KEY_LINE = re.compile(r"[A-Za-z0-9+/]{43}=\n")


def new_key(path):
    return subprocess.run([binary("twofactord"), "storage", "new-key", str(path)],
                          capture_output=True, text=True, env=CLEAN_ENV, timeout=30)


def test_new_key_is_root_only_one_base64_line_of_32_bytes(tmp_path):
    path = tmp_path / "secret.key"
    result = new_key(path)
    assert result.returncode == 0, result.stderr
    meta = path.stat()
    assert stat.S_IMODE(meta.st_mode) == 0o600
    assert stat.S_ISREG(meta.st_mode) and meta.st_uid == 0
    text = path.read_text()
    assert BASE64_KEY_LINE.fullmatch(text), "not one line of 44 base64 characters"
    assert len(base64.b64decode(text.strip(), validate=True)) == 32
    # Nothing secret on the terminal: only the path and the key id.
    assert text.strip() not in result.stdout + result.stderr
    assert re.fullmatch(rf"{re.escape(str(path))}: new fleet key, key id [0-9a-f]{{16}}\n",
                        result.stdout), result.stdout


def test_new_key_refuses_an_existing_file_and_leaves_it_unchanged(tmp_path):
    path = tmp_path / "secret.key"
    assert new_key(path).returncode == 0
    before = path.read_bytes()
    again = new_key(path)
    assert again.returncode != 0
    assert "exists" in again.stderr, again.stderr
    assert path.read_bytes() == before
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_new_key_does_not_write_through_a_link(tmp_path):
    target = tmp_path / "elsewhere"
    link = tmp_path / "secret.key"
    os.symlink(target, link)
    assert new_key(link).returncode != 0
    assert not target.exists()


def test_two_runs_make_different_keys(tmp_path):
    assert new_key(tmp_path / "a.key").returncode == 0
    assert new_key(tmp_path / "b.key").returncode == 0
    assert (tmp_path / "a.key").read_text() != (tmp_path / "b.key").read_text()


def test_the_old_flags_still_work_beside_the_subcommand(tmp_path):
    config = tmp_path / "twofactor.toml"
    config.write_text("")
    result = subprocess.run([binary("twofactord"), "--check-config", "--config", str(config)],
                            capture_output=True, text=True, env=CLEAN_ENV, timeout=30)
    assert result.returncode == 0, result.stderr
    assert f"{config}: valid" in result.stdout
