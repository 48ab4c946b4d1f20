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
