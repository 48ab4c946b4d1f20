"""The one home of firewall rule text: every value that reaches `iptables-restore` or `nft -f`
is rendered here from a typed, checked value, never by pasting an input string.

- addresses are re-rendered from their packed bytes (inet_ntop): no zone (`%...`), no odd spelling;
- ports, marks and prefix lengths are ints with range checks; protocols come from a fixed set;
- names: iptables chains `[A-Za-z0-9][A-Za-z0-9_.-]*` of at most 28 chars (the kernel's
  XT_EXTENSION_MAXNAMELEN - 1), nft identifiers `[A-Za-z][A-Za-z0-9_.-]*` below 256 bytes
  (NFT_NAME_MAXLEN), interface names as CNI_IFNAME (cni.config.valid_ifname) and printable;
- comments are quoted by ipt_comment() / nft_comment(), which refuse control characters (an
  iptables comment is cut at 255 bytes as iptables does; an nft one loses '"' and is cut at 128);
- user conditions (portmap conditionsV4/V6): ipt_conditions() keeps each element one argv
  token, as Go passes it; nft_conditions() accepts an expression with no statement separator
  (see there);
- check_lines() is the last line of defence of iptables.Batch.text() and nft_text.apply(): a line
  holding \\n, \\r or \\0, or longer than MAX_LINE (iptables-restore reads 10240-byte chunks and
  would take the rest as a new line), is an internal error raised before anything runs.

A bad value raises RuleValueError (code 7, a ValueError too) whose details name the field.
"""
from __future__ import annotations

import _socket

from cni.errors import InternalError, InvalidConfigError
from cni.config import valid_ifname

IPT_CHAIN_MAX = 28          # XT_EXTENSION_MAXNAMELEN (29) - 1
NFT_NAME_MAX = 255          # NFT_NAME_MAXLEN (256) - 1
IPT_COMMENT_MAX = 255       # XT_MAX_COMMENT_LEN (256) - 1
NFT_COMMENT_MAX = 128       # NFTNL_UDATA_COMMENT_MAXLEN (knftables CommentLengthMax)
TOKEN_MAX = 1000            # iptables-restore's parameter buffer is 1024 bytes
CONDITIONS_MAX = 4096       # bytes of user conditions in one rule
MAX_LINE = 8192             # bytes per line fed to a tool
PROTOCOLS = ("tcp", "udp", "sctp")
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME = _ALNUM | frozenset("_.-")
NFT_NAME_CHARS = _NAME
_LETTER = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_PLAIN = _ALNUM | frozenset("_-")          # what iptables-save prints unquoted
_HEX = frozenset("0123456789abcdefABCDEF")
_NFT_FORBIDDEN = frozenset(';#\\')
_BAD_LINE = ("\n", "\r", "\0")


class RuleValueError(InvalidConfigError, ValueError):
    """A value cannot be put into a rule; details name the field."""


class RuleTextError(InternalError):
    """Rule text failed the last check before exec (a builder bug, never user input)."""


def _refuse(field: str, value, why: str):
    shown = value if not isinstance(value, str) or len(value) <= 64 else value[:64] + "..."
    raise RuleValueError(f"invalid {field}", f"{field}={shown!r}: {why}")


def _text(value, field: str, *, max_bytes: int, empty: bool = False) -> str:
    """A printable string (no control or separator characters) of at most max_bytes."""
    if not isinstance(value, str):
        _refuse(field, value, "must be a string")
    if not value and not empty:
        _refuse(field, value, "must not be empty")
    if not value.isprintable():
        bad = next(c for c in value if not c.isprintable())
        _refuse(field, value, f"contains the control character {bad!r}")
    if len(value.encode("utf-8", "surrogatepass")) > max_bytes:
        _refuse(field, value, f"longer than {max_bytes} bytes")
    return value


def printable(value, field: str, *, max_bytes: int = 1 << 16) -> str:
    """Text bound for a comment, checked whole before any caller truncates it."""
    return _text(value, field, max_bytes=max_bytes, empty=True)


# --- typed values --------------------------------------------------------------------------

def _ip(ip):
    ip = getattr(ip, "ip", ip)          # ip_interface -> ip_address
    packed = getattr(ip, "packed", None)
    if not isinstance(packed, bytes) or len(packed) not in (4, 16):
        raise RuleTextError("not an IP address", repr(ip))
    return ip, packed


def addr(ip) -> str:
    """An ip_address (or the address of an ip_interface) from its bytes, without any zone."""
    _, packed = _ip(ip)
    return _socket.inet_ntop(_socket.AF_INET if len(packed) == 4 else _socket.AF_INET6, packed)


def host(ip) -> str:
    """A host match as iptables prints it: 10.0.0.5/32, fd00::5/128."""
    _, packed = _ip(ip)
    return f"{addr(ip)}/{len(packed) * 8}"


def net(ipi) -> str:
    """The network of an ip_interface: 10.0.0.0/24."""
    n = ipi.network
    return f"{addr(n.network_address)}/{prefixlen(n.prefixlen, len(n.network_address.packed) * 8)}"


def prefixlen(n, max_len: int) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= max_len:
        raise RuleTextError("invalid prefix length", repr(n))
    return n


def dnat_to(ipi, port_: int) -> str:
    """A DNAT destination: 10.0.0.2:80 or [fd00::2]:80."""
    a = addr(ipi)
    return f"[{a}]:{port(port_)}" if ":" in a else f"{a}:{port(port_)}"


def port(n, field: str = "port") -> int:
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 65535:
        _refuse(field, n, "must be an integer 1-65535")
    return n


def proto(p, field: str = "protocol") -> str:
    if p not in PROTOCOLS:
        _refuse(field, p, "must be tcp, udp or sctp")
    return p


def mark(bit, field: str = "markMasqBit") -> str:
    """The mark/mask of one bit as iptables-save prints it: 0x2000/0x2000."""
    if not isinstance(bit, int) or isinstance(bit, bool) or not 0 <= bit <= 31:
        _refuse(field, bit, "must be an integer 0-31")
    v = 1 << bit
    return f"{v:#x}/{v:#x}"


def mac(value, field: str = "mac") -> str:
    """A MAC address re-rendered from its six bytes: aa:bb:cc:dd:ee:ff."""
    parts = value.split(":") if isinstance(value, str) else ()
    if len(parts) != 6 or not all(len(p) == 2 and set(p) <= _HEX for p in parts):
        _refuse(field, value, "must be a MAC address xx:xx:xx:xx:xx:xx")
    return ":".join(f"{int(p, 16):02x}" for p in parts)


def handle(n) -> int:
    """An nft rule handle (from `nft -j` output)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise RuleTextError("invalid nft rule handle", repr(n))
    return n


# --- names ---------------------------------------------------------------------------------

def _identifier(name, field: str, most: int, first: frozenset, pattern: str) -> str:
    """A non-empty name of at most `most` characters, `first` then [A-Za-z0-9_.-]*."""
    if not isinstance(name, str) or not name:
        _refuse(field, name, "must be a non-empty string")
    if len(name) > most:
        _refuse(field, name, f"longer than {most} characters")
    if name[0] not in first or not set(name) <= _NAME:
        _refuse(field, name, f"must match {pattern}")
    return name


def ipt_chain(name, field: str = "chain") -> str:
    """An iptables chain name: [A-Za-z0-9][A-Za-z0-9_.-]*, at most 28 characters."""
    return _identifier(name, field, IPT_CHAIN_MAX, _ALNUM, "^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def nft_name(name, field: str = "nft name") -> str:
    """An nft table/chain identifier: [A-Za-z][A-Za-z0-9_.-]*, below 256 bytes."""
    return _identifier(name, field, NFT_NAME_MAX, _LETTER, "^[A-Za-z][A-Za-z0-9_.-]*$")


def ifname(name, field: str = "interface name") -> str:
    """An interface name as CNI_IFNAME is checked (<= 15 bytes, no '/', ':', whitespace,
    not '.'/'..'), printable."""
    if not isinstance(name, str):
        _refuse(field, name, "must be a string")
    why = valid_ifname(name)
    if why:
        _refuse(field, name, why)
    _text(name, field, max_bytes=15)
    return name


def zone_name(name, field: str = "firewalldZone") -> str:
    """A firewalld zone name (a D-Bus string argument, not rule text): printable, no
    whitespace or '/', at most 64 bytes."""
    _text(name, field, max_bytes=64)
    if "/" in name or any(c.isspace() for c in name):
        _refuse(field, name, "must not hold whitespace or '/'")
    return name


def ipt_ifname(name, field: str = "interface name") -> str:
    """An interface name as one iptables-restore argument, written as iptables-save prints it
    (raw: it quotes no interface name), so a name holding '"' cannot be written and is refused."""
    if '"' in ifname(name, field):
        _refuse(field, name, "contains '\"', which iptables-save would print unquoted")
    return name


def nft_ifname(name, field: str = "interface name") -> str:
    """An interface name as an nft quoted string (a literal: no '*' wildcard, no quote)."""
    ifname(name, field)
    if any(c in name for c in '"\\*'):
        _refuse(field, name, "contains a character nft cannot hold in a name string")
    return f'"{name}"'


# --- iptables arguments ------------------------------------------------------------------

def quote(value: str) -> str:
    """One argument as iptables-save prints it (and iptables-restore parses it back).

    Callers pass checked text: this only quotes, it does not decide what may go in a rule.
    """
    if value and set(value) <= _PLAIN:
        return value
    return '"' + "".join("\\" + c if c in "\"\\'" else c for c in value) + '"'


def ipt_comment(text, field: str = "comment") -> str:
    """`-m comment --comment <text>`; the one quoting function for iptables comments.

    Control characters are refused; a text over 255 bytes is cut there, as iptables itself
    does with what Go passes, so the rule we write is the one iptables-save shows.
    """
    b = _text(text, field, max_bytes=1 << 16).encode()
    if len(b) > IPT_COMMENT_MAX:
        text = b[:IPT_COMMENT_MAX].decode("utf-8", "ignore")
    return "-m comment --comment " + quote(text)


def ipt_token(token, field: str) -> str:
    """A user-supplied argument (one conditions element = one argv element, as in Go)."""
    _text(token, field, max_bytes=TOKEN_MAX)
    if not any(c in token for c in " \"'\\"):
        return token
    return quote(token)


def ipt_conditions(conditions, field: str = "conditions") -> list:
    """conditionsV4/V6 for iptables: each element one argument, quoted as needed."""
    if conditions is None:
        return []
    if not isinstance(conditions, list):
        _refuse(field, conditions, "must be a list of strings")
    out = [ipt_token(c, f"{field}[{i}]") for i, c in enumerate(conditions)]
    if sum(len(t.encode()) + 1 for t in out) > CONDITIONS_MAX:
        _refuse(field, " ".join(conditions), f"longer than {CONDITIONS_MAX} bytes in all")
    return out


# --- nft -----------------------------------------------------------------------------------

def nft_comment_text(text, field: str = "comment") -> str:
    """A comment's text as nft keeps it: double quotes dropped (as Go does), at most 128 bytes;
    control characters are refused. Also what goes into a rule's user data over netlink."""
    text = _text(text, field, max_bytes=1 << 16, empty=True).replace('"', "")
    b = text.encode()
    if len(b) > NFT_COMMENT_MAX:
        text = b[:NFT_COMMENT_MAX].decode("utf-8", "ignore")
    return text


def nft_comment(text, field: str = "comment") -> str:
    """`comment "<text>"` (nft_comment_text quoted)."""
    return f'comment "{nft_comment_text(text, field)}"'


def nft_conditions(conditions, field: str = "conditions") -> str:
    """conditionsV4/V6 for nftables, joined with spaces (as Go) into one expression.

    Refused: control characters (so no newline), ';' (a new command), '#' (a comment that would
    swallow the rest of our rule), a backslash, a double quote left open in an element, and braces
    that do not balance: a balanced `{ ... }` is an anonymous set (`ip saddr { 10.0.0.0/8,
    192.0.2.1 }`) and cannot open a table or chain block inside `add rule` without a separator.
    """
    if conditions is None:
        return ""
    if not isinstance(conditions, list):
        _refuse(field, conditions, "must be a list of strings")
    depth = 0
    for i, c in enumerate(conditions):
        f = f"{field}[{i}]"
        _text(c, f, max_bytes=TOKEN_MAX)
        bad = _NFT_FORBIDDEN.intersection(c)
        if bad:
            _refuse(f, c, f"contains {''.join(sorted(bad))!r}, which nft reads as a separator")
        if c.count('"') % 2:
            _refuse(f, c, "has an unbalanced double quote")
        for ch in c:
            depth += (ch == "{") - (ch == "}")
            if depth < 0:
                _refuse(f, c, "closes a brace that was not opened")
    if depth:
        _refuse(field, " ".join(conditions), "has unbalanced braces")
    text = " ".join(conditions)
    if len(text.encode()) > CONDITIONS_MAX:
        _refuse(field, text, f"longer than {CONDITIONS_MAX} bytes in all")
    return text


# --- last line of defence ----------------------------------------------------------------

def check_lines(lines, tool: str) -> None:
    """Refuse a transaction whose lines could be read as more lines than we wrote."""
    for line in lines:
        if not isinstance(line, str) or any(c in line for c in _BAD_LINE):
            raise RuleTextError(f"refusing {tool} input", f"line {line!r:.120} holds a line break or NUL")
        if len(line.encode("utf-8", "surrogatepass")) > MAX_LINE:
            raise RuleTextError(f"refusing {tool} input", f"a line is longer than {MAX_LINE} bytes")
