"""Removing the package never leaves a PAM stack that names a missing module.

`dpkg -r` takes the module out of common-auth through pam-auth-update, but a line an
administrator added by hand (sshd, su, sudo, login, any file in /etc/pam.d) would name a deleted
module afterwards ("Module is unknown": su, sudo and ssh broken). prerm refuses the removal
while such a line exists, and says which and what to do. In the sandbox of test_package.py
(its fixtures, made anew for this module: the real .deb, dpkg, pam-auth-update and libpam).
"""
import secrets

# pkg and host_before are fixtures, pytestmark the skip conditions: used by name.
from test_package import (DEB, SUCCESS, add_user, enroll, host_before, next_code,  # noqa: F401
                          pamtester, pkg, pytestmark, system_like)
from test_package import test_the_host_saw_none_of_it as host_unchanged


def put_file(sandbox, path, text):
    staged = sandbox.work / ("staged-" + secrets.token_hex(4))
    staged.write_text(text)
    sandbox.run(["install", "-m", "0644", str(staged), path])


def hand_edit(sandbox, path, added):
    """Append `added` lines to the sandbox's `path` (made if missing), as an administrator
    following a recipe by hand would. Returns the original (None: there was none) and the
    line numbers of the added lines."""
    exists = sandbox.run(["test", "-f", path], check=False).returncode == 0
    original = sandbox.read(path) if exists else None
    before = (original or "").rstrip("\n")
    text = (before + "\n" if before else "") + "".join(line + "\n" for line in added)
    put_file(sandbox, path, text)
    first = len(before.split("\n")) + 1 if before else 1
    return original, list(range(first, first + len(added)))


def restore(sandbox, path, original):
    if original is None:
        sandbox.run(["rm", "-f", path])
    else:
        put_file(sandbox, path, original)


def test_removal_is_refused_while_pam_files_name_the_module(pkg):
    """A hand-added line that names the module (bare, with arguments, or as an absolute path)
    would name a deleted module once the package is gone ("Module is unknown" in su, sudo,
    sshd): prerm refuses the removal, lists every such FILE:LINE, and leaves the package,
    the daemon and logins working. A commented-out line and the line pam-auth-update manages in
    common-auth do not block. Once the files are fixed, the removal goes through and PAM
    still works."""
    system = system_like(pkg)
    sb = pkg.sandbox
    assert "pam_twofactor.so" in sb.read("/etc/pam.d/common-auth"), "the managed line is there"
    module = next(f for f in pkg.files if f.endswith("/pam_twofactor.so"))
    absolute = f"/etc/pam.d/tf-pkg-{secrets.token_hex(4)}"
    edits = {
        "/etc/pam.d/sshd": ["auth required pam_twofactor.so require_publickey"],
        "/etc/pam.d/su": ["auth [success=ok default=die] pam_twofactor.so tries=3"],
        absolute: ["@include common-auth", f"auth required {module}"],
        "/etc/pam.d/login": ["# auth required pam_twofactor.so",
                             "auth optional pam_permit.so # pam_twofactor.so later"],
    }
    originals, numbers = {}, {}
    try:
        for path, added in edits.items():
            originals[path], numbers[path] = hand_edit(sb, path, added)
        blocking = [f"{path}:{n}: {line}" for path in ("/etc/pam.d/sshd", "/etc/pam.d/su")
                    for n, line in zip(numbers[path], edits[path])]
        blocking.append(f"{absolute}:{numbers[absolute][1]}: auth required {module}")

        refused = sb.run(["dpkg", "-r", "twofactor"], check=False, timeout=120)
        output = refused.stdout + refused.stderr
        print("\n" + output)
        assert refused.returncode != 0, output
        for line in blocking:
            assert line in output, (line, output)
        assert "/etc/pam.d/login" not in output, "a commented-out line blocked the removal"
        assert "common-auth" not in output, "pam-auth-update's own line blocked the removal"
        assert "Fix each file first" in output

        # Nothing changed: installed (dpkg notes the wish to remove it), the profile still on,
        # the module there, the daemon up.
        status = sb.run(["dpkg-query", "-W", "-f=${Status}", "twofactor"]).stdout
        assert status == "deinstall ok installed", status
        assert "pam_twofactor.so" in sb.read("/etc/pam.d/common-auth")
        assert sb.stat(module)[module] is not None
        assert system["daemon"].poll() is None, "the installed daemon was stopped"
        # Logins still ask for the code, through the managed line and a hand-edited stack.
        password = "pw-" + secrets.token_hex(6)
        user, _, _ = add_user(sb, password=password)
        secret, step = enroll(sb, user)
        done = pamtester(sb, system["service"], user, [password, next_code(secret, step)])
        assert done.returncode == 0 and SUCCESS in done.output, done
    finally:
        for path, original in originals.items():
            restore(sb, path, original)

    # Fixed (the lines gone again): removed, the profile out of common-auth, and the service
    # that includes common-auth asks for the password alone.
    sb.run(["dpkg", "-r", "twofactor"], timeout=120)
    status = sb.run(["dpkg-query", "-W", "-f=${Status}", "twofactor"]).stdout
    assert status == "deinstall ok config-files", status
    assert "pam_twofactor" not in sb.read("/etc/pam.d/common-auth")
    assert sb.stat(module)[module] is None
    done = pamtester(sb, system["service"], user, [password])
    assert done.returncode == 0 and SUCCESS in done.output, done
    assert "Verification code" not in done.output


def test_upgrade_is_never_refused_and_purge_of_a_removed_package_neither(pkg):
    """An upgrade (prerm upgrade) keeps the module, so hand-added lines do not stop it. Once
    the package is removed the module is gone, so purging it (config files only) is never
    refused either; a PAM line that names the module is then reported as broken."""
    sb = pkg.sandbox
    sb.run(["dpkg", "-i", DEB], timeout=120)
    path = "/etc/pam.d/su"
    original, numbers = hand_edit(sb, path, ["auth required pam_twofactor.so"])
    try:
        sb.run(["dpkg", "-i", DEB], timeout=120)
        refused = sb.run(["dpkg", "-r", "twofactor"], check=False, timeout=120)
        assert refused.returncode != 0 and f"{path}:{numbers[0]}:" in refused.stderr, refused
    finally:
        restore(sb, path, original)
    sb.run(["dpkg", "-r", "twofactor"], timeout=120)
    status = sb.run(["dpkg-query", "-W", "-f=${Status}", "twofactor"]).stdout
    assert status == "deinstall ok config-files", status
    path = f"/etc/pam.d/tf-pkg-{secrets.token_hex(4)}"
    original, numbers = hand_edit(sb, path, ["auth required pam_twofactor.so"])
    try:
        done = sb.run(["dpkg", "--purge", "twofactor"], timeout=120)
        assert f"{path}:{numbers[0]}:auth required pam_twofactor.so" in done.stderr, done.stderr
        status = sb.run(["dpkg-query", "-W", "-f=${Status}", "twofactor"], check=False).stdout
        assert "config-files" not in status and "installed" not in status.replace(
            "not-installed", ""), status
    finally:
        restore(sb, path, original)


def test_the_host_saw_none_of_it_here_either(pkg, host_before):
    host_unchanged(pkg, host_before)
