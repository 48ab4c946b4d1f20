"""macvlan over the exec protocol, in test netns only (the master is a veth made in host_ns)."""
from __future__ import annotations

import functools
import json

import pytest

from helpers import BIN_AND_GO, GO_BIN, host_local, netconf, run_in_host, run_plugin
from helpers import leases as host_local_leases

pytestmark = [pytest.mark.root]
VERSIONS = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")


@pytest.fixture
def lab(host_ns, cont_ns, built_bins, tmp_path):
    """host_ns: veth eth0 (the master, up, default route) <-> peer0 (up)."""
    host_ns.ip("link", "add", "eth0", "type", "veth", "peer", "name", "peer0")
    host_ns.ip("link", "set", "eth0", "up")
    host_ns.ip("link", "set", "peer0", "up")
    host_ns.ip("addr", "add", "10.66.0.250/24", "dev", "eth0")
    host_ns.ip("route", "add", "default", "via", "10.66.0.254", "dev", "eth0")
    return host_ns, cont_ns, tmp_path


def conf(tmp_path, ver="1.0.0", **kw):
    ipam = host_local(tmp_path, {"subnet": "10.66.0.0/24", "gateway": "10.66.0.254"},
                      routes=[{"dst": "0.0.0.0/0"}, {"dst": "10.99.0.0/16"}])
    return netconf(ver, "mvnet", "macvlan", {"ipam": ipam}, kw)


run = functools.partial(run_in_host, "macvlan")


leases = functools.partial(host_local_leases, net="mvnet")


@pytest.mark.parametrize("ver", VERSIONS)
def test_add_check_del(lab, ver):
    host, cont, tmp = lab
    c = conf(tmp, ver)
    r = run("ADD", c, host, cont)
    assert r.rc == 0, r
    link = cont.ipj("-d", "link", "show", "eth0")[0]
    assert link["linkinfo"]["info_kind"] == "macvlan"
    assert link["linkinfo"]["info_data"]["mode"] == "bridge"
    addrs = [a["local"] for a in cont.ipj("addr", "show", "eth0")[0]["addr_info"]
             if a["family"] == "inet"]
    assert addrs == ["10.66.0.1"]
    routes = {(x["dst"], x.get("gateway")) for x in cont.ipj("route")}
    assert ("default", "10.66.0.254") in routes and ("10.99.0.0/16", "10.66.0.254") in routes
    res = r.json
    if ver >= "0.3.0":
        assert res["interfaces"][0] == {"name": "eth0", "mac": link["address"], "sandbox": cont.path}
        assert cont.run("cat", "/proc/sys/net/ipv4/conf/eth0/arp_notify").stdout.strip() == "1"
    if ver >= "0.4.0":
        c2 = dict(c, prevResult=res)
        r = run("CHECK", c2, host, cont)
        assert r.rc == 0, r
        # a changed mode is reported
        r = run("CHECK", dict(c2, mode="private"), host, cont)
        assert r.rc != 0 and "mode" in r.json["msg"], r
    assert leases(tmp)
    r = run("DEL", c, host, cont)
    assert r.rc == 0, r
    assert [x["ifname"] for x in cont.ipj("link")] == ["lo"]
    assert not leases(tmp)
    r = run("DEL", c, host, cont)
    assert r.rc == 0, r
    assert sorted(x["ifname"] for x in host.ipj("link")) == ["eth0", "lo", "peer0"]


def test_default_master_and_same_name_as_host(lab):
    """No master: the host's default-route link (here named eth0, like the container ifname)."""
    host, cont, tmp = lab
    r = run("ADD", conf(tmp, master=None), host, cont)
    assert r.rc == 0, r
    link = cont.ipj("-d", "link", "show", "eth0")[0]
    host_eth0 = host.ipj("link", "show", "eth0")[0]
    assert link["link_index"] == host_eth0["ifindex"]
    assert run("DEL", conf(tmp), host, cont).rc == 0


def test_two_containers_bridge_mode_ping(lab, make_netns):
    host, cont, tmp = lab
    cont2 = make_netns("cont2")
    c = conf(tmp, master="eth0", mode="bridge")
    r1 = run("ADD", c, host, cont, container_id="c1")
    r2 = run("ADD", c, host, cont2, container_id="c2")
    assert r1.rc == 0 and r2.rc == 0, (r1, r2)
    ip2 = r2.json["ips"][0]["address"].split("/")[0]
    p = cont.run("ping", "-c", "2", "-W", "2", "-i", "0.2", ip2, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    assert run("DEL", c, host, cont, container_id="c1").rc == 0
    assert run("DEL", c, host, cont2, container_id="c2").rc == 0
    assert not leases(tmp)


def test_l2_only_mac_mtu_bcqueuelen(lab):
    host, cont, tmp = lab
    c = conf(tmp, ipam=None, mtu=1400, mode="vepa", bcqueuelen=321, mac="02:00:00:00:00:01",
             capabilities={"mac": True}, runtimeConfig={"mac": "02:00:00:00:00:03"})
    r = run("ADD", c, host, cont, cni_args="IgnoreUnknown=1;MAC=02:00:00:00:00:02")
    assert r.rc == 0, r
    link = cont.ipj("-d", "link", "show", "eth0")[0]
    assert link["address"] == "02:00:00:00:00:03"          # runtimeConfig wins
    assert link["mtu"] == 1400 and "UP" in link["flags"]
    assert link["linkinfo"]["info_data"]["mode"] == "vepa"
    assert link["linkinfo"]["info_data"].get("bcqueuelen") == 321
    assert r.json["interfaces"][0]["mac"] == "02:00:00:00:00:03" and "ips" not in r.json
    r = run("CHECK", dict(c, prevResult=r.json), host, cont)
    assert r.rc == 0, r
    assert run("DEL", c, host, cont).rc == 0
    # CNI_ARGS MAC beats the config when runtimeConfig has none
    c.pop("runtimeConfig")
    r = run("ADD", c, host, cont, cni_args="IgnoreUnknown=1;MAC=02:00:00:00:00:02")
    assert r.rc == 0 and r.json["interfaces"][0]["mac"] == "02:00:00:00:00:02", r
    assert run("DEL", c, host, cont).rc == 0


def test_l2_result_for_020_fails_and_cleans_up(lab):
    host, cont, tmp = lab
    r = run("ADD", conf(tmp, "0.2.0", ipam=None), host, cont)
    assert r.rc == 1 and r.json["code"] == 1, r
    assert [x["ifname"] for x in cont.ipj("link")] == ["lo"]


def test_bad_config(lab):
    host, cont, tmp = lab
    r = run("ADD", conf(tmp, mtu=9000), host, cont)
    assert r.rc == 1 and r.json["code"] == 7 and "master MTU" in r.json["msg"], r
    r = run("ADD", conf(tmp, mode="bogus"), host, cont)
    assert r.rc == 1 and r.json["code"] == 7, r
    r = run("ADD", conf(tmp, master="nope0"), host, cont)
    assert r.rc == 1 and "nope0" in r.json["details"], r
    assert [x["ifname"] for x in cont.ipj("link")] == ["lo"]
    assert not leases(tmp)


def test_rollback_after_ipam(lab):
    """A route the kernel refuses (gateway off-link) fails ADD after IPAM: lease and link go."""
    host, cont, tmp = lab
    c = conf(tmp)
    c["ipam"]["routes"] = [{"dst": "10.98.0.0/16", "gw": "192.0.2.1"}]
    r = run("ADD", c, host, cont)
    assert r.rc == 1, r
    assert [x["ifname"] for x in cont.ipj("link")] == ["lo"]
    assert not leases(tmp)


def test_existing_container_iface(lab):
    host, cont, tmp = lab
    cont.ip("link", "add", "eth0", "type", "veth", "peer", "name", "other")
    r = run("ADD", conf(tmp), host, cont)
    assert r.rc == 1 and "already exists" in r.json["msg"], r
    assert cont.ipj("-d", "link", "show", "eth0")[0]["linkinfo"]["info_kind"] == "veth"
    assert not leases(tmp)


def test_link_in_container(lab):
    host, cont, tmp = lab
    cont.ip("link", "add", "m0", "type", "veth", "peer", "name", "m0p")
    c = conf(tmp, master="m0", linkInContainer=True, ipam=None)
    r = run("ADD", c, host, cont, ifname="net1")
    assert r.rc == 0, r
    link = cont.ipj("-d", "link", "show", "net1")[0]
    assert link["link"] == "m0"
    assert run("CHECK", dict(c, prevResult=r.json), host, cont, ifname="net1").rc == 0
    assert run("DEL", c, host, cont, ifname="net1").rc == 0
    assert not any(x["ifname"] == "net1" for x in cont.ipj("link"))


def test_del_idempotent_without_netns(lab, make_netns):
    host, cont, tmp = lab
    c = conf(tmp)
    assert run("ADD", c, host, cont).rc == 0
    r = run("DEL", c, host, cont, netns="")
    assert r.rc == 0 and not leases(tmp), r
    r = run("DEL", c, host, cont, netns="/run/netns/cnit-does-not-exist")
    assert r.rc == 0, r
    assert run("DEL", c, host, cont).rc == 0


def test_status(lab):
    host, cont, tmp = lab
    assert run("STATUS", conf(tmp, "1.1.0"), host, cont).rc == 0
    assert run("STATUS", conf(tmp, "1.1.0", ipam=None), host, cont).rc == 0


@pytest.mark.gobin("macvlan")
def test_interop_go_add_our_del(lab):
    host, cont, tmp = lab
    c = conf(tmp, master="eth0")
    r = run_plugin(f"{GO_BIN}/macvlan", "ADD", c, netns=cont.path, in_netns=host.name, path=BIN_AND_GO)
    assert r.rc == 0, r
    assert any(x["ifname"] == "eth0" for x in cont.ipj("link"))
    r = run("CHECK", dict(c, prevResult=json.loads(r.stdout)), host, cont)
    assert r.rc == 0, r
    assert run("DEL", c, host, cont).rc == 0
    assert [x["ifname"] for x in cont.ipj("link")] == ["lo"]
    assert sorted(x["ifname"] for x in host.ipj("link")) == ["eth0", "lo", "peer0"]
    assert not leases(tmp)
