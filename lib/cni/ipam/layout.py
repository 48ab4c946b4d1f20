"""host-local's on-disk layout (the Go plugin's): names, file contents, checks.

`<dataDir>/<network>/` holds:
  lock                  flock(LOCK_EX) around every read-modify-write (shared with Go)
  <ip>                  a reservation; content `<containerID>\\r\\n<ifname>` (legacy: id only)
  last_reserved_ip.<N>  the last address handed out from range set N (no newline)
  .pycni-owners/owner:<id>:<ifname>
                        our per-attachment index (content as a reservation), in a
                        hidden folder; long or odd keys use `owner:h:<sha256>`
  .pycni.tmp            the one scratch file; any leftover is removed under the lock
"""
from __future__ import annotations

import errno

from cni.errors import InvalidConfigError, InvalidEnvError
from cni.std import oslite as os

DEFAULT_DATA_DIR = "/var/lib/cni/networks"
LOCK = "lock"
LAST_PREFIX = "last_reserved_ip."
OWNER_PREFIX = "owner:"
OWNER_DIR = ".pycni-owners"   # hidden; `.pycni` names are never reservations
TMP = ".pycni.tmp"
STAMP_NS = 314159265  # mtime nanoseconds of a last_reserved_ip file we wrote
NAME_MAX = 255
STALE_EMPTY_S = 300  # GC drops a zero-length reservation (a crashed writer's) this old
_SAFE_KEY = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-@+=%,")


def sha256_hex(data: bytes) -> str:
    try:
        from _sha256 import sha256  # lazy: by version; 3.9 - 3.11
    except ImportError:
        try:
            from _sha2 import sha256  # 3.12+
        except ImportError:
            from hashlib import sha256
    return sha256(data).hexdigest()


def check_network(name) -> str:
    if (not isinstance(name, str) or not name or name in (".", "..") or "/" in name
            or "\x00" in name or len(name.encode()) > NAME_MAX):
        raise InvalidConfigError("invalid network name",
                                 f"{str(name)[:64]!r} cannot name a directory in the IPAM store")
    return name


def check_owner(cid, ifname) -> None:
    if (not isinstance(cid, str) or not cid or "\x00" in cid or "\r" in cid or "\n" in cid
            or cid != cid.strip()):
        raise InvalidEnvError("invalid container ID", f"{str(cid)[:64]!r} cannot key a reservation")
    if not isinstance(ifname, str) or "\x00" in ifname or "\n" in ifname or "\r" in ifname:
        raise InvalidEnvError("invalid interface name",
                              f"{str(ifname)[:64]!r} cannot key a reservation")


def owner_key(cid: str, ifname: str) -> bytes:
    """The content of a reservation file for (id, ifname)."""
    return f"{cid}\r\n{ifname}".encode()


def owner_name(cid: str, ifname: str) -> str:
    name = f"{OWNER_PREFIX}{cid}:{ifname}"
    if (len(name.encode()) <= NAME_MAX and cid[0] != "." and all(c in _SAFE_KEY for c in cid)
            and all(c in _SAFE_KEY for c in ifname)):
        return name
    return OWNER_PREFIX + "h:" + sha256_hex(owner_key(cid, ifname))


def is_special(name: str) -> bool:
    """Names that are never reservations: the lock, round-robin marks, index, scratch."""
    return (name == LOCK or name.startswith(LAST_PREFIX) or name.startswith(OWNER_PREFIX)
            or name == TMP or name.startswith(".pycni"))


def parse_content(data: bytes):
    """File content -> (id, ifname or None for a legacy id-only file), Go's TrimSpace rules."""
    try:
        s = data.decode()
    except UnicodeDecodeError:
        return None
    s = s.strip()
    if not s:
        return None
    if "\r\n" in s:
        cid, _, ifname = s.partition("\r\n")
        return cid, ifname
    return s, None


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # EINVAL: this filesystem cannot sync a directory
            raise
    finally:
        os.close(fd)
