"""Findings of the abuse review (issue 11) that are not about floods: a uid alias, refused
calls left without a trace, throttling by source, the clock-skew hint."""
import json
import subprocess

from conftest import CLEAN_ENV, CONTEXT, binary, call_as, enroll, root_call, wrong_code

ACCEPTED, REJECTED, DELAYED, LOCKED = 0, 1, 2, 3
PROMPT = 1
REQUIRED = '[policy]\ndefault = "required"\n'


def context_from(rhost):
    return {**CONTEXT, "rhost": rhost}


def test_an_alias_sharing_an_enrolled_users_uid_is_asked_and_refused(bus, users, make_daemon):
    daemon = make_daemon(REQUIRED)
    alice = users.add()
    enrolled = enroll(bus.address, alice)
    alias = "tfa" + alice.name[2:]
    subprocess.run(["useradd", "--non-unique", "--uid", str(alice.uid), "--gid",
                    str(alice.gid), "--no-create-home", alias], check=True)
    users.made.append(alias)
    plan = root_call(bus.address, "LoginPlan", alias, CONTEXT)["ok"]
    assert plan["action"] == PROMPT, plan
    reply = root_call(bus.address, "Verify", alias, enrolled.code(), CONTEXT)["ok"]
    assert reply["outcome"] == REJECTED, reply
    assert f"user-name-differs user={alias} account={alice.name}" in daemon.log_text()
    # The account itself is untouched.
    assert root_call(bus.address, "Verify", alice.name, enrolled.code(),
                     CONTEXT)["ok"]["outcome"] == ACCEPTED


def test_refused_calls_are_logged_once_per_caller_and_minute(bus, users, make_daemon):
    daemon = make_daemon()
    prober, victim = users.add(), users.add()
    for _ in range(5):
        reply = call_as(bus.address, prober, "Status", victim.name)
        assert reply.get("error") == "org.twofactor.Error.AccessDenied", reply
    lines = [line for line in daemon.log_text().splitlines() if "call-refused" in line]
    assert len(lines) == 1, lines
    assert f"uid={prober.uid}" in lines[0] and "method=Status" in lines[0]
    assert "reason=access-denied" in lines[0]


def test_a_guessing_host_never_delays_the_right_code_from_another(bus, users, make_daemon):
    make_daemon()
    alice = users.add()
    enrolled = enroll(bus.address, alice)
    attacker = context_from("192.0.2.66")
    outcomes = [root_call(bus.address, "Verify", alice.name, wrong_code(enrolled.secret),
                          attacker)["ok"]["outcome"] for _ in range(5)]
    # free_failures = 3: a fourth failure still goes through, then the source waits.
    assert outcomes == [REJECTED] * 4 + [DELAYED], outcomes
    reply = root_call(bus.address, "Verify", alice.name, enrolled.code(),
                      context_from("2001:db8:7::5"))["ok"]
    assert reply["outcome"] == ACCEPTED, reply
    out = subprocess.run([binary("twofactor"), "status", alice.name, "--json"],
                         env=dict(CLEAN_ENV, DBUS_SYSTEM_BUS_ADDRESS=bus.address),
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    throttled = json.loads(out.stdout)["throttled_sources"]
    assert [(entry["source"], entry["failures"]) for entry in throttled] == \
        [("192.0.2.66", 4)], throttled
    assert throttled[0]["retry_after_seconds"] > 0
