"""ECMP routes (issue 15): several routes with the same dst and different gateways, from IPAM or
static, are all installed as Go's ipam.ConfigureIface does (netlink.RouteAddEcmp: NLM_F_CREATE
without NLM_F_EXCL, the request of `ip route prepend`). IPv6 merges them into one multipath
route, IPv4 keeps one route per gateway. Read back with `ip -j route`, and CHECK passes."""
from __future__ import annotations

import os
import struct
import subprocess
import sys

import pytest

from helpers import BIN, run_plugin

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit"))
from test_links_netlink import _DUMP, ours as ours_route  # noqa: E402

pytestmark = [pytest.mark.root]

ROUTES = [{"dst": "10.50.0.0/16", "gw": "10.66.0.1"}, {"dst": "10.50.0.0/16", "gw": "10.66.0.2"},
          {"dst": "10.51.0.0/16", "gw": "10.66.0.3", "priority": 100},
          {"dst": "10.51.0.0/16", "gw": "10.66.0.4", "priority": 100},
          {"dst": "fd00:50::/64", "gw": "fd00:66::1"}, {"dst": "fd00:50::/64", "gw": "fd00:66::2"},
          {"dst": "default", "gw": "10.66.0.1"}]


RTM_NEWROUTE = 24


def iproute2_route(ns: str, verb: str, *argv: str) -> bytes:
    """The RTM_NEWROUTE that `ip -n ns route VERB ARGV` sent (strace hex dump)."""
    r = subprocess.run(["strace", "-f", "-e", "trace=sendmsg", "-e", "write=all",
                        "ip", "-n", ns, "route", verb, *argv], capture_output=True, text=True)
    bufs, cur = [], None
    for line in r.stderr.splitlines():
        if line.startswith(" * ") and "bytes in buffer" in line:
            cur = bytearray()
            bufs.append(cur)
        elif _DUMP.match(line) and cur is not None:
            cur.extend(bytes.fromhex("".join(line[10:59].split())))
    for b in bufs:
        if len(b) >= 16 and struct.unpack_from("=IH", b)[1] == RTM_NEWROUTE:
            return bytes(b)
    raise AssertionError(f"no RTM_NEWROUTE captured:\n{r.stderr[-2000:]}")


def mask_route(b: bytes) -> bytes:
    """seq and pid zeroed."""
    return b[:8] + b"\0" * 8 + b[16:]


@pytest.fixture
def lab(host_ns, cont_ns, built_bins):
    host_ns.ip("link", "add", "eth0", "type", "veth", "peer", "name", "peer0")
    host_ns.ip("link", "set", "eth0", "up")
    host_ns.ip("link", "set", "peer0", "up")
    return host_ns, cont_ns


def conf(ver="1.0.0"):
    routes = [dict(r, dst="0.0.0.0/0") if r["dst"] == "default" else r for r in ROUTES]
    return {"cniVersion": ver, "name": "cnit-ecmp", "type": "macvlan", "master": "eth0",
            "ipam": {"type": "static",
                     "addresses": [{"address": "10.66.0.5/24"}, {"address": "fd00:66::5/64"}],
                     "routes": routes}}


def run(cmd, c, host, cont, **kw):
    return run_plugin("macvlan", cmd, c, container_id="cnit-ecmp", netns=cont.path,
                      in_netns=host.name, path=BIN, **kw)


def gateways(cont, dst, v6=False):
    """{dst: sorted gateways} as `ip -j route` reports them (one route per gateway for IPv4,
    a route with nexthops for IPv6)."""
    out = []
    for r in cont.ipj("-6" if v6 else "-4", "route", "show", dst):
        if "nexthops" in r:
            out += [n["gateway"] for n in r["nexthops"]]
        elif "gateway" in r:
            out.append(r["gateway"])
    return sorted(out)


@pytest.mark.kmod("macvlan")
@pytest.mark.parametrize("ver", ["0.4.0", "1.0.0"])
def test_ecmp_routes_installed_and_checked(lab, ver):
    host, cont = lab
    c = conf(ver)
    r = run("ADD", c, host, cont)
    assert r.rc == 0, r
    try:
        assert gateways(cont, "10.50.0.0/16") == ["10.66.0.1", "10.66.0.2"]
        assert gateways(cont, "10.51.0.0/16") == ["10.66.0.3", "10.66.0.4"]
        metrics = {x.get("metric", 0) for x in cont.ipj("-4", "route", "show", "10.51.0.0/16")}
        assert metrics == {100}
        assert gateways(cont, "fd00:50::/64", v6=True) == ["fd00:66::1", "fd00:66::2"]
        assert gateways(cont, "default") == ["10.66.0.1"]
        # our codec reads the IPv6 multipath route back too
        from cni.nl.rtnl import Rtnl
        with Rtnl(cont.path) as h:
            mp = [x for x in h.route_list(family=10, dev="eth0") if str(x.dst) == "fd00:50::/64"]
            assert len(mp) == 1 and sorted(str(g) for g, _ in mp[0].nexthops) == \
                ["fd00:66::1", "fd00:66::2"]
        r2 = run("CHECK", dict(c, prevResult=r.json), host, cont)
        assert r2.rc == 0, r2
        # CHECK notices one gateway of a multipath route gone
        cont.ip("-6", "route", "del", "fd00:50::/64", "via", "fd00:66::2")
        r2 = run("CHECK", dict(c, prevResult=r.json), host, cont)
        assert r2.rc == 1 and "route" in r2.json["msg"], r2
    finally:
        assert run("DEL", c, host, cont).rc == 0


@pytest.mark.tool("strace")
@pytest.mark.parametrize("dst,gw,extra", [
    ("10.50.0.0/16", "10.66.0.2", {}),
    ("10.51.0.0/16", "10.66.0.4", {"metric": 100}),
    ("fd00:50::/64", "fd00:66::2", {}),
])
def test_ecmp_route_request_matches_ip_route_prepend(lab, dst, gw, extra):
    """Our ECMP request, byte for byte, is what `ip route prepend` sends (NLM_F_CREATE only)."""
    host, cont = lab
    cont.ip("link", "add", "d0", "type", "veth", "peer", "name", "d1")
    idx = cont.ipj("link", "show", "d0")[0]["ifindex"]
    # iproute2 writes attributes in argv order: give them in ours (dst, metric, gateway, oif)
    argv = [dst, *(["metric", str(extra["metric"])] if extra else []), "via", gw, "dev", "d0"]
    theirs = iproute2_route(cont.name, "prepend", *argv)
    mine = ours_route(lambda h: h.route_add(dst, gw=gw, dev=idx, ecmp=True, **extra))
    assert mask_route(mine) == mask_route(theirs)
