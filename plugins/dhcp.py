"""dhcp IPAM: leases come from a DHCP server through the long-running `dhcp daemon`.

Keys under `ipam`: daemonSocketPath (default /run/cni/dhcp.sock), request [{option,
skipDefault}], provide [{option, value, fromArg}], priority (route metric).
GC releases the leases of this network whose attachment is not in `cni.dev/valid-attachments`
(or `cni.dev/attachments`); without either key it releases nothing.
`dhcp daemon [-socketpath P] [-statedir D] [-pidfile F] [-hostprefix H] [-broadcast]
[-timeout D] [-resendmax D] [-resendtimeout D]` runs the daemon instead of the plugin. The
daemon serves root only on a 0600 socket and keeps its leases in
`<statedir, default the socket's directory>/dhcp.leases.json`: after a restart it reclaims them.
"""
from __future__ import annotations

import sys

from cni import log, meta, skel
from cni.config import NetConf
from cni.convert import from_json
from cni.dhcp import plugin_side
from cni.errors import (CNIError, InvalidConfigError, PluginNotAvailableError,
                        UnknownContainerError)

_IPAM_TYPES = {"daemonSocketPath": str, "request": list, "provide": list, "priority": int}


class Config(NetConf):
    __slots__ = ()

    def validate(self) -> None:
        ipam = self.ipam or {}
        for key, typ in _IPAM_TYPES.items():
            v = ipam.get(key)
            if v is not None and (not isinstance(v, typ) or isinstance(v, bool)):
                raise InvalidConfigError("invalid config", f"ipam.{key} has the wrong type")
        for key in ("request", "provide"):
            for ent in ipam.get(key) or []:
                if not isinstance(ent, dict) or not isinstance(ent.get("option", ""), str):
                    raise InvalidConfigError("invalid config",
                                             f"ipam.{key} entries need a string \"option\"")


def _call(op: str, args: skel.Args, conf: Config) -> dict:
    req = plugin_side.request_args(args.container_id, args.netns, args.ifname, args.args,
                                   args.stdin)
    return plugin_side.call(plugin_side.socket_path(conf.raw), op, req)


def add(args: skel.Args, conf: Config):
    return from_json(_call("allocate", args, conf), "1.1.0")


def delete(args: skel.Args, conf: Config) -> None:
    try:
        _call("release", args, conf)
    except (plugin_side.DaemonNotRunning, plugin_side.WrongDaemon) as exc:
        # our daemon is not there: it holds nothing now, and once back it drops a lease whose
        # link is gone; a DEL must not block teardown (ADD reports the wrong daemon)
        log.warn(f"{exc.msg}: {exc.details}")


def check(args: skel.Args, conf: Config) -> None:
    held = _call("check", args, conf)
    prev = conf.prev_result
    if prev is None or not prev.ips:
        return
    have = {ip.get("address") for ip in held.get("ips") or []}
    want = {str(ip.address) for ip in prev.ips if ip.address.version == 4}
    if want and not want & have:
        raise UnknownContainerError("dhcp lease does not match prevResult",
                                    f"lease {sorted(have)}, prevResult {sorted(want)}")


def gc(args: skel.Args, conf: Config) -> None:
    """Release the leases of this network whose attachment is not in the valid list; without
    a list (either spelling of the key) nothing is released."""
    valid = meta.valid_attachments(conf)
    if valid is None:
        return
    keep = [list(a) for a in valid]
    config = args.stdin.decode("utf-8", "replace") if isinstance(args.stdin, bytes) else args.stdin
    try:
        plugin_side.call(plugin_side.socket_path(conf.raw), "gc",
                         {"config": config, "valid": keep})
    except (plugin_side.DaemonNotRunning, plugin_side.WrongDaemon) as exc:
        log.warn(f"{exc.msg}: {exc.details}")   # our daemon is not there: nothing held now


def status(args: skel.Args, conf: Config) -> None:
    req = {"containerID": "", "netns": "", "ifName": "", "cniArgs": "", "config": ""}
    try:
        plugin_side.call(plugin_side.socket_path(conf.raw), "status", req, timeout=10.0)
    except CNIError as exc:
        if exc.code == PluginNotAvailableError.code:
            raise
        raise PluginNotAvailableError("dhcp daemon is not usable", str(exc)) from None


PLUGIN = skel.Plugin("dhcp", Config, add=add, delete=delete, check=check, status=status, gc=gc)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "daemon":
        from cni.dhcp import daemon  # lazy: the daemon process only, never a plugin run
        sys.exit(daemon.run(sys.argv[2:]))
    skel.main(PLUGIN)


if __name__ == "__main__":
    main()
