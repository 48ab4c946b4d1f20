"""iptables rules as iptables-nft (1.8.x) stores them in nf_tables, without running iptables.

On hosts whose iptables is the nf_tables flavour, `iptables -t nat -A ...` becomes an nf_tables
rule in table `ip nat` (`ip6 nat` for ip6tables): native expressions for addresses, interfaces,
protocol, `-m tcp/udp --dport` and `-m mark`, and xtables compatibility expressions (`match` /
`target` carrying the xt struct) for the rest, plus a counter. This module translates between
the rule text our builders use (the exact form `iptables-save` prints) and those expressions,
both ways, for the options the CNI plugins write:

  -s/-d ADDR[/LEN], -i/-o NAME[+] (each with `!`), -p tcp|udp|sctp|icmp|icmpv6,
  -m comment --comment T, -m tcp|udp|sctp --dport N, -m multiport --dports A,B,..,
  -m addrtype --dst-type LOCAL, -m mark --mark V/M, -m conntrack --ctstate S,..,
  -j ACCEPT|DROP|RETURN|<chain>|MASQUERADE|MARK --set-xmark V/M|DNAT --to-destination A:P.

Anything else raises `Unsupported` (parse) or decodes to None, and the caller falls back to
`iptables-restore`. The xt structs are written in the host's byte order, as the kernel reads them.
"""
from __future__ import annotations

import _socket
from struct import Struct
from sys import byteorder

from cni.nl import nft_defs as d
from cni.nl import nftables as nft
from cni.nl.codec import NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, AttrList

_AF = {False: _socket.AF_INET, True: _socket.AF_INET6}
_ADDR = {False: (4, 12, 16), True: (16, 8, 24)}      # v6 -> (length, saddr off, daddr off)
PROTOS = {"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1, "icmpv6": 58}
PROTO_NAMES = {v: k for k, v in PROTOS.items()}
VERDICTS = {"ACCEPT": d.NF_ACCEPT, "DROP": d.NF_DROP, "RETURN": d.NFT_RETURN}
VERDICT_NAMES = {v: k for k, v in VERDICTS.items()}
CT_STATES = {"INVALID": 1, "NEW": 8, "RELATED": 4, "ESTABLISHED": 2, "UNTRACKED": 1 << 8,
             "SNAT": 1 << 9, "DNAT": 1 << 10}          # in the order iptables prints them
ADDRTYPES = {"UNSPEC": 1, "UNICAST": 2, "LOCAL": 4, "BROADCAST": 8, "ANYCAST": 16,
             "MULTICAST": 32, "BLACKHOLE": 64, "UNREACHABLE": 128, "PROHIBIT": 256,
             "THROW": 512, "NAT": 1024, "XRESOLVE": 2048}
COMMENT_LEN = 256
IFNAMSIZ = 16
_NAT_RANGE2 = Struct("=I16s16s2s2s2s")                # nf_nat_range2 (DNAT rev 2)
_NAT_V4COMPAT = Struct("=II4s4s2s2s")                 # nf_nat_ipv4_multi_range_compat, 1 range
_NAT_RANGE = Struct("=I16s16s2s2s")                   # nf_nat_range (ip6 MASQUERADE rev 0)
_MARK_TG = Struct("=II")                              # xt_mark_tginfo2 (MARK rev 2)
_ADDRTYPE = Struct("=HHI")                            # xt_addrtype_info_v1
_MULTIPORT = Struct("=BB15H15BB")                     # xt_multiport_v1
_CONNTRACK_LEN, _CT_FLAGS_OFF = 168, 146              # xt_conntrack_mtinfo3: match/invert/state
_CT_TAIL = Struct("=HHH")
_SCTP_PORTS, _SCTP_TAIL = Struct("=HHHH"), Struct("=iII")   # xt_sctp_info: dpts, spts / flags
_SCTP_LEN, _SCTP_FLAGS_OFF, _SCTP_FLAG_INFO = 292, 280, bytes.fromhex("ff0000" * 4)
XT_SCTP_DEST_PORTS = 2
XT_CONNTRACK_STATE = 1
XT_MULTIPORT_DESTINATION = 1
XT_ADDRTYPE_INVERT_DEST = 2
NF_NAT_RANGE_MAP_IPS, NF_NAT_RANGE_PROTO_SPECIFIED = 1, 2


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
        af = _AF[v6]
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
        packed = _socket.inet_pton(_AF[v6], a)
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
            return _check(r)
        else:
            raise Unsupported(f"option {t!r}")
        inv = False
        i += 1
    return _check(r)


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
        _dnat_parts(rest[1])
    elif rest:
        raise Unsupported(f"-j {name} {' '.join(rest)}")
    elif name in ("MARK", "DNAT") or not name or any(c in name for c in " \t\n\0"):
        raise Unsupported(f"-j {name}")
    r.target = name


def _check(r: Rule) -> Rule:
    if r.target is None:
        raise Unsupported("rule without -j")
    return r


def _dnat_parts(to: str) -> tuple:
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


# --- rule -> expressions -------------------------------------------------------------------------

def _xt(kind: str, name: str, rev: int, info: bytes):
    """An xtables match/target expression; the struct is padded to XT_ALIGN (8) as iptables does."""
    key = "NFTA_MATCH" if kind == "match" else "NFTA_TARGET"
    info += bytes(-len(info) % 8)
    return AttrList([("NFTA_EXPR_NAME", kind), ("NFTA_EXPR_DATA", AttrList(
        [(key + "_NAME", name), (key + "_REV", rev), (key + "_INFO", info)]))])


def _iface(key: int, name: str, inv: bool) -> list:
    op = d.NFT_CMP_NEQ if inv else d.NFT_CMP_EQ
    data = name[:-1].encode() if name.endswith("+") else name.encode() + b"\0"
    return [nft.meta(key), nft.cmp(op, data)]


def encode(r: Rule, v6: bool) -> tuple:
    """(expressions, compat protocol) exactly as iptables-nft builds them for this rule."""
    ex: list = []
    if r.iif is not None:
        ex += _iface(d.NFT_META_IIFNAME, *r.iif)
    if r.oif is not None:
        ex += _iface(d.NFT_META_OIFNAME, *r.oif)
    if r.proto is not None:
        ex += [nft.meta(d.NFT_META_L4PROTO),
               nft.cmp(d.NFT_CMP_NEQ if r.proto[1] else d.NFT_CMP_EQ, bytes((r.proto[0],)))]
    for field, val in (("saddr", r.src), ("daddr", r.dst)):
        if val is not None:
            ex += nft.match_addr(field, val[0], val[1], negate=val[2], inet=False)
    for name, a in r.matches:
        ex += _encode_match(name, a, v6)
    ex.append(AttrList([("NFTA_EXPR_NAME", "counter"), ("NFTA_EXPR_DATA", AttrList(
        [("NFTA_COUNTER_BYTES", 0), ("NFTA_COUNTER_PACKETS", 0)]))]))
    ex.append(_encode_target(r, v6))
    proto = r.proto[0] if r.proto is not None and not r.proto[1] else 0
    return ex, proto


def _encode_match(name: str, a: dict, v6: bool) -> list:
    if name == "comment":
        raw = a["comment"].encode()
        return [_xt("match", "comment", 0, raw + bytes(COMMENT_LEN - len(raw)))]
    if name in ("tcp", "udp"):
        return [nft.payload(d.NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2),
                nft.cmp(d.NFT_CMP_EQ, a["dport"].to_bytes(2, "big"))]
    if name == "sctp":   # no native form in iptables-nft 1.8: the xt struct
        info = bytearray(_SCTP_LEN)
        _SCTP_PORTS.pack_into(info, 0, a["dport"], a["dport"], 0, 0)
        info[268:280] = _SCTP_FLAG_INFO
        _SCTP_TAIL.pack_into(info, _SCTP_FLAGS_OFF, 0, XT_SCTP_DEST_PORTS, 0)
        return [_xt("match", "sctp", 0, bytes(info))]
    if name == "multiport":
        ports = a["dports"] + [0] * (15 - len(a["dports"]))
        return [_xt("match", "multiport", 1, _MULTIPORT.pack(
            XT_MULTIPORT_DESTINATION, len(a["dports"]), *ports, *([0] * 15), 0))]
    if name == "addrtype":
        flags = XT_ADDRTYPE_INVERT_DEST if a.get("invert") else 0
        return [_xt("match", "addrtype", 1, _ADDRTYPE.pack(0, ADDRTYPES[a["dst_type"]], flags))]
    if name == "mark":
        return [nft.meta(d.NFT_META_MARK),
                nft.bitwise(a["mask"].to_bytes(4, byteorder), bytes(4)),
                nft.cmp(d.NFT_CMP_EQ, (a["mark"] & a["mask"]).to_bytes(4, byteorder))]
    if name == "conntrack":
        mask = 0
        for s in a["ctstate"]:
            mask |= CT_STATES[s]
        info = bytearray(_CONNTRACK_LEN)
        _CT_TAIL.pack_into(info, _CT_FLAGS_OFF, XT_CONNTRACK_STATE, 0, mask)
        return [_xt("match", "conntrack", 3, bytes(info))]
    raise Unsupported(f"-m {name}")


def _encode_target(r: Rule, v6: bool):
    t = r.target
    if t in VERDICTS:
        return nft.verdict(VERDICTS[t])
    if t == "MASQUERADE":
        info = _NAT_RANGE.pack(0, bytes(16), bytes(16), b"\0\0", b"\0\0") if v6 else \
            _NAT_V4COMPAT.pack(1, 0, bytes(4), bytes(4), b"\0\0", b"\0\0")
        return _xt("target", "MASQUERADE", 0, info)
    if t == "MARK":
        return _xt("target", "MARK", 2, _MARK_TG.pack(r.targs["mark"], r.targs["mask"]))
    if t == "DNAT":
        af, packed, port = _dnat_parts(r.targs["to"])
        if (af == _socket.AF_INET6) != v6:
            raise Unsupported("DNAT address of the other family")
        addr = packed + bytes(16 - len(packed))
        p = port.to_bytes(2, "big")
        return _xt("target", "DNAT", 2, _NAT_RANGE2.pack(
            NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED, addr, addr, p, p, b"\0\0"))
    return nft.verdict(d.NFT_JUMP, t)


# --- expressions -> rule -------------------------------------------------------------------------

def decode(exprs: list, v6: bool) -> Rule | None:
    """The Rule iptables-nft would print for these expressions, or None if foreign to us."""
    try:
        return _decode(exprs, v6)
    except (Unsupported, KeyError, IndexError, TypeError, ValueError, AttributeError):
        return None


def _data(e) -> tuple:
    return e.get("NFTA_EXPR_NAME"), e.get("NFTA_EXPR_DATA")


def _value(a, key: str) -> bytes:
    return a.get(key).get("NFTA_DATA_VALUE")


def _decode(exprs: list, v6: bool) -> Rule:
    r = Rule()
    alen, soff, doff = _ADDR[v6]
    af = _AF[v6]
    i, n = 0, len(exprs)
    while i < n:
        name, a = _data(exprs[i])
        if name == "meta" and i + 1 < n:
            key = a.get("NFTA_META_KEY")
            cname, c = _data(exprs[i + 1])
            if key == d.NFT_META_MARK and cname == "bitwise" and i + 2 < n:
                mask = int.from_bytes(_value(c, "NFTA_BITWISE_MASK"), byteorder)
                _, c2 = _data(exprs[i + 2])
                mark = int.from_bytes(_value(c2, "NFTA_CMP_DATA"), byteorder)
                r.matches.append(("mark", {"mark": mark, "mask": mask}))
                i += 3
                continue
            if cname != "cmp":
                raise Unsupported("meta")
            inv = c.get("NFTA_CMP_OP") == d.NFT_CMP_NEQ
            val = _value(c, "NFTA_CMP_DATA")
            if key in (d.NFT_META_IIFNAME, d.NFT_META_OIFNAME):
                text = val[:-1].decode() if val.endswith(b"\0") else val.decode() + "+"
                setattr(r, "iif" if key == d.NFT_META_IIFNAME else "oif", (text, inv))
            elif key == d.NFT_META_L4PROTO:
                r.proto = (val[0], inv)
            else:
                raise Unsupported("meta key")
            i += 2
        elif name == "payload":
            base, off, ln = (a.get("NFTA_PAYLOAD_BASE"), a.get("NFTA_PAYLOAD_OFFSET"),
                             a.get("NFTA_PAYLOAD_LEN"))
            cname, c = _data(exprs[i + 1])
            if base == d.NFT_PAYLOAD_TRANSPORT_HEADER and off == 2 and ln == 2 and cname == "cmp":
                pname = PROTO_NAMES.get(r.proto[0]) if r.proto else None
                if pname not in ("tcp", "udp") or c.get("NFTA_CMP_OP") != d.NFT_CMP_EQ:
                    raise Unsupported("transport match")
                r.matches.append((pname, {"dport": int.from_bytes(_value(c, "NFTA_CMP_DATA"), "big")}))
                i += 2
                continue
            if base != d.NFT_PAYLOAD_NETWORK_HEADER or off not in (soff, doff):
                raise Unsupported("payload")
            if cname == "bitwise":
                mask = _value(c, "NFTA_BITWISE_MASK")
                plen = bin(int.from_bytes(mask, "big")).count("1")
                cname, c = _data(exprs[i + 2])
                step = 3
            else:
                plen, step = ln * 8, 2
            val = _value(c, "NFTA_CMP_DATA")
            packed = val + bytes(alen - len(val))
            _socket.inet_ntop(af, packed)
            setattr(r, "src" if off == soff else "dst",
                    (packed, plen, c.get("NFTA_CMP_OP") == d.NFT_CMP_NEQ))
            i += step
        elif name == "match":
            r.matches.append(_decode_match(a))
            i += 1
        elif name == "counter":
            i += 1
        elif name in ("immediate", "target"):
            if i != n - 1:
                raise Unsupported("expression after the target")
            _decode_target(r, name, a, v6)
            i += 1
        else:
            raise Unsupported(name)
    return _check(r)


def _decode_match(a) -> tuple:
    name, rev, info = a.get("NFTA_MATCH_NAME"), a.get("NFTA_MATCH_REV"), a.get("NFTA_MATCH_INFO")
    if name == "comment" and rev == 0:
        return "comment", {"comment": info.split(b"\0", 1)[0].decode()}
    if name == "sctp" and rev == 0 and len(info) >= _SCTP_LEN:
        dlo, dhi, slo, shi = _SCTP_PORTS.unpack_from(info, 0)
        count, flags, inv = _SCTP_TAIL.unpack_from(info, _SCTP_FLAGS_OFF)
        if dlo != dhi or slo or shi or flags != XT_SCTP_DEST_PORTS or inv or any(info[8:268]) \
                or count:
            raise Unsupported("sctp form")
        return "sctp", {"dport": dlo}
    if name == "multiport" and rev == 1:
        vals = _MULTIPORT.unpack(info[:_MULTIPORT.size])
        flags, count = vals[0], vals[1]
        if flags != XT_MULTIPORT_DESTINATION or vals[-1] or any(vals[17:32]):
            raise Unsupported("multiport form")
        return "multiport", {"dports": list(vals[2:2 + count])}
    if name == "addrtype" and rev == 1:
        src, dst, flags = _ADDRTYPE.unpack(info[:_ADDRTYPE.size])
        names = [k for k, v in ADDRTYPES.items() if v == dst]
        if src or flags & ~XT_ADDRTYPE_INVERT_DEST or len(names) != 1:
            raise Unsupported("addrtype form")
        return "addrtype", {"dst_type": names[0], "invert": bool(flags & XT_ADDRTYPE_INVERT_DEST)}
    if name == "conntrack" and rev == 3 and len(info) == _CONNTRACK_LEN:
        mflags, iflags, mask = _CT_TAIL.unpack_from(info, _CT_FLAGS_OFF)
        if mflags != XT_CONNTRACK_STATE or iflags:
            raise Unsupported("conntrack form")
        states = [k for k, v in CT_STATES.items() if mask & v]
        return "conntrack", {"ctstate": states}
    raise Unsupported(f"match {name}")


def _decode_target(r: Rule, kind: str, a, v6: bool) -> None:
    if kind == "immediate":
        v = a.get("NFTA_IMMEDIATE_DATA").get("NFTA_DATA_VERDICT")
        code = v.get("NFTA_VERDICT_CODE")
        if code in VERDICT_NAMES:
            r.target = VERDICT_NAMES[code]
        elif code in (d.NFT_JUMP, d.NFT_GOTO) and code == d.NFT_JUMP:
            r.target = v.get("NFTA_VERDICT_CHAIN")
        else:
            raise Unsupported("verdict")
        return
    name, rev, info = a.get("NFTA_TARGET_NAME"), a.get("NFTA_TARGET_REV"), a.get("NFTA_TARGET_INFO")
    if name == "MASQUERADE" and rev == 0:
        r.target = name
    elif name == "MARK" and rev == 2:
        mark, mask = _MARK_TG.unpack(info[:8])
        r.target, r.targs = name, {"mark": mark, "mask": mask}
    elif name == "DNAT" and rev == 2:
        flags, lo, hi, plo, phi, _ = _NAT_RANGE2.unpack(info[:_NAT_RANGE2.size])
        if flags != NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED or lo != hi or plo != phi:
            raise Unsupported("DNAT form")
        addr = _socket.inet_ntop(_AF[v6], lo if v6 else lo[:4])
        port = int.from_bytes(plo, "big")
        r.target, r.targs = name, {"to": f"[{addr}]:{port}" if v6 else f"{addr}:{port}"}
    else:
        raise Unsupported(f"target {name}")


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
_ENOENT, _EEXIST, _EBUSY, _ERESTART = 2, 17, 16, 85


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
    with nft.NftSocket() as nl:
        for attempt in range(RETRIES):
            genid = nl.genid()
            snap = read(nl, table, v6, only)
            batch = make_batch({c: list(specs) for c, specs in snap.chains.items()})
            build(batch)
            if not batch.lines:
                return batch
            ops = translate(batch.lines, snap, table, v6)
            try:
                ops.commit(nl, genid=genid)
                return batch
            except OSError as exc:
                if exc.errno not in (_ERESTART, _EBUSY, _ENOENT, _EEXIST) or attempt == RETRIES - 1:
                    raise
            _backoff(attempt)
    return batch  # pragma: no cover


def _backoff(attempt: int) -> None:
    """A short randomised pause so racing writers stop colliding (iptables-nft just loops)."""
    from posix import urandom          # lazy: only a writer that lost a race pays for these
    from select import select
    select([], [], [], (1 + attempt) * urandom(1)[0] / 255 * 0.004)
