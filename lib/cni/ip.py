"""Helpers shared by the interface plugins: netns opening, veth pairs, forwarding, teardown."""
from __future__ import annotations

import errno

from cni import sysctl
from cni.errors import CNIError, InvalidConfigError, InvalidEnvError
from cni.netns import NetNS
from cni.nl.rtnl import Rtnl
from cni.nl.socket import NetlinkError
from cni.std import oslite as os


def open_netns(path: str):
    """Open CNI_NETNS for ADD/CHECK; a clear code-4 error naming it when that fails."""
    try:
        return NetNS.open(path)
    except CNIError:
        raise
    except OSError as exc:
        raise InvalidEnvError("cannot open CNI_NETNS",
                              f"{path}: {exc.strerror or exc}") from None


def open_netns_for_del(path: str):
    """Open CNI_NETNS for DEL: None when it is empty or already gone (DEL is idempotent)."""
    if not path:
        return None
    try:
        return NetNS.open(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ESRCH, errno.EINVAL):  # ESRCH: a dead pid's /proc path
            return None
        raise InvalidEnvError("cannot open CNI_NETNS", f"{path}: {exc.strerror or exc}") from None
    except CNIError:
        return None   # no longer a netns (e.g. the bind mount is gone): nothing to undo inside


def in_netns_for_del(path: str, fn, default=None):
    """fn(Rtnl) with an Rtnl in CNI_NETNS, for a DEL: `default` when the netns is empty or
    already gone (open_netns_for_del)."""
    ns = open_netns_for_del(path)
    if ns is None:
        return default
    with ns, Rtnl(ns) as h:
        return fn(h)


def random_veth_name() -> str:
    return "veth" + os.urandom(4).hex()


def setup_veth(host, cont_ns, ifname: str, *, mtu: int = 0, mac: str | None = None,
               host_name: str | None = None):
    """Create a veth pair from the host side; the peer is born in `cont_ns` named `ifname`.

    `host` is an Rtnl bound to the host netns. Returns (host_link, container_link).
    A failure after the pair exists deletes it; a killed plugin leaves a pair that DEL
    removes by deleting `ifname` in the container.
    """
    with Rtnl(cont_ns) as cont:
        if cont.link_lookup(ifname) is not None:
            raise CNIError("container interface already exists",
                           f"{ifname} already exists in {cont_ns.path}")
        for attempt in range(10):
            name = host_name or random_veth_name()
            try:
                hl = host.veth_add(name, ifname, peer_netns=cont_ns, mtu=mtu, peer_mac=mac)
                break
            except NetlinkError as exc:
                if exc.errno != errno.EEXIST or host_name or attempt == 9:
                    if exc.errno == errno.EEXIST and cont.link_lookup(ifname) is not None:
                        raise CNIError("container interface already exists",
                                       f"{ifname} already exists in {cont_ns.path}") from None
                    raise CNIError("failed to create veth pair", f"{name}/{ifname}: {exc}") from None
        try:
            sysctl.ensure(f"net/ipv6/conf/{name}/accept_ra", "0", missing_ok=True)
            host.link_up(hl.index)
            cl = cont.link_get(ifname)
            hl = host.link_get(hl.index)
        except BaseException:   # our own partial work: the pair goes with its host end
            try:
                host.link_del(hl.index)
            except OSError:
                pass
            raise
    return hl, cl


def enable_forward(ipv4: bool, ipv6: bool) -> None:
    """Turn on IP forwarding in the current (host) netns, as Go's EnableForward."""
    if ipv4:
        sysctl.ensure("net/ipv4/ip_forward", "1", missing_ok=True)
    if ipv6:
        sysctl.ensure("net/ipv6/conf/all/forwarding", "1", missing_ok=True)


def del_link_collect_addrs(ns, ifname: str, collect: bool = True) -> list:
    """Delete `ifname` in `ns`, returning its global addresses (ip_interface list).

    A missing link returns []. Deleting a veth end removes its peer too. With
    collect=False no addresses are read (and `ipaddress` is not imported).
    """
    with Rtnl(ns) as h:
        link = h.link_lookup(ifname)
        if link is None:
            return []
        addrs = global_addrs(h, link.index) if collect else []
        h.link_del(link.index, missing_ok=True)
    return addrs


def global_addrs(h, index: int) -> list:
    """The global (scope universe) addresses of link `index` (ip_interface list)."""
    return [a.interface for a in h.addr_list(index) if a.scope == 0]


def container_addrs(netns: str, ifname: str) -> list:
    """Global addresses (ip_interface list) of `ifname` in CNI_NETNS; [] when the netns or the
    link is gone. For a DEL that has no prevResult (0.3.x runtimes send none)."""
    def addrs(h) -> list:
        link = h.link_lookup(ifname)
        return global_addrs(h, link.index) if link else []
    return in_netns_for_del(netns, addrs, [])


def check_mac(mac) -> str:
    """Validate a MAC address string (xx:xx:xx:xx:xx:xx); returns it lower-cased."""
    parts = mac.split(":") if isinstance(mac, str) else []
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p)
                                  for p in parts):
        raise InvalidConfigError("invalid MAC address", f"{mac!r}")
    return mac.lower()
