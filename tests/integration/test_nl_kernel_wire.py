"""Netlink operations checked on the wire and by other tools: rule oif, gratuitous ARP and
unsolicited NA actually on the wire, DAD failure, clsact and htb classes seen by `tc -j`."""
from __future__ import annotations

import errno
import ipaddress
import json
import socket
import subprocess
import time

import pytest

from cni.netns import NetNS
from cni.nl import tc
from cni.nl.rtnl_tc import TcRtnl as Rtnl  # the full handle (tc included)
from cni.nl.socket import NetlinkError

pytestmark = pytest.mark.root
ETH_P_ALL = 0x0003


@pytest.fixture
def rtnl(host_ns):
    with Rtnl(host_ns.path) as h:
        yield h


def test_rule_iif_oif_agree_with_ip(host_ns, rtnl):
    rtnl.veth_add("cnit-ra", "cnit-rb")
    rtnl.rule_add(priority=200, iif="cnit-ra", oif="cnit-rb", table=300)
    rtnl.rule_add(priority=201, oif="cnit-rb", src="fd00::/64", table=301)
    (ip4,) = [r for r in host_ns.ipj("rule", "show") if r["priority"] == 200]
    (ip6,) = [r for r in host_ns.ipj("-6", "rule", "show") if r["priority"] == 201]
    assert (ip4["iif"], ip4["oif"], ip4["table"]) == ("cnit-ra", "cnit-rb", "300")
    assert (ip6["oif"], ip6["src"], ip6["srclen"], ip6["table"]) == ("cnit-rb", "fd00::", 64, "301")
    ours = {r.priority: r for r in rtnl.rule_list()}
    assert (ours[200].iif, ours[200].oif, ours[200].table) == ("cnit-ra", "cnit-rb", 300)
    assert (ours[201].oif, ours[201].table) == ("cnit-rb", 301)
    rtnl.rule_del(priority=200, iif="cnit-ra", oif="cnit-rb", table=300)
    assert 200 not in {r["priority"] for r in host_ns.ipj("rule", "show")}


def _sniff(ns_path, ifname):
    with NetNS.open(ns_path) as ns, ns.enter():
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((ifname, 0))
    s.settimeout(0.2)
    return s


def _frames(s, deadline):
    while time.monotonic() < deadline:
        try:
            yield s.recv(2048)
        except socket.timeout:
            continue


def test_garp_and_unsolicited_na_reach_the_peer(host_ns, cont_ns, rtnl):
    with NetNS.open(cont_ns.path) as peer:
        rtnl.veth_add("cnit-g0", "cnit-g1", peer_netns=peer, mac="02:00:00:00:0a:01")
    cont_ns.ip("link", "set", "cnit-g1", "up")
    rtnl.link_set("cnit-g0", up=True)
    rtnl.addr_add("cnit-g0", "10.5.0.2/24")
    rtnl.addr_add("cnit-g0", "fd05::2/64", nodad=True)
    mac = bytes.fromhex("020000000a01")
    s = _sniff(cont_ns.path, "cnit-g1")
    with s:
        rtnl.send_garp("cnit-g0", "10.5.0.2", count=2)
        rtnl.send_garp("cnit-g0", "fd05::2")
        arp = na = 0
        ip4 = ipaddress.ip_address("10.5.0.2").packed
        ip6 = ipaddress.ip_address("fd05::2").packed
        for f in _frames(s, time.monotonic() + 3):
            if f[12:14] == b"\x08\x06" and f[0:6] == b"\xff" * 6 and f[6:12] == mac:
                # ARP: sender MAC + IP, target IP == sender IP (gratuitous)
                assert f[22:28] == mac and f[28:32] == ip4 and f[38:42] == ip4
                arp += 1
            elif f[12:14] == b"\x86\xdd" and f[20] == 58 and f[54] == 136 and f[62:78] == ip6:
                assert f[38:54] == ipaddress.ip_address("ff02::1").packed and f[21] == 255
                assert f[78:80] == b"\x02\x01" and f[80:86] == mac           # target LL option
                na += 1
            if arp >= 2 and na >= 1:
                break
    assert (arp, na) == (2, 1)


def test_dad_failure_is_reported(host_ns, cont_ns, rtnl):
    with NetNS.open(cont_ns.path) as peer:
        rtnl.veth_add("cnit-dd0", "cnit-dd1", peer_netns=peer)
    cont_ns.ip("addr", "add", "fd09::9/64", "dev", "cnit-dd1", "nodad")
    cont_ns.ip("link", "set", "cnit-dd1", "up")
    rtnl.link_set("cnit-dd0", up=True)
    rtnl.addr_add("cnit-dd0", "fd09::9/64")                         # with DAD: a duplicate
    with pytest.raises(NetlinkError) as ei:
        rtnl.addr_wait_dad("cnit-dd0", timeout=5)
    assert ei.value.errno == errno.EADDRNOTAVAIL and "fd09::9" in str(ei.value)


def test_dad_on_a_down_link_does_not_wait_forever(host_ns, rtnl):
    rtnl.veth_add("cnit-dw0", "cnit-dw1")
    rtnl.addr_add("cnit-dw0", "fd0a::1/64")
    t = time.monotonic()
    rtnl.addr_wait_dad("cnit-dw0", timeout=0.3)                     # tentative, but link down
    assert time.monotonic() - t < 2


def test_clsact_and_htb_class_agree_with_tc(host_ns, rtnl):
    rtnl.veth_add("cnit-q0", "cnit-q1")
    rtnl.clsact_add("cnit-q1")
    rtnl.htb_add("cnit-q0", default=1)
    rtnl.htb_class_add("cnit-q0", tc.handle(1, 1), parent=tc.handle(1), rate=125000)

    def tcj(*args):
        out = subprocess.run(["tc", "-n", host_ns.name, "-j", *args], capture_output=True,
                             text=True, check=True).stdout
        return json.loads(out or "[]")
    assert "clsact" in {q["kind"] for q in tcj("qdisc", "show", "dev", "cnit-q1")}
    assert "clsact" in {q.kind for q in rtnl.qdisc_list("cnit-q1")}
    (htb,) = [q for q in tcj("qdisc", "show", "dev", "cnit-q0") if q["kind"] == "htb"]
    assert htb["handle"] == "1:" and htb["options"]["default"] in ("0x1", 1, "1")
    out = subprocess.run(["tc", "-n", host_ns.name, "class", "show", "dev", "cnit-q0"],
                         capture_output=True, text=True, check=True).stdout.split()  # no -j here
    assert out[:3] == ["class", "htb", "1:1"] and out[out.index("rate") + 1] == "1Mbit"
    (ours,) = rtnl.class_list("cnit-q0")
    assert ours.kind == "htb" and ours.handle == tc.handle(1, 1)
