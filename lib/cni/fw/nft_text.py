"""nftables via one `nft -j list ...` read and one `nft -f -` transaction per change.

Rule text comes from cni.fw.rules; apply() checks every line again before `nft` runs.
"""
from __future__ import annotations

from cni.std import json as jsonx
from cni.fw import backend, rules


FAMILIES = ("ip", "ip6", "inet", "arp", "bridge", "netdev")


class Rule:
    __slots__ = ("family", "table", "chain", "handle", "comment", "expr")

    def __init__(self, family: str, table: str, chain: str, handle: int, comment, expr):
        self.family, self.table, self.chain = family, table, chain
        self.handle, self.comment, self.expr = handle, comment, expr

    def __repr__(self) -> str:
        return f"Rule({self.family} {self.table} {self.chain} #{self.handle} {self.comment!r})"


class Ruleset:
    """Decoded `nft -j list table|chain`: chain names and rules (in order)."""

    __slots__ = ("tables", "chains", "rules")

    def __init__(self):
        self.tables: set = set()
        self.chains: set = set()
        self.rules: list = []

    @classmethod
    def parse(cls, data: bytes | str) -> Ruleset:
        rs = cls()
        for obj in jsonx.loads(data or "{}").get("nftables", ()):
            if "table" in obj:
                t = obj["table"]
                rs.tables.add((t["family"], t["name"]))
            elif "chain" in obj:
                c = obj["chain"]
                rs.chains.add(c["name"])
            elif "rule" in obj:
                r = obj["rule"]
                rs.rules.append(Rule(r["family"], r["table"], r["chain"], r["handle"],
                                     r.get("comment"), r.get("expr")))
        return rs

    def in_chain(self, chain: str) -> list:
        return [r for r in self.rules if r.chain == chain]


def list_table(family: str, table: str, chain: str | None = None) -> Ruleset | None:
    """The table (or one chain of it), or None if it does not exist."""
    nft = backend.require("nft")
    argv = [nft, "-j", "list"]
    argv += ["chain", family, table, chain] if chain else ["table", family, table]
    rc, out, err = backend.run(argv)
    if rc != 0:
        if b"No such file or directory" in err or b"does not exist" in err:
            return None
        text = err.decode("utf-8", "replace").strip()
        raise backend.RuleError("nft list failed", f"exit {rc}: {text}")
    return Ruleset.parse(out)


def delete_rule(rule: Rule) -> str:
    """`delete rule` for a rule read back from `nft -j` (names and handle checked again)."""
    if rule.family not in FAMILIES:
        raise rules.RuleTextError("unexpected nft family", repr(rule.family))
    return (f"delete rule {rule.family} {rules.nft_name(rule.table, 'nft table')} "
            f"{rules.nft_name(rule.chain, 'nft chain')} handle {rules.handle(rule.handle)}")


def apply(lines: list) -> None:
    """Run the transaction atomically in one `nft -f -`; nothing to do = no exec."""
    if not lines:
        return
    rules.check_lines(lines, "nft")
    nft = backend.require("nft")
    backend.check_run([nft, "-f", "-"], ("\n".join(lines) + "\n").encode(),
                      what="nft transaction failed")
