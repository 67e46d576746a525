"""Who may call what: every method x every kind of caller, as real uids on the real bus.

The table below is the contract (docs/dbus-api.md, "Who may call what"). Each cell is run
against a freshly enrolled target user. A denied cell must answer exactly
org.twofactor.Error.AccessDenied and leave the target's state file byte for byte unchanged;
an allowed cell must get past authorization and give the answer the logic gives for that
method, so "allowed" cannot pass by failing for some other reason.
"""
import subprocess

import pytest

from conftest import ACCESS_DENIED, CONTEXT, ERR, Session, enroll, root_call, state_file, \
    wrong_code

ALLOW, DENY = "allow", "deny"
ROLES = ("root", "self", "other", "admin", "unknown_uid")
UNKNOWN_UID = 54321

# Expected authorization.     root   self   other  admin  unknown_uid
MATRIX = {
    "LoginPlan":             (ALLOW, ALLOW, DENY, ALLOW, DENY),
    "Verify":                (ALLOW, ALLOW, DENY, ALLOW, DENY),
    "VerifyAny":             (ALLOW, ALLOW, DENY, ALLOW, DENY),
    "Status":                (ALLOW, ALLOW, DENY, ALLOW, DENY),
    "ExplainPolicy":         (ALLOW, ALLOW, DENY, ALLOW, DENY),
    "BeginEnrollment":       (ALLOW, ALLOW, DENY, ALLOW, DENY),
    "ConfirmEnrollment":     (ALLOW, ALLOW, DENY, ALLOW, DENY),
    "RegenerateBackupCodes": (ALLOW, ALLOW, DENY, ALLOW, DENY),
    "Disable":               (ALLOW, ALLOW, DENY, ALLOW, DENY),
    "ListUsers":             (ALLOW, DENY,  DENY, ALLOW, DENY),
    "UnlockUser":            (ALLOW, DENY,  DENY, ALLOW, DENY),
    # Last: when allowed it removes the target's enrollment.
    "ResetUser":             (ALLOW, DENY,  DENY, ALLOW, DENY),
}


def arguments(method, target, bad_code):
    """Well-formed arguments, so input validation never answers before authorization."""
    return {
        "LoginPlan": [target, CONTEXT],
        "Verify": [target, bad_code, CONTEXT],
        "VerifyAny": [target, [bad_code, "9" + bad_code], CONTEXT],
        "Status": [target],
        "ExplainPolicy": [target],
        "BeginEnrollment": [target, False, ""],
        "ConfirmEnrollment": [target, bad_code],
        "RegenerateBackupCodes": [target, bad_code],
        "Disable": [target, bad_code],
        "ListUsers": [],
        "UnlockUser": [target],
        "ResetUser": [target],
    }[method]


def allowed_answer_problem(method, role, target, reply):
    """None if `reply` is what an authorized call of `method` gives, else what is wrong.
    The target is enrolled, its policy is required, and the code passed is wrong."""
    ok = reply.get("ok")
    error = reply.get("error")

    def expect_error(name):
        return None if error == ERR + name else f"expected {name}"

    if method == "LoginPlan":
        return None if ok and ok["action"] == 1 else "expected Prompt"
    if method == "Verify":
        return None if ok and ok["outcome"] == 1 else "expected Rejected"
    if method == "VerifyAny":
        rejected = ok and ok["reply"]["outcome"] == 1 and ok["accepted_index"] == -1
        return None if rejected else "expected Rejected"
    if method == "Status":
        return None if ok and ok["user"] == target and ok["enrolled"] else "expected status"
    if method == "ExplainPolicy":
        return None if ok and ok["policy"] == "required" else "expected required"
    if method == "BeginEnrollment":
        return expect_error("AlreadyEnrolled")
    if method == "ConfirmEnrollment":
        return expect_error("NoPendingEnrollment")
    if method == "RegenerateBackupCodes":
        if role == "self":  # the user must prove possession; admins need not
            return expect_error("WrongCode")
        return None if ok and len(ok) == 10 else "expected 10 new codes"
    if method == "Disable":
        return expect_error("PolicyForbids")
    if method == "ListUsers":
        return None if ok is not None and target in [s["user"] for s in ok] else "expected list"
    if method in ("UnlockUser", "ResetUser"):
        return None if "ok" in reply else "expected success"
    raise AssertionError(method)


@pytest.fixture
def cast(bus, users, make_daemon):
    """The target user, the callers and a daemon whose admin group is a fresh real group."""
    admin_group = users.group()
    target = users.add()
    other = users.add()
    admin = users.add(groups=[admin_group])
    config = f"""
[policy.users]
{target.name} = "required"

[admin]
group = "{admin_group}"

[lockout]
max_failures = 100
free_failures = 100
base_delay_seconds = 0
"""
    daemon = make_daemon(config)
    callers = {"root": None, "self": target, "other": other, "admin": admin,
               "unknown_uid": "ghost"}
    return daemon, target, callers


def ghost_session(address, users):
    """A connection whose uid has no passwd entry. dbus-daemon itself refuses to let such a
    uid connect (see test_bus_refuses_uid_without_passwd_entry), so the only way one reaches
    twofactord is an account deleted while its connection stays open: connect, then userdel."""
    ghost = users.add()
    session = Session(address, ghost)
    assert session.unique_name().startswith(":")
    subprocess.run(["userdel", "--force", "--remove", ghost.name], check=True,
                   capture_output=True)
    users.made.remove(ghost.name)
    assert subprocess.run(["getent", "passwd", str(ghost.uid)]).returncode != 0
    return session, ghost


def test_authorization_matrix(bus, users, cast, capsys):
    daemon, target, callers = cast
    assert set(MATRIX) == {
        "LoginPlan", "Verify", "VerifyAny", "Status", "ExplainPolicy", "BeginEnrollment",
        "ConfirmEnrollment", "RegenerateBackupCodes", "Disable", "ListUsers", "UnlockUser",
        "ResetUser"}, "a method is missing from the matrix"
    checks = 0
    unexpected_allows, unexpected_denials, wrong_answers = [], [], []
    for column, role in enumerate(ROLES):
        # A fresh enrollment for every caller, so one row's allowed changes do not leak.
        root_call(bus.address, "ResetUser", target.name)
        enrolled = enroll(bus.address, target)
        bad = wrong_code(enrolled.secret)
        before = state_file(daemon, target.name).read_bytes()
        denied_only = True
        if callers[role] == "ghost":
            session, _ = ghost_session(bus.address, users)
        else:
            session = Session(bus.address, callers[role])
        with session:
            for method, row in MATRIX.items():
                expected = row[column]
                reply = session.call(method, *arguments(method, target.name, bad))
                assert "exception" not in reply, (method, role, reply)
                checks += 1
                denied = reply.get("error") == ACCESS_DENIED
                if expected == DENY:
                    if not denied:
                        unexpected_allows.append((method, role, reply))
                    elif not reply["message"]:
                        wrong_answers.append((method, role, "no message", reply))
                else:
                    denied_only = False
                    if denied:
                        unexpected_denials.append((method, role, reply))
                    else:
                        problem = allowed_answer_problem(method, role, target.name, reply)
                        if problem:
                            wrong_answers.append((method, role, problem, reply))
        if denied_only:
            # Refused callers change nothing: no failure counted, no code spent.
            assert state_file(daemon, target.name).read_bytes() == before, role
            status = root_call(bus.address, "Status", target.name)["ok"]
            assert status["failures_since_success"] == 0, (role, status)
    with capsys.disabled():
        print(f"\nauthorization matrix: {checks} checks ({len(MATRIX)} methods x "
              f"{len(ROLES)} callers), {len(unexpected_allows)} unexpected allows, "
              f"{len(unexpected_denials)} unexpected denials, {len(wrong_answers)} wrong answers")
    assert checks == len(MATRIX) * len(ROLES)
    assert unexpected_allows == [], unexpected_allows
    assert unexpected_denials == [], unexpected_denials
    assert wrong_answers == [], wrong_answers


def test_ordinary_user_learns_nothing_about_other_accounts(bus, users, daemon):
    """For an ordinary caller a missing account, a bad name's neighbour and a real account are
    all the same AccessDenied: no oracle for who exists."""
    alice = users.add()
    bob = users.add()
    enroll(bus.address, bob)
    with Session(bus.address, alice) as session:
        for name in (bob.name, "nosuchuser" + alice.name[2:], "root"):
            for method, args in (("Status", [name]), ("LoginPlan", [name, CONTEXT]),
                                 ("Verify", [name, "123456", CONTEXT]),
                                 ("VerifyAny", [name, ["123456"], CONTEXT]),
                                 ("ExplainPolicy", [name])):
                reply = session.call(method, *args)
                assert reply.get("error") == ACCESS_DENIED, (method, name, reply)
        # The same connection may still act on itself: denial is per target, not sticky.
        assert "ok" in session.call("Status", alice.name)


def test_bus_refuses_uid_without_passwd_entry(bus):
    """setpriv --reuid=54321 with no passwd entry: the system bus policy already refuses the
    connection (dbus-daemon cannot list the uid's groups), before twofactord sees anything."""
    assert subprocess.run(["getent", "passwd", str(UNKNOWN_UID)]).returncode != 0
    probe = ("import sys; from jeepney.io.blocking import open_dbus_connection as o\n"
             "try:\n    o(bus=sys.argv[1])\nexcept Exception:\n    sys.exit(3)\nsys.exit(0)")
    out = subprocess.run(["setpriv", f"--reuid={UNKNOWN_UID}", f"--regid={UNKNOWN_UID}",
                          "--clear-groups", "/usr/bin/python3", "-c", probe, bus.address],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 3, (out.returncode, out.stderr)


def test_uid_without_passwd_entry_is_denied_everything(bus, users, daemon):
    """A uid the system cannot name is nobody: denied on every method, for every target,
    including the account name it had before it was deleted."""
    alice = users.add()
    enroll(bus.address, alice)
    session, ghost = ghost_session(bus.address, users)
    with session:
        for target in (alice.name, "root", ghost.name):
            for method in MATRIX:
                reply = session.call(method, *arguments(method, target, "123456"))
                assert reply.get("error") == ACCESS_DENIED, (method, target, reply)
