"""iptables rules as iptables-nft (1.8.x) stores them in nf_tables: a Rule <-> expressions.

On hosts whose iptables is the nf_tables flavour, `iptables -t nat -A ...` becomes an nf_tables
rule in table `ip nat` (`ip6 nat` for ip6tables): native expressions for addresses, interfaces,
protocol, `-m tcp/udp --dport` and `-m mark`, and xtables compatibility expressions (`match` /
`target` carrying the xt struct) for the rest, plus a counter. This module translates a
cni.fw.ipt_rule.Rule to those expressions and back. The xt structs are written in the host's
byte order, as the kernel reads them.
"""
from __future__ import annotations

import _socket
from struct import Struct
from sys import byteorder

from cni.fw.ipt_rule import (ADDRTYPES, AF, COMMENT_LEN, CT_STATES, PROTO_NAMES, Rule,
                             Unsupported, check, dnat_parts)
from cni.nl import nft_defs as d
from cni.nl import nftables as nft
from cni.nl.codec import AttrList

_ADDR = {False: (4, 12, 16), True: (16, 8, 24)}      # v6 -> (length, saddr off, daddr off)
VERDICTS = {"ACCEPT": d.NF_ACCEPT, "DROP": d.NF_DROP, "RETURN": d.NFT_RETURN}
VERDICT_NAMES = {v: k for k, v in VERDICTS.items()}
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
        af, packed, port = dnat_parts(r.targs["to"])
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
    af = AF[v6]
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
    return check(r)


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
        addr = _socket.inet_ntop(AF[v6], lo if v6 else lo[:4])
        port = int.from_bytes(plo, "big")
        r.target, r.targs = name, {"to": f"[{addr}]:{port}" if v6 else f"{addr}:{port}"}
    else:
        raise Unsupported(f"target {name}")
