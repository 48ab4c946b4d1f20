"""loopback: bring `lo` up in the container (CNI_IFNAME is ignored, as in Go).

ADD returns lo with its first IPv4 and IPv6 addresses (127.0.0.1/8, ::1/128),
or passes a prevResult through. DEL sets lo down and succeeds when the netns
is gone. CHECK verifies lo is up.
"""
from __future__ import annotations

from cni import skel
from cni.config import NetConf
from cni.errors import CNIError
from cni.ip import in_netns_for_del, open_netns
from cni.nl.rtnl import Rtnl
from cni.types import Interface, IPConfig, Result


class Config(NetConf):
    __slots__ = ()


def add(args: skel.Args, conf: Config):
    with open_netns(args.netns) as ns, Rtnl(ns) as h:
        lo = h.link_get("lo")
        h.link_up(lo.index)
        addrs = h.addr_list(lo.index)
    first = {}
    for a in addrs:
        if not a.interface.ip.is_loopback:
            raise CNIError("loopback interface has a non-loopback address",
                           f"{a.interface} on lo in {args.netns}")
        first.setdefault(a.interface.version, a)
    if conf.prev_result is not None:
        return conf.prev_result
    res = Result(conf.cni_version, [Interface("lo", "00:00:00:00:00:00", args.netns)])
    for fam in (4, 6):
        if fam in first:
            res.ips.append(IPConfig(str(first[fam].interface), None, 0))
    return res


def delete(args: skel.Args, conf: Config) -> None:
    in_netns_for_del(args.netns, lambda h: h.link_down("lo"))


def check(args: skel.Args, conf: Config) -> None:
    with open_netns(args.netns) as ns, Rtnl(ns) as h:
        if not h.link_get("lo").up:
            raise CNIError("loopback interface is down", f"lo in {args.netns}")


PLUGIN = skel.Plugin("loopback", Config, add=add, delete=delete, check=check)
main = PLUGIN.main

if __name__ == "__main__":
    main()
