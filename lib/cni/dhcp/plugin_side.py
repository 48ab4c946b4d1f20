"""Plugin side of the daemon protocol (see cni.dhcp.daemon): one request per connection."""
from __future__ import annotations

import _socket  # not `socket`: its import (enum, selectors) costs ~10 ms per plugin run
import errno
import os

from cni.std import json as jsonx
from cni.errors import CNIError, DecodingError, PluginNotAvailableError, from_dict

PROTOCOL_VERSION = 1
DEFAULT_SOCKET_PATH = "/run/cni/dhcp.sock"
_TIMEOUT = getattr(_socket, "timeout", TimeoutError)
# errors meaning "nothing is listening there"
NOT_RUNNING = (errno.ENOENT, errno.ECONNREFUSED, errno.ENOTSOCK, errno.ECONNRESET)


class DaemonNotRunning(PluginNotAvailableError):
    """The daemon socket does not exist or nobody accepts on it."""


class WrongDaemon(PluginNotAvailableError):
    """Something else answers on the socket, e.g. the Go dhcp daemon (Go net/rpc over HTTP)."""


def socket_path(conf: dict) -> str:
    ipam = conf.get("ipam") if isinstance(conf, dict) else None
    path = ipam.get("daemonSocketPath") if isinstance(ipam, dict) else None
    return path or DEFAULT_SOCKET_PATH


def call(path: str, op: str, args: dict, *, timeout: float | None = None) -> dict:
    """Send one request; return its result or raise the daemon's error as a CNIError."""
    req = jsonx.dumps({"v": PROTOCOL_VERSION, "op": op, "args": args}).encode()
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        try:
            s.connect(path)
        except OSError as exc:
            if exc.errno in NOT_RUNNING:
                raise DaemonNotRunning(
                    "dhcp daemon is not running",
                    f"cannot connect to {path}: {os.strerror(exc.errno)}; start it with "
                    f"'dhcp daemon -socketpath {path}' (or enable cni-dhcp.socket)") from None
            raise
        try:
            s.sendall(req)
            s.shutdown(_socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered without reading (busy, refused): the reply is queued for us
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    except _TIMEOUT:
        raise CNIError("dhcp daemon did not answer", f"{op} via {path}: timed out") from None
    except OSError as exc:
        raise CNIError("error talking to dhcp daemon", f"{op} via {path}: {exc}") from None
    finally:
        s.close()
    data = b"".join(chunks)
    if data.startswith(b"HTTP/"):
        status = data.split(b"\n", 1)[0].decode("latin-1").strip()[:120]
        raise WrongDaemon(
            "the dhcp daemon on the socket is not this plugin's daemon",
            f"{path} answered {status!r}: that is the Go dhcp daemon (net/rpc over HTTP), "
            f"which this plugin cannot use; stop it and run this plugin's own daemon, "
            f"'dhcp daemon -socketpath {path}' (the pycni dhcp binary), or use the Go dhcp "
            "plugin with the Go daemon") from None
    try:
        reply = jsonx.loads(data)
    except ValueError as exc:
        raise DecodingError("invalid reply from dhcp daemon", str(exc)) from None
    if not isinstance(reply, dict) or reply.get("v") != PROTOCOL_VERSION:
        raise DecodingError("invalid reply from dhcp daemon", "wrong protocol version")
    if not reply.get("ok"):
        err = reply.get("error")
        raise from_dict(err if isinstance(err, dict) else {"code": 999, "msg": str(err)})
    res = reply.get("result")
    return res if isinstance(res, dict) else {}


def request_args(container_id: str, netns: str, ifname: str, cni_args: str,
                 config: bytes | str) -> dict:
    """The `args` object; netns is made absolute because the daemon's cwd differs."""
    if isinstance(config, bytes):
        config = config.decode("utf-8", "replace")
    return {"containerID": container_id, "netns": os.path.abspath(netns) if netns else "",
            "ifName": ifname, "cniArgs": cni_args or "", "config": config}
