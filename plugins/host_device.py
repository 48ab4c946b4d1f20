"""host-device: move an existing host link into the container; DEL gives it back.

Keys (as the Go plugin): device, hwaddr, kernelpath (/sys/devices/...), pciBusID, ipam
(optional: without it the link keeps the addresses it had on the host), dns; runtimeConfig
deviceID (a PCI or auxiliary-bus device). DPDK-bound PCI devices are not moved.
The link moves and is renamed in one request, gets ifalias = its host name, and on DEL returns
under that name with its host MTU, addresses and up-state. DEL always releases the IPAM lease
(also with CNI_NETNS empty or gone) and succeeds when the link is already back.
"""
from __future__ import annotations

from cni import ipam, links, skel
from cni.config import NetConf, check_ifname
from cni.errors import CNIError, InvalidConfigError
from cni.ip import check_mac, open_netns, open_netns_for_del
from cni.links import hostdev
from cni.links.hostdev import check_pci_address
from cni.netns import NetNS
from cni.nl.rtnl import Rtnl
from cni.nl.socket import NetlinkError
from cni.rollback import on_error
from cni.types import Interface, IPConfig, Result


class Config(NetConf):
    FIELDS = {
        "device": ("device", str, ""),
        "hwaddr": ("hwaddr", str, ""),
        "kernelpath": ("kernelpath", str, ""),
        "pciBusID": ("pci_bus_id", str, ""),
    }
    __slots__ = tuple(a for a, _, _ in FIELDS.values()) + ("aux_device", "dpdk")

    def validate(self) -> None:
        self.aux_device = ""
        self.dpdk = False
        if self.hwaddr:
            self.hwaddr = check_mac(self.hwaddr)
        if self.device:
            check_ifname(self.device, "invalid device", f"device {self.device[:64]!r}")
        if self.pci_bus_id:
            check_pci_address(self.pci_bus_id, "pciBusID")

    def resolve(self) -> None:
        """Apply runtimeConfig.deviceID and detect DPDK mode (ADD and CHECK only)."""
        dev_id = self.runtime_config.get("deviceID") or ""
        if not isinstance(dev_id, str):
            raise InvalidConfigError("invalid runtimeConfig", "deviceID must be a string")
        pci, aux = hostdev.handle_device_id(dev_id)
        if dev_id:
            self.pci_bus_id, self.aux_device = pci, aux
        if not (self.device or self.hwaddr or self.kernelpath or self.pci_bus_id
                or self.aux_device):
            raise InvalidConfigError('specify either "device", "hwaddr", "kernelpath" or "pciBusID"',
                                     "no host device selector given")
        if self.pci_bus_id:
            self.dpdk = hostdev.has_dpdk_driver(self.pci_bus_id)


def _find_in_container(c, ifname: str, orig: str):
    link = c.link_lookup(ifname)
    if link is None and orig:
        link = next((lk for lk in c.link_list() if lk.alias == orig), None)
    return link


def _move_out(c, host_ns, ifname: str, orig: str, state) -> bool:
    """Move the container link back to `host_ns` as `orig`; False if it is not there."""
    link = _find_in_container(c, ifname, orig)
    if link is None:
        link = c.link_lookup(orig) if orig else None    # moved, rename failed half-way
        if link is None:
            return False
    name = link.alias or orig
    if not name:
        raise CNIError(f"failed to find original ifname for {ifname!r}",
                       "ifalias is not set and there is no saved state")
    try:
        c.link_set(link.index, netns=host_ns, name=name, alias="")
    except NetlinkError as exc:
        raise CNIError("failed to move device back to the host",
                       f"{link.name} -> {name}: {exc}") from None
    if state:
        with Rtnl(host_ns) as h:
            back = h.link_lookup(name)
            if back is not None:
                hostdev.restore_on_host(h, back.index, state)
    return True


def add(args: skel.Args, conf: Config):
    conf.resolve()
    iface = Interface(args.ifname, "", args.netns)
    ipam.find_delegate(conf, args)              # before any kernel work: nothing to undo
    with open_netns(args.netns) as ns, NetNS.current() as host_ns, Rtnl(host_ns) as h, \
            Rtnl(ns) as c, on_error() as undo:
        kept = []
        if not conf.dpdk:
            name = hostdev.select_name(h, device=conf.device, hwaddr=conf.hwaddr,
                                       kernelpath=conf.kernelpath, pci=conf.pci_bus_id,
                                       aux=conf.aux_device)
            link = h.link_lookup(name)
            if link is None:
                raise CNIError("failed to find host device", f"{name} does not exist")
            if c.link_lookup(args.ifname) is not None:
                raise CNIError("container interface already exists",
                               f"{args.ifname} already exists in {args.netns}")
            kept = hostdev.host_addrs(h, link.index)
            state = {"name": name, "mtu": link.mtu, "up": link.up, "addrs": kept}
            hostdev.save_state(args.container_id, args.ifname, state)
            undo(hostdev.drop_state, args.container_id, args.ifname)
            # registered before its step: a failed move can be half done (moved, not renamed)
            undo(_move_out, c, host_ns, args.ifname, name, state)
            try:
                h.link_set(link.index, netns=ns, name=args.ifname, alias=name)
            except NetlinkError as exc:
                raise CNIError("failed to move link", f"{name} -> {args.ifname}: {exc}") from None
            cl = c.link_get(args.ifname)
            iface.mac = cl.mac or ""
            c.link_up(cl.index)
        result = Result(conf.cni_version, [iface])
        if conf.ipam_type():
            result = ipam.add(conf, args, undo, [iface], 0)
            if not conf.dpdk:
                links.configure(ns, args.ifname, result, sysctls=())
        elif kept:
            for a in kept:                           # the move flushed them: put them back
                try:
                    c.addr_add(args.ifname, a, exist_ok=True)
                except NetlinkError as exc:
                    raise CNIError("failed to keep address", f"{a}: {exc}") from None
            result.ips = [IPConfig(a, interface=0) for a in kept]
        return result


def delete(args: skel.Args, conf: Config) -> None:
    if conf.ipam_type():
        ipam.exec_del(conf, args)                   # also with CNI_NETNS empty (plugins#1196)
    state = hostdev.load_state(args.container_id, args.ifname)
    orig = (state or {}).get("name") or ""
    if not args.netns:
        return                     # nothing to reach; keep the saved state for a later DEL
    ns = open_netns_for_del(args.netns)
    if ns is None:
        if orig:
            _reclaim(args.ifname, orig, state)
        hostdev.drop_state(args.container_id, args.ifname)
        return
    with ns, NetNS.current() as host_ns, Rtnl(ns) as c:
        _move_out(c, host_ns, args.ifname, orig, state)
    hostdev.drop_state(args.container_id, args.ifname)


def _reclaim(ifname: str, orig: str, state) -> None:
    """The netns is gone: the kernel returned the device to the initial netns under its
    container name. If it landed here, give it its host name and state back."""
    with Rtnl() as h:
        if h.link_lookup(orig) is not None:
            return
        link = next((lk for lk in h.link_list() if lk.alias == orig), None)
        if link is None:
            return
        try:
            h.link_set(link.index, name=orig, alias="")
            hostdev.restore_on_host(h, link.index, state)
        except NetlinkError as exc:
            from cni.log import warn  # lazy: an error path only
            warn(f"host-device: could not rename {link.name} back to {orig}: {exc}")


def check(args: skel.Args, conf: Config) -> None:
    conf.resolve()
    if conf.ipam_type():
        ipam.exec_check(conf, args)
    if conf.prev_result is None:
        raise CNIError("required prevResult missing", "CHECK needs the ADD result")
    if conf.dpdk:
        return
    links.check(args, conf, kind=None, with_ipam=False)


PLUGIN = links.plugin("host-device", Config, add=add, check=check, delete=delete)
main = PLUGIN.main

if __name__ == "__main__":
    main()
