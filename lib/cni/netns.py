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


class NoSetnsError(OSError):
    """This interpreter cannot call setns(2): no os.setns (< 3.12) and no _ctypes."""


def _libc_setns():
    """setns from libc through the bare _ctypes module (~2 ms; `import ctypes` costs ~6 ms)."""
    import _ctypes

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
    raise NoSetnsError(95, "this Python has neither os.setns nor ctypes")


def can_setns() -> bool:
    _load_setns()
    return _setns is not _no_setns


def _load_setns() -> None:
    global _setns
    if _setns is not None:
        return
    if hasattr(os, "setns"):
        _setns = os.setns  # novermin  (3.12+)
        return
    try:
        _setns = _libc_setns()
    except (ImportError, AttributeError, OSError):  # python3-minimal has no _ctypes
        _setns = _no_setns


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    """setns(2): os.setns on Python 3.12+, else libc via _ctypes; NoSetnsError without both."""
    _load_setns()
    _setns(fd, nstype)


# The fallback for interpreters that cannot setns (Debian's python3-minimal on 3.11):
# a helper process started under `nsenter --net=PATH` opens the sockets and files we ask
# for and sends their descriptors back over a socketpair (SCM_RIGHTS). Sockets stay in
# the netns they were created in, /proc/sys/net files address the netns that opened
# them, and /dev/net/tun creates its device in the netns that opened it.
_HELPER = (
    "import os,_socket,struct,sys\n"
    "s=_socket.socket(fileno=3)\n"
    "fds=[]\n"
    "for spec in sys.argv[1:]:\n"
    "    k,a,b,c=spec.split(':',3)\n"
    "    if k=='s':fds.append(_socket.socket(int(a),int(b),int(c)).detach())\n"
    "    else:fds.append(os.open(c,int(a),int(b)))\n"
    "s.sendmsg([b'k'],[(_socket.SOL_SOCKET,_socket.SCM_RIGHTS,struct.pack('%di'%len(fds),*fds))])\n"
)


def _open_via_nsenter(path: str, specs: list) -> list:
    """Run the helper in the netns at `path`; returns the fds it opened, in order."""
    import _socket
    import struct
    import sys
    from cni import proc
    nsenter = proc.which("nsenter") or proc.which("busybox")
    if nsenter is None:
        raise NoSetnsError(95, "no setns in this Python and no nsenter binary to fall back on")
    argv = [nsenter] + (["nsenter"] if nsenter.endswith("busybox") else [])
    argv += [f"--net={path}", sys.executable, "-IS", "-c", _HELPER] + specs
    parent, child = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        parent.settimeout(10)
        with open(os.devnull, "rb") as null:
            actions = [(os.POSIX_SPAWN_DUP2, null.fileno(), 0), (os.POSIX_SPAWN_DUP2, child.fileno(), 3)]
            pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
        child.close()
        try:
            _, anc, _, _ = parent.recvmsg(1, _socket.CMSG_SPACE(4 * len(specs)))
        finally:
            _, status = os.waitpid(pid, 0)
        fds = []
        for level, kind, data in anc:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                fds.extend(struct.unpack("%di" % (len(data) // 4), data[:len(data) - len(data) % 4]))
        if len(fds) != len(specs):
            for fd in fds:
                os.close(fd)
            raise OSError(5, f"nsenter helper failed in {path} (exit status {status})")
        for fd in fds:
            os.set_inheritable(fd, False)
        return fds
    finally:
        parent.close()
        child.close()


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

    def socket(self, family: int, type: int, proto: int = 0):
        """A socket created inside this netns (it stays there): setns, or the nsenter helper."""
        import _socket
        if can_setns():
            with self.enter():
                return _socket.socket(family, type, proto)
        fd, = _open_via_nsenter(self._proc_path(), [f"s:{family}:{type}:{proto}"])
        return _socket.socket(family, type, proto, fileno=fd)

    def open_file(self, path: str, flags: int, mode: int = 0o600) -> int:
        """An fd for `path` opened inside this netns (/proc/sys/net/..., /dev/net/tun)."""
        if can_setns():
            with self.enter():
                return os.open(path, flags | os.O_CLOEXEC, mode)
        fd, = _open_via_nsenter(self._proc_path(), [f"f:{flags}:{mode}:{path}"])
        return fd

    def _proc_path(self) -> str:
        """Our fd as a path nsenter can open, valid even if the original mount is gone."""
        return f"/proc/{os.getpid()}/fd/{self.fd}"

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
