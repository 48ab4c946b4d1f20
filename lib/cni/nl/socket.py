"""NetlinkSocket: request/ACK, multipart dumps, ext-ack errors, DUMP_INTR retries.

Uses `_socket` directly: the `socket` module's enum set-up costs ~20 ms of start-up.
"""
from __future__ import annotations

import _socket
import errno

from .codec import (NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR,
                    NLMSG_NOOP, NLMSG_OVERRUN, NLMSGHDR, Msg, NetlinkDecodeError, decode_one, encode,
                    parse_error)
from ..std import oslite as os

SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP, NETLINK_CAP_ACK, NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK = 1, 10, 11, 12
_BUFSIZE = 1 << 16
DUMP_RETRIES = 3


class NetlinkError(OSError):
    """The kernel refused a request; `.errno` is positive, `.extack` the kernel's message."""

    def __init__(self, errno: int, extack: str = ""):
        text = os.strerror(errno)
        super().__init__(errno, f"{text}: {extack}" if extack else text)
        self.extack = extack


class LinkNotFoundError(NetlinkError):
    """No such link (ENODEV) when looking one up by name or index."""


class Closing:
    """A context manager that calls `close()` on leaving (sockets and the handles over them)."""

    __slots__ = ()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class NetlinkSocket(Closing):
    """A netlink socket bound to the network namespace it was created in."""

    __slots__ = ("_sock", "_seq", "pid", "schemas", "_buf")

    def __init__(self, proto: int, schemas: dict, *, strict: bool = True, sock=None):
        """`sock`: an unbound netlink socket made elsewhere (e.g. inside another netns)."""
        s = sock if sock is not None else _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW, proto)
        try:
            s.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
            s.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            if strict:
                try:
                    s.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
                except OSError:     # kernels before 4.20
                    pass
            s.bind((0, 0))
            self.pid = s.getsockname()[0]
        except BaseException:
            s.close()
            raise
        self._sock = s
        self._seq = 0
        self.schemas = schemas
        self._buf = bytearray(_BUFSIZE)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def fileno(self) -> int:
        return self._sock.fileno()

    def request(self, mtype: int, hdr: dict, attrs=(), *, flags: int = 0) -> list[Msg]:
        """Send one request with NLM_F_ACK; return any replies that preceded the ACK."""
        self._seq = seq = (self._seq + 1) & 0xFFFFFFFF
        data = encode(Msg(mtype, flags | NLM_F_REQUEST | NLM_F_ACK, seq, 0, hdr, attrs),
                      self.schemas[mtype])
        self._sock.send(data)
        return self._collect(seq, False)[0]

    def dump(self, mtype: int, hdr: dict, attrs=(), *, flags: int = 0) -> list[Msg]:
        """Run a dump; an interrupted dump (NLM_F_DUMP_INTR) is retried 3 times, then raises."""
        schema = self.schemas[mtype]
        for _ in range(DUMP_RETRIES + 1):
            self._seq = seq = (self._seq + 1) & 0xFFFFFFFF
            self._sock.send(encode(Msg(mtype, flags | NLM_F_REQUEST | NLM_F_DUMP, seq, 0, hdr, attrs),
                                   schema))
            out, intr = self._collect(seq, True)
            if not intr:
                return out
        raise NetlinkError(errno.EINTR, f"dump interrupted {DUMP_RETRIES + 1} times")

    def _collect(self, seq: int, dump: bool) -> tuple[list[Msg], bool]:
        out: list[Msg] = []
        intr = False
        buf, sock, pid, schemas = self._buf, self._sock, self.pid, self.schemas
        hunpack = NLMSGHDR.unpack_from
        while True:
            n = sock.recv_into(buf, 0, _socket.MSG_TRUNC)
            if n > len(buf):
                raise NetlinkDecodeError(f"netlink message of {n} bytes truncated")
            off = 0
            while off + 16 <= n:
                ln, mtype, mflags, mseq, mpid = hunpack(buf, off)
                if ln < 16 or off + ln > n:
                    raise NetlinkDecodeError(f"bad nlmsg_len {ln}")
                nxt = off + ((ln + 3) & ~3)
                if mseq != seq or mpid != pid:
                    off = nxt
                    continue                      # foreign or stale: drop
                if mflags & NLM_F_DUMP_INTR:
                    intr = True
                if mtype == NLMSG_ERROR:
                    err, text, _ = parse_error(buf, off + 16, off + ln, mflags)
                    if err:
                        raise NetlinkError(-err, text)
                    if not dump:
                        return out, intr
                elif mtype == NLMSG_DONE:
                    err, text, _ = parse_error(buf, off + 16, off + ln, mflags, True)
                    if err:
                        raise NetlinkError(-err, text)
                    return out, intr
                elif mtype == NLMSG_OVERRUN:
                    raise NetlinkError(errno.ENOBUFS, "netlink overrun")
                elif mtype != NLMSG_NOOP:
                    out.append(decode_one(buf, off, n, schemas)[1])
                off = nxt
