"""firewall through the exec protocol after our bridge: accept rules and ingress policies seen
as real connectivity between containers on two bridges (FORWARD policy DROP in the test host);
the firewalld backend against a fake firewalld on a private bus."""
from __future__ import annotations

import os
import sys

import pytest

from chain_helpers import chained, container_ip, net_conf, ok, run, two_bridges

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit"))
from test_meta_dbus import fake_firewalld, private_bus  # noqa: E402,F401  (fixtures)

pytestmark = pytest.mark.root
NETS = {"A": ("fwa", "cni-fwa0", "10.92.1.0/24"), "B": ("fwb", "cni-fwb0", "10.92.2.0/24")}


def _bconf(tmp_path, net):
    return net_conf(tmp_path, NETS, net)


def ping(src, dst_ip, tries: int = 3) -> bool:
    """True when dst answers one of up to `tries` echo requests (1 s each): a loaded host (ARP,
    scheduling) must not turn an allowed path into a false "isolated"."""
    return any(src.run("ping", "-c1", "-W1", dst_ip, check=False).returncode == 0
               for _ in range(tries))


def blocked(src, dst_ip) -> bool:
    """No answer to one echo request (an open path answers it)."""
    return not ping(src, dst_ip, tries=1)


@pytest.fixture
def topo(tmp_path, host_ns, make_netns, built_bins):
    """a1, a2 on bridge A; b1 on bridge B; the host forwards nothing unless a rule accepts it."""
    host_ns.run("iptables", "-P", "FORWARD", "DROP")
    host_ns.run("sysctl", "-w", "net.bridge.bridge-nf-call-iptables=1", check=False)
    yield from two_bridges(tmp_path, host_ns, make_netns, NETS)


def fw(topo, host, cname, command, **extra):
    ns, net, prev = topo[cname]
    conf = chained(prev, {"type": "firewall", "backend": "iptables", **extra}, name=NETS[net][0])
    return run("firewall", command, conf, host, ns, cname)


def ip_of(topo, cname):
    return container_ip(topo[cname][2])


def test_open_policy(topo, host_ns):
    a1, b1 = topo["a1"][0], topo["b1"][0]
    assert blocked(a1, ip_of(topo, "b1"))                  # FORWARD policy DROP
    for c in ("a1", "b1"):
        assert ok(fw(topo, host_ns, c, "ADD")) == topo[c][2]
        ok(fw(topo, host_ns, c, "CHECK"))
    assert ping(a1, ip_of(topo, "b1")) and ping(b1, ip_of(topo, "a1"))
    ok(fw(topo, host_ns, "b1", "DEL"))
    assert fw(topo, host_ns, "b1", "CHECK").rc == 1
    assert blocked(b1, ip_of(topo, "a1"))                  # b1's own accept rule is gone
    assert ping(a1, ip_of(topo, "b1"))                      # a1's rules still admit a1 -> b1
    saved = host_ns.run("iptables-save", "-t", "filter").stdout
    assert ip_of(topo, "b1") + "/32" not in saved and ip_of(topo, "a1") + "/32" in saved
    ok(fw(topo, host_ns, "b1", "DEL"))                      # again
    ok(run("firewall", "DEL", chained(None, {"type": "firewall"}, name="fwb"), host_ns, None, "b1",
           netns=""))                                       # no prevResult, no netns


def test_same_bridge_policy(topo, host_ns):
    for c in ("a1", "a2", "b1"):
        ok(fw(topo, host_ns, c, "ADD", ingressPolicy="same-bridge"))
    a1, b1 = topo["a1"][0], topo["b1"][0]
    assert ping(a1, ip_of(topo, "a2"))                      # same bridge: allowed
    assert blocked(a1, ip_of(topo, "b1"))                  # across bridges: isolated
    assert blocked(b1, ip_of(topo, "a1"))


@pytest.mark.parametrize("intruder", [
    ["-I", "FORWARD", "1", "-j", "ACCEPT"],                              # another tool's accept
    ["-I", "FORWARD", "1", "-m", "conntrack", "--ctstate", "NEW", "-j", "ACCEPT"],
])
def test_isolation_holds_whatever_is_ahead_in_forward(topo, host_ns, intruder):
    """A rule put ahead of the isolation jump after the first ADD (a firewall manager, another
    plugin, an earlier test) must not open the bridges to each other: every ADD with an
    ingress policy puts CNI-ISOLATION-STAGE-1 back at the top of FORWARD."""
    ok(fw(topo, host_ns, "a1", "ADD", ingressPolicy="same-bridge"))
    host_ns.run("iptables", *intruder)
    for c in ("a2", "b1"):
        ok(fw(topo, host_ns, c, "ADD", ingressPolicy="same-bridge"))
    first = host_ns.run("iptables", "-S", "FORWARD").stdout.splitlines()[1]
    assert first.endswith("-j CNI-ISOLATION-STAGE-1"), first
    a1, b1 = topo["a1"][0], topo["b1"][0]
    assert ping(a1, ip_of(topo, "a2"))
    assert blocked(a1, ip_of(topo, "b1"))
    assert blocked(b1, ip_of(topo, "a1"))
    ok(fw(topo, host_ns, "a1", "CHECK", ingressPolicy="same-bridge"))


def test_isolated_policy(topo, host_ns):
    for c in ("a1", "a2"):
        ok(fw(topo, host_ns, c, "ADD", ingressPolicy="isolated"))
    assert blocked(topo["a1"][0], ip_of(topo, "a2"))       # even on the same bridge


def test_errors(topo, host_ns):
    r = fw(topo, host_ns, "a1", "ADD", ingressPolicy="bogus")
    assert r.rc == 1 and r.json["code"] == 7
    ns, net, prev = topo["a1"]
    r = run("firewall", "ADD", chained(None, {"type": "firewall"}, name="fwa"), host_ns, ns, "a1")
    assert r.rc == 1 and "prevResult" in r.json["msg"]
    old = {**chained(prev, {"type": "firewall", "backend": "iptables"}, name="fwa"),
           "cniVersion": "0.2.0"}
    r = run("firewall", "ADD", old, host_ns, ns, "a1")
    assert r.rc == 1 and r.json["code"] == 1                # firewall needs >= 0.3.0
    old["cniVersion"] = "0.3.1"
    r = run("firewall", "CHECK", old, host_ns, ns, "a1")
    assert r.rc == 1 and r.json["code"] == 1                # CHECK needs >= 0.4.0 (spec)
    conf = chained(prev, {"type": "firewall", "backend": "firewalld"}, name="fwa")
    r = run("firewall", "ADD", conf, host_ns, ns, "a1",
            env={"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent/bus"})
    assert r.rc == 1 and "firewalld" in r.json["msg"]


def test_firewalld_backend(topo, host_ns, fake_firewalld):
    bus, log = fake_firewalld
    ns, net, prev = topo["a1"]
    env = {"DBUS_SYSTEM_BUS_ADDRESS": bus}
    # no backend given: firewalld answers on the bus, so it is used
    conf = chained(prev, {"type": "firewall", "firewalldZone": "cni"}, name="fwa")
    ok(run("firewall", "ADD", conf, host_ns, ns, "a1", env=env))
    ok(run("firewall", "CHECK", conf, host_ns, ns, "a1", env=env))
    src = ip_of(topo, "a1") + "/32"
    assert f"addSource ss cni {src}" in log.read_text()
    assert src not in host_ns.run("iptables-save", "-t", "filter").stdout   # not the iptables backend
    ok(run("firewall", "DEL", conf, host_ns, ns, "a1", env=env))
    assert f"removeSource ss cni {src}" in log.read_text()
    assert run("firewall", "CHECK", conf, host_ns, ns, "a1", env=env).rc == 1


def test_upstream_031_conflist_iptables(tmp_path, host_ns, make_netns, built_bins):
    """The iptables example of the upstream firewall README (a 0.3.1 conflist), through
    bin/cnitool: ADD admits the container's address in CNI-FORWARD, DEL removes it."""
    import json
    import subprocess
    from helpers import BIN
    net = {"cniVersion": "0.3.1", "name": "bridge-firewalld", "plugins": [
        {"type": "bridge", "bridge": "cnitfw031", "isGateway": True, "ipMasq": True,
         "ipam": {"type": "host-local", "subnet": "10.92.8.0/24",
                  "dataDir": str(tmp_path / "ipam"), "routes": [{"dst": "0.0.0.0/0"}]}},
        {"type": "firewall", "backend": "iptables"}]}
    (tmp_path / "net.d").mkdir()
    (tmp_path / "net.d" / "fw.conflist").write_text(json.dumps(net))
    cont = make_netns("fw031")
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
           "NETCONFPATH": str(tmp_path / "net.d"), "CNI_PATH": BIN,
           "CNI_CACHE_DIR": str(tmp_path / "cache"), "CNI_CONTAINERID": "cnit-fw031"}

    def tool(verb):
        return subprocess.run(["ip", "netns", "exec", host_ns.name, os.path.join(BIN, "cnitool"),
                               verb, "bridge-firewalld", cont.path], env=env,
                              capture_output=True, text=True, timeout=60)
    r = tool("add")
    assert r.returncode == 0, r
    res = json.loads(r.stdout)
    assert res["cniVersion"] == "0.3.1"
    ip = res["ips"][0]["address"].split("/")[0]
    fwd = host_ns.run("iptables", "-S", "CNI-FORWARD").stdout
    assert f"-s {ip}/32 -j ACCEPT" in fwd and f"-d {ip}/32" in fwd
    assert "-j CNI-FORWARD" in host_ns.run("iptables", "-S", "FORWARD").stdout
    r = tool("del")
    assert r.returncode == 0, r
    assert ip + "/32" not in host_ns.run("iptables", "-S", "CNI-FORWARD").stdout
