"""Rtnl: an rtnetlink handle bound to one network namespace.

    with Rtnl(netns=ns) as h:              # socket created inside ns, then we come back
        h.veth_add("eth0", "veth1234", peer_netns=host_ns, mtu=1500)
        h.addr_add("eth0", "10.1.0.5/24")
        h.route_add("0.0.0.0/0", gw="10.1.0.1", dev="eth0")

Links are referenced by name, index or Link record. Creating a link returns the kernel's view of
it (re-read from the namespace it landed in). tc lives in `tc.py`, GARP/NA in `garp.py`.
"""
from __future__ import annotations

import time

from .codec import NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE
from .records import Addr, Link, Neigh, Route, Rule
from .schema import NoNul
from .rtnl_defs import (AF_BRIDGE, AF_INET, AF_INET6, BRIDGE_FLAGS_SELF, BRIDGE_VLAN_INFO_PVID,
                        BRIDGE_VLAN_INFO_UNTAGGED, FIB_RULE_INVERT, FR_ACT_TO_TBL, IFA_F_DADFAILED,
                        IFA_F_NODAD, IFA_F_NOPREFIXROUTE, IFA_F_TENTATIVE, IFF_ALLMULTI, IFF_PROMISC,
                        IFF_UP, IPVLAN_FLAGS, IPVLAN_MODES, MACVLAN_MODES, MESSAGES, NETLINK_ROUTE,
                        NUD_PERMANENT, RT_SCOPE_HOST, RT_SCOPE_LINK, RT_SCOPE_NOWHERE,
                        RT_SCOPE_UNIVERSE,
                        RT_TABLE_MAIN, RTEXT_FILTER_BRVLAN, RTM_DELADDR, RTM_DELLINK, RTM_DELNEIGH,
                        RTM_DELROUTE, RTM_DELRULE, RTM_GETADDR, RTM_GETLINK, RTM_GETNEIGH,
                        RTM_GETROUTE, RTM_GETRULE, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWNEIGH,
                        RTM_NEWROUTE, RTM_NEWRULE, RTM_SETLINK, RTN_TYPES, RTNH_F_ONLINK,
                        RTPROT_BOOT, VLAN_PROTOCOLS)
from .socket import LinkNotFoundError, NetlinkError, NetlinkSocket
from .tc import TcMixin

AF_NETLINK, SOCK_RAW = 16, 3

ENODEV, ENOENT, EADDRNOTAVAIL = 19, 2, 99
_ipaddress = None


def _ipm():
    global _ipaddress
    if _ipaddress is None:
        import ipaddress
        _ipaddress = ipaddress
    return _ipaddress


def _iface(v):
    """'10.0.0.1/24' | ip_interface | ip_address -> ip_interface."""
    return v if hasattr(v, "network") and hasattr(v, "ip") else _ipm().ip_interface(v)


def _net(v):
    return v if hasattr(v, "prefixlen") and hasattr(v, "network_address") else \
        _ipm().ip_network(v, strict=False)


def _ip(v):
    return _ipm().ip_address(v) if isinstance(v, str) else v


def _fd(ns) -> int:
    return ns if isinstance(ns, int) else ns.fileno()


# ---- per-kind IFLA_INFO_DATA encoders: keyword options -> attribute list
def _bridge_data(vlan_filtering=None, vlan_default_pvid=None, stp_state=None, ageing_time=None,
                 mcast_snooping=None):
    return [(n, v) for n, v in (("IFLA_BR_AGEING_TIME", ageing_time), ("IFLA_BR_STP_STATE", stp_state),
                                ("IFLA_BR_VLAN_FILTERING", vlan_filtering),
                                ("IFLA_BR_VLAN_DEFAULT_PVID", vlan_default_pvid),
                                ("IFLA_BR_MCAST_SNOOPING", mcast_snooping)) if v is not None]


def _macvlan_data(mode="bridge", flags=None, bcqueuelen=None):
    out = [("IFLA_MACVLAN_MODE", MACVLAN_MODES[mode] if isinstance(mode, str) else mode)]
    if flags is not None:
        out.append(("IFLA_MACVLAN_FLAGS", flags))
    if bcqueuelen is not None:
        out.append(("IFLA_MACVLAN_BC_QUEUE_LEN", bcqueuelen))
    return out


def _ipvlan_data(mode="l2", flags="bridge"):
    return [("IFLA_IPVLAN_MODE", IPVLAN_MODES[mode] if isinstance(mode, str) else mode),
            ("IFLA_IPVLAN_FLAGS", IPVLAN_FLAGS[flags] if isinstance(flags, str) else flags)]


def _vlan_data(vlan_id=0, protocol=None):
    out = [("IFLA_VLAN_ID", vlan_id)]
    if protocol is not None:
        out.append(("IFLA_VLAN_PROTOCOL", VLAN_PROTOCOLS[protocol.lower()]
                    if isinstance(protocol, str) else protocol))
    return out


def _vxlan_data(vni=0, link=None, local=None, group=None, ttl=None, learning=None, port=None):
    out = []
    if link is not None:
        out.append(("IFLA_VXLAN_LINK", link))
    out.append(("IFLA_VXLAN_ID", vni))
    for name4, name6, v in (("IFLA_VXLAN_GROUP", "IFLA_VXLAN_GROUP6", group),
                            ("IFLA_VXLAN_LOCAL", "IFLA_VXLAN_LOCAL6", local)):
        if v is not None:
            v = _ip(v)
            out.append((name4 if v.version == 4 else name6, v))
    if ttl is not None:
        out.append(("IFLA_VXLAN_TTL", ttl))
    if learning is not None:
        out.append(("IFLA_VXLAN_LEARNING", int(learning)))
    if port is not None:
        out.append(("IFLA_VXLAN_PORT", port))
    return out


KIND_DATA = {"bridge": _bridge_data, "macvlan": _macvlan_data, "macvtap": _macvlan_data,
             "ipvlan": _ipvlan_data, "ipvtap": _ipvlan_data, "vlan": _vlan_data,
             "vrf": lambda table=0: [("IFLA_VRF_TABLE", table)], "vxlan": _vxlan_data}


def _link_common(name=None, *, link=0, mtu=0, mac=None, txqlen=None, netns=None) -> list:
    a = []
    if link:
        a.append(("IFLA_LINK", link))
    if mtu:
        a.append(("IFLA_MTU", mtu))
    if mac:
        a.append(("IFLA_ADDRESS", mac))
    if txqlen is not None:
        a.append(("IFLA_TXQLEN", txqlen))
    if netns is not None:
        a.append(("IFLA_NET_NS_FD", _fd(netns)))
    if name:
        a.append(("IFLA_IFNAME", name))
    return a


class Rtnl(TcMixin):
    """An rtnetlink socket; `netns` (NetNS, path or None) is where it is created and stays bound."""

    __slots__ = ("_nl", "netns", "_own_ns")

    def __init__(self, netns=None):
        self._own_ns = False
        if isinstance(netns, str):
            from ..netns import NetNS
            netns, self._own_ns = NetNS.open(netns), True
        self.netns = netns
        try:
            if netns is None:
                self._nl = NetlinkSocket(NETLINK_ROUTE, MESSAGES)
            else:
                sock = netns.socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)
                self._nl = NetlinkSocket(NETLINK_ROUTE, MESSAGES, sock=sock)
        except BaseException:
            if self._own_ns:
                netns.close()
            raise

    def close(self) -> None:
        self._nl.close()
        if self._own_ns:
            self.netns.close()
            self._own_ns = False

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- links
    def link_get(self, ref) -> Link:
        """The link named/indexed `ref`; LinkNotFoundError if there is none."""
        if isinstance(ref, Link):
            ref = ref.index
        if isinstance(ref, int):
            hdr, attrs = {"index": ref}, []
        else:
            hdr, attrs = {}, [("IFLA_IFNAME", ref)]
        try:
            msgs = self._nl.request(RTM_GETLINK, hdr, attrs)
        except NetlinkError as e:
            if e.errno in (ENODEV, ENOENT):
                raise LinkNotFoundError(ENODEV, f"link {ref!r} not found") from None
            raise
        return Link(msgs[0])

    def link_lookup(self, ref) -> Link | None:
        """Like link_get, but None when the link does not exist."""
        try:
            return self.link_get(ref)
        except LinkNotFoundError:
            return None

    def link_list(self, *, kind: str | None = None, master=None) -> list[Link]:
        attrs = []
        if master is not None:
            attrs.append(("IFLA_MASTER", self.index(master)))
        if kind is not None:
            attrs.append(("IFLA_LINKINFO", [("IFLA_INFO_KIND", kind)]))
        links = [Link(m) for m in self._nl.dump(RTM_GETLINK, {}, attrs)]
        return [lk for lk in links if kind is None or lk.kind == kind]

    def index(self, ref) -> int:
        if isinstance(ref, int):
            return ref
        if isinstance(ref, Link):
            return ref.index
        return self.link_get(ref).index

    def link_del(self, ref) -> None:
        """Delete a link; LinkNotFoundError if it does not exist."""
        hdr, attrs = self._ref(ref)
        try:
            self._nl.request(RTM_DELLINK, hdr, attrs)
        except NetlinkError as e:
            if e.errno == ENODEV:
                raise LinkNotFoundError(ENODEV, e.extack or f"link {ref!r} not found") from None
            raise

    def _ref(self, ref) -> tuple[dict, list]:
        if isinstance(ref, Link):
            ref = ref.index
        return ({"index": ref}, []) if isinstance(ref, int) else ({}, [("IFLA_IFNAME", ref)])

    def link_set(self, ref, *, up: bool | None = None, mtu: int | None = None, mac: str | None = None,
                 txqlen: int | None = None, promisc: bool | None = None,
                 allmulti: bool | None = None, alias: str | None = None, name: str | None = None,
                 master=None, nomaster: bool = False, netns=None) -> None:
        """Change link attributes in one RTM_NEWLINK; `netns` (NetNS or fd) moves the link."""
        hdr = {"index": self.index(ref)}
        flags = change = 0
        for on, bit in ((up, IFF_UP), (promisc, IFF_PROMISC), (allmulti, IFF_ALLMULTI)):
            if on is not None:
                change |= bit
                flags |= bit if on else 0
        if change:
            hdr["flags"], hdr["change"] = flags, change
        a = []
        if mtu is not None:
            a.append(("IFLA_MTU", mtu))
        if mac is not None:
            a.append(("IFLA_ADDRESS", mac))
        if txqlen is not None:
            a.append(("IFLA_TXQLEN", txqlen))
        if alias is not None:
            a.append(("IFLA_IFALIAS", NoNul(alias)))
        if name is not None:
            a.append(("IFLA_IFNAME", name))
        if master is not None or nomaster:
            a.append(("IFLA_MASTER", 0 if nomaster else self.index(master)))
        if netns is not None:
            a.append(("IFLA_NET_NS_FD", _fd(netns)))
        self._nl.request(RTM_NEWLINK, hdr, a)

    def link_up(self, ref) -> None:
        self.link_set(ref, up=True)

    def link_down(self, ref) -> None:
        self.link_set(ref, up=False)

    def link_add(self, name: str, kind: str, *, parent=None, mtu: int = 0, mac: str | None = None,
                 txqlen: int | None = None, netns=None, data=None, **opts) -> Link:
        """Create a link of `kind`; kind options go through KIND_DATA[kind] (or raw `data`).

        With `netns` (NetNS or fd) the link is created directly in that namespace.
        """
        if data is None and kind in KIND_DATA:
            data = KIND_DATA[kind](**opts)
        elif opts:
            raise TypeError(f"{kind}: unexpected options {sorted(opts)}")
        info = [("IFLA_INFO_KIND", NoNul(kind))]           # unterminated, as iproute2 and Go send it
        if data:
            info.append(("IFLA_INFO_DATA", data))
        link = self.index(parent) if parent is not None else 0
        attrs = _link_common(name, link=link, mtu=mtu, mac=mac, txqlen=txqlen, netns=netns)
        attrs.append(("IFLA_LINKINFO", info))
        self._nl.request(RTM_NEWLINK, {}, attrs, flags=NLM_F_CREATE | NLM_F_EXCL)
        return self._reread(name, netns)

    def _reread(self, name: str, netns) -> Link:
        if netns is None:
            return self.link_get(name)
        from ..netns import NetNS
        with Rtnl(NetNS(_fd(netns))) as other:   # not owned: the caller's fd stays open
            return other.link_get(name)

    def veth_add(self, name: str, peer_name: str, *, peer_netns=None, mtu: int = 0,
                 mac: str | None = None, peer_mac: str | None = None, peer_mtu: int | None = None,
                 netns=None, txqlen: int | None = None) -> Link:
        """Create a veth pair; the peer is created directly in `peer_netns` under its final name."""
        peer = _link_common(peer_name, mtu=mtu if peer_mtu is None else peer_mtu, mac=peer_mac,
                            netns=peer_netns)
        attrs = _link_common(name, mtu=mtu, mac=mac, txqlen=txqlen, netns=netns)
        attrs.append(("IFLA_LINKINFO", [("IFLA_INFO_KIND", NoNul("veth")),
                                        ("IFLA_INFO_DATA", [("VETH_INFO_PEER", ({}, peer))])]))
        self._nl.request(RTM_NEWLINK, {}, attrs, flags=NLM_F_CREATE | NLM_F_EXCL)
        return self._reread(name, netns)

    def bridge_add(self, name: str, *, mtu: int = 0, mac: str | None = None, **opts) -> Link:
        return self.link_add(name, "bridge", mtu=mtu, mac=mac, **opts)

    def macvlan_add(self, name: str, parent, *, mode="bridge", kind: str = "macvlan", **kw) -> Link:
        """macvlan or macvtap (kind=) in any mode (private|vepa|bridge|passthru|source)."""
        return self.link_add(name, kind, parent=parent, mode=mode, **kw)

    def ipvlan_add(self, name: str, parent, *, mode="l2", flags="bridge", kind: str = "ipvlan",
                   **kw) -> Link:
        return self.link_add(name, kind, parent=parent, mode=mode, flags=flags, **kw)

    def vlan_add(self, name: str, parent, vlan_id: int, *, protocol=None, **kw) -> Link:
        return self.link_add(name, "vlan", parent=parent, vlan_id=vlan_id, protocol=protocol, **kw)

    def vrf_add(self, name: str, table: int, **kw) -> Link:
        return self.link_add(name, "vrf", table=table, **kw)

    def vxlan_add(self, name: str, vni: int, *, dev=None, **kw) -> Link:
        """vxlan; `dev` is the underlay link, `local`/`group` v4 or v6, `port` the UDP port."""
        if dev is not None:
            kw["link"] = self.index(dev)
        return self.link_add(name, "vxlan", vni=vni, **kw)

    def dummy_add(self, name: str, **kw) -> Link:
        return self.link_add(name, "dummy", **kw)

    def ifb_add(self, name: str, **kw) -> Link:
        return self.link_add(name, "ifb", **kw)

    # ---- bridge ports and VLANs
    def bridge_port_set(self, ref, *, hairpin: bool | None = None, learning: bool | None = None,
                        isolated: bool | None = None, flood: bool | None = None) -> None:
        """Set bridge-port options through IFLA_PROTINFO (AF_BRIDGE RTM_SETLINK)."""
        opts = []
        for n, v in (("IFLA_BRPORT_MODE", hairpin), ("IFLA_BRPORT_LEARNING", learning),
                     ("IFLA_BRPORT_UNICAST_FLOOD", flood), ("IFLA_BRPORT_ISOLATED", isolated)):
            if v is not None:
                opts.append((n, int(v)))
        if opts:
            self._nl.request(RTM_SETLINK, {"family": AF_BRIDGE, "index": self.index(ref)},
                             [("IFLA_PROTINFO", opts)])

    def bridge_port_get(self, ref):
        """The IFLA_BRPORT_* attributes of a bridge port (from its bridge_slave link info)."""
        return self.link_get(ref).slave_info

    def bridge_vlan_add(self, ref, vid: int, *, pvid: bool = False, untagged: bool = False,
                        self_: bool = False) -> None:
        self._bridge_vlan(RTM_SETLINK, ref, vid, pvid, untagged, self_)

    def bridge_vlan_del(self, ref, vid: int, *, self_: bool = False) -> None:
        self._bridge_vlan(RTM_DELLINK, ref, vid, False, False, self_)

    def _bridge_vlan(self, mtype, ref, vid, pvid, untagged, self_) -> None:
        spec = []
        if self_:
            spec.append(("IFLA_BRIDGE_FLAGS", BRIDGE_FLAGS_SELF))
        flags = (BRIDGE_VLAN_INFO_PVID if pvid else 0) | (BRIDGE_VLAN_INFO_UNTAGGED if untagged else 0)
        spec.append(("IFLA_BRIDGE_VLAN_INFO", {"flags": flags, "vid": vid}))
        self._nl.request(mtype, {"family": AF_BRIDGE, "index": self.index(ref)},
                         [("IFLA_AF_SPEC", spec)])

    def bridge_vlan_list(self, ref=None) -> dict[int, list[tuple[int, int]]]:
        """{ifindex: [(vid, BRIDGE_VLAN_INFO_* flags), ...]} for bridges and ports."""
        msgs = self._nl.dump(RTM_GETLINK, {"family": AF_BRIDGE},
                             [("IFLA_EXT_MASK", RTEXT_FILTER_BRVLAN)])
        want = None if ref is None else self.index(ref)
        out: dict[int, list] = {}
        for m in msgs:
            spec = m.attrs.get("IFLA_AF_SPEC")
            if (want is not None and m.hdr["index"] != want) or not spec:
                continue
            out[m.hdr["index"]] = [(v["vid"], v["flags"]) for v in spec.get_all("IFLA_BRIDGE_VLAN_INFO")]
        return out

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
                 replace: bool = False) -> None:
        """Add 'ip/prefix' to a link; v4 gets the subnet broadcast like Go's netlink.AddrAdd."""
        flags = (IFA_F_NODAD if nodad else 0) | (IFA_F_NOPREFIXROUTE if noprefixroute else 0)
        hdr, a = self._addr_msg(ref, address, peer, scope, flags, broadcast, label)
        self._nl.request(RTM_NEWADDR, hdr, a,
                         flags=NLM_F_CREATE | (NLM_F_REPLACE if replace else NLM_F_EXCL))

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

        DADFAILED raises NetlinkError(EADDRNOTAVAIL); still tentative at the deadline raises
        TimeoutError only when the link is operationally up (a down link never finishes DAD).
        """
        idx = self.index(ref)
        deadline = time.monotonic() + timeout
        while True:
            tentative = []
            for a in self.addr_list(idx, family=AF_INET6):
                if a.flags & IFA_F_DADFAILED:
                    raise NetlinkError(EADDRNOTAVAIL, f"{a.ip}: duplicate address detected")
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
                  append: bool = False) -> None:
        """Add a route (`replace` like `ip route replace`, `append` adds an ECMP sibling)."""
        hdr, a = self._route_msg(dst, gw, dev, table, scope, src, metric, onlink, type, proto, mtu,
                                 advmss)
        f = NLM_F_CREATE | (NLM_F_REPLACE if replace else NLM_F_APPEND if append else NLM_F_EXCL)
        self._nl.request(RTM_NEWROUTE, hdr, a, flags=f)

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
                if (table is None or r.table == table) and (oif is None or r.oif == oif):
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
        if fwmark is not None:
            a.append(("FRA_FWMARK", fwmark))
        if iif is not None:
            a.append(("FRA_IIFNAME", iif))
        if oif is not None:
            a.append(("FRA_OIFNAME", oif))
        if table is not None and table >= 256:
            a.append(("FRA_TABLE", table))
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

    # ---- neighbours
    def neigh_list(self, ref=None, *, family: int = 0) -> list[Neigh]:
        want = None if ref is None else self.index(ref)
        msgs = self._nl.dump(RTM_GETNEIGH, {"family": family},
                             [("NDA_IFINDEX", want)] if want else [])
        return [Neigh(m) for m in msgs if want is None or m.hdr["ifindex"] == want]

    def neigh_add(self, ref, dst, lladdr: str, *, state: int = NUD_PERMANENT,
                  replace: bool = False) -> None:
        ip = _ip(dst)
        self._nl.request(RTM_NEWNEIGH, {"family": AF_INET if ip.version == 4 else AF_INET6,
                                        "ifindex": self.index(ref), "state": state},
                         [("NDA_DST", ip), ("NDA_LLADDR", lladdr)],
                         flags=NLM_F_CREATE | (NLM_F_REPLACE if replace else NLM_F_EXCL))

    def neigh_del(self, ref, dst) -> None:
        ip = _ip(dst)
        self._nl.request(RTM_DELNEIGH, {"family": AF_INET if ip.version == 4 else AF_INET6,
                                        "ifindex": self.index(ref)}, [("NDA_DST", ip)])

    # ---- gratuitous ARP / unsolicited neighbour advertisement
    def send_garp(self, ref, address, *, count: int = 1) -> None:
        """Announce `address` on the link: gratuitous ARP (v4) or unsolicited NA (v6)."""
        from . import garp
        link = self.link_get(ref)
        if self.netns is None:
            garp.announce(link.index, link.mac, _ip(address), count)
        else:
            with self.netns.enter():
                garp.announce(link.index, link.mac, _ip(address), count)

