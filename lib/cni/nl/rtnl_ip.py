"""Rtnl, part two: addresses, routes, rules, neighbours and GARP/NA (mixed into Rtnl)."""
from __future__ import annotations

import errno
import time

from .. import addr as _addr
from ..std.setns import Entered
from . import garp
from .codec import NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, present
from .records import Addr, Route, Rule
from .rtnl_defs import (AF_INET, AF_INET6, FIB_RULE_INVERT, FR_ACT_TO_TBL, IFA_F_DADFAILED,
                        IFA_F_NODAD, IFA_F_NOPREFIXROUTE, IFA_F_TENTATIVE, RT_SCOPE_HOST,
                        RT_SCOPE_LINK, RT_SCOPE_NOWHERE, RT_SCOPE_UNIVERSE, RT_TABLE_MAIN,
                        RTM_DELADDR, RTM_DELROUTE, RTM_DELRULE, RTM_GETADDR, RTM_GETROUTE,
                        RTM_GETRULE, RTM_NEWADDR, RTM_NEWROUTE, RTM_NEWRULE, RTN_TYPES,
                        RTNH_F_ONLINK, RTPROT_BOOT)
from .socket import NetlinkError



def _iface(v):
    """'10.0.0.1/24' | ip_interface | ip_address -> ip_interface."""
    return v if hasattr(v, "network") and hasattr(v, "ip") else _addr.ip_interface(v)


def _net(v):
    return v if hasattr(v, "prefixlen") and hasattr(v, "network_address") else \
        _addr.ip_network(v, strict=False)


def _ip(v):
    return _addr.ip_address(v) if isinstance(v, str) else v


class IpOps:
    """Layer-3 methods of Rtnl; they use self._nl, self.ns_fd and self.index/link_get (LinkOps)."""

    __slots__ = ()

    # ---- addresses
    def _addr_msg(self, ref, address, peer=None, scope=None, flags: int = 0, broadcast=True,
                  label=None) -> tuple[dict, list]:
        ifc = _iface(address)
        v4 = ifc.version == 4
        hdr = {"family": AF_INET if v4 else AF_INET6, "prefixlen": ifc.network.prefixlen,
               "flags": flags if flags <= 0xFF else 0, "index": self.index(ref)}
        if scope is not None:
            hdr["scope"] = scope
        a = [("IFA_LOCAL", ifc.ip)]                   # attribute order as iproute2 sends it
        if peer is not None:
            a.append(("IFA_ADDRESS", _ip(peer)))
        if flags > 0xFF:
            a.append(("IFA_FLAGS", flags))
        if peer is None:
            a.append(("IFA_ADDRESS", ifc.ip))
        if v4 and broadcast is True and peer is None and ifc.network.prefixlen < 31:
            a.append(("IFA_BROADCAST", ifc.network.broadcast_address))
        elif v4 and broadcast not in (True, False, None):
            a.append(("IFA_BROADCAST", _ip(broadcast)))
        if label:
            a.append(("IFA_LABEL", label))
        return hdr, a

    def addr_add(self, ref, address, *, peer=None, scope: int | None = None, nodad: bool = False,
                 noprefixroute: bool = False, broadcast=True, label: str | None = None,
                 replace: bool = False, exist_ok: bool = False) -> None:
        """Add 'ip/prefix' to a link; v4 gets the subnet broadcast like Go's netlink.AddrAdd.

        `exist_ok`: the address already being there (EEXIST) is success."""
        flags = (IFA_F_NODAD if nodad else 0) | (IFA_F_NOPREFIXROUTE if noprefixroute else 0)
        hdr, a = self._addr_msg(ref, address, peer, scope, flags, broadcast, label)
        self._request_new(RTM_NEWADDR, hdr, a,
                          NLM_F_CREATE | (NLM_F_REPLACE if replace else NLM_F_EXCL), exist_ok)

    def _request_new(self, mtype: int, hdr: dict, attrs: list, flags: int, exist_ok: bool) -> None:
        try:
            self._nl.request(mtype, hdr, attrs, flags=flags)
        except NetlinkError as e:
            if not (exist_ok and e.errno == errno.EEXIST):
                raise

    def addr_del(self, ref, address) -> None:
        ifc = _iface(address)
        hdr = {"family": AF_INET if ifc.version == 4 else AF_INET6,
               "prefixlen": ifc.network.prefixlen, "index": self.index(ref)}
        self._nl.request(RTM_DELADDR, hdr, [("IFA_LOCAL", ifc.ip), ("IFA_ADDRESS", ifc.ip)])

    def addr_list(self, ref=None, *, family: int = 0) -> list[Addr]:
        want = None if ref is None else self.index(ref)
        msgs = self._nl.dump(RTM_GETADDR, {"family": family, "index": want or 0})
        return [Addr(m) for m in msgs if want is None or m.hdr["index"] == want]

    def addr_wait_dad(self, ref, *, timeout: float = 5.0, interval: float = 0.05) -> None:
        """Wait until no IPv6 address on the link is tentative (Go's SettleAddresses).

        DADFAILED raises NetlinkError(errno.EADDRNOTAVAIL); still tentative at the deadline raises
        TimeoutError only when the link is operationally up (a down link never finishes DAD).
        """
        idx = self.index(ref)
        deadline = time.monotonic() + timeout
        while True:
            tentative = []
            for a in self.addr_list(idx, family=AF_INET6):
                if a.flags & IFA_F_DADFAILED:
                    raise NetlinkError(errno.EADDRNOTAVAIL, f"{a.ip}: duplicate address detected")
                if a.flags & IFA_F_TENTATIVE:
                    tentative.append(a)
            if not tentative:
                return
            if time.monotonic() >= deadline:
                if self.link_get(idx).operstate == "up":
                    raise TimeoutError(f"addresses still tentative: {[str(a.ip) for a in tentative]}")
                return
            time.sleep(interval)

    # ---- routes
    def _route_msg(self, dst, gw, dev, table, scope, src, metric, onlink, type, proto, mtu, advmss,
                   tos=0) -> tuple[dict, list]:
        net = _net(dst)
        v4 = net.version == 4
        t = RTN_TYPES[type] if isinstance(type, str) else type
        if scope is None:                              # as iproute2 picks it
            if t in (2, 10):                           # local, nat
                scope = RT_SCOPE_HOST
            elif t in (3, 4, 5):                       # broadcast, anycast, multicast
                scope = RT_SCOPE_LINK
            else:
                scope = RT_SCOPE_LINK if gw is None and dev is not None and t == 1 else \
                    RT_SCOPE_UNIVERSE
        table = RT_TABLE_MAIN if table is None else table
        hdr = {"family": AF_INET if v4 else AF_INET6, "dst_len": net.prefixlen, "tos": tos,
               "table": table if table < 256 else 0, "protocol": proto, "scope": scope,
               "type": t, "flags": RTNH_F_ONLINK if onlink else 0}
        a = [("RTA_DST", net.network_address)] if net.prefixlen else []
        if metric:
            a.append(("RTA_PRIORITY", metric))
        if src is not None:
            a.append(("RTA_PREFSRC", _ip(src)))
        if gw is not None:
            a.append(("RTA_GATEWAY", _ip(gw)))
        if table >= 256:
            a.append(("RTA_TABLE", table))
        if mtu or advmss:
            metrics = [("RTAX_MTU", mtu)] if mtu else []
            if advmss:
                metrics.append(("RTAX_ADVMSS", advmss))
            a.append(("RTA_METRICS", metrics))
        if dev is not None:
            a.append(("RTA_OIF", self.index(dev)))
        return hdr, a

    def route_add(self, dst, *, gw=None, dev=None, table: int | None = None, scope: int | None = None,
                  src=None, metric: int = 0, onlink: bool = False, type="unicast",
                  proto: int = RTPROT_BOOT, mtu: int = 0, advmss: int = 0, replace: bool = False,
                  append: bool = False, ecmp: bool = False, exist_ok: bool = False) -> None:
        """Add a route (`replace` like `ip route replace`, `append` adds an ECMP sibling).

        `ecmp`: NLM_F_CREATE alone, as Go's netlink.RouteAddEcmp and `ip route prepend`: a
        route to the same dst and metric through another gateway is kept beside the existing
        one (IPv6 merges it into a multipath route, IPv4 adds another route); only an
        identical route fails (EEXIST), which `exist_ok` turns into success.
        """
        hdr, a = self._route_msg(dst, gw, dev, table, scope, src, metric, onlink, type, proto, mtu,
                                 advmss)
        f = NLM_F_CREATE | (NLM_F_REPLACE if replace else NLM_F_APPEND if append else
                            0 if ecmp else NLM_F_EXCL)
        self._request_new(RTM_NEWROUTE, hdr, a, f, exist_ok)

    def route_replace(self, dst, **kw) -> None:
        self.route_add(dst, replace=True, **kw)

    def route_del(self, dst, *, gw=None, dev=None, table: int | None = None, scope=None,
                  src=None, metric: int = 0, type=0, proto: int = 0) -> None:
        """Delete a matching route; unset fields (scope, type, proto) match anything."""
        hdr, a = self._route_msg(dst, gw, dev, table, RT_SCOPE_NOWHERE if scope is None else scope,
                                 src, metric, False, type, proto, 0, 0)
        self._nl.request(RTM_DELROUTE, hdr, a)

    def route_list(self, *, family: int = 0, table: int | None = RT_TABLE_MAIN, dev=None) -> list[Route]:
        """Routes of `family` (0 = both) in `table` (None = every table), optionally on `dev`."""
        oif = None if dev is None else self.index(dev)
        out = []
        for fam in ((AF_INET, AF_INET6) if family == 0 else (family,)):
            for m in self._nl.dump(RTM_GETROUTE, {"family": fam}):
                r = Route(m)
                if (table is None or r.table == table) and (
                        oif is None or r.oif == oif or any(i == oif for _, i in r.nexthops)):
                    out.append(r)
        return out

    # ---- rules
    def _rule_msg(self, priority, src, dst, table, iif, oif, family, action, fwmark, invert):
        nets = [_net(x) for x in (src, dst) if x is not None]
        if family is None:
            family = AF_INET6 if nets and nets[0].version == 6 else AF_INET
        hdr = {"family": family, "action": action, "flags": FIB_RULE_INVERT if invert else 0}
        a = []
        if table is not None:
            hdr["table"] = table if table < 256 else 0
        if priority is not None:
            a.append(("FRA_PRIORITY", priority))
        for k, x in (("src", src), ("dst", dst)):
            if x is not None:
                n = _net(x)
                hdr[k + "_len"] = n.prefixlen
                a.append(("FRA_SRC" if k == "src" else "FRA_DST", n.network_address))
        a += present(("FRA_FWMARK", fwmark), ("FRA_IIFNAME", iif), ("FRA_OIFNAME", oif),
                     ("FRA_TABLE", table if table is not None and table >= 256 else None))
        return hdr, a

    def rule_add(self, *, priority: int | None = None, src=None, dst=None, table: int | None = None,
                 iif: str | None = None, oif: str | None = None, family: int | None = None,
                 action: int = FR_ACT_TO_TBL, fwmark: int | None = None, invert: bool = False) -> None:
        hdr, a = self._rule_msg(priority, src, dst, table, iif, oif, family, action, fwmark, invert)
        self._nl.request(RTM_NEWRULE, hdr, a, flags=NLM_F_CREATE | NLM_F_EXCL)

    def rule_del(self, *, priority: int | None = None, src=None, dst=None, table: int | None = None,
                 iif: str | None = None, oif: str | None = None, family: int | None = None,
                 action: int = 0, fwmark: int | None = None, invert: bool = False) -> None:
        """Delete the first rule matching the given fields (action 0 matches any)."""
        hdr, a = self._rule_msg(priority, src, dst, table, iif, oif, family, action, fwmark, invert)
        self._nl.request(RTM_DELRULE, hdr, a)

    def rule_list(self, *, family: int = 0) -> list[Rule]:
        out = []
        for fam in ((AF_INET, AF_INET6) if family == 0 else (family,)):
            out += [Rule(m) for m in self._nl.dump(RTM_GETRULE, {"family": fam})]
        return out

    # ---- gratuitous ARP / unsolicited neighbour advertisement
    def send_garp(self, ref, address, *, count: int = 1) -> None:
        """Announce `address` on the link: gratuitous ARP (v4) or unsolicited NA (v6)."""
        link = self.link_get(ref)
        if self.ns_fd < 0:
            garp.announce(link.index, link.mac, _ip(address), count)
        else:
            with Entered(self.ns_fd):
                garp.announce(link.index, link.mac, _ip(address), count)

