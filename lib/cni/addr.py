"""IP addresses, interfaces and networks over ints: the part of `ipaddress` pycni uses.

A stand-in for a stdlib module that costs too much at start-up: importing `ipaddress`
takes ~5 ms (it pulls in functools, collections and re) on every plugin exec; this
module imports only `_socket`. Same names and behaviour for what we use: ip_address,
ip_interface, ip_network, IPv4Address/IPv6Address (and the Network/Interface classes),
.version .packed .max_prefixlen .ip .network .prefixlen .network_address
.broadcast_address .netmask .hostmask .num_addresses .with_prefixlen, containment,
overlaps/subnet_of/supernet_of, hosts(), int(), `+`/`-` an int, is_* predicates, and
the canonical text (RFC 5952 for IPv6, as ipaddress prints it). Objects compare and
hash equal to ipaddress's own equal objects, so both can meet in a set or a test.
Bad input raises ValueError (ipaddress's errors are ValueError subclasses too).
"""
from __future__ import annotations

import _socket

_AF = {4: _socket.AF_INET, 6: _socket.AF_INET6}


def _parse(text: str, version: int) -> int:
    try:
        return int.from_bytes(_socket.inet_pton(_AF[version], text), "big")
    except (OSError, ValueError, TypeError):
        raise ValueError(f"{text!r} does not appear to be an IPv{version} address") from None


def _v6_text(ip: int) -> str:
    """RFC 5952: lower-case hextets, the longest run (2+) of zero hextets as '::'."""
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


class _Address:
    __slots__ = ("_ip",)
    _version = 4
    max_prefixlen = 32

    def __init__(self, address):
        bits = self.max_prefixlen
        if isinstance(address, int) and not isinstance(address, bool):
            if not 0 <= address < 1 << bits:
                raise ValueError(f"{address} does not fit IPv{self._version}")
            self._ip = address
        elif isinstance(address, (bytes, bytearray)):
            if len(address) != bits // 8:
                raise ValueError(f"{address!r} is not {bits // 8} bytes")
            self._ip = int.from_bytes(address, "big")
        else:
            text = address if isinstance(address, str) else str(address)
            if "/" in text:
                raise ValueError(f"unexpected '/' in {text!r}")
            self._ip = _parse(text, self._version)

    @property
    def version(self) -> int:
        return self._version

    @property
    def packed(self) -> bytes:
        return self._ip.to_bytes(self.max_prefixlen // 8, "big")

    def __int__(self) -> int:
        return self._ip

    def __index__(self) -> int:
        return self._ip

    def __str__(self) -> str:
        if self._version == 4:
            return _socket.inet_ntop(_socket.AF_INET, self.packed)
        return _v6_text(self._ip)

    def __format__(self, spec: str) -> str:
        return str(self) if not spec else format(str(self), spec)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __hash__(self) -> int:
        return hash(hex(self._ip))              # as ipaddress: equal objects hash alike

    def __eq__(self, other) -> bool:
        try:
            return self._ip == other._ip and self._version == other._version
        except AttributeError:
            return NotImplemented

    def __lt__(self, other) -> bool:
        try:
            if self._version != other._version:
                raise TypeError(f"{self} and {other} are not of the same version")
            return self._ip < other._ip
        except AttributeError:
            return NotImplemented

    def __le__(self, other) -> bool:
        lt = self.__lt__(other)
        return lt if lt is NotImplemented else lt or self == other

    def __gt__(self, other) -> bool:
        le = self.__le__(other)
        return le if le is NotImplemented else not le

    def __ge__(self, other) -> bool:
        lt = self.__lt__(other)
        return lt if lt is NotImplemented else not lt

    def __add__(self, n: int):
        if not isinstance(n, int):
            return NotImplemented
        return _ADDR[self._version](self._ip + n)

    def __sub__(self, n: int):
        if not isinstance(n, int):
            return NotImplemented
        return _ADDR[self._version](self._ip - n)

    def _in(self, net: str) -> bool:
        return self in ip_network(net)

    @property
    def is_unspecified(self) -> bool:
        return self._ip == 0

    @property
    def is_loopback(self) -> bool:
        return self._in("127.0.0.0/8") if self._version == 4 else self._ip == 1

    @property
    def is_link_local(self) -> bool:
        return self._in("169.254.0.0/16" if self._version == 4 else "fe80::/10")

    @property
    def is_multicast(self) -> bool:
        return self._in("224.0.0.0/4" if self._version == 4 else "ff00::/8")


class IPv4Address(_Address):
    __slots__ = ()


class IPv6Address(_Address):
    __slots__ = ()
    _version = 6
    max_prefixlen = 128

    def __hash__(self) -> int:
        return hash((self._ip, None))          # ipaddress hashes (int, scope id)

    @property
    def ipv4_mapped(self) -> IPv4Address | None:
        return IPv4Address(self._ip & 0xFFFFFFFF) if self._ip >> 32 == 0xFFFF else None


_ADDR = {4: IPv4Address, 6: IPv6Address}


def _split(spec, version: int) -> tuple:
    """'a/len', 'a/netmask' (v4), 'a', (a, len) or an object of ours/ipaddress -> (int, len)."""
    bits = 32 if version == 4 else 128
    if isinstance(spec, tuple):
        a, plen = spec
    elif isinstance(spec, (int, bytes, bytearray)) and not isinstance(spec, bool):
        a, plen = spec, bits
    else:
        text = spec if isinstance(spec, str) else str(spec)
        a, sep, plen = text.partition("/")
        if not sep:
            plen = bits
    ip = _ADDR[version](a)._ip
    if isinstance(plen, str):
        if plen.isdigit() and plen.isascii() and len(plen) <= 3:
            plen = int(plen)
        elif version == 4 and plen.count(".") == 3:
            m = _parse(plen, 4)
            inv = m ^ 0xFFFFFFFF
            if inv & (inv + 1):
                raise ValueError(f"{plen!r} is not a valid netmask")
            plen = 32 - inv.bit_length()
        else:
            raise ValueError(f"{plen!r} is not a valid prefix length")
    if not isinstance(plen, int) or not 0 <= plen <= bits:
        raise ValueError(f"{plen!r} is not a valid prefix length")
    return ip, plen


class _Network:
    __slots__ = ("network_address", "_prefixlen")
    _version = 4
    max_prefixlen = 32

    def __init__(self, address, strict: bool = True):
        ip, plen = _split(address, self._version)
        mask = self._mask(plen)
        if ip & ~mask & self._all():
            if strict:
                raise ValueError(f"{address} has host bits set")
            ip &= mask
        self.network_address = _ADDR[self._version](ip)
        self._prefixlen = plen

    @classmethod
    def _all(cls) -> int:
        return (1 << cls.max_prefixlen) - 1

    @classmethod
    def _mask(cls, plen: int) -> int:
        return cls._all() ^ ((1 << (cls.max_prefixlen - plen)) - 1)

    @property
    def version(self) -> int:
        return self._version

    @property
    def prefixlen(self) -> int:
        return self._prefixlen

    @property
    def netmask(self):
        return _ADDR[self._version](self._mask(self._prefixlen))

    @property
    def hostmask(self):
        return _ADDR[self._version](self._all() ^ self._mask(self._prefixlen))

    @property
    def broadcast_address(self):
        return _ADDR[self._version](self.network_address._ip | int(self.hostmask))

    @property
    def num_addresses(self) -> int:
        return 1 << (self.max_prefixlen - self._prefixlen)

    @property
    def with_prefixlen(self) -> str:
        return str(self)

    def __str__(self) -> str:
        return f"{self.network_address}/{self._prefixlen}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __hash__(self) -> int:
        return hash(self.network_address._ip ^ self._mask(self._prefixlen))

    def __eq__(self, other) -> bool:
        try:
            return (self._version == other._version and self.network_address == other.network_address
                    and self._prefixlen == other.prefixlen)
        except AttributeError:
            return NotImplemented

    def _key(self) -> tuple:
        return (self.network_address._ip, self._mask(self._prefixlen))

    def __lt__(self, other) -> bool:
        try:
            if self._version != other._version:
                raise TypeError(f"{self} and {other} are not of the same version")
            return self._key() < (int(other.network_address), int(other.netmask))
        except AttributeError:
            return NotImplemented

    def __gt__(self, other) -> bool:
        try:
            if self._version != other._version:
                raise TypeError(f"{self} and {other} are not of the same version")
            return self._key() > (int(other.network_address), int(other.netmask))
        except AttributeError:
            return NotImplemented

    def __le__(self, other) -> bool:
        gt = self.__gt__(other)
        return gt if gt is NotImplemented else not gt

    def __ge__(self, other) -> bool:
        lt = self.__lt__(other)
        return lt if lt is NotImplemented else not lt

    @property
    def is_unspecified(self) -> bool:
        return self.network_address.is_unspecified and self.broadcast_address.is_unspecified

    @property
    def is_loopback(self) -> bool:
        return self.network_address.is_loopback and self.broadcast_address.is_loopback

    @property
    def is_link_local(self) -> bool:
        return self.network_address.is_link_local and self.broadcast_address.is_link_local

    @property
    def is_multicast(self) -> bool:
        return self.network_address.is_multicast and self.broadcast_address.is_multicast

    def __contains__(self, other) -> bool:
        if isinstance(other, _Network) or hasattr(other, "network_address"):
            return False                                  # as ipaddress: networks hold addresses
        try:
            return (other._version == self._version
                    and other._ip & self._mask(self._prefixlen) == self.network_address._ip)
        except AttributeError:
            return False

    def overlaps(self, other) -> bool:
        return (self.network_address in other or self.broadcast_address in other
                or other.network_address in self or other.broadcast_address in self)

    def subnet_of(self, other) -> bool:
        if self._version != other._version:
            raise TypeError(f"{self} and {other} are not of the same version")
        return (int(other.network_address) <= self.network_address._ip
                and int(other.broadcast_address) >= int(self.broadcast_address))

    def supernet_of(self, other) -> bool:
        if self._version != other._version:
            raise TypeError(f"{self} and {other} are not of the same version")
        return (self.network_address._ip <= int(other.network_address)
                and int(self.broadcast_address) >= int(other.broadcast_address))

    def __iter__(self):
        cls, start = _ADDR[self._version], self.network_address._ip
        for i in range(start, start + self.num_addresses):
            yield cls(i)

    def hosts(self):
        """As ipaddress: all but the network and broadcast addresses (v4), all but the
        subnet-router anycast (v6); a /31 or /32 (/127, /128) yields every address."""
        cls, start, n = _ADDR[self._version], self.network_address._ip, self.num_addresses
        if self._prefixlen >= self.max_prefixlen - 1:
            lo, hi = start, start + n
        else:
            lo, hi = start + 1, start + n - (1 if self._version == 4 else 0)
        for i in range(lo, hi):
            yield cls(i)


class IPv4Network(_Network):
    __slots__ = ()


class IPv6Network(_Network):
    __slots__ = ()
    _version = 6
    max_prefixlen = 128


_NET = {4: IPv4Network, 6: IPv6Network}


class _Interface(_Address):
    """An address with its prefix length (host bits kept); `.ip`, `.network`."""
    __slots__ = ("_prefixlen",)

    def __init__(self, address):
        ip, plen = _split(address, self._version)
        self._ip = ip
        self._prefixlen = plen

    @property
    def ip(self):
        return _ADDR[self._version](self._ip)

    @property
    def network(self):
        return _NET[self._version]((self._ip, self._prefixlen), strict=False)

    @property
    def netmask(self):
        return self.network.netmask

    @property
    def hostmask(self):
        return self.network.hostmask

    @property
    def with_prefixlen(self) -> str:
        return str(self)

    def __str__(self) -> str:
        return f"{_Address.__str__(self)}/{self._prefixlen}"

    def __hash__(self) -> int:
        return hash((self._ip, self._prefixlen, self.network.network_address._ip))

    def __eq__(self, other) -> bool:
        eq = _Address.__eq__(self, other)
        if eq is NotImplemented or not eq:
            return eq
        try:
            return self.network == other.network
        except AttributeError:
            return False

    def __lt__(self, other) -> bool:
        lt = _Address.__lt__(self, other)
        if lt is NotImplemented:
            return lt
        try:
            return lt or (self._ip == other._ip and self.network < other.network)
        except AttributeError:
            return False


class IPv4Interface(_Interface):
    __slots__ = ()


class IPv6Interface(_Interface):
    __slots__ = ()
    _version = 6
    max_prefixlen = 128


_IFACE = {4: IPv4Interface, 6: IPv6Interface}


def _version_of(v) -> int:
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


def ip_address(v) -> IPv4Address | IPv6Address:
    """'10.0.0.1', 'fd00::1', an int, 4 or 16 bytes -> an address (ValueError otherwise)."""
    return _ADDR[_version_of(v)](v)


def ip_interface(v) -> IPv4Interface | IPv6Interface:
    """'10.0.0.5/24' (host bits kept) or a bare address (full-length prefix)."""
    return _IFACE[_version_of(v)](v)


def ip_network(v, strict: bool = True) -> IPv4Network | IPv6Network:
    """'10.0.0.0/24'; host bits raise ValueError unless strict=False drops them."""
    return _NET[_version_of(v)](v, strict)
