"""Links and bridge ports of the Rtnl handle (see rtnl.py): lookup, create per kind, change, delete.

Per-kind IFLA_INFO_DATA encoders sit in the `_INFO_DATA` table; creating a link returns the
kernel's view of it, re-read from the namespace it landed in.
"""
from __future__ import annotations

import errno

from .codec import NLM_F_CREATE, NLM_F_EXCL, present
from .records import Link
from .rtnl_defs import (AF_BRIDGE, BRIDGE_FLAGS_SELF, BRIDGE_VLAN_INFO_PVID,
                        BRIDGE_VLAN_INFO_UNTAGGED, IFF_ALLMULTI, IFF_PROMISC, IFF_UP, IPVLAN_FLAGS,
                        IPVLAN_MODES, MACVLAN_MODES, RTEXT_FILTER_BRVLAN,
                        RTM_DELLINK, RTM_GETLINK, RTM_NEWLINK, RTM_SETLINK, VLAN_PROTOCOLS)
from .rtnl_ip import _ip
from .schema import NoNul
from .socket import LinkNotFoundError, NetlinkError


def _fd(ns) -> int:
    return ns if isinstance(ns, int) else ns.fileno()


# ---- per-kind IFLA_INFO_DATA encoders: keyword options -> attribute list
def _bridge_data(vlan_filtering=None, vlan_default_pvid=None, stp_state=None, ageing_time=None,
                 mcast_snooping=None):
    return present(("IFLA_BR_AGEING_TIME", ageing_time), ("IFLA_BR_STP_STATE", stp_state),
                   ("IFLA_BR_VLAN_FILTERING", vlan_filtering),
                   ("IFLA_BR_VLAN_DEFAULT_PVID", vlan_default_pvid),
                   ("IFLA_BR_MCAST_SNOOPING", mcast_snooping))


def _macvlan_data(mode="bridge", flags=None, bcqueuelen=None):
    return present(("IFLA_MACVLAN_MODE", MACVLAN_MODES[mode] if isinstance(mode, str) else mode),
                   ("IFLA_MACVLAN_FLAGS", flags), ("IFLA_MACVLAN_BC_QUEUE_LEN", bcqueuelen))


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
    out += present(("IFLA_VXLAN_TTL", ttl),
                   ("IFLA_VXLAN_LEARNING", None if learning is None else int(learning)),
                   ("IFLA_VXLAN_PORT", port))
    return out


KIND_DATA = {"bridge": _bridge_data, "macvlan": _macvlan_data, "macvtap": _macvlan_data,
             "ipvlan": _ipvlan_data, "ipvtap": _ipvlan_data, "vlan": _vlan_data,
             "vrf": lambda table=0: [("IFLA_VRF_TABLE", table)], "vxlan": _vxlan_data}


def _link_common(name=None, *, link=0, mtu=0, mac=None, txqlen=None, netns=None) -> list:
    """0 and '' (link, mtu, mac, name) mean "not given", as None does."""
    return present(("IFLA_LINK", link or None), ("IFLA_MTU", mtu or None),
                   ("IFLA_ADDRESS", mac or None), ("IFLA_TXQLEN", txqlen),
                   ("IFLA_NET_NS_FD", None if netns is None else _fd(netns)),
                   ("IFLA_IFNAME", name or None))


class LinkOps:
    """Link methods of Rtnl. Uses self._nl (NetlinkSocket); provides index() and link_get()
    to the other parts (IpOps, TcOps)."""

    __slots__ = ()

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
            if e.errno in (errno.ENODEV, errno.ENOENT):
                raise LinkNotFoundError(errno.ENODEV, f"link {ref!r} not found") from None
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

    def link_del(self, ref, *, missing_ok: bool = False) -> None:
        """Delete a link; LinkNotFoundError if it does not exist, unless `missing_ok`."""
        hdr, attrs = self._ref(ref)
        try:
            self._nl.request(RTM_DELLINK, hdr, attrs)
        except NetlinkError as e:
            if e.errno != errno.ENODEV:
                raise
            if not missing_ok:
                raise LinkNotFoundError(errno.ENODEV, e.extack or f"link {ref!r} not found") from None

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
        if nomaster:
            master = 0
        elif master is not None:
            master = self.index(master)
        a = present(("IFLA_MTU", mtu), ("IFLA_ADDRESS", mac), ("IFLA_TXQLEN", txqlen),
                    ("IFLA_IFALIAS", None if alias is None else NoNul(alias)),
                    ("IFLA_IFNAME", name), ("IFLA_MASTER", master),
                    ("IFLA_NET_NS_FD", None if netns is None else _fd(netns)))
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
        with type(self)(_fd(netns)) as other:   # not owned: the caller's fd stays open
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

    def vrf_add(self, name: str, table: int, **kw) -> Link:
        return self.link_add(name, "vrf", table=table, **kw)

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
