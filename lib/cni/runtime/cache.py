"""The result cache, in libcni's on-disk format (shared with Go runtimes).

One file per attachment: `<cache_dir>/results/<network>-<containerID>-<ifname>`,
directory mode 0700, file mode 0600, holding the compact Go-marshalled object

    {"kind":"cniCacheV1","containerId":..,"config":<base64 of the config bytes>,
     "ifName":..,"networkName":..,"netns":..,"cniArgs":[[k,v],..],
     "capabilityArgs":{..},"result":{..}}

with the fields in that order, empty optional ones left out, the keys of
`result` (a Go map) sorted at every level, and those of `capabilityArgs`
sorted at the top only (below, the order is the runtime's: podman passes Go
structs, marshalled in field order). Files written by older libcni hold a bare result; they are read
too. Unlike libcni we write through a temporary file and rename it, so a
crash never leaves half a file behind.
"""
from __future__ import annotations

import binascii
import os

from cni import atomicfile
from cni.std import json as jsonx

KIND = "cniCacheV1"
DEFAULT_DIR = "/var/lib/cni"


class Attachment:
    """One cached attachment, as GC and `cached_attachments` report it."""
    __slots__ = ("container_id", "network", "ifname", "config", "netns", "cni_args",
                 "capability_args", "result")

    def __init__(self, container_id: str, network: str, ifname: str, *, config: bytes = b"",
                 netns: str = "", cni_args=None, capability_args=None, result=None):
        self.container_id = container_id
        self.network = network
        self.ifname = ifname
        self.config = config
        self.netns = netns
        self.cni_args = cni_args
        self.capability_args = capability_args
        self.result = result

    def __repr__(self):
        return f"Attachment({self.network!r}, {self.container_id!r}, {self.ifname!r})"


def path(cache_dir: str, network: str, container_id: str, ifname: str) -> str:
    """The cache file of one attachment; all three parts must be non-empty."""
    if not network or not container_id or not ifname:
        raise ValueError("cache file path requires network name, container ID and interface"
                         f" name (got {network!r}, {container_id!r}, {ifname!r})")
    for part in (network, container_id, ifname):
        if "/" in part or part in (".", ".."):
            raise ValueError(f"invalid cache file name part {part!r}")
    return os.path.join(cache_dir, "results", f"{network}-{container_id}-{ifname}")


def encode(network: str, container_id: str, ifname: str, config: bytes, *, netns: str = "",
           cni_args=None, capability_args=None, result: dict | None = None) -> bytes:
    """The file content libcni's cacheAdd writes (byte-compatible)."""
    parts = [
        '{"kind":' + jsonx.quote(KIND, go=True),
        '"containerId":' + jsonx.quote(container_id, go=True),
        '"config":' + jsonx.quote(binascii.b2a_base64(bytes(config), newline=False).decode(), go=True),
        '"ifName":' + jsonx.quote(ifname, go=True),
        '"networkName":' + jsonx.quote(network, go=True),
    ]
    if netns:
        parts.append('"netns":' + jsonx.quote(netns, go=True))
    if cni_args:
        parts.append('"cniArgs":' + jsonx.dumps([[str(k), str(v)] for k, v in cni_args], go=True))
    if capability_args:
        # a Go map (keys sorted) of values whose own order is the runtime's: podman passes
        # typed structs (field order), so nested objects keep the order they come in
        parts.append('"capabilityArgs":{' + ",".join(
            jsonx.quote(str(k), go=True) + ":" + jsonx.dumps(capability_args[k], go=True, sort_keys=False)
            for k in sorted(capability_args, key=lambda k: str(k).encode())) + "}")
    if result:
        parts.append('"result":' + jsonx.dumps(result, go=True))
    return (",".join(parts) + "}").encode("utf-8", "surrogatepass")


def write(cache_dir: str, network: str, container_id: str, ifname: str, config: bytes,
          **kw) -> str:
    """Atomically (tmp + rename) store one attachment; returns the file path."""
    dest = path(cache_dir, network, container_id, ifname)
    data = encode(network, container_id, ifname, config, **kw)
    d = os.path.dirname(dest)
    os.makedirs(d, mode=0o700, exist_ok=True)
    tmp = os.path.join(d, f".{os.path.basename(dest)}.{os.getpid()}.tmp")
    atomicfile.replace(dest, data, tmp=tmp)
    return dest


def _read(p: str):
    """(object or None, raw bytes or None); None bytes when the file cannot be read."""
    try:
        with open(p, "rb") as f:
            data = f.read()
    except OSError:
        return None, None
    try:
        obj = jsonx.loads(data)
    except ValueError:
        return None, data
    return (obj if isinstance(obj, dict) else None), data


def _foreign(obj: dict, network: str, container_id: str, ifname: str) -> bool:
    """True when a cniCacheV1 object belongs to another attachment. The file name joins the
    three parts with '-', so network 'a' + container 'b-c' and network 'a-b' + container 'c'
    share one file: only the names recorded inside tell them apart."""
    return obj.get("kind") == KIND and (obj.get("networkName"), obj.get("containerId"),
                                        obj.get("ifName")) != (network, container_id, ifname)


def read_result(cache_dir: str, network: str, container_id: str, ifname: str):
    """The cached result as a JSON object, or None if there is no readable file (or the file
    is another attachment's).

    A cniCacheV1 file yields its `result`; anything else is taken as a bare
    legacy result. Raises ValueError if the file is not JSON at all.
    """
    obj, data = _read(path(cache_dir, network, container_id, ifname))
    if data is None:
        return None
    if obj is None:
        raise ValueError("cached result is not a JSON object")
    if obj.get("kind") == KIND:
        if _foreign(obj, network, container_id, ifname):
            return None
        res = obj.get("result")
        return res if isinstance(res, dict) and res else None
    return obj


def _decode_b64(v) -> bytes:
    if not isinstance(v, str) or not v:
        return b""
    try:
        return binascii.a2b_base64(v)
    except (binascii.Error, ValueError):
        return b""


def _attachment(obj: dict) -> Attachment | None:
    if obj.get("kind") != KIND:
        return None
    try:
        args = obj.get("cniArgs")
        args = [(str(p[0]), str(p[1])) for p in args] if isinstance(args, list) else None
    except (IndexError, TypeError):
        args = None
    caps = obj.get("capabilityArgs")
    return Attachment(str(obj.get("containerId") or ""), str(obj.get("networkName") or ""),
                      str(obj.get("ifName") or ""), config=_decode_b64(obj.get("config")),
                      netns=str(obj.get("netns") or ""), cni_args=args,
                      capability_args=caps if isinstance(caps, dict) else None,
                      result=obj.get("result") if isinstance(obj.get("result"), dict) else None)


def read_attachment(cache_dir: str, network: str, container_id: str, ifname: str):
    """The cached attachment (config, args, capability args) or None (missing, legacy or
    another attachment's)."""
    obj, _ = _read(path(cache_dir, network, container_id, ifname))
    if obj is None or _foreign(obj, network, container_id, ifname):
        return None
    return _attachment(obj)


def delete(cache_dir: str, network: str, container_id: str, ifname: str) -> None:
    """Remove the attachment's file; a file recording another attachment is left alone."""
    try:
        p = path(cache_dir, network, container_id, ifname)
    except ValueError:
        return
    obj, _ = _read(p)
    if obj is not None and _foreign(obj, network, container_id, ifname):
        return
    try:
        os.unlink(p)
    except OSError:
        pass


def attachments(cache_dir: str, container_id: str = "") -> list:
    """Every readable cniCacheV1 attachment, sorted by file name (as libcni).

    With container_id, only files named `*-<id>-*` holding that id.
    """
    d = os.path.join(cache_dir, "results")
    try:
        names = sorted(os.listdir(d))
    except OSError:
        return []
    out = []
    part = f"-{container_id}-"
    for name in names:
        if name.startswith("."):
            continue
        if container_id:
            pos = name.find(part)
            if pos <= 0 or pos + len(part) >= len(name):
                continue
        obj, _ = _read(os.path.join(d, name))
        if obj is None:
            continue
        att = _attachment(obj)
        if att is None or (container_id and att.container_id != container_id):
            continue
        if not att.ifname or not att.network:
            continue
        if name != f"{att.network}-{att.container_id}-{att.ifname}":
            continue            # a file whose name does not match what it records
        out.append(att)
    return out
