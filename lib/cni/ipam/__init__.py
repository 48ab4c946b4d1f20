"""IPAM delegation for interface plugins (the full config goes to the delegate), and the
config base of the IPAM plugins.

The delegate runs with the plugin's own environment (skel.Args.environ) and CNI_PATH
(skel.Args.path), CNI_COMMAND changed.
"""
from __future__ import annotations

from cni.config import NetConf
from cni.errors import CNIError, InvalidConfigError

# IPAM plugins an interface plugin's archive carries, run in-process when CNI_PATH holds
# the same build (skel.Plugin(embeds=...), cni.embed)
EMBEDDABLE = ("host-local", "static")


class IpamConf(NetConf):
    """The network config of an IPAM plugin: `ipam` must be an object."""
    __slots__ = ()

    def validate(self) -> None:
        if not isinstance(self.ipam, dict):
            raise InvalidConfigError("IPAM config missing 'ipam' key",
                                     "the config has no \"ipam\" object")


def _invoke():
    from cni import invoke  # lazy: host-local and static import this package, never delegate
    return invoke


def _type(conf) -> str:
    t = conf.ipam_type()
    if not t:
        raise InvalidConfigError("no IPAM plugin type", "ipam.type is missing")
    return t


def _env(args):
    return None if args is None else args.environ


def exec_add(conf, args):
    """Delegate ADD to conf.ipam.type; returns a Result in the 1.1 model."""
    return _invoke().delegate_add(_type(conf), conf.raw_bytes, env=_env(args))


def exec_del(conf, args) -> None:
    _invoke().delegate_del(_type(conf), conf.raw_bytes, env=_env(args))


def exec_check(conf, args) -> None:
    _invoke().delegate_check(_type(conf), conf.raw_bytes, env=_env(args))


def exec_status(conf, args) -> None:
    _invoke().delegate_status(_type(conf), conf.raw_bytes, env=_env(args))


def exec_gc(conf, args) -> None:
    _invoke().delegate_gc(_type(conf), conf.raw_bytes, env=_env(args))


def find_delegate(conf, args) -> str | None:
    """The path of the configured IPAM plugin, or raise (code 7) when CNI_PATH lacks it.

    Called at the start of ADD, before any kernel work, so that a missing delegate (or no
    CNI_PATH at all, which the spec allows) fails with nothing to undo. None without ipam.
    """
    if not conf.ipam_type():
        return None
    return _invoke().find_in_path(conf.ipam_type(), args.path)


def add(conf, args, undo, interfaces: list, index: int):
    """The ADD tail every interface plugin shares: IPAM ADD (its undo registered at once;
    a result without addresses is an error), then `relabel`."""
    result = exec_add(conf, args)
    undo(exec_del, conf, args)
    if not result.ips:
        raise CNIError("IPAM plugin returned missing IP config", conf.ipam_type())
    return relabel(result, conf, interfaces, index)


def relabel(result, conf, interfaces: list, index: int):
    """Make `result` this plugin's: conf's cniVersion, `interfaces`, every IP on
    interfaces[index], and the config's DNS when it sets any."""
    result.cni_version = conf.cni_version
    result.interfaces = interfaces
    for ipc in result.ips:
        ipc.interface = index
    if conf.dns is not None and not conf.dns.is_empty():
        result.dns = conf.dns
    return result
