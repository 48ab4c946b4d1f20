"""ipvlan: an ipvlan link on a host (or container) master, born in the container netns.

Keys (as the Go plugin): master (default: the default-route link, or the sole prevResult
interface when chained), mode (l2|l3|l3s), flag (bridge|private|vepa), mtu, linkInContainer,
ipam (optional when chained after a plugin whose prevResult has IPs), dns.
"""
from __future__ import annotations

from cni import ipam, links, skel
from cni.config import NetConf, check_mtu, ifname
from cni.errors import CNIError, InvalidConfigError
from cni.ip import del_link_collect_addrs, open_netns
from cni.rollback import on_error

MODES = {"": "l2", "l2": "l2", "l3": "l3", "l3s": "l3s"}
MODE_NAMES = {0: "l2", 1: "l3", 2: "l3s"}
FLAGS = {"": "bridge", "bridge": "bridge", "private": "private", "vepa": "vepa"}
FLAG_NAMES = {0: "bridge", 1: "private", 2: "vepa"}


class Config(NetConf):
    FIELDS = {
        "master": ("master", ifname, ""),
        "mode": ("mode", str, ""),
        "flag": ("flag", str, ""),
        "mtu": ("mtu", int, 0),
        "linkInContainer": ("link_in_container", bool, False),
    }
    __slots__ = tuple(a for a, _, _ in FIELDS.values())

    def validate(self) -> None:
        if self.mode not in MODES:
            raise InvalidConfigError(f"unknown ipvlan mode: {self.mode!r}",
                                     "mode must be l2, l3 or l3s")
        if self.flag not in FLAGS:
            raise InvalidConfigError(f"unknown ipvlan flag: {self.flag!r}",
                                     "flag must be bridge, private or vepa")
        self.mode, self.flag = MODES[self.mode], FLAGS[self.flag]
        check_mtu(self.mtu)

    def chained_master(self) -> str:
        """Master when chained without `master`: the prevResult's single named interface."""
        prev = self.prev_result
        if self.master or prev is None:
            return self.master
        if len(prev.interfaces) == 1 and prev.interfaces[0].name:
            return prev.interfaces[0].name
        raise CNIError("chained master failure",
                       "prevResult lacks a single named interface; set \"master\"")


def add(args: skel.Args, conf: Config):
    prev = conf.prev_result
    if not conf.ipam_type() and not (prev is not None and prev.ips):
        raise InvalidConfigError("missing IPAM configuration",
                                 "ipvlan needs \"ipam\" unless chained after a result with IPs")
    master_name = conf.chained_master()
    ipam.find_delegate(conf, args)              # before any kernel work: nothing to undo
    with open_netns(args.netns) as ns:
        _, master, h = links.resolve_master(master_name, ns if conf.link_in_container else None)
        with h, on_error() as undo:
            link = links.create_link(h, ns, args.ifname, "ipvlan", parent=master.index,
                                     in_container=conf.link_in_container, mtu=conf.mtu,
                                     mode=conf.mode, flags=conf.flag)
            undo(del_link_collect_addrs, ns, args.ifname)
            return links.l3_or_up(args, conf, ns, link, undo, prev=prev, ipam_required=True)


def check(args: skel.Args, conf: Config) -> None:

    def verify(link):
        mode = MODE_NAMES.get(links.info(link, "IFLA_IPVLAN_MODE"))
        if mode != conf.mode:
            raise CNIError("container ipvlan mode mismatch",
                           f"{link.name} is {mode}, config says {conf.mode}")
        flag = FLAG_NAMES.get(links.info(link, "IFLA_IPVLAN_FLAGS", 0) & 3)
        if flag != conf.flag:
            raise CNIError("container ipvlan flag mismatch",
                           f"{link.name} is {flag}, config says {conf.flag}")

    if conf.master:
        with open_netns(args.netns) as ns:
            _, _, h = links.resolve_master(conf.master, ns if conf.link_in_container else None)
            h.close()
    links.check(args, conf, kind="ipvlan", verify=verify)


PLUGIN = links.plugin("ipvlan", Config, add=add, check=check)
main = PLUGIN.main

if __name__ == "__main__":
    main()
