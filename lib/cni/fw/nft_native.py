"""Masquerade rules written straight over nf_tables netlink: no `nft` binary, one atomic batch.

The ruleset is the one Go's nftables ipmasq backend (plugins v1.6+) makes and `cni.fw.masq`
writes through `nft -f`: table `inet cni_plugins_masquerade`, base chain `postrouting` (nat,
priority 100, rebuilt on every ADD) that returns for multicast and jumps to `masq_checks`, which
holds one rule per container address, `ip saddr == A ip daddr != NET masquerade`, commented
with the caller's `<h16(net)>-<h16(ifname:cid)>, net: ..., if: ..., id: ...`. So either side
(Go, `nft -f`, netlink) finds and deletes the rules of the other by comment prefix.

Names and comments come from the caller (cni.fw.masq); addresses are taken as packed bytes.
A batch whose stale-rule deletes raced with another writer fails as a whole and is recomputed.
"""
from __future__ import annotations

from cni.nl import nft_defs as d
from cni.nl import nftables as nft
from cni.nl.socket import NetlinkError

FAMILY = "inet"
TABLE = "cni_plugins_masquerade"
CHAIN = "masq_checks"
TABLE_COMMENT = "Masquerading for plugins from github.com/containernetworking/plugins"
CHAIN_COMMENT = "Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet"
_MCAST = ((b"\xe0\0\0\0", 4), (b"\xff" + bytes(15), 8))
RETRIES = 3
_ENOENT, _EBUSY = 2, 16


def _addr(ipi) -> tuple:
    """(packed address, prefix length) of an interface address object."""
    return ipi.ip.packed, ipi.network.prefixlen


def find(nl: nft.NftSocket, prefix: str) -> list:
    """Rules of masq_checks whose comment starts with `prefix` ([] when the table is absent)."""
    return [r for r in nl.rules(FAMILY, TABLE, CHAIN) if r.comment and r.comment.startswith(prefix)]


def setup_batch(ips, comment: str, stale: list) -> nft.Batch:
    """The ADD transaction: table, chains, postrouting rebuilt, stale rules out, new rules in."""
    b = nft.Batch()
    b.add_table(FAMILY, TABLE, comment=TABLE_COMMENT)
    b.add_chain(FAMILY, TABLE, CHAIN, comment=CHAIN_COMMENT)
    b.add_chain(FAMILY, TABLE, "postrouting", hook="postrouting", priority=100, type="nat")
    b.flush_chain(FAMILY, TABLE, "postrouting")
    for packed, plen in _MCAST:
        b.add_rule(FAMILY, TABLE, "postrouting",
                   nft.match_addr("daddr", packed, plen) + [nft.verdict(d.NFT_RETURN)])
    b.add_rule(FAMILY, TABLE, "postrouting", [nft.verdict(d.NFT_GOTO, CHAIN)])
    for r in stale:
        b.delete_rule(FAMILY, TABLE, CHAIN, r.handle)
    for ipi in ips:
        packed, plen = _addr(ipi)
        b.add_rule(FAMILY, TABLE, CHAIN,
                   nft.match_addr("saddr", packed)
                   + nft.match_addr("daddr", packed, plen, negate=True, inet=False)
                   + [nft.masq()], comment=comment)
    return b


def _retry(build) -> None:
    """Run build(nl) -> Batch and commit it; a batch that lost a race is recomputed."""
    with nft.NftSocket() as nl:
        for attempt in range(RETRIES):
            batch = build(nl)
            try:
                batch.commit(nl)
                return
            except NetlinkError as exc:
                if exc.errno not in (_ENOENT, _EBUSY) or attempt == RETRIES - 1:
                    raise


def setup(ips, comment: str, instance_prefix: str) -> None:
    """Masquerade each address leaving its subnet; replaces this instance's earlier rules."""
    ips = list(ips)
    if ips:
        _retry(lambda nl: setup_batch(ips, comment, find(nl, instance_prefix)))


def teardown(instance_prefix: str) -> None:
    """Delete the rules whose comment starts with `instance_prefix`; none is fine."""
    def build(nl):
        b = nft.Batch()
        for r in find(nl, instance_prefix):
            b.delete_rule(FAMILY, TABLE, CHAIN, r.handle)
        return b
    _retry(build)


def count(comment: str) -> int:
    """How many masq_checks rules carry exactly `comment` (CHECK)."""
    with nft.NftSocket() as nl:
        return sum(1 for r in find(nl, comment) if r.comment == comment)


def gc(network_prefix: str, valid_comments: set) -> None:
    """Delete this network's rules whose comment is not one of `valid_comments`."""
    def build(nl):
        b = nft.Batch()
        for r in find(nl, network_prefix):
            if r.comment not in valid_comments:
                b.delete_rule(FAMILY, TABLE, CHAIN, r.handle)
        return b
    _retry(build)
