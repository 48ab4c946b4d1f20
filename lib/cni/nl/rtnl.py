"""Rtnl: an rtnetlink handle bound to one network namespace.

    with Rtnl(netns=ns) as h:              # socket created inside ns, then we come back
        h.veth_add("eth0", "veth1234", peer_netns=host_ns, mtu=1500)
        h.addr_add("eth0", "10.1.0.5/24")
        h.route_add("0.0.0.0/0", gw="10.1.0.1", dev="eth0")

One handle, one socket, one namespace; its methods come in parts, one file each:

    rtnl_link.py  LinkOps  links (lookup, per-kind create, set, delete), bridge ports and VLANs
    rtnl_ip.py    IpOps    addresses (and DAD), routes, rules, neighbours, GARP/NA
    tc.py         TcOps    qdiscs, htb classes, filters (and the TBF arithmetic): only in
                           rtnl_tc.TcRtnl, for the one plugin that shapes traffic (bandwidth)

Each part uses only self._nl (the NetlinkSocket), self.ns_fd and what LinkOps provides
(index, link_get). Links are referenced by name, index or Link record.
"""
from __future__ import annotations

import _socket

from ..std import setns as _std
from .rtnl_defs import MESSAGES, NETLINK_ROUTE
from .rtnl_ip import IpOps
from .rtnl_link import LinkOps, _fd
from .socket import Closing, NetlinkSocket
from ..std import oslite as os


class Rtnl(Closing, LinkOps, IpOps):
    """An rtnetlink socket; `netns` (NetNS, path or None) is where it is created and stays bound."""

    __slots__ = ("_nl", "ns_fd", "_own_fd")
    MESSAGES = MESSAGES     # what its socket decodes (TcRtnl adds tc's)

    def __init__(self, netns=None):
        # ns_fd: the namespace's fd (-1: ours); a path is opened here (the pinned fd duplicated,
        # if the call pinned it) and owned; any other namespace (a NetNS, an fd) stays the caller's
        self._own_fd = isinstance(netns, str)
        self.ns_fd = -1 if netns is None else _std.open_pinned(netns) if self._own_fd else _fd(netns)
        try:
            if netns is None:
                self._nl = NetlinkSocket(NETLINK_ROUTE, self.MESSAGES)
            else:
                sock = _std.socket_in(self.ns_fd, _socket.AF_NETLINK, _socket.SOCK_RAW, NETLINK_ROUTE)
                self._nl = NetlinkSocket(NETLINK_ROUTE, self.MESSAGES, sock=sock)
        except BaseException:
            self._close_fd()
            raise

    def _close_fd(self) -> None:
        if self._own_fd:
            os.close(self.ns_fd)
            self._own_fd = False

    def close(self) -> None:
        self._nl.close()
        self._close_fd()
