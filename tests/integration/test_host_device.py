"""host-device over the exec protocol; the "host device" is a veth end made in host_ns."""
from __future__ import annotations

import functools
import json
import os
import uuid

import pytest

from helpers import BIN_AND_GO, GO_BIN, host_local, netconf, run_in_host, run_plugin
from helpers import leases as host_local_leases

pytestmark = [pytest.mark.root]
STATE_DIR = "/run/cni/host-device"


@pytest.fixture
def lab(host_ns, cont_ns, built_bins, tmp_path):
    """host_ns: veth hd0 (MTU 1400, up, 10.68.5.2/24) <-> hd0p."""
    host_ns.ip("link", "add", "hd0", "mtu", "1400", "type", "veth", "peer", "name", "hd0p")
    host_ns.ip("addr", "add", "10.68.5.2/24", "dev", "hd0")
    host_ns.ip("link", "set", "hd0", "up")
    host_ns.ip("link", "set", "hd0p", "up")
    cid = "hd-" + uuid.uuid4().hex[:10]
    yield host_ns, cont_ns, tmp_path, cid
    for name in os.listdir(STATE_DIR) if os.path.isdir(STATE_DIR) else ():
        if name.startswith(cid):
            os.unlink(os.path.join(STATE_DIR, name))


def conf(tmp_path, ver="1.0.0", ipam=True, **kw):
    base = {"device": "hd0"}
    if ipam:
        base["ipam"] = host_local(tmp_path, {"subnet": "10.68.0.0/24", "gateway": "10.68.0.254"},
                                  routes=[{"dst": "10.96.0.0/16"}])
    return netconf(ver, "hdnet", "host-device", base, kw)


def run(cmd, c, host, cont, cid, **kw):
    kw.setdefault("ifname", "net1")
    return run_in_host("host-device", cmd, c, host, cont, container_id=cid, **kw)


def names(ns):
    return sorted(x["ifname"] for x in ns.ipj("link"))


leases = functools.partial(host_local_leases, net="hdnet")


def host_dev(host):
    return host.ipj("-d", "addr", "show", "hd0")[0]


def assert_back_home(host, cont, *, cont_names=("lo",)):
    assert names(cont) == sorted(cont_names)
    d = host_dev(host)
    assert d["mtu"] == 1400 and "UP" in d["flags"]
    assert "ifalias" not in d
    assert [a["local"] for a in d["addr_info"] if a["family"] == "inet"] == ["10.68.5.2"]


@pytest.mark.parametrize("ver", ["0.3.1", "0.4.0", "1.0.0", "1.1.0"])
def test_add_check_del_with_ipam(lab, ver):
    host, cont, tmp, cid = lab
    mac = host_dev(host)["address"]
    c = conf(tmp, ver)
    r = run("ADD", c, host, cont, cid)
    assert r.rc == 0, r
    assert "hd0" not in names(host)
    d = cont.ipj("-d", "addr", "show", "net1")[0]
    assert d["ifalias"] == "hd0" and d["address"] == mac and "UP" in d["flags"]
    assert [a["local"] for a in d["addr_info"] if a["family"] == "inet"] == ["10.68.0.1"]
    assert any(x["dst"] == "10.96.0.0/16" and x.get("gateway") == "10.68.0.254"
               for x in cont.ipj("route"))
    assert r.json["interfaces"] == [{"name": "net1", "mac": mac, "sandbox": cont.path}]
    if ver >= "0.4.0":
        assert run("CHECK", dict(c, prevResult=r.json), host, cont, cid).rc == 0
    cont.ip("link", "set", "net1", "mtu", "1280")            # the workload changes it
    r = run("DEL", c, host, cont, cid)
    assert r.rc == 0, r
    assert_back_home(host, cont)
    assert not leases(tmp)
    assert run("DEL", c, host, cont, cid).rc == 0
    assert_back_home(host, cont)


def test_keeps_host_addresses_without_ipam(lab):
    host, cont, tmp, cid = lab
    c = conf(tmp, ipam=False)
    r = run("ADD", c, host, cont, cid)
    assert r.rc == 0, r
    d = cont.ipj("addr", "show", "net1")[0]
    assert [a["local"] for a in d["addr_info"] if a["family"] == "inet"] == ["10.68.5.2"]
    assert r.json["ips"] == [{"interface": 0, "address": "10.68.5.2/24"}]
    assert run("CHECK", dict(c, prevResult=r.json), host, cont, cid).rc == 0
    assert run("DEL", c, host, cont, cid).rc == 0
    assert_back_home(host, cont)


def test_select_by_hwaddr_and_name_collision(lab):
    """Selected by MAC; the container already has a link named like the host device."""
    host, cont, tmp, cid = lab
    cont.ip("link", "add", "hd0", "type", "veth", "peer", "name", "x0")
    mac = host_dev(host)["address"]
    c = conf(tmp, device=None, hwaddr=mac.upper())
    r = run("ADD", c, host, cont, cid)
    assert r.rc == 0, r
    assert names(cont) == ["hd0", "lo", "net1", "x0"]
    assert run("DEL", c, host, cont, cid).rc == 0
    assert_back_home(host, cont, cont_names=("hd0", "lo", "x0"))


def test_del_with_empty_netns_releases_ipam(lab):
    host, cont, tmp, cid = lab
    c = conf(tmp)
    assert run("ADD", c, host, cont, cid).rc == 0
    assert leases(tmp)
    r = run("DEL", c, host, cont, cid, netns="")
    assert r.rc == 0 and not leases(tmp), r
    assert run("DEL", c, host, cont, cid).rc == 0
    assert_back_home(host, cont)


def test_del_when_renamed_in_container(lab):
    """plugins#773: the workload renamed the link; DEL still finds it by its alias."""
    host, cont, tmp, cid = lab
    c = conf(tmp)
    assert run("ADD", c, host, cont, cid).rc == 0
    cont.ip("link", "set", "net1", "down")
    cont.ip("link", "set", "net1", "name", "renamed0")
    assert run("DEL", c, host, cont, cid).rc == 0
    assert_back_home(host, cont)


def test_rollback_when_ipam_fails(lab):
    host, cont, tmp, cid = lab
    c = conf(tmp)
    c["ipam"]["routes"] = [{"dst": "10.98.0.0/16", "gw": "192.0.2.1"}]
    r = run("ADD", c, host, cont, cid)
    assert r.rc == 1, r
    assert_back_home(host, cont)
    assert not leases(tmp)


def test_errors(lab):
    host, cont, tmp, cid = lab
    r = run("ADD", conf(tmp, device=None), host, cont, cid)
    assert r.rc == 1 and r.json["code"] == 7, r
    r = run("ADD", conf(tmp, device="nope0"), host, cont, cid)
    assert r.rc == 1 and "nope0" in r.json["details"], r
    r = run("ADD", conf(tmp, device=None, kernelpath="/tmp/x"), host, cont, cid)
    assert r.rc == 1 and "kernelpath" in r.json["msg"], r
    cont.ip("link", "add", "net1", "type", "veth", "peer", "name", "x1")
    r = run("ADD", conf(tmp), host, cont, cid)
    assert r.rc == 1 and "already exists" in r.json["msg"], r
    assert_back_home(host, cont, cont_names=("lo", "net1", "x1"))
    assert not leases(tmp)


@pytest.mark.gobin("host-device")
def test_interop_go_add_our_del(lab):
    host, cont, tmp, cid = lab
    c = conf(tmp)
    r = run_plugin(f"{GO_BIN}/host-device", "ADD", c, netns=cont.path, in_netns=host.name,
                   path=BIN_AND_GO, ifname="net1", container_id=cid)
    assert r.rc == 0, r
    assert "net1" in names(cont)
    assert run("CHECK", dict(c, prevResult=json.loads(r.stdout)), host, cont, cid).rc == 0
    assert run("DEL", c, host, cont, cid).rc == 0
    assert names(cont) == ["lo"]
    d = host_dev(host)
    assert d["mtu"] == 1400 and "ifalias" not in d      # no saved state: name and MTU only
    assert not leases(tmp)
    assert run("DEL", c, host, cont, cid).rc == 0


def test_del_after_netns_is_gone(lab, make_netns):
    """The netns was destroyed (a veth dies with it): DEL still releases the lease."""
    host, _, tmp, cid = lab
    gone = make_netns("gone")
    c = conf(tmp)
    assert run("ADD", c, host, gone, cid).rc == 0
    import subprocess
    subprocess.run(["ip", "netns", "del", gone.name], check=True)
    r = run("DEL", c, host, gone, cid)
    assert r.rc == 0 and not leases(tmp), r
    assert not os.path.exists(os.path.join(STATE_DIR, f"{cid}-net1.json"))
