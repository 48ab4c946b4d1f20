"""portmap rules against the real tools inside a test netns; interop with the Go portmap plugin."""
from __future__ import annotations

import ipaddress
import json

import pytest

from cni.fw import portmap, portmap_config
from test_fw_masq_integ import go_plugin, tools_in  # noqa: F401  (fixture)

pytestmark = pytest.mark.root
V4 = ipaddress.ip_interface("10.88.0.2/24")
V6 = ipaddress.ip_interface("fd00:88::2/64")
DN = "CNI-DN-70a29d9dc18bc4d652ea5"
RAW = [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
       {"hostPort": 8081, "containerPort": 81, "protocol": "udp"},
       {"hostPort": 9090, "containerPort": 90, "protocol": "tcp", "hostIP": "192.168.1.1"},
       {"hostPort": 9091, "containerPort": 91, "protocol": "tcp", "hostIP": "fd00::1"},
       {"hostPort": 9092, "containerPort": 92, "protocol": "sctp"}]


def nat(ns, v6=False) -> list:
    out = ns.run("ip6tables-save" if v6 else "iptables-save", "-t", "nat").stdout
    return [line for line in out.splitlines() if line.startswith(("-A", ":CNI"))]


def per_container(lines) -> list:
    return [line for line in lines if DN in line]


def go_conf(cont, backend=None):
    ips = [{"interface": 0, "address": str(V4)}, {"interface": 0, "address": str(V6)}]
    prev = {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": cont.path}], "ips": ips}
    conf = {"cniVersion": "1.0.0", "name": "mynet", "type": "portmap", "prevResult": prev,
            "runtimeConfig": {"portMappings": RAW}}
    if backend:
        conf["backend"] = backend
    return conf


@pytest.mark.tool("iptables-restore", "ip6tables-restore")
def test_iptables_add_matches_go_exactly(host_ns, cont_ns, make_netns, tools_in):  # noqa: F811
    """Our ADD writes exactly the rules Go writes (compared in two fresh netns)."""
    go_ns = make_netns("gohost")
    go_plugin("portmap", go_ns, cont_ns, "ADD", go_conf(cont_ns))
    calls = tools_in(host_ns).calls
    portmap.add("mynet", "abc123", portmap_config.normalize_mappings(RAW), [V4, V6], backend="iptables")
    assert calls == ["iptables-save", "iptables-restore", "ip6tables-save", "ip6tables-restore"]
    for v6 in (False, True):
        assert nat(host_ns, v6) == nat(go_ns, v6)
    calls.clear()
    portmap.add("mynet", "abc123", portmap_config.normalize_mappings(RAW), [V4, V6], backend="iptables")
    assert calls == ["iptables-save", "ip6tables-save"]  # nothing missing: no write
    portmap.check("mynet", "abc123", portmap_config.normalize_mappings(RAW), [V4, V6], backend="iptables")


@pytest.mark.gobin("portmap")
@pytest.mark.tool("iptables-restore", "ip6tables-restore")
def test_go_add_our_delete(host_ns, cont_ns, tools_in):  # noqa: F811
    go_plugin("portmap", host_ns, cont_ns, "ADD", go_conf(cont_ns))
    assert per_container(nat(host_ns)) and per_container(nat(host_ns, True))
    calls = tools_in(host_ns).calls
    portmap.check("mynet", "abc123", portmap_config.normalize_mappings(RAW), [V4, V6], backend="iptables")
    calls.clear()
    portmap.delete("mynet", "abc123", backend="iptables")
    assert calls == ["iptables-save", "iptables-restore", "ip6tables-save", "ip6tables-restore"]
    for v6 in (False, True):
        assert per_container(nat(host_ns, v6)) == []
        assert any("CNI-HOSTPORT-DNAT" in line for line in nat(host_ns, v6))  # shared chains stay
    with pytest.raises(portmap.PortmapCheckError):
        portmap.check("mynet", "abc123", portmap_config.normalize_mappings(RAW), [V4], backend="iptables")
    portmap.delete("mynet", "abc123", backend="iptables")  # again: fine


@pytest.mark.gobin("portmap")
@pytest.mark.tool("iptables-restore", "ip6tables-restore")
def test_our_add_go_delete(host_ns, cont_ns, tools_in):  # noqa: F811
    tools_in(host_ns)
    portmap.add("mynet", "abc123", portmap_config.normalize_mappings(RAW), [V4, V6], backend="iptables")
    # (no Go CHECK here: Go 1.1.1 portmap CHECK looks for the IPv4 rules in ip6tables too and
    # so fails even on rules its own ADD made)
    go_plugin("portmap", host_ns, cont_ns, "DEL", go_conf(cont_ns))
    for v6 in (False, True):
        assert per_container(nat(host_ns, v6)) == []


@pytest.mark.tool("iptables-restore")
def test_iptables_options(host_ns, tools_in):  # noqa: F811
    tools_in(host_ns)
    many = portmap_config.normalize_mappings([{"hostPort": 2000 + i, "containerPort": 80} for i in range(20)])
    portmap.add("n", "c", many, [V4], backend="iptables", masq_all=True, mark_masq_bit=5,
                conditions_v4=["!", "-s", "10.1.0.0/16"])
    lines = nat(host_ns)
    chain = portmap.dn_chain("n", "c")
    jumps = [line for line in lines if line.startswith("-A CNI-HOSTPORT-DNAT")]
    assert len(jumps) == 2 and all("! -s 10.1.0.0/16" in j for j in jumps)
    assert f"-A {chain} -p tcp -m tcp --dport 2000 -j CNI-HOSTPORT-SETMARK" in lines  # masqAll: no -s
    assert "-A CNI-HOSTPORT-MASQ -m mark --mark 0x20/0x20 -j MASQUERADE" in lines
    portmap.check("n", "c", many, [V4], backend="iptables", masq_all=True, mark_masq_bit=5,
                  conditions_v4=["!", "-s", "10.1.0.0/16"])
    portmap.gc("n", [])
    assert not any(chain in line for line in nat(host_ns))


@pytest.mark.tool("nft")
def test_nftables_add_check_delete(host_ns, tools_in):  # noqa: F811
    calls = tools_in(host_ns).calls
    m = portmap_config.normalize_mappings(RAW)
    portmap.add("mynet", "abc123", m, [V4, V6], backend="nftables")
    portmap.add("mynet", "abc123", m, [V4, V6], backend="nftables")   # idempotent
    assert calls == ["nft", "nft"] * 4
    portmap.add("mynet", "other", m[:1], [ipaddress.ip_interface("10.88.0.3/24")], backend="nftables")
    owned = {}
    for fam in ("ip", "ip6"):
        data = json.loads(host_ns.run("nft", "-j", "list", "table", fam, "cni_hostport").stdout)
        rules = [o["rule"] for o in data["nftables"] if "rule" in o]
        owned[fam] = sorted((r["chain"], r.get("comment")) for r in rules if r.get("comment"))
    assert owned["ip"].count(("hostports", "abc123")) == 4          # 9091 is IPv6-only
    assert owned["ip"].count(("masquerading", "abc123")) == 2
    assert owned["ip6"].count(("hostports", "abc123")) == 4         # 9090 is IPv4-only
    assert owned["ip6"].count(("masquerading", "abc123")) == 1
    text = host_ns.run("nft", "list", "table", "ip", "cni_hostport").stdout
    assert "ip daddr 192.168.1.1 tcp dport 9090 dnat to 10.88.0.2:90" in text
    assert "sctp dport 9092 dnat to 10.88.0.2:92" in text
    portmap.check("mynet", "abc123", m, [V4, V6], backend="nftables")
    portmap.delete("mynet", "abc123", backend="nftables")
    with pytest.raises(portmap.PortmapCheckError):
        portmap.check("mynet", "abc123", m, [V4], backend="nftables")
    text = host_ns.run("nft", "list", "table", "ip", "cni_hostport").stdout
    assert '"abc123"' not in text and '"other"' in text
    portmap.delete("mynet", "abc123", backend="nftables")           # again: fine
    assert not any("CNI-" in line for line in nat(host_ns))
