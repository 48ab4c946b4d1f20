"""tap over the exec protocol: /dev/net/tun inside the container netns, bridge attach, IPAM."""
from __future__ import annotations

import functools
import os

import pytest

from helpers import host_local, netconf, run_in_host
from helpers import leases as host_local_leases

pytestmark = [pytest.mark.root]


@pytest.fixture
def lab(host_ns, cont_ns, built_bins, tmp_path):
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("no /dev/net/tun")
    return host_ns, cont_ns, tmp_path


def conf(tmp_path, ver="1.0.0", **kw):
    ipam = host_local(tmp_path, {"subnet": "10.67.0.0/24"}, routes=[{"dst": "10.97.0.0/16"}])
    return netconf(ver, "tapnet", "tap", {"ipam": ipam}, kw)


run = functools.partial(run_in_host, "tap")


def names(ns):
    return sorted(x["ifname"] for x in ns.ipj("link"))


leases = functools.partial(host_local_leases, net="tapnet")


@pytest.mark.parametrize("ver", ["0.2.0", "0.4.0", "1.0.0", "1.1.0"])
def test_add_check_del_with_ipam(lab, ver):
    host, cont, tmp = lab
    c = conf(tmp, ver, mtu=1300, mac="02:11:22:33:44:55")
    r = run("ADD", c, host, cont, ifname="tap0")
    assert r.rc == 0, r
    link = cont.ipj("-d", "link", "show", "tap0")[0]
    assert link["linkinfo"]["info_kind"] == "tun"
    assert link["linkinfo"]["info_data"]["type"] == "tap"
    assert link["mtu"] == 1300 and link["address"] == "02:11:22:33:44:55"
    assert "UP" in link["flags"]
    addrs = [a["local"] for a in cont.ipj("addr", "show", "tap0")[0]["addr_info"]]
    assert "10.67.0.2" in addrs
    assert any(x["dst"] == "10.97.0.0/16" for x in cont.ipj("route"))
    assert cont.run("cat", "/proc/sys/net/ipv4/conf/tap0/arp_notify").stdout.strip() == "1"
    assert names(host) == ["lo"]                       # nothing in the "host"
    if ver >= "0.4.0":
        assert run("CHECK", dict(c, prevResult=r.json), host, cont, ifname="tap0").rc == 0
    assert run("DEL", c, host, cont, ifname="tap0").rc == 0
    assert names(cont) == ["lo"] and not leases(tmp)
    assert run("DEL", c, host, cont, ifname="tap0").rc == 0


def test_bridge_multiqueue_owner_group(lab):
    host, cont, tmp = lab
    cont.ip("link", "add", "br0", "type", "bridge")
    c = conf(tmp, ipam=None, bridge="br0", multiQueue=True, owner=1234, group=2345)
    r = run("ADD", c, host, cont, ifname="tap1")
    assert r.rc == 0, r
    link = cont.ipj("-d", "link", "show", "tap1")[0]
    assert link["master"] == "br0"
    info = link["linkinfo"]["info_data"]
    assert info["multi_queue"] is True and info["user"] == 1234 and info["group"] == 2345
    assert info["pi"] is False
    assert "UP" in link["flags"]
    assert r.json["interfaces"] == [{"name": "tap1", "mac": link["address"], "sandbox": cont.path}]
    assert run("CHECK", dict(c, prevResult=r.json), host, cont, ifname="tap1").rc == 0
    r2 = run("CHECK", dict(c, bridge="br9", prevResult=r.json), host, cont, ifname="tap1")
    assert r2.rc == 1, r2
    assert run("DEL", c, host, cont, ifname="tap1").rc == 0
    assert names(cont) == ["br0", "lo"]


def test_missing_bridge_and_existing_name(lab):
    host, cont, tmp = lab
    r = run("ADD", conf(tmp, bridge="nobr"), host, cont, ifname="tap2")
    assert r.rc == 1 and "bridge" in r.json["msg"], r
    assert names(cont) == ["lo"] and not leases(tmp)
    # an existing tap of the same name is never adopted (IFF_TUN_EXCL)
    cont.run("ip", "tuntap", "add", "mode", "tap", "name", "tap2")
    r = run("ADD", conf(tmp), host, cont, ifname="tap2")
    assert r.rc == 1 and "already exists" in r.json["msg"], r
    assert names(cont) == ["lo", "tap2"] and not leases(tmp)


def test_selinux_context_rejected_without_selinux(lab):
    if os.path.isdir("/sys/fs/selinux"):
        pytest.skip("SELinux is enabled here")
    host, cont, tmp = lab
    r = run("ADD", conf(tmp, selinuxContext="system_u:system_r:svirt_t:s0"), host, cont)
    assert r.rc == 1 and r.json["code"] == 7 and "SELinux" in r.json["msg"], r
    assert names(cont) == ["lo"] and not leases(tmp)


def test_rollback_after_ipam(lab):
    host, cont, tmp = lab
    c = conf(tmp)
    c["ipam"]["routes"] = [{"dst": "10.98.0.0/16", "gw": "192.0.2.1"}]
    r = run("ADD", c, host, cont)
    assert r.rc == 1, r
    assert names(cont) == ["lo"] and not leases(tmp)


def test_del_without_netns_releases_ipam(lab):
    host, cont, tmp = lab
    c = conf(tmp)
    assert run("ADD", c, host, cont).rc == 0
    assert leases(tmp)
    assert run("DEL", c, host, cont, netns="").rc == 0
    assert not leases(tmp)
    assert run("DEL", c, host, cont).rc == 0
    assert names(cont) == ["lo"]
