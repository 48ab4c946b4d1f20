"""bridge and ptp options and behaviours beyond test_bridge.py/test_ptp.py (and the rule
layer under them). All runs go through the exec protocol inside test namespaces."""
from __future__ import annotations

import os
import shutil

import pytest

from helpers import run_plugin
from helpers import ptp_conf as pconf
from test_bridge import PATH, add, conf, delete, ipam_files, nat_rules, ping, with_prev

pytestmark = [pytest.mark.root]


@pytest.fixture(autouse=True)
def _bins(built_bins):
    return built_bins


def check(host, cont, c, cid="ctr1", plugin="bridge"):
    return run_plugin(plugin, "CHECK", c, container_id=cid, netns=cont.path, in_netns=host.name,
                      path=PATH)


def sysctl(ns, key):
    return ns.run("sysctl", "-n", key).stdout.strip()


def veths(host):
    return [lk["ifname"] for lk in host.ipj("link", "show") if lk["ifname"].startswith("veth")]


@pytest.fixture
def no_tools_path(tmp_path):
    """A PATH holding only `ip` (for `ip netns exec`): no iptables*, no nft."""
    d = tmp_path / "emptybin"
    d.mkdir()
    os.symlink(shutil.which("ip"), d / "ip")
    return str(d)


# --- bridge options ------------------------------------------------------------------------

@pytest.mark.parametrize("dad", [False, True])
def test_bridge_enabledad_and_arp_notify(host_ns, cont_ns, tmp_path, dad):
    c = conf(tmp_path, enabledad=dad)
    r = add(host_ns, cont_ns, c)
    assert r.rc == 0, r
    assert sysctl(cont_ns, "net.ipv4.conf.eth0.arp_notify") == "1"
    assert sysctl(cont_ns, "net.ipv6.conf.eth0.accept_dad") == ("1" if dad else "0")
    if dad:
        assert sysctl(cont_ns, "net.ipv6.conf.eth0.enhanced_dad") == "1"
    assert delete(host_ns, cont_ns, c).rc == 0


def test_bridge_port_isolation(host_ns, make_netns, tmp_path):
    """Isolated ports reach the gateway but not each other."""
    c = conf(tmp_path, portIsolation=True)
    a, b = make_netns("ia"), make_netns("ib")
    ra, rb = add(host_ns, a, c, "ia"), add(host_ns, b, c, "ib")
    assert ra.rc == 0 and rb.rc == 0, (ra, rb)
    for r in (ra, rb):
        port = host_ns.ipj("-d", "link", "show", r.json["interfaces"][1]["name"])[0]
        assert port["linkinfo"]["info_slave_data"]["isolated"] is True
    ipb = rb.json["ips"][0]["address"].split("/")[0]
    assert ping(a, "10.99.0.1")
    assert not ping(a, ipb)
    for ns, cid in ((a, "ia"), (b, "ib")):
        assert delete(host_ns, ns, c, cid).rc == 0


@pytest.mark.tool("nft")
def test_bridge_macspoofchk(host_ns, cont_ns, tmp_path):
    c = conf(tmp_path, macspoofchk=True)
    r = add(host_ns, cont_ns, c)
    assert r.rc == 0, r
    hv, mac = r.json["interfaces"][1]["name"], r.json["interfaces"][2]["mac"]
    text = host_ns.run("nft", "list", "table", "bridge", "nat").stdout
    assert "cni-br-iface-ctr1-eth0" in text and f'iifname "{hv}"' in text
    assert f"ether saddr {mac} return" in text and "drop" in text
    assert ping(cont_ns, "10.99.0.1")
    # a spoofed source MAC is dropped at the port
    cont_ns.ip("link", "set", "eth0", "address", "0a:58:de:ad:be:ef")
    cont_ns.ip("neigh", "flush", "dev", "eth0")
    host_ns.ip("neigh", "flush", "dev", "cnitbr0")
    assert not ping(cont_ns, "10.99.0.1")
    assert delete(host_ns, cont_ns, c).rc == 0
    text = host_ns.run("nft", "list", "table", "bridge", "nat", check=False).stdout
    assert "cni-br-iface-ctr1-eth0" not in text and "macspoofchk-ctr1-eth0" not in text
    assert delete(host_ns, cont_ns, c).rc == 0


def test_bridge_disable_container_interface(host_ns, cont_ns, tmp_path):
    c = conf(tmp_path, disableContainerInterface=True)
    r = add(host_ns, cont_ns, c)
    assert r.rc == 1 and r.json["code"] == 7, r            # incompatible with ipam
    del c["ipam"]
    r = add(host_ns, cont_ns, c)
    assert r.rc == 0, r
    assert "UP" not in cont_ns.ipj("link", "show", "eth0")[0]["flags"]
    assert host_ns.ipj("link", "show", r.json["interfaces"][1]["name"])[0]["master"] == "cnitbr0"
    assert delete(host_ns, cont_ns, c).rc == 0


def test_bridge_dns_override_and_bridge_kept(host_ns, cont_ns, tmp_path):
    dns = {"nameservers": ["10.99.0.53"], "search": ["example.test"]}
    c = conf(tmp_path, dns=dns)
    r = add(host_ns, cont_ns, c)
    assert r.rc == 0, r
    assert r.json["dns"]["nameservers"] == ["10.99.0.53"]
    assert r.json["dns"]["search"] == ["example.test"]
    assert delete(host_ns, cont_ns, with_prev(c, r.json)).rc == 0
    # DEL never removes the bridge
    assert host_ns.ipj("-d", "link", "show", "cnitbr0")[0]["linkinfo"]["info_kind"] == "bridge"


def test_bridge_preserve_default_vlan_defaults_false():
    """Current Go (since 48a4ae5a, v1.8.0) defaults preserveDefaultVlan to false."""
    import importlib.util
    path = os.path.join(os.path.dirname(__file__), "..", "..", "plugins", "bridge.py")
    spec = importlib.util.spec_from_file_location("audit_bridge_mod", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    c = mod.Config.load({"cniVersion": "1.0.0", "name": "n", "type": "bridge"})
    assert c.preserve_default_vlan is False


def test_bridge_check_detects_drift(host_ns, cont_ns, tmp_path):
    c = conf(tmp_path)
    r = add(host_ns, cont_ns, c)
    assert r.rc == 0, r
    c1 = with_prev(c, r.json)
    assert check(host_ns, cont_ns, c1).rc == 0
    hv = r.json["interfaces"][1]["name"]
    host_ns.ip("link", "set", hv, "nomaster")                       # bridge membership
    assert check(host_ns, cont_ns, c1).rc == 1
    host_ns.ip("link", "set", hv, "master", "cnitbr0")
    assert check(host_ns, cont_ns, c1).rc == 0
    host_ns.ip("link", "set", "cnitbr0", "promisc", "on")            # promisc != config
    assert check(host_ns, cont_ns, c1).rc == 1
    host_ns.ip("link", "set", "cnitbr0", "promisc", "off")
    cont_ns.ip("route", "del", "default")                            # route
    assert check(host_ns, cont_ns, c1).rc == 1
    cont_ns.ip("addr", "flush", "dev", "eth0")                       # address
    assert check(host_ns, cont_ns, c1).rc == 1
    assert delete(host_ns, cont_ns, c1).rc == 0
    assert check(host_ns, cont_ns, c1).rc == 1                       # interface gone


def test_bridge_status_and_gc(host_ns, make_netns, tmp_path):
    c = conf(tmp_path, cniVersion="1.1.0", ipMasq=True)
    a, b = make_netns("ga"), make_netns("gb")
    assert add(host_ns, a, c, "ga").rc == 0 and add(host_ns, b, c, "gb").rc == 0
    st = run_plugin("bridge", "STATUS", c, container_id="", ifname="", in_netns=host_ns.name,
                    path=PATH)
    assert st.rc == 0, st
    assert len([ln for ln in nat_rules(host_ns) if ln.startswith("-A POSTROUTING")]) == 2
    gc = dict(c, **{"cni.dev/valid-attachments": [{"containerID": "ga", "ifname": "eth0"}]})
    r = run_plugin("bridge", "GC", gc, container_id="", ifname="", in_netns=host_ns.name, path=PATH)
    assert r.rc == 0, r
    leases = [f for f in ipam_files(tmp_path) if not f.startswith(("lock", "last_", "."))]
    assert leases == ["10.99.0.2"]                                    # gb's lease released
    post = [ln for ln in nat_rules(host_ns) if ln.startswith("-A POSTROUTING")]
    assert len(post) == 1 and '\\"ga\\"' in post[0]                  # gb's masq chain gone
    for ns, cid in ((a, "ga"), (b, "gb")):
        assert delete(host_ns, ns, c, cid).rc == 0
    assert nat_rules(host_ns) == []


def test_bridge_nftables_masq_needs_no_binary(host_ns, cont_ns, tmp_path, no_tools_path):
    """ipMasqBackend nftables with no firewall binary at all: written over netlink."""
    c = conf(tmp_path, ipMasq=True, ipMasqBackend="nftables")
    env = {"PATH": no_tools_path}
    r = add(host_ns, cont_ns, c, env=env)
    assert r.rc == 0, r
    assert "masquerade" in host_ns.run("nft", "list", "table", "inet", "cni_plugins_masquerade").stdout
    r = run_plugin("bridge", "DEL", c, container_id="ctr1", netns=cont_ns.path,
                   in_netns=host_ns.name, path=PATH, env=env)
    assert r.rc == 0, r
    assert "ip saddr" not in host_ns.run("nft", "list", "ruleset").stdout   # (the table stays, as Go's)


def test_bridge_missing_tool_add_error_del_ok(host_ns, cont_ns, tmp_path, no_tools_path):
    """ipMasqBackend iptables and no iptables binary: ADD fails clearly and rolls back veth +
    lease; DEL still succeeds."""
    backend = "iptables"
    c = conf(tmp_path, ipMasq=True, ipMasqBackend=backend)
    env = {"PATH": no_tools_path}
    r = add(host_ns, cont_ns, c, env=env)
    assert r.rc == 1, r
    assert "iptables" in r.json["msg"]
    assert "not found" in r.json["msg"]
    assert cont_ns.ip("link", "show", "eth0", check=False).returncode != 0
    assert veths(host_ns) == []
    assert [f for f in ipam_files(tmp_path) if not f.startswith(("lock", "last_"))] == []
    r = run_plugin("bridge", "DEL", c, container_id="ctr1", netns=cont_ns.path,
                   in_netns=host_ns.name, path=PATH, env=env)
    assert r.rc == 0, r


# --- ptp -------------------------------------------------------------------------------------

def prun(cmd, host, cont, c, cid="p1", netns=None, **kw):
    return run_plugin("ptp", cmd, c, container_id=cid, in_netns=host.name, path=PATH,
                      netns=cont.path if netns is None else netns, **kw)


def pleases(tmp_path):
    d = tmp_path / "ipam" / "cnit-ptp"
    names = sorted(p.name for p in d.iterdir()) if d.exists() else []
    return [f for f in names if not f.startswith(("lock", "last_", "owner"))]


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_ptp_masq_backends_and_dns(host_ns, cont_ns, tmp_path, backend):
    dns = {"nameservers": ["10.98.0.53"]}
    c = pconf(tmp_path, ipMasq=True, ipMasqBackend=backend, dns=dns)
    r = prun("ADD", host_ns, cont_ns, c)
    assert r.rc == 0, r
    assert r.json["dns"] == dns
    if backend == "iptables":
        assert any("-A POSTROUTING -s 10.98.0.2/32" in ln for ln in nat_rules(host_ns))
    else:
        t = host_ns.run("nft", "list", "table", "inet", "cni_plugins_masquerade").stdout
        assert "ip saddr 10.98.0.2" in t and "masquerade" in t
    assert prun("CHECK", host_ns, cont_ns, dict(c, prevResult=r.json)).rc == 0
    assert prun("DEL", host_ns, cont_ns, dict(c, prevResult=r.json)).rc == 0
    assert nat_rules(host_ns) == []
    t = host_ns.run("nft", "list", "table", "inet", "cni_plugins_masquerade", check=False).stdout
    assert "10.98.0.2" not in t
    assert pleases(tmp_path) == []


def test_ptp_check_detects_drift(host_ns, cont_ns, tmp_path):
    c = pconf(tmp_path)
    r = prun("ADD", host_ns, cont_ns, c)
    assert r.rc == 0, r
    c1 = dict(c, prevResult=r.json)
    assert prun("CHECK", host_ns, cont_ns, c1).rc == 0
    cont_ns.ip("route", "del", "default")
    assert prun("CHECK", host_ns, cont_ns, c1).rc == 1
    assert prun("CHECK", host_ns, cont_ns, c).rc == 1                # no prevResult
    assert prun("DEL", host_ns, cont_ns, c1).rc == 0
    assert prun("CHECK", host_ns, cont_ns, c1).rc == 1


def test_ptp_status(host_ns, cont_ns, tmp_path):
    c = pconf(tmp_path, cniVersion="1.1.0")
    r = prun("STATUS", host_ns, cont_ns, c, netns="", cid="")
    assert r.rc == 0, r
    noipam = {k: v for k, v in c.items() if k != "ipam"}
    assert prun("STATUS", host_ns, cont_ns, noipam, netns="", cid="").rc == 1   # as Go: ipam needed


@pytest.mark.parametrize("backend", ["iptables"])     # nftables needs no tool (netlink)
def test_ptp_failure_after_veth_rolls_back(host_ns, cont_ns, tmp_path, no_tools_path, backend):
    """The masquerade step fails (no tool) after IPAM and veth: nothing is left behind."""
    c = pconf(tmp_path, ipMasq=True, ipMasqBackend=backend)
    env = {"PATH": no_tools_path}
    r = prun("ADD", host_ns, cont_ns, c, env=env)
    assert r.rc == 1 and "not found" in r.json["msg"], r
    assert cont_ns.ip("link", "show", "eth0", check=False).returncode != 0
    assert veths(host_ns) == []
    assert pleases(tmp_path) == []
    assert not [x for x in host_ns.ipj("route") if x["dst"].startswith("10.98.")]
    assert prun("DEL", host_ns, cont_ns, c, env=env).rc == 0
