"""UPDATE (our extension) of the portmap rules: a container's mappings replaced in place.

iptables: per family one iptables-restore batch that drops the container's entry jumps and
flushes its CNI-DN-<hash> chain, then refills both (the old rules hold until the batch
commits); nftables: one `nft -f` transaction that deletes the container's commented rules and
adds the new ones (cni.fw.portmap.add already works that way). Rule text comes from
cni.fw.portmap's builders, so an updated container's rules equal those of an ADD.
"""
from __future__ import annotations

from cni.fw import backend as be
from cni.fw import nft_text
from cni.fw.backend import IPTABLES, NFTABLES
from cni.fw.portmap import (DNAT_CHAIN, NFT_TABLE, SETMARK_CHAIN, _ipt_build, _ipt_delete, _nft_owned,
                            _pick_ips, _resolve, add, delete, dn_chain, ipt_chain_rules,
                            ipt_entry_rules)


def _ipt_replace(b, network, container_id, mappings, ipi, o, old: set | None = None) -> None:
    """This container's DN chain and its entry jumps, rebuilt in the same restore batch: the
    old rules stay until the batch commits (iptables-restore is one transaction per table).
    A chain that already holds exactly the wanted rules is left alone (idempotent).
    `old` receives (protocol, hostPort) of the DNAT rules replaced."""
    chain = dn_chain(network, container_id)
    setmark = o["external_setmark_chain"] or SETMARK_CHAIN
    want = ipt_chain_rules(mappings, ipi, snat=o["snat"], masq_all=o["masq_all"], setmark=setmark)
    cond = o["conditions_v6"] if ipi.version == 6 else o["conditions_v4"]
    entries = [f"{spec} -j {chain}" for spec in ipt_entry_rules(network, container_id, mappings, cond)]
    jumps = b.t.jumps_to(chain)
    if b.t.chains.get(chain) == want and [s for _, s in jumps] == entries \
            and all(c == DNAT_CHAIN for c, _ in jumps):
        _ipt_build(b, network, container_id, mappings, ipi, o)   # shared chains only, if missing
        return
    if old is not None:
        _dnat_ports(b.t.chains.get(chain, ()), old)
    for c, spec in jumps:
        b.delete(c, spec)
    if b.t.chains.get(chain):
        b.lines.append(f"-F {chain}")
        b.t.chains[chain] = []
    _ipt_build(b, network, container_id, mappings, ipi, o)


def update(network: str, container_id: str, mappings: list, container_ips, *,
           backend: str | None = None, **opts) -> set:
    """Replace the container's mappings with `mappings` (UPDATE): per family one
    iptables-restore batch, or one nftables transaction, that removes the old rules and adds
    the new ones; no mappings = the container's rules removed. Rules the other backend holds
    for this container (a backend switch) are removed after the new ones are in (nftables
    ones where the `nft` tool is present; DEL removes them in any case).
    Returns (protocol, hostPort) of the DNAT rules that were in place before, so the caller
    can flush their UDP conntrack entries."""
    o, which = _resolve(backend, opts)
    old: set = set()
    if which == NFTABLES and be.have_nft():
        _nft_ports(container_id, old)
    if not mappings:
        if which == IPTABLES:
            _drop_ipt(network, container_id, old)
        delete(network, container_id, which)
    elif which == NFTABLES:     # add() replaces the container's rules in one transaction
        add(network, container_id, mappings, container_ips, backend=which, **opts)
    else:
        from cni.fw import iptables  # lazy: the iptables backend only
        for ver, ipi in sorted(_pick_ips(container_ips).items()):
            iptables.apply("nat", lambda b, ipi=ipi: _ipt_replace(b, network, container_id, mappings,
                                                                   ipi, o, old),
                           v6=ver == 6, rules=3 * len(mappings))
    if which == NFTABLES:
        _drop_ipt(network, container_id, None)
    else:
        _drop_nft_text(container_id)
    return old


def _drop_ipt(network: str, container_id: str, old: set | None) -> None:
    """The container's iptables rules out (one batch per family), their ports into `old`."""
    from cni.fw import iptables  # lazy: the iptables backend only

    def build(b):
        if old is not None:
            _dnat_ports(b.t.chains.get(dn_chain(network, container_id), ()), old)
        _ipt_delete(b, network, container_id)
    for v6 in (False, True):
        if be.have_iptables(v6) and be.ipt_table_may_exist("nat", v6):
            iptables.apply("nat", build, v6=v6)


def _drop_nft_text(container_id: str) -> None:
    """The container's nftables rules out, through `nft -f` (nothing without the tool)."""
    if not be.have_nft():
        return
    for fam in ("ip", "ip6"):
        if be.nft_table_may_exist(fam, NFT_TABLE):
            nft_text.apply([nft_text.delete_rule(r) for r in _nft_owned(fam, container_id)])


def _dnat_ports(specs, out: set) -> None:
    """Add (protocol, hostPort) of each DNAT rule of a DN chain (save form) to `out`."""
    for spec in specs:
        toks = spec.split()
        if "DNAT" in toks and "-p" in toks and "--dport" in toks:
            try:
                out.add((toks[toks.index("-p") + 1], int(toks[toks.index("--dport") + 1])))
            except (IndexError, ValueError):
                pass


def _nft_ports(container_id: str, out: set) -> None:
    """Add (protocol, hostPort) of the container's nftables DNAT rules to `out`."""
    for fam in ("ip", "ip6"):
        if not be.nft_table_may_exist(fam, NFT_TABLE):
            continue
        for r in _nft_owned(fam, container_id):
            for e in r.expr or ():
                m = e.get("match") if isinstance(e, dict) else None
                left = m.get("left") if isinstance(m, dict) else None
                pl = left.get("payload") if isinstance(left, dict) else None
                if isinstance(pl, dict) and pl.get("field") == "dport" \
                        and isinstance(m.get("right"), int):
                    out.add((pl.get("protocol"), m["right"]))


__all__ = ["update"]
