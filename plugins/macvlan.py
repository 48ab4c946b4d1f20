"""macvlan: a macvlan link on a host (or container) master, born in the container netns.

Keys (as the Go plugin): master (default: the default-route link), mode (bridge|private|vepa|
passthru), mtu (0..master MTU), mac, linkInContainer, bcqueuelen, ipam (empty = L2 only), dns;
the `mac` capability (runtimeConfig.mac) and CNI_ARGS MAC.
"""
from __future__ import annotations

from cni import ipam, links, skel
from cni.config import NetConf, check_mtu, ifname
from cni.errors import CNIError, InvalidConfigError
from cni.ip import del_link_collect_addrs, open_netns
from cni.rollback import on_error

MODES = {"": "bridge", "bridge": "bridge", "private": "private", "vepa": "vepa",
         "passthru": "passthru"}
MODE_NAMES = {1: "private", 2: "vepa", 4: "bridge", 8: "passthru", 16: "source"}


class Config(NetConf):
    FIELDS = {
        "master": ("master", ifname, ""),
        "mode": ("mode", str, ""),
        "mtu": ("mtu", int, 0),
        "mac": ("mac", str, ""),
        "linkInContainer": ("link_in_container", bool, False),
        "bcqueuelen": ("bcqueuelen", int, 0),
    }
    __slots__ = tuple(a for a, _, _ in FIELDS.values())

    def validate(self) -> None:
        if self.mode not in MODES:
            raise InvalidConfigError(f"unknown macvlan mode: {self.mode!r}",
                                     "mode must be bridge, private, vepa or passthru")
        self.mode = MODES[self.mode]
        check_mtu(self.mtu)
        if not 0 <= self.bcqueuelen <= 0xFFFFFFFF:
            raise InvalidConfigError("invalid bcqueuelen", f"bcqueuelen={self.bcqueuelen}")


def add(args: skel.Args, conf: Config):
    mac = links.resolve_mac(conf.mac, args, conf.runtime_config)
    ipam.find_delegate(conf, args)              # before any kernel work: nothing to undo
    with open_netns(args.netns) as ns:
        cont = ns if conf.link_in_container else None
        _, master, h = links.resolve_master(conf.master, cont, mtu=conf.mtu)
        with h, on_error() as undo:
            opts = {"mode": conf.mode}
            if conf.bcqueuelen:
                opts["bcqueuelen"] = conf.bcqueuelen
            link = links.create_link(h, ns, args.ifname, "macvlan", parent=master.index,
                                     in_container=conf.link_in_container, mtu=conf.mtu, mac=mac,
                                     **opts)
            undo(del_link_collect_addrs, ns, args.ifname)
            return links.l3_or_up(args, conf, ns, link, undo)


def check(args: skel.Args, conf: Config) -> None:

    def verify(link):
        mode = links.info(link, "IFLA_MACVLAN_MODE")
        if MODE_NAMES.get(mode) != conf.mode:
            raise CNIError("container macvlan mode mismatch",
                           f"{link.name} is {MODE_NAMES.get(mode, mode)}, config says {conf.mode}")
        if conf.mtu and link.mtu != conf.mtu:
            raise CNIError("container interface MTU mismatch", f"{link.mtu} != {conf.mtu}")

    with open_netns(args.netns) as ns:
        links.resolve_master(conf.master, ns if conf.link_in_container else None,
                             mtu=conf.mtu)[2].close()
    links.check(args, conf, kind="macvlan", verify=verify)


PLUGIN = links.plugin("macvlan", Config, add=add, check=check)
main = PLUGIN.main

if __name__ == "__main__":
    main()
