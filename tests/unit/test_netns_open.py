"""cni.netns opening: O_PATH first, only nsfs net inodes opened for real; pins (no root)."""
from __future__ import annotations

import os
import threading

import pytest

from cni import netns
from cni.errors import InvalidEnvError
from cni.netns import NetNS


def _hostile(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    return [str(fifo), str(tmp_path / "dir"), str(tmp_path / "file"), "/dev/null",
            "/proc/self/ns/uts", "/proc/self/ns/mnt"]


def test_open_refuses_without_blocking(tmp_path):
    paths = _hostile(tmp_path)
    done = []

    def probe():
        for p in paths:
            with pytest.raises(InvalidEnvError) as ei:
                NetNS.open(p)
            assert ei.value.code == 4 and "network namespace" in ei.value.msg
            assert not netns.is_netns(p)
        done.append(True)
    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(5)
    assert done == [True], "NetNS.open blocked on a non-netns file"
    with pytest.raises(FileNotFoundError):
        NetNS.open(str(tmp_path / "missing"))


def test_open_own_netns_and_is_current():
    with NetNS.open("/proc/self/ns/net") as ns:
        assert ns.is_current() and netns.is_netns(ns.path)
        fd = ns.reopen()
        try:
            assert os.fstat(fd).st_ino == os.fstat(ns.fd).st_ino and fd != ns.fd
        finally:
            os.close(fd)


def test_pin_is_reused_then_released():
    path = "/proc/self/ns/net"
    outer = netns.pin(path)
    inner = netns.pin(path)                 # nested (in-process delegation): outer stays
    assert netns._pinned == {path: outer.fd}
    with NetNS.open(path) as ns:
        assert ns.fd != outer.fd and os.fstat(ns.fd).st_ino == os.fstat(outer.fd).st_ino
    inner.close()
    assert netns._pinned == {path: outer.fd}
    outer.close()
    assert netns._pinned == {}


def test_pin_refuses_non_netns(tmp_path):
    for p in _hostile(tmp_path):
        with pytest.raises(InvalidEnvError):
            netns.pin(p)
    assert netns._pinned == {}


def test_skel_refuses_non_netns_for_add_check_not_del(tmp_path):
    import io
    import json

    from cni import skel
    from cni.config import NetConf
    from cni.errors import CNIError
    calls = []
    plugin = skel.Plugin("t", NetConf, add=lambda a, c: calls.append("ADD"),
                         check=lambda a, c: calls.append("CHECK"),
                         delete=lambda a, c: calls.append("DEL"))
    raw = json.dumps({"cniVersion": "1.0.0", "name": "n", "type": "t"}).encode()
    paths = _hostile(tmp_path)
    for p in paths:
        env = {"CNI_CONTAINERID": "c1", "CNI_NETNS": p, "CNI_IFNAME": "eth0"}
        for cmd in ("ADD", "CHECK"):
            with pytest.raises(CNIError) as ei:
                skel.dispatch(plugin, dict(env, CNI_COMMAND=cmd), io.BytesIO(raw))
            assert ei.value.code == 4, (p, cmd)
        assert skel.dispatch(plugin, dict(env, CNI_COMMAND="DEL"), io.BytesIO(raw)) == ""
    assert calls == ["DEL"] * len(paths)
    assert netns._pinned == {}
