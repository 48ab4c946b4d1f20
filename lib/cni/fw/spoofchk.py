"""bridge `macspoofchk`: drop frames from a container port whose source MAC is not its own.

Layout as Go's: table `bridge nat`, base chain PREROUTING (filter, prerouting,
priority -300), a jump per port to `cni-br-iface-<cid>-<ifname>`, which jumps to
`...-mac` holding `ether saddr <mac> return` then `drop`. Rules carry the
comment `macspoofchk-<cid>-<ifname>`. One `nft -f -` per change.
"""
from __future__ import annotations

from cni.fw import nftables

FAMILY, TABLE, BASE = "bridge", "nat", "PREROUTING"


def _names(container_id: str, ifname: str) -> tuple:
    iface = f"cni-br-iface-{container_id}-{ifname}"
    return iface, iface + "-mac", f"macspoofchk-{container_id}-{ifname}"


def setup(container_id: str, ifname: str, host_if: str, mac: str) -> None:
    iface, macc, comment = _names(container_id, ifname)
    c = nftables.comment(comment)
    nftables.apply([
        f"add table {FAMILY} {TABLE}",
        f"add chain {FAMILY} {TABLE} {BASE} {{ type filter hook prerouting priority -300 ; policy accept ; }}",
        f"add chain {FAMILY} {TABLE} {iface}",
        f"add chain {FAMILY} {TABLE} {macc}",
        f"flush chain {FAMILY} {TABLE} {iface}",
        f"flush chain {FAMILY} {TABLE} {macc}",
        f"add rule {FAMILY} {TABLE} {BASE} iifname \"{host_if}\" jump {iface} {c}",
        f"add rule {FAMILY} {TABLE} {iface} jump {macc} {c}",
        f"add rule {FAMILY} {TABLE} {macc} ether saddr {mac} return {c}",
        f"add rule {FAMILY} {TABLE} {macc} drop {c}",
    ])


def teardown(container_id: str, ifname: str) -> None:
    """Remove this port's rules and chains; nothing there (or no nft) is fine."""
    from cni.fw import backend
    if not backend.have_nft() or not backend.nft_table_may_exist(FAMILY, TABLE):
        return
    iface, macc, comment = _names(container_id, ifname)
    rs = nftables.list_table(FAMILY, TABLE)
    if rs is None:
        return
    lines = [nftables.delete_rule(r) for r in rs.in_chain(BASE)
             if r.comment == comment or _jumps_to(r, iface)]
    for ch in (iface, macc):
        if ch in rs.chains:
            lines += [f"flush chain {FAMILY} {TABLE} {ch}", f"delete chain {FAMILY} {TABLE} {ch}"]
    nftables.apply(lines)


def _jumps_to(rule, chain: str) -> bool:
    for e in rule.expr or ():
        if isinstance(e, dict) and e.get("jump", {}).get("target") == chain:
            return True
    return False
