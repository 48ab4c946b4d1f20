"""Netfilter sockets (nf_tables, ctnetlink) after this process committed a batch: held open,
bounded, and at exit handed to a child that releases them (cni.nl.nfsock).

Releasing any netfilter socket while deleted rules wait for their RCU grace period makes the
kernel finish that wait first (5-30 ms here): a DEL that deletes rules and then closes its
sockets would sit in close(), or in its exit.
"""
from __future__ import annotations

import os

import pytest

from cni.netns import NetNS
from cni.nl import conntrack, nfsock
from cni.nl import nftables as nft


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(nfsock, "_held", [])
    monkeypatch.setattr(nfsock, "_wrote", False)
    yield
    for s in nfsock._held:
        s.close()


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def _commit_a_delete() -> int:
    """A batch that deletes (a chain), committed on a socket of its own; returns that fd."""
    b = nft.Batch()
    b.add_table("ip", "cnitrel")
    b.add_chain("ip", "cnitrel", "c")
    b.delete_chain("ip", "cnitrel", "c")
    with nft.NftSocket() as w:
        fd = w.fileno()
        b.commit(w)
    return fd


def test_sockets_close_until_a_commit_then_are_held_bounded(fresh, make_netns):
    ns = make_netns("nftrel")
    with NetNS.open(ns.path) as h, h.enter():
        s = nft.NftSocket()
        fd = s.fileno()
        s.close()
        assert not nfsock._held and not _fd_open(fd), "closed before any commit"
        fd = _commit_a_delete()
        assert nfsock._wrote and _fd_open(fd) and len(nfsock._held) == 1
        fds = []
        for _ in range(nfsock.HOLD + 3):
            r = nft.NftSocket()
            fds.append(r.fileno())
            r.close()
        assert len(nfsock._held) == nfsock.HOLD
        assert [s.fileno() for s in nfsock._held] == fds[-nfsock.HOLD:]
    assert "chain" not in ns.run("nft", "list", "table", "ip", "cnitrel").stdout


def test_release_held_detached_hands_the_sockets_to_a_child(fresh, make_netns, monkeypatch):
    """At exit (skel.main), the held sockets go to a forked child that closes every other
    descriptor and exits; the process itself is left with none of them."""
    ns = make_netns("nftrel")
    forked = []
    real_fork = os.fork

    def fork():
        pid = real_fork()
        if pid:
            forked.append(pid)
        return pid
    monkeypatch.setattr(nfsock.posix, "fork", fork)
    with NetNS.open(ns.path) as h, h.enter():
        fd = _commit_a_delete()
        assert _fd_open(fd) and len(nfsock._held) == 1
        r, w = os.pipe()                 # the child must not keep this (or stdout) open
        try:
            nfsock.release_held_detached()
            assert not nfsock._held and not _fd_open(fd)
            assert len(forked) == 1
            os.close(w)
            w = -1
            assert os.read(r, 1) == b""  # EOF: no process holds the write end any more
            _, status = os.waitpid(forked[0], 0)
            assert os.waitstatus_to_exitcode(status) == 0
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)
    assert "chain" not in ns.run("nft", "list", "table", "ip", "cnitrel").stdout


def test_release_held_detached_without_held_sockets_or_fork(fresh, make_netns, monkeypatch):
    def no_fork():
        raise OSError(11, "fork refused")
    monkeypatch.setattr(nfsock.posix, "fork", no_fork)
    nfsock.release_held_detached()                    # nothing held: no fork tried
    ns = make_netns("nftrel")
    with NetNS.open(ns.path) as h, h.enter():
        fd = _commit_a_delete()
        nfsock.release_held_detached()                # fork fails: the exit releases them
        assert len(nfsock._held) == 1 and _fd_open(fd)


def test_conntrack_socket_is_held_after_a_commit_too(fresh, make_netns):
    """ctnetlink is NETLINK_NETFILTER as well: portmap flushes UDP entries after its rules
    went, and that socket's release would wait the same."""
    ns = make_netns("nftrel")
    with NetNS.open(ns.path) as h, h.enter():
        with conntrack.Conntrack() as ct:
            fd = ct._nl.fileno()
            assert ct.delete_ports(proto=17, dports=[15353]) == 0
        assert not _fd_open(fd) and not nfsock._held, "closed: nothing committed yet"
        _commit_a_delete()
        with conntrack.Conntrack() as ct:
            fd = ct._nl.fileno()
            ct.delete_ports(proto=17, dports=[15353])
        assert _fd_open(fd) and fd in [s.fileno() for s in nfsock._held]


def test_a_batch_that_only_adds_holds_nothing(fresh, make_netns, monkeypatch):
    """Adding frees nothing, so there is no grace period to wait for: sockets close as usual
    and no child is forked at exit."""
    def no_fork():
        raise AssertionError("forked after a batch that freed nothing")
    monkeypatch.setattr(nfsock.posix, "fork", no_fork)
    ns = make_netns("nftrel")
    with NetNS.open(ns.path) as h, h.enter():
        b = nft.Batch()
        b.add_table("ip", "cnitrel")
        b.add_chain("ip", "cnitrel", "c")
        with nft.NftSocket() as w:
            fd = w.fileno()
            b.commit(w)
        assert not nfsock._wrote and not nfsock._held and not _fd_open(fd)
        nfsock.release_held_detached()
        fd = _commit_a_delete()
        assert nfsock._wrote and _fd_open(fd)
    assert "chain c" not in ns.run("nft", "list", "table", "ip", "cnitrel").stdout
