"""IP ranges for host-local: parsing, canonicalization and validation.

Addresses are plain ints tagged with a family flag (`v6`), parsed with
`_socket.inet_pton` and printed the way Go's `net.IP.String()` does, so file
names in the store match the Go plugin's byte for byte. No `ipaddress` import:
this module sits on every host-local exec.

A Range is one pool inside a subnet; a RangeSet is a list of ranges of one
family from which one address is handed out.
"""
from __future__ import annotations

import _socket

from cni import version
from cni.config import lookup
from cni.errors import InvalidConfigError

_AF4, _AF6 = _socket.AF_INET, _socket.AF_INET6
_MAPPED = 0xFFFF << 32
_FULL6 = (1 << 128) - 1
MAX_RANGE_SETS = 1024    # one address each: far beyond any real config
MAX_RANGES = 8192        # in all sets together


def parse_ip(s) -> tuple:
    """'10.0.0.1' -> (False, int); '2001:db8::1' -> (True, int). ValueError if invalid.

    A v4-mapped v6 address becomes v4, as Go's To4() canonicalization does.
    """
    if not isinstance(s, str) or not s or "%" in s:
        raise ValueError(f"{s!r} is not an IP address")
    try:
        if ":" in s:
            n = int.from_bytes(_socket.inet_pton(_AF6, s), "big")
            if n >> 32 == 0xFFFF:
                return False, n & 0xFFFFFFFF
            return True, n
        return False, int.from_bytes(_socket.inet_pton(_AF4, s), "big")
    except (OSError, ValueError):
        raise ValueError(f"{s!r} is not an IP address") from None


def format_ip(v6: bool, n: int) -> str:
    """An address in Go's net.IP.String() form (RFC 5952 for v6)."""
    if not v6:
        return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
    if n >> 32 == 0xFFFF:  # Go prints a v4-mapped address as plain v4
        return format_ip(False, n & 0xFFFFFFFF)
    groups = [(n >> (112 - 16 * i)) & 0xFFFF for i in range(8)]
    best, best_len, i = -1, 1, 0
    while i < 8:  # longest run of >= 2 zero groups, leftmost on ties
        if groups[i] == 0:
            j = i
            while j < 8 and groups[j] == 0:
                j += 1
            if j - i > best_len:
                best, best_len = i, j - i
            i = j
        else:
            i += 1
    if best < 0:
        return ":".join(f"{g:x}" for g in groups)
    head = ":".join(f"{g:x}" for g in groups[:best])
    tail = ":".join(f"{g:x}" for g in groups[best + best_len:])
    return f"{head}::{tail}"


def parse_cidr(s) -> tuple:
    """'10.0.0.0/24' -> (v6, ip int, prefix len). ValueError if invalid."""
    if not isinstance(s, str) or s.count("/") != 1:
        raise ValueError(f"{s!r} is not in CIDR notation")
    ip, plen = s.split("/")
    six = ":" in ip
    v6, n = parse_ip(ip)
    maxlen = 128 if six else 32
    if not plen.isascii() or not plen.isdigit() or len(plen) > 3 or int(plen) > maxlen:
        raise ValueError(f"{s!r} has an invalid prefix length")
    if six and not v6:  # v4-mapped address with a v6 mask
        raise ValueError(f"{s!r}: IP and mask families differ")
    return v6, n, int(plen)


def parse_ip_arg(s) -> tuple:
    """A requested address 'ip' or 'ip/prefix' (the prefix is ignored, as in Go)."""
    if isinstance(s, str) and "/" in s:
        v6, n, _ = parse_cidr(s)
        return v6, n
    return parse_ip(s)


class Range:
    """One canonical pool: subnet (net/plen), inclusive start..end, gateway."""
    __slots__ = ("v6", "net", "plen", "start", "end", "gw", "gw_v6")

    def __init__(self, v6: bool, net: int, plen: int, start: int, end: int, gw: int,
                 gw_v6: bool | None = None):
        self.v6, self.net, self.plen = v6, net, plen
        self.start, self.end, self.gw = start, end, gw
        self.gw_v6 = v6 if gw_v6 is None else gw_v6

    @property
    def bits(self) -> int:
        return 128 if self.v6 else 32

    def in_subnet(self, v6: bool, n: int) -> bool:
        return v6 == self.v6 and (n >> (self.bits - self.plen)) == (self.net >> (self.bits - self.plen))

    def contains(self, v6: bool, n: int) -> bool:
        """In the subnet and inside start..end (Go's Range.Contains)."""
        return v6 == self.v6 and self.start <= n <= self.end and self.in_subnet(v6, n)

    def is_gateway(self, n: int) -> bool:
        return n == self.gw and self.gw_v6 == self.v6

    def overlaps(self, o: Range) -> bool:
        if self.v6 != o.v6:
            return False
        return (self.contains(o.v6, o.start) or self.contains(o.v6, o.end)
                or o.contains(self.v6, self.start) or o.contains(self.v6, self.end))

    def size(self) -> int:
        """How many addresses can be handed out (gateway excluded)."""
        return self.end - self.start + 1 - (1 if self.gw_v6 == self.v6
                                             and self.start <= self.gw <= self.end else 0)

    @property
    def subnet_str(self) -> str:
        return f"{format_ip(self.v6, self.net)}/{self.plen}"

    @property
    def gateway_str(self) -> str:
        return format_ip(self.gw_v6, self.gw)

    def address_str(self, n: int) -> str:
        """The result's 'address': ip/prefix of this range's subnet."""
        return f"{format_ip(self.v6, n)}/{self.plen}"

    def __str__(self) -> str:
        return f"{format_ip(self.v6, self.start)}-{format_ip(self.v6, self.end)}"

    __repr__ = __str__


class RangeSet:
    __slots__ = ("ranges", "v6")

    def __init__(self, ranges: list):
        self.ranges = ranges
        self.v6 = ranges[0].v6

    def range_for(self, v6: bool, n: int) -> Range | None:
        for r in self.ranges:
            if r.contains(v6, n):
                return r
        return None

    def contains(self, v6: bool, n: int) -> bool:
        return self.range_for(v6, n) is not None

    def size(self) -> int:
        return sum(r.size() for r in self.ranges)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.ranges)

    __repr__ = __str__


def _bad(field: str, why: str):
    return InvalidConfigError("invalid IPAM config", f"{field}: {why}")


def _ip_field(d: dict, key: str, field: str):
    v = lookup(d, key)
    if v is None or v == "":
        return None
    try:
        return parse_ip(v)
    except ValueError:
        raise _bad(f"{field}.{key}", f"{v!r} is not an IP address") from None


def load_range(d, field: str) -> Range:
    """Canonicalize one range object {subnet, rangeStart?, rangeEnd?, gateway?}."""
    if not isinstance(d, dict):
        raise _bad(field, "a range must be an object")
    sub = lookup(d, "subnet")
    if sub is None or sub == "":
        raise _bad(f"{field}.subnet", "missing")
    try:
        v6, ip, plen = parse_cidr(sub)
    except ValueError as exc:
        raise _bad(f"{field}.subnet", str(exc)) from None
    bits = 128 if v6 else 32
    if plen > bits - 2:
        raise _bad(f"{field}.subnet", f"network {sub} too small to allocate from")
    host = (1 << (bits - plen)) - 1
    net = ip & ~host
    if ip != net:
        raise _bad(f"{field}.subnet", f"{sub} has host bits set; for a /{plen} the network "
                                      f"address is {format_ip(v6, net)}")
    last = net | host
    if not v6:
        last -= 1  # skip the v4 broadcast
    gw = _ip_field(d, "gateway", field)
    gw_v6, gw_n = gw if gw is not None else (v6, net + 1)
    r = Range(v6, net, plen, net + 1, last, gw_n, gw_v6)
    start = _ip_field(d, "rangeStart", field)
    end = _ip_field(d, "rangeEnd", field)
    # both bounds are checked against the subnet only, as Go does
    if start is not None:
        if not r.in_subnet(*start):
            raise _bad(f"{field}.rangeStart", f"{format_ip(*start)} not in network {sub}")
        r.start = start[1]
    if end is not None:
        if not r.in_subnet(*end):
            raise _bad(f"{field}.rangeEnd", f"{format_ip(*end)} not in network {sub}")
        r.end = end[1]
    if r.start > r.end:
        raise _bad(field, f"rangeStart {format_ip(v6, r.start)} is after rangeEnd "
                          f"{format_ip(v6, r.end)}")
    return r


def load_range_set(lst, field: str) -> RangeSet:
    if not isinstance(lst, list):
        raise _bad(field, "a range set must be a list of range objects")
    if not lst:
        raise _bad(field, "empty range set")
    if len(lst) > MAX_RANGES:
        raise _bad(field, f"{len(lst)} ranges; at most {MAX_RANGES} are allowed")
    ranges = [load_range(d, f"{field}[{i}]") for i, d in enumerate(lst)]
    for r in ranges[1:]:
        if r.v6 != ranges[0].v6:
            raise _bad(field, "mixed address families")
    pair = first_overlap(ranges)
    if pair is not None:
        a, b = pair
        raise _bad(field, f"subnets {ranges[a]} and {ranges[b]} overlap")
    return RangeSet(ranges)


def first_overlap(ranges: list):
    """Indices (i < j) of two overlapping ranges, or None; O(n log n).

    Two ranges overlap when their start..end intervals meet (start and end lie in the
    subnet, so this is Go's Range.Overlaps). Sorted by (family, start), a range overlaps
    an earlier one exactly when it starts at or before the largest end seen so far in
    its family.
    """
    order = sorted(range(len(ranges)), key=lambda i: (ranges[i].v6, ranges[i].start))
    far = -1                                     # index of the largest end so far
    for i in order:
        r = ranges[i]
        if far >= 0 and ranges[far].v6 == r.v6 and r.start <= ranges[far].end:
            return (far, i) if far < i else (i, far)
        if far < 0 or ranges[far].v6 != r.v6 or r.end > ranges[far].end:
            far = i
    return None


def load_range_sets(ipam: dict, runtime_ranges, cni_version: str) -> list:
    """All range sets in Go's order: runtimeConfig.ipRanges, legacy top-level, ranges."""
    sets: list = []
    if runtime_ranges:
        if not isinstance(runtime_ranges, list):
            raise _bad("runtimeConfig.ipRanges", "must be a list of range sets")
        _check_count(runtime_ranges, "runtimeConfig.ipRanges")
        sets += [load_range_set(s, f"runtimeConfig.ipRanges[{i}]")
                 for i, s in enumerate(runtime_ranges)]
    sub = lookup(ipam, "subnet")
    if sub not in (None, ""):
        sets.append(RangeSet([load_range(ipam, "ipam")]))
    cfg = lookup(ipam, "ranges")
    if cfg is not None:
        if not isinstance(cfg, list):
            raise _bad("ipam.ranges", "must be a list of range sets")
        _check_count(cfg, "ipam.ranges")
        sets += [load_range_set(s, f"ipam.ranges[{i}]") for i, s in enumerate(cfg)]
    if not sets:
        raise _bad("ipam.ranges", "no IP ranges specified")
    n4 = sum(1 for s in sets if not s.v6)
    if (n4 > 1 or len(sets) - n4 > 1):
        if not version.ge(cni_version or "0.1.0", "0.3.0"):
            raise _bad("ipam.ranges", f"CNI version {cni_version} does not support more than "
                                      "1 address per family")
    if len(sets) > MAX_RANGE_SETS or sum(len(s.ranges) for s in sets) > MAX_RANGES:
        raise _bad("ipam.ranges", f"at most {MAX_RANGE_SETS} range sets and {MAX_RANGES} ranges"
                                  " are allowed in all")
    flat = [r for s in sets for r in s.ranges]
    owner = [i for i, s in enumerate(sets) for _ in s.ranges]
    pair = first_overlap(flat)     # never two of one set: load_range_set refused those
    if pair is not None:
        i, j = sorted((owner[pair[0]], owner[pair[1]]))
        raise _bad("ipam.ranges", f"range set {i} overlaps with {j}")
    return sets


def _check_count(lst: list, field: str) -> None:
    """Refuse absurd counts before parsing anything."""
    if len(lst) > MAX_RANGE_SETS:
        raise _bad(field, f"{len(lst)} range sets; at most {MAX_RANGE_SETS} are allowed")
    n = sum(len(x) if isinstance(x, list) else 1 for x in lst)
    if n > MAX_RANGES:
        raise _bad(field, f"{n} ranges; at most {MAX_RANGES} are allowed in all")
