"""The dhcp daemon's unix socket: a root-only listener and the per-connection protocol framing.

- The socket is created 0600 whatever the umask (bound under umask 0177, then chmod'ed); a stale
  socket left by a killed daemon (nobody accepts on it) is removed first, a live one is refused.
- Each connection: the peer must be root (SO_PEERCRED), the request must arrive within
  REQUEST_TIMEOUT seconds, at most MAX_CONNECTIONS are served at once (the excess is answered
  "busy" at once, code 11).
- A Go net/rpc client (the Go dhcp plugin sends `CONNECT /_goRPC_ HTTP/1.0`) gets an HTTP error
  response naming the daemon to run, instead of silence.
"""
from __future__ import annotations

import errno
import os
import socket
import stat
import struct
import threading
import time

from cni.std import json as jsonx
from cni.errors import CNIError, DecodingError, InvalidEnvError, TryAgainLaterError

PROTOCOL_VERSION = 1
MAX_REQUEST = 1 << 20
MAX_CONNECTIONS = 64
REQUEST_TIMEOUT = 5.0
REFUSE_WAIT = 0.2
_UCRED = struct.Struct("3i")          # struct ucred: pid, uid, gid
_HTTP_END = (b"\r\n\r\n", b"\n\n")
HTTP_REPLY = (b"HTTP/1.0 501 pycni dhcp daemon: not a Go net/rpc server; use the pycni dhcp "
              b"plugin with this daemon, or run the Go dhcp daemon for the Go plugin\r\n"
              b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 0\r\n"
              b"Connection: close\r\n\r\n")


class HTTPRequest(Exception):
    """The peer spoke HTTP (a Go net/rpc client), not our protocol."""


# ---- listener ----------------------------------------------------------------------------

def remove_stale(path: str) -> None:
    """Unlink `path` if it is a socket nobody accepts on; refuse a live socket or a non-socket."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise OSError(errno.EEXIST, f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        pass                                   # stale: its daemon is gone
    except socket.timeout:
        raise OSError(errno.EADDRINUSE, f"a daemon is listening on {path} (busy)") from None
    else:
        raise OSError(errno.EADDRINUSE, f"a daemon is already listening on {path}")
    finally:
        probe.close()
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def bind_private(path: str) -> socket.socket:
    """A listening unix socket at `path`, mode 0600 from its creation on."""
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    remove_stale(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)        # the daemon is single-threaded while it binds
    try:
        s.bind(path)
    except OSError:
        s.close()
        raise
    finally:
        os.umask(old)
    try:
        os.chmod(path, 0o600)
        s.listen(128)
    except OSError:
        s.close()
        raise
    return s


# ---- one connection ----------------------------------------------------------------------

def peer_uid(conn: socket.socket) -> int:
    return _UCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                         _UCRED.size))[1]


def _looks_http(buf) -> bool:
    """A request line such as `CONNECT /_goRPC_ HTTP/1.0`: our requests start with '{'."""
    sp = bytes(buf[:16]).find(b" ")
    return sp > 0 and bytes(buf[:sp]).isalpha() and bytes(buf[:sp]).isupper()


def _recv(conn: socket.socket, deadline: float) -> bytes:
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout("request deadline passed")
    conn.settimeout(left)
    return conn.recv(65536)


def _discard(conn: socket.socket, deadline: float) -> None:
    """Read and drop until EOF or `deadline`, so that closing does not reset our reply."""
    try:
        while _recv(conn, deadline):
            pass
    except OSError:
        pass


def read_request(conn: socket.socket) -> dict:
    """One JSON request, ended by the client's shutdown of its write side, within
    REQUEST_TIMEOUT seconds in all."""
    buf = bytearray()
    deadline = time.monotonic() + REQUEST_TIMEOUT
    try:
        while True:
            b = _recv(conn, deadline)
            if not b:
                break
            buf += b
            if len(buf) > MAX_REQUEST:
                _discard(conn, deadline)
                raise DecodingError("daemon request too large", f"more than {MAX_REQUEST} bytes")
            if _looks_http(buf) and any(e in buf for e in _HTTP_END):
                raise HTTPRequest(bytes(buf[:buf.find(b"\n")]).decode("latin-1").strip())
    except socket.timeout:
        if _looks_http(buf):
            raise HTTPRequest(bytes(buf[:64]).decode("latin-1")) from None
        raise DecodingError("incomplete daemon request",
                            f"no complete request within {REQUEST_TIMEOUT:g}s") from None
    try:
        req = jsonx.loads(bytes(buf))
    except ValueError as exc:
        if _looks_http(buf):
            raise HTTPRequest(bytes(buf[:64]).decode("latin-1")) from None
        raise DecodingError("invalid daemon request", str(exc)) from None
    if not isinstance(req, dict):
        raise DecodingError("invalid daemon request", "not a JSON object")
    return req


def error_reply(exc: BaseException) -> dict:
    if isinstance(exc, CNIError):
        err = {"code": exc.code, "msg": exc.msg}
        if exc.details:
            err["details"] = exc.details
    else:
        err = {"code": 999, "msg": str(exc) or type(exc).__name__, "details": type(exc).__name__}
    return {"v": PROTOCOL_VERSION, "ok": False, "error": err}


def _send(conn: socket.socket, data: bytes) -> None:
    try:
        conn.sendall(data)
    except OSError:
        pass                      # the client went away; whatever it asked for stands


def refuse(conn: socket.socket, exc: CNIError) -> None:
    """Answer `exc` without serving the request, then close. The request is read first (up
    to REFUSE_WAIT seconds, in the accept loop: a saturated daemon slows down accepting), so
    that closing with unread data cannot turn the reply into a reset."""
    with conn:
        _discard(conn, time.monotonic() + REFUSE_WAIT)
        conn.settimeout(REFUSE_WAIT)
        _send(conn, jsonx.dumps(error_reply(exc)).encode())


def serve_connection(handle, log, conn: socket.socket) -> None:
    """Read one request, answer `handle(req)` (a dict) or the error, close."""
    with conn:
        conn.settimeout(REQUEST_TIMEOUT)
        try:
            uid = peer_uid(conn)
            try:
                req = read_request(conn)       # read even when refusing: no reset instead
            except CNIError:
                if uid == 0:
                    raise
            if uid != 0:
                raise InvalidEnvError("permission denied",
                                      f"the dhcp daemon serves root only (peer uid {uid})")
            reply = {"v": PROTOCOL_VERSION, "ok": True, "result": handle(req)}
        except HTTPRequest as exc:
            log(f"refused an HTTP client ({exc}): a Go dhcp plugin is configured for this daemon")
            _send(conn, HTTP_REPLY)
            return
        except Exception as exc:  # every failure goes back to the plugin
            if not isinstance(exc, CNIError):
                log(f"request failed: {type(exc).__name__}: {exc}")
            reply = error_reply(exc)
        conn.settimeout(REQUEST_TIMEOUT)
        _send(conn, jsonx.dumps(reply).encode())


class Server:
    """Accept loop with a bound on concurrent connections."""

    def __init__(self, listener: socket.socket, handle, log, *,
                 max_connections: int = MAX_CONNECTIONS):
        self.listener, self.handle, self.log = listener, handle, log
        self.max_connections = max_connections
        self.slots = threading.BoundedSemaphore(max_connections)

    def serve_forever(self) -> None:
        while True:
            conn, _ = self.listener.accept()
            if not self.slots.acquire(blocking=False):
                refuse(conn, TryAgainLaterError(
                    "dhcp daemon is busy", f"{self.max_connections} requests in progress"))
                continue
            try:
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()
            except RuntimeError:          # no thread available: answer busy
                self.slots.release()
                refuse(conn, TryAgainLaterError("dhcp daemon is busy", "cannot start a thread"))

    def _serve(self, conn: socket.socket) -> None:
        try:
            serve_connection(self.handle, self.log, conn)
        finally:
            self.slots.release()
