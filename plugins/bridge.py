"""bridge: a veth pair per container, its host end a port of a Linux bridge.

Keys (as the Go plugin): bridge (default cni0), isGateway, isDefaultGateway,
forceAddress, ipMasq, ipMasqBackend, mtu, hairpinMode, promiscMode, vlan,
vlanTrunk, preserveDefaultVlan, macspoofchk, enabledad,
disableContainerInterface, portIsolation, ipam (empty = L2 only), dns; the
`mac` capability, args.cni.mac and CNI_ARGS MAC.
"""
from __future__ import annotations

import errno

from cni import ipam, skel, sysctl
from cni import addr as ipaddress
from cni.check import check_container_iface, check_host_veth
from cni.config import NetConf, valid_ifname
from cni.errors import CNIError, InvalidConfigError
from cni.ip import (check_mac, del_link_collect_addrs, enable_forward, open_netns,
                    random_veth_name, setup_veth)
from cni.ipam.configure import configure_iface
from cni.nl.rtnl import Rtnl
from cni.nl.rtnl_defs import AF_INET, AF_INET6, RT_SCOPE_UNIVERSE
from cni.nl.socket import NetlinkError
from cni.rollback import on_error
from cni.types import Interface, Result, Route


def _trunk(value, field):
    if not isinstance(value, list):
        raise InvalidConfigError("invalid config", f"{field} must be a list")
    vids = []
    for i, t in enumerate(value):
        if not isinstance(t, dict):
            raise InvalidConfigError("invalid config", f"{field}[{i}] must be an object")
        vid, lo, hi = t.get("id"), t.get("minID"), t.get("maxID")
        if vid is not None:
            if not isinstance(vid, int) or isinstance(vid, bool) or not 1 <= vid <= 4094:
                raise InvalidConfigError("invalid VLAN ID", f"{field}[{i}].id={vid!r} (1-4094)")
            vids.append(vid)
        if lo is not None or hi is not None:
            for k, v in (("minID", lo), ("maxID", hi)):
                if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 4094:
                    raise InvalidConfigError("invalid VLAN ID", f"{field}[{i}].{k}={v!r} (1-4094)")
            if lo > hi:
                raise InvalidConfigError("invalid VLAN range", f"{field}[{i}]: minID > maxID")
            vids.extend(range(lo, hi + 1))
        if vid is None and lo is None and hi is None:
            raise InvalidConfigError("invalid config", f"{field}[{i}] needs id or minID/maxID")
    return sorted(set(vids))


class Config(NetConf):
    FIELDS = {
        "bridge": ("bridge", str, "cni0"),
        "isGateway": ("is_gateway", bool, False),
        "isDefaultGateway": ("is_default_gateway", bool, False),
        "forceAddress": ("force_address", bool, False),
        "ipMasq": ("ip_masq", bool, False),
        "ipMasqBackend": ("ip_masq_backend", str, ""),
        "mtu": ("mtu", int, 0),
        "hairpinMode": ("hairpin_mode", bool, False),
        "promiscMode": ("promisc_mode", bool, False),
        "vlan": ("vlan", int, 0),
        "vlanTrunk": ("vlan_trunk", _trunk, list),
        "preserveDefaultVlan": ("preserve_default_vlan", bool, False),
        "macspoofchk": ("macspoofchk", bool, False),
        "enabledad": ("enable_dad", bool, False),
        "disableContainerInterface": ("disable_container_interface", bool, False),
        "portIsolation": ("port_isolation", bool, False),
    }
    __slots__ = tuple(a for a, _, _ in FIELDS.values())

    def validate(self) -> None:
        if valid_ifname(self.bridge):
            raise InvalidConfigError("invalid bridge name", f"bridge={self.bridge!r}")
        if self.is_default_gateway:
            self.is_gateway = True
        if self.hairpin_mode and self.promisc_mode:
            raise InvalidConfigError("invalid config",
                                     "cannot set hairpinMode and promiscMode at the same time")
        if not 0 <= self.vlan <= 4094:
            raise InvalidConfigError("invalid VLAN ID", f"vlan={self.vlan} (0-4094)")
        if self.mtu < 0 or self.mtu > 65535:
            raise InvalidConfigError("invalid config", f"mtu={self.mtu}")
        if self.ip_masq_backend not in ("", "iptables", "nftables"):
            raise InvalidConfigError("invalid config",
                                     f"ipMasqBackend={self.ip_masq_backend!r} (iptables or nftables)")
        if self.vlan and self.is_gateway and valid_ifname(self.vlan_gateway_name()):
            raise InvalidConfigError("invalid VLAN gateway interface name",
                                     f"{self.vlan_gateway_name()!r} (bridge.vlan, which holds "
                                     f"the gateway): {valid_ifname(self.vlan_gateway_name())}")
        if self.disable_container_interface and self.ipam_type():
            raise InvalidConfigError("invalid config",
                                     "disableContainerInterface cannot be used with ipam")

    def vlan_gateway_name(self) -> str:
        """`<bridge>.<vlan>`: the interface that holds the gateway of a VLAN (as Go)."""
        return f"{self.bridge}.{self.vlan}"

    def mac(self, args) -> str | None:
        """Container MAC: CNI_ARGS MAC < args.cni.mac < runtimeConfig.mac."""
        mac = args.cni_args("MAC").get("MAC") if args.args else None
        mac = self.cni_arg("mac") or mac
        mac = self.runtime_config.get("mac") or mac
        return check_mac(mac) if mac else None


def _ensure_bridge(h, conf: Config):
    br = h.link_lookup(conf.bridge)
    if br is None:
        opts = {"vlan_filtering": 1} if conf.vlan or conf.vlan_trunk else {}
        try:
            h.bridge_add(conf.bridge, mtu=conf.mtu, **opts)
        except NetlinkError as exc:
            if exc.errno == errno.EOPNOTSUPP and opts:
                raise CNIError("failed to create bridge",
                               f"{conf.bridge}: this kernel has no bridge VLAN filtering") from None
            if exc.errno != errno.EEXIST:  # another ADD made it first
                raise CNIError("failed to create bridge", f"{conf.bridge}: {exc}") from None
        br = h.link_get(conf.bridge)
        sysctl.ensure(f"net/ipv6/conf/{conf.bridge}/accept_ra", "0", missing_ok=True)
    if br.kind != "bridge":
        raise CNIError("existing interface is not a bridge", f"{conf.bridge} is {br.kind or 'a device'}")
    if conf.promisc_mode and not br.promisc:
        h.link_set(br.index, promisc=True)
    if not br.up:
        h.link_up(br.index)
    return h.link_get(br.index)


def _program_port(h, port: int, br: int, *, hairpin: bool = False, isolated: bool = False,
                  vlan: int = 0, trunk=(), preserve_default_vlan: bool = False) -> None:
    h.link_set(port, master=br)
    h.bridge_port_set(port, hairpin=hairpin, isolated=True if isolated else None)
    if vlan or trunk:
        if not preserve_default_vlan:
            for vid in [v for v, _ in h.bridge_vlan_list(port).get(port, [])]:
                h.bridge_vlan_del(port, vid)
        if vlan:
            h.bridge_vlan_add(port, vlan, pvid=True, untagged=True)
        for vid in trunk:
            h.bridge_vlan_add(port, vid)
        if trunk and not vlan:
            h.bridge_vlan_add(port, 1, pvid=True, untagged=True)


def _ensure_vlan_gateway(h, conf: Config, br, undo):
    """The `<bridge>.<vlan>` interface that holds the gateway addresses of a VLAN, as Go's
    bridge makes it: one end of a veth pair left in the host netns, its peer a bridge port
    untagged in that VLAN (PVID). Shared by the VLAN's containers: the first ADD makes it,
    DEL keeps it. Returns its Link."""
    name = conf.vlan_gateway_name()
    link = h.link_lookup(name)
    if link is not None:
        return link
    for attempt in range(10):
        port = random_veth_name()
        try:
            h.veth_add(port, name, mtu=br.mtu)
            break
        except NetlinkError as exc:
            if exc.errno == errno.EEXIST and h.link_lookup(name) is not None:
                return h.link_get(name)            # another ADD made it first
            if exc.errno != errno.EEXIST or attempt == 9:
                raise CNIError("failed to create VLAN gateway", f"{name}: {exc}") from None
    undo(h.link_del, name)
    pl = h.link_get(port)
    _program_port(h, pl.index, br.index, vlan=conf.vlan,
                  preserve_default_vlan=conf.preserve_default_vlan)
    h.link_up(pl.index)
    h.link_up(name)
    return h.link_get(name)


def _gateways(result, conf: Config) -> tuple:
    """Fill missing gateways (network + 1) and add default routes; returns gateway ifaces."""
    gws = []
    for ipc in result.ips:
        addr = ipc.address
        if ipc.gateway is None and conf.is_gateway:
            ipc.gateway = addr.network.network_address + 1
        if ipc.gateway is None:
            continue
        gws.append(ipaddress.ip_interface(f"{ipc.gateway}/{addr.network.prefixlen}"))
        if conf.is_default_gateway:
            default = "0.0.0.0/0" if addr.version == 4 else "::/0"
            if not any(r.dst_str == default and r.gw_str for r in result.routes):
                result.routes.append(Route(default, ipc.gateway))
    return gws


def _ensure_addr(h, br, gw, force: bool) -> None:
    """Put gateway address `gw` on the bridge, or its VLAN gateway interface (one IPv4
    address only unless forceAddress)."""
    for a in h.addr_list(br.index, family=AF_INET if gw.version == 4 else AF_INET6):
        if a.scope != RT_SCOPE_UNIVERSE:
            continue
        cur = a.interface
        if cur == gw:
            return
        if gw.version == 4 or cur.network.overlaps(gw.network):
            if not force:
                raise CNIError("bridge has an incompatible address",
                               f"{br.name} has {cur}, wants {gw}; set forceAddress to replace it")
            h.addr_del(br.index, str(cur))
    try:
        # no DAD for the gateway: IPAM reserved it, and a tentative gateway would leave a
        # new container without IPv6 connectivity for the first seconds
        h.addr_add(br.index, str(gw), nodad=gw.version == 6, exist_ok=True)
    except NetlinkError as exc:
        raise CNIError("failed to add gateway address", f"{gw} on {br.name}: {exc}") from None


def _announce(ns, ifname: str, result) -> None:
    """Gratuitous ARP for each IPv4 address, once the bridge port forwards: neighbours that
    cached an old MAC for a reused address learn the new one. Best effort.

    The container link has arp_notify=1, so re-setting its MAC (to the same value) makes the
    kernel announce every address (NETDEV_CHANGEADDR); the announcement the kernel made when
    the link came up usually met a port that did not forward yet. A packet socket of our own
    would cost a synchronize_net() on close (8-16 ms per ADD here)."""
    if not any(ipc.version == 4 for ipc in result.ips):
        return
    try:
        with Rtnl(ns) as c:
            c.link_set(ifname, mac=c.link_get(ifname).mac)
    except OSError as exc:
        from cni.log import debug  # lazy: an error path only
        debug(f"gratuitous ARP on {ifname} failed: {exc}")


def _wait_port_up(h, index: int) -> None:
    """The port comes up ~0.1-1 ms after the container end does (the kernel's linkwatch):
    short first waits, then Go's patience (2.8 s in all)."""
    import time  # lazy: only to wait for the port; off the plugin import path
    for delay in (0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.2, 0.5, 1.0, 1.0):
        time.sleep(delay)
        if h.link_get(index).operstate == "up":
            return
    raise CNIError("bridge port in error state", f"host veth {index} did not come up")


def add(args: skel.Args, conf: Config):
    mac = conf.mac(args)
    if conf.macspoofchk:
        from cni.fw import spoofchk  # lazy: the firewall layer, only with ipMasq/macspoofchk
        spoofchk.validate(args.container_id, args.ifname)  # names usable in nft, before any change
    ipam.find_delegate(conf, args)              # before any kernel work: nothing to undo
    with open_netns(args.netns) as ns, Rtnl() as host, on_error() as undo:
        br = _ensure_bridge(host, conf)
        hv, cv = setup_veth(host, ns, args.ifname, mtu=conf.mtu or br.mtu, mac=mac)
        undo(del_link_collect_addrs, ns, args.ifname)
        _program_port(host, hv.index, br.index, hairpin=conf.hairpin_mode,
                      isolated=conf.port_isolation, vlan=conf.vlan, trunk=conf.vlan_trunk,
                      preserve_default_vlan=conf.preserve_default_vlan)
        if conf.macspoofchk:
            spoofchk.setup(args.container_id, args.ifname, hv.name, cv.mac)
            undo(spoofchk.teardown, args.container_id, args.ifname)
        ifaces = [Interface(br.name, br.mac), Interface(hv.name, hv.mac),
                  Interface(args.ifname, cv.mac, args.netns)]
        if conf.ipam_type():
            result = ipam.add(conf, args, undo, ifaces, 2)
        else:
            result = ipam.relabel(Result(conf.cni_version), conf, ifaces, 2)
        gws = _gateways(result, conf) if result.ips else []
        sysctl.ensure(f"net/ipv4/conf/{args.ifname}/arp_notify", "1", ns=ns, missing_ok=True)
        if conf.enable_dad:
            sysctl.ensure(f"net/ipv6/conf/{args.ifname}/enhanced_dad", "1", ns=ns, missing_ok=True)
            sysctl.ensure(f"net/ipv6/conf/{args.ifname}/accept_dad", "1", ns=ns, missing_ok=True)
        else:
            sysctl.ensure(f"net/ipv6/conf/{args.ifname}/accept_dad", "0", ns=ns, missing_ok=True)
        if result.ips:
            configure_iface(ns, args.ifname, result)
        elif not conf.disable_container_interface:
            with Rtnl(ns) as c:
                c.link_up(args.ifname)
        if conf.is_gateway:
            gw_link = br
            if conf.vlan and gws:
                # the gateway must sit in the container's VLAN: on <bridge>.<vlan>, listed
                gw_link = _ensure_vlan_gateway(host, conf, br, undo)
                result.interfaces.append(Interface(gw_link.name, gw_link.mac))
            for gw in gws:
                _ensure_addr(host, gw_link, gw, conf.force_address)
            if gws:
                # pin the bridge MAC so it no longer follows port churn
                host.link_set(br.index, mac=host.link_get(br.index).mac)
            enable_forward(any(g.version == 4 for g in gws), any(g.version == 6 for g in gws))
        if conf.ip_masq and result.ips:
            from cni.fw import masq  # lazy: the firewall layer, only with ipMasq/macspoofchk
            ips = [ipc.address for ipc in result.ips]
            masq.setup(conf.name, args.container_id, args.ifname, ips, conf.ip_masq_backend or None)
            undo(masq.teardown, conf.name, args.container_id, args.ifname, ips,
                 conf.ip_masq_backend or None)
        if not conf.disable_container_interface:
            _wait_port_up(host, hv.index)
            if result.ips:
                _announce(ns, args.ifname, result)    # once the path through the bridge is up
        hv = host.link_get(hv.index)
        br = host.link_get(br.index)
        result.interfaces[0].mac = br.mac
        result.interfaces[1].mac = hv.mac
    return result


def delete(args: skel.Args, conf: Config) -> None:
    from cni.veth import delete_veth_and_masq  # lazy: carries the firewall layer (masq)
    if conf.ipam_type():
        # IPAM first, while the container interface still exists (dhcp sends its RELEASE on it)
        ipam.exec_del(conf, args)
    try:
        delete_veth_and_masq(args, conf)
    finally:  # best effort: the anti-spoofing rules go even if the above failed
        if conf.macspoofchk:
            from cni.fw import spoofchk  # lazy: the firewall layer, only with ipMasq/macspoofchk
            spoofchk.teardown(args.container_id, args.ifname)


def check(args: skel.Args, conf: Config) -> None:
    if conf.ipam_type():
        ipam.exec_check(conf, args)
    prev = conf.prev_result
    if prev is None:
        raise CNIError("required prevResult missing", "CHECK needs the ADD result")
    with Rtnl() as host:
        br = host.link_lookup(conf.bridge)
        if br is None or br.kind != "bridge":
            raise CNIError("bridge missing", f"{conf.bridge} does not exist or is not a bridge")
        if br.promisc != conf.promisc_mode:
            raise CNIError("bridge promiscuous mode mismatch", f"{conf.bridge}")
        want = next((i for i in prev.interfaces if i.name == conf.bridge and not i.sandbox), None)
        if want is not None and want.mac and want.mac.lower() != (br.mac or "").lower():
            raise CNIError("bridge MAC mismatch", f"{conf.bridge}: {br.mac} != {want.mac}")
        with open_netns(args.netns) as ns:
            peer = check_container_iface(ns, args, prev, kind="veth")
        check_host_veth(host, peer, prev, master=br.index, master_name=conf.bridge)
    if conf.ip_masq and prev.ips:
        from cni.fw import masq  # lazy: the firewall layer, only with ipMasq/macspoofchk
        masq.check(conf.name, args.container_id, args.ifname, [i.address for i in prev.ips],
                   conf.ip_masq_backend or None)


def status(args: skel.Args, conf: Config) -> None:
    if conf.ipam_type():
        ipam.exec_status(conf, args)


def gc(args: skel.Args, conf: Config) -> None:
    errors = []
    if conf.ipam_type():
        try:
            ipam.exec_gc(conf, args)
        except CNIError as exc:
            errors.append(exc)
    if conf.ip_masq:
        from cni.meta import valid_attachments  # lazy: GC only
        valid = valid_attachments(conf)
        if valid is not None:  # no list: nothing is known to be stale
            from cni.fw import masq  # lazy: the firewall layer, only with ipMasq/macspoofchk
            masq.gc(conf.name, valid, conf.ip_masq_backend or None)
    if errors:
        raise errors[0]


PLUGIN = skel.Plugin("bridge", Config, add=add, delete=delete, check=check, status=status, gc=gc,
                     embeds=ipam.EMBEDDABLE)
main = PLUGIN.main

if __name__ == "__main__":
    main()
