"""iptables rule text: the model of one rule as iptables-save prints it, parsed and printed.

The options the CNI plugins write, and nothing else:

  -s/-d ADDR[/LEN], -i/-o NAME[+] (each with `!`), -p tcp|udp|sctp|icmp|icmpv6,
  -m comment --comment T, -m tcp|udp|sctp --dport N, -m multiport --dports A,B,..,
  -m addrtype --dst-type LOCAL, -m mark --mark V/M, -m conntrack --ctstate S,..,
  -j ACCEPT|DROP|RETURN|<chain>|MASQUERADE|MARK --set-xmark V/M|DNAT --to-destination A:P.

Anything else raises `Unsupported`, and the caller falls back to `iptables-restore`.
cni.fw.ipt_expr encodes a Rule as iptables-nft's nf_tables expressions (and back).
"""
from __future__ import annotations

import _socket

AF = {False: _socket.AF_INET, True: _socket.AF_INET6}
PROTOS = {"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1, "icmpv6": 58}
PROTO_NAMES = {v: k for k, v in PROTOS.items()}
CT_STATES = {"INVALID": 1, "NEW": 8, "RELATED": 4, "ESTABLISHED": 2, "UNTRACKED": 1 << 8,
             "SNAT": 1 << 9, "DNAT": 1 << 10}          # in the order iptables prints them
ADDRTYPES = {"UNSPEC": 1, "UNICAST": 2, "LOCAL": 4, "BROADCAST": 8, "ANYCAST": 16,
             "MULTICAST": 32, "BLACKHOLE": 64, "UNREACHABLE": 128, "PROHIBIT": 256,
             "THROW": 512, "NAT": 1024, "XRESOLVE": 2048}
COMMENT_LEN = 256
IFNAMSIZ = 16


class Unsupported(ValueError):
    """A rule this translator does not handle (the caller uses iptables-restore instead)."""


# --- text -----------------------------------------------------------------------------------

def tokens(spec: str) -> list:
    """Split a rule as iptables-save prints it: double quotes group, backslash escapes."""
    out, cur, quoted, esc, started = [], [], False, False, False
    for ch in spec:
        if esc:
            cur.append(ch)
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == '"':
            quoted = not quoted
            started = True
        elif ch == " " and not quoted:
            if cur or started:
                out.append("".join(cur))
            cur, started = [], False
        else:
            cur.append(ch)
    if quoted or esc:
        raise Unsupported("unterminated quote in rule")
    if cur or started:
        out.append("".join(cur))
    return out


_PLAIN = frozenset("_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _quote(value: str) -> str:
    """One argument as iptables-save prints it."""
    if value and all(c in _PLAIN for c in value):
        return value
    return '"' + "".join("\\" + c if c in "\"\\'" else c for c in value) + '"'


class Rule:
    """One iptables rule, decomposed: what iptables-nft needs and iptables-save prints."""

    __slots__ = ("src", "dst", "iif", "oif", "proto", "matches", "target", "targs")

    def __init__(self):
        self.src = self.dst = None        # (packed, prefixlen, invert)
        self.iif = self.oif = None        # (name, invert)
        self.proto = None                 # (number, invert)
        self.matches: list = []           # (name, dict)
        self.target: str | None = None
        self.targs: dict = {}

    def __eq__(self, other) -> bool:
        return isinstance(other, Rule) and all(getattr(self, s) == getattr(other, s)
                                               for s in Rule.__slots__)

    def __repr__(self) -> str:
        return f"Rule({self.text(False)!r})"

    # - text -
    def text(self, v6: bool) -> str:
        af = AF[v6]
        out = []
        for opt, val in (("-s", self.src), ("-d", self.dst)):
            if val is not None:
                packed, plen, inv = val
                out += (["!"] if inv else []) + [opt, f"{_socket.inet_ntop(af, packed)}/{plen}"]
        for opt, val in (("-i", self.iif), ("-o", self.oif)):
            if val is not None:
                out += (["!"] if val[1] else []) + [opt, val[0]]
        if self.proto is not None:
            out += (["!"] if self.proto[1] else []) + ["-p", PROTO_NAMES.get(self.proto[0], str(self.proto[0]))]
        for name, a in self.matches:
            out += ["-m", name]
            if name == "comment":
                out += ["--comment", _quote(a["comment"])]
            elif name in ("tcp", "udp", "sctp"):
                out += ["--dport", str(a["dport"])]
            elif name == "multiport":
                out += ["--dports", ",".join(str(p) for p in a["dports"])]
            elif name == "addrtype":
                out += (["!"] if a.get("invert") else []) + ["--dst-type", a["dst_type"]]
            elif name == "mark":
                out += ["--mark", f"{a['mark']:#x}/{a['mask']:#x}"]
            elif name == "conntrack":
                out += ["--ctstate", ",".join(a["ctstate"])]
        if self.target is not None:
            out += ["-j", self.target]
            if self.target == "MARK":
                out += ["--set-xmark", f"{self.targs['mark']:#x}/{self.targs['mask']:#x}"]
            elif self.target == "DNAT":
                out += ["--to-destination", self.targs["to"]]
        return " ".join(out)


def _addr(text: str, v6: bool) -> tuple:
    a, _, p = text.partition("/")
    try:
        packed = _socket.inet_pton(AF[v6], a)
    except OSError:
        raise Unsupported(f"bad address {text!r}") from None
    bits = len(packed) * 8
    plen = int(p) if p.isdigit() else (bits if not p else -1)
    if not 0 <= plen <= bits:
        raise Unsupported(f"bad prefix in {text!r}")
    mask = ((1 << bits) - 1) ^ ((1 << (bits - plen)) - 1)
    return (int.from_bytes(packed, "big") & mask).to_bytes(len(packed), "big"), plen


def _int(text: str, lo: int, hi: int) -> int:
    try:
        v = int(text, 0)
    except ValueError:
        raise Unsupported(f"bad number {text!r}") from None
    if not lo <= v <= hi:
        raise Unsupported(f"number {text!r} out of range")
    return v


def _mark(text: str) -> tuple:
    v, _, m = text.partition("/")
    return _int(v, 0, 0xFFFFFFFF), _int(m, 0, 0xFFFFFFFF) if m else 0xFFFFFFFF


def parse(spec: str, v6: bool) -> Rule:
    """The Rule for `spec` (iptables-save text after `-A CHAIN`); Unsupported if not handled."""
    toks = tokens(spec)
    r = Rule()
    i, inv = 0, False

    def arg() -> str:
        nonlocal i
        if i + 1 >= len(toks):
            raise Unsupported(f"{toks[i]} needs a value")
        i += 1
        return toks[i]
    while i < len(toks):
        t = toks[i]
        if t == "!":
            inv = True
            i += 1
            continue
        if t in ("-s", "-d"):
            packed, plen = _addr(arg(), v6)
            if plen or inv:
                setattr(r, "src" if t == "-s" else "dst", (packed, plen, inv))
        elif t in ("-i", "-o"):
            name = arg()
            if not name or len(name) >= IFNAMSIZ or any(c in name for c in "/ \t\n\0"):
                raise Unsupported(f"bad interface {name!r}")
            setattr(r, "iif" if t == "-i" else "oif", (name, inv))
        elif t == "-p":
            p = arg()
            if p not in PROTOS:
                raise Unsupported(f"protocol {p!r}")
            r.proto = (PROTOS[p], inv)
        elif t == "-m" and not inv:
            _parse_match(r, arg(), toks, i + 1)
            i = _skip_match(toks, i + 1)
            continue
        elif t == "-j" and not inv:
            _parse_target(r, arg(), toks[i + 1:])
            return check(r)
        else:
            raise Unsupported(f"option {t!r}")
        inv = False
        i += 1
    return check(r)


def _skip_match(toks: list, i: int) -> int:
    """Index of the token after a match's own options (they all start with '--' or '!')."""
    while i < len(toks) and (toks[i].startswith("--") or toks[i] == "!"):
        i += 2 if toks[i].startswith("--") else 1
    return i


def _parse_match(r: Rule, name: str, toks: list, i: int) -> None:
    opts, inv = {}, False
    while i < len(toks) and (toks[i].startswith("--") or toks[i] == "!"):
        if toks[i] == "!":
            inv = True
            i += 1
            continue
        if i + 1 >= len(toks):
            raise Unsupported(f"{toks[i]} needs a value")
        opts[toks[i]] = (toks[i + 1], inv)
        inv = False
        i += 2
    keys = set(opts)
    if any(v[1] for k, v in opts.items() if not (name == "addrtype" and k == "--dst-type")):
        raise Unsupported(f"negated option in -m {name}")
    if name == "comment" and keys == {"--comment"}:
        text = opts["--comment"][0]
        if len(text.encode()) >= COMMENT_LEN or "\0" in text:
            raise Unsupported("comment too long")
        r.matches.append(("comment", {"comment": text}))
    elif name in ("tcp", "udp", "sctp") and keys == {"--dport"}:
        if r.proto != (PROTOS[name], False):
            raise Unsupported(f"-m {name} without -p {name}")
        r.matches.append((name, {"dport": _int(opts["--dport"][0], 0, 65535)}))
    elif name == "multiport" and keys == {"--dports"}:
        ports = [_int(p, 0, 65535) for p in opts["--dports"][0].split(",")]
        if not 1 <= len(ports) <= 15 or r.proto is None or r.proto[0] not in (6, 17, 132) or r.proto[1]:
            raise Unsupported("multiport needs 1 to 15 ports and -p tcp|udp|sctp")
        r.matches.append(("multiport", {"dports": ports}))
    elif name == "addrtype" and keys == {"--dst-type"}:
        t, neg = opts["--dst-type"]
        if t not in ADDRTYPES:
            raise Unsupported(f"address type {t!r}")
        r.matches.append(("addrtype", {"dst_type": t, "invert": neg}))
    elif name == "mark" and keys == {"--mark"}:
        v, m = _mark(opts["--mark"][0])
        r.matches.append(("mark", {"mark": v, "mask": m}))
    elif name == "conntrack" and keys == {"--ctstate"}:
        states = opts["--ctstate"][0].split(",")
        if not states or any(s not in CT_STATES for s in states):
            raise Unsupported("conntrack state")
        r.matches.append(("conntrack", {"ctstate": states}))
    else:
        raise Unsupported(f"-m {name} {' '.join(sorted(keys))}")


def _parse_target(r: Rule, name: str, rest: list) -> None:
    if name == "MARK" and len(rest) == 2 and rest[0] == "--set-xmark":
        v, m = _mark(rest[1])
        r.targs = {"mark": v, "mask": m}
    elif name == "DNAT" and len(rest) == 2 and rest[0] == "--to-destination":
        r.targs = {"to": rest[1]}
        dnat_parts(rest[1])
    elif rest:
        raise Unsupported(f"-j {name} {' '.join(rest)}")
    elif name in ("MARK", "DNAT") or not name or any(c in name for c in " \t\n\0"):
        raise Unsupported(f"-j {name}")
    r.target = name


def check(r: Rule) -> Rule:
    if r.target is None:
        raise Unsupported("rule without -j")
    return r


def dnat_parts(to: str) -> tuple:
    """'10.0.0.5:80' or '[fd00::5]:80' -> (family, packed, port)."""
    if to.startswith("["):
        a, _, p = to[1:].partition("]:")
        af = _socket.AF_INET6
    else:
        a, _, p = to.rpartition(":")
        af = _socket.AF_INET
    try:
        packed = _socket.inet_pton(af, a)
    except OSError:
        raise Unsupported(f"DNAT address {to!r}") from None
    return af, packed, _int(p, 1, 65535)
