"""Read and write /proc/sys keys of the current network namespace (enter a netns first).

Names follow Go's rule: 'net.ipv4.ip_forward' and 'net/ipv4/ip_forward' are the same key; when
the first separator is '.', dots and slashes swap, so 'net.ipv4.conf.eth0/1.rp_filter' names the
interface 'eth0.1'.
"""
from __future__ import annotations

import os

BASE = "/proc/sys"


def path(name: str) -> str:
    """The /proc/sys path of a dotted or slashed key name."""
    dot, slash = name.find("."), name.find("/")
    if dot != -1 and (slash == -1 or dot < slash):
        name = name.translate(_SWAP)
    return os.path.join(BASE, name.lstrip("/"))


_SWAP = str.maketrans("./", "/.")


def read(name: str) -> str:
    """The value with its trailing newline removed (Go strips the last character)."""
    with open(path(name)) as f:
        v = f.read()
    return v[:-1] if v.endswith("\n") else v


def write(name: str, value) -> None:
    with open(path(name), "w") as f:
        f.write(str(value))


def ensure(name: str, value) -> bool:
    """Write only when the current value differs; True if it was changed."""
    value = str(value)
    if read(name) == value:
        return False
    write(name, value)
    return True
