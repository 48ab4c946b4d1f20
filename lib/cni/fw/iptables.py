"""iptables via one `*-save -t T` read and one `*-restore --noflush --wait` write per change.

Rule text comes from cni.fw.rules (the one place where values become text), and
Batch.text() checks every line again before anything runs. Rules are written in the exact
form `iptables-save` prints, so a saved line compares equal to the rule we would add
(append-unique without one exec per rule) and any saved line can be fed back as a `-D` to
delete it. New chains are made with `-N`, never declared with `:CHAIN` (which would flush a
chain a concurrent plugin just made); if another writer raced us, the restore fails as a
whole and is recomputed from a fresh read.
"""
from __future__ import annotations

from errno import EBUSY, ENOENT, ERESTART

from cni.fw import backend, iptables_nft
from cni.fw.rules import check_lines
from cni.nl import nftables as nft
from cni.nl.socket import NetlinkError

BUILTIN = {"nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
           "filter": ("INPUT", "FORWARD", "OUTPUT"),
           "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
           "raw": ("PREROUTING", "OUTPUT")}
RETRIES = 3
BULK_RULES = 2000


def tools(v6: bool) -> tuple:
    pre = "ip6tables" if v6 else "iptables"
    return pre + "-save", pre + "-restore"


class Table:
    """Parsed `iptables-save -t <name>`: chain name -> rule specs (text after `-A CHAIN `).

    `chains` keeps each chain's rules in order; a per-chain multiset (spec -> copies), built
    on the first lookup, answers has()/count() in O(1). Edit a Table only through Batch (or
    add()/discard()), which keep the two in step.
    """

    __slots__ = ("name", "chains", "_index")

    def __init__(self, name: str, chains: dict | None = None):
        self.name = name
        self.chains = {c: [] for c in BUILTIN.get(name, ())}
        if chains:
            self.chains.update(chains)
        self._index: dict = {}

    @classmethod
    def parse(cls, name: str, text: str) -> Table:
        t = cls(name)
        cur = None
        for line in text.splitlines():
            if line.startswith("*"):
                cur = line[1:].strip()
            elif cur != name:
                continue
            elif line.startswith(":"):
                t.chains.setdefault(line[1:].split(" ", 1)[0], [])
            elif line.startswith("-A "):
                parts = line[3:].split(" ", 1)
                t.chains.setdefault(parts[0], []).append(parts[1] if len(parts) > 1 else "")
        return t

    def _counts(self, chain: str) -> dict:
        idx = self._index.get(chain)
        if idx is None:
            idx = self._index[chain] = {}
            for spec in self.chains.get(chain, ()):
                idx[spec] = idx.get(spec, 0) + 1
        return idx

    def count(self, chain: str, spec: str) -> int:
        """How many copies of the rule the chain holds (O(1) after the chain's first lookup)."""
        if chain not in self.chains:
            return 0
        return self._counts(chain).get(spec, 0)

    def has(self, chain: str, spec: str) -> bool:
        return self.count(chain, spec) > 0

    def add(self, chain: str, spec: str, *, first: bool = False) -> None:
        """Record a rule appended (or, first=True, inserted at the top: O(len) as list.insert)."""
        rules = self.chains.setdefault(chain, [])
        if first:
            rules.insert(0, spec)
        else:
            rules.append(spec)
        idx = self._index.get(chain)
        if idx is not None:
            idx[spec] = idx.get(spec, 0) + 1

    def discard(self, chain: str, doomed: dict) -> list:
        """Remove rules in one pass: doomed maps spec -> copies to drop (from the top).
        Returns the removed specs in chain order."""
        rules = self.chains.get(chain)
        if not rules or not doomed:
            return []
        left = dict(doomed)
        kept, gone = [], []
        for spec in rules:
            n = left.get(spec, 0)
            if n:
                left[spec] = n - 1
                gone.append(spec)
            else:
                kept.append(spec)
        rules[:] = kept
        idx = self._index.get(chain)
        if idx is not None:
            for spec in gone:
                n = idx[spec] - 1
                if n:
                    idx[spec] = n
                else:
                    del idx[spec]
        return gone

    def drop_chain(self, chain: str) -> None:
        self.chains.pop(chain, None)
        self._index.pop(chain, None)

    def jumps_to(self, target: str) -> list:
        """(chain, spec) of every rule whose target is `target`."""
        return self.jumps_to_any((target,))

    def jumps_to_any(self, targets) -> list:
        """(chain, spec) of every rule whose target is one of `targets`: one pass over the table."""
        want = set(targets)
        out = []
        for c, specs in self.chains.items():
            for s in specs:
                at = s.rfind("-j ")
                if at >= 0 and (at == 0 or s[at - 1] == " ") and s[at + 3:] in want:
                    out.append((c, s))
        return out


def _netlink(v6: bool, rules: int) -> bool:
    """Go over netlink (cni.fw.iptables_nft) rather than exec the tools? Yes on an iptables-nft
    host, unless the call touches more than BULK_RULES rules and the tools are there: the
    translator costs ~0.25 ms of Python a rule, iptables-restore/-save a tenth of that."""
    if not backend.iptables_nft(v6):
        return False
    return rules <= BULK_RULES or backend.NATIVE is True or not backend.have_iptables(v6)


def save(table: str, *, v6: bool = False, rules: int = 0, only=None) -> Table:
    """The table as iptables-save shows it: over netlink on an iptables-nft host, else by exec.
    `rules`: how many rules the caller expects to read (see _netlink); `only`: the chains whose
    rules the caller looks at (over netlink the others are listed empty, unread)."""
    if _netlink(v6, rules):
        try:
            with nft.NftSocket() as nl:
                return Table(table, iptables_nft.read(nl, table, v6, only).chains)
        except OSError as exc:
            raise backend.RuleError(f"reading table {table} failed", str(exc)) from None
    prog = backend.require(tools(v6)[0])
    out = backend.check_run([prog, "-t", table], what=f"{tools(v6)[0]} -t {table} failed")
    return Table.parse(table, out.decode("utf-8", "replace"))


class Batch:
    """Restore input built against a Table model that is kept in step with every edit.

    Every lookup is O(1) and every edit O(1) amortised, except insert() (one list shift) and
    delete() (one pass over the chain, whatever the number of rules it drops): a batch of n
    rules costs O(n).
    """

    __slots__ = ("t", "lines")

    def __init__(self, table: Table):
        self.t = table
        self.lines: list = []

    def has(self, chain: str, spec: str) -> bool:
        return self.t.has(chain, spec)

    def ensure_chain(self, chain: str) -> None:
        if chain not in self.t.chains:
            self.lines.append(f"-N {chain}")
            self.t.chains[chain] = []

    def append(self, chain: str, spec: str) -> None:
        self.ensure_chain(chain)
        self.lines.append(f"-A {chain} {spec}")
        self.t.add(chain, spec)

    def insert(self, chain: str, spec: str) -> None:
        self.ensure_chain(chain)
        self.lines.append(f"-I {chain} 1 {spec}")
        self.t.add(chain, spec, first=True)

    def append_unique(self, chain: str, spec: str, alts: tuple = ()) -> None:
        if not any(self.t.has(chain, s) for s in (spec, *alts)):
            self.append(chain, spec)

    def insert_unique(self, chain: str, spec: str, alts: tuple = ()) -> None:
        if not any(self.t.has(chain, s) for s in (spec, *alts)):
            self.insert(chain, spec)

    def delete(self, chain: str, spec: str, *, every: bool = True) -> None:
        """Delete a rule if present (all copies unless every=False); absent = no-op."""
        n = self.t.count(chain, spec)
        if n:
            self.delete_many(chain, {spec: n if every else 1})

    def delete_many(self, chain: str, doomed) -> None:
        """Delete rules in one pass over the chain: doomed is an iterable of specs (every copy
        of each) or a dict spec -> copies. Absent rules are skipped."""
        if not isinstance(doomed, dict):
            doomed = {s: self.t.count(chain, s) for s in doomed}
        for spec in self.t.discard(chain, {s: n for s, n in doomed.items() if n > 0}):
            self.lines.append(f"-D {chain} {spec}")

    def delete_chain(self, chain: str) -> None:
        """Remove every jump to `chain`, flush it and delete it; absent = no-op."""
        self.delete_chains((chain,))

    def delete_chains(self, chains) -> None:
        """delete_chain() for several chains with one pass over the table."""
        chains = list(dict.fromkeys(chains))
        by_chain: dict = {}
        for c, s in self.t.jumps_to_any(chains):
            doomed = by_chain.setdefault(c, {})
            doomed[s] = doomed.get(s, 0) + 1
        for c, doomed in by_chain.items():
            if c not in chains:
                self.delete_many(c, doomed)
        present = [c for c in chains if c in self.t.chains]
        self.lines += [f"-F {c}" for c in present]     # all flushed before any -X: one may
        self.lines += [f"-X {c}" for c in present]     # jump to another
        for c in present:
            self.t.drop_chain(c)

    def text(self) -> str:
        """The restore input; a line that could split into more (rules.check_lines) raises."""
        if not self.lines:
            return ""
        check_lines([self.t.name, *self.lines], "iptables-restore")
        return f"*{self.t.name}\n" + "\n".join(self.lines) + "\nCOMMIT\n"


def restore(text: str, *, v6: bool = False) -> None:
    prog = backend.require(tools(v6)[1])
    backend.check_run([prog, "--noflush", "--wait"], text.encode(),
                      what=f"{tools(v6)[1]} failed")


def apply(table: str, build, *, v6: bool = False, rules: int = 0, only=None) -> Batch:
    """Read the table once, let build(batch) compute the edits, write them in one restore.

    A restore that fails (e.g. a concurrent edit made a -D stale) is recomputed from a fresh
    read, up to RETRIES times. On an iptables-nft host the same edits go to the kernel as one
    nf_tables batch, encoded as iptables-nft encodes them (cni.fw.iptables_nft), and no tool
    runs; an edit beyond that translator (free-form user conditions) falls back to the tools,
    and so does a bulk edit (`rules`: how many rules build() may write or read; see _netlink).
    `only`: the chains build() reads; over netlink no other chain's rules are read, so build()
    must not delete a chain (a jump to it could sit in a chain it did not see).
    """
    if _netlink(v6, rules):
        try:
            return iptables_nft.apply(table, build, lambda chains: Batch(Table(table, chains)), v6=v6,
                                      only=only)
        except iptables_nft.Unsupported:
            pass
        except OSError as exc:
            raise backend.RuleError(f"updating table {table} failed", str(exc)) from None
    for attempt in range(RETRIES):
        batch = Batch(save(table, v6=v6))
        build(batch)
        text = batch.text()
        if not text:
            return batch
        try:
            restore(text, v6=v6)
            return batch
        except backend.RuleError:
            if attempt == RETRIES - 1:
                raise
    return batch  # pragma: no cover


# --- iptables-nft: dropping chains without reading them ------------------------------------

def _jump_target(rule) -> str | None:
    """The chain an nf_tables rule jumps (or goes) to, from its immediate verdict."""
    for e in rule.exprs:
        if e.get("NFTA_EXPR_NAME") != "immediate":
            continue
        data = e.get("NFTA_EXPR_DATA")
        imm = data.get("NFTA_IMMEDIATE_DATA") if data else None
        v = imm.get("NFTA_DATA_VERDICT") if imm else None
        if v is not None and v.get("NFTA_VERDICT_CODE") in (-3, -4):   # NFT_JUMP, NFT_GOTO
            return v.get("NFTA_VERDICT_CHAIN")
    return None


def drop_chains_nft(table: str, chains, sources, *, v6: bool = False) -> bool:
    """iptables-nft only: delete `chains` and every jump to them from the `sources` chains,
    in one generation-checked nf_tables batch; returns False (nothing done) when the shortcut
    does not apply and the caller must use apply(): legacy iptables, or a jump to one of the
    chains from outside `sources` (the kernel refuses the chain delete: EBUSY).

    Why: an iptables-nft restore holding any -D, and iptables-save, dump every rule of the
    table, and the kernel restarts a rule dump from the head of the chain for every 32 KB of
    output: reading a 180k-rule CNI-DN chain costs ~10 s of kernel time, growing as n^2. This
    path reads only the (small) `sources` chains and flushes the dropped chains unread.
    """
    if not backend.iptables_nft(v6):
        return False
    fam = "ip6" if v6 else "ip"
    with nft.NftSocket() as nl:
        for attempt in range(RETRIES * 10):
            genid = nl.genid()
            existing = {c.name for c in nl.chains(fam, table)}
            doomed = [c for c in dict.fromkeys(chains) if c in existing]
            if not doomed:
                return True
            b = nft.Batch()
            for src in sources:
                if src in existing and src not in doomed:
                    for r in nl.rules(fam, table, src):
                        if _jump_target(r) in doomed:
                            b.delete_rule(fam, table, src, r.handle)
            for c in doomed:
                b.flush_chain(fam, table, c)
            for c in doomed:
                b.delete_chain(fam, table, c)
            try:
                b.commit(nl, genid=genid)
                return True
            except NetlinkError as exc:
                if exc.errno == EBUSY:
                    return False
                if exc.errno not in (ERESTART, ENOENT) or attempt == RETRIES * 10 - 1:
                    raise backend.RuleError(f"nf_tables {table} update failed", str(exc)) from None
    return False  # pragma: no cover
