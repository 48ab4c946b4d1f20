"""vlan: an 802.1Q sub-interface of a master, born in the container netns.

Keys (as the Go plugin): master (required), vlanId (0-4094), mtu (0..master MTU),
linkInContainer, ipam (required), dns. DEL needs neither the master nor the netns.
"""
from __future__ import annotations

from cni import ipam, links, skel
from cni.config import NetConf, check_mtu, ifname
from cni.errors import CNIError, InvalidConfigError
from cni.ip import del_link_collect_addrs, open_netns
from cni.rollback import on_error


class Config(NetConf):
    FIELDS = {
        "master": ("master", ifname, ""),
        "vlanId": ("vlan_id", int, 0),
        "mtu": ("mtu", int, 0),
        "linkInContainer": ("link_in_container", bool, False),
    }
    __slots__ = tuple(a for a, _, _ in FIELDS.values())

    def validate(self) -> None:
        if not self.master:
            raise InvalidConfigError("\"master\" field is required",
                                     "it names the interface to create the VLAN on")
        if not 0 <= self.vlan_id <= 4094:
            raise InvalidConfigError(f"invalid VLAN ID {self.vlan_id}", "must be 0-4094")
        check_mtu(self.mtu)


def add(args: skel.Args, conf: Config):
    if not conf.ipam_type():
        raise InvalidConfigError("missing IPAM configuration", "vlan needs \"ipam\"")
    ipam.find_delegate(conf, args)              # before any kernel work: nothing to undo
    with open_netns(args.netns) as ns:
        _, master, h = links.resolve_master(conf.master, ns if conf.link_in_container else None,
                                            mtu=conf.mtu)
        with h, on_error() as undo:
            link = links.create_link(h, ns, args.ifname, "vlan", parent=master.index,
                                     in_container=conf.link_in_container, mtu=conf.mtu,
                                     vlan_id=conf.vlan_id)
            undo(del_link_collect_addrs, ns, args.ifname)
            return links.l3_or_up(args, conf, ns, link, undo, sysctls=(), ipam_required=True)


def check(args: skel.Args, conf: Config) -> None:

    def verify(link):
        vid = links.info(link, "IFLA_VLAN_ID")
        if vid != conf.vlan_id:
            raise CNIError("container VLAN ID mismatch",
                           f"{link.name} has VLAN {vid}, config says {conf.vlan_id}")
        if conf.mtu and link.mtu != conf.mtu:
            raise CNIError("container interface MTU mismatch",
                           f"{link.name} has MTU {link.mtu}, config says {conf.mtu}")

    if not conf.ipam_type():
        raise InvalidConfigError("missing IPAM configuration", "vlan needs \"ipam\"")
    with open_netns(args.netns) as ns:
        _, _, h = links.resolve_master(conf.master, ns if conf.link_in_container else None)
        h.close()
    links.check(args, conf, kind="vlan", verify=verify)


def status(args: skel.Args, conf: Config) -> None:
    ipam.exec_status(conf, args)      # unconditional, as Go: no ipam type is an error


PLUGIN = links.plugin("vlan", Config, add=add, check=check, status=status)
main = PLUGIN.main

if __name__ == "__main__":
    main()
