"""Netlink wire format: nlmsghdr, TLV attributes, alignment, nesting. No sockets, no CNI.

A message schema is a pair (Struct, Attrs) from `schema`; this module only walks bytes.
Decoders are shaped `(buf, off, end) -> (off, value)`.
"""
from __future__ import annotations

from struct import Struct as _S

NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE, NLMSG_OVERRUN = 1, 2, 3, 4
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_ECHO = 0x1, 0x2, 0x4, 0x8
NLM_F_DUMP_INTR, NLM_F_DUMP_FILTERED = 0x10, 0x20
NLM_F_ROOT, NLM_F_MATCH, NLM_F_DUMP = 0x100, 0x200, 0x300
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE, NLM_F_APPEND = 0x100, 0x200, 0x400, 0x800
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200
NLA_F_NESTED, NLA_F_NET_BYTEORDER = 0x8000, 0x4000
NLA_TYPE_MASK = 0x3FFF
NLMSGERR_ATTR_MSG, NLMSGERR_ATTR_OFFS = 1, 2

NLMSGHDR = _S("=IHHII")   # len, type, flags, seq, pid
NLATTR = _S("=HH")        # len, type
_ERR = _S("=i")


class NetlinkDecodeError(ValueError):
    """The bytes are not a well-formed netlink message for the schema."""


def align(n: int) -> int:
    return (n + 3) & ~3


class AttrList(list):
    """Ordered (name, value) pairs; names repeat for multi-valued attributes."""

    __slots__ = ()

    def get(self, name: str, default=None):
        for k, v in self:
            if k == name:
                return v
        return default

    def get_all(self, name: str) -> list:
        return [v for k, v in self if k == name]

    def __repr__(self) -> str:
        return f"AttrList({list.__repr__(self)})"


def present(*pairs) -> list:
    """The (name, value) pairs whose value is not None, in order: a request's optional attributes."""
    return [(n, v) for n, v in pairs if v is not None]


class Msg:
    """A decoded netlink message; `hdr` is a dict of the fixed header, `attrs` an AttrList."""

    __slots__ = ("type", "flags", "seq", "pid", "hdr", "attrs")

    def __init__(self, type: int, flags: int = 0, seq: int = 0, pid: int = 0,
                 hdr: dict | None = None, attrs=()):
        self.type = type
        self.flags = flags
        self.seq = seq
        self.pid = pid
        self.hdr = hdr if hdr is not None else {}
        self.attrs = attrs if isinstance(attrs, AttrList) else AttrList(
            attrs.items() if isinstance(attrs, dict) else attrs)

    def get(self, name: str, default=None):
        return self.attrs.get(name, default)

    def __eq__(self, other) -> bool:
        return isinstance(other, Msg) and all(
            getattr(self, s) == getattr(other, s) for s in Msg.__slots__)

    def __repr__(self) -> str:
        return (f"Msg(type={self.type}, flags={self.flags:#x}, seq={self.seq}, pid={self.pid}, "
                f"hdr={self.hdr!r}, attrs={self.attrs!r})")


def encode(msg: Msg, schema, *, nest_flag: int = NLA_F_NESTED) -> bytes:
    """Encode `msg` with `schema` = (Struct, Attrs); nlmsg_len is computed."""
    hstruct, table = schema
    body = hstruct.pack(msg.hdr)
    pad = align(len(body)) - len(body)
    if pad:
        body += b"\0" * pad
    if table is not None and msg.attrs:
        body += table.pack(msg.attrs, msg.hdr, nest_flag)
    return NLMSGHDR.pack(16 + len(body), msg.type, msg.flags, msg.seq, msg.pid) + body


def decode_one(buf, off: int, end: int, schemas: dict) -> tuple[int, Msg]:
    """Decode the message at `off`; returns (offset of the next message, Msg)."""
    if end - off < 16:
        raise NetlinkDecodeError(f"truncated nlmsghdr at {off}")
    ln, mtype, flags, seq, pid = NLMSGHDR.unpack_from(buf, off)
    if ln < 16 or off + ln > end:
        raise NetlinkDecodeError(f"bad nlmsg_len {ln} at {off}")
    mend = off + ln
    schema = schemas.get(mtype)
    p = off + 16
    if schema is None:
        msg = Msg(mtype, flags, seq, pid, {}, AttrList([("#payload", bytes(buf[p:mend]))]))
    else:
        hstruct, table = schema
        p, hdr = hstruct.decode(buf, p, mend)
        p = align(p)
        attrs = table.decode(buf, p, mend, hdr) if table is not None and p < mend else AttrList()
        msg = Msg(mtype, flags, seq, pid, hdr, attrs)
    return off + align(ln), msg


def decode(buf, schemas: dict) -> list[Msg]:
    """Decode every message in `buf`."""
    out, off, end = [], 0, len(buf)
    while off < end:
        off, msg = decode_one(buf, off, end, schemas)
        out.append(msg)
    return out


def iter_tlv(buf, off: int, end: int):
    """Yield (type with flags masked, payload start, payload end) for each attribute."""
    unpack = NLATTR.unpack_from
    while off + 4 <= end:
        ln, t = unpack(buf, off)
        if ln < 4 or off + ln > end:
            raise NetlinkDecodeError(f"bad nla_len {ln} at {off}")
        yield t & NLA_TYPE_MASK, off + 4, off + ln
        off += (ln + 3) & ~3


def pack_tlv(t: int, payload: bytes) -> bytes:
    n = 4 + len(payload)
    pad = (-n) & 3
    return NLATTR.pack(n, t) + payload + (b"\0" * pad if pad else b"")


def parse_error(buf, off: int, end: int, flags: int, done: bool = False) -> tuple[int, str, int]:
    """Decode an NLMSG_ERROR/NLMSG_DONE payload: (negative errno or 0, ext-ack text, offset)."""
    if end - off < 4:
        return 0, "", -1
    err = _ERR.unpack_from(buf, off)[0]
    text, eoff = "", -1
    if flags & NLM_F_ACK_TLVS and (done or end - off >= 20):
        # NLMSG_ERROR: int error + the request's nlmsghdr (+ its payload unless CAPPED), then TLVs;
        # NLMSG_DONE: int error, then TLVs.
        if done:
            p = off + 4
        else:
            p = off + 4 + (16 if flags & NLM_F_CAPPED else
                           align(NLMSGHDR.unpack_from(buf, off + 4)[0]))
        for t, s, e in iter_tlv(buf, p, end):
            if t == NLMSGERR_ATTR_MSG:
                text = bytes(buf[s:e]).split(b"\0", 1)[0].decode("utf-8", "replace")
            elif t == NLMSGERR_ATTR_OFFS and e - s == 4:
                eoff = int.from_bytes(buf[s:e], "little" if _LE else "big")
    return err, text, eoff


_LE = NLMSGHDR.pack(1, 0, 0, 0, 0)[0] == 1
