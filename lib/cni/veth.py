"""The DEL shared by the veth plugins (bridge, ptp): the container end and its masquerade.

Kept apart from cni.ip so that plugins needing only netns/link helpers (loopback, tuning, ...)
do not carry the firewall layer into their zipapps.
"""
from __future__ import annotations

from cni.ip import global_addrs, open_netns_for_del
from cni.nl.rtnl import Rtnl


def delete_veth_and_masq(args, conf) -> None:
    """The DEL of a veth plugin (bridge, ptp) after its IPAM DEL: the masquerade rules of the
    addresses the container end has or that prevResult lists (found by chain name without
    either), then the container end itself (its host peer goes with it; a gone netns or link
    is fine).

    Rules first: the kernel frees deleted nf_tables rules after an RCU grace period, and the
    first netfilter socket released before that waits for it (5-30 ms here). Deleting a veth
    waits for a grace period too: in this order the two overlap (cni.nl.nfsock holds the
    socket, then a child releases it at exit) instead of following one another.
    """
    ns = open_netns_for_del(args.netns)
    if ns is None:
        _teardown_masq(args, conf, [])
        return
    with ns, Rtnl(ns) as h:
        link = h.link_lookup(args.ifname)
        addrs = global_addrs(h, link.index) if link is not None and conf.ip_masq else []
        _teardown_masq(args, conf, addrs)
        if link is not None:
            h.link_del(link.index, missing_ok=True)


def _teardown_masq(args, conf, addrs: list) -> None:
    if not conf.ip_masq:
        return
    from cni.fw import masq   # lazy: the firewall layer, only for an ipMasq network
    if conf.prev_result is not None:
        addrs.extend(ipc.address for ipc in conf.prev_result.ips if ipc.address not in addrs)
    masq.teardown(conf.name, args.container_id, args.ifname, addrs, conf.ip_masq_backend or None)
