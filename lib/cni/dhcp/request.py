"""The daemon's reading of a request and writing of a reply: the args of an operation checked
(codes 4, 6, 7), the DHCP options that the ipam section and CNI_ARGS ask for, and a lease as
the CNI result (see cni.dhcp.daemon for the protocol).
"""
from __future__ import annotations

from cni.config import check_attachment, load_object
from cni.dhcp import client as C
from cni.dhcp import packet as P
from cni.errors import DecodingError, InvalidConfigError


def netconf(args: dict) -> tuple[dict, dict]:
    """(network configuration, its ipam section) from args.config, checked."""
    raw = args.get("config")
    if not isinstance(raw, str):
        raise DecodingError("invalid daemon request", "args.config must be a string")
    conf = load_object(raw, "error parsing netconf", "not a JSON object")
    if not isinstance(conf.get("name", ""), str):
        raise InvalidConfigError("invalid network name", "name must be a string")
    ipam = conf.get("ipam") or {}
    if not isinstance(ipam, dict):
        raise InvalidConfigError("invalid ipam section", "not an object")
    prio = ipam.get("priority") or 0
    if not isinstance(prio, int) or isinstance(prio, bool) or not 0 <= prio < 1 << 32:
        raise InvalidConfigError("invalid ipam.priority", repr(prio)[:64])
    return conf, ipam


def arg_str(args: dict, key: str) -> str:
    """args[key], a string ("" when absent)."""
    v = args.get(key, "")
    if not isinstance(v, str):
        raise DecodingError("invalid daemon request", f"args.{key} must be a string")
    return v


def owner(args: dict) -> tuple[str, str]:
    """(containerID, ifName), checked as CNI_CONTAINERID and CNI_IFNAME are."""
    cid, ifname = arg_str(args, "containerID"), arg_str(args, "ifName")
    check_attachment(cid, ifname, "containerID", "ifName")
    return cid, ifname


def prepare_options(cni_args: str, ipam: dict) -> tuple[list, dict]:
    """(request list, {code: value}) from the ipam `request`/`provide` entries and CNI_ARGS."""
    parsed = {}
    for pair in (cni_args or "").split(";"):
        if "=" in pair:
            k, v = pair.split("=", 1)
            parsed[k] = v
    provide: dict = {}
    for key in ("provide", "request"):
        if not isinstance(ipam.get(key) or [], list):
            raise InvalidConfigError(f"invalid ipam.{key}", "not a list")
    for ent in ipam.get("provide") or []:
        if not isinstance(ent, dict):
            raise InvalidConfigError("invalid provide entry", repr(ent))
        try:
            code = P.parse_option_name(ent.get("option", ""))
        except ValueError as exc:
            raise InvalidConfigError(f"can not parse option {ent.get('option')!r}",
                                     str(exc)) from None
        value = ent.get("value") or ""
        arg = ent.get("fromArg")
        if not isinstance(value, str) or not isinstance(arg if arg is not None else "", str):
            raise InvalidConfigError("invalid provide entry", "value and fromArg are strings")
        if value:
            if len(value.encode()) > 255:
                raise InvalidConfigError(f"value too long for option {ent.get('option')!r}")
            provide[code] = value.encode()
        if arg and arg in parsed:
            if len(parsed[arg].encode()) > 255:
                raise InvalidConfigError(f"value too long for option {ent.get('option')!r} "
                                         f"from CNI_ARGS {arg!r}")
            provide[code] = parsed[arg].encode()
    request: list = []
    skip_default = False
    for ent in ipam.get("request") or []:
        if not isinstance(ent, dict):
            raise InvalidConfigError("invalid request entry", repr(ent))
        skip_default = skip_default or bool(ent.get("skipDefault"))
        try:
            code = P.parse_option_name(ent.get("option", ""))
        except ValueError as exc:
            raise InvalidConfigError(f"can not parse option {ent.get('option')!r}",
                                     str(exc)) from None
        if code not in request:
            request.append(code)
    if not skip_default:
        for code in (P.OPT_ROUTER, P.OPT_SUBNET_MASK):
            if code not in request:
                request.append(code)
    return request, provide


def lease_result(lease: C.Lease, priority: int = 0) -> dict:
    """CNI 1.1.0 result JSON for a lease."""
    ipc = {"address": str(lease.interface())}
    gw = lease.gateway()
    if gw is not None:
        ipc["gateway"] = str(gw)
    routes = []
    for dst, via, scope in lease.routes():
        r = {"dst": str(dst), "gw": str(via)}
        if priority:
            r["priority"] = priority
        if scope is not None:
            r["scope"] = scope
        routes.append(r)
    res = {"cniVersion": "1.1.0", "ips": [ipc], "routes": routes}
    dns = lease.dns()
    if dns:
        res["dns"] = dns
    return res


def gc_keep(args: dict) -> set | None:
    """The attachments a GC request keeps, or None (no list given: keep everything)."""
    valid = args.get("valid")
    if valid is None:
        return None
    if not isinstance(valid, list):
        raise DecodingError("invalid daemon request", "args.valid must be a list")
    keep = set()
    for pair in valid:
        if not (isinstance(pair, list) and len(pair) == 2
                and all(isinstance(x, str) for x in pair)):
            raise DecodingError("invalid daemon request",
                                "args.valid holds [containerID, ifName] pairs")
        keep.add(tuple(pair))
    return keep
