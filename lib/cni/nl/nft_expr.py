"""nf_tables rule expressions as `nft` compiles them, and comments (libnftnl user data).

Each builder (`meta`, `payload`, `cmp`, ...) returns one NFTA_LIST_ELEM value; `match_addr`
and friends produce the exact sequences `nft` generates for `ip saddr 10.0.0.0/8` and the
like, so a dump reads the same as nft's. cni.nl.nftables re-exports them, so callers build
batches and rules from one namespace.
"""
from __future__ import annotations

from . import nft_defs as d
from .codec import AttrList, present


# --- comments (libnftnl user data TLVs) ------------------------------------------------------

def udata_comment(text: str) -> bytes:
    """A comment as nft stores it: TLV (type 0, len, NUL-terminated UTF-8)."""
    raw = text.encode() + b"\0"
    if len(raw) > 255 or "\0" in text:
        raise ValueError("nft comment too long or holds a NUL")
    return bytes((d.NFTNL_UDATA_COMMENT, len(raw))) + raw


def comment_of(udata) -> str | None:
    """The comment inside a user data blob, or None."""
    if not udata:
        return None
    b = bytes(udata)
    i = 0
    while i + 2 <= len(b):
        t, ln = b[i], b[i + 1]
        v = b[i + 2:i + 2 + ln]
        if t == d.NFTNL_UDATA_COMMENT:
            return v.split(b"\0", 1)[0].decode("utf-8", "replace")
        i += 2 + ln
    return None


# --- expressions -----------------------------------------------------------------------------

def _expr(name: str, attrs: list) -> AttrList:
    return AttrList([("NFTA_EXPR_NAME", name), ("NFTA_EXPR_DATA", AttrList(attrs))])


def _value(data: bytes) -> AttrList:
    return AttrList([("NFTA_DATA_VALUE", bytes(data))])


def meta(key: int, dreg: int = d.NFT_REG_1) -> AttrList:
    return _expr("meta", [("NFTA_META_KEY", key), ("NFTA_META_DREG", dreg)])


def payload(base: int, offset: int, length: int, dreg: int = d.NFT_REG_1) -> AttrList:
    return _expr("payload", [("NFTA_PAYLOAD_DREG", dreg), ("NFTA_PAYLOAD_BASE", base),
                             ("NFTA_PAYLOAD_OFFSET", offset), ("NFTA_PAYLOAD_LEN", length)])


def cmp(op: int, data: bytes, sreg: int = d.NFT_REG_1) -> AttrList:
    return _expr("cmp", [("NFTA_CMP_SREG", sreg), ("NFTA_CMP_OP", op),
                         ("NFTA_CMP_DATA", _value(data))])


def bitwise(mask: bytes, xor: bytes, sreg: int = d.NFT_REG_1, dreg: int = d.NFT_REG_1) -> AttrList:
    return _expr("bitwise", [("NFTA_BITWISE_SREG", sreg), ("NFTA_BITWISE_DREG", dreg),
                             ("NFTA_BITWISE_LEN", len(mask)), ("NFTA_BITWISE_MASK", _value(mask)),
                             ("NFTA_BITWISE_XOR", _value(xor))])


def immediate(data: bytes, dreg: int) -> AttrList:
    return _expr("immediate", [("NFTA_IMMEDIATE_DREG", dreg), ("NFTA_IMMEDIATE_DATA", _value(data))])


def verdict(code: int, chain: str | None = None) -> AttrList:
    v = [("NFTA_VERDICT_CODE", code)]
    if chain is not None:
        v.append(("NFTA_VERDICT_CHAIN", chain))
    return _expr("immediate", [("NFTA_IMMEDIATE_DREG", d.NFT_REG_VERDICT),
                               ("NFTA_IMMEDIATE_DATA",
                                AttrList([("NFTA_DATA_VERDICT", AttrList(v))]))])


def counter() -> AttrList:
    return _expr("counter", [])


def masq(flags: int = 0) -> AttrList:
    return _expr("masq", [("NFTA_MASQ_FLAGS", flags)] if flags else [])


def nat(kind: int, family: int, *, addr_reg: int = 0, proto_reg: int = 0, flags: int = 0) -> AttrList:
    """0 (the verdict register, never an operand) means "no register"; 0 flags are left out."""
    return _expr("nat", present(("NFTA_NAT_TYPE", kind), ("NFTA_NAT_FAMILY", family),
                                ("NFTA_NAT_REG_ADDR_MIN", addr_reg or None),
                                ("NFTA_NAT_REG_PROTO_MIN", proto_reg or None),
                                ("NFTA_NAT_FLAGS", flags or None)))


def ct(key: int, dreg: int = d.NFT_REG_1) -> AttrList:
    return _expr("ct", [("NFTA_CT_KEY", key), ("NFTA_CT_DREG", dreg)])


def fib(result: int, flags: int, dreg: int = d.NFT_REG_1) -> AttrList:
    return _expr("fib", [("NFTA_FIB_FLAGS", flags), ("NFTA_FIB_RESULT", result),
                         ("NFTA_FIB_DREG", dreg)])


def lookup(set_name: str, sreg: int = d.NFT_REG_1, *, dreg: int | None = None,
           set_id: int | None = None, invert: bool = False) -> AttrList:
    attrs = [("NFTA_LOOKUP_SET", set_name), ("NFTA_LOOKUP_SREG", sreg)]
    if dreg is not None:
        attrs.append(("NFTA_LOOKUP_DREG", dreg))
    if set_id is not None:
        attrs.append(("NFTA_LOOKUP_SET_ID", set_id))
    if invert:
        attrs.append(("NFTA_LOOKUP_FLAGS", d.NFT_LOOKUP_F_INV))
    return _expr("lookup", attrs)


# --- matches as nft compiles them ---------------------------------------------------------------

_ADDR = {4: (4, 12, 16), 6: (16, 8, 24)}   # version -> (length, saddr offset, daddr offset)


def match_nfproto(version: int) -> list:
    """`meta nfproto ipv4|ipv6`: the implicit guard nft puts before an ip/ip6 match in inet."""
    return [meta(d.NFT_META_NFPROTO), cmp(d.NFT_CMP_EQ, bytes((d.NFPROTO_IPV4 if version == 4
                                                              else d.NFPROTO_IPV6,)))]


def match_addr(field: str, packed: bytes, prefixlen: int | None = None, *,
               negate: bool = False, inet: bool = True) -> list:
    """`ip|ip6 saddr|daddr [!=] ADDR[/LEN]` as nft emits it (with the nfproto guard in inet).

    A byte-aligned prefix loads only its bytes; any other prefix (/0 included) loads the whole
    address and masks it. `packed` is the address (4 or 16 bytes); host bits are cleared here.
    """
    version = 4 if len(packed) == 4 else 6
    alen, soff, doff = _ADDR[version]
    if len(packed) != alen:
        raise ValueError("address must be 4 or 16 bytes")
    off = soff if field == "saddr" else doff
    plen = alen * 8 if prefixlen is None else prefixlen
    if not 0 <= plen <= alen * 8:
        raise ValueError(f"prefix length {plen} out of range")
    mask = ((1 << (alen * 8)) - 1) ^ ((1 << (alen * 8 - plen)) - 1)
    net = (int.from_bytes(packed, "big") & mask).to_bytes(alen, "big")
    op = d.NFT_CMP_NEQ if negate else d.NFT_CMP_EQ
    out = match_nfproto(version) if inet else []
    if plen and plen % 8 == 0:
        n = plen // 8
        out += [payload(d.NFT_PAYLOAD_NETWORK_HEADER, off, n), cmp(op, net[:n])]
    else:
        out += [payload(d.NFT_PAYLOAD_NETWORK_HEADER, off, alen),
                bitwise(mask.to_bytes(alen, "big"), bytes(alen)), cmp(op, net)]
    return out
