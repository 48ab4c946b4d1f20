"""CNI_NETNS that is not a network namespace: a FIFO, a tty, a directory, a device ...

Every plugin in bin/ must answer ADD and CHECK with code 4 well under a second, and
succeed on DEL, without blocking on the file or touching it (the path is resolved with
O_PATH and only an nsfs inode is ever opened). Before that, a FIFO hung loopback,
bridge, ptp and tuning forever, ADD and DEL alike.
"""
from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import time

import pytest

from helpers import run_plugin

pytestmark = [pytest.mark.root]

PREV = {"cniVersion": "1.0.0",
        "interfaces": [{"name": "cnith0"}, {"name": "eth0", "sandbox": "/run/netns/x"}],
        "ips": [{"address": "10.99.0.2/24", "gateway": "10.99.0.1", "interface": 1}]}


def _configs(tmp) -> dict:
    ipam = {"type": "host-local", "dataDir": str(tmp / "ipam"),
            "ranges": [[{"subnet": "10.99.0.0/24"}]]}
    chained = {"prevResult": PREV}
    return {
        "loopback": {},
        "bridge": {"bridge": "cnithbr0", "ipam": ipam},
        "ptp": {"ipam": ipam},
        "macvlan": {"master": "cnithpar0", "ipam": ipam},
        "ipvlan": {"master": "cnithpar0", "ipam": ipam},
        "vlan": {"master": "cnithpar0", "vlanId": 42, "ipam": ipam},
        "host-device": {"device": "cnithpar1"},
        "dummy": {"ipam": ipam},
        "tap": {"ipam": ipam},
        "tuning": dict(chained, sysctl={"net.ipv4.conf.eth0.arp_notify": "1"}),
        "sbr": dict(chained),
        "vrf": dict(chained, vrfname="cnithvrf"),
        "portmap": dict(chained, capabilities={"portMappings": True},
                        runtimeConfig={"portMappings": [
                            {"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}]}),
        "firewall": dict(chained, backend="iptables"),
        "bandwidth": dict(chained, ingressRate=100000, ingressBurst=10000),
        "host-local": dict(ipam, type="host-local"),
        "static": {"addresses": [{"address": "10.99.0.9/24"}]},
        "dhcp": {"daemonSocketPath": str(tmp / "no-dhcp.sock")},
        "debug": {},
        "sample": dict(chained, anotherAwesomeArg="x"),
    }


def _conf(plugin, tmp):
    body = _configs(tmp)[plugin]
    if plugin in ("host-local", "static", "dhcp"):
        body = {"ipam": dict(body, type=plugin)}
    return dict({"cniVersion": "1.0.0", "name": "cnithnet", "type": plugin}, **body)


class Hostile:
    """The non-netns files a runtime could pass, with what is needed to check them after."""

    def __init__(self, tmp):
        self.paths = {}
        fifo = tmp / "fifo"
        os.mkfifo(fifo)
        self.fifo = str(fifo)
        self.paths["fifo"] = self.fifo
        link = tmp / "link-to-fifo"
        os.symlink(self.fifo, link)
        self.paths["symlink to fifo"] = str(link)
        self.master, self.slave = os.openpty()     # both kept open: a read then says EAGAIN
        self.paths["tty"] = os.ttyname(self.slave)
        os.set_blocking(self.master, False)
        (tmp / "dir").mkdir()
        self.paths["directory"] = str(tmp / "dir")
        (tmp / "file").write_text("not a netns\n")
        self.paths["regular file"] = str(tmp / "file")
        self.paths["/dev/null"] = "/dev/null"
        self.paths["/dev/zero"] = "/dev/zero"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(tmp / "sock"))
        self.sock.listen(1)
        self.sock.setblocking(False)
        self.paths["unix socket"] = str(tmp / "sock")
        self.paths["uts namespace"] = "/proc/self/ns/uts"

    def assert_untouched(self):
        # FIFO: nobody holds either end (a writer gets ENXIO) and nothing was written
        with pytest.raises(OSError) as ei:
            os.close(os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK))
        assert ei.value.errno == errno.ENXIO, "someone still has the FIFO open for reading"
        fd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            assert os.read(fd, 64) == b""
        finally:
            os.close(fd)
        # tty: nothing written to it
        with pytest.raises(BlockingIOError):
            os.read(self.master, 64)
        # socket: nobody connected
        with pytest.raises(BlockingIOError):
            self.sock.accept()

    def close(self):
        os.close(self.master)
        os.close(self.slave)
        self.sock.close()


def _timed(plugin, cmd, conf, path, host):
    t0 = time.monotonic()
    try:
        r = run_plugin(plugin, cmd, conf, netns=path, in_netns=host.name, timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{plugin} {cmd} with CNI_NETNS={path} blocked for 5 s")
    return r, time.monotonic() - t0


PLUGINS = ("bandwidth", "bridge", "debug", "dhcp", "dummy", "firewall", "host-device", "host-local",
           "ipvlan", "loopback", "macvlan", "portmap", "ptp", "sample", "sbr", "static", "tap",
           "tuning", "vlan", "vrf")


def test_every_plugin_is_covered(built_bins):
    have = {n for n in os.listdir(built_bins) if not n.startswith(".") and n != "cnitool"}
    assert have == set(PLUGINS)


@pytest.mark.parametrize("plugin", PLUGINS)
def test_not_a_netns(plugin, make_netns, tmp_path, built_bins):
    host = make_netns("hhost")
    host.ip("link", "add", "cnithpar0", "type", "veth", "peer", "name", "cnithpar1")
    links_before = sorted(ln["ifname"] for ln in host.ipj("link", "show"))
    ipt_before = host.run("iptables", "-S").stdout
    conf = _conf(plugin, tmp_path)
    bad = Hostile(tmp_path)
    slowest = 0.0
    try:
        for kind, path in bad.paths.items():
            for cmd in ("ADD", "CHECK"):
                r, took = _timed(plugin, cmd, conf, path, host)
                assert r.rc == 1 and r.json["code"] == 4, (kind, cmd, r)
                assert "network namespace" in r.json["msg"] + r.json.get("details", ""), r
                assert took < 1.0, f"{plugin} {cmd} {kind}: {took:.2f} s"
                slowest = max(slowest, took)
            r, took = _timed(plugin, "DEL", conf, path, host)
            assert r.rc == 0, (kind, "DEL", r)
            assert took < 1.0, f"{plugin} DEL {kind}: {took:.2f} s"
            bad.assert_untouched()
    finally:
        bad.close()
    assert sorted(ln["ifname"] for ln in host.ipj("link", "show")) == links_before
    assert host.run("iptables", "-S").stdout == ipt_before
    print(f"{plugin}: {len(bad.paths)} kinds x ADD/CHECK/DEL, slowest ADD/CHECK {slowest:.3f} s")


def test_skel_check_runs_on_the_pinned_fd(make_netns):
    """The own-netns check and the plugin's work use one fd: re-binding the path between
    them (as a reused /proc/PID would) cannot turn the work onto another namespace."""
    from cni import netns, skel
    a, b = make_netns("pina"), make_netns("pinb")
    seen = []

    def add(args, conf):
        # the path now names b, but the call still works in a (the pinned fd)
        subprocess.run(["mount", "--bind", b.path, a.path], check=True)
        try:
            with netns.NetNS.open(args.netns) as ns:
                seen.append(os.fstat(ns.fd).st_ino)
        finally:
            subprocess.run(["umount", a.path], check=True)
        from cni.types import Result
        return Result(conf.cni_version)

    from cni.config import NetConf
    plugin = skel.Plugin("t", NetConf, add=add)
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": a.path, "CNI_IFNAME": "eth0"}
    import io
    skel.dispatch(plugin, env, io.BytesIO(json.dumps(
        {"cniVersion": "1.0.0", "name": "n", "type": "t"}).encode()))
    assert seen == [os.stat(a.path).st_ino] != [os.stat(b.path).st_ino]
    assert netns._pinned == {}
    with netns.NetNS.open(a.path) as ns:      # no pin left: a fresh open after the call
        assert os.fstat(ns.fd).st_ino == os.stat(a.path).st_ino
