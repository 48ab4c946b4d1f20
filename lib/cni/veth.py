"""The DEL shared by the veth plugins (bridge, ptp): the container end and its masquerade.

Kept apart from cni.ip so that plugins needing only netns/link helpers (loopback, tuning, ...)
do not carry the firewall layer into their zipapps.
"""
from __future__ import annotations

from cni.ip import del_link_collect_addrs, open_netns_for_del


def delete_veth_and_masq(args, conf) -> None:
    """The DEL of a veth plugin (bridge, ptp) after its IPAM DEL: remove the container end
    (its host peer goes with it; a gone netns or link is fine), then the masquerade rules of
    the addresses it had or that prevResult lists (found by chain name without either)."""
    ns = open_netns_for_del(args.netns)
    addrs = []
    if ns is not None:
        with ns:
            addrs = del_link_collect_addrs(ns, args.ifname, conf.ip_masq)
    if conf.ip_masq:
        from cni.fw import masq   # lazy: the firewall layer, only for an ipMasq network
        if conf.prev_result is not None:
            addrs.extend(ipc.address for ipc in conf.prev_result.ips if ipc.address not in addrs)
        masq.teardown(conf.name, args.container_id, args.ifname, addrs,
                      conf.ip_masq_backend or None)
