"""Network namespaces: open a netns path as an fd, enter it and always come back.

Prefer namespace-bound sockets (`with ns.enter(): h = Rtnl()`); only sysctl writes and ioctls
need to run entered. Plugins start no threads, so setns on the main thread is safe.
"""
from __future__ import annotations

import _socket
import errno
import fcntl
import os
import struct
import sys
import time

from .std import process as proc
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
# them, and /dev/net/tun creates its device in the netns that opened it. Its last fd is
# its own /proc/self/ns/net: the proof that nsenter really put it in the target netns.
_HELPER = (
    "import os,_socket,struct,sys\n"
    "s=_socket.socket(fileno=3)\n"
    "fds=[]\n"
    "for spec in sys.argv[1:]:\n"
    "    k,a,b,c=spec.split(':',3)\n"
    "    if k=='s':fds.append(_socket.socket(int(a),int(b),int(c)).detach())\n"
    "    else:fds.append(os.open(c,int(a),int(b)))\n"
    "fds.append(os.open('/proc/self/ns/net',os.O_RDONLY))\n"
    "s.sendmsg([b'k'],[(_socket.SOL_SOCKET,_socket.SCM_RIGHTS,struct.pack('%di'%len(fds),*fds))])\n"
)
HELPER_TIMEOUT = 10.0   # seconds for the whole helper run; then it is killed


def _open_via_nsenter(ns: NetNS, specs: list) -> list:
    """Run the helper in `ns`; returns the fds it opened, in order. OSError on any failure."""
    nsenter = proc.which("nsenter") or proc.which("busybox")
    if nsenter is None:
        raise NoSetnsError(95, "no setns in this Python and no nsenter binary to fall back on")
    if not os.path.isabs(sys.executable or ""):
        raise NoSetnsError(95, f"cannot run the nsenter helper: sys.executable={sys.executable!r}")
    argv = [nsenter] + (["nsenter"] if os.path.basename(nsenter) == "busybox" else [])
    argv += [f"--net={ns._proc_path()}", sys.executable, "-IS", "-c", _HELPER] + specs
    deadline = time.monotonic() + HELPER_TIMEOUT
    parent, child = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    pid, fds = 0, []
    try:
        pid = proc.spawn(argv, os.environ, {0: null, 1: null, 3: child.fileno()})
        child.close()
        parent.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            _, anc, _, _ = parent.recvmsg(1, _socket.CMSG_SPACE(4 * (len(specs) + 1)))
        except OSError:          # timed out (socket.timeout is an OSError)
            anc = []
        for level, kind, data in anc:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                fds.extend(struct.unpack("%di" % (len(data) // 4), data[:len(data) - len(data) % 4]))
        try:
            status = proc.wait(pid, deadline)
        except TimeoutError:
            pid = 0
            raise OSError(errno.ETIMEDOUT, f"nsenter helper killed after {HELPER_TIMEOUT} s "
                                           f"in {ns.path or ns.fd}") from None
        pid = 0
        if len(fds) != len(specs) + 1:
            raise OSError(errno.EIO, f"nsenter helper failed in {ns.path or ns.fd} "
                                     f"(exit status {status})")
        proof = fds.pop()
        try:
            inside = _same_inode(os.fstat(proof), os.fstat(ns.fd))
        finally:
            os.close(proof)
        if not inside:
            raise OSError(errno.EIO, f"nsenter helper did not run in {ns.path or ns.fd}")
        for fd in fds:
            os.set_inheritable(fd, False)
        return fds
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    finally:
        if pid:
            proc.kill(pid)
        os.close(null)
        parent.close()
        child.close()


def _same_inode(a, b) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _nsfs_dev() -> int:
    return os.stat(_CURRENT).st_dev


def _open_nsfs(path: str) -> int:
    """A read-only fd on the network namespace at `path`, found without opening anything else.

    The path is resolved with O_PATH, which never calls a file's open: a FIFO, a tty or a
    device is not opened, so nothing blocks and no driver reacts. Only an nsfs inode is
    then opened for real, through /proc/self/fd (which names that very inode, whatever
    happens to `path` meanwhile). FileNotFoundError if missing; InvalidEnvError if the
    file is not a network namespace.
    """
    pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        if os.fstat(pfd).st_dev != _nsfs_dev():
            raise InvalidEnvError("not a network namespace", f"CNI_NETNS={path}")
        fd = os.open(f"/proc/self/fd/{pfd}", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(pfd)
    try:
        kind = fcntl.ioctl(fd, NS_GET_NSTYPE)
    except OSError:              # kernel < 4.11 has no NS_GET_NSTYPE: nsfs is the best we know
        kind = CLONE_NEWNET
    if kind != CLONE_NEWNET:
        os.close(fd)
        raise InvalidEnvError("not a network namespace", f"CNI_NETNS={path} is another namespace type")
    return fd


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
    return _same_inode(os.stat(path), os.stat(_CURRENT))


# CNI_NETNS opened once per plugin call (skel): NetNS.open of the same path reuses it.
_pinned: dict = {}


def pin(path: str) -> NetNS:
    """Open `path` as NetNS.open does and make it the fd every NetNS.open(path) duplicates,
    until the returned object is closed: checks and work then see one namespace, even
    if the path is re-bound (or a /proc/PID is reused) in between."""
    ns = _Pinned(_open_nsfs(path), path)
    _pinned.setdefault(path, ns.fd)
    return ns


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
        """Open `path` (e.g. CNI_NETNS) without blocking; see _open_nsfs.

        FileNotFoundError if missing, InvalidEnvError if not a netns.
        """
        fd = _pinned.get(path)
        return cls(os.dup(fd) if fd is not None else _open_nsfs(path), path)

    @classmethod
    def current(cls) -> NetNS:
        """The calling thread's network namespace."""
        return cls(os.open(_CURRENT, os.O_RDONLY | os.O_CLOEXEC), _CURRENT)

    def is_current(self) -> bool:
        """True if this is the calling thread's own network namespace."""
        return _same_inode(os.fstat(self.fd), os.stat(_CURRENT))

    def reopen(self) -> int:
        """A new open file (own flock state) on this namespace, O_RDONLY and close-on-exec."""
        return os.open(self._proc_path(), os.O_RDONLY | os.O_CLOEXEC)

    def enter(self) -> _Entered:
        """Context manager: setns into this netns, restore the previous one on exit."""
        return _Entered(self)

    def socket(self, family: int, type: int, proto: int = 0):
        """A socket created inside this netns (it stays there): setns, or the nsenter helper."""
        if can_setns():
            with self.enter():
                return _socket.socket(family, type, proto)
        fd, = _open_via_nsenter(self, [f"s:{family}:{type}:{proto}"])
        return _socket.socket(family, type, proto, fileno=fd)

    def open_file(self, path: str, flags: int, mode: int = 0o600) -> int:
        """An fd for `path` opened inside this netns (/proc/sys/net/..., /dev/net/tun)."""
        if can_setns():
            with self.enter():
                return os.open(path, flags | os.O_CLOEXEC, mode)
        fd, = _open_via_nsenter(self, [f"f:{flags}:{mode}:{path}"])
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


class _Pinned(NetNS):
    """What pin() returns: closing it also ends the pin."""

    __slots__ = ()

    def close(self) -> None:
        if _pinned.get(self.path) == self.fd:
            del _pinned[self.path]
        super().close()


def create(name: str, *, rundir: str = "/run/netns") -> str:
    """Create a named netns like `ip netns add` (for scripts and tests); returns its path."""
    import subprocess
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    return os.path.join(rundir, name)


def remove(name: str) -> None:
    """Remove a named netns like `ip netns del`; a missing one is fine."""
    import subprocess
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
