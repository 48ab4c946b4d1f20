"""vrf: chained; put CNI_IFNAME into a VRF device inside the container netns.

Keys (as the Go plugin): vrfname (required), table (0 = the lowest table >= 1 no other VRF uses,
skipping the reserved 253-255). The VRF is created (and set up) or reused; global IPv6 addresses
dropped by the enslave are re-added and the link's main-table routes are moved into the VRF
table. DEL releases the link and deletes the VRF when no port remains; a missing netns, VRF or
link is success. Returns prevResult unchanged.
"""
from __future__ import annotations

import errno
import time

from cni import skel
from cni import version as _v
from cni.config import NetConf, ifname
from cni.errors import CNIError, InvalidConfigError
from cni.ip import in_netns_for_del, open_netns
from cni.links import info
from cni.nl.rtnl import Rtnl
from cni.nl.rtnl_defs import AF_INET6, RT_SCOPE_UNIVERSE
from cni.nl.socket import NetlinkError
from cni.rollback import on_error
from cni.types import Result

RESERVED_TABLES = (253, 254, 255)


def _table(v, field):
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 0xFFFFFFFF:
        raise InvalidConfigError("invalid config", f"{field} must be a uint32")
    return v


class Config(NetConf):
    FIELDS = {"vrfname": ("vrfname", ifname, ""), "table": ("table", _table, 0)}
    __slots__ = tuple(a for a, _, _ in FIELDS.values())

    def validate(self) -> None:
        if not self.vrfname:
            raise InvalidConfigError("configuration is expected to have a valid vrf name",
                                     "set \"vrfname\"")


def _vrf_table(link) -> int:
    return info(link, "IFLA_VRF_TABLE", 0) or 0


def _find_vrf(c, name: str):
    link = c.link_lookup(name)
    if link is not None and link.kind != "vrf":
        raise CNIError(f"{name} is not a VRF", f"{name} is a {link.kind or 'device'}")
    return link


def free_table(used) -> int:
    used = set(used)
    t = 1
    while t in used or t in RESERVED_TABLES:
        t += 1
    return t


def _ensure_vrf(c, conf: Config, undo):
    vrf = _find_vrf(c, conf.vrfname)
    if vrf is not None:
        if conf.table and _vrf_table(vrf) != conf.table:
            raise CNIError(f"VRF {conf.vrfname} already exists with a different routing table",
                           f"it uses table {_vrf_table(vrf)}, config says {conf.table}")
        return vrf
    table = conf.table or free_table(_vrf_table(lk) for lk in c.link_list(kind="vrf"))
    try:
        c.vrf_add(conf.vrfname, table)
    except NetlinkError as exc:
        if exc.errno != errno.EEXIST:
            raise CNIError(f"could not add VRF {conf.vrfname}", str(exc)) from None
        return _ensure_vrf(c, conf, undo)            # a concurrent ADD made it
    vrf = c.link_get(conf.vrfname)
    undo(_del_if_empty, c, vrf.index)
    c.link_up(vrf.index)
    return c.link_get(vrf.index)


def _del_if_empty(c, index: int) -> None:
    if not c.link_list(master=index):
        c.link_del(index, missing_ok=True)


def _global_v6(c, index: int) -> list:
    return [a for a in c.addr_list(index, family=AF_INET6) if a.scope == RT_SCOPE_UNIVERSE]


def _enslave(c, vrf, ifname: str, undo) -> None:
    link = c.link_lookup(ifname)
    if link is None:
        raise CNIError("interface not found", f"{ifname} does not exist in the container")
    if link.master == vrf.index:
        return
    if link.master:
        m = c.link_lookup(link.master)
        raise CNIError(f"interface {ifname} has already a master set",
                       f"master is {m.name if m else link.master}")
    table = _vrf_table(vrf)
    before = _global_v6(c, link.index)
    routes = [r for r in c.route_list(dev=link.index) if r.scope == 0]
    c.link_set(link.index, master=vrf.index)
    undo(c.link_set, link.index, nomaster=True)
    have = {a.interface for a in _global_v6(c, link.index)}
    for a in before:
        if a.interface in have:
            continue
        try:
            c.addr_add(link.index, a.interface)
        except NetlinkError as exc:
            raise CNIError("could not restore address",
                           f"{a.interface} on {ifname} in {vrf.name}: {exc}") from None
        _wait_local_route(c, link.index, a.ip, table, ifname)
    for r in routes:
        try:
            c.route_add(r.dst, gw=r.gw, dev=link.index, table=table, scope=r.scope,
                        src=r.prefsrc, metric=r.priority, onlink=bool(r.flags & 4),
                        type=r.type, proto=r.proto, mtu=r.mtu, advmss=r.advmss, replace=True)
        except NetlinkError as exc:
            raise CNIError("could not move route into the VRF table",
                           f"{r.dst} via {r.gw or '-'} table {table}: {exc}") from None


def _wait_local_route(c, index: int, ip, table: int, ifname: str) -> None:
    for attempt in range(9):
        if any(r.dst.prefixlen == 128 and r.dst.network_address == ip and r.oif == index
               for r in c.route_list(family=10, table=table)):
            return
        if attempt < 8:
            time.sleep(0.01 * (1 << attempt))
    raise CNIError("address route did not appear in the VRF table",
                   f"{ip} on {ifname}, table {table}")


def add(args: skel.Args, conf: Config):
    if conf.prev_result is None:
        raise CNIError("missing prevResult from earlier plugin", "vrf is a chained plugin")
    with open_netns(args.netns) as ns, Rtnl(ns) as c, on_error() as undo:
        vrf = _ensure_vrf(c, conf, undo)
        _enslave(c, vrf, args.ifname, undo)
    result = conf.prev_result or Result(conf.cni_version)
    result.cni_version = conf.cni_version
    return result


def delete(args: skel.Args, conf: Config) -> None:
    in_netns_for_del(args.netns, lambda c: _release(c, conf.vrfname, args.ifname))


def _release(c, vrfname: str, ifname: str) -> None:
    """Take `ifname` out of the VRF and delete the VRF if no port remains."""
    vrf = c.link_lookup(vrfname)
    if vrf is None or vrf.kind != "vrf":
        return
    link = c.link_lookup(ifname)
    if link is not None and link.master == vrf.index:
        c.link_set(link.index, nomaster=True)
    _del_if_empty(c, vrf.index)


def check(args: skel.Args, conf: Config) -> None:
    if conf.prev_result is None:
        raise CNIError("missing prevResult from earlier plugin", "vrf is a chained plugin")
    with open_netns(args.netns) as ns, Rtnl(ns) as c:
        vrf = _find_vrf(c, conf.vrfname)
        if vrf is None:
            raise CNIError("VRF not found", f"{conf.vrfname} does not exist")
        if conf.table and _vrf_table(vrf) != conf.table:
            raise CNIError("VRF routing table mismatch", f"{_vrf_table(vrf)} != {conf.table}")
        link = c.link_lookup(args.ifname)
        if link is None or link.master != vrf.index:
            raise CNIError(f"failed to find {args.ifname} associated to vrf {conf.vrfname}",
                           "the interface is not a port of the VRF")


VERSIONS = tuple(v for v in _v.ALL if _v.ge(v, "0.3.1"))
PLUGIN = skel.Plugin("vrf", Config, add=add, delete=delete, check=check, versions=VERSIONS)
main = PLUGIN.main

if __name__ == "__main__":
    main()
