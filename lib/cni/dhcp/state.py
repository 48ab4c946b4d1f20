"""The dhcp daemon's lease state file, so that leases outlive a daemon restart.

One JSON document `{"v": 1, "leases": [record, ...]}`, mode 0600, replaced atomically (temporary
file in the same directory, fsync, rename, fsync of the directory). A record holds what a lease
keeper needs to take its lease back after a restart: the owner, the netns path, the options and
the last DHCPACK with the wall-clock time it was bound.
"""
from __future__ import annotations

import os
import time

from cni import atomicfile
from cni.std import json as jsonx
from cni.dhcp import client as C
from cni.dhcp import packet as P

STATE_VERSION = 1
STATE_SUFFIX = ".leases.json"


def state_path(statedir: str, socket_path: str) -> str:
    """`<statedir>/<socket name without .sock>.leases.json`; statedir defaults to the socket's."""
    base = os.path.basename(socket_path) or "dhcp"
    if base.endswith(".sock"):
        base = base[:-5] or "dhcp"
    return os.path.join(statedir or os.path.dirname(socket_path) or ".", base + STATE_SUFFIX)


def record(keeper, lease: C.Lease, *, clock=time.monotonic, wall=time.time) -> dict:
    """The record of one held lease."""
    return {"clientID": keeper.client_id.hex(), "containerID": keeper.container_id,
            "network": keeper.network, "ifName": keeper.ifname, "netns": keeper.netns or "",
            "request": list(keeper.request),
            "provide": {str(c): v.hex() for c, v in keeper.provide.items()},
            "ack": P.encode(lease.ack).hex(), "serverMAC": lease.server_mac.hex(),
            "boundAt": wall() - (clock() - lease.bound_at), "address": str(lease.address)}


class Restored:
    """A decoded record: keeper arguments plus the lease re-based on the monotonic clock."""

    __slots__ = ("client_id", "container_id", "network", "ifname", "netns", "request",
                 "provide", "lease")

    def __init__(self, rec: dict, *, clock=time.monotonic, wall=time.time):
        self.client_id = bytes.fromhex(_str(rec, "clientID"))
        self.container_id = _str(rec, "containerID")
        self.network = _str(rec, "network")
        self.ifname = _str(rec, "ifName")
        self.netns = _str(rec, "netns")
        req = rec.get("request")
        if not isinstance(req, list) or not all(isinstance(c, int) and 0 <= c <= 255 for c in req):
            raise ValueError("bad request list")
        self.request = req
        prov = rec.get("provide")
        if not isinstance(prov, dict):
            raise ValueError("bad provide map")
        self.provide = {int(c): bytes.fromhex(v) for c, v in prov.items()}
        bound = rec.get("boundAt")
        if not isinstance(bound, (int, float)) or isinstance(bound, bool):
            raise ValueError("bad boundAt")
        ack = P.decode(bytes.fromhex(_str(rec, "ack")))
        self.lease = C.Lease(ack, bytes.fromhex(_str(rec, "serverMAC")),
                             clock() - (wall() - bound))


def _str(rec: dict, key: str) -> str:
    v = rec.get(key)
    if not isinstance(v, str):
        raise ValueError(f"{key} is not a string")
    return v


def save(path: str, records: list) -> None:
    """Replace the state file with `records` (atomic; file and directory fsync'd)."""
    d = os.path.dirname(path) or "."
    os.makedirs(d, mode=0o700, exist_ok=True)
    data = jsonx.dumps({"v": STATE_VERSION, "leases": records}).encode()
    atomicfile.replace(path, data, tmp=f"{path}.tmp{os.getpid()}", sync_dir=True)


def load(path: str, log) -> list:
    """[Restored] from the state file; a missing file is empty, a bad file or record is logged
    and skipped (the daemon must start anyway)."""
    try:
        with open(path, "rb") as f:
            doc = jsonx.loads(f.read())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        log(f"ignoring unreadable lease state {path}: {exc}")
        return []
    if not isinstance(doc, dict) or doc.get("v") != STATE_VERSION \
            or not isinstance(doc.get("leases"), list):
        log(f"ignoring lease state {path}: unknown format")
        return []
    out = []
    for i, rec in enumerate(doc["leases"]):
        try:
            if not isinstance(rec, dict):
                raise ValueError("not an object")
            out.append(Restored(rec))
        except (ValueError, P.DHCPDecodeError, C.DHCPError) as exc:
            log(f"ignoring lease record {i} in {path}: {exc}")
    return out
