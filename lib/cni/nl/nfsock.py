"""NetfilterSocket: a NETLINK_NETFILTER socket (nf_tables, ctnetlink) whose release is kept
off the plugin's exit path.

Releasing any netfilter socket after this process committed an nf_tables batch that deleted
or replaced something makes the kernel first finish freeing it: it flushes nf_tables'
deferred destroy work, which waits for an RCU grace period (5-30 ms here; iptables-nft's own
close waits the same). So once such a batch is committed (`committed(True)`), closing one of
these sockets holds it instead (at most HOLD: the oldest is released first), and just before
the process exits (skel.main) `release_held_detached()` hands the held ones to a forked child
that releases them: the wait is the child's, not the runtime's. A batch that only adds frees
nothing: after it, sockets close as usual and no child is forked (~0.2 ms).
"""
from __future__ import annotations

import posix

from .socket import NetlinkSocket

NETLINK_NETFILTER = 12
HOLD = 8
_held: list = []     # the sockets of closed NetfilterSockets, released at exit
_wrote = False       # this process has committed an nf_tables batch that freed something


def committed(frees: bool) -> None:
    """Say that an nf_tables batch went out; if it deleted or replaced anything (`frees`),
    closed sockets are held from now on."""
    global _wrote
    _wrote = _wrote or frees


def release_held_detached() -> None:
    """Just before the process exits: give the held sockets to a child that releases them.

    The caller gets our exit status without the kernel's wait: the batches were committed
    and acknowledged before this. The child first closes every other descriptor it inherited
    (stdout's EOF, a store's lock must not wait for it), then exits; nobody waits for it. If
    fork fails, our own exit releases them, as it would have.
    """
    if not _held:
        return
    try:
        pid = posix.fork()
    except OSError:
        return
    if pid == 0:                         # the child: only the held sockets stay open
        try:
            keep = {s.fileno() for s in _held}
            for name in posix.listdir("/proc/self/fd"):
                fd = int(name)
                if fd not in keep:
                    try:
                        posix.close(fd)
                    except OSError:
                        pass
        finally:
            posix._exit(0)
    while _held:                         # the child holds them: these closes do not wait
        _held.pop().close()


class NetfilterSocket(NetlinkSocket):
    """A NETLINK_NETFILTER socket bound to the current netns; `schemas` as NetlinkSocket's."""

    __slots__ = ()

    def __init__(self, schemas: dict, *, sock=None):
        super().__init__(NETLINK_NETFILTER, schemas, sock=sock)

    def close(self) -> None:
        """Release the socket, or, once this process has committed a batch, hold it until
        exit (see the module's note)."""
        if _wrote and self._sock is not None:
            _held.append(self._sock)
            self._sock = None
            while len(_held) > HOLD:
                _held.pop(0).close()
            return
        super().close()
