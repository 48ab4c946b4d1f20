"""loopback through the exec protocol: ADD/CHECK/DEL in a real netns, every version."""
from __future__ import annotations

import subprocess

import pytest

from helpers import run_plugin

pytestmark = [pytest.mark.root]
VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]


@pytest.fixture(autouse=True)
def _bins(built_bins):
    return built_bins


def conf(ver="1.0.0"):
    return {"cniVersion": ver, "name": "cnit-lo", "type": "loopback"}


def lo_up(ns) -> bool:
    from cni.nl.rtnl import Rtnl
    with Rtnl(ns.path) as h:
        ours = h.link_get("lo").up
    theirs = "UP" in ns.ipj("link", "show", "lo")[0]["flags"]
    assert ours == theirs
    return ours


@pytest.mark.parametrize("ver", VERSIONS)
def test_add_check_del(make_netns, ver):
    ns = make_netns("lo")
    ns.ip("link", "set", "lo", "down")
    r = run_plugin("loopback", "ADD", conf(ver), netns=ns.path, ifname="lo")
    assert r.rc == 0, r
    out = r.json
    assert out["cniVersion"] == ver
    if ver in ("0.1.0", "0.2.0"):
        assert out["ip4"]["ip"] == "127.0.0.1/8" and out["ip6"]["ip"] == "::1/128"
    else:
        assert out["interfaces"] == [{"name": "lo", "mac": "00:00:00:00:00:00", "sandbox": ns.path}]
        assert [i["address"] for i in out["ips"]] == ["127.0.0.1/8", "::1/128"]
        if ver.startswith("0."):
            assert [i["version"] for i in out["ips"]] == ["4", "6"]
    assert lo_up(ns)
    if ver not in ("0.1.0", "0.2.0", "0.3.0", "0.3.1"):
        chk = run_plugin("loopback", "CHECK", dict(conf(ver), prevResult=out), netns=ns.path,
                         ifname="lo")
        assert chk.rc == 0, chk
    assert run_plugin("loopback", "DEL", conf(ver), netns=ns.path, ifname="lo").rc == 0
    assert not lo_up(ns)
    if ver not in ("0.1.0", "0.2.0", "0.3.0", "0.3.1"):
        chk = run_plugin("loopback", "CHECK", dict(conf(ver), prevResult=out), netns=ns.path,
                         ifname="lo")
        assert chk.rc == 1 and "down" in chk.json["msg"]
    assert run_plugin("loopback", "DEL", conf(ver), netns=ns.path, ifname="lo").rc == 0


def test_del_without_netns_and_after_netns_gone(make_netns):
    ns = make_netns("lo")
    assert run_plugin("loopback", "DEL", conf(), netns="", ifname="lo").rc == 0
    subprocess.run(["ip", "netns", "del", ns.name], check=True)
    assert run_plugin("loopback", "DEL", conf(), netns=ns.path, ifname="lo").rc == 0


def test_add_refuses_host_netns_and_missing_netns(make_netns):
    r = run_plugin("loopback", "ADD", conf(), netns="/proc/self/ns/net", ifname="lo")
    assert r.rc == 1 and r.json["code"] == 8
    r = run_plugin("loopback", "ADD", conf(), netns="/run/netns/cnit-does-not-exist", ifname="lo")
    assert r.rc == 1 and r.json["code"] == 4 and "CNI_NETNS" in r.json["msg"]
    r = run_plugin("loopback", "ADD", conf(), netns="/etc/hostname", ifname="lo")
    assert r.rc == 1 and r.json["code"] == 4


def test_prev_result_passes_through(make_netns):
    ns = make_netns("lo")
    prev = {"cniVersion": "1.0.0", "ips": [{"address": "10.1.2.3/24"}]}
    r = run_plugin("loopback", "ADD", dict(conf(), prevResult=prev), netns=ns.path, ifname="lo")
    assert r.rc == 0 and r.json["ips"] == [{"address": "10.1.2.3/24"}]
