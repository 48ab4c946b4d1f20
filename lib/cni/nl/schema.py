"""Primitive attribute codecs and the declarative Struct/Attrs/Nested/Switch building blocks.

Primitive codecs have `pack(v) -> bytes` and `unpack(mv) -> v`. Containers (Nested, Array,
HdrAttrs) have `nested = True` and are driven by `Attrs`. A `bytes` value is always written
verbatim, which is how undecodable and unknown attributes survive a re-encode byte-for-byte.
"""
from __future__ import annotations

from struct import Struct as _S
from struct import error as _StructError

from .. import addr as _addr
from .codec import NLA_F_NESTED, NLATTR, AttrList, NetlinkDecodeError, align, pack_tlv



class _Codec:
    """A leaf codec: pack(value) -> bytes, unpack(memoryview) -> value; shown by its name."""

    __slots__ = ("name",)
    nested = False

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


class Num(_Codec):
    """A fixed-size integer in struct format `fmt` (native order unless it starts with '!')."""

    __slots__ = ("_s",)

    def __init__(self, name: str, fmt: str):
        super().__init__(name)
        self._s = _S(fmt if fmt[0] in "=!<>" else "=" + fmt)

    def pack(self, v) -> bytes:
        return self._s.pack(int(v))

    def unpack(self, mv):
        return self._s.unpack(mv)[0]


class NoNul(str):
    """A string attribute sent without the terminating NUL (iproute2 and Go do this for
    IFLA_INFO_KIND and IFLA_IFALIAS); decoding such an attribute yields one, so it re-encodes."""

    __slots__ = ()


class _Str(_Codec):
    """NUL-terminated string; a value with embedded or extra NULs fails (and stays bytes)."""

    __slots__ = ()

    def pack(self, v) -> bytes:
        return v.encode("utf-8", "surrogateescape") + (b"" if type(v) is NoNul else b"\0")

    def unpack(self, mv) -> str:
        b = bytes(mv)
        i = b.find(b"\0")
        if i < 0:
            return NoNul(b.decode("utf-8", "surrogateescape"))
        if i != len(b) - 1:
            raise ValueError("string with embedded NUL")
        return b[:-1].decode("utf-8", "surrogateescape")


class _Bytes(_Codec):
    __slots__ = ()

    def pack(self, v) -> bytes:
        return bytes(v)

    def unpack(self, mv) -> bytes:
        return bytes(mv)


class _Flag(_Codec):
    __slots__ = ()

    def pack(self, v) -> bytes:
        return b""

    def unpack(self, mv) -> bool:
        return True


class _Mac(_Codec):
    """Link-layer address as lower-case 'aa:bb:..' (any length: tunnels use 4 or 16 bytes)."""

    __slots__ = ()

    def pack(self, v) -> bytes:
        return bytes.fromhex(v.replace(":", "").replace("-", ""))

    def unpack(self, mv) -> str:
        return bytes(mv).hex(":")


class _IP(_Codec):
    """4 or 16 bytes <-> cni.addr.IPv4Address/IPv6Address (strings are accepted on pack)."""

    __slots__ = ()

    def pack(self, v) -> bytes:
        if isinstance(v, str):
            v = _addr.ip_address(v)
        return v.packed

    def unpack(self, mv):
        n = len(mv)
        if n == 4:
            return _addr.IPv4Address(bytes(mv))
        if n == 16:
            return _addr.IPv6Address(bytes(mv))
        raise ValueError(f"address of {n} bytes")


U8, U16, U32, U64 = Num("U8", "B"), Num("U16", "H"), Num("U32", "I"), Num("U64", "Q")
S8, S32 = Num("S8", "b"), Num("S32", "i")
BE16, BE32, BE64 = Num("BE16", "!H"), Num("BE32", "!I"), Num("BE64", "!Q")
STR, BYTES, FLAG, MAC, IP = _Str("STR"), _Bytes("BYTES"), _Flag("FLAG"), _Mac("MAC"), _IP("IP")


class Struct:
    """A C struct: `fmt` ('=' native by default, 'x' for padding) and one name per field.

    Used as a message header (`decode`) and as an attribute codec (`pack`/`unpack`); values are
    dicts, missing fields pack as 0.
    """

    __slots__ = ("name", "fields", "size", "_s")
    nested = False

    def __init__(self, name: str, fmt: str, fields: tuple):
        self.name = name
        self._s = _S(fmt if fmt[0] in "=!<>" else "=" + fmt)
        self.size = self._s.size
        self.fields = fields

    def pack(self, v) -> bytes:
        g = v.get
        return self._s.pack(*[g(f, 0) for f in self.fields])

    def unpack(self, mv) -> dict:
        return dict(zip(self.fields, self._s.unpack(mv)))

    def decode(self, buf, off: int, end: int) -> tuple[int, dict]:
        if end - off < self.size:
            raise NetlinkDecodeError(f"{self.name}: need {self.size} bytes, have {end - off}")
        return off + self.size, dict(zip(self.fields, self._s.unpack_from(buf, off)))

    def __repr__(self) -> str:
        return self.name


class Attrs:
    """An attribute table {id: (name, codec)}; names keep their uapi spelling."""

    __slots__ = ("name", "by_id", "by_name")

    def __init__(self, name: str, table: dict):
        self.name = name
        self.by_id = table
        self.by_name = {n: (i, c) for i, (n, c) in table.items()}

    def decode(self, buf, off: int, end: int, hdr=None) -> AttrList:
        out = AttrList()
        by_id = self.by_id
        unpack = NLATTR.unpack_from
        while off + 4 <= end:
            ln, t = unpack(buf, off)
            if ln < 4 or off + ln > end:
                raise NetlinkDecodeError(f"{self.name}: bad nla_len {ln} at {off}")
            s, e = off + 4, off + ln
            off += (ln + 3) & ~3
            ent = by_id.get(t & 0x3FFF)
            if ent is None:                  # keep the flag bits so it re-encodes exactly
                out.append((f"#{t}", bytes(buf[s:e])))
                continue
            name, codec = ent
            if codec.__class__ is Switch:
                codec = codec.resolve(out, hdr)
            if codec.nested:
                out.append((name, codec.decode(buf, s, e, hdr)))
                continue
            try:
                v = codec.unpack(buf[s:e])
            except (ValueError, _StructError):
                v = bytes(buf[s:e])
            out.append((name, v))
        return out

    def pack(self, attrs, hdr=None, nest_flag: int = NLA_F_NESTED) -> bytes:
        items = list(attrs.items()) if isinstance(attrs, dict) else attrs
        parts = []
        by_name = self.by_name
        for name, v in items:
            ent = by_name.get(name)
            if ent is None:
                if name[:1] != "#":
                    raise ValueError(f"{self.name}: unknown attribute {name!r}")
                parts.append(pack_tlv(int(name[1:]), bytes(v)))
                continue
            t, codec = ent
            if codec.__class__ is Switch:
                codec = codec.resolve(items, hdr)
            if isinstance(v, (bytes, bytearray, memoryview)):
                payload = bytes(v)
            elif codec.nested:
                payload = codec.pack(v, hdr, nest_flag)
                if codec.flag:
                    t |= nest_flag
            else:
                payload = codec.pack(v)
            parts.append(pack_tlv(t, payload))
        return b"".join(parts)

    def __repr__(self) -> str:
        return f"Attrs({self.name})"


class _Nest:
    """A codec whose value holds attributes: decode(buf, s, e, hdr), pack(v, hdr, nest_flag);
    `flag` says whether its attribute is sent with NLA_F_NESTED."""

    __slots__ = ("flag",)
    nested = True

    def __init__(self, flag: bool):
        self.flag = flag


class Nested(_Nest):
    """A nested attribute list; `table` is an Attrs or a zero-argument callable returning one."""

    __slots__ = ("_t",)

    def __init__(self, table, *, flag: bool = True):
        super().__init__(flag)
        self._t = table

    @property
    def table(self) -> Attrs:
        t = self._t
        if not isinstance(t, Attrs):
            t = self._t = t()
        return t

    def decode(self, buf, s: int, e: int, hdr=None) -> AttrList:
        return self.table.decode(buf, s, e, hdr)

    def pack(self, v, hdr=None, nest_flag: int = NLA_F_NESTED) -> bytes:
        return self.table.pack(v, hdr, nest_flag)


class Array(_Nest):
    """Nested attributes numbered 1..n, all with the same codec; the value is a list."""

    __slots__ = ("codec",)

    def __init__(self, codec, *, flag: bool = True):
        super().__init__(flag)
        self.codec = codec

    def decode(self, buf, s: int, e: int, hdr=None) -> list:
        c = self.codec
        out = []
        unpack = NLATTR.unpack_from
        while s + 4 <= e:
            ln, t = unpack(buf, s)
            if ln < 4 or s + ln > e:
                raise NetlinkDecodeError(f"array: bad nla_len {ln} at {s}")
            out.append(c.decode(buf, s + 4, s + ln, hdr) if c.nested else c.unpack(buf[s + 4:s + ln]))
            s += (ln + 3) & ~3
        return out

    def pack(self, v, hdr=None, nest_flag: int = NLA_F_NESTED) -> bytes:
        c = self.codec
        parts = []
        for i, item in enumerate(v, 1):
            if c.nested:
                parts.append(pack_tlv(i | (nest_flag if c.flag else 0), c.pack(item, hdr, nest_flag)))
            else:
                parts.append(pack_tlv(i, c.pack(item)))
        return b"".join(parts)


class HdrAttrs(_Nest):
    """A fixed struct followed by attributes (VETH_INFO_PEER); the value is (hdr dict, attrs)."""

    __slots__ = ("struct", "_attrs")

    def __init__(self, struct: Struct, table, *, flag: bool = True):
        super().__init__(flag)
        self.struct = struct
        self._attrs = Nested(table)

    def decode(self, buf, s: int, e: int, hdr=None):
        p, h = self.struct.decode(buf, s, e)
        return h, self._attrs.decode(buf, align(p), e, h)

    def pack(self, v, hdr=None, nest_flag: int = NLA_F_NESTED) -> bytes:
        h, attrs = v
        body = self.struct.pack(h)
        return body + b"\0" * (align(len(body)) - len(body)) + self._attrs.pack(attrs, h, nest_flag)


class Switch:
    """Pick a codec by the value of an earlier sibling attribute, or of a header field ('hdr.x')."""

    __slots__ = ("key", "choices", "default", "_hdr")
    nested = False

    def __init__(self, key: str, choices: dict, default=BYTES):
        self.key = key
        self.choices = choices
        self.default = default
        self._hdr = key[4:] if key.startswith("hdr.") else None

    def resolve(self, siblings, hdr):
        if self._hdr is not None:
            k = hdr.get(self._hdr) if hdr else None
        else:
            k = None
            for n, v in siblings:
                if n == self.key:
                    k = v
                    break
        return self.choices.get(k, self.default)
