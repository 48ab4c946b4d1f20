"""`dhcp daemon`: holds the leases of all containers and keeps them renewed.

Plugin <-> daemon protocol (ours; version 1): one request per connection on a unix stream
socket. The plugin writes one JSON object and shuts down its write side:
    {"v": 1, "op": "allocate"|"release"|"check"|"status",
     "args": {"containerID", "netns", "ifName", "cniArgs", "config": "<raw netconf JSON>"}}
The daemon answers with one JSON object and closes:
    {"v": 1, "ok": true, "result": {...}}   or   {"v": 1, "ok": false, "error": {code, msg, details}}
allocate's result is a CNI 1.1.0 result object (ips, routes, dns).
"""
from __future__ import annotations

import os
import signal
import socket
import stat
import sys
import threading

from cni import jsonx
from cni.dhcp import client as C
from cni.dhcp import packet as P
from cni.dhcp.lease import Keeper, Settings, log
from cni.errors import CNIError, DecodingError, InvalidConfigError, UnknownContainerError

PROTOCOL_VERSION = 1
DEFAULT_SOCKET_PATH = "/run/cni/dhcp.sock"
MAX_REQUEST = 1 << 20
SD_LISTEN_FDS_START = 3

USAGE = """Usage of daemon:
  -broadcast
        broadcast DHCP leases
  -hostprefix string
        optional prefix to host root
  -pidfile string
        optional path to write daemon PID to
  -resendmax duration
        optional dhcp client max resend delay between requests (default 1m2s)
  -resendtimeout duration
        optional dhcp client resend timeout, no more retries after this timeout (default 3m28s)
  -socketpath string
        optional dhcp server socketpath
  -timeout duration
        optional dhcp client timeout duration for each request (default 10s)
"""

_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(s: str) -> float:
    """Go time.ParseDuration ("1m30s", "500ms", "-2h", "0") -> seconds."""
    orig, total, sign = s, 0.0, 1.0
    if s[:1] in "+-" and s:
        sign, s = (-1.0 if s[0] == "-" else 1.0), s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f"invalid duration {orig!r}")
    while s:
        i = 0
        while i < len(s) and (s[i].isdigit() or s[i] == "."):
            i += 1
        num, s = s[:i], s[i:]
        j = 0
        while j < len(s) and not (s[j].isdigit() or s[j] == "."):
            j += 1
        unit, s = s[:j], s[j:]
        if not num or num == "." or num.count(".") > 1 or unit not in _UNITS:
            raise ValueError(f"invalid duration {orig!r}")
        total += float(num) * _UNITS[unit]
    return sign * total


class Options:
    __slots__ = ("pidfile", "hostprefix", "socketpath", "broadcast", "timeout", "resendmax",
                 "resendtimeout")

    def __init__(self):
        self.pidfile = self.hostprefix = self.socketpath = ""
        self.broadcast = False
        self.timeout, self.resendmax = 10.0, C.RESEND_DELAY_MAX
        self.resendtimeout = C.RESEND_TIMEOUT


class UsageError(Exception):
    pass


def parse_flags(argv: list) -> Options:
    """Go `flag` package rules: -name value, -name=value, --name; bools take only =value."""
    o = Options()
    kinds = {"pidfile": str, "hostprefix": str, "socketpath": str, "broadcast": bool,
             "timeout": float, "resendmax": float, "resendtimeout": float}
    args = list(argv)
    while args:
        a = args[0]
        if len(a) < 2 or a[0] != "-":
            break  # first non-flag argument ends parsing
        args.pop(0)
        if a == "--":
            break
        name = a[2:] if a.startswith("--") else a[1:]
        value = None
        if "=" in name:
            name, value = name.split("=", 1)
        if name in ("h", "help"):
            raise UsageError("")
        if name not in kinds:
            raise UsageError(f"flag provided but not defined: -{name}")
        kind = kinds[name]
        if kind is bool:
            if value is None:
                value = "true"
            if value.lower() not in ("1", "t", "true", "0", "f", "false"):
                raise UsageError(f"invalid boolean value {value!r} for -{name}")
            setattr(o, name, value.lower() in ("1", "t", "true"))
            continue
        if value is None:
            if not args:
                raise UsageError(f"flag needs an argument: -{name}")
            value = args.pop(0)
        if kind is float:
            try:
                setattr(o, name, parse_duration(value))
            except ValueError:
                raise UsageError(f"invalid value {value!r} for flag -{name}: "
                                 "parse error") from None
        else:
            setattr(o, name, value)
    if not o.socketpath:
        o.socketpath = DEFAULT_SOCKET_PATH
    return o


# ---- lease table and request handling ----------------------------------------------------

def _config(args: dict) -> tuple[dict, dict]:
    raw = args.get("config")
    try:
        conf = jsonx.loads(raw) if isinstance(raw, (str, bytes)) else raw
    except ValueError as exc:
        raise DecodingError("error parsing netconf", str(exc)) from None
    if not isinstance(conf, dict):
        raise DecodingError("error parsing netconf", "not a JSON object")
    ipam = conf.get("ipam") or {}
    if not isinstance(ipam, dict):
        raise InvalidConfigError("invalid ipam section", "not an object")
    return conf, ipam


def prepare_options(cni_args: str, ipam: dict) -> tuple[list, dict]:
    """(request list, {code: value}) from the ipam `request`/`provide` entries and CNI_ARGS."""
    parsed = {}
    for pair in (cni_args or "").split(";"):
        if "=" in pair:
            k, v = pair.split("=", 1)
            parsed[k] = v
    provide: dict = {}
    for ent in ipam.get("provide") or []:
        if not isinstance(ent, dict):
            raise InvalidConfigError("invalid provide entry", repr(ent))
        try:
            code = P.parse_option_name(ent.get("option", ""))
        except ValueError as exc:
            raise InvalidConfigError(f"can not parse option {ent.get('option')!r}",
                                     str(exc)) from None
        value = ent.get("value") or ""
        if value:
            if len(value.encode()) > 255:
                raise InvalidConfigError(f"value too long for option {ent.get('option')!r}")
            provide[code] = value.encode()
        arg = ent.get("fromArg")
        if arg and arg in parsed:
            if len(parsed[arg].encode()) > 255:
                raise InvalidConfigError(f"value too long for option {ent.get('option')!r} "
                                         f"from CNI_ARGS {arg!r}")
            provide[code] = parsed[arg].encode()
    request: list = []
    skip_default = False
    for ent in ipam.get("request") or []:
        if not isinstance(ent, dict):
            raise InvalidConfigError("invalid request entry", repr(ent))
        skip_default = skip_default or bool(ent.get("skipDefault"))
        try:
            code = P.parse_option_name(ent.get("option", ""))
        except ValueError as exc:
            raise InvalidConfigError(f"can not parse option {ent.get('option')!r}",
                                     str(exc)) from None
        if code not in request:
            request.append(code)
    if not skip_default:
        for code in (P.OPT_ROUTER, P.OPT_SUBNET_MASK):
            if code not in request:
                request.append(code)
    return request, provide


def lease_result(lease: C.Lease, priority: int = 0) -> dict:
    """CNI 1.1.0 result JSON for a lease."""
    ipc = {"address": str(lease.interface())}
    gw = lease.gateway()
    if gw is not None:
        ipc["gateway"] = str(gw)
    routes = []
    for dst, via, scope in lease.routes():
        r = {"dst": str(dst), "gw": str(via)}
        if priority:
            r["priority"] = priority
        if scope is not None:
            r["scope"] = scope
        routes.append(r)
    res = {"cniVersion": "1.1.0", "ips": [ipc], "routes": routes}
    dns = lease.dns()
    if dns:
        res["dns"] = dns
    return res


class Daemon:
    def __init__(self, settings: Settings, hostprefix: str = "", keeper_factory=Keeper):
        self.settings, self.hostprefix = settings, hostprefix
        self.keeper_factory = keeper_factory
        self.leases: dict = {}
        self.lock = threading.Lock()

    def _key(self, args: dict, conf: dict) -> bytes:
        return C.client_id_for(str(args.get("containerID", "")), str(conf.get("name", "")),
                               str(args.get("ifName", "")))

    def handle(self, req: dict) -> dict:
        op = req.get("op")
        args = req.get("args") or {}
        if req.get("v") != PROTOCOL_VERSION:
            raise CNIError("unsupported dhcp daemon protocol version",
                           f"got {req.get('v')!r}, daemon speaks {PROTOCOL_VERSION}")
        fn = {"allocate": self.allocate, "release": self.release, "check": self.check,
              "status": self.status}.get(op)
        if fn is None:
            raise CNIError("unknown dhcp daemon operation", repr(op))
        return fn(args)

    def status(self, args: dict) -> dict:
        with self.lock:
            return {"leases": len(self.leases), "pid": os.getpid()}

    def allocate(self, args: dict) -> dict:
        conf, ipam = _config(args)
        request, provide = prepare_options(str(args.get("cniArgs") or ""), ipam)
        key = self._key(args, conf)
        with self.lock:
            k = self.leases.get(key)
            if k is not None and k.ready.is_set() and not k.alive:
                del self.leases[key]
                k = None
            if k is None:
                netns = self.hostprefix + str(args.get("netns") or "")
                k = self.keeper_factory(key, netns, str(args.get("ifName", "")),
                                        request=request, provide=provide,
                                        settings=self.settings)
                self.leases[key] = k
                k.start()
            else:
                k.nudge()
        try:
            lease = k.wait_ready()
            return lease_result(lease, int(ipam.get("priority") or 0))
        except BaseException:
            with self.lock:
                if self.leases.get(key) is k:
                    del self.leases[key]
            k.stop(release=True, timeout=self.settings.timeout)
            raise

    def release(self, args: dict) -> dict:
        conf, _ = _config(args)
        key = self._key(args, conf)
        with self.lock:
            k = self.leases.pop(key, None)
        if k is not None:
            k.stop(release=True, timeout=self.settings.timeout + 5)
        return {}

    def check(self, args: dict) -> dict:
        conf, ipam = _config(args)
        key = self._key(args, conf)
        with self.lock:
            k = self.leases.get(key)
        if k is None or not k.ready.is_set() or not k.alive or k.lease is None:
            raise UnknownContainerError("no DHCP lease held",
                                        key[1:].decode(errors="replace"))
        k.nudge()
        return lease_result(k.lease, int(ipam.get("priority") or 0))


# ---- server ------------------------------------------------------------------------------

def _error_reply(exc: BaseException) -> dict:
    if isinstance(exc, CNIError):
        err = {"code": exc.code, "msg": exc.msg}
        if exc.details:
            err["details"] = exc.details
    else:
        err = {"code": 999, "msg": str(exc) or type(exc).__name__, "details": type(exc).__name__}
    return {"v": PROTOCOL_VERSION, "ok": False, "error": err}


def serve_connection(daemon: Daemon, conn: socket.socket) -> None:
    with conn:
        try:
            chunks, size = [], 0
            while True:
                b = conn.recv(65536)
                if not b:
                    break
                chunks.append(b)
                size += len(b)
                if size > MAX_REQUEST:
                    raise DecodingError("request too large")
            try:
                req = jsonx.loads(b"".join(chunks))
            except ValueError as exc:
                raise DecodingError("invalid daemon request", str(exc)) from None
            if not isinstance(req, dict):
                raise DecodingError("invalid daemon request", "not a JSON object")
            reply = {"v": PROTOCOL_VERSION, "ok": True, "result": daemon.handle(req)}
        except Exception as exc:  # every failure goes back to the plugin
            if not isinstance(exc, CNIError):
                log(f"request failed: {type(exc).__name__}: {exc}")
            reply = _error_reply(exc)
        try:
            conn.sendall(jsonx.dumps(reply).encode())
        except OSError:
            pass  # the plugin went away; the lease (if any) stays maintained


def get_listener(path: str, environ=None) -> socket.socket:
    """The systemd-activated socket (LISTEN_PID/LISTEN_FDS) or a fresh one at `path`."""
    env = os.environ if environ is None else environ
    fds = 0
    if env.get("LISTEN_PID") == str(os.getpid()):
        try:
            fds = int(env.get("LISTEN_FDS", "0"))
        except ValueError:
            fds = 0
    for var in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(var, None)
    if fds > 1:
        raise RuntimeError(f"too many ({fds}) FDs passed through socket activation")
    if fds == 1:
        s = socket.socket(fileno=SD_LISTEN_FDS_START)
        os.set_inheritable(s.fileno(), False)
        return s
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(path)
    except OSError:
        s.close()
        raise
    s.listen(128)
    return s


class _Shutdown(Exception):
    pass


def _on_signal(signum, frame):
    raise _Shutdown(signum)


def run(argv: list) -> int:
    """Entry point of `dhcp daemon ...`."""
    try:
        opts = parse_flags(argv)
    except UsageError as exc:
        if str(exc):
            sys.stderr.write(f"{exc}\n")
        sys.stderr.write(USAGE)
        return 0 if not str(exc) else 2
    if opts.pidfile and not os.path.isabs(opts.pidfile):
        log(f"Error writing pidfile {opts.pidfile!r}: path not absolute")
        return 1
    sock_path = opts.hostprefix + opts.socketpath
    if opts.pidfile:
        try:
            with open(opts.pidfile, "w") as f:
                f.write(str(os.getpid()))
        except OSError as exc:
            log(f"Error writing pidfile {opts.pidfile!r}: {exc}")
            return 1
    try:
        listener = get_listener(sock_path)
    except (OSError, RuntimeError) as exc:
        log(f"Error getting listener: {exc}")
        _remove(opts.pidfile)
        return 1
    settings = Settings(timeout=opts.timeout, resend_max=opts.resendmax,
                        resend_timeout=opts.resendtimeout, broadcast=opts.broadcast)
    daemon = Daemon(settings, opts.hostprefix)
    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        where = listener.getsockname() or sock_path
    except OSError:
        where = sock_path
    log(f"dhcp daemon listening on {where}")
    try:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve_connection, args=(daemon, conn), daemon=True).start()
    except _Shutdown:
        log("shutting down")
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        listener.close()
        _remove_socket(sock_path)
        _remove(opts.pidfile)
    return 0


def _remove(path: str) -> None:
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass


def _remove_socket(path: str) -> None:
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except OSError:
        pass


def main() -> None:
    sys.exit(run(sys.argv[2:]))
