"""iptables-restore transactions applied over netlink, as iptables-nft (1.8.x) would write them.

The tables and built-in chains iptables-nft creates, a table read back as iptables-save would
show it, and a restore batch (-N/-A/-I 1/-D/-F/-X) translated into one nf_tables batch. The rule
text lives in cni.fw.ipt_rule, its expressions in cni.fw.ipt_expr; a line beyond them raises
`Unsupported` and the caller falls back to `iptables-restore`.
"""
from __future__ import annotations

from cni.fw.ipt_expr import decode, encode
from cni.fw.ipt_rule import Rule, Unsupported, parse
from cni.fw.nft_commit import transact
from cni.nl import nft_defs as d
from cni.nl import nftables as nft
from cni.nl.codec import NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, AttrList

# --- tables and built-in chains, as iptables-nft creates them -------------------------------------

BASE_CHAINS = {
    "nat": {"PREROUTING": ("prerouting", -100), "INPUT": ("input", 100),
            "OUTPUT": ("output", -100), "POSTROUTING": ("postrouting", 100)},
    "filter": {"INPUT": ("input", 0), "FORWARD": ("forward", 0), "OUTPUT": ("output", 0)},
}


def family(v6: bool) -> str:
    return "ip6" if v6 else "ip"


def add_base_chain(batch: nft.Batch, table: str, chain: str, v6: bool) -> None:
    """The built-in chain `chain` of `table` (nat/filter), policy ACCEPT, as iptables-nft adds it."""
    hook, prio = BASE_CHAINS[table][chain]
    batch._op(d.NFT_MSG_NEWCHAIN, NLM_F_CREATE, family(v6), [
        ("NFTA_CHAIN_TABLE", table), ("NFTA_CHAIN_NAME", chain),
        ("NFTA_CHAIN_HOOK", AttrList([("NFTA_HOOK_HOOKNUM", d.HOOKS[hook]),
                                         ("NFTA_HOOK_PRIORITY", prio)])),
        ("NFTA_CHAIN_POLICY", d.NF_ACCEPT), ("NFTA_CHAIN_TYPE", "nat" if table == "nat" else "filter")])


def add_table(batch: nft.Batch, table: str, v6: bool) -> None:
    batch._op(d.NFT_MSG_NEWTABLE, NLM_F_CREATE, family(v6), [("NFTA_TABLE_NAME", table)])


def new_chain(batch: nft.Batch, table: str, chain: str, v6: bool) -> None:
    """`-N chain`: fails (and the whole batch with it) if the chain exists."""
    batch._op(d.NFT_MSG_NEWCHAIN, NLM_F_EXCL, family(v6),
              [("NFTA_CHAIN_TABLE", table), ("NFTA_CHAIN_NAME", chain)])


def rule_attrs(table: str, chain: str, r: Rule, v6: bool) -> list:
    exprs, proto = encode(r, v6)
    return [("NFTA_RULE_TABLE", table), ("NFTA_RULE_CHAIN", chain),
            ("NFTA_RULE_EXPRESSIONS", AttrList(("NFTA_LIST_ELEM", e) for e in exprs)),
            ("NFTA_RULE_COMPAT", AttrList([("NFTA_RULE_COMPAT_PROTO", proto),
                                               ("NFTA_RULE_COMPAT_FLAGS", 0)]))]


def append_rule(batch: nft.Batch, table: str, chain: str, r: Rule, v6: bool) -> None:
    batch._op(d.NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, family(v6),
              rule_attrs(table, chain, r, v6))


def insert_rule(batch: nft.Batch, table: str, chain: str, r: Rule, v6: bool) -> None:
    """`-I chain 1`: the rule goes first."""
    batch._op(d.NFT_MSG_NEWRULE, NLM_F_CREATE, family(v6), rule_attrs(table, chain, r, v6))


# --- an iptables-restore transaction, applied over netlink -----------------------------------

RETRIES = 30


class Snapshot:
    """One table as iptables-save would show it: chain -> rule texts, with the rule handles."""

    __slots__ = ("chains", "handles", "existing")

    def __init__(self):
        self.chains: dict = {}       # chain -> [spec text]  (a rule we cannot read: a unique marker)
        self.handles: dict = {}      # chain -> [handle]
        self.existing: set = set()   # chains present in the kernel


def read(nl: nft.NftSocket, table: str, v6: bool, only=None) -> Snapshot:
    """The table `ip|ip6 <table>` as iptables-nft would list it (empty when absent).

    only: read the rules of these chains alone (every chain is still listed, the others as
    empty): the kernel skips the other chains whole, so a caller that edits a few chains does
    not pay for a 100k-rule chain it never looks at. A -D in a chain not read is Unsupported.
    """
    snap = Snapshot()
    fam = family(v6)
    for c in nl.chains(fam, table):
        snap.chains[c.name] = []
        snap.handles[c.name] = []
        snap.existing.add(c.name)
    if only is None:
        dumped = nl.rules(fam, table)
    else:
        dumped = [r for c in dict.fromkeys(only) if c in snap.existing for r in nl.rules(fam, table, c)]
    for r in dumped:
        rule = decode(r.exprs, v6)
        text = rule.text(v6) if rule is not None else f"\0unreadable rule #{r.handle}"
        snap.chains.setdefault(r.chain, []).append(text)
        snap.handles.setdefault(r.chain, []).append(r.handle)
    return snap


def translate(lines: list, snap: Snapshot, table: str, v6: bool) -> nft.Batch:
    """iptables-restore lines (-N/-A/-I 1/-D/-F/-X, as cni.fw.iptables.Batch writes them) as
    one nf_tables batch. Unsupported when a line is beyond this translator."""
    b = nft.Batch()
    add_table(b, table, v6)
    fam = family(v6)
    rules = {c: list(zip(specs, snap.handles.get(c, [None] * len(specs))))
             for c, specs in snap.chains.items()}
    existing = set(snap.existing)

    def need_chain(chain: str) -> None:
        if chain in existing:
            return
        if chain not in BASE_CHAINS.get(table, {}):
            raise Unsupported(f"chain {chain} does not exist")
        add_base_chain(b, table, chain, v6)
        existing.add(chain)
        rules.setdefault(chain, [])
    for line in lines:
        op, _, rest = line.partition(" ")
        chain, _, spec = rest.partition(" ")
        if op == "-N":
            new_chain(b, table, chain, v6)
            existing.add(chain)
            rules[chain] = []
        elif op == "-A":
            need_chain(chain)
            append_rule(b, table, chain, parse(spec, v6), v6)
            rules[chain].append((spec, None))
        elif op == "-I":
            pos, _, spec = spec.partition(" ")
            if pos != "1":
                raise Unsupported("-I at a position other than 1")
            need_chain(chain)
            insert_rule(b, table, chain, parse(spec, v6), v6)
            rules[chain].insert(0, (spec, None))
        elif op == "-D":
            have = rules.get(chain, [])
            idx = next((i for i, (s, _) in enumerate(have) if s == spec), None)
            if idx is None or have[idx][1] is None:
                raise Unsupported(f"-D of a rule not in the kernel: {spec}")
            b.delete_rule(fam, table, chain, have.pop(idx)[1])
        elif op == "-F":
            if chain in existing:
                b.flush_chain(fam, table, chain)
            rules[chain] = []
        elif op == "-X":
            if chain in existing:
                b.delete_chain(fam, table, chain)
                existing.discard(chain)
            rules.pop(chain, None)
        else:
            raise Unsupported(f"restore line {op}")
    return b


def apply(table: str, build, make_batch, *, v6: bool = False, only=None):
    """Read the table, let build(batch) write its restore lines, commit them as one batch.

    `make_batch(chains)` makes the caller's batch model over the snapshot's chains. A batch
    that lost a race (ruleset generation changed, rule gone) is recomputed from a fresh read.
    Raises Unsupported when a rule or line is beyond this translator (nothing was written).
    `only`: read just these chains' rules (see read()).
    """
    made = None

    def attempt(nl):
        nonlocal made
        snap = read(nl, table, v6, only)
        made = make_batch({c: list(specs) for c, specs in snap.chains.items()})
        build(made)
        return translate(made.lines, snap, table, v6) if made.lines else None
    transact(attempt, retries=RETRIES)
    return made
