"""host-local allocation: Go's round-robin algorithm over a Store.

Per range set: a requested address is reserved if it is inside the set and
not a gateway; otherwise the attachment must not already hold an address in
the set, and candidates are tried in order starting after
`last_reserved_ip.<idx>` (or at the first range's rangeStart), skipping
gateways, wrapping through the set's ranges, until one full cycle is done.

Each candidate costs one link(2) that fails with EEXIST when taken, so an ADD
costs O(1) while addresses are handed out round-robin; after 32 taken
addresses in a row the directory is listed once and taken ones are skipped
without syscalls.
"""
from __future__ import annotations

from cni.cniargs import load_cni_args
from cni.config import lookup
from cni.convert import parse_routes
from cni.errors import CNIError, DecodingError, InvalidConfigError, InvalidEnvError
from cni.ipam import sweep
from cni.ipam.ranges import format_ip, load_range_sets, parse_ip, parse_ip_arg
from cni.types import IPConfig

SKIP_AFTER = 32


class IPAMConfig:
    __slots__ = ("range_sets", "routes", "data_dir", "resolv_conf", "requested")

    def __init__(self, range_sets, routes=(), data_dir: str = "", resolv_conf: str = "",
                 requested=()):
        self.range_sets = list(range_sets)
        self.routes = list(routes)
        self.data_dir = data_dir
        self.resolv_conf = resolv_conf
        self.requested = list(requested)


def ipam_section(conf) -> dict:
    ipam = conf.ipam
    if not isinstance(ipam, dict):
        raise InvalidConfigError("IPAM config missing 'ipam' key", "the config has no \"ipam\" object")
    return ipam


def data_dir(ipam: dict) -> str:
    d = lookup(ipam, "dataDir")
    if d is None:
        return ""
    if not isinstance(d, str) or "\x00" in d:
        raise InvalidConfigError("invalid IPAM config", "ipam.dataDir must be a string path")
    return d


def _str_field(ipam: dict, key: str) -> str:
    v = lookup(ipam, key)
    if v is None:
        return ""
    if not isinstance(v, str) or "\x00" in v:
        raise InvalidConfigError("invalid IPAM config", f"ipam.{key} must be a string without NUL")
    return v


def _ip_list(v, field: str) -> list:
    if v is None:
        return []
    if not isinstance(v, list):
        raise InvalidConfigError("invalid IPAM config", f"{field} must be a list of addresses")
    out = []
    for i, s in enumerate(v):
        try:
            out.append(parse_ip_arg(s))
        except ValueError as exc:
            raise InvalidConfigError("invalid IPAM config", f"{field}[{i}]: {exc}") from None
    return out


def requested_ips(conf, cni_args: str) -> list:
    """CNI_ARGS IP (comma-separated), then args.cni.ips, then runtimeConfig.ips; deduplicated."""
    out = []
    if cni_args:
        ip = load_cni_args(cni_args, ("IP",)).get("IP", "")
        for item in ip.split(",") if ip else ():
            try:
                out.append(parse_ip_arg(item.strip()))
            except ValueError as exc:
                raise InvalidEnvError("invalid CNI_ARGS", f"IP: {exc}") from None
    out += _ip_list(conf.cni_arg("ips"), "args.cni.ips")
    rc = conf.runtime_config if isinstance(conf.runtime_config, dict) else {}
    out += _ip_list(rc.get("ips"), "runtimeConfig.ips")
    seen, uniq = set(), []
    for a in out:
        if a not in seen:
            seen.add(a)
            uniq.append(a)
    return uniq


def load_config(conf, cni_args: str = "") -> IPAMConfig:
    """The whole IPAM config of a host-local request (code 7 on any invalid field)."""
    ipam = ipam_section(conf)
    rc = conf.runtime_config if isinstance(conf.runtime_config, dict) else {}
    sets = load_range_sets(ipam, rc.get("ipRanges"), conf.cni_version)
    try:
        routes = parse_routes(lookup(ipam, "routes"), "ipam.routes")
    except DecodingError as exc:
        raise InvalidConfigError("invalid IPAM config", exc.details or exc.msg) from None
    return IPAMConfig(sets, routes, data_dir(ipam), _str_field(ipam, "resolvConf"),
                      requested_ips(conf, cni_args))


def candidates(rs, last):
    """Go's RangeIter: yield (range, address) after `last` (an int inside rs, or None)."""
    ranges = rs.ranges
    n = len(ranges)
    idx, cur, start = 0, None, None
    if last is not None:
        for i, r in enumerate(ranges):
            if r.contains(rs.v6, last):
                idx, cur = i, last
                break
    while True:
        r = ranges[idx]
        if cur is None:
            cur = start = r.start
        else:
            if cur == r.end:
                idx = (idx + 1) % n
                r = ranges[idx]
                cur = r.start
            else:
                cur += 1
            if start is None:
                start = cur
            elif cur == start:
                return
        if r.gw == cur and r.gw_v6 == r.v6:
            continue
        yield r, cur


def _round_robin(rs, store, last):
    misses = 0
    taken = None
    v6 = rs.v6
    for r, n in candidates(rs, last):
        if taken is not None and n in taken:
            continue
        name = format_ip(v6, n)
        if store.reserve(name):
            return r, n, name
        misses += 1
        if misses == SKIP_AFTER:
            taken = sweep.taken(store, v6)
    return None


def allocate(ipc: IPAMConfig, store, cid: str, ifname: str) -> list:
    """Reserve one address per range set; all or nothing. Returns [IPConfig]."""
    store.begin(cid, ifname)
    sets = ipc.range_sets
    pending = list(ipc.requested)
    need_dup = len(pending) < len(sets)
    marks = [store.last_reserved(i) for i in range(len(sets))]
    owned = []
    if need_dup:
        scan = False
        if not all(ours for _, ours in marks):
            scan = not store.adopt()
            store.begin(cid, ifname)
        if scan or store.owner_exists(cid, ifname):
            mine, legacy = store.owned(cid, ifname)
            for name in mine + legacy:
                try:
                    owned.append(parse_ip(name))
                except ValueError:
                    pass
    made, out = [], []
    try:
        for idx, rs in enumerate(sets):
            req = next((a for a in pending if rs.contains(*a)), None)
            if req is not None:
                pending.remove(req)
                r = rs.range_for(*req)
                name = format_ip(*req)
                if r.is_gateway(req[1]):
                    raise CNIError(f"failed to allocate for range {idx}",
                                   f"requested ip {name} is subnet's gateway")
                if not store.reserve(name):
                    raise CNIError(f"failed to allocate for range {idx}",
                                   f"requested IP address {name} is not available in range set {rs}")
                n = req[1]
            else:
                for a in owned:
                    if rs.contains(*a):
                        raise CNIError(f"failed to allocate for range {idx}",
                                       f"{format_ip(*a)} has been allocated to {cid}, "
                                       "duplicate allocation is not allowed")
                last = None
                if marks[idx][0]:
                    try:
                        v6, ln = parse_ip(marks[idx][0])
                        if rs.contains(v6, ln):
                            last = ln
                    except ValueError:
                        pass
                got = _round_robin(rs, store, last)
                if got is None:
                    raise CNIError(f"failed to allocate for range {idx}",
                                   f"no IP addresses available in range set: {rs}")
                r, n, name = got
            made.append(name)
            store.set_last_reserved(idx, name)
            out.append(IPConfig(r.address_str(n), r.gateway_str))
        if pending:
            raise CNIError("failed to allocate all requested IPs",
                           " ".join(format_ip(*a) for a in pending))
    except BaseException:
        store.unreserve(made)
        raise
    return out
