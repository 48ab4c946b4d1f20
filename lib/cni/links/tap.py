"""Create a persistent tap device through /dev/net/tun from inside a netns, under its final name.

IFF_TUN_EXCL makes TUNSETIFF fail (EBUSY) instead of attaching to an existing tun/tap of the same
name, so we never adopt (and later delete) a device we did not make. No `ip` is executed.
"""
from __future__ import annotations

import errno
import fcntl
import struct

from cni.errors import CNIError, InvalidConfigError
from cni.std import oslite as os
from cni.tuntap import (DEV, IFF_MULTI_QUEUE, IFF_NO_PI, IFF_TAP, IFF_TUN_EXCL, TUNSETGROUP,
                        TUNSETIFF, TUNSETOWNER, TUNSETPERSIST)

_IFREQ = struct.Struct("16sH22x")
SELINUX_FS = "/sys/fs/selinux"


def _create(name: str, flags: int, owner, group, ns=None) -> None:
    """TUNSETIFF makes the device in the netns that opened /dev/net/tun."""
    fd = ns.open_file(DEV, os.O_RDWR) if ns is not None else os.open(DEV, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, bytearray(_IFREQ.pack(name.encode(), flags)))
        if owner is not None:
            fcntl.ioctl(fd, TUNSETOWNER, owner)
        if group is not None:
            fcntl.ioctl(fd, TUNSETGROUP, group)
        fcntl.ioctl(fd, TUNSETPERSIST, 1)
    finally:
        os.close(fd)


def _create_labelled(name: str, flags: int, owner, group, context: str) -> None:
    """Create the tap from a child process running under `context` (the device takes the
    creator's SELinux label). The child switches with a dynamic transition
    (/proc/thread-self/attr/current), so policy must allow dyntransition to that domain."""
    if not os.path.isdir(SELINUX_FS):
        raise InvalidConfigError("selinuxContext needs SELinux",
                                 "SELinux is not enabled on this host; remove selinuxContext")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                      # child: same thread netns as the parent
        code = 0
        try:
            os.close(r)
            with open("/proc/thread-self/attr/current", "w") as f:
                f.write(context)
            _create(name, flags, owner, group)
        except OSError as exc:
            os.write(w, f"{exc.errno}:{exc.strerror}".encode())
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    try:
        msg = os.read(r, 512).decode(errors="replace")
    finally:
        os.close(r)
    _, status = os.waitpid(pid, 0)
    if status != 0 or msg:
        raise CNIError("failed to create tap with selinuxContext", f"{context}: {msg or status}")


def create_tap(ns, name: str, *, multi_queue: bool = False, owner: int | None = None,
               group: int | None = None, selinux_context: str = "") -> None:
    """Create tap `name` inside netns `ns` (persistent, IFF_NO_PI, exclusive)."""
    flags = IFF_TAP | IFF_NO_PI | IFF_TUN_EXCL | (IFF_MULTI_QUEUE if multi_queue else 0)
    try:
        if selinux_context:
            with ns.enter():
                _create_labelled(name, flags, owner, group, selinux_context)
        else:
            _create(name, flags, owner, group, ns)
    except OSError as exc:
        if exc.errno in (errno.EBUSY, errno.EEXIST):   # EBUSY: exists, opened with EXCL
            raise CNIError("container interface already exists",
                           f"{name} already exists in {ns.path}") from None
        raise CNIError("failed to create tap", f"{name}: {exc.strerror or exc}") from None
