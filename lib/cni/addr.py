"""IP addresses, interfaces and networks over ints: the part of `ipaddress` pycni uses.

A stand-in for a stdlib module that costs too much at start-up: importing `ipaddress`
takes ~5 ms (it pulls in functools, collections and re) on every plugin exec; this
module and cni.addr_parse (text and ints <-> the int behind an address) import only
`_socket`. Same names and behaviour for what we use: ip_address,
ip_interface, ip_network, IPv4Address/IPv6Address (and the Network/Interface classes),
.version .packed .max_prefixlen .ip .network .prefixlen .network_address
.broadcast_address .netmask .hostmask .num_addresses .with_prefixlen, containment,
overlaps/subnet_of/supernet_of, hosts(), int(), `+`/`-` an int, is_* predicates, and
the canonical text (RFC 5952 for IPv6, as ipaddress prints it). Objects compare and
hash equal to ipaddress's own equal objects, so both can meet in a set or a test.
Bad input raises ValueError (ipaddress's errors are ValueError subclasses too).
"""
from __future__ import annotations

from cni.addr_parse import parse, split_prefix, text, to_int, version_of


class _V4:
    __slots__ = ()
    _version = 4
    max_prefixlen = 32


class _V6:
    __slots__ = ()
    _version = 6
    max_prefixlen = 128


class _Value:
    """What addresses, networks and interfaces share: the repr of their text, and ordering of
    same-version objects by `_key()` against `_key_of(other)`, as ipaddress's (TypeError
    across versions, NotImplemented for other types)."""
    __slots__ = ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __lt__(self, other) -> bool:
        try:
            if self._version != other._version:
                raise TypeError(f"{self} and {other} are not of the same version")
            return self._key() < self._key_of(other)
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


class _Address(_Value):
    __slots__ = ("_ip",)

    def __init__(self, address):
        self._ip = to_int(address, self._version)

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
        return text(self._ip, self._version)

    def __format__(self, spec: str) -> str:
        return str(self) if not spec else format(str(self), spec)

    def __hash__(self) -> int:
        return hash(hex(self._ip))              # as ipaddress: equal objects hash alike

    def __eq__(self, other) -> bool:
        try:
            return self._ip == other._ip and self._version == other._version
        except AttributeError:
            return NotImplemented

    def _key(self) -> int:
        return self._ip

    @staticmethod
    def _key_of(other) -> int:
        return other._ip

    def __add__(self, n: int):
        if not isinstance(n, int):
            return NotImplemented
        return _ADDR[self._version](self._ip + n)

    def __sub__(self, n: int):
        if not isinstance(n, int):
            return NotImplemented
        return _ADDR[self._version](self._ip - n)

    def _in(self, net: str) -> bool:
        """Whether this address lies in `net` ('a/len' of its own version)."""
        a, plen = net.split("/")
        shift = self.max_prefixlen - int(plen)
        return self._ip >> shift == parse(a, self._version) >> shift

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


class IPv4Address(_V4, _Address):
    __slots__ = ()


class IPv6Address(_V6, _Address):
    __slots__ = ()

    def __hash__(self) -> int:
        return hash((self._ip, None))          # ipaddress hashes (int, scope id)

    @property
    def ipv4_mapped(self) -> IPv4Address | None:
        return IPv4Address(self._ip & 0xFFFFFFFF) if self._ip >> 32 == 0xFFFF else None


_ADDR = {4: IPv4Address, 6: IPv6Address}


def _of_both_ends(predicate: str) -> property:
    """A network's is_* property: the address predicate holds for its first and last address."""
    return property(lambda net: (getattr(net.network_address, predicate)
                                 and getattr(net.broadcast_address, predicate)))


class _Prefixed(_Value):
    """Networks and interfaces: an address with a prefix length, written 'address/len'."""
    __slots__ = ()

    @property
    def with_prefixlen(self) -> str:
        return str(self)


class _Network(_Prefixed):
    __slots__ = ("network_address", "_prefixlen")

    def __init__(self, address, strict: bool = True):
        ip, plen = split_prefix(address, self._version)
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

    def __str__(self) -> str:
        return f"{self.network_address}/{self._prefixlen}"

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

    @staticmethod
    def _key_of(other) -> tuple:
        return (int(other.network_address), int(other.netmask))

    is_unspecified = _of_both_ends("is_unspecified")
    is_loopback = _of_both_ends("is_loopback")
    is_link_local = _of_both_ends("is_link_local")
    is_multicast = _of_both_ends("is_multicast")

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


class IPv4Network(_V4, _Network):
    __slots__ = ()


class IPv6Network(_V6, _Network):
    __slots__ = ()


_NET = {4: IPv4Network, 6: IPv6Network}


class _Interface(_Address, _Prefixed):
    """An address with its prefix length (host bits kept); `.ip`, `.network`."""
    __slots__ = ("_prefixlen",)

    def __init__(self, address):
        ip, plen = split_prefix(address, self._version)
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


class IPv4Interface(_V4, _Interface):
    __slots__ = ()


class IPv6Interface(_V6, _Interface):
    __slots__ = ()


_IFACE = {4: IPv4Interface, 6: IPv6Interface}


def ip_address(v) -> IPv4Address | IPv6Address:
    """'10.0.0.1', 'fd00::1', an int, 4 or 16 bytes -> an address (ValueError otherwise)."""
    return _ADDR[version_of(v)](v)


def ip_interface(v) -> IPv4Interface | IPv6Interface:
    """'10.0.0.5/24' (host bits kept) or a bare address (full-length prefix)."""
    return _IFACE[version_of(v)](v)


def ip_network(v, strict: bool = True) -> IPv4Network | IPv6Network:
    """'10.0.0.0/24'; host bits raise ValueError unless strict=False drops them."""
    return _NET[version_of(v)](v, strict)
