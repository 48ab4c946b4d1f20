"""Nothing to do, nothing to load: no-op answers of the chained plugins, before the plugin loads.

A chained plugin whose config asks for nothing (tuning without changes, portmap without
mappings, bandwidth without limits, firewall DEL with no recorded addresses, bandwidth DEL
with no IFB to remove) answers here,
from the zipapp's boot, with prevResult passed through in the config's version, so the
exec costs little more than the interpreter's start (no skel, no `os`, no plugin module).

Only inputs that are plainly valid and plainly a no-op are answered; anything else (an
unknown or odd-looking key, a value to validate, malformed CNI_ARGS, an unusual netns
path) returns False and the plugin runs as usual, on the same stdin bytes, and reports
what is wrong as it always does.
"""
from __future__ import annotations

import _socket
import io
import posix
import sys

from cni.cniargs import load_cni_args, parse_cni_args, valid_id
from cni.convert import from_json, to_json
from cni.errors import CNIError
from cni.names import ifb_name
from cni.std import json as jsonx
from cni.types import Result

STDIN_LIMIT = 4 << 20
BASE = {"cniVersion", "name", "type", "prevResult", "capabilities", "runtimeConfig"}
# (plugin, verb) -> lower-cased config keys that may ask for work: present -> not a no-op.
# Base keys with validation of their own (args, ipam, dns) count as work too.
WORK = ("args", "ipam", "dns")
NOOP = {
    ("tuning", "ADD"): WORK + ("sysctl", "mac", "promisc", "mtu", "txqlen", "allmulti", "datadir",
                               "ifname"),
    ("tuning", "DEL"): WORK + ("sysctl", "mac", "promisc", "mtu", "txqlen", "allmulti", "datadir",
                               "ifname"),
    ("portmap", "ADD"): WORK + ("backend", "snat", "markmasqbit", "externalsetmarkchain",
                                "conditionsv4", "conditionsv6", "masqall"),
    ("portmap", "CHECK"): WORK + ("backend", "snat", "markmasqbit", "externalsetmarkchain",
                                  "conditionsv4", "conditionsv6", "masqall"),
    ("bandwidth", "ADD"): WORK + ("ingressrate", "ingressburst", "egressrate", "egressburst",
                                  "shapedsubnets", "unshapedsubnets"),
    ("bandwidth", "DEL"): WORK + ("ingressrate", "ingressburst", "egressrate", "egressburst",
                                  "shapedsubnets", "unshapedsubnets"),
    ("firewall", "DEL"): WORK + ("iptablesadminchainname", "firewalldzone", "ingresspolicy"),
}
PLUGINS = sorted({p for p, _ in NOOP})
TUNING_DATA_DIR = "/run/cni/tuning"        # cni.meta.tuning.DEFAULT_DATA_DIR
ENV = posix.environ                        # bytes -> bytes, as the process started


def _env(name: str) -> str:
    v = ENV.get(name.encode())
    return "" if v is None else v.decode("utf-8", "surrogateescape")


def _plain_ifname(s: str) -> bool:
    return 0 < len(s) <= 15 and s not in (".", "..") and all(
        c.isascii() and (c.isalnum() or c in "_.-") for c in s)


def _plain_netns(path: str) -> bool:
    """An nsfs file under /run/netns or /proc/N/ns/net that is not our own netns."""
    if not (path.startswith(("/run/netns/", "/var/run/netns/")) or path.endswith("/ns/net")) \
            or "/../" in path:
        return False
    try:
        st, own = posix.stat(path), posix.stat("/proc/self/ns/net")
    except (OSError, ValueError):
        return False
    return st.st_dev == own.st_dev and st.st_ino != own.st_ino


def _is_own(path: str) -> bool:
    """As skel's check: the path is our own netns (unreadable paths are not)."""
    try:
        a, b = posix.stat(path), posix.stat("/proc/self/ns/net")
    except (OSError, ValueError):
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _cni_args_ok(s: str) -> bool:
    """Well-formed K=V pairs (as Go's LoadArgs wants); anything else goes to the plugin."""
    try:
        parse_cni_args(s)
    except CNIError:
        return False
    return True


def _decide(plugin: str, versions: tuple, cmd: str, raw: bytes):
    """The stdout text for a no-op, or None when the plugin must run."""
    work = NOOP.get((plugin, cmd))
    if work is None:
        return None
    if not valid_id(_env("CNI_CONTAINERID")) or len(_env("CNI_CONTAINERID")) > 1024 \
            or not _plain_ifname(_env("CNI_IFNAME")):
        return None
    netns = _env("CNI_NETNS")
    if _env("CNI_NETNS_OVERRIDE") or (cmd in ("ADD", "CHECK") and not _plain_netns(netns)) \
            or (netns and _is_own(netns)):
        return None
    if not _cni_args_ok(_env("CNI_ARGS")):
        return None
    if plugin == "tuning" and cmd == "ADD" and _env("CNI_ARGS") \
            and load_cni_args(_env("CNI_ARGS"), ("MAC",)).get("MAC"):
        return None                            # as tuning reads it (unknown keys raise)
    obj = jsonx.loads(raw)
    if not isinstance(obj, dict):
        return None
    for k in obj:
        low = k.lower()
        if low in work or (k not in BASE and any(low == b.lower() for b in BASE)):
            return None
    ver, name = obj.get("cniVersion"), obj.get("name")
    if not isinstance(ver, str) or ver not in versions or not isinstance(name, str) \
            or not valid_id(name) or len(name) > 255 or not isinstance(obj.get("type"), str):
        return None
    if plugin == "tuning" and b"sysctl" in raw.lower():
        return None                            # the plugin scans the raw text for duplicates
    if cmd == "CHECK" and ver in ("0.1.0", "0.2.0", "0.3.0", "0.3.1"):
        return None
    rc, caps = obj.get("runtimeConfig", {}), obj.get("capabilities", {})
    if not isinstance(rc, dict) or not isinstance(caps, dict):
        return None
    rc_keys = {str(k).lower(): v for k, v in rc.items()}    # as Go (and cni.config) match keys
    if plugin == "tuning" and "mac" in rc_keys:
        return None
    if plugin == "portmap" and rc_keys.get("portmappings") not in (None, []):
        return None
    if plugin == "bandwidth" and "bandwidth" in rc_keys:
        return None
    if plugin == "firewall" and obj.get("backend", "") not in ("", "iptables", "firewalld"):
        return None
    prev = obj.get("prevResult")
    result = None if prev is None else from_json(prev, ver)
    if cmd == "DEL":
        if plugin == "tuning":
            cid, ifname = _env("CNI_CONTAINERID"), _env("CNI_IFNAME")
            try:
                posix.stat(f"{TUNING_DATA_DIR}/{cid}_{ifname}.json")
                return None                    # something to restore
            except FileNotFoundError:
                return ""
            except OSError:
                return None
        if plugin == "firewall":
            # no prevResult: a 0.3.x DEL reads the addresses from the netns, and nftables rules
            # are found by comment: only a result without addresses is nothing to do
            return "" if result is not None and not result.ips else None
        if plugin == "bandwidth":
            # DEL removes the container's IFB (in our netns) whatever the config says now:
            # with none by that name, there is nothing to do
            try:
                _socket.if_nametoindex(ifb_name(name, _env("CNI_CONTAINERID")))
            except OSError:
                return ""
            return None
        return None
    if result is None:
        if plugin != "bandwidth":
            return None                        # the plugin reports the missing prevResult
        result = Result(ver)
    if cmd == "CHECK":
        return ""
    return jsonx.dumps(to_json(result, ver), indent=4)


def run(plugin: str, versions: tuple) -> bool:
    """Answer a no-op and exit; False (stdin kept for the plugin) when there is work."""
    cmd = _env("CNI_COMMAND")
    if (plugin, cmd) not in NOOP:
        return False
    try:
        raw = sys.stdin.buffer.read(STDIN_LIMIT + 1)
    except OSError:
        return False
    try:
        out = None if len(raw) > STDIN_LIMIT else _decide(plugin, versions, cmd, raw)
    except (CNIError, ValueError, TypeError, AttributeError, RecursionError):
        out = None
    if out is None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(raw))
        return False
    try:
        sys.stdout.write(out)
        sys.stdout.flush()
    except OSError:
        pass
    posix._exit(0)
