"""setns(2) for every interpreter we run on, standing in for os.setns (Python 3.12+ only).

Three ways in, tried in order: os.setns; libc's setns through the bare `_ctypes` module
(~2 ms; `import ctypes` costs ~6 ms and python3-minimal lacks both); and, with neither,
a helper process started under `nsenter --net=...` that opens what we need inside the
namespace and passes the descriptors back. Everything here works on plain fds and raises
OSError subclasses only: cni.netns maps them to CNI errors, and cni.nl uses them as is.
"""
from __future__ import annotations

import _socket
import errno
import fcntl
import posix as _posix

from . import oslite as os

CLONE_NEWNET = 0x40000000
NS_GET_NSTYPE = 0xB703   # ioctl on an nsfs fd: its CLONE_NEW* type (Linux 4.11+)
CURRENT = "/proc/thread-self/ns/net"
_setns = None


class NoSetnsError(OSError):
    """This interpreter cannot call setns(2): no os.setns (< 3.12) and no _ctypes."""


class NotNetnsError(OSError):
    """The path is not a network namespace; `detail` says why (for the caller's message)."""

    def __init__(self, path: str, detail: str):
        super().__init__(errno.EINVAL, "not a network namespace", path)
        self.detail = detail


class RestoreError(OSError):
    """setns back into the namespace we came from failed: the thread is in the wrong netns."""


def _libc_setns():
    """setns from libc through the bare _ctypes module."""
    import _ctypes  # lazy: only on Python < 3.12, and python3-minimal has no _ctypes

    class _Int(_ctypes._SimpleCData):
        _type_ = "i"

    class _Func(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
        _restype_ = _Int

    class _Libc:
        _handle = _ctypes.dlopen(None, 0)

    fn = _Func(("setns", _Libc()))

    def libc_setns(fd: int, nstype: int = 0) -> None:
        if fn(fd, nstype) != 0:
            e = _ctypes.get_errno()
            raise OSError(e, os.strerror(e))
    return libc_setns


def _no_setns(fd: int, nstype: int = 0) -> None:
    raise NoSetnsError(errno.EOPNOTSUPP, "this Python has neither os.setns nor ctypes")


def _load_setns() -> None:
    global _setns
    if _setns is not None:
        return
    if "setns" in _posix.__dict__:     # 3.12+ (asked of posix: oslite would import os)
        _setns = _posix.setns
        return
    try:
        _setns = _libc_setns()
    except (ImportError, AttributeError, OSError):  # python3-minimal has no _ctypes
        _setns = _no_setns


def can_setns() -> bool:
    _load_setns()
    return _setns is not _no_setns


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    """setns(2): os.setns on Python 3.12+, else libc via _ctypes; NoSetnsError without both."""
    _load_setns()
    _setns(fd, nstype)


class Entered:
    """Context manager: setns into the netns `fd`, and always back (RestoreError if that fails)."""

    __slots__ = ("fd", "_saved")

    def __init__(self, fd: int):
        self.fd = fd
        self._saved = -1

    def __enter__(self):
        self._saved = os.open(CURRENT, os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns(self.fd, CLONE_NEWNET)
        except OSError:
            os.close(self._saved)
            raise
        return self

    def __exit__(self, *exc) -> None:
        saved, self._saved = self._saved, -1
        try:
            setns(saved, CLONE_NEWNET)
        except OSError as e:
            raise RestoreError(e.errno, f"failed to restore network namespace: {e}") from e
        finally:
            os.close(saved)


def same_inode(a, b) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def open_netns(path: str) -> int:
    """A read-only, close-on-exec fd on the network namespace at `path`; never blocks.

    The path is resolved with O_PATH, which never calls a file's open: a FIFO, a tty or a
    device is not opened, so nothing blocks and no driver reacts. Only an nsfs inode is
    then opened for real, through /proc/self/fd (which names that very inode, whatever
    happens to `path` meanwhile). FileNotFoundError if missing; NotNetnsError if the
    file is not a network namespace.
    """
    pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        if os.fstat(pfd).st_dev != os.stat(CURRENT).st_dev:
            raise NotNetnsError(path, "")
        fd = os.open(f"/proc/self/fd/{pfd}", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(pfd)
    try:
        kind = fcntl.ioctl(fd, NS_GET_NSTYPE)
    except OSError:              # kernel < 4.11 has no NS_GET_NSTYPE: nsfs is the best we know
        kind = CLONE_NEWNET
    if kind != CLONE_NEWNET:
        os.close(fd)
        raise NotNetnsError(path, "is another namespace type")
    return fd


# Paths held open for the rest of a plugin call (cni.netns.pin fills this): open_pinned(path)
# duplicates the held fd, so every later open sees that one namespace even if the path is
# re-bound (or a /proc/PID reused) in between.
PINNED: dict = {}


def open_pinned(path: str) -> int:
    """open_netns(path), or a duplicate of the fd pinned for `path`."""
    fd = PINNED.get(path)
    return os.dup(fd) if fd is not None else open_netns(path)


def socket_in(fd: int, family: int, type: int, proto: int = 0):
    """A `_socket.socket` created inside the netns `fd` (it stays there): setns, or the helper."""
    if can_setns():
        with Entered(fd):
            return _socket.socket(family, type, proto)
    from .nsenter import open_via_nsenter  # lazy: only an interpreter without setns runs it
    sfd, = open_via_nsenter(fd, [f"s:{family}:{type}:{proto}"])
    return _socket.socket(family, type, proto, fileno=sfd)


def open_in(fd: int, path: str, flags: int, mode: int = 0o600) -> int:
    """An fd for `path` opened inside the netns `fd` (/proc/sys/net/..., /dev/net/tun)."""
    if can_setns():
        with Entered(fd):
            return os.open(path, flags | os.O_CLOEXEC, mode)
    from .nsenter import open_via_nsenter  # lazy: only an interpreter without setns runs it
    ofd, = open_via_nsenter(fd, [f"f:{flags}:{mode}:{path}"])
    return ofd


def proc_path(fd: int) -> str:
    """Our fd as a path nsenter can open, valid even if the original mount is gone."""
    return f"/proc/{os.getpid()}/fd/{fd}"
