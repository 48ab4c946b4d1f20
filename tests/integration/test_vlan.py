"""vlan over the exec protocol (skips where the kernel has no 802.1Q)."""
from __future__ import annotations

import functools
import os

import pytest

from helpers import host_local, netconf, run_in_host
from test_ipvlan import can_create

pytestmark = [pytest.mark.root]


@pytest.fixture
def lab(host_ns, cont_ns, built_bins, tmp_path):
    if os.geteuid() != 0 or not can_create("vlan", "id", "5"):
        pytest.skip("this kernel cannot create vlan links")
    host_ns.ip("link", "add", "trunk0", "type", "veth", "peer", "name", "peer0")
    host_ns.ip("link", "set", "trunk0", "up")
    return host_ns, cont_ns, tmp_path


def conf(tmp_path, ver="1.0.0", **kw):
    ipam = host_local(tmp_path, {"subnet": "10.70.0.0/24"})
    return netconf(ver, "vlnet", "vlan", {"master": "trunk0", "vlanId": 42, "ipam": ipam}, kw)


run = functools.partial(run_in_host, "vlan")


@pytest.mark.parametrize("ver", ["0.3.1", "0.4.0", "1.0.0", "1.1.0"])
def test_add_check_del(lab, ver):
    host, cont, tmp = lab
    c = conf(tmp, ver, mtu=1400)
    r = run("ADD", c, host, cont)
    assert r.rc == 0, r
    link = cont.ipj("-d", "link", "show", "eth0")[0]
    assert link["linkinfo"]["info_kind"] == "vlan"
    assert link["linkinfo"]["info_data"]["id"] == 42 and link["mtu"] == 1400
    if ver >= "0.4.0":
        assert run("CHECK", dict(c, prevResult=r.json), host, cont).rc == 0
        assert run("CHECK", dict(c, vlanId=43, prevResult=r.json), host, cont).rc == 1
    assert run("DEL", c, host, cont).rc == 0
    assert [x["ifname"] for x in cont.ipj("link")] == ["lo"]
    assert run("DEL", c, host, cont).rc == 0


def test_del_with_master_gone(lab):
    host, cont, tmp = lab
    assert run("ADD", conf(tmp), host, cont).rc == 0
    host.ip("link", "del", "trunk0")
    assert run("DEL", conf(tmp), host, cont).rc == 0
    assert run("DEL", conf(tmp), host, cont, netns="").rc == 0


def test_rollback(lab):
    host, cont, tmp = lab
    c = conf(tmp)
    c["ipam"]["routes"] = [{"dst": "10.98.0.0/16", "gw": "192.0.2.1"}]
    assert run("ADD", c, host, cont).rc == 1
    assert [x["ifname"] for x in cont.ipj("link")] == ["lo"]
