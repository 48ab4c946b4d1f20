"""Result JSON <-> model, for every spec version (0.1.0 ... 1.1.0).

Families: '0.2' (0.1.0, 0.2.0: ip4/ip6 objects), '0.4' (0.3.0-0.4.0: interfaces,
ips with 'version'), '1' (1.0.0, 1.1.0). The model is the 1.1 shape, so every
conversion is "parse into the model, print in the target version".
"""
from __future__ import annotations

from cni import version as _v
from cni.errors import DecodingError, IncompatibleVersionError
from cni.types import DNS, Interface, IPConfig, Result, Route, check_cidr, check_ip

U8, U32 = 0xFF, 0xFFFFFFFF
MAX_ROUTES = 4096        # per list: generous, but a config cannot make us build 10^6 routes


def from_json(obj, default_version: str = "") -> Result:
    """Parse a result object. A result without cniVersion takes default_version."""
    if not isinstance(obj, dict):
        raise DecodingError("invalid result", "result must be a JSON object")
    ver = obj.get("cniVersion") or default_version or "0.1.0"
    if not isinstance(ver, str):
        raise DecodingError("invalid result", "cniVersion must be a string")
    fam = _v.family(ver)
    if fam == "0.2":
        res = _from_020(obj)
    else:
        res = _from_040_100(obj, fam)
    res.cni_version = ver
    return res


def _list(v, what: str) -> list:
    """A JSON list; None (absent) is an empty one."""
    if v is not None and not isinstance(v, list):
        raise DecodingError("invalid result", f"{what} must be a list")
    return v or []


def _obj(v, what: str) -> dict:
    if not isinstance(v, dict):
        raise DecodingError("invalid result", f"{what} must be an object")
    return v


def _int(d: dict, key: str, what: str, optional: bool = False, top: int = U32):
    """d[key] as an int in 0..top (the width of the kernel field it ends up in)."""
    v = d.get(key)
    if v is None:
        return None if optional else 0
    if isinstance(v, bool) or not isinstance(v, int):
        raise DecodingError("invalid result", f"{what}.{key} must be an integer")
    if not 0 <= v <= top:
        raise DecodingError("invalid result", f"{what}.{key} must be between 0 and {top}")
    return v


def _route(d, what: str) -> Route:
    d = _obj(d, what)
    dst = check_cidr(d.get("dst"), f"{what}.dst")
    gw = d.get("gw")
    if gw not in (None, ""):
        check_ip(gw, f"{what}.gw")
    # RTA_PRIORITY, RTA_TABLE and the RTAX_* metrics are u32, rtm_scope a u8
    return Route(dst, gw, mtu=_int(d, "mtu", what), advmss=_int(d, "advmss", what),
                 priority=_int(d, "priority", what), table=_int(d, "table", what, True),
                 scope=_int(d, "scope", what, True, U8))


def parse_routes(v, what: str) -> list:
    """A JSON list of route objects (None: none), at most MAX_ROUTES of them."""
    v = _list(v, what)
    if len(v) > MAX_ROUTES:
        raise DecodingError("too many routes",
                            f"{what} holds {len(v)} routes; at most {MAX_ROUTES} are allowed")
    return [_route(r, f"{what}[{i}]") for i, r in enumerate(v)]


def _from_020(obj: dict) -> Result:
    res = Result()
    for key in ("ip4", "ip6"):
        sect = obj.get(key)
        if sect is None:
            continue
        sect = _obj(sect, key)
        addr = check_cidr(sect.get("ip"), f"{key}.ip")
        gw = sect.get("gateway")
        if gw not in (None, ""):
            check_ip(gw, f"{key}.gateway")
        res.ips.append(IPConfig(addr, gw))
        res.routes.extend(parse_routes(sect.get("routes"), f"{key}.routes"))
    res.dns = DNS.from_dict(obj.get("dns"))
    return res


def _from_040_100(obj: dict, fam: str) -> Result:
    res = Result()
    for i, d in enumerate(_list(obj.get("interfaces"), "interfaces")):
        d = _obj(d, f"interfaces[{i}]")
        name = d.get("name", "")
        if not isinstance(name, str):
            raise DecodingError("invalid result", f"interfaces[{i}].name must be a string")
        res.interfaces.append(Interface(
            name, _s(d, "mac"), _s(d, "sandbox"), mtu=_int(d, "mtu", "interface") or 0,
            socket_path=_s(d, "socketPath"), pci_id=_s(d, "pciID")))
    for i, d in enumerate(_list(obj.get("ips"), "ips")):
        what = f"ips[{i}]"
        d = _obj(d, what)
        addr = check_cidr(d.get("address"), f"{what}.address")
        gw = d.get("gateway")
        if gw not in (None, ""):
            check_ip(gw, f"{what}.gateway")
        idx = _int(d, "interface", what, True)
        if fam == "0.4":
            ver = d.get("version")
            if ver not in ("4", "6"):
                raise DecodingError("invalid result", f"{what}.version must be \"4\" or \"6\"")
            if (ver == "6") != (":" in addr):
                raise DecodingError("invalid result", f"{what}.version does not match address")
        res.ips.append(IPConfig(addr, gw, idx))
    res.routes = parse_routes(obj.get("routes"), "routes")
    res.dns = DNS.from_dict(obj.get("dns"))
    return res


def _s(d: dict, key: str) -> str:
    v = d.get(key, "")
    if v is None:
        return ""
    if not isinstance(v, str):
        raise DecodingError("invalid result", f"{key} must be a string")
    return v


def _route_out(r: Route, full: bool) -> dict:
    d: dict = {"dst": r.dst_str}
    if r.gw_str:
        d["gw"] = r.gw_str
    if full:
        if r.mtu:
            d["mtu"] = r.mtu
        if r.advmss:
            d["advmss"] = r.advmss
        if r.priority:
            d["priority"] = r.priority
        if r.table is not None:
            d["table"] = r.table
        if r.scope is not None:
            d["scope"] = r.scope
    return d


def to_json(res: Result, ver: str) -> dict:
    """The result as the JSON object of version `ver` (IncompatibleVersionError if lossy-impossible)."""
    fam = _v.family(ver)
    if ver not in _v.ALL:
        raise IncompatibleVersionError("unsupported CNI result version", f"{ver!r}")
    if fam == "0.2":
        return _to_020(res, ver)
    out: dict = {"cniVersion": ver}
    if res.interfaces:
        ifs = []
        for i in res.interfaces:
            d = {"name": i.name}
            if i.mac:
                d["mac"] = i.mac
            if fam == "1" and i.mtu:
                d["mtu"] = i.mtu
            if i.sandbox:
                d["sandbox"] = i.sandbox
            if fam == "1" and i.socket_path:
                d["socketPath"] = i.socket_path
            if fam == "1" and i.pci_id:
                d["pciID"] = i.pci_id
            ifs.append(d)
        out["interfaces"] = ifs
    if res.ips:
        ips = []
        for ip in res.ips:
            d = {"version": str(ip.version)} if fam == "0.4" else {}
            if ip.interface is not None:
                d["interface"] = ip.interface
            d["address"] = ip.address_str
            if ip.gateway_str:
                d["gateway"] = ip.gateway_str
            ips.append(d)
        out["ips"] = ips
    if res.routes:
        out["routes"] = [_route_out(r, True) for r in res.routes]
    if fam == "0.4":
        out["dns"] = res.dns.to_dict()
    elif not res.dns.is_empty():
        out["dns"] = res.dns.to_dict()
    return out


def _to_020(res: Result, ver: str) -> dict:
    v4 = [ip for ip in res.ips if ip.version == 4]
    v6 = [ip for ip in res.ips if ip.version == 6]
    if not v4 and not v6:
        raise IncompatibleVersionError(
            "cannot convert result to an older version",
            f"version {ver} needs at least one IP address; this result has none")
    for fam, lst in (("IPv4", v4), ("IPv6", v6)):
        if len(lst) > 1:
            raise IncompatibleVersionError(
                "cannot convert result to an older version",
                f"version {ver} carries one {fam} address; this result has {len(lst)}")
    out: dict = {"cniVersion": ver}
    for key, lst, six in (("ip4", v4, False), ("ip6", v6, True)):
        if not lst:
            continue
        d: dict = {"ip": lst[0].address_str}
        if lst[0].gateway_str:
            d["gateway"] = lst[0].gateway_str
        routes = [_route_out(r, False) for r in res.routes if r.is_v6 == six]
        if routes:
            d["routes"] = routes
        out[key] = d
    out["dns"] = res.dns.to_dict()
    return out


def convert(res: Result, ver: str) -> Result:
    """Relabel after checking the target can express it (raises like to_json)."""
    to_json(res, ver)
    out = Result(ver, res.interfaces, res.ips, res.routes, res.dns)
    if _v.family(ver) == "0.2":
        out.interfaces = []
        out.ips = [IPConfig(ip.address_str, ip.gateway_str or None) for ip in res.ips]
    return out
