"""The canonical result model (spec 1.1); convert.py maps it to each wire version.

Addresses are kept as validated strings and turned into `cni.addr` objects
(our cheap stand-in for `ipaddress`) on first use: chained plugins that only
pass a prevResult through never parse them.
"""
from __future__ import annotations

import _socket

from cni.errors import DecodingError


def check_ip(s: str, what: str) -> str:
    """Validate a bare IP string (v4 or v6) without building an address object."""
    if not isinstance(s, str) or not s:
        raise DecodingError(f"invalid {what}", f"{s!r} is not an IP address")
    fam = _socket.AF_INET6 if ":" in s else _socket.AF_INET
    try:
        _socket.inet_pton(fam, s)
    except (OSError, ValueError):
        raise DecodingError(f"invalid {what}", f"{s!r} is not an IP address") from None
    return s


def check_cidr(s: str, what: str) -> str:
    """Validate 'ip/prefix' (host bits allowed, as Go's IPNet keeps them)."""
    if not isinstance(s, str) or s.count("/") != 1:
        raise DecodingError(f"invalid {what}", f"{s!r} is not in CIDR notation")
    ip, plen = s.split("/")
    check_ip(ip, what)
    maxlen = 128 if ":" in ip else 32
    if not plen.isdigit() or not plen.isascii() or int(plen) > maxlen or len(plen) > 3:
        raise DecodingError(f"invalid {what}", f"{s!r} has a bad prefix length")
    return s


class _Parsed:
    """An address field kept as the text it was given (in slot `slot`) and parsed by `parse`
    on each read; with `optional`, None or '' stores None and reads back None."""
    __slots__ = ("slot", "parse", "optional")

    def __init__(self, slot: str, parse, *, optional: bool = False):
        self.slot, self.parse, self.optional = slot, parse, optional

    def __get__(self, obj, cls=None):
        if obj is None:
            return self
        text = getattr(obj, self.slot)
        return None if text is None else self.parse(text)

    def __set__(self, obj, v) -> None:
        setattr(obj, self.slot, None if self.optional and v in (None, "") else str(v))


class _Text:
    """The text of a _Parsed field without parsing it ('' when unset)."""
    __slots__ = ("slot",)

    def __init__(self, slot: str):
        self.slot = slot

    def __get__(self, obj, cls=None):
        return self if obj is None else getattr(obj, self.slot) or ""


def _interface(text: str):
    from cni import addr  # lazy: a result passed through (fastpath) never parses an address
    return addr.ip_interface(text)


def _address(text: str):
    from cni import addr  # lazy: as _interface
    return addr.ip_address(text)


def _network(text: str):
    from cni import addr  # lazy: as _interface
    return addr.ip_network(text, strict=False)


class Interface:
    """An interface the plugins created or configured (a result's `interfaces` entry).

    `sandbox` is the netns path for container-side interfaces ("" on the host);
    `mtu`, `socket_path` and `pci_id` are 1.1.0 fields (0/"" when absent).
    """
    __slots__ = ("name", "mac", "mtu", "sandbox", "socket_path", "pci_id")

    def __init__(self, name: str, mac: str = "", sandbox: str = "", *, mtu: int = 0,
                 socket_path: str = "", pci_id: str = ""):
        self.name = name
        self.mac = mac
        self.mtu = mtu
        self.sandbox = sandbox
        self.socket_path = socket_path
        self.pci_id = pci_id

    def __eq__(self, other):
        return isinstance(other, Interface) and all(
            getattr(self, a) == getattr(other, a) for a in self.__slots__)

    def __repr__(self):
        return f"Interface({self.name!r}, mac={self.mac!r}, sandbox={self.sandbox!r})"


class IPConfig:
    """One address of a result (an `ips` entry).

    `address` is a cni.addr ip_interface (host bits kept) and `gateway` an
    ip_address or None, both built on access; `address_str`/`gateway_str` give
    the strings without building address objects. `interface` indexes the result's
    `interfaces` (None when not given).
    """
    __slots__ = ("_address", "_gateway", "interface")
    address = _Parsed("_address", _interface)                # an IPv4/IPv6Interface
    gateway = _Parsed("_gateway", _address, optional=True)   # an address or None
    address_str = _Text("_address")                                   # as given: '10.1.0.2/24'
    gateway_str = _Text("_gateway")

    def __init__(self, address: str | object, gateway: str | object | None = None,
                 interface: int | None = None):
        self.address = address
        self.gateway = gateway
        self.interface = interface

    @property
    def version(self) -> int:
        """4 or 6, as the address's own version (results of 0.3.x/0.4.0 print it as a string)."""
        return 6 if ":" in self._address else 4

    def __eq__(self, other):
        return (isinstance(other, IPConfig) and self.address == other.address
                and self.gateway == other.gateway and self.interface == other.interface)

    def __repr__(self):
        return f"IPConfig({self._address!r}, gateway={self._gateway!r}, interface={self.interface!r})"


class Route:
    """One route of a result (a `routes` entry).

    `dst` is a cni.addr ip_network (host bits dropped) and `gw` an ip_address or
    None (the default gateway); `dst_str`/`gw_str` are the strings. `mtu`, `advmss`,
    `priority`, `table` and `scope` are 1.1.0 fields (0/None when absent).
    """
    __slots__ = ("_dst", "_gw", "mtu", "advmss", "priority", "table", "scope")
    dst = _Parsed("_dst", _network)                                  # an IPv4/IPv6Network
    gw = _Parsed("_gw", _address, optional=True)             # an address or None
    dst_str = _Text("_dst")
    gw_str = _Text("_gw")

    def __init__(self, dst: str | object, gw: str | object | None = None, *, mtu: int = 0,
                 advmss: int = 0, priority: int = 0, table: int | None = None,
                 scope: int | None = None):
        self.dst = dst
        self.gw = gw
        self.mtu = mtu
        self.advmss = advmss
        self.priority = priority
        self.table = table
        self.scope = scope

    @property
    def is_v6(self) -> bool:
        return ":" in self._dst

    def __eq__(self, other):
        return isinstance(other, Route) and self.dst == other.dst and self.gw == other.gw and all(
            getattr(self, a) == getattr(other, a)
            for a in ("mtu", "advmss", "priority", "table", "scope"))

    def __repr__(self):
        return f"Route({self._dst!r}, gw={self._gw!r})"


class DNS:
    """DNS settings of a result: nameservers, domain, search domains, resolver options."""
    __slots__ = ("nameservers", "domain", "search", "options")

    def __init__(self, nameservers: list[str] | None = None, domain: str = "",
                 search: list[str] | None = None, options: list[str] | None = None):
        self.nameservers = list(nameservers or [])
        self.domain = domain
        self.search = list(search or [])
        self.options = list(options or [])

    def is_empty(self) -> bool:
        """True when no field is set."""
        return not (self.nameservers or self.domain or self.search or self.options)

    def to_dict(self) -> dict:
        """The JSON object (empty fields left out)."""
        d: dict = {}
        if self.nameservers:
            d["nameservers"] = list(self.nameservers)
        if self.domain:
            d["domain"] = self.domain
        if self.search:
            d["search"] = list(self.search)
        if self.options:
            d["options"] = list(self.options)
        return d

    @classmethod
    def from_dict(cls, d: dict | None) -> DNS:
        """Parse a result's `dns` object (DecodingError, code 6, if malformed)."""
        if d is None:
            return cls()
        if not isinstance(d, dict):
            raise DecodingError("invalid dns", "dns must be an object")
        out = cls(domain=_str(d.get("domain", ""), "dns.domain"))
        for key in ("nameservers", "search", "options"):
            v = d.get(key)
            if v is None:
                continue
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise DecodingError("invalid dns", f"dns.{key} must be a list of strings")
            setattr(out, key, list(v))
        return out

    def __eq__(self, other):
        return isinstance(other, DNS) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return f"DNS({self.to_dict()!r})"


def _str(v, what: str) -> str:
    if not isinstance(v, str):
        raise DecodingError(f"invalid {what}", f"{what} must be a string")
    return v


class Result:
    """An ADD result in the spec 1.1 model, whatever version it came in.

    `cni_version` is the version it was made for; `interfaces`, `ips`, `routes`
    are lists of Interface, IPConfig and Route, `dns` a DNS. cni.convert turns it
    into the JSON of any version (to_json) and back (from_json).
    """
    __slots__ = ("cni_version", "interfaces", "ips", "routes", "dns")

    def __init__(self, cni_version: str = "1.1.0", interfaces: list[Interface] | None = None,
                 ips: list[IPConfig] | None = None, routes: list[Route] | None = None,
                 dns: DNS | None = None):
        self.cni_version = cni_version
        self.interfaces = list(interfaces or [])
        self.ips = list(ips or [])
        self.routes = list(routes or [])
        self.dns = dns if dns is not None else DNS()

    def __eq__(self, other):
        return isinstance(other, Result) and all(
            getattr(self, a) == getattr(other, a) for a in ("interfaces", "ips", "routes", "dns"))

    def __repr__(self):
        return (f"Result({self.cni_version!r}, interfaces={self.interfaces!r}, ips={self.ips!r},"
                f" routes={self.routes!r}, dns={self.dns!r})")
