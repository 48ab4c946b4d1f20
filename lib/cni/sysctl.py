"""Read and write /proc/sys keys, in our network namespace or (ns=) in another one.

In another netns the file is opened there (setns, or the nsenter helper of cni.std.setns) and
read or written from here: /proc/sys/net files address the netns that opened them.

Names follow Go's rule: 'net.ipv4.ip_forward' and 'net/ipv4/ip_forward' are the same key; when
the first separator is '.', dots and slashes swap, so 'net.ipv4.conf.eth0/1.rp_filter' names the
interface 'eth0.1'.
"""
from __future__ import annotations

from cni.std import oslite as os

BASE = "/proc/sys"


def path(name: str) -> str:
    """The /proc/sys path of a dotted or slashed key name."""
    dot, slash = name.find("."), name.find("/")
    if dot != -1 and (slash == -1 or dot < slash):
        name = name.translate(_SWAP)
    parts = name.strip("/").split("/")
    if "\0" in name or ".." in parts or "." in parts:
        raise ValueError(f"invalid sysctl name {name[:80]!r}")   # never leave /proc/sys
    return os.path.join(BASE, name.lstrip("/"))


_SWAP = str.maketrans("./", "/.")


def _open(name: str, flags: int, ns) -> int:
    p = path(name)
    return ns.open_file(p, flags) if ns is not None else os.open(p, flags | os.O_CLOEXEC)


def read(name: str, *, ns=None) -> str:
    """The value with its trailing newline removed (Go strips the last character)."""
    fd = _open(name, os.O_RDONLY, ns)
    try:
        v = os.read(fd, 65536).decode()
    finally:
        os.close(fd)
    return v[:-1] if v.endswith("\n") else v


def get(name: str, *, ns=None) -> str | None:
    """Like read(), but None when the key does not exist (e.g. IPv6 disabled)."""
    try:
        return read(name, ns=ns)
    except FileNotFoundError:
        return None


def write(name: str, value, *, ns=None) -> None:
    fd = _open(name, os.O_WRONLY, ns)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


def ensure(name: str, value, *, ns=None, missing_ok: bool = False) -> bool:
    """Write only when the current value differs; True if it was changed.

    missing_ok: a key that does not exist (IPv6 off, link gone) is skipped, not an error.
    """
    value = str(value)
    try:
        if read(name, ns=ns) == value:
            return False
        write(name, value, ns=ns)
    except FileNotFoundError:
        if missing_ok:
            return False
        raise
    return True
