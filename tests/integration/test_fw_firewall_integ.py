"""firewall rules against the real tools inside a test netns; interop with the Go firewall plugin."""
from __future__ import annotations

import ipaddress

import pytest

from cni.fw import firewall
from test_fw_masq_integ import go_plugin, tools_in  # noqa: F401  (fixture)

pytestmark = pytest.mark.root
V4 = ipaddress.ip_interface("10.88.0.2/24")
V6 = ipaddress.ip_interface("fd00:88::2/64")


def filt(ns, v6=False) -> list:
    out = ns.run("ip6tables-save" if v6 else "iptables-save", "-t", "filter").stdout
    return [line for line in out.splitlines() if line.startswith(("-A", ":CNI"))]


def go_conf(cont, policy="open"):
    prev = {"cniVersion": "1.0.0",
            "interfaces": [{"name": "cni-test-br0"}, {"name": "eth0", "sandbox": cont.path}],
            "ips": [{"interface": 1, "address": str(V4)}, {"interface": 1, "address": str(V6)}]}
    return {"cniVersion": "1.0.0", "name": "mynet", "type": "firewall", "backend": "iptables",
            "ingressPolicy": policy, "prevResult": prev}


@pytest.mark.tool("iptables-restore", "ip6tables-restore")
def test_add_check_delete(host_ns, tools_in):  # noqa: F811
    calls = tools_in(host_ns).calls
    firewall.add([V4, V6], ingress_policy="isolated", bridge="cni0")
    assert calls == ["iptables-save", "iptables-restore", "ip6tables-save", "ip6tables-restore"]
    lines = filt(host_ns)
    assert [x for x in lines if x.startswith("-A FORWARD")] == [
        '-A FORWARD -m comment --comment "CNI firewall plugin rules (ingressPolicy: same-bridge|isolated)" '
        "-j CNI-ISOLATION-STAGE-1",
        '-A FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD']
    assert "-A CNI-FORWARD -s 10.88.0.2/32 -j ACCEPT" in lines
    assert "-A CNI-FORWARD -s fd00:88::2/128 -j ACCEPT" in filt(host_ns, True)
    calls.clear()
    firewall.add([V4, V6], ingress_policy="isolated", bridge="cni0")
    assert calls == ["iptables-save", "ip6tables-save"]
    firewall.check([V4, V6])
    firewall.delete([V4, V6])
    assert not any("88::2" in x or "10.88.0.2" in x for x in filt(host_ns) + filt(host_ns, True))
    assert any("CNI-ADMIN" in x for x in filt(host_ns))   # shared chains stay
    with pytest.raises(firewall.FirewallCheckError):
        firewall.check([V4])
    firewall.delete([V4, V6])


@pytest.mark.gobin("firewall")
@pytest.mark.tool("iptables-restore", "ip6tables-restore")
def test_go_interop(host_ns, cont_ns, tools_in):  # noqa: F811
    tools_in(host_ns)
    go_plugin("firewall", host_ns, cont_ns, "ADD", go_conf(cont_ns, "same-bridge"))
    before = (filt(host_ns), filt(host_ns, True))
    firewall.check([V4, V6])
    firewall.add([V4, V6], ingress_policy="same-bridge", bridge="cni-test-br0")
    assert (filt(host_ns), filt(host_ns, True)) == before          # Go's rules count as ours
    firewall.delete([V4, V6])
    assert not any("10.88.0.2" in x for x in filt(host_ns))
    firewall.add([V4, V6])
    go_plugin("firewall", host_ns, cont_ns, "CHECK", go_conf(cont_ns))
    go_plugin("firewall", host_ns, cont_ns, "DEL", go_conf(cont_ns))
    assert not any("10.88.0.2" in x for x in filt(host_ns))
    assert not any("fd00:88::2" in x for x in filt(host_ns, True))
