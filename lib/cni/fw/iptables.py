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

from cni.fw import backend, iptables_nft
from cni.fw.rules import check_lines
from cni.nl.nftables import NftSocket

BUILTIN = {"nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
           "filter": ("INPUT", "FORWARD", "OUTPUT"),
           "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
           "raw": ("PREROUTING", "OUTPUT")}
RETRIES = 3


def tools(v6: bool) -> tuple:
    pre = "ip6tables" if v6 else "iptables"
    return pre + "-save", pre + "-restore"


class Table:
    """Parsed `iptables-save -t <name>`: chain name -> rule specs (text after `-A CHAIN `)."""

    __slots__ = ("name", "chains")

    def __init__(self, name: str, chains: dict | None = None):
        self.name = name
        self.chains = {c: [] for c in BUILTIN.get(name, ())}
        if chains:
            self.chains.update(chains)

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

    def jumps_to(self, target: str) -> list:
        """(chain, spec) of every rule whose target is `target`."""
        suffix = "-j " + target
        return [(c, s) for c, specs in self.chains.items() for s in specs
                if s == suffix or s.endswith(" " + suffix)]


def save(table: str, *, v6: bool = False) -> Table:
    """The table as iptables-save shows it: over netlink on an iptables-nft host, else by exec."""
    if backend.iptables_nft(v6):
        try:
            with NftSocket() as nl:
                return Table(table, iptables_nft.read(nl, table, v6).chains)
        except OSError as exc:
            raise backend.RuleError(f"reading table {table} failed", str(exc)) from None
    prog = backend.require(tools(v6)[0])
    out = backend.check_run([prog, "-t", table], what=f"{tools(v6)[0]} -t {table} failed")
    return Table.parse(table, out.decode("utf-8", "replace"))


class Batch:
    """Restore input built against a Table model that is kept in step with every edit."""

    __slots__ = ("t", "lines")

    def __init__(self, table: Table):
        self.t = table
        self.lines: list = []

    def has_chain(self, chain: str) -> bool:
        return chain in self.t.chains

    def has(self, chain: str, spec: str) -> bool:
        return spec in self.t.chains.get(chain, ())

    def ensure_chain(self, chain: str) -> None:
        if chain not in self.t.chains:
            self.lines.append(f"-N {chain}")
            self.t.chains[chain] = []

    def append(self, chain: str, spec: str) -> None:
        self.ensure_chain(chain)
        self.lines.append(f"-A {chain} {spec}")
        self.t.chains[chain].append(spec)

    def insert(self, chain: str, spec: str) -> None:
        self.ensure_chain(chain)
        self.lines.append(f"-I {chain} 1 {spec}")
        self.t.chains[chain].insert(0, spec)

    def append_unique(self, chain: str, spec: str, alts: tuple = ()) -> None:
        if not any(self.has(chain, s) for s in (spec, *alts)):
            self.append(chain, spec)

    def insert_unique(self, chain: str, spec: str, alts: tuple = ()) -> None:
        if not any(self.has(chain, s) for s in (spec, *alts)):
            self.insert(chain, spec)

    def delete(self, chain: str, spec: str, *, every: bool = True) -> None:
        """Delete a rule if present (all copies unless every=False); absent = no-op."""
        rules = self.t.chains.get(chain, [])
        while spec in rules:
            self.lines.append(f"-D {chain} {spec}")
            rules.remove(spec)
            if not every:
                break

    def delete_chain(self, chain: str) -> None:
        """Remove every jump to `chain`, flush it and delete it; absent = no-op."""
        for c, s in self.t.jumps_to(chain):
            self.delete(c, s)
        if chain in self.t.chains:
            self.lines.append(f"-F {chain}")
            self.lines.append(f"-X {chain}")
            del self.t.chains[chain]

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


def apply(table: str, build, *, v6: bool = False) -> Batch:
    """Read the table once, let build(batch) compute the edits, write them in one restore.

    A restore that fails (e.g. a concurrent edit made a -D stale) is recomputed from a fresh
    read, up to RETRIES times. On an iptables-nft host the same edits go to the kernel as one
    nf_tables batch, encoded as iptables-nft encodes them (cni.fw.iptables_nft), and no tool
    runs; an edit beyond that translator (free-form user conditions) falls back to the tools.
    """
    if backend.iptables_nft(v6):
        try:
            return iptables_nft.apply(table, build, lambda chains: Batch(Table(table, chains)), v6=v6)
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
