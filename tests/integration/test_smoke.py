"""The daemon starts on a private bus and answers through the real policy."""
from conftest import call_as, enroll_as, oathtool


def test_enroll_and_verify_with_oathtool(bus, daemon, users):
    alice = users.add()
    enrolled = enroll_as(bus.address, alice, alice.name)
    assert "ok" in enrolled, enrolled
    secret = enrolled["ok"]["secret"]
    assert len(enrolled["ok"]["backup_codes"]) == 10
    import time
    step = int(time.time()) // 30 + 1
    reply = call_as(bus.address, None, "Verify", alice.name, oathtool(secret, at=step * 30),
                    {"service": "sshd", "rhost": "192.0.2.1", "tty": "ssh"})
    assert reply["ok"]["outcome"] == 0, reply
