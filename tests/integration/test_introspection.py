"""packaging/dbus/org.twofactor.Daemon1.xml is the live daemon's introspection of our interface.

Regenerate it (after a deliberate change of the contract) with
    /usr/bin/python3 tests/integration/test_introspection.py --write
"""
import pathlib
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

import pytest
from jeepney import DBusAddress, MessageType, new_method_call
from jeepney.io.blocking import open_dbus_connection
from jeepney.low_level import HeaderFields

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from conftest import CONTEXT, REPO, enroll  # noqa: E402
import tfcall  # noqa: E402

XML = REPO / "packaging" / "dbus" / "org.twofactor.Daemon1.xml"
INTERFACE = "org.twofactor.Daemon1"
PATH = "/org/twofactor/Daemon1"
HEADER = """<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<!-- The org.twofactor.Daemon1 interface exactly as the live twofactord introspects it.
     Made by tests/integration/test_introspection.py (run it with the write option), which
     also fails on any drift. Note: a struct shown as one out arg, e.g. (ys), is sent by the
     daemon as that struct's fields, one out arg each (docs/dbus-api.md, "Types"). -->
"""


def introspect(address):
    conn = open_dbus_connection(bus=address)
    try:
        message = new_method_call(
            DBusAddress(PATH, bus_name=INTERFACE, interface="org.freedesktop.DBus.Introspectable"),
            "Introspect")
        return conn.send_and_get_reply(message, timeout=10).body[0]
    finally:
        conn.close()


def our_interface(xml_text):
    root = ET.fromstring(xml_text)
    found = [i for i in root.findall("interface") if i.get("name") == INTERFACE]
    assert len(found) == 1, f"expected one {INTERFACE} interface"
    return found[0]


def file_text(interface):
    node = ET.Element("node")
    node.append(interface)
    ET.indent(node, space="  ")
    return HEADER + ET.tostring(node, encoding="unicode") + "\n"


def describe(interface):
    """Everything a client depends on: members, their args in order, with names, types and
    directions; properties; annotations."""
    def args(element, default_direction):
        return [(a.get("name"), a.get("type"), a.get("direction", default_direction))
                for a in element.findall("arg")]

    def annotations(element):
        return sorted((a.get("name"), a.get("value")) for a in element.findall("annotation"))

    return {
        "methods": {m.get("name"): (args(m, "in"), annotations(m))
                    for m in interface.findall("method")},
        "signals": {s.get("name"): (args(s, "out"), annotations(s))
                    for s in interface.findall("signal")},
        "properties": {p.get("name"): (p.get("type"), p.get("access"), annotations(p))
                       for p in interface.findall("property")},
        "annotations": annotations(interface),
        "children": sorted({c.tag for c in interface} - {"method", "signal", "property",
                                                          "annotation"}),
    }


def drift(expected, live):
    problems = []
    for kind in ("methods", "signals", "properties"):
        for name in sorted(set(expected[kind]) | set(live[kind])):
            if name not in live[kind]:
                problems.append(f"{kind[:-1]} {name}: in the XML, not in the daemon")
            elif name not in expected[kind]:
                problems.append(f"{kind[:-1]} {name}: in the daemon, not in the XML")
            elif expected[kind][name] != live[kind][name]:
                problems.append(f"{kind[:-1]} {name}: XML {expected[kind][name]} != "
                                f"daemon {live[kind][name]}")
    for key in ("annotations", "children"):
        if expected[key] != live[key]:
            problems.append(f"interface {key}: XML {expected[key]} != daemon {live[key]}")
    return problems


def test_packaged_xml_matches_the_live_daemon(bus, daemon):
    live = describe(our_interface(introspect(bus.address)))
    packaged = describe(our_interface(XML.read_text()))
    assert len(packaged["methods"]) == 19
    assert drift(packaged, live) == []


def test_drift_is_detected():
    """The comparison itself: a renamed arg, a changed type, a swapped order, a missing method
    and an extra one are each reported."""
    base = our_interface(XML.read_text())

    def mutated(change):
        copy = ET.fromstring(ET.tostring(base))
        change(copy)
        return drift(describe(base), describe(copy))

    def rename_arg(i):
        i.find("method[@name='Verify']/arg[@name='code']").set("name", "otp")

    def retype(i):
        i.find("method[@name='Status']/arg").set("type", "i")

    def swap(i):
        method = i.find("method[@name='Verify']")
        first, second = method.findall("arg")[:2]
        method.remove(first)
        method.insert(1, first)

    def drop(i):
        i.remove(i.find("method[@name='UnlockUser']"))

    def add(i):
        ET.SubElement(i, "method", name="DumpSecrets")

    def direction(i):
        i.find("method[@name='ListUsers']/arg").set("direction", "in")

    for change in (rename_arg, retype, swap, drop, add, direction):
        assert mutated(change), change.__name__
    assert mutated(lambda i: None) == []


def test_test_client_signatures_match_the_xml():
    """tfcall.py, the tests' independent client, sends what the contract says."""
    methods = describe(our_interface(XML.read_text()))["methods"]
    assert set(methods) == set(tfcall.METHODS)
    for name, (args, _) in methods.items():
        sent = "".join(t for _, t, d in args if d == "in")
        assert tfcall.METHODS[name][0] == sent, name


def reply_signature(conn, method, signature, body):
    address = DBusAddress(PATH, bus_name=INTERFACE, interface=INTERFACE)
    reply = conn.send_and_get_reply(new_method_call(address, method, signature, body),
                                    timeout=30)
    assert reply.header.message_type == MessageType.method_return, (method, reply.body)
    return reply.header.fields.get(HeaderFields.signature, "")


def test_introspected_out_args_are_the_wire_reply(bus, users, daemon):
    """What a client generated from the XML (gdbus-codegen, a GDBusProxy with interface info,
    an introspecting Python proxy) expects is what the daemon actually sends."""
    methods = describe(our_interface(introspect(bus.address)))["methods"]
    alice, bob = users.add(), users.add()
    enroll(bus.address, alice)
    conn = open_dbus_connection(bus=bus.address)
    context = tuple(CONTEXT.values())
    try:
        offer_sig = reply_signature(conn, "BeginEnrollment", "sbs", (bob.name, False, ""))
        # The offer's secret, to confirm on this same connection.
        offer = tfcall.call(conn, "BeginEnrollment", [bob.name, True, ""])["ok"]
        import pyotp
        code = pyotp.TOTP(offer["secret_base32"]).at(time.time())
        observed = {
            "LoginPlan": reply_signature(conn, "LoginPlan", "s(sss)", (alice.name, context)),
            "Verify": reply_signature(conn, "Verify", "ss(sss)",
                                      (alice.name, "000000", context)),
            "VerifyAny": reply_signature(conn, "VerifyAny", "sas(sss)",
                                         (alice.name, ["000000", "0000000"], context)),
            "Status": reply_signature(conn, "Status", "s", (alice.name,)),
            "ThrottledSources": reply_signature(conn, "ThrottledSources", "s", (alice.name,)),
            "ExplainPolicy": reply_signature(conn, "ExplainPolicy", "s", (alice.name,)),
            "BeginEnrollment": offer_sig,
            "ConfirmEnrollment": reply_signature(conn, "ConfirmEnrollment", "ss",
                                                 (bob.name, code)),
            "RegenerateBackupCodes": reply_signature(conn, "RegenerateBackupCodes", "ss",
                                                     (alice.name, "")),
            "ListUsers": reply_signature(conn, "ListUsers", "", ()),
            "UnlockUser": reply_signature(conn, "UnlockUser", "s", (alice.name,)),
            "Disable": reply_signature(conn, "Disable", "ss", (bob.name, "")),
            "ResetUser": reply_signature(conn, "ResetUser", "s", (alice.name,)),
            "IssueTemporaryCode": reply_signature(conn, "IssueTemporaryCode", "st",
                                                  (alice.name, 60)),
            "SetDelivery": reply_signature(conn, "SetDelivery", "sb", (alice.name, False)),
        }
        # These need enrollment at login, a delivery channel or an import to succeed; their
        # replies are checked by the lifecycle tests. Here: the XML lists what zbus sends.
        for skipped in ("BeginLoginEnrollment", "ConfirmLoginEnrollment", "SendCode",
                        "ImportEnrollment"):
            methods.pop(skipped)
    finally:
        conn.close()
    assert set(observed) == set(methods)
    mismatches = {}
    for name, (args, _) in methods.items():
        introspected = "".join(t for _, t, d in args if d == "out")
        if observed[name] != introspected:
            mismatches[name] = {"introspected": introspected, "sent": observed[name]}
    assert mismatches == {}


def write_xml():
    from conftest import Bus, Daemon
    work = pathlib.Path(tempfile.mkdtemp(prefix="twofactor-xml-"))
    bus = Bus(work / "bus")
    try:
        daemon = Daemon(bus, work / "daemon", "")
        try:
            XML.write_text(file_text(our_interface(introspect(bus.address))))
        finally:
            daemon.stop()
    finally:
        bus.stop()
    print(f"wrote {XML}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(__doc__)
    write_xml()


def gio():
    try:
        import gi
        gi.require_version("Gio", "2.0")
        from gi.repository import Gio, GLib
        return Gio, GLib
    except (ImportError, ValueError):
        return None


@pytest.mark.skipif(gio() is None, reason="needs python3-gi")
def test_gdbus_proxy_built_from_the_xml_can_call_the_daemon(bus, users, daemon):
    """A real consumer of the XML: GLib's GDBusProxy with the packaged interface info checks
    every reply against it."""
    Gio, GLib = gio()
    alice = users.add()
    enroll(bus.address, alice)
    info = Gio.DBusNodeInfo.new_for_xml(XML.read_text()).interfaces[0]
    conn = Gio.DBusConnection.new_for_address_sync(
        bus.address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
    try:
        proxy = Gio.DBusProxy.new_sync(conn, Gio.DBusProxyFlags.DO_NOT_LOAD_PROPERTIES, info,
                                       INTERFACE, PATH, INTERFACE, None)
        context = tuple(CONTEXT.values())
        calls = [("ListUsers", None),
                 ("LoginPlan", GLib.Variant("(s(sss))", (alice.name, context))),
                 ("Verify", GLib.Variant("(ss(sss))", (alice.name, "000000", context))),
                 ("Status", GLib.Variant("(s)", (alice.name,))),
                 ("ThrottledSources", GLib.Variant("(s)", (alice.name,))),
                 ("ExplainPolicy", GLib.Variant("(s)", (alice.name,)))]
        refused = {}
        for method, parameters in calls:
            try:
                proxy.call_sync(method, parameters, Gio.DBusCallFlags.NONE, 10000, None)
            except GLib.Error as error:
                refused[method] = error.message
    finally:
        conn.close_sync(None)
    assert refused == {}
