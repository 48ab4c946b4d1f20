"""ptp: a veth pair with no bridge; the host side gets the gateway address and /32 routes.

Keys (as the Go plugin): ipMasq, ipMasqBackend, mtu, ipam (required; it must
return a gateway for each address), dns.
"""
from __future__ import annotations

import errno

from cni import ipam, skel, sysctl
from cni.check import check_container_iface
from cni.config import NetConf
from cni.errors import CNIError, InvalidConfigError
from cni.ip import del_link_collect_addrs, enable_forward, open_netns, setup_veth
from cni.ipam.configure import configure_iface
from cni.nl.rtnl import Rtnl
from cni.nl.rtnl_defs import RT_SCOPE_HOST, RT_SCOPE_LINK
from cni.nl.socket import NetlinkError
from cni.rollback import on_error
from cni.types import Interface


class Config(NetConf):
    FIELDS = {
        "ipMasq": ("ip_masq", bool, False),
        "ipMasqBackend": ("ip_masq_backend", str, ""),
        "mtu": ("mtu", int, 0),
    }
    __slots__ = tuple(a for a, _, _ in FIELDS.values())

    def validate(self) -> None:
        if self.mtu < 0 or self.mtu > 65535:
            raise InvalidConfigError("invalid config", f"mtu={self.mtu}")
        if self.ip_masq_backend not in ("", "iptables", "nftables"):
            raise InvalidConfigError("invalid config",
                                     f"ipMasqBackend={self.ip_masq_backend!r} (iptables or nftables)")


def _wire_container(ns, ifname: str, result) -> None:
    """Replace the subnet route by `gw/32 scope link` + `subnet via gw`, per address (as Go)."""
    with Rtnl(ns) as h:
        idx = h.index(ifname)
        for ipc in result.ips:
            addr, gw = ipc.address, ipc.gateway
            host_len = 32 if addr.version == 4 else 128
            try:
                h.route_del(str(addr.network), dev=idx)
            except NetlinkError as exc:
                if exc.errno not in (errno.ESRCH, errno.ENOENT):  # no kernel route to remove
                    raise CNIError("failed to delete route", f"{addr.network}: {exc}") from None
            for dst, kw in ((f"{gw}/{host_len}", {"scope": RT_SCOPE_LINK}),
                            (str(addr.network), {"gw": str(gw)})):
                try:
                    h.route_add(dst, dev=idx, src=str(addr.ip), exist_ok=True, **kw)
                except NetlinkError as exc:
                    raise CNIError("failed to add route", f"{dst}: {exc}") from None


def _wire_host(host, hv, result) -> None:
    for ipc in result.ips:
        addr, gw = ipc.address, ipc.gateway
        host_len = 32 if addr.version == 4 else 128
        try:
            host.addr_add(hv.index, f"{gw}/{host_len}", nodad=addr.version == 6, exist_ok=True)
        except NetlinkError as exc:
            raise CNIError("failed to add gateway address", f"{gw} on {hv.name}: {exc}") from None
        try:
            host.route_add(f"{addr.ip}/{host_len}", dev=hv.index, scope=RT_SCOPE_HOST, exist_ok=True)
        except NetlinkError as exc:
            raise CNIError("failed to add host route", f"{addr.ip} dev {hv.name}: {exc}") from None


def add(args: skel.Args, conf: Config):
    ipam.find_delegate(conf, args)              # before any kernel work: nothing to undo
    with open_netns(args.netns) as ns, Rtnl() as host, on_error() as undo:
        result = ipam.add(conf, args, undo, [], 1)
        for ipc in result.ips:
            if not ipc.gateway_str:
                raise CNIError("IPAM result has no gateway",
                               f"ptp needs a gateway for {ipc.address_str}")
        enable_forward(any(i.version == 4 for i in result.ips),
                       any(i.version == 6 for i in result.ips))
        hv, cv = setup_veth(host, ns, args.ifname, mtu=conf.mtu)
        undo(del_link_collect_addrs, ns, args.ifname)
        result.interfaces = [Interface(hv.name, hv.mac), Interface(args.ifname, cv.mac, args.netns)]
        sysctl.ensure(f"net/ipv4/conf/{args.ifname}/arp_notify", "1", ns=ns, missing_ok=True)
        configure_iface(ns, args.ifname, result)
        _wire_container(ns, args.ifname, result)
        _wire_host(host, hv, result)
        if conf.ip_masq:
            from cni.fw import masq  # lazy: the firewall layer, only with ipMasq/macspoofchk
            ips = [ipc.address for ipc in result.ips]
            masq.setup(conf.name, args.container_id, args.ifname, ips, conf.ip_masq_backend or None)
            undo(masq.teardown, conf.name, args.container_id, args.ifname, ips,
                 conf.ip_masq_backend or None)
        result.interfaces[0].mac = host.link_get(hv.index).mac
    return result


def delete(args: skel.Args, conf: Config) -> None:
    from cni.veth import delete_veth_and_masq  # lazy: carries the firewall layer (masq)
    if conf.ipam_type():
        ipam.exec_del(conf, args)
    delete_veth_and_masq(args, conf)


def check(args: skel.Args, conf: Config) -> None:
    ipam.exec_check(conf, args)
    if conf.prev_result is None:
        raise CNIError("required prevResult missing", "CHECK needs the ADD result")
    with open_netns(args.netns) as ns:
        check_container_iface(ns, args, conf.prev_result, kind="veth")
    if conf.ip_masq and conf.prev_result.ips:
        from cni.fw import masq  # lazy: the firewall layer, only with ipMasq/macspoofchk
        masq.check(conf.name, args.container_id, args.ifname,
                   [i.address for i in conf.prev_result.ips], conf.ip_masq_backend or None)


def status(args: skel.Args, conf: Config) -> None:
    ipam.exec_status(conf, args)


def gc(args: skel.Args, conf: Config) -> None:
    ipam.exec_gc(conf, args)
    if conf.ip_masq:
        from cni.meta import valid_attachments  # lazy: GC only
        valid = valid_attachments(conf)
        if valid is not None:  # no list: nothing is known to be stale
            from cni.fw import masq  # lazy: the firewall layer, only with ipMasq/macspoofchk
            masq.gc(conf.name, valid, conf.ip_masq_backend or None)


PLUGIN = skel.Plugin("ptp", Config, add=add, delete=delete, check=check, status=status, gc=gc,
                     embeds=ipam.EMBEDDABLE)
main = PLUGIN.main

if __name__ == "__main__":
    main()
