"""ingressPolicy rules on their own (the firewalld backend still needs them in iptables)."""
from __future__ import annotations

from cni.errors import InvalidConfigError
from cni.fw import backend as be
from cni.fw import firewall


def setup(ips, policy: str, bridge: str) -> None:
    """CNI-ISOLATION-STAGE-1/2 rules for `bridge`, one restore per address family present."""
    from cni.fw import iptables    # lazy: the iptables backend only
    if not bridge:
        raise InvalidConfigError(f"interface needs to be set for ingress policy {policy!r}, "
                                 'make sure to chain "firewall" plugin with "bridge"')
    rules = firewall.isolation_rules(bridge, policy == "isolated")

    def build(b):
        b.ensure_chain(firewall.STAGE1)
        b.ensure_chain(firewall.STAGE2)
        for op, chain, spec, alts in rules:
            firewall.put_rule(b, op, chain, spec, alts)
    for v6 in sorted({getattr(ip, "version", 4) == 6 for ip in ips}):
        for tool in iptables.tools(v6):
            be.require(tool)
        iptables.apply("filter", build, v6=v6)
