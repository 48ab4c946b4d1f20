"""`dhcp daemon`: holds the leases of all containers, keeps them renewed, and persists them.

Plugin <-> daemon protocol (ours; version 1): one request per connection on a unix stream
socket (framing, limits and peer checks: cni.dhcp.server). The plugin writes one JSON object and
shuts down its write side:
    {"v": 1, "op": "allocate"|"release"|"check"|"status"|"gc",
     "args": {"containerID", "netns", "ifName", "cniArgs", "config": "<raw netconf JSON>"}}
gc's args are {"config", "valid": [[containerID, ifName], ...]}. The daemon answers with one JSON
object and closes:
    {"v": 1, "ok": true, "result": {...}}   or   {"v": 1, "ok": false, "error": {code, msg, details}}
allocate's result is a CNI 1.1.0 result object (ips, routes, dns). Malformed requests get codes
4 (bad containerID/ifName/netns), 6 (undecodable) or 7 (bad ipam options).

Held leases are written to a state file (cni.dhcp.state) after every change; a restarted daemon
reloads them and reclaims each address with an INIT-REBOOT request.
"""
from __future__ import annotations

import os
import signal
import socket
import stat
import sys
import threading

from cni.dhcp import client as C
from cni.dhcp import server, state
from cni.dhcp.flags import USAGE, UsageError, parse_flags
from cni.dhcp.lease import Keeper, Settings, log
from cni.dhcp.request import arg_str, gc_keep, lease_result, netconf, owner, prepare_options
from cni.errors import DecodingError, InvalidEnvError, UnknownContainerError
from cni.netns import NetNS

PROTOCOL_VERSION = server.PROTOCOL_VERSION
SD_LISTEN_FDS_START = 3
READY_MARGIN = 10.0          # wait_ready deadline beyond the client's own resend timeout

# ---- lease table and request handling ----------------------------------------------------

def own_netns() -> tuple[int, int]:
    st = os.stat("/proc/self/ns/net")
    return st.st_dev, st.st_ino


class Daemon:
    def __init__(self, settings: Settings, hostprefix: str = "", keeper_factory=Keeper, *,
                 state_path: str = "", netns_check=None):
        self.settings, self.hostprefix = settings, hostprefix
        self.keeper_factory = keeper_factory
        self.state_path = state_path
        self.leases: dict = {}
        self.lock = threading.Lock()
        self.save_lock = threading.Lock()
        self.own_netns = own_netns()
        if netns_check is not None:
            self.check_netns = netns_check

    def handle(self, req: dict) -> dict:
        if req.get("v") != PROTOCOL_VERSION:
            raise DecodingError("unsupported dhcp daemon protocol version",
                                f"got {str(req.get('v'))[:32]!r}, daemon speaks "
                                f"{PROTOCOL_VERSION}")
        op = req.get("op")
        fn = {"allocate": self.allocate, "release": self.release, "check": self.check,
              "status": self.status, "gc": self.gc}.get(op) if isinstance(op, str) else None
        if fn is None:
            raise DecodingError("unknown dhcp daemon operation", repr(op)[:64])
        args = req.get("args", {})
        if not isinstance(args, dict):
            raise DecodingError("invalid daemon request", "args must be an object")
        return fn(args)

    def check_netns(self, path: str) -> None:
        """The netns must exist, be a netns (NetNS.open) and not be the daemon's own."""
        try:
            with NetNS.open(path) as ns:
                st = os.fstat(ns.fileno())
        except FileNotFoundError:
            raise InvalidEnvError("netns does not exist", path) from None
        except OSError as exc:
            raise InvalidEnvError("cannot open netns", f"{path}: {exc.strerror or exc}") from None
        if (st.st_dev, st.st_ino) == self.own_netns:
            raise InvalidEnvError("netns is the dhcp daemon's own network namespace",
                                  f"refusing to run a DHCP client in {path}")

    def status(self, args: dict) -> dict:
        with self.lock:
            return {"leases": len(self.leases), "pid": os.getpid()}

    def _keeper(self, key: bytes, netns: str, ifname: str, **kw):
        return self.keeper_factory(key, netns, ifname, settings=self.settings,
                                   on_change=self._changed, **kw)

    def allocate(self, args: dict) -> dict:
        cid, ifname = owner(args)
        conf, ipam = netconf(args)
        request, provide = prepare_options(arg_str(args, "cniArgs"), ipam)
        netns = arg_str(args, "netns")
        if not netns or not os.path.isabs(netns):
            raise InvalidEnvError("invalid netns", f"{netns[:256]!r} is not an absolute path")
        netns = self.hostprefix + netns
        self.check_netns(netns)
        name = conf.get("name", "")
        key = C.client_id_for(cid, name, ifname)
        with self.lock:
            k = self.leases.get(key)
            if k is not None and k.ready.is_set() and not k.alive:
                del self.leases[key]
                k = None
            if k is None:
                k = self._keeper(key, netns, ifname, request=request, provide=provide,
                                 container_id=cid, network=name)
                self.leases[key] = k
                k.start()
            else:
                k.nudge()
        try:
            lease = k.wait_ready(self.settings.resend_timeout + self.settings.timeout
                                 + READY_MARGIN)
            return lease_result(lease, int(ipam.get("priority") or 0))
        except BaseException:
            with self.lock:
                if self.leases.get(key) is k:
                    del self.leases[key]
            k.stop(release=True, timeout=self.settings.timeout)
            self._save()
            raise

    def _stop(self, keepers: list) -> None:
        self._save()
        for k in keepers:
            k.stop(release=True, timeout=self.settings.timeout + 5)

    def release(self, args: dict) -> dict:
        cid, ifname = owner(args)
        conf, _ = netconf(args)
        key = C.client_id_for(cid, conf.get("name", ""), ifname)
        with self.lock:
            k = self.leases.pop(key, None)
        if k is not None:
            self._stop([k])
        return {}

    def gc(self, args: dict) -> dict:
        """Release the leases of this network whose attachment is not in args.valid."""
        conf, _ = netconf(args)
        keep = gc_keep(args)
        if keep is None:
            return {"released": 0}
        name = conf.get("name", "")
        with self.lock:
            stale = [key for key, k in self.leases.items() if k.network == name
                     and (k.container_id, k.ifname) not in keep]
            gone = [self.leases.pop(key) for key in stale]
        for k in gone:
            log(f"{k.name}: released by GC")
        self._stop(gone)
        return {"released": len(gone)}

    def check(self, args: dict) -> dict:
        cid, ifname = owner(args)
        conf, ipam = netconf(args)
        key = C.client_id_for(cid, conf.get("name", ""), ifname)
        with self.lock:
            k = self.leases.get(key)
        if k is None or not k.ready.is_set() or not k.alive or k.lease is None:
            raise UnknownContainerError("no DHCP lease held",
                                        key[1:].decode(errors="replace"))
        k.nudge()
        return lease_result(k.lease, int(ipam.get("priority") or 0))

    # -- persistence ----------------------------------------------------------------------
    def _changed(self, keeper) -> None:
        """A keeper's lease changed or its thread ended (called on that thread)."""
        if keeper.finished:
            with self.lock:
                if self.leases.get(keeper.client_id) is keeper:
                    del self.leases[keeper.client_id]
        self._save()

    def _save(self) -> None:
        if not self.state_path:
            return
        with self.save_lock:
            with self.lock:
                held = [(k, k.lease) for k in self.leases.values()
                        if not k.finished and k.lease is not None]
            try:
                state.save(self.state_path, [state.record(k, lease) for k, lease in held])
            except OSError as exc:
                log(f"error writing lease state {self.state_path}: {exc}")

    def restore(self) -> int:
        """Start a keeper for every lease in the state file; each reclaims its address."""
        if not self.state_path:
            return 0
        restored = state.load(self.state_path, log)
        with self.lock:
            for r in restored:
                if r.client_id in self.leases:
                    continue                     # a duplicate record: the first one wins
                k = self._keeper(r.client_id, r.netns, r.ifname, request=r.request,
                                 provide=r.provide, container_id=r.container_id,
                                 network=r.network, restored=r.lease)
                self.leases[r.client_id] = k
                k.start()
        if restored:
            log(f"restored {len(restored)} lease(s) from {self.state_path}")
        return len(restored)


# ---- server ------------------------------------------------------------------------------

def get_listener(path: str, environ=None) -> socket.socket:
    """The systemd-activated socket (LISTEN_PID/LISTEN_FDS) or a fresh private one at `path`."""
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
    return server.bind_private(path)


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
    statedir = opts.hostprefix + opts.statedir if opts.statedir else ""
    daemon = Daemon(settings, opts.hostprefix, state_path=state.state_path(statedir, sock_path))
    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        where = listener.getsockname() or sock_path
    except OSError:
        where = sock_path
    try:
        daemon.restore()
        log(f"dhcp daemon listening on {where}")
        server.Server(listener, daemon.handle, log).serve_forever()
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
