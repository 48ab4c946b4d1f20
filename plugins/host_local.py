"""host-local: IPAM from ranges, one file per address under <dataDir>/<network>/.

Keys under `ipam`: subnet/rangeStart/rangeEnd/gateway (a legacy single range),
ranges [[{subnet, rangeStart?, rangeEnd?, gateway?}]], routes, dataDir
(default /var/lib/cni/networks), resolvConf. Capabilities: ipRanges, ips;
also args.cni.ips and CNI_ARGS IP=a[,b]. The store format is the Go plugin's,
so either implementation can take over a data directory.
"""
from __future__ import annotations

from cni import skel
from cni.errors import CNIError, IOFailureError, PluginNotAvailableError, os_details
from cni.ipam import IpamConf, allocator, resolvconf, sweep
from cni.ipam.allocator import data_dir
from cni.ipam.ranges import parse_ip
from cni.ipam.store import Store
from cni.std import oslite as os
from cni.types import Result


class Config(IpamConf):
    __slots__ = ()


def _store(conf):
    return Store(data_dir(conf.ipam), conf.name)


def _io(exc: OSError, what: str) -> CNIError:
    """Code 5 for any storage fault, a full store included: ENOSPC/EDQUOT are write
    failures that another ADD will meet too until someone frees space (not code 11's
    transient condition), and the errno name in the details says which."""
    return IOFailureError(f"{what} failed in the IPAM store", os_details(exc))


def add(args: skel.Args, conf: Config):
    ipc = allocator.load_config(conf, args.args)
    result = Result(conf.cni_version or "0.1.0")
    if ipc.resolv_conf:
        result.dns = resolvconf.load(ipc.resolv_conf)
    try:
        with _store(conf) as st:
            result.ips = allocator.allocate(ipc, st, args.container_id, args.ifname)
            st.commit()
    except OSError as exc:
        raise _io(exc, "ADD") from None
    result.routes = ipc.routes
    return result


def delete(args: skel.Args, conf: Config) -> None:
    # Only the store location matters: a DEL must release even if ranges changed.
    st = _store(conf)
    if not os.path.isdir(st.dir):
        return
    try:
        with st:
            st.release(args.container_id, args.ifname)
    except OSError as exc:
        raise _io(exc, "DEL") from None


def check(args: skel.Args, conf: Config) -> None:
    allocator.load_config(conf, args.args)
    st = _store(conf)
    try:
        with st:
            found = st.find(args.container_id, args.ifname)
    except OSError as exc:
        raise _io(exc, "CHECK") from None
    if not found:
        raise CNIError("failed to find address added by container",
                       f"no reservation for {args.container_id} {args.ifname} in {st.dir}")


def status(args: skel.Args, conf: Config) -> None:
    ipc = allocator.load_config(conf, args.args)
    st = _store(conf)
    try:
        with st:
            st.probe()
            _check_space(ipc, st)
    except (OSError, IOFailureError) as exc:
        raise PluginNotAvailableError("IPAM store is not usable", f"{st.dir}: {exc}") from None


def _check_space(ipc, st) -> None:
    with os.scandir(st.dir) as it:
        names = [e.name for e in it]
    if len(names) < min(rs.size() for rs in ipc.range_sets):
        return  # no set can be full: skip parsing names
    addrs = []
    for n in names:
        try:
            addrs.append(parse_ip(n))
        except ValueError:
            pass
    for idx, rs in enumerate(ipc.range_sets):
        used = sum(1 for a in addrs if rs.contains(*a) and not rs.range_for(*a).is_gateway(a[1]))
        if used >= rs.size():
            raise PluginNotAvailableError("no IP addresses available",
                                          f"range set {idx} ({rs}) is full")


def gc(args: skel.Args, conf: Config) -> None:
    from cni.meta import valid_attachments  # lazy: GC only
    valid = valid_attachments(conf)
    if valid is None:
        return  # no list given: nothing is known to be stale
    keep = set(valid)
    st = _store(conf)
    if not os.path.isdir(st.dir):
        return
    try:
        with st:
            sweep.gc(st, keep)
    except OSError as exc:
        raise _io(exc, "GC") from None


PLUGIN = skel.Plugin("host-local", Config, add=add, delete=delete, check=check, status=status,
                     gc=gc)
main = PLUGIN.main

if __name__ == "__main__":
    main()
