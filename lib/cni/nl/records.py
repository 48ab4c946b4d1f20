"""Slotted records decoded from rtnetlink messages (links, addresses, routes, rules, neighbours, tc)."""
from __future__ import annotations

import struct

from .. import addr as _addr
from .rtnl_defs import (IFF_ALLMULTI, IFF_PROMISC, IFF_UP, OPERSTATES)


class _Rec:
    """A record read from one message by its tables: `_HDR` maps a slot to its header field,
    `_ATTRS` a slot to its attribute (None when absent); a subclass's __init__ adds the rest."""
    __slots__ = ()
    _HDR: dict = {}
    _ATTRS: dict = {}

    def __init__(self, msg):
        h, a = msg.hdr, msg.attrs
        self.msg = msg
        for slot, field in self._HDR.items():
            setattr(self, slot, h[field])
        for slot, name in self._ATTRS.items():
            setattr(self, slot, a.get(name))

    def __repr__(self) -> str:
        body = ", ".join(f"{s}={getattr(self, s)!r}" for s in self.__slots__ if s != "msg")
        return f"{type(self).__name__}({body})"


class Link(_Rec):
    """A network interface as the kernel reports it (`info` = IFLA_INFO_DATA attributes)."""

    __slots__ = ("index", "name", "kind", "mtu", "mac", "flags", "master", "operstate", "link",
                 "netnsid", "alias", "txqlen", "info", "slave_kind", "slave_info", "promiscuity",
                 "msg")
    _HDR = {"index": "index", "flags": "flags"}
    _BY_ATTR = {"IFLA_IFNAME": "name", "IFLA_MTU": "mtu", "IFLA_ADDRESS": "mac",
                "IFLA_MASTER": "master", "IFLA_LINK": "link", "IFLA_LINK_NETNSID": "netnsid",
                "IFLA_IFALIAS": "alias", "IFLA_TXQLEN": "txqlen", "IFLA_PROMISCUITY": "promiscuity"}

    def __init__(self, msg):
        super().__init__(msg)
        self.name = self.kind = self.mac = self.alias = self.slave_kind = None
        self.mtu = self.master = self.txqlen = self.promiscuity = 0
        self.operstate = "unknown"
        self.link = self.netnsid = None
        self.info = self.slave_info = None
        for k, v in msg.attrs:
            slot = self._BY_ATTR.get(k)
            if slot is not None:
                setattr(self, slot, v)
            elif k == "IFLA_OPERSTATE":
                self.operstate = OPERSTATES[v] if v < len(OPERSTATES) else str(v)
            elif k == "IFLA_LINKINFO" and not isinstance(v, bytes):
                self.kind = v.get("IFLA_INFO_KIND")
                self.info = v.get("IFLA_INFO_DATA")
                self.slave_kind = v.get("IFLA_INFO_SLAVE_KIND")
                self.slave_info = v.get("IFLA_INFO_SLAVE_DATA")

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)

    @property
    def promisc(self) -> bool:
        return bool(self.flags & IFF_PROMISC)

    @property
    def allmulti(self) -> bool:
        return bool(self.flags & IFF_ALLMULTI)


class Addr(_Rec):
    """An interface address; `ip` is the local address, `interface` the ip_interface (ip/prefix)."""

    __slots__ = ("index", "family", "prefixlen", "flags", "scope", "ip", "peer", "broadcast",
                 "label", "msg")
    _HDR = {"index": "index", "family": "family", "prefixlen": "prefixlen", "scope": "scope"}
    _ATTRS = {"broadcast": "IFA_BROADCAST", "label": "IFA_LABEL"}

    def __init__(self, msg):
        super().__init__(msg)
        h, a = msg.hdr, msg.attrs
        self.flags = a.get("IFA_FLAGS", h["flags"])
        addr, local = a.get("IFA_ADDRESS"), a.get("IFA_LOCAL")
        self.ip = local if local is not None else addr
        self.peer = addr if local is not None and addr != local else None

    @property
    def interface(self):
        return _addr.ip_interface(f"{self.ip}/{self.prefixlen}")


class Route(_Rec):
    """A route; `dst` is an ip_network (0.0.0.0/0 or ::/0 for the default route)."""

    __slots__ = ("family", "dst", "src", "gw", "oif", "iif", "table", "scope", "proto", "type",
                 "priority", "prefsrc", "flags", "tos", "mtu", "advmss", "nexthops", "msg")
    _HDR = {"family": "family", "scope": "scope", "proto": "protocol", "type": "type",
            "flags": "flags", "tos": "tos"}
    _ATTRS = {"gw": "RTA_GATEWAY", "oif": "RTA_OIF", "iif": "RTA_IIF", "prefsrc": "RTA_PREFSRC"}

    def __init__(self, msg):
        super().__init__(msg)
        h, a = msg.hdr, msg.attrs
        self.table = a.get("RTA_TABLE", h["table"])
        d = a.get("RTA_DST")
        if d is None:
            d = "0.0.0.0" if self.family == 2 else "::"
        self.dst = _addr.ip_network(f"{d}/{h['dst_len']}", strict=False)
        s = a.get("RTA_SRC")
        self.src = _addr.ip_network(f"{s}/{h['src_len']}", strict=False) if s is not None else None
        self.priority = a.get("RTA_PRIORITY", 0)
        m = a.get("RTA_METRICS")
        self.mtu = m.get("RTAX_MTU", 0) if m else 0
        self.advmss = m.get("RTAX_ADVMSS", 0) if m else 0
        mp = a.get("RTA_MULTIPATH")
        self.nexthops = _nexthops(mp) if mp else []


_RTA_GATEWAY = 5


def _nexthops(buf) -> list:
    """RTA_MULTIPATH: [(gateway address or None, ifindex)] from its struct rtnexthop list."""
    out, off, end = [], 0, len(buf)
    while off + 8 <= end:
        ln, _flags, _hops, ifindex = struct.unpack_from("=HBBi", buf, off)
        if ln < 8:
            break
        gw, a, a_end = None, off + 8, min(off + ln, end)
        while a + 4 <= a_end:
            alen, atype = struct.unpack_from("=HH", buf, a)
            if alen < 4:
                break
            if atype & 0x3FFF == _RTA_GATEWAY and alen in (8, 20):
                gw = _addr.ip_address(bytes(buf[a + 4:a + alen]))
            a += (alen + 3) & ~3
        out.append((gw, ifindex))
        off += (ln + 3) & ~3
    return out


class Rule(_Rec):
    """A policy routing rule."""

    __slots__ = ("family", "priority", "src", "dst", "table", "iif", "oif", "action", "flags",
                 "fwmark", "msg")
    _HDR = {"family": "family", "action": "action", "flags": "flags"}
    _ATTRS = {"iif": "FRA_IIFNAME", "oif": "FRA_OIFNAME", "fwmark": "FRA_FWMARK"}

    def __init__(self, msg):
        super().__init__(msg)
        h, a = msg.hdr, msg.attrs
        self.table = a.get("FRA_TABLE", h["table"])
        self.priority = a.get("FRA_PRIORITY", 0)
        s, d = a.get("FRA_SRC"), a.get("FRA_DST")
        self.src = _addr.ip_network(f"{s}/{h['src_len']}", strict=False) if s is not None else None
        self.dst = _addr.ip_network(f"{d}/{h['dst_len']}", strict=False) if d is not None else None


class Tc(_Rec):
    """A qdisc, class or filter; `options` are the decoded TCA_OPTIONS attributes."""

    __slots__ = ("index", "handle", "parent", "info", "kind", "options", "msg")
    _HDR = {"index": "ifindex", "handle": "handle", "parent": "parent", "info": "info"}
    _ATTRS = {"kind": "TCA_KIND", "options": "TCA_OPTIONS"}

    @property
    def prio(self) -> int:
        return self.info >> 16

    @property
    def protocol(self) -> int:
        p = self.info & 0xFFFF
        return ((p & 0xFF) << 8) | (p >> 8)
