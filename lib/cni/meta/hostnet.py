"""Host-side helpers of portmap: route_localnet on the route to the container, UDP conntrack."""
from __future__ import annotations

from cni import sysctl
from cni.log import warn
from cni.nl import conntrack
from cni.nl.rtnl import Rtnl
from cni.nl.rtnl_defs import AF_INET, AF_INET6, RTN_UNICAST


def routable_host_if(ip) -> str | None:
    """Name of the link the main table routes `ip` through (longest prefix, lowest metric)."""
    with Rtnl() as h:
        best = None
        for r in h.route_list(family=AF_INET6 if ip.version == 6 else AF_INET):
            if r.oif is None or r.type != RTN_UNICAST or ip not in r.dst:   # unicast routes only
                continue
            key = (-r.dst.prefixlen, r.priority)
            if best is None or key < best[0]:
                best = (key, r.oif)
        if best is None:
            return None
        link = h.link_lookup(best[1])
        return link.name if link is not None else None


def enable_route_localnet(ip) -> None:
    """route_localnet=1 on the host interface towards a v4 container (127.0.0.1 DNAT works)."""
    name = routable_host_if(ip)
    if name:
        sysctl.ensure(f"net/ipv4/conf/{name}/route_localnet", "1", missing_ok=True)


def flush_udp_conntrack(mappings, families) -> int:
    """Delete conntrack entries whose original dst port is a mapped UDP host port.

    Errors are logged, never raised (a stale entry is not worth failing the container).
    """
    ports = sorted({m["hostPort"] for m in mappings if m["protocol"] == "udp"})
    if not ports:
        return 0
    n = 0
    try:
        with conntrack.Conntrack() as ct:
            n = ct.delete_ports(proto=conntrack.IPPROTO_UDP, dports=ports,
                                families=[AF_INET6 if fam == 6 else AF_INET for fam in families])
    except OSError as exc:
        warn(f"failed to delete stale UDP conntrack entries: {exc}")
    return n
