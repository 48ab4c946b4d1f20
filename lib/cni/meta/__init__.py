"""Helpers shared by the chained (meta) plugins: portmap, firewall, bandwidth, tuning, sbr."""
from __future__ import annotations

from cni.errors import CNIError


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


def valid_attachments(conf) -> list:
    """GC's valid attachments [(containerID, ifname)] from either spelling of the key."""
    raw = conf.raw.get("cni.dev/valid-attachments")
    if raw is None:
        raw = conf.raw.get("cni.dev/attachments")
    out = []
    for a in raw or ():
        if isinstance(a, dict) and isinstance(a.get("containerID"), str):
            out.append((a["containerID"], a.get("ifname") or ""))
    return out
