"""Review of issue 10: ways around prerm's refusal to remove the package while a PAM stack
names the module. In the sandbox of test_package.py (the real .deb, dpkg and libpam).

libpam reads an `include`/`substack`/`@include` of an absolute path, and of a relative path
with a directory (`local/x` is /etc/pam.d/local/x), and joins continued lines; prerm once
scanned only the lines of the files directly in /etc/pam.d. After the removal such a stack
would fail every login with "Module is unknown".
"""
import secrets

import pytest

# pkg and host_before are fixtures, pytestmark the skip conditions: used by name.
from test_package import DEB, host_before, pamtester, pkg, pytestmark  # noqa: F401
from test_package_removal import put_file


def removal_leaves_no_unknown_module(sb, service):
    """`dpkg -r twofactor`; then `service` must not fail with "Module is unknown": the removal
    was refused, or left nothing that names the module."""
    before = pamtester(sb, service, "root", [])
    assert "Module is unknown" not in before.output, before.output
    removal = sb.run(["dpkg", "-r", "twofactor"], check=False, timeout=120)
    after = pamtester(sb, service, "root", [])
    assert "Module is unknown" not in after.output, (
        "removed, and the stack names the missing module", removal.returncode, after.output)


@pytest.mark.parametrize("included", ["/etc/security/tf-review-{}.pam",
                                      "/etc/pam.d/tf-review-dir-{}/auth"])
def test_removal_never_leaves_an_included_file_naming_the_missing_module(pkg, included):
    sb = pkg.sandbox
    tag = secrets.token_hex(4)
    included = included.format(tag)
    sb.run(["mkdir", "-p", included.rsplit("/", 1)[0]])
    put_file(sb, included, "auth required pam_twofactor.so\n")
    reference = included if included.startswith("/etc/security/") else \
        included.removeprefix("/etc/pam.d/")
    service = f"tf-review-{tag}"
    put_file(sb, f"/etc/pam.d/{service}",
             f"auth include {reference}\n"
             "account required pam_permit.so\n")
    try:
        removal_leaves_no_unknown_module(sb, service)
    finally:
        sb.run(["rm", "-rf", included, f"/etc/pam.d/{service}"])
        sb.run(["dpkg", "-i", DEB], timeout=120)


def test_removal_never_leaves_a_continued_line_naming_the_missing_module(pkg):
    sb = pkg.sandbox
    service = f"tf-review-cont-{secrets.token_hex(4)}"
    put_file(sb, f"/etc/pam.d/{service}", "auth required pam_twofactor.so\\\n    tries=3\n"
                                           "account required pam_permit.so\n")
    try:
        removal_leaves_no_unknown_module(sb, service)
    finally:
        sb.run(["rm", "-f", f"/etc/pam.d/{service}"])
        sb.run(["dpkg", "-i", DEB], timeout=120)
