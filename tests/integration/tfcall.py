#!/usr/bin/env python3
"""Call twofactord over D-Bus with jeepney: an independent client for the integration tests.

Run as any uid (the tests use setpriv) so the daemon sees a real caller:
    tfcall.py ADDRESS METHOD JSON_ARGS      -> prints {"ok": reply} or {"error": name, ...}
    tfcall.py ADDRESS enroll USER           -> begin, code from pyotp, confirm, one connection
    tfcall.py ADDRESS serve                 -> one connection kept open; reads one JSON request
                                               a line ({"method": M, "args": [...]},
                                               {"op": "enroll", "user": U} (confirms with
                                               the previous step's code) or
                                               {"op": "unique_name"}) and answers one JSON line
"""
import json
import sys
import time

from jeepney import DBusAddress, new_method_call, MessageType
from jeepney.io.blocking import open_dbus_connection

NAME = "org.twofactor.Daemon1"
PATH = "/org/twofactor/Daemon1"

# Method -> (input signature, names of the reply struct's fields or None).
VERIFY_FIELDS = ["outcome", "backup_code_used", "backup_codes_left", "clock_skew_seconds",
                 "retry_after_seconds", "failures_since_success", "last_failure_time",
                 "temporary_code_used", "offer_new_backup_codes", "code_replayed"]
STATUS_FIELDS = ["user", "enrolled", "policy", "policy_source", "backup_codes_left", "locked",
                 "retry_after_seconds", "failures_since_success", "enrolled_at",
                 "last_success_time", "last_success_service", "last_success_rhost", "problem",
                 "grace_ends_at", "temporary_code_expires_at", "delivery_enabled"]
OFFER_FIELDS = ["otpauth_uri", "secret_base32", "label", "issuer", "algorithm", "digits",
                "period", "expires_in_seconds"]
METHODS = {
    "LoginPlan": ("s(sss)", ["action", "message", "can_send_code", "keep_connection"]),
    "Verify": ("ss(sss)", VERIFY_FIELDS),
    "VerifyAny": ("sas(sss)", "verify-any"),
    "Status": ("s", STATUS_FIELDS),
    "ThrottledSources": ("s", "list-of-sources"),
    "BeginEnrollment": ("sbs", OFFER_FIELDS),
    "ConfirmEnrollment": ("ss", None),
    "RegenerateBackupCodes": ("ss", None),
    "Disable": ("ss", None),
    "ListUsers": ("", "list-of-status"),
    "ResetUser": ("s", None),
    "UnlockUser": ("s", None),
    "ExplainPolicy": ("s", ["user", "policy", "source", "explanation"]),
    "BeginLoginEnrollment": ("s(sss)", ["token", "offer"]),
    "ConfirmLoginEnrollment": ("ss s(sss)".replace(" ", ""), None),
    "IssueTemporaryCode": ("st", ["code", "expires_at"]),
    "SetDelivery": ("sb", None),
    "SendCode": ("s(sss)", None),
    "ImportEnrollment": ("s(ssuuutasss)", None),
}


def to_wire(method, args):
    """JSON arguments -> jeepney values (context dicts become (service, rhost, tty))."""
    out = []
    for value in args:
        if isinstance(value, dict):
            value = (value.get("service", ""), value.get("rhost", ""), value.get("tty", ""))
        out.append(value)
    return tuple(out)


def shape(method, body):
    # zbus sends a returned struct as the reply's out arguments, one per field.
    fields = METHODS[method][1]
    if not body:
        return None
    if fields == "verify-any":
        return {"reply": dict(zip(VERIFY_FIELDS, body[0])), "accepted_index": body[1]}
    if fields == "list-of-status":
        return [dict(zip(STATUS_FIELDS, item)) for item in body[0]]
    if fields == "list-of-sources":
        return [dict(zip(["source", "failures", "retry_after_seconds"], item))
                for item in body[0]]
    if fields is None:
        return body[0]
    return dict(zip(fields, body))


def call(conn, method, args):
    signature = METHODS[method][0]
    address = DBusAddress(PATH, bus_name=NAME, interface=NAME)
    message = new_method_call(address, method, signature, to_wire(method, args))
    reply = conn.send_and_get_reply(message, timeout=30)
    if reply.header.message_type == MessageType.error:
        from jeepney.low_level import HeaderFields
        name = reply.header.fields.get(HeaderFields.error_name)
        text = reply.body[0] if reply.body else ""
        return {"error": name, "message": text}
    return {"ok": shape(method, reply.body)}


def enroll(conn, user, replace=False, current_code="", previous_step=False):
    """Begin and confirm on this connection, with a code from pyotp; "step" in the result is
    the step the daemon accepted. With previous_step, confirm with the previous step's code
    (inside the window) so that the current and the next step's codes stay unspent."""
    import pyotp
    offer = call(conn, "BeginEnrollment", [user, replace, current_code])
    if "error" in offer:
        return offer
    totp = pyotp.parse_uri(offer["ok"]["otpauth_uri"])
    period = offer["ok"]["period"]
    for back in ((1, 0) if previous_step else (0,)):
        # If the clock ticked between our reading and the daemon's, the previous step fell
        # out of the window: the current one is inside it whatever happens.
        step = int(time.time()) // period - back
        confirmed = call(conn, "ConfirmEnrollment", [user, totp.at(step * period)])
        if confirmed.get("error") != "org.twofactor.Error.WrongCode":
            break
    if "error" in confirmed:
        return confirmed
    return {"ok": {"secret": offer["ok"]["secret_base32"], "backup_codes": confirmed["ok"],
                   "step": step, "offer": offer["ok"]}}


def serve(conn):
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request.get("op") == "unique_name":
                result = {"ok": conn.unique_name}
            elif request.get("op") == "enroll":
                result = enroll(conn, request["user"], request.get("replace", False),
                                request.get("current_code", ""), previous_step=True)
            else:
                result = call(conn, request["method"], request.get("args", []))
        except Exception as error:  # a broken connection, a timeout: tell the test
            result = {"exception": f"{type(error).__name__}: {error}"}
        print(json.dumps(result), flush=True)


def main():
    address, method = sys.argv[1], sys.argv[2]
    conn = open_dbus_connection(bus=address)
    try:
        if method == "serve":
            serve(conn)
            return
        if method == "enroll":
            result = enroll(conn, sys.argv[3])
        else:
            result = call(conn, method, json.loads(sys.argv[3]) if len(sys.argv) > 3 else [])
    finally:
        conn.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
