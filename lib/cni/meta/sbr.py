"""Source-based routing (sbr plugin): per container address a routing table and a
`from <addr> lookup <table>` rule, as Go's plugins/meta/sbr. Run with an Rtnl of the netns."""
from __future__ import annotations

import fcntl
from errno import ESRCH

from cni import addr as ipaddress
from cni.errors import CNIError, InvalidConfigError
from cni.log import warn
from cni.std import oslite as os

FIRST_TABLE = 100
RT_TABLE_MAIN = 254
RT_SCOPE_LINK = 253


class NetnsLock:
    """flock(LOCK_EX) on an opened netns while sbr works (serialises sbr calls per netns).

    Takes a NetNS (opened safely by cni.netns) and locks a fresh open file of it, so the
    lock ends with this object whatever other fds share the namespace.
    """

    __slots__ = ("fd",)

    def __init__(self, ns):
        self.fd = ns.reopen()
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except OSError:
            os.close(self.fd)
            raise

    def __enter__(self) -> NetnsLock:
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.fd)      # closing the last fd drops the lock


def static_gateways(gateways) -> dict:
    """{4: ip, 6: ip} from the `gateways` list (at most one per family)."""
    if len(gateways) > 2:
        raise InvalidConfigError("gateways list cannot contain more than 2 entries (one IPv4, one IPv6)")
    out: dict = {}
    for gw in gateways:
        try:
            ip = ipaddress.ip_address(gw)
        except ValueError:
            raise InvalidConfigError(f"invalid static gateway IP address: {gw}") from None
        if ip.version in out:
            raise InvalidConfigError(f"gateways list contains multiple IPv{ip.version} addresses",
                                     f"{out[ip.version]} and {gw}")
        out[ip.version] = ip
    return out


def _host_net(ip):
    return ipaddress.ip_network(f"{ip}/{ip.max_prefixlen}")


def _next_table(used: set, candidate: int) -> int:
    while candidate in used:
        candidate += 1
    return candidate


def _contains(ipi, addr) -> bool:
    return addr is not None and addr.version == ipi.version and addr in ipi.network


def add_rules_with_table(h, ipcs, table: int, undo) -> None:
    """`table` configured: only the rules, routes are the operator's business."""
    for ipc in ipcs:
        src = _host_net(ipc.address.ip)
        h.rule_add(src=src, table=table)
        undo(h.rule_del, src=src, table=table)


def add_routes(h, ipcs, ifname: str, gateways: dict, add_source_hints: bool, undo) -> list:
    """Auto mode: a fresh table per address; returns the table ids used."""
    used = {r.table for r in h.rule_list()} | {r.table for r in h.route_list(table=None)}
    table = _next_table(used, FIRST_TABLE)
    link = h.link_lookup(ifname)
    if link is None:
        raise CNIError(f"cannot find network interface {ifname}")
    routes = h.route_list(table=RT_TABLE_MAIN, dev=link.index)
    tables = []
    for ipc in ipcs:
        ipi = ipc.address
        src = _host_net(ipi.ip)
        h.rule_add(src=src, table=table)
        undo(h.rule_del, src=src, table=table)
        undo(_flush_table, h, table, link.index)
        gw = gateways.get(ipi.version) or ipc.gateway
        if gw is not None:
            default = "0.0.0.0/0" if ipi.version == 4 else "::/0"
            try:
                h.route_add(default, gw=gw, dev=link.index, table=table)
            except OSError as exc:
                raise CNIError(f"failed to add default route to {gw}", str(exc)) from None
        for r in routes:
            if r.dst.prefixlen == 0 and ipi.version in gateways:
                continue        # a static gateway overrides the interface's default routes
            if _contains(ipi, r.prefsrc) or _contains(ipi, r.gw) or (r.prefsrc is None and r.gw is None):
                h.route_replace(r.dst, gw=r.gw, dev=link.index, table=table, scope=r.scope,
                                src=r.prefsrc, metric=r.priority, proto=r.proto, type=r.type)
        tables.append(table)
        used.add(table)
        table = _next_table(used, table + 1)
    if add_source_hints:
        for ipc in ipcs:
            ipi = ipc.address
            try:
                h.route_replace(ipi.network, dev=link.index, src=ipi.ip, table=RT_TABLE_MAIN,
                                scope=RT_SCOPE_LINK)
            except OSError as exc:
                warn(f"failed to add subnet route with source hint: {exc}")
        for r in routes:
            if r.scope != RT_SCOPE_LINK:
                _del_route(h, r, warn_only=True)
    else:
        for r in routes:
            _del_route(h, r)
    return tables


def _del_route(h, r, warn_only: bool = False) -> None:
    try:
        h.route_del(r.dst, gw=r.gw, dev=r.oif, table=r.table, metric=r.priority)
    except OSError as exc:
        if getattr(exc, "errno", 0) == ESRCH:      # already gone
            return
        if warn_only:
            warn(f"failed to delete route {r.dst}: {exc}")
            return
        raise CNIError(f"failed to delete route {r.dst}", str(exc)) from None


def _flush_table(h, table: int, oif: int) -> None:
    for r in h.route_list(table=table, dev=oif):
        _del_route(h, r, warn_only=True)


def tidy_rules(h, ifname: str, table: int | None) -> int:
    """Delete the rules whose source is an address of `ifname` (only those of `table` if set)."""
    link = h.link_lookup(ifname)
    if link is None:
        return 0
    addrs = {(a.family, str(a.ip)) for a in h.addr_list(link.index)}
    n = 0
    errors = []
    for r in h.rule_list():
        if r.src is None or (table is not None and r.table != table):
            continue
        if (r.family, str(r.src.network_address)) not in addrs:
            continue
        try:
            h.rule_del(priority=r.priority, src=r.src, table=r.table, family=r.family)
            n += 1
        except OSError as exc:
            errors.append(str(exc))
    if errors:
        raise CNIError("failed to delete rule", "; ".join(errors))
    return n
