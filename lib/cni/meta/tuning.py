"""tuning plugin helpers: sysctl key paths, the allowlist, duplicate-key detection, and the
backup of link attributes (written atomically, restored on DEL)."""
from __future__ import annotations

from cni.std import json as jsonx
from cni.config import U32_MAX, check_mtu, check_range
from cni.errors import CNIError, InvalidConfigError
from cni.std import oslite as os

DEFAULT_DATA_DIR = "/run/cni/tuning"
ALLOWLIST = "/etc/cni/tuning/allowlist.conf"
ATTRS = ("mac", "promisc", "mtu", "allmulti", "txQLen")


def check_values(mtu: int, txqlen: int | None) -> None:
    """mtu and txQLen as the kernel can hold them (code 7 otherwise)."""
    check_mtu(mtu)
    if txqlen is not None:
        check_range(txqlen, 0, U32_MAX, "txQLen")


def sysctl_path(key: str, ifname: str) -> str:
    """/proc/sys path of a sysctl key (dots or slashes; first IFNAME -> ifname); net.* only.
    Every '.' becomes '/', so a key cannot hold '..'; normpath and the prefix check keep it
    under /proc/sys/net/ anyway."""
    if "\0" in key:
        raise InvalidConfigError("invalid sysctl key", f"sysctl key {key[:64]!r} holds a NUL")
    rel = key.replace(".", "/").replace("IFNAME", ifname, 1)
    path = os.path.normpath(os.path.join("/proc/sys", rel))
    if not path.startswith("/proc/sys/net/"):
        raise InvalidConfigError(f"invalid net sysctl key: {rel!r}", "only /proc/sys/net/ is namespaced")
    return path


def read_allowlist(path: str = ALLOWLIST) -> list | None:
    """Non-empty stripped lines of the allowlist, or None when there is no allowlist."""
    try:
        with open(path) as f:
            return [ln.strip() for ln in f.read().split("\n") if ln.strip()]
    except FileNotFoundError:
        return None


def check_allowlist(keys, path: str = ALLOWLIST) -> None:
    allow = read_allowlist(path)
    if allow is None:
        return
    import re  # lazy: only when an allowlist file exists
    for key in keys:
        try:
            ok = any(re.search(p, key) for p in allow)
        except re.error as exc:
            raise InvalidConfigError("invalid sysctl allowlist pattern", f"{path}: {exc}") from None
        if not ok:
            raise InvalidConfigError(f"sysctl {key} is not allowed",
                                     "allowed patterns: " + ", ".join(allow))


class _Obj(dict):
    dups: tuple = ()


def _keep_dups(pairs: list) -> dict:
    d = _Obj(pairs)
    if len(d) != len(pairs):
        seen: set = set()
        d.dups = [k for k, _ in pairs if k in seen or seen.add(k)]
    return d


def duplicate_sysctl_keys(raw: bytes) -> list:
    """Keys that appear more than once in the top-level "sysctl" object (JSON allows it)."""
    if b"sysctl" not in raw:
        return []
    try:
        obj = jsonx.loads(raw, pairs_hook=_keep_dups)
    except ValueError:
        return []
    s = obj.get("sysctl") if isinstance(obj, dict) else None
    return list(s.dups) if isinstance(s, _Obj) else []


def write_sysctls(ns, sysctls: dict, ifname: str) -> None:
    """Write each sysctl inside the container netns `ns`."""
    for key, value in sysctls.items():
        path = sysctl_path(key, ifname)
        try:
            fd = ns.open_file(path, os.O_WRONLY | os.O_TRUNC)
            try:
                os.write(fd, value.encode())
            finally:
                os.close(fd)
        except OSError as exc:
            raise CNIError(f"failed to set sysctl {key}", f"{path}: {exc.strerror or exc}") from None


def check_sysctls(ns, sysctls: dict, ifname: str) -> None:
    for key, want in sysctls.items():
        path = sysctl_path(key, ifname)
        try:
            fd = ns.open_file(path, os.O_RDONLY)
            try:
                have = os.read(fd, 65536).decode()
            finally:
                os.close(fd)
        except OSError as exc:
            raise CNIError(f"cannot read sysctl {key}", f"{path}: {exc.strerror or exc}") from None
        if have.endswith("\n"):
            have = have[:-1]
        if have != want:
            raise CNIError(f"tuning configured value of {path} is {want}, current value is {have}")


# --- backup -------------------------------------------------------------------------------

def backup_path(data_dir: str, container_id: str, ifname: str) -> str:
    return os.path.join(data_dir, f"{container_id}_{ifname}.json")


def snapshot(link, want: dict) -> dict:
    """Current values of the attributes `want` will change (Go's configToRestore shape)."""
    out: dict = {}
    if want.get("mac"):
        out["mac"] = link.mac
    if want.get("promisc"):
        out["promisc"] = link.promisc
    if want.get("mtu"):
        out["mtu"] = link.mtu
    if want.get("allmulti") is not None:
        out["allmulti"] = link.allmulti
    if want.get("txQLen") is not None:
        out["txQLen"] = link.txqlen
    if want.get("ifName") and want["ifName"] != link.name:
        out["ifName"] = link.name
    return out


def write_backup(path: str, data: dict) -> None:
    """Atomically (tmp + fsync + rename) write the backup JSON."""
    d = os.path.dirname(path)
    os.makedirs(d, mode=0o700, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, jsonx.dumps(data, indent=1).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_backup(path: str) -> dict | None:
    try:
        with open(path, "rb") as f:
            data = jsonx.loads(f.read())
    except FileNotFoundError:
        return None
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def apply_kwargs(want: dict) -> dict:
    """link_set keywords for the wanted attributes (promisc only ever turned on, as Go)."""
    kw = {}
    if want.get("mac"):
        kw["mac"] = want["mac"]
    if want.get("promisc"):
        kw["promisc"] = True
    if want.get("mtu"):
        kw["mtu"] = want["mtu"]
    if want.get("allmulti") is not None:
        kw["allmulti"] = want["allmulti"]
    if want.get("txQLen") is not None:
        kw["txqlen"] = want["txQLen"]
    return kw


def restore_kwargs(data: dict) -> dict:
    """link_set keywords that put back the saved attributes (those present in `data`)."""
    kw = {}
    if data.get("mtu"):
        kw["mtu"] = int(data["mtu"])
    if data.get("mac"):
        kw["mac"] = data["mac"]
    for k, a in (("promisc", "promisc"), ("allmulti", "allmulti"), ("txQLen", "txqlen")):
        if data.get(k) is not None:
            kw[a] = data[k]
    return kw


def apply(h, ifname: str, want: dict) -> None:
    """Set the wanted attributes in one RTM_NEWLINK (promisc only ever turned on, as Go)."""
    kw = apply_kwargs(want)
    if kw:
        h.link_set(ifname, **kw)


def restore(h, ifname: str, data: dict) -> None:
    """Put back the saved attributes (those present in `data`)."""
    kw = restore_kwargs(data)
    if kw:
        h.link_set(ifname, **kw)


def plan_update(saved: dict, link, want: dict) -> tuple:
    """UPDATE: (originals to put back, backup while changing, backup after). The originals
    saved by ADD (or an earlier UPDATE) are kept for DEL; an attribute the new config no
    longer sets gets its original back; a newly set one has its current value saved."""
    saved = {k: v for k, v in saved.items() if k in ATTRS or k == "ifName"}
    fresh = snapshot(link, want)
    wanted = set(fresh) | {k for k in ATTRS if k in saved and _sets(want, k)}
    back = {k: v for k, v in saved.items() if k in ATTRS and k not in wanted}
    during = {**fresh, **saved}
    after = {k: v for k, v in during.items() if k not in back}
    return back, during, after


def _sets(want: dict, key: str) -> bool:
    v = want.get(key)
    return v is not None if key in ("allmulti", "txQLen") else bool(v)


def check_link(link, want: dict, ifname: str) -> None:
    if want.get("mac") and (link.mac or "").lower() != want["mac"].lower():
        raise CNIError(f"tuning configured MAC of {ifname} is {want['mac']}, current value is {link.mac}")
    if bool(want.get("promisc")) != link.promisc:
        raise CNIError(f"tuning link {ifname} configured promisc is {bool(want.get('promisc'))}, "
                       f"current value is {link.promisc}")
    if want.get("mtu") and want["mtu"] != link.mtu:
        raise CNIError(f"tuning configured MTU of {ifname} is {want['mtu']}, current value is {link.mtu}")
    if want.get("allmulti") is not None and want["allmulti"] != link.allmulti:
        raise CNIError(f"tuning configured all-multicast mode of {ifname} is {want['allmulti']}, "
                       f"current value is {link.allmulti}")
    if want.get("txQLen") is not None and want["txQLen"] != link.txqlen:
        raise CNIError(f"tuning configured transmit queue length of {ifname} is {want['txQLen']}, "
                       f"current value is {link.txqlen}")
