"""`require_publickey` through real libpam (pamtester under pam_wrapper), the module alone in
the stack as in the ssh-key-and-code recipe: SSH_AUTH_INFO_0 counts only in the PAM
environment (pamtester -E, pam_putenv), never in the process environment."""
import pytest

from pam_harness import AUTH_ERR, PROMPT, Enrolled, module_line, pamtester, write_service

SERVICE = "tf-publickey"
KEY_INFO = "publickey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPublicKeyOfTheTest"
PERM_DENIED = "Permission denied"                                        # PAM_PERM_DENIED


@pytest.fixture
def stack(workdir, bus):
    def make(*args):
        return write_service(workdir / "pam.d", SERVICE,
                             [module_line(bus.address, timeout=5, args=args)])
    return make


def test_the_module_alone_denies_an_exempt_user_without_the_argument(daemon, users, stack):
    """The bug require_publickey fixes: every module ignores, and PAM denies."""
    result = pamtester(stack(), SERVICE, users.add().name, pam_env={"SSH_AUTH_INFO_0": KEY_INFO})
    assert result.returncode != 0 and PERM_DENIED in result.output, result


def test_a_key_in_the_pam_environment_lets_an_exempt_user_in(daemon, users, stack):
    result = pamtester(stack("require_publickey"), SERVICE, users.add().name,
                       pam_env={"SSH_AUTH_INFO_0": KEY_INFO + "\n"})
    assert result.ok and result.prompts == 0, result


def test_a_key_in_the_pam_environment_still_needs_the_code(bus, daemon, users, stack):
    alice = users.add()
    token = Enrolled(bus.address, alice)
    result = pamtester(stack("require_publickey"), SERVICE, alice.name, [token.code()],
                       pam_env={"SSH_AUTH_INFO_0": KEY_INFO})
    assert result.ok and result.prompts == 1, result


@pytest.mark.parametrize("where", ["nowhere", "process environment", "no publickey line"])
def test_without_a_key_in_the_pam_environment_everyone_is_refused_unasked(bus, daemon, users,
                                                                          stack, where):
    exempt, enrolled = users.add(), users.add()
    Enrolled(bus.address, enrolled)
    for user in (exempt, enrolled):
        kwargs = {}
        if where == "process environment":
            kwargs["extra_env"] = {"SSH_AUTH_INFO_0": KEY_INFO}
        elif where == "no publickey line":
            kwargs["pam_env"] = {"SSH_AUTH_INFO_0": "keyboard-interactive"}
        result = pamtester(stack("require_publickey"), SERVICE, user.name, **kwargs)
        assert result.returncode != 0 and AUTH_ERR in result.output, result
        assert result.prompts == 0 and PROMPT not in result.output, result
        assert "This login needs an SSH key first." in result.output, result
