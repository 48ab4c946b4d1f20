"""DHCPv4 message codec (RFC 2131 / 2132, overload 52, RFC 3396 long options, RFC 3442 routes).

`decode(buf)` keeps everything needed to re-encode the same bytes: the raw `sname`/`file`
fields, the main option area as an ordered list of (code, value) pairs (PAD kept as
(0, b"")), and whatever trails the END option. `merged_options(pkt)` gives the logical view.
"""
from __future__ import annotations

import ipaddress
import struct

__all__ = ["Packet", "DHCPDecodeError", "decode", "encode", "pack_options", "unpack_options",
           "merged_options"]

BOOTREQUEST, BOOTREPLY = 1, 2
HTYPE_ETHER = 1
FLAG_BROADCAST = 0x8000
MAGIC = b"\x63\x82\x53\x63"
MIN_LEN = 300  # BOOTP minimum message size; some servers drop shorter requests

# option codes (RFC 2132 names)
PAD, END = 0, 255
OPT_SUBNET_MASK = 1
OPT_ROUTER = 3
OPT_DNS = 6
OPT_HOST_NAME = 12
OPT_DOMAIN_NAME = 15
OPT_STATIC_ROUTES = 33
OPT_REQUESTED_IP = 50
OPT_LEASE_TIME = 51
OPT_OVERLOAD = 52
OPT_MESSAGE_TYPE = 53
OPT_SERVER_ID = 54
OPT_PARAM_REQUEST = 55
OPT_MESSAGE = 56
OPT_MAX_MSG_SIZE = 57
OPT_T1 = 58
OPT_T2 = 59
OPT_VENDOR_CLASS = 60
OPT_CLIENT_ID = 61
OPT_USER_CLASS = 77
OPT_DOMAIN_SEARCH = 119
OPT_CLASSLESS_ROUTES = 121

DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)
MESSAGE_NAMES = {DISCOVER: "DHCPDISCOVER", OFFER: "DHCPOFFER", REQUEST: "DHCPREQUEST",
                 DECLINE: "DHCPDECLINE", ACK: "DHCPACK", NAK: "DHCPNAK",
                 RELEASE: "DHCPRELEASE", INFORM: "DHCPINFORM"}

# names accepted in the plugin config (`request`/`provide`), as dhcp-options(5) spells them
OPTION_NAMES = {"dhcp-client-identifier": OPT_CLIENT_ID, "subnet-mask": OPT_SUBNET_MASK,
                "routers": OPT_ROUTER, "host-name": OPT_HOST_NAME, "user-class": OPT_USER_CLASS,
                "vendor-class-identifier": OPT_VENDOR_CLASS}

_HDR = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")  # 236 bytes
_ZERO4 = ipaddress.IPv4Address(0)


class DHCPDecodeError(ValueError):
    """The bytes are not a well-formed DHCP message or option."""


class Packet:
    """One DHCP message. Addresses are IPv4Address; chaddr is the 16-byte field."""

    __slots__ = ("op", "htype", "hlen", "hops", "xid", "secs", "flags", "ciaddr", "yiaddr",
                 "siaddr", "giaddr", "chaddr", "sname", "file", "options", "trailer")

    def __init__(self, op: int = BOOTREQUEST, xid: int = 0, *, htype: int = HTYPE_ETHER,
                 hlen: int = 6, hops: int = 0, secs: int = 0, flags: int = 0,
                 ciaddr=_ZERO4, yiaddr=_ZERO4, siaddr=_ZERO4, giaddr=_ZERO4,
                 chaddr: bytes = b"", sname: bytes = b"", file: bytes = b"",
                 options: list | None = None, trailer: bytes | None = None):
        self.op, self.htype, self.hlen, self.hops = op, htype, hlen, hops
        self.xid, self.secs, self.flags = xid, secs, flags
        self.ciaddr = ipaddress.IPv4Address(ciaddr)
        self.yiaddr = ipaddress.IPv4Address(yiaddr)
        self.siaddr = ipaddress.IPv4Address(siaddr)
        self.giaddr = ipaddress.IPv4Address(giaddr)
        self.chaddr = bytes(chaddr).ljust(16, b"\0")[:16]
        self.sname = bytes(sname).ljust(64, b"\0")[:64]
        self.file = bytes(file).ljust(128, b"\0")[:128]
        self.options = list(options or [])   # [(code, bytes)] in wire order, main area only
        self.trailer = trailer                 # bytes after END; None = pad to MIN_LEN

    @property
    def mac(self) -> bytes:
        return self.chaddr[:self.hlen] if self.hlen <= 16 else self.chaddr

    def get(self, code: int, default=None):
        """Logical value of one option (overload and repeats merged)."""
        return merged_options(self).get(code, default)

    @property
    def message_type(self) -> int:
        v = self.get(OPT_MESSAGE_TYPE)
        return v[0] if v else 0

    def __eq__(self, other) -> bool:
        return isinstance(other, Packet) and all(
            getattr(self, a) == getattr(other, a) for a in self.__slots__)

    def __repr__(self) -> str:
        name = MESSAGE_NAMES.get(self.message_type, f"type {self.message_type}")
        return (f"Packet({name} xid={self.xid:#010x} ciaddr={self.ciaddr} yiaddr={self.yiaddr} "
                f"options={self.options!r})")


def pack_options(options) -> bytes:
    """Encode (code, value) pairs; a value over 255 bytes is split (RFC 3396). No END added."""
    out = bytearray()
    for code, value in options:
        if code in (PAD, END):
            out.append(code)
            continue
        value = bytes(value)
        if not value:
            out += bytes((code, 0))
        for i in range(0, len(value), 255):
            chunk = value[i:i + 255]
            out += bytes((code, len(chunk))) + chunk
    return bytes(out)


def unpack_options(buf, off: int = 0, end: int | None = None) -> tuple[list, int]:
    """Decode options up to END; return (pairs incl. PAD as (0, b""), offset after END).

    Without an END the offset returned is `end` and the area must be fully consumed.
    """
    buf = bytes(buf)
    end = len(buf) if end is None else end
    opts: list = []
    while off < end:
        code = buf[off]
        if code == PAD:
            opts.append((PAD, b""))
            off += 1
            continue
        if code == END:
            return opts, off + 1
        if off + 1 >= end:
            raise DHCPDecodeError(f"option {code} truncated at offset {off}")
        n = buf[off + 1]
        if off + 2 + n > end:
            raise DHCPDecodeError(f"option {code} length {n} overruns the message")
        opts.append((code, buf[off + 2:off + 2 + n]))
        off += 2 + n
    return opts, -1


def decode(buf) -> Packet:
    """Parse a DHCP message (the UDP payload)."""
    buf = bytes(buf)
    if len(buf) < _HDR.size + 4:
        raise DHCPDecodeError(f"message too short: {len(buf)} bytes")
    (op, htype, hlen, hops, xid, secs, flags, ci, yi, si, gi, chaddr, sname,
     file) = _HDR.unpack_from(buf)
    if buf[_HDR.size:_HDR.size + 4] != MAGIC:
        raise DHCPDecodeError("bad magic cookie")
    opts, after = unpack_options(buf, _HDR.size + 4)
    if after < 0:
        raise DHCPDecodeError("options not terminated by END")
    pkt = Packet(op, xid, htype=htype, hlen=hlen, hops=hops, secs=secs, flags=flags,
                 ciaddr=ci, yiaddr=yi, siaddr=si, giaddr=gi, chaddr=chaddr, sname=sname,
                 file=file, options=opts, trailer=buf[after:])
    merged_options(pkt)  # validate overloaded areas now rather than on first use
    return pkt


def encode(pkt: Packet) -> bytes:
    """Serialize; with `trailer` None the message is zero-padded to MIN_LEN bytes."""
    hdr = _HDR.pack(pkt.op, pkt.htype, pkt.hlen, pkt.hops, pkt.xid, pkt.secs, pkt.flags,
                    pkt.ciaddr.packed, pkt.yiaddr.packed, pkt.siaddr.packed, pkt.giaddr.packed,
                    pkt.chaddr, pkt.sname, pkt.file)
    body = hdr + MAGIC + pack_options(pkt.options) + b"\xff"
    if pkt.trailer is None:
        return body.ljust(MIN_LEN, b"\0")
    return body + pkt.trailer


def merged_options(pkt: Packet) -> dict:
    """{code: value}: main area, then file, then sname when overloaded (52); repeats
    of a code are concatenated in that order (RFC 3396)."""
    pairs = list(pkt.options)
    over = 0
    for code, value in pairs:
        if code == OPT_OVERLOAD:
            if len(value) != 1 or value[0] not in (1, 2, 3):
                raise DHCPDecodeError(f"bad overload option {value!r}")
            over = value[0]
    if over & 1:
        pairs += _overloaded(pkt.file, "file")
    if over & 2:
        pairs += _overloaded(pkt.sname, "sname")
    out: dict = {}
    for code, value in pairs:
        if code != PAD and code != OPT_OVERLOAD:
            out[code] = out[code] + value if code in out else value
    return out


def _overloaded(area: bytes, name: str) -> list:
    """Options stored in sname/file; an area filled to its last byte may omit END."""
    try:
        return unpack_options(area)[0]
    except DHCPDecodeError as exc:
        raise DHCPDecodeError(f"overloaded {name} field: {exc}") from None


# ---- typed option values --------------------------------------------------------------

def u32(v: int) -> bytes:
    return struct.pack("!I", v)


def ips(addrs) -> bytes:
    return b"".join(ipaddress.IPv4Address(a).packed for a in addrs)


def get_u32(opts: dict, code: int) -> int | None:
    v = opts.get(code)
    if v is None or len(v) != 4:
        return None
    return struct.unpack("!I", v)[0]


def get_ip(opts: dict, code: int):
    v = opts.get(code)
    if v is None or len(v) != 4:
        return None
    return ipaddress.IPv4Address(v)


def get_ips(opts: dict, code: int) -> list:
    v = opts.get(code) or b""
    return [ipaddress.IPv4Address(v[i:i + 4]) for i in range(0, len(v) - len(v) % 4, 4)]


def get_str(opts: dict, code: int) -> str | None:
    v = opts.get(code)
    if v is None:
        return None
    return v.rstrip(b"\0").decode("utf-8", "replace")


def classful_network(dst) -> ipaddress.IPv4Network:
    """Option 33 destinations carry no mask: derive it from the address class."""
    dst = ipaddress.IPv4Address(dst)
    first = dst.packed[0]
    plen = 8 if first < 128 else 16 if first < 192 else 24 if first < 224 else 32
    if int(dst) == 0:
        plen = 0
    return ipaddress.IPv4Network((dst, plen), strict=False)


def decode_static_routes(value: bytes) -> list:
    """Option 33: (dst, router) pairs -> [(IPv4Network, IPv4Address)]."""
    if len(value) % 8:
        raise DHCPDecodeError(f"static routes option length {len(value)} is not a multiple of 8")
    return [(classful_network(value[i:i + 4]), ipaddress.IPv4Address(value[i + 4:i + 8]))
            for i in range(0, len(value), 8)]


def decode_classless_routes(value: bytes) -> list:
    """RFC 3442: width, significant destination octets, router -> [(IPv4Network, IPv4Address)]."""
    out = []
    i, n = 0, len(value)
    while i < n:
        width = value[i]
        if width > 32:
            raise DHCPDecodeError(f"classless route prefix length {width} > 32")
        sig = (width + 7) // 8
        if i + 1 + sig + 4 > n:
            raise DHCPDecodeError("classless route truncated")
        dst = value[i + 1:i + 1 + sig].ljust(4, b"\0")
        gw = value[i + 1 + sig:i + 5 + sig]
        out.append((ipaddress.IPv4Network((dst, width), strict=False), ipaddress.IPv4Address(gw)))
        i += 5 + sig
    return out


def decode_domain_search(value: bytes) -> list:
    """Option 119 (RFC 3397): DNS-encoded names with compression pointers."""
    names, i = [], 0
    while i < len(value):
        name, i = _read_name(value, i)
        names.append(name)
    return names


def _read_name(buf: bytes, i: int) -> tuple[str, int]:
    labels, end, hops = [], -1, 0
    while True:
        if i >= len(buf):
            raise DHCPDecodeError("domain search name truncated")
        n = buf[i]
        if n & 0xC0 == 0xC0:
            if i + 1 >= len(buf):
                raise DHCPDecodeError("domain search pointer truncated")
            if end < 0:
                end = i + 2
            i = ((n & 0x3F) << 8) | buf[i + 1]
            hops += 1
            if hops > 64:
                raise DHCPDecodeError("domain search pointer loop")
            continue
        if n == 0:
            return ".".join(labels), (end if end >= 0 else i + 1)
        if i + 1 + n > len(buf):
            raise DHCPDecodeError("domain search label truncated")
        labels.append(buf[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n


def parse_option_name(name) -> int:
    """A config option name (dhcp-options(5) spelling) or decimal code 0-255."""
    s = str(name)
    if s in OPTION_NAMES:
        return OPTION_NAMES[s]
    if s.isdigit() and int(s) <= 255:
        return int(s)
    raise ValueError(f"can not parse option {s!r}")
