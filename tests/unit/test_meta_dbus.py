"""cni.dbus: wire format byte for byte (spec examples worked by hand), round trips, and a
private dbus-daemon (session-style, on a temp socket) with a fake firewalld written here.

A real firewalld is not run: it would rewrite the firewall of the machine's root netns.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from cni import dbus
from cni.dbus import Message, Variant, marshal, unmarshal

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = os.path.join(os.path.dirname(os.path.dirname(HERE)), "lib")


# --- byte-exact marshalling -------------------------------------------------------------------

@pytest.mark.parametrize("sig,values,hexbytes", [
    ("y", [7], "07"),
    ("b", [True], "01000000"),
    ("n", [-2], "feff"),
    ("q", [0x1234], "3412"),
    ("i", [-1], "ffffffff"),
    ("u", [1], "01000000"),
    ("x", [-2], "feffffffffffffff"),
    ("t", [1 << 40], "0000000000010000"),
    ("d", [1.0], "000000000000f03f"),
    ("s", ["hi"], "02000000" "6869" "00"),
    ("o", ["/a"], "02000000" "2f61" "00"),
    ("g", ["ss"], "02" "7373" "00"),
    ("ys", [1, "a"], "01" "000000" "01000000" "61" "00"),            # s pads to 4
    ("yt", [1, 2], "01" + "00" * 7 + "0200000000000000"),           # t pads to 8
    ("ss", ["trusted", "10.0.0.5/32"],
     "07000000" + "trusted".encode().hex() + "00"
     + "0b000000" + "10.0.0.5/32".encode().hex() + "00"),
    ("as", [["a", "bc"]], "0f000000" "01000000" "6100" "0000" "02000000" "626300"),
    ("at", [[1]], "08000000" "00000000" "0100000000000000"),        # pad to 8 not counted
    ("at", [[]], "00000000" "00000000"),                            # empty: still padded
    ("a{sv}", [{"k": Variant("u", 5)}],
     "10000000" "00000000" "01000000" "6b00" "01" "7500" "000000" "05000000"),
    ("(yu)", [(1, 2)], "01000000" "02000000"),
    ("v", [Variant("s", "x")], "01" "73" "00" "00" "01000000" "7800"),
])
def test_marshal_golden(sig, values, hexbytes):
    data = bytes.fromhex(hexbytes)
    assert marshal(sig, values) == data
    assert unmarshal(sig, data) == values


def test_big_endian_decode():
    assert unmarshal("us", bytes.fromhex("00000001" "00000002" "6869" "00"), ">") == [1, "hi"]


def test_message_golden():
    """A Hello call as the spec lays it out: 16-byte fixed header, a(yv) fields, pad to 8."""
    m = Message(dbus.METHOD_CALL, {dbus.F_PATH: "/o", dbus.F_MEMBER: "M", dbus.F_DESTINATION: "d"},
                serial=7)
    want = bytes.fromhex(
        "6c" "01" "00" "01" "00000000" "07000000"       # l, call, flags, v1, body len, serial
        "2a000000"                                      # fields array: 42 bytes
        "01016f00" "02000000" "2f6f00" "0000000000"     # PATH: o "/o", pad to the next struct
        "03017300" "01000000" "4d00" "000000000000"     # MEMBER: s "M"
        "06017300" "01000000" "6400"                    # DESTINATION: s "d"
        "000000000000")                                 # header padded to a multiple of 8
    got = m.encode()
    assert got == want
    back = Message.decode(got)
    assert back.fields == m.fields and back.serial == 7 and back.body == []
    assert dbus.message_size(got[:16]) == len(got)


def test_message_with_body_round_trip():
    m = Message(dbus.METHOD_CALL, {dbus.F_PATH: "/org/fedoraproject/FirewallD1",
                                   dbus.F_INTERFACE: "org.fedoraproject.FirewallD1.zone",
                                   dbus.F_MEMBER: "addSource", dbus.F_DESTINATION: "x.y",
                                   dbus.F_SIGNATURE: "ss"}, ["trusted", "fd00::5/128"], serial=3)
    data = m.encode()
    assert len(data) % 8 == (len(marshal("ss", m.body)) % 8)
    back = Message.decode(data)
    assert back.body == ["trusted", "fd00::5/128"] and back.fields == m.fields


@pytest.mark.parametrize("sig", ["a", "(", "(s", "a{s}", "z", "{ss}x"])
def test_bad_signatures(sig):
    with pytest.raises(ValueError):
        marshal(sig, [None])


def test_address_parsing():
    assert dbus._sockaddr("unix:path=/run/x") == "/run/x"
    assert dbus._sockaddr("tcp:host=a;unix:abstract=foo,guid=1") == "\0foo"
    with pytest.raises(dbus.DBusError):
        dbus._sockaddr("tcp:host=localhost,port=1")


# --- a private bus and a fake firewalld -------------------------------------------------------

FAKE_FIREWALLD = r"""
import sys
sys.path.insert(0, sys.argv[2])
from cni import dbus
c = dbus.Connection(sys.argv[1], timeout=None)
c.call(dbus.BUS_NAME, dbus.BUS_PATH, dbus.BUS_NAME, "RequestName", "su",
       ["org.fedoraproject.FirewallD1", 0])
print("ready", flush=True)
zones = {}
log = open(sys.argv[3], "a", buffering=1)
while True:
    m = c.recv()
    if m.type != dbus.METHOD_CALL:
        continue
    member = m.get(dbus.F_MEMBER)
    log.write(f"{member} {m.get(dbus.F_SIGNATURE, '')} {' '.join(map(str, m.body))}\n")
    if m.get(dbus.F_INTERFACE) != "org.fedoraproject.FirewallD1.zone":
        c.error(m, "org.freedesktop.DBus.Error.UnknownMethod", member)
        continue
    zone, src = m.body
    have = zones.setdefault(zone, set())
    if member == "addSource":
        if src in have:
            c.error(m, "org.fedoraproject.FirewallD1.Exception", f"ZONE_ALREADY_SET: {src}")
        else:
            have.add(src)
            c.reply(m, "s", [zone])
    elif member == "removeSource":
        if src in have:
            have.discard(src)
            c.reply(m, "s", [zone])
        else:
            c.error(m, "org.fedoraproject.FirewallD1.Exception", f"UNKNOWN_SOURCE: {src}")
    elif member == "querySource":
        c.reply(m, "b", [src in have])
    else:
        c.error(m, "org.freedesktop.DBus.Error.UnknownMethod", member)
"""


@pytest.fixture
def private_bus(tmp_path):
    if shutil.which("dbus-daemon") is None:
        pytest.skip("needs dbus-daemon")
    sock = tmp_path / "bus"
    p = subprocess.Popen(["dbus-daemon", "--session", f"--address=unix:path={sock}", "--nofork",
                          "--print-address"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True)
    addr = p.stdout.readline().strip()
    assert addr.startswith("unix:path=")
    yield f"unix:path={sock}"
    p.kill()
    p.wait()


@pytest.fixture
def fake_firewalld(private_bus, tmp_path):
    log = tmp_path / "firewalld.log"
    p = subprocess.Popen([sys.executable, "-c", FAKE_FIREWALLD, private_bus, LIB, str(log)],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    yield private_bus, log
    p.kill()
    p.wait()


def test_hello_and_bus_errors(private_bus):
    with dbus.Connection(private_bus) as c:
        assert c.unique_name.startswith(":")
        names = c.call(dbus.BUS_NAME, dbus.BUS_PATH, dbus.BUS_NAME, "ListNames")[0]
        assert c.unique_name in names
        with pytest.raises(dbus.DBusError) as e:
            c.call(dbus.BUS_NAME, dbus.BUS_PATH, dbus.BUS_NAME, "GetNameOwner", "s", ["no.such"])
        assert e.value.name == "org.freedesktop.DBus.Error.NameHasNoOwner"


def test_our_decoder_matches_dbus_send(private_bus):
    """libdbus (dbus-send) and our client read the same ListNames reply."""
    if shutil.which("dbus-send") is None:
        pytest.skip("needs dbus-send")
    with dbus.Connection(private_bus) as c:
        ours = c.call(dbus.BUS_NAME, dbus.BUS_PATH, dbus.BUS_NAME, "GetNameOwner", "s",
                      [dbus.BUS_NAME])[0]
    r = subprocess.run(["dbus-send", f"--bus={private_bus}", "--print-reply", "--dest=" + dbus.BUS_NAME,
                        dbus.BUS_PATH, dbus.BUS_NAME + ".GetNameOwner", "string:" + dbus.BUS_NAME],
                       capture_output=True, text=True, check=True)
    assert f'string "{ours}"' in r.stdout


def test_fake_firewalld_with_dbus_send(fake_firewalld):
    """libdbus marshals a call; our server decodes it and our reply is read by libdbus."""
    if shutil.which("dbus-send") is None:
        pytest.skip("needs dbus-send")
    bus, log = fake_firewalld
    r = subprocess.run(["dbus-send", f"--bus={bus}", "--print-reply",
                        "--dest=org.fedoraproject.FirewallD1", "/org/fedoraproject/FirewallD1",
                        "org.fedoraproject.FirewallD1.zone.addSource", "string:trusted",
                        "string:10.1.2.3/32"], capture_output=True, text=True, check=True)
    assert 'string "trusted"' in r.stdout
    r = subprocess.run(["dbus-send", f"--bus={bus}", "--print-reply",
                        "--dest=org.fedoraproject.FirewallD1", "/org/fedoraproject/FirewallD1",
                        "org.fedoraproject.FirewallD1.zone.querySource", "string:trusted",
                        "string:10.1.2.3/32"], capture_output=True, text=True, check=True)
    assert "boolean true" in r.stdout
    assert "addSource ss trusted 10.1.2.3/32" in log.read_text()


def test_firewalld_module(fake_firewalld):
    import ipaddress

    from cni.errors import CNIError
    from cni.meta import firewalld
    bus, log = fake_firewalld
    ips = [ipaddress.ip_interface("10.1.2.3/24"), ipaddress.ip_interface("fd00::3/64")]
    assert firewalld.is_running(bus)
    firewalld.add(ips, "trusted", bus)
    firewalld.add(ips, "trusted", bus)           # ZONE_ALREADY_SET is fine
    firewalld.check(ips, "trusted", bus)
    with pytest.raises(CNIError):
        firewalld.check(ips, "public", bus)
    firewalld.delete(ips, "trusted", bus)
    firewalld.delete(ips, "trusted", bus)        # errors ignored
    with pytest.raises(CNIError):
        firewalld.check(ips, "trusted", bus)
    calls = log.read_text().split("\n")
    assert "addSource ss trusted 10.1.2.3/32" in calls and "addSource ss trusted fd00::3/128" in calls


def test_firewalld_not_running(private_bus, tmp_path):
    from cni.meta import firewalld
    assert not firewalld.is_running(private_bus)
    assert not firewalld.is_running(f"unix:path={tmp_path}/nothing")


def test_no_reply_times_out(tmp_path):
    import socket
    path = str(tmp_path / "s")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(1)
    t = time.monotonic()
    with pytest.raises(OSError):
        dbus.Connection(f"unix:path={path}", timeout=0.3)   # accepted by backlog, never answered
    assert time.monotonic() - t < 3
    srv.close()
