"""Meta plugins on IPv6: port mappings through the exec protocol (both backends)
and sbr with one table per address on a dual-stack interface."""
from __future__ import annotations

import subprocess
import sys

import pytest

from chain_helpers import chained, ok, run
from test_portmap import per_container, pm_conf

pytestmark = pytest.mark.root

SERVER6 = r"""
import socket, threading
def tcp():
    s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", 80)); s.listen(8)
    while True:
        c, _ = s.accept(); c.sendall(b"hello6"); c.close()
def udp():
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind(("::", 53))
    while True:
        d, a = s.recvfrom(2048); s.sendto(b"echo6:" + d, a)
threading.Thread(target=tcp, daemon=True).start(); threading.Thread(target=udp, daemon=True).start()
print("ready", flush=True); threading.Event().wait()
"""
CLIENT6 = r"""
import socket, sys
proto, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if proto == "tcp":
    s = socket.create_connection((host, port), timeout=3); print(s.recv(100).decode())
else:
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
    s.sendto(b"ping", (host, port)); print(s.recv(100).decode())
"""


def dual_bridge_conf(tmp_path):
    return {"cniVersion": "1.0.0", "name": "pmnet", "type": "bridge", "bridge": "cni-pm6",
            "isGateway": True, "isDefaultGateway": True,
            "ipam": {"type": "host-local", "dataDir": str(tmp_path / "ipam"),
                     "ranges": [[{"subnet": "10.93.0.0/24"}], [{"subnet": "fd00:93::/64"}]]}}


def connect6(ns, proto, host, port):
    r = ns.run(sys.executable, "-c", CLIENT6, proto, host, str(port), check=False, timeout=20)
    return r.stdout.strip() if r.returncode == 0 else None


@pytest.fixture
def dual(tmp_path, host_ns, make_netns, built_bins):
    c1, c2 = make_netns("d1"), make_netns("d2")
    bc = dual_bridge_conf(tmp_path)
    r1 = ok(run("bridge", "ADD", bc, host_ns, c1, "ctr1"))
    r2 = ok(run("bridge", "ADD", bc, host_ns, c2, "ctr2"))
    srv = subprocess.Popen(["ip", "netns", "exec", c1.name, sys.executable, "-c", SERVER6],
                           stdout=subprocess.PIPE, text=True)
    assert srv.stdout.readline().strip() == "ready"
    yield {"c1": c1, "c2": c2, "r1": r1, "r2": r2}
    srv.kill()
    srv.wait()
    for c, cid in ((c1, "ctr1"), (c2, "ctr2")):
        run("bridge", "DEL", bc, host_ns, c, cid)


@pytest.mark.parametrize("backend", ["iptables", pytest.param("nftables", marks=pytest.mark.tool("nft"))])
def test_portmap_ipv6_tcp_udp(dual, host_ns, backend):
    maps = [{"hostPort": 8086, "containerPort": 80, "protocol": "tcp"},
            {"hostPort": 5356, "containerPort": 53, "protocol": "udp"}]
    conf = chained(dual["r1"], pm_conf(backend, maps))
    assert ok(run("portmap", "ADD", conf, host_ns, dual["c1"], "ctr1")) == dual["r1"]
    ok(run("portmap", "CHECK", conf, host_ns, dual["c1"], "ctr1"))
    gw6 = "fd00:93::1"
    assert connect6(host_ns, "tcp", gw6, 8086) == "hello6"            # host -> bridge v6 address
    assert connect6(dual["c2"], "tcp", gw6, 8086) == "hello6"         # another container
    assert connect6(host_ns, "udp", gw6, 5356) == "echo6:ping"
    ok(run("portmap", "DEL", conf, host_ns, dual["c1"], "ctr1"))
    assert per_container(host_ns, "ctr1", backend) == []
    assert connect6(host_ns, "tcp", gw6, 8086) is None


def test_sbr_table_per_address_dual_stack(dual, host_ns):
    c2, r2 = dual["c2"], dual["r2"]
    ips = [i["address"].split("/")[0] for i in r2["ips"]]
    ok(run("sbr", "ADD", chained(r2, {"type": "sbr"}), host_ns, c2, "ctr2"))
    rules = {r["src"]: r["table"] for r in c2.ipj("rule", "show") if r.get("src") not in (None, "all")}
    rules.update({r["src"]: r["table"] for r in c2.ipj("-6", "rule", "show")
                  if r.get("src") not in (None, "all")})
    assert set(rules) == set(ips)
    assert sorted(rules.values()) == ["100", "101"]                  # one table per address
    t4, t6 = rules[ips[0]], rules[ips[1]]
    assert ("default", "10.93.0.1") in {(r["dst"], r.get("gateway"))
                                        for r in c2.ipj("route", "show", "table", t4)}
    assert ("default", "fd00:93::1") in {(r["dst"], r.get("gateway"))
                                         for r in c2.ipj("-6", "route", "show", "table", t6)}
    ok(run("sbr", "DEL", chained(r2, {"type": "sbr"}), host_ns, c2, "ctr2"))
    assert [r for r in c2.ipj("rule", "show") + c2.ipj("-6", "rule", "show")
            if r.get("src") not in (None, "all")] == []
