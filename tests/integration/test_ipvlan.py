"""ipvlan over the exec protocol (skips where the kernel has no ipvlan)."""
from __future__ import annotations

import functools
import os
import subprocess
import uuid

import pytest

from helpers import host_local, netconf, run_in_host

pytestmark = [pytest.mark.root]
_CAN: dict = {}


def can_create(kind: str, *args: str) -> bool:
    """conftest's kmod probe adds the link without a parent, which ipvlan/vlan refuse."""
    if kind not in _CAN:
        ns = "cnit-probe-" + uuid.uuid4().hex[:6]
        subprocess.run(["ip", "netns", "add", ns], check=True)
        try:
            subprocess.run(["ip", "-n", ns, "link", "add", "p0", "type", "dummy"],
                           capture_output=True)
            subprocess.run(["ip", "-n", ns, "link", "add", "p1", "type", "veth", "peer", "p2"],
                           capture_output=True)
            _CAN[kind] = subprocess.run(["ip", "-n", ns, "link", "add", "link", "p1", "t0",
                                         "type", kind, *args], capture_output=True).returncode == 0
        finally:
            subprocess.run(["ip", "netns", "del", ns])
    return _CAN[kind]


@pytest.fixture
def lab(host_ns, cont_ns, built_bins, tmp_path):
    if os.geteuid() != 0 or not can_create("ipvlan"):
        pytest.skip("this kernel cannot create ipvlan links")
    host_ns.ip("link", "add", "eth0", "type", "veth", "peer", "name", "peer0")
    host_ns.ip("link", "set", "eth0", "up")
    host_ns.ip("link", "set", "peer0", "up")
    return host_ns, cont_ns, tmp_path


def conf(tmp_path, ver="1.0.0", **kw):
    ipam = host_local(tmp_path, {"subnet": "10.69.0.0/24"}, routes=[{"dst": "10.95.0.0/16"}])
    return netconf(ver, "ipvnet", "ipvlan", {"master": "eth0", "ipam": ipam}, kw)


run = functools.partial(run_in_host, "ipvlan")


@pytest.mark.parametrize("mode", ["l2", "l3", "l3s"])
def test_add_check_del(lab, mode):
    host, cont, tmp = lab
    c = conf(tmp, mode=mode)
    r = run("ADD", c, host, cont)
    assert r.rc == 0, r
    link = cont.ipj("-d", "link", "show", "eth0")[0]
    assert link["linkinfo"]["info_kind"] == "ipvlan"
    assert link["linkinfo"]["info_data"]["mode"] == mode
    assert any(x["dst"] == "10.95.0.0/16" for x in cont.ipj("route"))
    assert run("CHECK", dict(c, prevResult=r.json), host, cont).rc == 0
    assert run("CHECK", dict(c, mode="l3" if mode != "l3" else "l2", prevResult=r.json),
               host, cont).rc == 1
    assert run("DEL", c, host, cont).rc == 0
    assert [x["ifname"] for x in cont.ipj("link")] == ["lo"]
    assert run("DEL", c, host, cont).rc == 0


def test_chained_reuses_prev_result(lab):
    host, cont, tmp = lab
    prev = {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0"}],
            "ips": [{"address": "10.69.1.5/24", "interface": 0}]}
    c = conf(tmp, master=None, ipam=None, prevResult=prev)
    r = run("ADD", c, host, cont, ifname="net1")
    assert r.rc == 0, r
    assert r.json["ips"][0]["address"] == "10.69.1.5/24"
    assert run("DEL", c, host, cont, ifname="net1").rc == 0


def test_rollback_and_del_without_master(lab):
    host, cont, tmp = lab
    c = conf(tmp)
    c["ipam"]["routes"] = [{"dst": "10.98.0.0/16", "gw": "192.0.2.1"}]
    assert run("ADD", c, host, cont).rc == 1
    assert [x["ifname"] for x in cont.ipj("link")] == ["lo"]
    assert run("ADD", conf(tmp), host, cont).rc == 0
    host.ip("link", "del", "eth0")
    assert run("DEL", conf(tmp, master=None), host, cont).rc == 0
