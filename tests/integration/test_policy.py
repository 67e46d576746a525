"""Policy: user entries, real groups (strictest wins), the default; what LoginPlan, Status,
ExplainPolicy and Disable make of it; and a configuration with a mistake stops the daemon."""
import subprocess

import pytest

from conftest import CONTEXT, ERR, REPO, Session, binary, enroll, name_owner, root_call, \
    state_file, wrong_code

IGNORE, PROMPT, DENY = 0, 1, 2


@pytest.fixture
def world(bus, users, make_daemon):
    """Real groups and users covering every way a policy can be decided."""
    g = {kind: users.group() for kind in ("req", "req2", "opt", "dis")}
    u = {
        "req": users.add(groups=[g["req"]]),
        "opt": users.add(groups=[g["opt"]]),
        "dis": users.add(groups=[g["dis"]]),
        "req_and_dis": users.add(groups=[g["dis"], g["req"]]),
        "opt_and_dis": users.add(groups=[g["dis"], g["opt"]]),
        "two_required": users.add(groups=[g["req2"], g["req"]]),
        "no_group": users.add(),
        "user_disabled_in_req": users.add(groups=[g["req"]]),
        "user_required_in_dis": users.add(groups=[g["dis"]]),
    }
    # Membership through the primary group counts too.
    primary = "tf" + u["no_group"].name[2:][::-1]
    subprocess.run(["useradd", "--no-create-home", "--gid", g["req"], primary], check=True)
    users.made.append(primary)
    u["primary_req"] = primary
    config = f"""
[policy]
default = "optional"

[policy.groups]
{g["req"]} = "required"
{g["req2"]} = "required"
{g["opt"]} = "optional"
{g["dis"]} = "disabled"

[policy.users]
{u["user_disabled_in_req"].name} = "disabled"
{u["user_required_in_dis"].name} = "required"

[lockout]
max_failures = 100
free_failures = 100
base_delay_seconds = 0
"""
    daemon = make_daemon(config)
    names = {k: (v if isinstance(v, str) else v.name) for k, v in u.items()}
    first_required = min(g["req"], g["req2"])
    expected = {  # key: (policy, source)
        "req": ("required", f"group {g['req']}"),
        "opt": ("optional", f"group {g['opt']}"),
        "dis": ("disabled", f"group {g['dis']}"),
        "req_and_dis": ("required", f"group {g['req']}"),
        "opt_and_dis": ("optional", f"group {g['opt']}"),
        "two_required": ("required", f"group {first_required}"),
        "no_group": ("optional", "default"),
        "user_disabled_in_req": ("disabled", f"user {names['user_disabled_in_req']}"),
        "user_required_in_dis": ("required", f"user {names['user_required_in_dis']}"),
        "primary_req": ("required", f"group {g['req']}"),
    }
    return daemon, u, names, expected


def test_policy_resolution_and_login_plan_before_enrollment(bus, world):
    daemon, _, names, expected = world
    mismatches = []
    for key, (policy, source) in expected.items():
        name = names[key]
        explained = root_call(bus.address, "ExplainPolicy", name)["ok"]
        got = (explained["policy"], explained["source"], explained["explanation"])
        if got != (policy, source, f"{source} → {policy}"):
            mismatches.append((key, "ExplainPolicy", got))
        status = root_call(bus.address, "Status", name)["ok"]
        if (status["policy"], status["policy_source"], status["enrolled"]) != (
                policy, source, False):
            mismatches.append((key, "Status", status))
        plan = root_call(bus.address, "LoginPlan", name, CONTEXT)["ok"]
        want = {"required": DENY, "optional": IGNORE, "disabled": IGNORE}[policy]
        if plan["action"] != want:
            mismatches.append((key, "LoginPlan", plan))
        if want == DENY:
            # The message says whose login, why (the rule) and how to fix it.
            for part in (name, source, "twofactor enroll"):
                if part not in plan["message"]:
                    mismatches.append((key, "Deny message lacks " + part, plan["message"]))
    assert mismatches == []
    assert "denied-not-enrolled" in daemon.log_text()


def test_login_plan_after_enrollment(bus, world):
    _, u, names, _ = world
    for key, action in (("req", PROMPT), ("opt", PROMPT), ("dis", IGNORE),
                        ("user_disabled_in_req", IGNORE)):
        enroll(bus.address, names[key])
        plan = root_call(bus.address, "LoginPlan", names[key], CONTEXT)
        assert plan["ok"]["action"] == action, (key, plan)
    # The user itself gets the same answer (a screen locker runs as the user).
    with Session(bus.address, u["req"]) as session:
        assert session.call("LoginPlan", names["req"], CONTEXT)["ok"]["action"] == PROMPT
        explained = session.call("ExplainPolicy", names["req"])["ok"]
        assert explained["explanation"].endswith("→ required")


def test_disable_refused_while_required_allowed_while_optional(bus, world):
    daemon, u, names, expected = world
    required = enroll(bus.address, u["req"])
    with Session(bus.address, u["req"]) as session:
        refused = session.call("Disable", names["req"], required.code())
    assert refused.get("error") == ERR + "PolicyForbids", refused
    assert expected["req"][1] in refused["message"]
    assert root_call(bus.address, "Disable", names["req"], "").get("error") == \
        ERR + "PolicyForbids"
    assert state_file(daemon, names["req"]).exists()
    assert root_call(bus.address, "Status", names["req"])["ok"]["enrolled"] is True

    optional = enroll(bus.address, u["opt"])
    with Session(bus.address, u["opt"]) as session:
        wrong = session.call("Disable", names["opt"], wrong_code(optional.secret))
        assert wrong.get("error") == ERR + "WrongCode", wrong
        assert state_file(daemon, names["opt"]).exists()
        # The wrong code counted as a failed attempt.
        status = session.call("Status", names["opt"])["ok"]
        assert status["enrolled"] and status["failures_since_success"] == 1, status
        assert session.call("Disable", names["opt"], optional.code()) == {"ok": None}
        assert session.call("Status", names["opt"])["ok"]["enrolled"] is False
    assert not state_file(daemon, names["opt"]).exists()
    assert root_call(bus.address, "LoginPlan", names["opt"], CONTEXT)["ok"]["action"] == IGNORE
    # Nothing left to disable.
    assert root_call(bus.address, "Disable", names["opt"], "").get("error") == \
        ERR + "NotEnrolled"


def test_default_policy_required_and_disabled(bus, users, make_daemon):
    loner = users.add()
    daemon = make_daemon('[policy]\ndefault = "required"\n')
    plan = root_call(bus.address, "LoginPlan", loner.name, CONTEXT)["ok"]
    assert plan["action"] == DENY and "default" in plan["message"], plan
    assert root_call(bus.address, "ExplainPolicy", loner.name)["ok"]["explanation"] == \
        "default → required"
    daemon.restart('[policy]\ndefault = "disabled"\n')
    assert root_call(bus.address, "LoginPlan", loner.name, CONTEXT)["ok"]["action"] == IGNORE


BAD_CONFIGS = {
    # name: (text, line the message must name, words it must contain)
    "unknown key": ('[policy]\ndefault = "optional"\n\n[lockout]\nmax_failure = 3\n',
                    5, ["max_failure"]),
    "digits 7": ('[totp]\nperiod = 30\ndigits = 7\n', 3, ["digits must be 6 or 8"]),
    "policy typo": ('[policy]\ndefault = "requried"\n', 2, ["requried"]),
    "group policy typo": ('[policy.groups]\nwheel = "required"\nstaff = "mandatory"\n', 3,
                          ["mandatory"]),
    "unknown section": ('[policy]\ndefault = "required"\n[polcy]\n', 3, ["polcy"]),
    "max_failures 0": ('[lockout]\nmax_failures = 0\n', 2, ["max_failures"]),
    "window 9": ('\n\n[totp]\nwindow = 9\n', 4, ["window"]),
    "algorithm": ('[totp]\nalgorithm = "MD5"\n', 2, ["MD5"]),
    "not toml": ('[policy\ndefault = optional\n', 1, []),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_refuses_to_start_and_names_the_line(bus, workdir, case):
    text, line, words = BAD_CONFIGS[case]
    config = workdir / "bad.toml"
    config.write_text(text)
    state = workdir / "state"
    for extra in ([], ["--check-config"]):
        # A daemon that accepted the file would serve forever: the timeout is a safety net.
        out = subprocess.run(
            [binary("twofactord"), "--bus-address", bus.address, "--state-dir", str(state),
             "--config", str(config), *extra],
            capture_output=True, text=True, timeout=20)
        assert out.returncode != 0, (extra, out)
        assert f"line {line}" in out.stderr, (extra, out.stderr)
        assert str(config) in out.stderr
        for word in words:
            assert word in out.stderr, (extra, word, out.stderr)
    assert name_owner(bus.address) is None
    assert not state.exists(), "state was touched before the configuration was checked"


def test_check_config_accepts_valid_files(workdir):
    shipped = REPO / "packaging" / "config" / "twofactor.toml"
    full = workdir / "full.toml"
    full.write_text("""
[policy]
default = "required"
groups = { wheel = "required", guests = "disabled" }
users = { alice = "optional" }

[totp]
digits = 8
period = 60
algorithm = "SHA256"
window = 2
issuer = "Example Corp"

[lockout]
max_failures = 5
free_failures = 2
base_delay_seconds = 1
max_delay_seconds = 60

[admin]
group = "sudo"
""")
    empty = workdir / "empty.toml"
    empty.write_text("")
    for config in (shipped, full, empty):
        state = workdir / ("state-" + config.stem)
        out = subprocess.run([binary("twofactord"), "--check-config", "--config", str(config),
                              "--state-dir", str(state)],
                             capture_output=True, text=True, timeout=20)
        assert out.returncode == 0, (config, out)
        assert "valid" in out.stdout
        assert not state.exists()
