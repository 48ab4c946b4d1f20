"""The firewall plugin's nftables backend, over nf_tables netlink: no `nft` binary, one batch.

Upstream has no nftables firewall backend. This layout follows the spirit of Go's nftables
portmap and masquerade backends (a table of our own, per-container rules found by comment)
and mirrors the iptables backend chain for chain (FORWARD -> CNI-ISOLATION-STAGE-1 and
CNI-FORWARD -> CNI-ADMIN, then the per-address accepts):

    table inet cni_firewall {                                   # comment "CNI firewall plugin"
        chain forward {         # type filter hook forward priority 0; ADD rebuilds it if changed
            jump isolation_stage_1      # ingress policies first: no accept can bypass them
            jump allow
        }
        chain isolation_stage_1 {       # per bridge B with ingressPolicy same-bridge|isolated
            iifname B oifname != B jump isolation_stage_2
            iifname B oifname B drop                            # isolated only
        }
        chain isolation_stage_2 {       # leaving B for another policy bridge: dropped there
            oifname B drop
        }
        chain allow {
            jump admin                  # first: the admin's overrides (iptablesAdminChainName)
            ip daddr A ct state established,related accept      # per container address A,
            ip saddr A accept                                   # both commented C
        }
        chain admin { }                 # the admin's own rules; never written by us
    }

C is the container's instance comment (`<h16(net)>-<h16(ifname:cid)>, net: .., if: .., id: ..`,
as the masquerade rules carry), so DEL finds the container's rules by its prefix with no
address needed, and CHECK counts them. The isolation rules are shared by all containers of a
bridge and stay (as the iptables backend's); each carries a comment naming its policy and
bridge, by which ADD finds it already present.

The base chain is created with policy accept and its policy is never written again, so an
admin's `policy drop` survives every ADD: then only what `allow` (or `admin`) accepts is
forwarded. An accept here ends only this table's evaluation (nf_tables semantics): a drop in
another table (iptables FORWARD policy DROP) still applies, while our drops are final.

Every verb is one transaction read against a ruleset generation (genid): a batch that lost a
race with another writer is refused whole by the kernel and recomputed, and a SIGKILL leaves
either none or all of the container's rules.
"""
from __future__ import annotations

from _socket import AF_INET, AF_INET6, inet_ntop
from sys import byteorder as _BYTEORDER

from cni.fw.nft_commit import transact
from cni.nl import nft_defs as d
from cni.nl import nftables as nft
from cni.nl.codec import AttrList

FAMILY = "inet"
TABLE = "cni_firewall"
FORWARD = "forward"
ALLOW = "allow"
ADMIN = "admin"
STAGE1 = "isolation_stage_1"
STAGE2 = "isolation_stage_2"
TABLE_COMMENT = "CNI firewall plugin"
POLICY_COMMENT = "CNI firewall plugin rules (ingressPolicy: same-bridge|isolated)"
ALLOW_COMMENT = "CNI firewall plugin rules"
ADMIN_COMMENT = "CNI firewall plugin admin overrides"
CT_ESTABLISHED, CT_RELATED = 2, 4
IFNAMSIZ = 16
RETRIES = 30


# --- expressions --------------------------------------------------------------------------

def _ifname(key: int, name: str, op: int = d.NFT_CMP_EQ) -> list:
    """`iifname|oifname [!=] "NAME"` as nft emits it (the name NUL-padded to IFNAMSIZ)."""
    raw = name.encode()
    if not 0 < len(raw) < IFNAMSIZ:
        raise ValueError(f"interface name {name!r} must be 1 to 15 bytes")
    return [nft.meta(key), nft.cmp(op, raw.ljust(IFNAMSIZ, b"\0"))]


def _ct_established() -> list:
    """`ct state established,related` (the state bits are a host-order u32, as nft sends)."""
    return [nft.ct(d.NFT_CT_STATE),
            nft.bitwise((CT_ESTABLISHED | CT_RELATED).to_bytes(4, _BYTEORDER), bytes(4)),
            nft.cmp(d.NFT_CMP_NEQ, bytes(4))]


def address_rules(packed: bytes) -> list:
    """The two `allow` rules of one container address (4 or 16 packed bytes)."""
    return [nft.match_addr("daddr", packed) + _ct_established() + [nft.verdict(d.NF_ACCEPT)],
            nft.match_addr("saddr", packed) + [nft.verdict(d.NF_ACCEPT)]]


def isolation_rules(bridge: str, isolated: bool) -> list:
    """[(chain, comment, exprs)] of an ingress policy on `bridge`."""
    iif = _ifname(d.NFT_META_IIFNAME, bridge)
    out = [(STAGE1, f"{POLICY_COMMENT}, bridge: {bridge}",
            iif + _ifname(d.NFT_META_OIFNAME, bridge, d.NFT_CMP_NEQ)
            + [nft.verdict(d.NFT_JUMP, STAGE2)]),
           (STAGE2, f"{POLICY_COMMENT}, bridge: {bridge}",
            _ifname(d.NFT_META_OIFNAME, bridge) + [nft.verdict(d.NF_DROP)])]
    if isolated:
        out.append((STAGE1, f"CNI firewall plugin rules (ingressPolicy: isolated), bridge: {bridge}",
                    iif + _ifname(d.NFT_META_OIFNAME, bridge) + [nft.verdict(d.NF_DROP)]))
    return out


def jump_target(rule) -> str | None:
    """The chain a dumped rule jumps (or goes) to as its verdict, else None."""
    for e in rule.exprs:
        if e.get("NFTA_EXPR_NAME") != "immediate":
            continue
        data = (e.get("NFTA_EXPR_DATA") or AttrList()).get("NFTA_IMMEDIATE_DATA") or AttrList()
        v = data.get("NFTA_DATA_VERDICT")
        if v is not None and v.get("NFTA_VERDICT_CODE") in (d.NFT_JUMP, d.NFT_GOTO):
            return v.get("NFTA_VERDICT_CHAIN")
    return None


def _compared(rule) -> list:
    """The values a dumped rule compares registers with (addresses, names, ...)."""
    out = []
    for e in rule.exprs:
        if e.get("NFTA_EXPR_NAME") == "cmp":
            data = (e.get("NFTA_EXPR_DATA") or AttrList()).get("NFTA_CMP_DATA") or AttrList()
            out.append(bytes(data.get("NFTA_DATA_VALUE") or b""))
    return out


# --- transactions ---------------------------------------------------------------------------

def add_batch(rules: list, chains, addrs: list, comment: str, prefix: str, *, admin: str = ADMIN,
              bridge: str = "", isolated: bool = False) -> nft.Batch:
    """The ADD transaction against the dumped `rules` and chain names of our table: missing
    chains made, `forward` rebuilt unless it is as written, the admin jump and isolation rules
    added when missing, this instance's rules replaced.

    Nothing present is written again: the kernel frees a replaced chain or rule only after an
    RCU grace period, which a closing socket waits for (about 10 ms here; cni.nl.nfsock keeps
    that off the exit, at the cost of a fork), so an ADD that only adds rules costs neither."""
    b = nft.Batch()
    t = TABLE
    b.add_table(FAMILY, t, comment=TABLE_COMMENT)
    for c in (STAGE1, STAGE2, ALLOW, admin):
        if c not in chains:
            b.add_chain(FAMILY, t, c)
    fwd = [r for r in rules if r.chain == FORWARD]
    if FORWARD not in chains:
        b.add_chain(FAMILY, t, FORWARD, hook="forward", priority=0, type="filter")
    if [(len(r.exprs), jump_target(r)) for r in fwd] != [(1, STAGE1), (1, ALLOW)]:
        if fwd:
            b.flush_chain(FAMILY, t, FORWARD)
        b.add_rule(FAMILY, t, FORWARD, [nft.verdict(d.NFT_JUMP, STAGE1)], comment=POLICY_COMMENT)
        b.add_rule(FAMILY, t, FORWARD, [nft.verdict(d.NFT_JUMP, ALLOW)], comment=ALLOW_COMMENT)
    if not any(r.chain == ALLOW and jump_target(r) == admin for r in rules):
        b.add_rule(FAMILY, t, ALLOW, [nft.verdict(d.NFT_JUMP, admin)], comment=ADMIN_COMMENT,
                   insert=True)
    if bridge:
        have = {(r.chain, r.comment) for r in rules}
        for chain, cmt, exprs in isolation_rules(bridge, isolated):
            if (chain, cmt) not in have:
                b.add_rule(FAMILY, t, chain, exprs, comment=cmt)
    for r in owned(rules, prefix):
        b.delete_rule(FAMILY, t, r.chain, r.handle)
    for packed in addrs:
        for exprs in address_rules(packed):
            b.add_rule(FAMILY, t, ALLOW, exprs, comment=comment)
    return b


def update_batch(rules: list, chains, addrs: list, comment: str, prefix: str, *,
                 admin: str = ADMIN, bridge: str = "", policy: str = "open") -> nft.Batch:
    """UPDATE (our extension): ADD's batch, plus the bridge's isolation rules of any other
    policy removed (open: all of the bridge's) and the admin chain's jump moved first."""
    iso = policy == "isolated"
    b = add_batch(rules, chains, addrs, comment, prefix, admin=admin,
                  bridge=bridge if policy != "open" else "", isolated=iso)
    if bridge:
        want = {(c, m) for c, m, _ in isolation_rules(bridge, iso)} if policy != "open" else set()
        for r in rules:
            if (r.chain in (STAGE1, STAGE2) and (r.comment or "").endswith(f", bridge: {bridge}")
                    and (r.chain, r.comment) not in want):
                b.delete_rule(FAMILY, TABLE, r.chain, r.handle)
    allow = [r for r in rules if r.chain == ALLOW]
    mine = [r for r in allow if jump_target(r) == admin]
    if mine and allow[0] is not mine[0]:
        for r in mine:
            b.delete_rule(FAMILY, TABLE, ALLOW, r.handle)
        b.add_rule(FAMILY, TABLE, ALLOW, [nft.verdict(d.NFT_JUMP, admin)], comment=ADMIN_COMMENT,
                   insert=True)
    return b


def owned(rules: list, prefix: str) -> list:
    """The per-container rules among `rules` whose comment starts with `prefix`."""
    return [r for r in rules if r.chain == ALLOW and r.comment and r.comment.startswith(prefix)]


def _chains(nl: nft.NftSocket) -> set:
    return {c.name for c in nl.chains(FAMILY, TABLE)}


def _transact(build) -> None:
    """build(socket) -> Batch, committed against the ruleset generation read before it; a batch
    that lost a race is recomputed from a fresh read. An empty batch sends nothing."""
    transact(build, retries=RETRIES)


def add(addrs: list, comment: str, prefix: str, **kw) -> None:
    """Allow each packed address through `forward`, replacing this instance's earlier rules;
    kw: admin (chain name), bridge and isolated (the ingress policy, none without bridge)."""
    _transact(lambda nl: add_batch(nl.rules(FAMILY, TABLE), _chains(nl), addrs, comment, prefix, **kw))


def update(addrs: list, comment: str, prefix: str, **kw) -> None:
    """update_batch in one transaction; kw: admin, bridge, policy."""
    _transact(lambda nl: update_batch(nl.rules(FAMILY, TABLE), _chains(nl), addrs, comment,
                                      prefix, **kw))


def delete(prefix: str) -> None:
    """Delete the rules whose comment starts with `prefix` (one instance); none is fine."""
    def build(nl):
        b = nft.Batch()
        for r in owned(nl.rules(FAMILY, TABLE), prefix):
            b.delete_rule(FAMILY, TABLE, r.chain, r.handle)
        return b
    _transact(build)


def problems(addrs: list, comment: str, *, admin: str = ADMIN, bridge: str = "",
             isolated: bool = False) -> list:
    """What CHECK misses: [] when the chains, jumps, isolation and per-address rules exist."""
    with nft.NftSocket() as nl:
        rules = nl.rules(FAMILY, TABLE)
        chains = _chains(nl)
    if not rules and not chains:
        return [f"table {FAMILY} {TABLE} missing"]
    out = [f"chain {c} missing" for c in (FORWARD, ALLOW, admin) if c not in chains]
    jumps = [(r.chain, jump_target(r)) for r in rules]
    for want in ((FORWARD, STAGE1), (FORWARD, ALLOW), (ALLOW, admin)):
        if want not in jumps:
            out.append(f"jump from {want[0]} to {want[1]} missing")
    if bridge:
        have = {(r.chain, r.comment) for r in rules}
        out += [f"{chain} rule {cmt!r} missing" for chain, cmt, _ in isolation_rules(bridge, isolated)
                if (chain, cmt) not in have]
    mine = [r for r in rules if r.chain == ALLOW and r.comment == comment]
    for packed in addrs:
        n = sum(1 for r in mine if packed in _compared(r))
        if n < 2:
            addr = inet_ntop(AF_INET if len(packed) == 4 else AF_INET6, packed)
            out.append(f"allow rules of {addr} missing ({n} of 2)")
    return out
