"""The recipe files of packaging/recipes/ as the tests use them: verbatim, but for the module's
path (the built .so's) and `bus_address=` for the test's bus, in a pam.d directory beside this
host's common-* files (mounted over /etc/pam.d in a private namespace, see pam_harness)."""
import pathlib
import re

from conftest import REPO
from pam_harness import OTHER, bus_address_arg, module_path

RECIPES = REPO / "packaging" / "recipes"
PAM_COMMON = ["common-auth", "common-account", "common-password", "common-session",
              "common-session-noninteractive"]
MODULE_LINE = re.compile(r"^(auth\s+\S+\s+)pam_twofactor\.so\b", re.M)


def recipe_pam(recipe, service, address, extra_auth=()):
    """RECIPE's pam.d/SERVICE with only the module path (and the test bus) substituted;
    `extra_auth` lines go right before the module's line."""
    text = (RECIPES / recipe / "pam.d" / service).read_text()
    assert len(MODULE_LINE.findall(text)) == 1, text
    before = "".join(line + "\n" for line in extra_auth)
    return MODULE_LINE.sub(
        lambda m: before + m.group(1) + module_path() + " " + bus_address_arg(address), text)


def recipe_pam_dir(directory, services, host_files=()):
    """DIR with the given {service: text}, the host's common-* files (and `host_files`,
    e.g. su-l), and a denying `other`. Returns DIR."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    for name in [*PAM_COMMON, *host_files]:
        text = pathlib.Path("/etc/pam.d", name).read_text()
        # The host's stack, not one a test of the package left behind.
        assert "twofactor" not in text, f"/etc/pam.d/{name} names twofactor"
        (directory / name).write_text(text)
    for service, text in services.items():
        (directory / service).write_text(text)
    (directory / "other").write_text(OTHER)
    return directory
