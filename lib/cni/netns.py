"""Network namespaces: open a netns path as an fd, enter it and always come back.

Prefer namespace-bound sockets (`with ns.enter(): h = Rtnl()`); only sysctl writes and ioctls
need to run entered. Plugins start no threads, so setns on the main thread is safe.
"""
from __future__ import annotations

import os

from .errors import InternalError, InvalidEnvError

CLONE_NEWNET = 0x40000000
NS_GET_NSTYPE = 0xB703
_CURRENT = "/proc/thread-self/ns/net"
_setns = None


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    """setns(2): os.setns on Python 3.12+, else libc through ctypes (imported on first use)."""
    global _setns
    if _setns is None:
        native = getattr(os, "setns", None)              # Python 3.12+
        if native is not None:
            _setns = native
        else:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)

            def _libc_setns(fd: int, nstype: int = 0) -> None:
                if libc.setns(fd, nstype) != 0:
                    e = ctypes.get_errno()
                    raise OSError(e, os.strerror(e))
            _setns = _libc_setns
    _setns(fd, nstype)


def _nsfs_dev() -> int:
    return os.stat(_CURRENT).st_dev


def is_netns(path: str) -> bool:
    """True if `path` is a network namespace (an nsfs inode of type net).

    Missing paths raise FileNotFoundError so DEL can treat them as already gone.
    """
    st = os.stat(path)
    if st.st_dev != _nsfs_dev():
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        import fcntl
        return fcntl.ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNET
    except OSError:              # kernel < 4.11 has no NS_GET_NSTYPE: nsfs is the best we know
        return True
    finally:
        os.close(fd)


def same_as_current(path: str) -> bool:
    """True if `path` is the calling thread's own network namespace."""
    a, b = os.stat(path), os.stat(_CURRENT)
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


class _Entered:
    __slots__ = ("ns", "_saved")

    def __init__(self, ns: NetNS):
        self.ns = ns
        self._saved = -1

    def __enter__(self) -> NetNS:
        self._saved = os.open(_CURRENT, os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns(self.ns.fd, CLONE_NEWNET)
        except OSError:
            os.close(self._saved)
            raise
        return self.ns

    def __exit__(self, *exc) -> None:
        saved, self._saved = self._saved, -1
        try:
            setns(saved, CLONE_NEWNET)
        except OSError as e:
            raise InternalError("failed to restore network namespace", str(e)) from e
        finally:
            os.close(saved)


class NetNS:
    """An open network namespace: `fd` keeps it referenced, `path` is what was opened."""

    __slots__ = ("fd", "path")

    def __init__(self, fd: int, path: str = ""):
        self.fd = fd
        self.path = path

    @classmethod
    def open(cls, path: str) -> NetNS:
        """Open `path` (e.g. CNI_NETNS); FileNotFoundError if missing, InvalidEnvError if not a netns."""
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if os.fstat(fd).st_dev != _nsfs_dev():
                raise InvalidEnvError("not a network namespace", f"CNI_NETNS={path}")
            try:
                import fcntl
                kind = fcntl.ioctl(fd, NS_GET_NSTYPE)
            except OSError:
                kind = CLONE_NEWNET
            if kind != CLONE_NEWNET:
                raise InvalidEnvError("not a network namespace", f"CNI_NETNS={path}")
        except BaseException:
            os.close(fd)
            raise
        return cls(fd, path)

    @classmethod
    def current(cls) -> NetNS:
        """The calling thread's network namespace."""
        return cls(os.open(_CURRENT, os.O_RDONLY | os.O_CLOEXEC), _CURRENT)

    def enter(self) -> _Entered:
        """Context manager: setns into this netns, restore the previous one on exit."""
        return _Entered(self)

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> NetNS:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"NetNS(fd={self.fd}, path={self.path!r})"


def create(name: str, *, rundir: str = "/run/netns") -> str:
    """Create a named netns like `ip netns add` (for scripts and tests); returns its path."""
    import subprocess
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    return os.path.join(rundir, name)


def remove(name: str) -> None:
    """Remove a named netns like `ip netns del`; a missing one is fine."""
    import subprocess
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
