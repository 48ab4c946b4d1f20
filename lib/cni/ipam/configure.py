"""Apply an IPAM result to an interface inside a netns (Go's ipam.ConfigureIface)."""
from __future__ import annotations

from cni import sysctl
from cni.errors import CNIError
from cni.nl.rtnl import Rtnl
from cni.nl.socket import NetlinkError


def configure_iface(ns, ifname: str, result, *, rtnl=None, wait_dad: bool = True) -> None:
    """Addresses, link up, IPv6 DAD wait, then routes (gateway defaults per family).

    Only the result's IPs whose `interface` index names `ifname` are applied.
    """
    if not result.interfaces:
        raise CNIError("no interfaces to configure", f"the result has none for {ifname}")
    own = rtnl is None
    h = Rtnl(ns) if own else rtnl
    try:
        link = h.link_get(ifname)
        gw4 = gw6 = None
        v6 = False
        for ip in result.ips:
            if ip.interface is None:
                continue
            if not 0 <= ip.interface < len(result.interfaces):
                raise CNIError("invalid result", f"ips interface index {ip.interface} out of range")
            if result.interfaces[ip.interface].name != ifname:
                raise CNIError("invalid result",
                               f"IP {ip.address_str} is for {result.interfaces[ip.interface].name},"
                               f" not {ifname}")
            if ip.version == 6 and not v6:
                v6 = True
                for dev in ("lo", ifname):
                    if sysctl.get(f"net/ipv6/conf/{dev}/disable_ipv6", ns=ns) not in (None, "0"):
                        sysctl.ensure(f"net/ipv6/conf/{dev}/disable_ipv6", "0", ns=ns, missing_ok=True)
                sysctl.ensure(f"net/ipv6/conf/{ifname}/keep_addr_on_down", "1", ns=ns, missing_ok=True)
            try:
                h.addr_add(link.index, ip.address_str, exist_ok=True)
            except NetlinkError as exc:
                raise CNIError("failed to add IP address",
                               f"{ip.address_str} on {ifname}: {exc}") from None
            if ip.gateway_str:
                if ip.version == 4 and gw4 is None:
                    gw4 = ip.gateway_str
                elif ip.version == 6 and gw6 is None:
                    gw6 = ip.gateway_str
        h.link_up(link.index)
        if v6 and wait_dad:
            try:
                h.addr_wait_dad(link.index)
            except (NetlinkError, TimeoutError) as exc:
                raise CNIError("IPv6 duplicate address detection failed", f"{ifname}: {exc}") from None
        for r in result.routes:
            gw = r.gw_str or (gw6 if r.is_v6 else gw4)
            try:
                # same dst, other gateway (ECMP): kept beside the first, as Go's RouteAddEcmp
                h.route_add(r.dst_str, gw=gw or None, dev=link.index, metric=r.priority or 0,
                            table=r.table, scope=r.scope, ecmp=True, exist_ok=True)
            except NetlinkError as exc:
                raise CNIError("failed to add route",
                               f"{r.dst_str} via {gw or '-'} dev {ifname}: {exc}") from None
    finally:
        if own:
            h.close()
