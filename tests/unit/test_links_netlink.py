"""Our RTM_NEWLINK requests for ipvlan/vlan/dummy/vrf/macvlan, byte for byte against iproute2.

`strace -e write=all ip -n <testns> link add ...` records what iproute2 sends (it sends the
request even when the kernel then refuses the kind); the same request is built with our Rtnl
encoder through a socket stand-in that keeps the bytes. nlmsg_seq/pid are masked.
"""
from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import uuid

import pytest

from cni.nl.codec import NLM_F_ACK, NLM_F_REQUEST, Msg, encode
from cni.nl.rtnl import Rtnl
from cni.nl.rtnl_defs import MESSAGES, RTM_NEWLINK

pytestmark = [pytest.mark.root, pytest.mark.tool("strace")]
_DUMP = re.compile(r"^ \| [0-9a-f]{5}  ")


class _Sent(Exception):
    pass


class CaptureNl:
    """Stands in for NetlinkSocket: encodes like request() and keeps the bytes."""

    def __init__(self):
        self.sent = []

    def request(self, mtype, hdr, attrs=(), *, flags=0):
        self.sent.append(encode(Msg(mtype, flags | NLM_F_REQUEST | NLM_F_ACK, 1, 0, hdr, attrs),
                                MESSAGES[mtype]))
        raise _Sent()


def ours(call) -> bytes:
    h = Rtnl.__new__(Rtnl)
    h._nl, h.ns_fd, h._own_fd = CaptureNl(), -1, False
    with pytest.raises(_Sent):
        call(h)
    return h._nl.sent[0]


def iproute2(ns: str, *argv: str) -> bytes:
    """The RTM_NEWLINK (NLM_F_CREATE|EXCL) that `ip -n ns link add ARGV` sent."""
    r = subprocess.run(["strace", "-f", "-e", "trace=sendmsg", "-e", "write=all",
                        "ip", "-n", ns, "link", "add", *argv], capture_output=True, text=True)
    bufs, cur = [], None
    for line in r.stderr.splitlines():
        if line.startswith(" * ") and "bytes in buffer" in line:
            cur = bytearray()
            bufs.append(cur)
            continue
        if _DUMP.match(line) and cur is not None:    # " | 00010  xx xx .. xx  xx .. xx  ascii |"
            cur.extend(bytes.fromhex("".join(line[10:59].split())))
    for b in bufs:
        if len(b) >= 16:
            _, mtype, flags = struct.unpack_from("=IHH", b)
            if mtype == RTM_NEWLINK and flags & 0x600 == 0x600:
                return bytes(b)
    raise AssertionError(f"no RTM_NEWLINK captured:\n{r.stderr[-2000:]}")


NESTED = {18: {2: {}}}          # IFLA_LINKINFO > IFLA_INFO_DATA


def _clear_nested_flag(b: bytearray, off: int, end: int, nested: dict) -> None:
    while off + 4 <= end:
        ln, typ = struct.unpack_from("=HH", b, off)
        if (typ & 0x7FFF) in nested:
            struct.pack_into("=H", b, off + 2, typ & 0x7FFF)
            _clear_nested_flag(b, off + 4, off + ln, nested[typ & 0x7FFF])
        off += (ln + 3) & ~3


def mask(b: bytes) -> bytes:
    """seq/pid zeroed and NLA_F_NESTED cleared: we set it on nests (as the kernel's own
    messages and `ip` >= 5.x do); this iproute2 leaves it off. The kernel accepts both."""
    out = bytearray(b[:8] + b"\0" * 8 + b[16:])
    _clear_nested_flag(out, 32, len(out), NESTED)
    return bytes(out)


def canon(b: bytes, off: int = 32, end: int | None = None, nested=None):
    """Attributes as a sorted tree (order-insensitive), IFLA_NET_NS_FD value masked."""
    b = mask(b) if off == 32 and end is None else b
    end = len(b) if end is None else end
    nested = NESTED if nested is None else nested
    out = []
    while off + 4 <= end:
        ln, typ = struct.unpack_from("=HH", b, off)
        if typ in nested:
            out.append((typ, canon(b, off + 4, off + ln, nested[typ])))
        elif typ == 28 and nested is NESTED:
            out.append((typ, b"fd"))
        else:
            out.append((typ, bytes(b[off + 4:off + ln])))
        off += (ln + 3) & ~3
    return sorted(out)


@pytest.fixture(scope="module")
def ns():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2")
    names = [f"cnit-nlb-{uuid.uuid4().hex[:6]}", f"cnit-nlb-{uuid.uuid4().hex[:6]}"]
    for n in names:
        subprocess.run(["ip", "netns", "add", n], check=True)
    try:
        subprocess.run(["ip", "-n", names[0], "link", "add", "p1", "type", "veth", "peer", "p2"],
                       check=True)
        out = subprocess.run(["ip", "-n", names[0], "-o", "link", "show", "p1"], check=True,
                             capture_output=True, text=True).stdout
        yield names[0], names[1], int(out.split(":")[0])
    finally:
        for n in names:
            subprocess.run(["ip", "netns", "del", n])


CASES = {
    "ipvlan": (["type", "ipvlan", "mode", "l3", "private"],
               lambda h, i: h.link_add("t0", "ipvlan", parent=i, mode="l3", flags="private")),
    "ipvlan-l2": (["type", "ipvlan", "mode", "l2", "bridge"],
                  lambda h, i: h.link_add("t0", "ipvlan", parent=i, mode="l2", flags="bridge")),
    "vlan": (["type", "vlan", "id", "42"],
             lambda h, i: h.link_add("t0", "vlan", parent=i, vlan_id=42)),
    "macvlan": (["type", "macvlan", "mode", "passthru"],
                lambda h, i: h.link_add("t0", "macvlan", parent=i, mode="passthru")),
}


def test_macvlan_bcqueuelen_request(ns):
    """iproute2 writes IFLA_MACVLAN_BC_QUEUE_LEN before IFLA_MACVLAN_MODE, we the reverse:
    same attributes and bytes, order-insensitive compare."""
    host, _, idx = ns
    theirs = iproute2(host, "link", "p1", "name", "t0", "type", "macvlan", "mode", "bridge",
                      "bcqueuelen", "77")
    mine = ours(lambda h: h.link_add("t0", "macvlan", parent=idx, mode="bridge", bcqueuelen=77))
    assert len(mine) == len(theirs) and mask(mine)[:32] == mask(theirs)[:32]
    assert canon(mine) == canon(theirs)


@pytest.mark.parametrize("case", sorted(CASES))
def test_sublink_request_bytes(ns, case):
    host, _, idx = ns
    argv, call = CASES[case]
    theirs = iproute2(host, "link", "p1", "name", "t0", *argv)
    assert mask(ours(lambda h: call(h, idx))) == mask(theirs)


def test_dummy_request_bytes(ns):
    host, _, _ = ns
    theirs = iproute2(host, "name", "dum0", "type", "dummy")
    assert mask(ours(lambda h: h.link_add("dum0", "dummy"))) == mask(theirs)


def test_vrf_request_bytes(ns):
    host, _, _ = ns
    theirs = iproute2(host, "name", "blue", "type", "vrf", "table", "1001")
    assert mask(ours(lambda h: h.vrf_add("blue", 1001))) == mask(theirs)


@pytest.mark.parametrize("kind,argv,opts", [
    ("ipvlan", ["type", "ipvlan", "mode", "l2", "bridge"], {"mode": "l2", "flags": "bridge"}),
    ("vlan", ["type", "vlan", "id", "7"], {"vlan_id": 7}),
    ("macvlan", ["type", "macvlan", "mode", "bridge"], {"mode": "bridge"}),
])
def test_plugin_shaped_request(ns, kind, argv, opts):
    """What the plugins send: parent in the host, born in the container netns with its final
    name and an MTU. Same attributes and bytes as iproute2; only the top-level order differs
    (iproute2 puts IFLA_LINK after IFLA_MTU/IFLA_NET_NS_FD), so attributes are compared sorted."""
    host, cont, idx = ns
    theirs = iproute2(host, "link", "p1", "name", "eth0", "mtu", "1400", "netns", cont, *argv)
    fd = os.open(f"/run/netns/{cont}", os.O_RDONLY)
    try:
        mine = ours(lambda h: h.link_add("eth0", kind, parent=idx, mtu=1400, netns=fd, **opts))
    finally:
        os.close(fd)
    assert mask(mine)[:32] == mask(theirs)[:32]
    assert canon(mine) == canon(theirs)
