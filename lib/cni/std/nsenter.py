"""The setns fallback for interpreters that cannot call it (Debian's python3-minimal on 3.11).

Imported by cni.std.setns only when neither os.setns nor _ctypes is there.
"""
from __future__ import annotations

import _socket
import errno
import struct
import sys
import time

from . import process
from . import oslite as os
from . import setns  # proc_path is looked up at call time (tests point it elsewhere)

# A helper process started under `nsenter --net=PATH` opens the sockets and files we ask
# for and sends their descriptors back over a socketpair (SCM_RIGHTS). Sockets stay in
# the netns they were created in, /proc/sys/net files address the netns that opened
# them, and /dev/net/tun creates its device in the netns that opened it. Its last fd is
# its own /proc/self/ns/net: the proof that nsenter really put it in the target netns.
# It is a code string because it runs as `python -c` (there is no file to run inside a
# zipapp), with -I -S: it imports only builtin modules.
HELPER = (
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
_INT = 4                # bytes per descriptor in an SCM_RIGHTS array


def open_via_nsenter(fd: int, specs: list) -> list:
    """Run the helper in the netns `fd`; returns the fds it opened, in order. OSError on any failure."""
    nsenter = process.which("nsenter") or process.which("busybox")
    if nsenter is None:
        raise setns.NoSetnsError(errno.EOPNOTSUPP, "no setns in this Python and no nsenter binary to fall back on")
    if not os.path.isabs(sys.executable or ""):
        raise setns.NoSetnsError(errno.EOPNOTSUPP,
                           f"cannot run the nsenter helper: sys.executable={sys.executable!r}")
    where = setns.proc_path(fd)
    argv = [nsenter] + (["nsenter"] if os.path.basename(nsenter) == "busybox" else [])
    argv += [f"--net={where}", sys.executable, "-IS", "-c", HELPER] + specs
    deadline = time.monotonic() + HELPER_TIMEOUT
    parent, child = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    pid, fds = 0, []
    try:
        pid = process.spawn(argv, os.environ, {0: null, 1: null, 3: child.fileno()})
        child.close()
        parent.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            _, anc, _, _ = parent.recvmsg(1, _socket.CMSG_SPACE(_INT * (len(specs) + 1)))
        except OSError:          # timed out (socket.timeout is an OSError)
            anc = []
        for level, kind, data in anc:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                whole = len(data) - len(data) % _INT
                fds.extend(struct.unpack("%di" % (whole // _INT), data[:whole]))
        try:
            status = process.wait(pid, deadline)
        except TimeoutError:
            pid = 0
            raise OSError(errno.ETIMEDOUT, f"nsenter helper killed after {HELPER_TIMEOUT} s "
                                           f"in {where}") from None
        pid = 0
        if len(fds) != len(specs) + 1:
            raise OSError(errno.EIO, f"nsenter helper failed in {where} (exit status {status})")
        proof = fds.pop()
        try:
            inside = setns.same_inode(os.fstat(proof), os.fstat(fd))
        finally:
            os.close(proof)
        if not inside:
            raise OSError(errno.EIO, f"nsenter helper did not run in {where}")
        for f in fds:
            os.set_inheritable(f, False)
        return fds
    except BaseException:
        for f in fds:
            os.close(f)
        raise
    finally:
        if pid:
            process.kill(pid)
        os.close(null)
        parent.close()
        child.close()
