"""The nsenter helper (interpreters without setns): it must prove where it ran, and its
deadline must kill it. Forced here as in test_netns_paths.py: setns made unavailable."""
from __future__ import annotations

import errno
import os
import time
import uuid

import pytest

from cni.std import nsenter
from cni.std import setns as netns
from cni.netns import NetNS
from cni.nl.rtnl import Rtnl

pytestmark = [pytest.mark.root, pytest.mark.tool("nsenter")]
AF_NETLINK, SOCK_RAW = 16, 3


@pytest.fixture
def no_setns(monkeypatch):
    monkeypatch.setattr(netns, "_setns", netns._no_setns)
    assert not netns.can_setns()


def _fds() -> set:
    return set(os.listdir("/proc/self/fd"))


def _procs_with(marker: str) -> list:
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        out.append(int(pid))
            except OSError:
                pass
    return out


def test_helper_works_and_proves_its_netns(make_netns, no_setns, capfd):
    ns_a = make_netns("nsha")
    ns_a.ip("link", "add", "cnitnh0", "type", "veth", "peer", "name", "cnitnh1")
    before = _fds()
    with NetNS.open(ns_a.path) as ns, Rtnl(ns) as h:
        assert h.link_lookup("cnitnh0") is not None
    assert _fds() == before
    assert capfd.readouterr().out == ""


def test_helper_in_the_wrong_netns_is_refused(make_netns, no_setns, monkeypatch):
    """nsenter pointed at another netns (a stale or swapped path): the proof fd differs."""
    ns_a, ns_b = make_netns("nsha"), make_netns("nshb")
    monkeypatch.setattr(netns, "proc_path", lambda fd: ns_b.path)
    before = _fds()
    with NetNS.open(ns_a.path) as ns:
        with pytest.raises(OSError) as ei:
            ns.socket(AF_NETLINK, SOCK_RAW, 0)
        assert ei.value.errno == errno.EIO and "did not run in" in str(ei.value)
        with pytest.raises(OSError):
            ns.open_file("/proc/sys/net/ipv4/ip_forward", os.O_RDONLY)
    assert _fds() == before, "fds of the refused helper leaked"


def test_hung_helper_is_killed_at_its_deadline(make_netns, no_setns, monkeypatch):
    ns_a = make_netns("nsha")
    marker = "cnit-hung-" + uuid.uuid4().hex[:8]
    monkeypatch.setattr(nsenter, "HELPER", f"import time  # {marker}\ntime.sleep(60)\n")
    monkeypatch.setattr(nsenter, "HELPER_TIMEOUT", 0.5)
    before = _fds()
    t0 = time.monotonic()
    with NetNS.open(ns_a.path) as ns:
        with pytest.raises(OSError) as ei:
            ns.socket(AF_NETLINK, SOCK_RAW, 0)
    took = time.monotonic() - t0
    assert ei.value.errno == errno.ETIMEDOUT, ei.value
    assert took < 2.0, took
    assert _procs_with(marker) == [], "the hung helper is still running"
    assert _fds() == before


def test_helper_that_sends_then_hangs_is_killed(make_netns, no_setns, monkeypatch):
    """A helper that answers but does not exit: its fds are used, the process is not waited
    for past the deadline (it is killed)."""
    ns_a = make_netns("nsha")
    marker = "cnit-linger-" + uuid.uuid4().hex[:8]
    monkeypatch.setattr(nsenter, "HELPER", nsenter.HELPER + f"import time  # {marker}\ntime.sleep(60)\n")
    monkeypatch.setattr(nsenter, "HELPER_TIMEOUT", 0.5)
    t0 = time.monotonic()
    with NetNS.open(ns_a.path) as ns:
        with pytest.raises(OSError) as ei:
            ns.socket(AF_NETLINK, SOCK_RAW, 0)
    assert ei.value.errno == errno.ETIMEDOUT and time.monotonic() - t0 < 2.0
    assert _procs_with(marker) == []


def test_helper_that_dies_fails_fast(make_netns, no_setns, monkeypatch):
    ns_a = make_netns("nsha")
    monkeypatch.setattr(nsenter, "HELPER", "import sys\nsys.exit(3)\n")
    t0 = time.monotonic()
    with NetNS.open(ns_a.path) as ns:
        with pytest.raises(OSError) as ei:
            ns.socket(AF_NETLINK, SOCK_RAW, 0)
    assert ei.value.errno == errno.EIO and "exit status" in str(ei.value)
    assert time.monotonic() - t0 < 2.0


def test_nsenter_only_from_absolute_path(make_netns, no_setns, monkeypatch, tmp_path):
    """A fake nsenter in the cwd with PATH=':...' is never run."""
    ns_a = make_netns("nsha")
    marker = tmp_path / "ran"
    fake = tmp_path / "nsenter"
    fake.write_text(f"#!/bin/sh\ntouch {marker}\n")
    fake.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", ":.:" + os.environ.get("PATH", "/usr/bin"))
    with NetNS.open(ns_a.path) as ns, Rtnl(ns) as h:
        assert h.link_lookup("lo") is not None
    assert not marker.exists()
