"""Firewall backend choice, tool lookup, exec and the Go-compatible name/hash helpers."""
from __future__ import annotations

from cni.errors import InternalError, InvalidConfigError
from cni.names import hash_with_prefix
from cni.std import oslite as os
from cni.std import process as proc

IPTABLES = "iptables"
NFTABLES = "nftables"
BACKENDS = (IPTABLES, NFTABLES)

_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_which_cache: dict = {}


class ToolMissingError(InternalError):
    """A firewall tool (iptables-restore, nft, ...) is not installed."""

    def __init__(self, tool: str):
        super().__init__(f"{tool} not found", "PATH=" + os.environ.get("PATH", _DEFAULT_PATH))
        self.tool = tool


class RuleError(InternalError):
    """A firewall tool exited non-zero."""


def which(name: str) -> str | None:
    """cni.std.process.which (absolute PATH entries only), cached per process."""
    try:
        return _which_cache[name]
    except KeyError:
        pass
    found = _which_cache[name] = proc.which(name)
    return found


def require(name: str) -> str:
    path = which(name)
    if path is None:
        raise ToolMissingError(name)
    return path


def have_iptables(v6: bool = False) -> bool:
    pre = "ip6tables" if v6 else "iptables"
    return which(pre + "-restore") is not None and which(pre + "-save") is not None


def have_nft() -> bool:
    return which("nft") is not None


def nft_table_may_exist(family: str, name: str) -> bool:
    """False only when the kernel says the nf_tables table is absent (no `nft` exec)."""
    from cni.nl.nftables import table_exists  # lazy: a netlink query, only when asked
    return table_exists(family, name) is not False


def ipt_table_may_exist(table: str, v6: bool) -> bool:
    """False only when iptables is the nf_tables flavour and its table is absent.

    iptables-nft keeps table `nat` as nf_tables table `ip nat` / `ip6 nat`, so a DEL
    can skip an `ip6tables-save` that could only find nothing.
    """
    path = which("ip6tables-save" if v6 else "iptables-save")
    if path is None:
        return False
    if proc.program_name(path) != "xtables-nft-multi":
        return True
    return nft_table_may_exist("ip6" if v6 else "ip", table)


# Netlink paths (no tool execs): None = use them where they apply, False = always run the tools
# (tests compare both), True = netlink even where the tools would be picked.
NATIVE: bool | None = None


def iptables_nft(v6: bool = False) -> bool:
    """True when this host's iptables is the nf_tables flavour (as iptables itself reports:
    its binary is xtables-nft-multi), so its rules are read and written over netlink."""
    if NATIVE is not None:
        return NATIVE
    path = which("ip6tables-restore" if v6 else "iptables-restore")
    return path is not None and proc.program_name(path) == "xtables-nft-multi"


def nft_native() -> bool:
    """True unless the tools are forced: the nftables backends need no `nft` binary."""
    return NATIVE is not False


def select(explicit: str | None = None, field: str = "backend") -> str:
    """The backend to use: an explicit value wins, else iptables where its tools exist and
    nftables (over netlink, no binary needed) where they do not."""
    if explicit:
        if explicit not in BACKENDS:
            raise InvalidConfigError(f"unknown {field} {explicit!r}", f"{field}={explicit}")
        return explicit
    return IPTABLES if have_iptables() else NFTABLES


def run(argv: list, input: bytes = b"") -> tuple:
    """Run a tool through cni.std.process.run; returns (rc, stdout, stderr). Missing tool -> ToolMissingError."""
    try:
        return proc.run(argv, input=input)
    except FileNotFoundError:
        raise ToolMissingError(os.path.basename(argv[0])) from None


def check_run(argv: list, input: bytes = b"", what: str = "") -> bytes:
    rc, out, err = run(argv, input)
    if rc != 0:
        text = err.decode("utf-8", "replace").strip()
        raise RuleError(what or f"{os.path.basename(argv[0])} failed", f"exit {rc}: {text}")
    return out


# --- Go-compatible names ----------------------------------------------------------------------

def chain_name(network: str, container_id: str, prefix: str = "") -> str:
    """Go FormatChainName / MustFormatChainNameWithPrefix: 'CNI-'+prefix+hash, 28 chars."""
    return hash_with_prefix(28, "CNI-" + prefix, network + container_id)


_GO_ESC = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
           "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def go_quote(s: str) -> str:
    """Go's %q of a string (printable unicode kept, control chars escaped)."""
    out = ['"']
    for ch in s:
        e = _GO_ESC.get(ch)
        if e is not None:
            out.append(e)
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def format_comment(network: str, container_id: str) -> str:
    """Go FormatComment: name: "<net>" id: "<cid>"."""
    return f"name: {go_quote(network)} id: {go_quote(container_id)}"
