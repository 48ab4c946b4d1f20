"""IPAM delegation for interface plugins (the full config goes to the delegate)."""
from __future__ import annotations

from cni.errors import InvalidConfigError


def _type(conf) -> str:
    t = conf.ipam_type()
    if not t:
        raise InvalidConfigError("no IPAM plugin type", "ipam.type is missing")
    return t


def exec_add(conf, args=None):
    """Delegate ADD to conf.ipam.type; returns a Result in the 1.1 model."""
    from cni import invoke
    return invoke.delegate_add(_type(conf), conf.raw_bytes)


def exec_del(conf, args=None) -> None:
    from cni import invoke
    invoke.delegate_del(_type(conf), conf.raw_bytes)


def exec_check(conf, args=None) -> None:
    from cni import invoke
    invoke.delegate_check(_type(conf), conf.raw_bytes)


def exec_status(conf, args=None) -> None:
    from cni import invoke
    invoke.delegate_status(_type(conf), conf.raw_bytes)


def exec_gc(conf, args=None) -> None:
    from cni import invoke
    invoke.delegate_gc(_type(conf), conf.raw_bytes)


def find_delegate(conf) -> str | None:
    """The path of the configured IPAM plugin, or raise (code 7) when CNI_PATH lacks it.

    Called at the start of ADD, before any kernel work, so that a missing delegate (or no
    CNI_PATH at all, which the spec allows) fails with nothing to undo. None without ipam.
    """
    import os
    from cni import invoke
    if not conf.ipam_type():
        return None
    return invoke.find_in_path(conf.ipam_type(), os.environ.get("CNI_PATH", ""))
