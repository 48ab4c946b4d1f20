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

from errno import EBUSY, ENOENT, ERESTART
from sys import byteorder as _BYTEORDER

from cni.fw.nft_commit import transact
from cni.nl import nft_defs as d
from cni.nl import nftables as nft

FAMILY = "inet"
TABLE = "cni_plugins_masquerade"
CHAIN = "masq_checks"
TABLE_COMMENT = "Masquerading for plugins from github.com/containernetworking/plugins"
CHAIN_COMMENT = "Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet"
_MCAST = ((b"\xe0\0\0\0", 4), (b"\xff" + bytes(15), 8))
RETRIES = 3
_RACES = (ENOENT, EBUSY, ERESTART)        # retried here (EEXIST is not)


def _addr(ipi) -> tuple:
    """(packed address, prefix length) of an interface address object."""
    return ipi.ip.packed, ipi.network.prefixlen


def find(nl: nft.NftSocket, prefix: str) -> list:
    """Rules of masq_checks whose comment starts with `prefix` ([] when the table is absent)."""
    return [r for r in nl.rules(FAMILY, TABLE, CHAIN) if r.comment and r.comment.startswith(prefix)]


def _postrouting_rules() -> list:
    return [nft.match_addr("daddr", packed, plen) + [nft.verdict(d.NFT_RETURN)]
            for packed, plen in _MCAST] + [[nft.verdict(d.NFT_GOTO, CHAIN)]]


def setup_batch(ips, comment: str, stale: list, *, skeleton: bool = True) -> nft.Batch:
    """The ADD transaction: table, chains, postrouting rebuilt, stale rules out, new rules in.

    With skeleton=False the table and its chains are known to be in place already and are not
    written again (rewriting rules costs the kernel an RCU grace period: 10-20 ms)."""
    b = nft.Batch()
    if skeleton:
        b.add_table(FAMILY, TABLE, comment=TABLE_COMMENT)
        b.add_chain(FAMILY, TABLE, CHAIN, comment=CHAIN_COMMENT)
        b.add_chain(FAMILY, TABLE, "postrouting", hook="postrouting", priority=100, type="nat")
        b.flush_chain(FAMILY, TABLE, "postrouting")
        for exprs in _postrouting_rules():
            b.add_rule(FAMILY, TABLE, "postrouting", exprs)
    for r in stale:
        b.delete_rule(FAMILY, TABLE, CHAIN, r.handle)
    for ipi in ips:
        packed, plen = _addr(ipi)
        b.add_rule(FAMILY, TABLE, CHAIN,
                   nft.match_addr("saddr", packed)
                   + nft.match_addr("daddr", packed, plen, negate=True, inet=False)
                   + [nft.masq()], comment=comment)
    return b


def _retry(build, *, checked: bool = False) -> None:
    """Run build(nl) -> Batch and commit it; a batch that lost a race is recomputed. checked:
    the kernel refuses the batch (ERESTART) if anything was written since build() began."""
    transact(build, retries=RETRIES, races=_RACES, checked=checked, backoff=False)


def _canon(exprs) -> list:
    """Expressions compared as values: attribute order and the kernel's own additions
    (NFTA_BITWISE_OP, padding) do not count."""
    out = []
    for e in exprs:
        data = e.get("NFTA_EXPR_DATA")
        items = sorted((k, _flat(v)) for k, v in (data or ()) if k not in _KERNEL_ADDED)
        out.append((e.get("NFTA_EXPR_NAME"), items))
    return out


_KERNEL_ADDED = ("NFTA_BITWISE_OP", "NFTA_COUNTER_PAD", "NFTA_COUNTER_BYTES", "NFTA_COUNTER_PACKETS")


def _flat(v):
    return tuple((k, _flat(x)) for k, x in v) if isinstance(v, list) else v


def in_place(nl: nft.NftSocket, fam: str, table: str, chains: dict, rebuilt: dict) -> bool:
    """True when `table` holds every chain of `chains` ({name: (hook, priority) or None}) and
    each chain of `rebuilt` ({name: [exprs, ...]}) holds exactly those rules, in order."""
    have = {c.name: c for c in nl.chains(fam, table)}
    for name, hook in chains.items():
        c = have.get(name)
        if c is None:
            return False
        if hook is not None:
            h = c.hook or ()
            if (h.get("NFTA_HOOK_HOOKNUM"), h.get("NFTA_HOOK_PRIORITY")) != (d.HOOKS[hook[0]], hook[1]):
                return False
    for name, want in rebuilt.items():
        rules = nl.rules(fam, table, name)
        if [_canon(r.exprs) for r in rules] != [_canon(w) for w in want]:
            return False
    return True


def setup(ips, comment: str, instance_prefix: str) -> None:
    """Masquerade each address leaving its subnet; replaces this instance's earlier rules."""
    ips = list(ips)
    if not ips:
        return

    def build(nl):
        ready = in_place(nl, FAMILY, TABLE, {CHAIN: None, "postrouting": ("postrouting", 100)},
                         {"postrouting": _postrouting_rules()})
        return setup_batch(ips, comment, find(nl, instance_prefix), skeleton=not ready)
    _retry(build)


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


# --- portmap -----------------------------------------------------------------------------------
# Tables `ip cni_hostport` / `ip6 cni_hostport`, as cni.fw.portmap writes them through `nft -f`:
# hostports_all (rebuilt) jumps to hostip_hostports and hostports; base chains prerouting and
# output (nat, -100) jump to hostports_all for local destinations; one DNAT rule per mapping in
# hostports and, with snat, hairpin/localhost masquerade rules in masquerading (nat, 100), all
# commented with the container ID.

PM_TABLE = "cni_hostport"
PM_CHAINS = ("hostports", "hostip_hostports", "masquerading")
PROTOCOLS = {"tcp": 6, "udp": 17, "sctp": 132}
RTN_LOCAL = 2
_LOOPBACK4 = b"\x7f\0\0\1"


class Mapping:
    """One port mapping with validated fields: protocol number, ports, packed host IP or None."""

    __slots__ = ("proto", "host_port", "container_port", "host_ip")

    def __init__(self, proto: int, host_port: int, container_port: int, host_ip: bytes | None = None):
        if proto not in PROTOCOLS.values():
            raise ValueError(f"protocol {proto} not supported")
        for p in (host_port, container_port):
            if not 0 < p < 65536:
                raise ValueError(f"port {p} out of range")
        if host_ip is not None and len(host_ip) not in (4, 16):
            raise ValueError("host IP must be 4 or 16 bytes")
        self.proto, self.host_port = proto, host_port
        self.container_port, self.host_ip = container_port, host_ip


def _pm_family(packed: bytes) -> tuple:
    return ("ip", d.NFPROTO_IPV4) if len(packed) == 4 else ("ip6", d.NFPROTO_IPV6)


def _local_jump(chain: str) -> list:
    """`fib daddr type local jump CHAIN` (the address type is host-order u32, as nft sends)."""
    return [nft.fib(d.NFT_FIB_RESULT_ADDRTYPE, d.NFTA_FIB_F_DADDR),
            nft.cmp(d.NFT_CMP_EQ, RTN_LOCAL.to_bytes(4, _BYTEORDER)),
            nft.verdict(d.NFT_JUMP, chain)]


def _pm_rebuilt() -> dict:
    """The chains portmap rebuilds on every ADD (as Go's), with their rules."""
    return {"hostports_all": [[nft.verdict(d.NFT_JUMP, "hostip_hostports")],
                              [nft.verdict(d.NFT_JUMP, "hostports")]],
            "prerouting": [_local_jump("hostports_all")], "output": [_local_jump("hostports_all")]}


def portmap_ready(nl: nft.NftSocket, fam: str, snat: bool) -> bool:
    """The table's chains and its rebuilt rules are already what portmap_batch would write."""
    chains = {"hostports": None, "hostip_hostports": None, "hostports_all": None,
              "prerouting": ("prerouting", -100), "output": ("output", -100)}
    if snat:
        chains["masquerading"] = ("postrouting", 100)
    return in_place(nl, fam, PM_TABLE, chains, _pm_rebuilt())


def portmap_batch(container_id: str, mappings: list, container_ip: bytes, *, stale: list = (),
                  snat: bool = True, masq_all: bool = False, skeleton: bool = True) -> nft.Batch:
    """The ADD transaction for one container address (one family); skeleton=False: the table
    and its chains are in place already (portmap_ready) and are not rewritten."""
    fam, nfproto = _pm_family(container_ip)
    t = PM_TABLE
    b = nft.Batch()
    if skeleton:
        b.add_table(fam, t, comment="CNI portmap plugin")
        for c in ("hostports", "hostip_hostports", "hostports_all"):
            b.add_chain(fam, t, c)
        b.flush_chain(fam, t, "hostports_all")
        rebuilt = _pm_rebuilt()
        for exprs in rebuilt["hostports_all"]:
            b.add_rule(fam, t, "hostports_all", exprs)
        for hook in ("prerouting", "output"):
            b.add_chain(fam, t, hook, hook=hook, priority=-100, type="nat")
            b.flush_chain(fam, t, hook)
            b.add_rule(fam, t, hook, rebuilt[hook][0])
        if snat:
            b.add_chain(fam, t, "masquerading", hook="postrouting", priority=100, type="nat")
    for r in stale:
        b.delete_rule(fam, t, r.chain, r.handle)
    for m in mappings:
        if m.host_ip is not None and len(m.host_ip) != len(container_ip):
            continue                                   # a hostIP of the other family
        exprs = []
        if m.host_ip is not None and any(m.host_ip):   # unspecified = any address
            exprs += nft.match_addr("daddr", m.host_ip, inet=False)
        exprs += [nft.meta(d.NFT_META_L4PROTO), nft.cmp(d.NFT_CMP_EQ, bytes((m.proto,))),
                  nft.payload(d.NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2),
                  nft.cmp(d.NFT_CMP_EQ, m.host_port.to_bytes(2, "big")),
                  nft.immediate(container_ip, d.NFT_REG_1),
                  nft.immediate(m.container_port.to_bytes(2, "big"), d.NFT_REG_2),
                  nft.nat(d.NFT_NAT_DNAT, nfproto, addr_reg=d.NFT_REG_1, proto_reg=d.NFT_REG_2,
                          flags=d.NF_NAT_RANGE_PROTO_SPECIFIED)]
        b.add_rule(fam, t, "hostports", exprs, comment=container_id)
    if snat:
        srcs = [(container_ip, 0)] if masq_all else [(container_ip, None)]
        if len(container_ip) == 4 and not masq_all:
            srcs.append((_LOOPBACK4, None))
        for src, plen in srcs:
            b.add_rule(fam, t, "masquerading",
                       nft.match_addr("saddr", src, plen, inet=False)
                       + nft.match_addr("daddr", container_ip, inet=False) + [nft.masq()],
                       comment=container_id)
    return b


def portmap_owned(nl: nft.NftSocket, fam: str, container_id: str) -> list:
    """This container's rules in the portmap table of `fam` ([] when the table is absent)."""
    return [r for r in nl.rules(fam, PM_TABLE, exprs=False)
            if r.chain in PM_CHAINS and r.comment == container_id]


def portmap_add(container_id: str, mappings: list, container_ips, **kw) -> None:
    """Install the mappings for each container address, all families in one transaction."""
    ips = list(container_ips)
    if not mappings or not ips:
        return

    def build(nl):
        b = nft.Batch()
        for ip in ips:
            fam = _pm_family(ip)[0]
            stale = portmap_owned(nl, fam, container_id)
            ready = portmap_ready(nl, fam, kw.get("snat", True))
            b.ops += portmap_batch(container_id, mappings, ip, stale=stale, skeleton=not ready,
                                   **kw).ops
        return b
    _retry(build)


def portmap_delete(container_id: str) -> None:
    """Remove the container's rules in both families, in one transaction; none is fine.

    A chain holding only this container's rules is flushed in one operation: the kernel finds a
    rule by walking its chain to the handle, so n deletes from a chain of n rules cost n^2/2
    steps (60k mappings: ~12 s of kernel time)."""
    def build(nl):
        b = nft.Batch()
        for fam in ("ip", "ip6"):
            every = [r for r in nl.rules(fam, PM_TABLE, exprs=False) if r.chain in PM_CHAINS]
            for chain in PM_CHAINS:
                mine = [r for r in every if r.chain == chain and r.comment == container_id]
                if mine and len(mine) == sum(1 for r in every if r.chain == chain):
                    b.flush_chain(fam, PM_TABLE, chain)   # one op, not n handle walks
                else:
                    for r in mine:
                        b.delete_rule(fam, PM_TABLE, chain, r.handle)
        return b
    _retry(build, checked=True)    # a flush must not take a rule added since the listing


def portmap_count(fam: str, container_id: str) -> dict:
    """{chain: number of this container's rules} (CHECK)."""
    with nft.NftSocket() as nl:
        out: dict = {}
        for r in portmap_owned(nl, fam, container_id):
            out[r.chain] = out.get(r.chain, 0) + 1
        return out
