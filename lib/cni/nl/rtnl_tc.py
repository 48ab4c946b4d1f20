"""TcRtnl: an Rtnl that also speaks tc (qdiscs, htb classes, filters: cni.nl.tc).

Only the bandwidth plugin shapes traffic, so only it carries tc: the other plugins' Rtnl
stays links and layer 3, and their zipapps leave tc out.
"""
from __future__ import annotations

from . import tc_defs
from .rtnl import Rtnl
from .tc import TcOps


class TcRtnl(Rtnl, TcOps):
    """Rtnl plus TcOps; same socket, same namespace binding."""

    __slots__ = ()
    MESSAGES = tc_defs.MESSAGES
