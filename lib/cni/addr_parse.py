"""Text, bytes and ints to the int behind an IP address, and back to text (for cni.addr).

Only `_socket` is imported (inet_pton/inet_ntop do the parsing); bad input raises ValueError
with ipaddress's wording.
"""
from __future__ import annotations

import _socket

_AF = {4: _socket.AF_INET, 6: _socket.AF_INET6}


def parse(text: str, version: int) -> int:
    """Dotted-quad or IPv6 text -> int."""
    try:
        return int.from_bytes(_socket.inet_pton(_AF[version], text), "big")
    except (OSError, ValueError, TypeError):
        raise ValueError(f"{text!r} does not appear to be an IPv{version} address") from None


def to_int(address, version: int) -> int:
    """An int, 4/16 bytes, text or an address object (by its text) -> int."""
    bits = 32 if version == 4 else 128
    if isinstance(address, int) and not isinstance(address, bool):
        if not 0 <= address < 1 << bits:
            raise ValueError(f"{address} does not fit IPv{version}")
        return address
    if isinstance(address, (bytes, bytearray)):
        if len(address) != bits // 8:
            raise ValueError(f"{address!r} is not {bits // 8} bytes")
        return int.from_bytes(address, "big")
    text = address if isinstance(address, str) else str(address)
    if "/" in text:
        raise ValueError(f"unexpected '/' in {text!r}")
    return parse(text, version)


def text(ip: int, version: int) -> str:
    """The canonical text: dotted quad, or RFC 5952 for IPv6 (lower-case hextets, the
    longest run (2+) of zero hextets as '::')."""
    if version == 4:
        return _socket.inet_ntop(_socket.AF_INET, ip.to_bytes(4, "big"))
    h = [(ip >> (112 - 16 * i)) & 0xFFFF for i in range(8)]
    best, blen, cur, clen = -1, 0, -1, 0
    for i, x in enumerate(h):
        if x == 0:
            if cur < 0:
                cur, clen = i, 0
            clen += 1
            if clen > blen:
                best, blen = cur, clen
        else:
            cur = -1
    parts = ["%x" % x for x in h]
    if blen > 1:
        return ":".join(parts[:best]) + "::" + ":".join(parts[best + blen:])
    return ":".join(parts)


def split_prefix(spec, version: int) -> tuple:
    """'a/len', 'a/netmask' (v4), 'a', (a, len) or an object of ours/ipaddress -> (int, len)."""
    bits = 32 if version == 4 else 128
    if isinstance(spec, tuple):
        a, plen = spec
    elif isinstance(spec, (int, bytes, bytearray)) and not isinstance(spec, bool):
        a, plen = spec, bits
    else:
        s = spec if isinstance(spec, str) else str(spec)
        a, sep, plen = s.partition("/")
        if not sep:
            plen = bits
    ip = to_int(a, version)
    if isinstance(plen, str):
        if plen.isdigit() and plen.isascii() and len(plen) <= 3:
            plen = int(plen)
        elif version == 4 and plen.count(".") == 3:
            inv = parse(plen, 4) ^ 0xFFFFFFFF
            if inv & (inv + 1):
                raise ValueError(f"{plen!r} is not a valid netmask")
            plen = 32 - inv.bit_length()
        else:
            raise ValueError(f"{plen!r} is not a valid prefix length")
    if not isinstance(plen, int) or not 0 <= plen <= bits:
        raise ValueError(f"{plen!r} is not a valid prefix length")
    return ip, plen


def version_of(v) -> int:
    """4 or 6 for what ip_address/ip_interface/ip_network are given (ValueError otherwise)."""
    if isinstance(v, tuple):
        v = v[0]
    ver = getattr(v, "version", None)
    if ver in (4, 6):
        return ver
    if isinstance(v, (bytes, bytearray)):
        if len(v) in (4, 16):
            return 4 if len(v) == 4 else 6
    elif isinstance(v, int) and not isinstance(v, bool):
        if v >= 0:
            return 4 if v < 1 << 32 else 6
    elif isinstance(v, str):
        return 6 if ":" in v else 4
    raise ValueError(f"{v!r} does not appear to be an IPv4 or IPv6 address")
