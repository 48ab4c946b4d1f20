"""Helpers shared by the chained (meta) plugins: portmap, firewall, bandwidth, tuning, sbr."""
from __future__ import annotations

from cni.config import lookup
from cni.errors import CNIError, InvalidConfigError


def string_list(value, field: str) -> list:
    """A config field that must be a list of strings (portmap conditionsV4/V6, sbr gateways)."""
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise InvalidConfigError("invalid config", f"{field} must be a list of strings")
    return value


def require_prev(conf, msg: str = "must be called as chained plugin"):
    """The parsed prevResult, or a CNIError when the runtime sent none."""
    if conf.prev_result is None:
        raise CNIError(msg, "prevResult is missing")
    return conf.prev_result


def container_ips(prev, ifname: str) -> list:
    """First IPv4 and first IPv6 address of the container interface (Go portmap rules).

    An address whose `interface` index names a host-side interface (no sandbox) or another
    interface than `ifname` is skipped; one without an index is taken.
    """
    out: dict = {}
    n = len(prev.interfaces)
    for ipc in prev.ips:
        fam = ipc.version
        if fam in out:
            continue
        idx = ipc.interface
        if idx is not None and 0 <= idx < n:
            itf = prev.interfaces[idx]
            if itf.name != ifname or not itf.sandbox:
                continue
        out[fam] = ipc.address
    return [out[k] for k in sorted(out)]


def ifname_ips(prev, ifname: str) -> list:
    """Every IPConfig of `ifname` (those without an interface index included), as Go sbr."""
    n = len(prev.interfaces)
    return [ipc for ipc in prev.ips
            if ipc.interface is None or not 0 <= ipc.interface < n
            or prev.interfaces[ipc.interface].name == ifname]


def valid_attachments(conf) -> list | None:
    """GC's valid attachments [(containerID, ifname)], or None when the request names none.

    Both spellings of the key are read (`cni.dev/valid-attachments`, and the
    `cni.dev/attachments` some runtimes send). None means "nothing is known to be stale":
    a GC handler then removes nothing. A list of the wrong shape is a config error (code 7).
    """
    key = "cni.dev/valid-attachments"
    if lookup(conf.raw, key) is None:
        key = "cni.dev/attachments"
    value = lookup(conf.raw, key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidConfigError("invalid GC request", f"{key} must be a list")
    out = []
    for i, a in enumerate(value):
        cid = a.get("containerID") if isinstance(a, dict) else None
        ifname = a.get("ifname") if isinstance(a, dict) else None
        if not isinstance(cid, str) or not isinstance(ifname, str):
            raise InvalidConfigError("invalid GC request",
                                     f"{key}[{i}] needs containerID and ifname strings")
        out.append((cid, ifname))
    return out
