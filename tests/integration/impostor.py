#!/usr/bin/env python3
"""A fake twofactord that says yes to everything, for the PAM module's trust tests.

    impostor.py ADDRESS LOGFILE

Owns org.twofactor.Daemon1 on the bus at ADDRESS, answers `LoginPlan` with Prompt (1, "")
and `Verify` with Accepted (0, False, 10, 0, 0, 0, 0); zbus sends a returned struct as the
reply's out arguments, so these are the out arguments, with the signatures "ysbb" and "ybuxtutbbb"
the real daemon uses. Every method call it receives is appended to LOGFILE as one JSON line,
so a test can tell whether a client talked to it at all.

Prints `READY <unique name>` once it owns the name, or `REFUSED <error>` and exits 2 when the
bus will not let it (as the real policy does for a non-root owner).
"""
import json
import sys

from jeepney import MessageType, new_error, new_method_return
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection
from jeepney.low_level import HeaderFields

NAME = "org.twofactor.Daemon1"
# RequestName: DBUS_NAME_FLAG_DO_NOT_QUEUE; reply 1 = primary owner.
DO_NOT_QUEUE = 4
PRIMARY_OWNER = 1

ANSWERS = {
    "LoginPlan": ("ysbb", (1, "", False, False)),
    "Verify": ("ybuxtutbbb", (0, False, 10, 0, 0, 0, 0, False, False, False)),
}


def main():
    address, log_path = sys.argv[1], sys.argv[2]
    conn = open_dbus_connection(bus=address)
    reply = conn.send_and_get_reply(message_bus.RequestName(NAME, DO_NOT_QUEUE), timeout=10)
    if reply.header.message_type == MessageType.error or reply.body[0] != PRIMARY_OWNER:
        print("REFUSED", reply.header.fields.get(HeaderFields.error_name), reply.body,
              flush=True)
        sys.exit(2)
    print("READY", conn.unique_name, flush=True)
    with open(log_path, "a") as log:
        while True:
            message = conn.receive()
            if message.header.message_type != MessageType.method_call:
                continue
            fields = message.header.fields
            member = fields.get(HeaderFields.member)
            log.write(json.dumps({"member": member,
                                  "interface": fields.get(HeaderFields.interface),
                                  "sender": fields.get(HeaderFields.sender)}) + "\n")
            log.flush()
            if member in ANSWERS:
                signature, body = ANSWERS[member]
                conn.send(new_method_return(message, signature, body))
            else:
                conn.send(new_error(message, "org.freedesktop.DBus.Error.UnknownMethod",
                                    "s", (f"impostor: no {member}",)))


if __name__ == "__main__":
    main()
