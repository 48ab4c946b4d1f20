"""cni.std.setns against its stdlib twin os.setns (3.12+) and against each other: the libc
path and the nsenter helper land in the same namespace; errors are plain OSErrors."""
from __future__ import annotations

import errno
import os
import subprocess
import uuid

import pytest

from cni.std import nsenter
from cni.std import setns as std

AF_NETLINK, SOCK_RAW = 16, 3


def _ino(fd_or_path) -> tuple:
    st = os.fstat(fd_or_path) if isinstance(fd_or_path, int) else os.stat(fd_or_path)
    return st.st_dev, st.st_ino


def test_open_netns_accepts_only_a_net_namespace(tmp_path):
    fd = std.open_netns("/proc/self/ns/net")
    try:
        assert _ino(fd) == _ino(std.CURRENT)
    finally:
        os.close(fd)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for p in (str(fifo), str(tmp_path), "/dev/null", "/proc/self/ns/uts"):
        with pytest.raises(std.NotNetnsError) as ei:
            std.open_netns(p)
        assert isinstance(ei.value, OSError) and ei.value.errno == errno.EINVAL
    with pytest.raises(FileNotFoundError):
        std.open_netns(str(tmp_path / "missing"))


@pytest.fixture
def scratch():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    name = "cnitstd" + uuid.uuid4().hex[:6]
    subprocess.run(["ip", "netns", "add", name], check=True)
    fd = std.open_netns(f"/run/netns/{name}")
    try:
        yield fd
    finally:
        os.close(fd)
        subprocess.run(["ip", "netns", "del", name])


def _where_libc_setns_goes(fd: int) -> tuple:
    with std.Entered(fd):
        return _ino(std.CURRENT)


def test_libc_setns_agrees_with_os_setns(scratch):
    home = _ino(std.CURRENT)
    libc = std._libc_setns()
    saved = os.open(std.CURRENT, os.O_RDONLY)
    try:
        libc(scratch, std.CLONE_NEWNET)
        assert _ino(std.CURRENT) == _ino(scratch)
        if hasattr(os, "setns"):                     # the stdlib twin (3.12+)
            os.setns(saved, std.CLONE_NEWNET)  # novermin
            assert _ino(std.CURRENT) == home
            os.setns(scratch, std.CLONE_NEWNET)  # novermin
            assert _ino(std.CURRENT) == _ino(scratch)
    finally:
        libc(saved, std.CLONE_NEWNET)
        os.close(saved)
    assert _ino(std.CURRENT) == home
    null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with pytest.raises(OSError) as ei:           # same errno as os.setns on a non-ns fd
            libc(null, std.CLONE_NEWNET)
        assert ei.value.errno == errno.EINVAL
    finally:
        os.close(null)


@pytest.mark.skipif(not (os.path.exists("/usr/bin/nsenter") or os.path.exists("/bin/nsenter")),
                    reason="no nsenter")
def test_helper_and_setns_open_in_the_same_namespace(scratch):
    assert std.can_setns()
    via_setns = std.socket_in(scratch, AF_NETLINK, SOCK_RAW, 0)
    via_helper_fd, proof = nsenter.open_via_nsenter(scratch, [f"s:{AF_NETLINK}:{SOCK_RAW}:0",
                                                          "f:0:0:/proc/self/ns/net"])
    try:
        assert _ino(proof) == _ino(scratch) == _where_libc_setns_goes(scratch)
        assert not os.get_inheritable(via_helper_fd)
    finally:
        via_setns.close()
        os.close(via_helper_fd)
        os.close(proof)


def test_without_setns_it_says_so(monkeypatch):
    monkeypatch.setattr(std, "_setns", std._no_setns)
    assert not std.can_setns()
    with pytest.raises(std.NoSetnsError) as ei:
        std.setns(0)
    assert isinstance(ei.value, OSError) and ei.value.errno == errno.EOPNOTSUPP
