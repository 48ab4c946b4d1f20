"""dummy: a dummy link in the container netns carrying the IPAM addresses.

Keys (as the Go plugin): ipam (required). The result keeps the IPAM plugin's dns.
"""
from __future__ import annotations

from cni import ipam, links, skel
from cni.config import NetConf
from cni.errors import CNIError, InvalidConfigError
from cni.ip import del_link_collect_addrs, open_netns
from cni.nl.rtnl import Rtnl
from cni.rollback import on_error

NEED_IPAM = "dummy interface requires an IPAM configuration"


class Config(NetConf):
    __slots__ = ()


def add(args: skel.Args, conf: Config):
    if not conf.ipam_type():
        raise InvalidConfigError(NEED_IPAM, "set \"ipam\"")
    ipam.find_delegate(conf, args)              # before any kernel work: nothing to undo
    with open_netns(args.netns) as ns, Rtnl(ns) as c, on_error() as undo:
        link = links.create_link(c, ns, args.ifname, "dummy", in_container=True)
        undo(del_link_collect_addrs, ns, args.ifname)
        dns = conf.dns
        conf.dns = None                         # Go keeps the IPAM dns, ignores the config's
        try:
            return links.l3_or_up(args, conf, ns, link, undo, sysctls=(), ipam_required=True)
        finally:
            conf.dns = dns


def check(args: skel.Args, conf: Config) -> None:
    if not conf.ipam_type():
        raise InvalidConfigError(NEED_IPAM, "set \"ipam\"")

    def verify(link):
        if not link.up:
            raise CNIError("container interface is down", f"{link.name} is not up")

    links.check(args, conf, kind="dummy", verify=verify)


def status(args: skel.Args, conf: Config) -> None:
    ipam.exec_status(conf, args)      # unconditional, as Go


PLUGIN = links.plugin("dummy", Config, add=add, check=check, status=status)
main = PLUGIN.main

if __name__ == "__main__":
    main()
