"""portmap through the exec protocol, chained after our bridge: real connections through host
ports (host, other container, hairpin, 127.0.0.1, UDP), DEL leftovers, both backends, Go interop.

The chain helpers it shares with the other meta-plugin tests are in chain_helpers.py.
"""
from __future__ import annotations

import json
import os
import time

import pytest

from chain_helpers import Server, bridge_add, bridge_conf, chained, connect, ok, run
from helpers import GO_BIN, run_plugin

pytestmark = pytest.mark.root
MAPPINGS = [{"HostPort": 8080, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""},
            {"hostPort": 5353, "containerPort": 53, "protocol": "udp"}]


def pm_conf(backend=None, mappings=MAPPINGS, **extra):
    c = {"type": "portmap", "capabilities": {"portMappings": True}, **extra}
    if backend:
        c["backend"] = backend
    if mappings is not None:
        c["runtimeConfig"] = {"portMappings": mappings}
    return c


def per_container(host, cid, backend) -> list:
    """Rules that belong to container `cid` (iptables: its DN chain or comment; nft: comment)."""
    from cni.fw.portmap import dn_chain
    out = []
    if backend == "nftables":
        for fam in ("ip", "ip6"):
            r = host.run("nft", "-j", "list", "table", fam, "cni_hostport", check=False)
            if r.returncode == 0:
                out += [o["rule"] for o in json.loads(r.stdout)["nftables"]
                        if "rule" in o and o["rule"].get("comment") == cid]
        return out
    chain = dn_chain("pmnet", cid)
    for tool in ("iptables-save", "ip6tables-save"):
        out += [ln for ln in host.run(tool, "-t", "nat").stdout.splitlines()
                if chain in ln or f'id: \\"{cid}\\"' in ln]
    return out


def udp_flows(host, port) -> list:
    from cni.netns import NetNS
    from cni.nl.conntrack import IPPROTO_UDP, Conntrack
    with NetNS.open(host.path) as ns, ns.enter(), Conntrack() as ct:
        return [f for f in ct.list() if f.proto == IPPROTO_UDP and f.dport == port]


@pytest.fixture
def net(tmp_path, host_ns, make_netns, built_bins):
    """A bridge network with two containers (c1 serves on 80/tcp and 53/udp)."""
    c1, c2 = make_netns("c1"), make_netns("c2")
    r1 = bridge_add(tmp_path, host_ns, c1, "ctr1", hairpinMode=True)
    r2 = bridge_add(tmp_path, host_ns, c2, "ctr2")
    srv = Server(c1, "tcp:80", "udp:53")
    yield {"c1": c1, "c2": c2, "r1": r1, "r2": r2}
    srv.stop()
    for c, cid in ((c1, "ctr1"), (c2, "ctr2")):
        run("bridge", "DEL", bridge_conf(tmp_path), host_ns, c, cid)


@pytest.mark.parametrize("backend", ["iptables", pytest.param("nftables", marks=pytest.mark.tool("nft"))])
def test_portmap_connectivity_and_del(net, host_ns, backend):
    c1, c2, r1 = net["c1"], net["c2"], net["r1"]
    conf = chained(r1, pm_conf(backend))
    out = ok(run("portmap", "ADD", conf, host_ns, c1, "ctr1"))
    assert out == r1                                           # prevResult passed through
    assert per_container(host_ns, "ctr1", backend)
    ok(run("portmap", "CHECK", conf, host_ns, c1, "ctr1"))
    gw = "10.91.0.1"
    assert connect(host_ns, "tcp", gw, 8080) == "hello 80"          # host -> bridge address
    assert connect(host_ns, "tcp", "127.0.0.1", 8080) == "hello 80"  # localhost (route_localnet)
    assert host_ns.run("sysctl", "-n", "net.ipv4.conf.cni-pm0.route_localnet").stdout.strip() == "1"
    assert connect(c2, "tcp", gw, 8080) == "hello 80"               # another container
    assert connect(c1, "tcp", gw, 8080) == "hello 80"               # hairpin: itself
    assert connect(host_ns, "udp", gw, 5353) == "echo:ping"         # UDP mapping
    assert udp_flows(host_ns, 5353)
    # containerd's StopPodSandbox DEL (netns + prevResult + caps) ...
    ok(run("portmap", "DEL", conf, host_ns, c1, "ctr1"))
    assert per_container(host_ns, "ctr1", backend) == []
    assert udp_flows(host_ns, 5353) == []                           # stale UDP flows flushed on DEL
    assert connect(host_ns, "tcp", gw, 8080, expect_ok=False) is None
    # ... then RemovePodSandbox DEL: no netns, no prevResult, no runtimeConfig
    ok(run("portmap", "DEL", chained(None, pm_conf(backend, mappings=None)), host_ns, None, "ctr1",
           netns=""))


@pytest.mark.parametrize("backend", ["iptables", pytest.param("nftables", marks=pytest.mark.tool("nft"))])
def test_portmap_del_without_anything(net, host_ns, backend):
    """A lone DEL with CNI_NETNS="" and neither prevResult nor runtimeConfig still cleans up."""
    r1, r2 = net["r1"], net["r2"]
    ok(run("portmap", "ADD", chained(r1, pm_conf(backend)), host_ns, net["c1"], "ctr1"))
    ok(run("portmap", "ADD", chained(r2, pm_conf(backend, [{"hostPort": 9090, "containerPort": 80}])),
           host_ns, net["c2"], "ctr2"))
    ok(run("portmap", "DEL", chained(None, pm_conf(backend, mappings=None)), host_ns, None, "ctr1",
           netns=""))
    assert per_container(host_ns, "ctr1", backend) == []
    assert per_container(host_ns, "ctr2", backend)              # the other container is untouched
    ok(run("portmap", "DEL", chained(r2, pm_conf(backend)), host_ns, net["c2"], "ctr2"))
    assert per_container(host_ns, "ctr2", backend) == []


def test_portmap_no_mappings_and_errors(net, host_ns):
    r1 = net["r1"]
    assert ok(run("portmap", "ADD", chained(r1, pm_conf(mappings=[])), host_ns, net["c1"], "ctr1")) == r1
    r = run("portmap", "ADD", chained(None, pm_conf()), host_ns, net["c1"], "ctr1")
    assert r.rc == 1 and "chained" in r.json["msg"]
    bad = pm_conf(mappings=[{"hostPort": 0, "containerPort": 80}])
    r = run("portmap", "ADD", chained(r1, bad), host_ns, net["c1"], "ctr1")
    assert r.rc == 1 and r.json["code"] == 7
    r = run("portmap", "ADD", chained(r1, pm_conf(backend="nftables", externalSetMarkChain="X")),
            host_ns, net["c1"], "ctr1")
    assert r.rc == 1 and "iptables-specific" in r.json["msg"]


def test_portmap_gc(net, host_ns):
    for c, cid, r in ((net["c1"], "ctr1", net["r1"]), (net["c2"], "ctr2", net["r2"])):
        ok(run("portmap", "ADD", chained(r, pm_conf("iptables", [{"hostPort": 7000 + len(cid) + ord(cid[-1]),
                                                                  "containerPort": 80}])),
               host_ns, c, cid))
    gc = {"cniVersion": "1.1.0", "name": "pmnet", "type": "portmap",
          "cni.dev/valid-attachments": [{"containerID": "ctr2", "ifname": "eth0"}]}
    ok(run_plugin("portmap", "GC", gc, in_netns=host_ns.name, container_id="", ifname=""))
    assert per_container(host_ns, "ctr1", "iptables") == []
    assert per_container(host_ns, "ctr2", "iptables")


def _go(host, cont, command, conf, cid):
    return run(os.path.join(GO_BIN, "portmap"), command, conf, host, cont, cid)


@pytest.mark.gobin("portmap")
@pytest.mark.parametrize("backend", ["iptables"])   # Go 1.1.1 here predates its nftables backend
def test_interop_go_add_our_del(net, host_ns, backend):
    r1 = json.loads(json.dumps(net["r1"]))
    conf = chained(r1, pm_conf(backend, [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
                                         {"hostPort": 5353, "containerPort": 53, "protocol": "udp"}]))
    ok(_go(host_ns, net["c1"], "ADD", conf, "ctr1"))
    assert connect(host_ns, "tcp", "10.91.0.1", 8080) == "hello 80"
    ok(run("portmap", "CHECK", conf, host_ns, net["c1"], "ctr1"))
    ok(run("portmap", "DEL", chained(None, pm_conf(backend, mappings=None)), host_ns, None, "ctr1",
           netns=""))
    assert per_container(host_ns, "ctr1", backend) == []


@pytest.mark.gobin("portmap")
@pytest.mark.parametrize("backend", ["iptables"])   # Go 1.1.1 here predates its nftables backend
def test_interop_our_add_go_del(net, host_ns, backend):
    conf = chained(net["r1"], pm_conf(backend, [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
                                                {"hostPort": 5353, "containerPort": 53, "protocol": "udp"}]))
    ok(run("portmap", "ADD", conf, host_ns, net["c1"], "ctr1"))
    ok(_go(host_ns, net["c1"], "DEL", conf, "ctr1"))
    assert per_container(host_ns, "ctr1", backend) == []
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and connect(host_ns, "tcp", "10.91.0.1", 8080, expect_ok=False):
        time.sleep(0.1)
    assert connect(host_ns, "tcp", "10.91.0.1", 8080, expect_ok=False) is None
