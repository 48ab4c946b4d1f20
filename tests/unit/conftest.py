"""Unit tests never touch the kernel's firewall: the netlink paths of cni.fw are switched off, so
every firewall change goes through the (faked) tools these tests observe."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _firewall_tools_only(monkeypatch):
    from cni.fw import backend
    monkeypatch.setattr(backend, "NATIVE", False)
