"""tap: a persistent tap device made through /dev/net/tun inside the container netns.

Keys (as the Go plugin): multiQueue, mtu, mac, owner, group, selinuxContext (applied to a
forked creator process; rejected when SELinux is off), bridge (a bridge in the container netns
to attach the tap to), ipam (optional; empty = L2), dns; the `mac` capability and CNI_ARGS MAC.
"""
from __future__ import annotations

from cni import ipam, links, skel
from cni.config import NetConf, check_ifname
from cni.errors import CNIError, InvalidConfigError
from cni.ip import del_link_collect_addrs, open_netns
from cni.links.tap import create_tap
from cni.nl.rtnl import Rtnl
from cni.nl.socket import NetlinkError
from cni.rollback import on_error


def _uint32(v, field):
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 0xFFFFFFFF:
        raise InvalidConfigError("invalid config", f"{field} must be a uint32")
    return v


class Config(NetConf):
    FIELDS = {
        "multiQueue": ("multi_queue", bool, False),
        "mtu": ("mtu", int, 0),
        "mac": ("mac", str, ""),
        "owner": ("owner", _uint32, None),
        "group": ("group", _uint32, None),
        "selinuxContext": ("selinux_context", str, ""),
        "bridge": ("bridge", str, ""),
    }
    __slots__ = tuple(a for a, _, _ in FIELDS.values())

    def validate(self) -> None:
        if self.mtu < 0 or self.mtu > 65535:
            raise InvalidConfigError(f"invalid MTU {self.mtu}", "mtu must be 0-65535")
        if self.bridge:
            check_ifname(self.bridge, "invalid bridge name")


def add(args: skel.Args, conf: Config):
    mac = links.resolve_mac(conf.mac, args, conf.runtime_config)
    ipam.find_delegate(conf, args)              # before any kernel work: nothing to undo
    with open_netns(args.netns) as ns, Rtnl(ns) as c, on_error() as undo:
        links.ensure_absent(ns, args.ifname)
        br = None
        if conf.bridge:
            br = c.link_lookup(conf.bridge)
            if br is None or br.kind != "bridge":
                raise CNIError("bridge not found",
                               f"{conf.bridge} is not a bridge in {args.netns}")
        create_tap(ns, args.ifname, multi_queue=conf.multi_queue, owner=conf.owner,
                   group=conf.group, selinux_context=conf.selinux_context)
        undo(del_link_collect_addrs, ns, args.ifname)
        try:
            c.link_set(args.ifname, mtu=conf.mtu or None, mac=mac)
            if br is not None:
                c.link_set(args.ifname, master=br.index)
            if not conf.ipam_type():
                c.link_up(args.ifname)
        except NetlinkError as exc:
            raise CNIError("failed to configure tap", f"{args.ifname}: {exc}") from None
        link = c.link_get(args.ifname)
        return links.l3_or_up(args, conf, ns, link, undo, sysctls=("arp_notify",))


def check(args: skel.Args, conf: Config) -> None:

    def verify(link):
        if conf.bridge:
            with Rtnl(args.netns) as c:
                br = c.link_lookup(conf.bridge)
            if br is None or link.master != br.index:
                raise CNIError("tap not attached to bridge",
                               f"{link.name} is not a port of {conf.bridge}")
        if conf.mtu and link.mtu != conf.mtu:
            raise CNIError("container interface MTU mismatch", f"{link.mtu} != {conf.mtu}")

    links.check(args, conf, kind="tun", verify=verify)


PLUGIN = links.plugin("tap", Config, add=add, check=check)
main = PLUGIN.main

if __name__ == "__main__":
    main()
