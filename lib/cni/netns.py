"""Network namespaces: open a netns path as an fd, enter it and always come back.

Prefer namespace-bound sockets (`with ns.enter(): h = Rtnl()`); only sysctl writes and ioctls
need to run entered. Plugins start no threads, so setns on the main thread is safe.
"""
from __future__ import annotations

from .errors import InternalError, InvalidEnvError
from .std import setns as _std
from .std import oslite as os

_CURRENT = _std.CURRENT


def _open_nsfs(path: str) -> int:
    """cni.std.setns.open_netns (never blocks), with a file that is no netns as a CNI error.

    FileNotFoundError if missing; InvalidEnvError if the file is not a network namespace.
    """
    try:
        return _std.open_netns(path)
    except _std.NotNetnsError as e:
        raise InvalidEnvError("not a network namespace",
                              f"CNI_NETNS={path} {e.detail}".rstrip()) from None


def is_netns(path: str) -> bool:
    """True if `path` is a network namespace (an nsfs inode of type net); never blocks.

    Missing paths raise FileNotFoundError so DEL can treat them as already gone.
    """
    try:
        os.close(_open_nsfs(path))
    except (InvalidEnvError, PermissionError):
        return False
    return True


def same_as_current(path: str) -> bool:
    """True if `path` is the calling thread's own network namespace."""
    return _std.same_inode(os.stat(path), os.stat(_CURRENT))


# CNI_NETNS opened once per plugin call (skel): NetNS.open of the same path, and Rtnl(path),
# reuse it (the table lives in cni.std.setns, which cni.nl uses too).
_pinned = _std.PINNED


def pin(path: str) -> NetNS:
    """Open `path` as NetNS.open does and make it the fd every NetNS.open(path) duplicates,
    until the returned object is closed: checks and work then see one namespace, even
    if the path is re-bound (or a /proc/PID is reused) in between."""
    ns = _Pinned(_open_nsfs(path), path)
    _pinned.setdefault(path, ns.fd)
    return ns


class _Entered(_std.Entered):
    """ns.enter(): cni.std.setns.Entered yielding the NetNS; failing to come back is a CNI error."""

    __slots__ = ("ns",)

    def __init__(self, ns: NetNS):
        super().__init__(ns.fd)
        self.ns = ns

    def __enter__(self) -> NetNS:
        super().__enter__()
        return self.ns

    def __exit__(self, *exc) -> None:
        try:
            super().__exit__(*exc)
        except _std.RestoreError as e:
            raise InternalError("failed to restore network namespace", str(e.__cause__)) from e


class NetNS:
    """An open network namespace: `fd` keeps it referenced, `path` is what was opened."""

    __slots__ = ("fd", "path")

    def __init__(self, fd: int, path: str = ""):
        self.fd = fd
        self.path = path

    @classmethod
    def open(cls, path: str) -> NetNS:
        """Open `path` (e.g. CNI_NETNS) without blocking; see _open_nsfs.

        FileNotFoundError if missing, InvalidEnvError if not a netns.
        """
        if path in _pinned:
            return cls(_std.open_pinned(path), path)
        return cls(_open_nsfs(path), path)

    @classmethod
    def current(cls) -> NetNS:
        """The calling thread's network namespace."""
        return cls(os.open(_CURRENT, os.O_RDONLY | os.O_CLOEXEC), _CURRENT)

    def is_current(self) -> bool:
        """True if this is the calling thread's own network namespace."""
        return _std.same_inode(os.fstat(self.fd), os.stat(_CURRENT))

    def reopen(self) -> int:
        """A new open file (own flock state) on this namespace, O_RDONLY and close-on-exec."""
        return os.open(_std.proc_path(self.fd), os.O_RDONLY | os.O_CLOEXEC)

    def enter(self) -> _Entered:
        """Context manager: setns into this netns, restore the previous one on exit."""
        return _Entered(self)

    def socket(self, family: int, type: int, proto: int = 0):
        """A socket created inside this netns (it stays there): setns, or the nsenter helper."""
        return _std.socket_in(self.fd, family, type, proto)

    def open_file(self, path: str, flags: int, mode: int = 0o600) -> int:
        """An fd for `path` opened inside this netns (/proc/sys/net/..., /dev/net/tun)."""
        return _std.open_in(self.fd, path, flags, mode)

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


class _Pinned(NetNS):
    """What pin() returns: closing it also ends the pin."""

    __slots__ = ()

    def close(self) -> None:
        if _pinned.get(self.path) == self.fd:
            del _pinned[self.path]
        super().close()

