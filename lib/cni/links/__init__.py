"""Shared steps of the single-link plugins (macvlan, ipvlan, vlan, dummy, tap, host-device).

Links are born inside the container netns under their final name (IFLA_NET_NS_FD on the
RTM_NEWLINK), so a plugin killed half-way never strands a temporary link in the host.
ADD = create -> IPAM -> configure, every step undone on failure; DEL = IPAM DEL -> delete the
link (a missing netns or link is success); CHECK = prevResult against the kernel.
"""
from __future__ import annotations

import errno

from cni import ipam, skel, sysctl
from cni.check import check_container_iface
from cni.errors import CNIError, InvalidConfigError
from cni.ip import check_mac, del_link_collect_addrs, open_netns, open_netns_for_del
from cni.ipam.configure import configure_iface
from cni.nl.rtnl import Rtnl
from cni.nl.socket import NetlinkError
from cni.types import Interface, Result


def resolve_mac(conf_mac, args, runtime_config) -> str | None:
    """Container MAC as Go: config `mac` < CNI_ARGS MAC < runtimeConfig.mac (validated)."""
    mac = conf_mac or None
    if args.args:
        mac = args.cni_args("MAC").get("MAC") or mac
    if isinstance(runtime_config, dict) and runtime_config.get("mac"):
        mac = runtime_config["mac"]
    return check_mac(mac) if mac else None


def default_route_iface(h) -> str:
    """Name of the link holding the first default route (v4 or v6, main table) seen by `h`."""
    for r in h.route_list(family=0):
        if r.dst.prefixlen == 0 and r.oif:
            link = h.link_lookup(r.oif)
            if link is not None:
                return link.name
    raise CNIError("no default route interface found",
                   "set \"master\": the namespace has no default route")


def resolve_master(name: str, cont_ns=None, *, mtu: int = -1):
    """(master name, master Link, Rtnl where it lives); caller closes the Rtnl.

    The master lives in the plugin's netns, or in `cont_ns` (linkInContainer). An empty
    name means the default-route link there. Checks 0 <= mtu <= master MTU when mtu >= 0.
    """
    h = Rtnl(cont_ns) if cont_ns is not None else Rtnl()
    try:
        if not name:
            name = default_route_iface(h)
        link = h.link_lookup(name)
        if link is None:
            where = "the container" if cont_ns is not None else "the host"
            raise CNIError("master interface not found", f"{name} does not exist in {where}")
        if mtu > link.mtu:
            raise InvalidConfigError(f"invalid MTU {mtu}, must be [0, master MTU({link.mtu})]",
                                     f"master {name} has MTU {link.mtu}")
        return name, link, h
    except BaseException:
        h.close()
        raise


def ensure_absent(ns, ifname: str) -> None:
    with Rtnl(ns) as c:
        if c.link_lookup(ifname) is not None:
            raise CNIError("container interface already exists",
                           f"{ifname} already exists in {ns.path}")


def create_link(h, ns, ifname: str, kind: str, *, parent=None, in_container: bool = False,
                mtu: int = 0, mac: str | None = None, **opts):
    """Create `kind` named `ifname` directly in container netns `ns`; returns the kernel's Link.

    `h` is the Rtnl where the parent lives (the host, or the container with linkInContainer).
    """
    ensure_absent(ns, ifname)
    try:
        if in_container:
            return h.link_add(ifname, kind, parent=parent, mtu=mtu, mac=mac, **opts)
        return h.link_add(ifname, kind, parent=parent, mtu=mtu, mac=mac, netns=ns, **opts)
    except NetlinkError as exc:
        if exc.errno == errno.EEXIST:
            raise CNIError("container interface already exists",
                           f"{ifname} already exists in {ns.path}") from None
        raise CNIError(f"failed to create {kind}", f"{ifname}: {exc}") from None


def l3_or_up(args, conf, ns, link, undo, *, sysctls=("arp_notify", "ndisc_notify"),
             ipam_required: bool = False, prev=None):
    """IPAM ADD (+ undo) or prevResult IPs, sysctls, addresses/routes; L2 = link up.

    Returns the Result (interface 0 = the container link).
    """
    ifaces = [Interface(args.ifname, link.mac or "", args.netns)]
    if prev is not None and prev.ips and not conf.ipam_type():
        result = ipam.relabel(prev, conf, ifaces, 0)        # chained (ipvlan): reuse its IPs
    elif conf.ipam_type():
        result = ipam.add(conf, args, undo, ifaces, 0)
    elif ipam_required:
        raise InvalidConfigError("missing IPAM configuration", "this plugin needs \"ipam\"")
    else:
        with Rtnl(ns) as c:
            c.link_up(link.index)
        return ipam.relabel(Result(conf.cni_version), conf, ifaces, 0)
    configure(ns, args.ifname, result, sysctls)
    return result


def configure(ns, ifname: str, result, sysctls=("arp_notify", "ndisc_notify")) -> None:
    for key in sysctls:
        fam = "ipv6" if key == "ndisc_notify" else "ipv4"
        sysctl.ensure(f"net/{fam}/conf/{ifname}/{key}", "1", ns=ns, missing_ok=True)
    configure_iface(ns, ifname, result)


def delete(args, conf, *, with_ipam: bool = True) -> None:
    """IPAM DEL (when configured) then delete CNI_IFNAME; missing netns/link = success."""
    if with_ipam and conf.ipam_type():
        ipam.exec_del(conf, args)
    ns = open_netns_for_del(args.netns)
    if ns is not None:
        with ns:
            del_link_collect_addrs(ns, args.ifname)


def status(args, conf) -> None:
    """STATUS: forward to the IPAM delegate (when configured)."""
    if conf.ipam_type():
        ipam.exec_status(conf, args)


def gc(args, conf) -> None:
    """GC: forward to the IPAM delegate (when configured), which drops stale reservations."""
    if conf.ipam_type():
        ipam.exec_gc(conf, args)


def check(args, conf, *, kind: str | None, verify=None, with_ipam: bool = True):
    """IPAM CHECK (if set), then prevResult iface/MAC/IPs/routes; `verify(link)` adds kind checks."""
    if with_ipam and conf.ipam_type():
        ipam.exec_check(conf, args)
    prev = conf.prev_result
    if prev is None:
        raise CNIError("required prevResult missing", "CHECK needs the ADD result")
    with open_netns(args.netns) as ns:
        check_container_iface(ns, args, prev, kind=kind)
        if verify is not None:
            with Rtnl(ns) as c:
                verify(c.link_get(args.ifname))
    return prev


def info(link, key: str, default=None):
    """An IFLA_INFO_DATA attribute of `link` (e.g. IFLA_MACVLAN_MODE)."""
    data = link.info
    if data is None or isinstance(data, (bytes, bytearray)):
        return default
    return data.get(key, default)


def plugin(name: str, config, *, add, check, delete=delete, status=status, gc=gc):
    """The skel.Plugin of a single-link plugin: DEL, STATUS and GC of this module unless
    given, and the IPAM plugins its archive runs in-process (cni.embed)."""
    return skel.Plugin(name, config, add=add, check=check, delete=delete, status=status, gc=gc,
                       embeds=ipam.EMBEDDABLE)
