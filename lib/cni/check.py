"""CHECK helpers: compare a prevResult with the kernel state inside the container."""
from __future__ import annotations

from cni.errors import CNIError
from cni.nl.rtnl import Rtnl


def find_container_iface(args, prev):
    """The prevResult interface named CNI_IFNAME; its sandbox must be CNI_NETNS."""
    for i, itf in enumerate(prev.interfaces):
        if itf.name == args.ifname:
            if itf.sandbox != args.netns:
                raise CNIError("sandbox mismatch",
                               f"{itf.name}: prevResult has {itf.sandbox!r}, not {args.netns!r}")
            return i, itf
    raise CNIError("interface not in prevResult", f"{args.ifname} is not listed in prevResult")


def check_container_iface(ns, args, prev, *, kind: str | None = None) -> int:
    """Check the container link (kind, MAC, addresses, routes). Returns its peer ifindex."""
    idx, itf = find_container_iface(args, prev)
    with Rtnl(ns) as h:
        link = h.link_lookup(args.ifname)
        if link is None:
            raise CNIError("container interface missing", f"{args.ifname} in {args.netns}")
        if kind and link.kind != kind:
            raise CNIError("container interface has the wrong type",
                           f"{args.ifname} is {link.kind}, expected {kind}")
        if itf.mac and (link.mac or "").lower() != itf.mac.lower():
            raise CNIError("container interface MAC mismatch",
                           f"{args.ifname} has {link.mac}, prevResult says {itf.mac}")
        ips = [ip for ip in prev.ips if ip.interface == idx]
        check_addresses(h, link, ips)
        check_routes(h, prev.routes)
        return link.link or 0


def check_addresses(h, link, ips) -> None:
    have = {a.interface for a in h.addr_list(link.index)}
    routes = None
    for ip in ips:
        want = ip.address
        if want not in have:
            raise CNIError("container address missing", f"{want} is not on {link.name}")
        if routes is None:
            routes = h.route_list(table=None)
        if not any(r.dst == want.network for r in routes):
            raise CNIError("route missing", f"no route to {want.network} on {link.name}")


def _gateways(route) -> set:
    """Every gateway of a kernel route as text: RTA_GATEWAY and the multipath nexthops."""
    out = {str(g) for g, _ in route.nexthops if g is not None}
    if route.gw is not None:
        out.add(str(route.gw))
    return out


def check_routes(h, routes) -> None:
    have = h.route_list(table=None)
    for r in routes:
        dst, gw = r.dst, r.gw
        if not any(x.dst == dst and (gw is None or (x.gw is None and not x.nexthops)
                                     or str(gw) in _gateways(x))
                   for x in have):
            raise CNIError("route missing", f"{dst} via {gw or '-'}")


def check_host_veth(host, peer: int, prev, *, master: int | None = None,
                    master_name: str = ""):
    """The host end of the container veth, found by what it is: the link whose ifindex is the
    container interface's peer (`peer`, from check_container_iface). Other host interfaces in
    prevResult (an IFB that bandwidth appended, a later plugin's device) are not it and are
    skipped. It must be a veth, a port of `master` when given, and match its prevResult MAC.
    """
    link = host.link_lookup(peer) if peer else None
    if link is None or link.kind != "veth":
        raise CNIError("host veth missing", f"the container veth's peer (ifindex {peer}) is not "
                       "a veth in the host namespace")
    if master is not None and link.master != master:
        raise CNIError("host veth not on bridge", f"{link.name} is not a port of {master_name}")
    listed = next((i for i in prev.interfaces if i.name == link.name and not i.sandbox), None)
    if listed is not None and listed.mac and listed.mac.lower() != (link.mac or "").lower():
        raise CNIError("host veth MAC mismatch", f"{link.name} has {link.mac}, "
                       f"prevResult says {listed.mac}")
    return link
