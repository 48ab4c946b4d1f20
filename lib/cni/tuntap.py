"""Create tun/tap devices through /dev/net/tun ioctls (fcntl + struct only).

Run inside the target netns (the device appears where the ioctl is made).
"""
from __future__ import annotations

import fcntl
import struct

from cni.std import oslite as os

TUNSETIFF, TUNSETPERSIST = 0x400454CA, 0x400454CB
TUNSETOWNER, TUNSETGROUP = 0x400454CC, 0x400454CE
TUNGETIFF = 0x800454D2
IFF_TUN, IFF_TAP, IFF_NO_PI = 0x0001, 0x0002, 0x1000
IFF_ONE_QUEUE, IFF_VNET_HDR, IFF_TUN_EXCL = 0x2000, 0x4000, 0x8000
IFF_MULTI_QUEUE = 0x0100
_IFREQ = struct.Struct("16sH22x")
DEV = "/dev/net/tun"


def create(name: str, *, mode: str = "tap", multi_queue: bool = False, vnet_hdr: bool = False,
           no_pi: bool = True, owner: int | None = None, group: int | None = None,
           persist: bool = True) -> str:
    """Create a persistent tun/tap; returns the kernel's name for it (a '%d' template expands)."""
    flags = {"tap": IFF_TAP, "tun": IFF_TUN}[mode]
    flags |= (IFF_NO_PI if no_pi else 0) | (IFF_VNET_HDR if vnet_hdr else 0)
    flags |= IFF_MULTI_QUEUE if multi_queue else 0
    fd = os.open(DEV, os.O_RDWR | os.O_CLOEXEC)
    try:
        req = bytearray(_IFREQ.pack(name.encode(), flags))
        fcntl.ioctl(fd, TUNSETIFF, req)
        real = bytes(req[:16]).split(b"\0", 1)[0].decode()
        if owner is not None:
            fcntl.ioctl(fd, TUNSETOWNER, owner)
        if group is not None:
            fcntl.ioctl(fd, TUNSETGROUP, group)
        if persist:
            fcntl.ioctl(fd, TUNSETPERSIST, 1)
        return real
    finally:
        os.close(fd)


def remove(name: str, *, mode: str = "tap", multi_queue: bool = False) -> None:
    """Drop persistence so the device goes away (deleting the link over netlink also works)."""
    flags = {"tap": IFF_TAP, "tun": IFF_TUN}[mode] | IFF_NO_PI
    flags |= IFF_MULTI_QUEUE if multi_queue else 0
    fd = os.open(DEV, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, bytearray(_IFREQ.pack(name.encode(), flags)))
        fcntl.ioctl(fd, TUNSETPERSIST, 0)
    finally:
        os.close(fd)
