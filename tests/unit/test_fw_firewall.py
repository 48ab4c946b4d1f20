"""firewall (iptables backend): golden rules as observed from Go firewall 1.1.1, batching."""
from __future__ import annotations

import ipaddress

import pytest

from cni.errors import InvalidConfigError
from cni.fw import firewall
from test_fw_masq import fake  # noqa: F401  (fixture)

V4 = ipaddress.ip_interface("10.88.0.2/24")
V6 = ipaddress.ip_interface("fd00:88::2/64")
SB = '-m comment --comment "CNI firewall plugin rules (ingressPolicy: same-bridge)"'
DF = '-m comment --comment "CNI firewall plugin rules (ingressPolicy: same-bridge|isolated)"'
# iptables-save -t filter after Go firewall 1.1.1 ADD with ingressPolicy same-bridge.
GO_SAVE = f"""*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:CNI-ADMIN - [0:0]
:CNI-FORWARD - [0:0]
:CNI-ISOLATION-STAGE-1 - [0:0]
:CNI-ISOLATION-STAGE-2 - [0:0]
-A FORWARD {SB} -j CNI-ISOLATION-STAGE-1
-A FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD
-A CNI-FORWARD -m comment --comment "CNI firewall plugin admin overrides" -j CNI-ADMIN
-A CNI-FORWARD -d 10.88.0.2/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A CNI-FORWARD -s 10.88.0.2/32 -j ACCEPT
-A CNI-ISOLATION-STAGE-1 -i cni0 ! -o cni0 {SB} -j CNI-ISOLATION-STAGE-2
-A CNI-ISOLATION-STAGE-1 {SB} -j RETURN
-A CNI-ISOLATION-STAGE-2 -o cni0 {SB} -j DROP
-A CNI-ISOLATION-STAGE-2 {SB} -j RETURN
COMMIT
"""


def test_ip_rules_golden():
    assert firewall.ip_rules(V4) == ["-d 10.88.0.2/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                                     "-s 10.88.0.2/32 -j ACCEPT"]
    assert firewall.ip_rules(V6.ip)[1] == "-s fd00:88::2/128 -j ACCEPT"


def test_add_fresh_isolated(fake):  # noqa: F811
    f = fake()
    firewall.add([V4, V6], ingress_policy="isolated", bridge="cni0")
    assert f.names() == ["iptables-save", "iptables-restore", "ip6tables-save", "ip6tables-restore"]
    iso = '-m comment --comment "CNI firewall plugin rules (ingressPolicy: isolated)"'
    assert f.inputs("iptables-restore")[0].splitlines() == [
        "*filter",
        "-N CNI-FORWARD",
        "-N CNI-ADMIN",
        '-I FORWARD 1 -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD',
        '-I CNI-FORWARD 1 -m comment --comment "CNI firewall plugin admin overrides" -j CNI-ADMIN',
        "-A CNI-FORWARD -d 10.88.0.2/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A CNI-FORWARD -s 10.88.0.2/32 -j ACCEPT",
        "-N CNI-ISOLATION-STAGE-1",
        "-N CNI-ISOLATION-STAGE-2",
        f"-I FORWARD 1 {DF} -j CNI-ISOLATION-STAGE-1",
        f"-I CNI-ISOLATION-STAGE-1 1 -i cni0 ! -o cni0 {iso} -j CNI-ISOLATION-STAGE-2",
        f"-I CNI-ISOLATION-STAGE-1 1 -i cni0 -o cni0 {iso} -j DROP",
        f"-A CNI-ISOLATION-STAGE-1 {DF} -j RETURN",
        f"-I CNI-ISOLATION-STAGE-2 1 -o cni0 {DF} -j DROP",
        f"-A CNI-ISOLATION-STAGE-2 {DF} -j RETURN",
        "COMMIT"]


def test_add_over_go_state_is_noop(fake):  # noqa: F811
    f = fake(saves={("iptables-save", "filter"): GO_SAVE})
    firewall.add([V4], ingress_policy="same-bridge", bridge="cni0")
    assert f.names() == ["iptables-save"]  # Go's legacy comments count as present
    firewall.check([V4])


def test_delete_and_check(fake):  # noqa: F811
    f = fake(saves={("iptables-save", "filter"): GO_SAVE})
    firewall.delete([V4, ipaddress.ip_interface("10.88.0.9/24")])
    assert f.inputs("iptables-restore") == [
        "*filter\n-D CNI-FORWARD -d 10.88.0.2/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
        "-D CNI-FORWARD -s 10.88.0.2/32 -j ACCEPT\nCOMMIT\n"]
    with pytest.raises(firewall.FirewallCheckError):
        firewall.check([ipaddress.ip_interface("10.88.0.9/24")])
    with pytest.raises(firewall.FirewallCheckError):
        firewall.check([V4], admin_chain="MY-ADMIN")


def test_policy_validation():
    assert firewall.validate_ingress_policy("") == "open"
    with pytest.raises(InvalidConfigError):
        firewall.validate_ingress_policy("closed")
    with pytest.raises(InvalidConfigError):
        firewall.add([V4], ingress_policy="same-bridge", bridge="")
