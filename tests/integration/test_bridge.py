"""bridge through the exec protocol, in test namespaces playing host and containers."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from helpers import BIN, GO_BIN, eventually, run_plugin

pytestmark = [pytest.mark.root]
VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
PATH = f"{BIN}:{GO_BIN}"  # our host-local when built, else Go's


@pytest.fixture(autouse=True)
def _bins(built_bins):
    return built_bins


def conf(tmp_path, **kw):
    c = {"cniVersion": "1.0.0", "name": "cnit-br", "type": "bridge", "bridge": "cnitbr0",
         "isGateway": True,
         "ipam": {"type": "host-local", "subnet": "10.99.0.0/24", "dataDir": str(tmp_path / "ipam"),
                  "routes": [{"dst": "0.0.0.0/0"}]}}
    c.update(kw)
    return c


def add(host, cont, c, cid="ctr1", ifname="eth0", plugin="bridge", path=PATH, **kw):
    return run_plugin(plugin, "ADD", c, container_id=cid, netns=cont.path, ifname=ifname,
                      in_netns=host.name, path=path, **kw)


def delete(host, cont, c, cid="ctr1", ifname="eth0", plugin="bridge", netns=None, path=PATH):
    return run_plugin(plugin, "DEL", c, container_id=cid, ifname=ifname, in_netns=host.name,
                      netns=cont.path if netns is None else netns, path=path)


def with_prev(c, result):
    return dict(c, prevResult=result)


def ipam_files(tmp_path, net="cnit-br"):
    d = tmp_path / "ipam" / net
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def nat_rules(host, v6=False):
    tool = "ip6tables-save" if v6 else "iptables-save"
    return [ln for ln in host.run(tool, "-t", "nat").stdout.splitlines() if "CNI-" in ln]


def ping(ns, addr):
    return ns.run("ping", "-c1", "-W2", addr, check=False).returncode == 0


@pytest.mark.parametrize("ver", VERSIONS)
def test_add_check_del_every_version(host_ns, cont_ns, tmp_path, ver):
    from cni.nl.rtnl import Rtnl
    c = conf(tmp_path, cniVersion=ver)
    r = add(host_ns, cont_ns, c)
    assert r.rc == 0, r
    out = r.json
    assert out["cniVersion"] == ver
    if ver in ("0.1.0", "0.2.0"):
        assert out["ip4"]["ip"] == "10.99.0.2/24" and out["ip4"]["gateway"] == "10.99.0.1"
    else:
        names = [i["name"] for i in out["interfaces"]]
        assert names[0] == "cnitbr0" and names[1].startswith("veth") and names[2] == "eth0"
        assert out["interfaces"][2]["sandbox"] == cont_ns.path
        assert out["ips"][0]["interface"] == 2 and out["ips"][0]["address"] == "10.99.0.2/24"
    # kernel state, read by our codec and by ip -j
    with Rtnl(cont_ns.path) as h:
        ours = sorted(str(a.interface) for a in h.addr_list(h.index("eth0")) if a.scope == 0)
    theirs = sorted(f"{a['local']}/{a['prefixlen']}"
                    for a in cont_ns.ipj("addr", "show", "eth0")[0]["addr_info"]
                    if a["scope"] == "global")
    assert ours == theirs == ["10.99.0.2/24"]
    assert any(r["dst"] == "default" and r["gateway"] == "10.99.0.1"
               for r in cont_ns.ipj("route", "show"))
    br = host_ns.ipj("-d", "link", "show", "cnitbr0")[0]
    assert br["linkinfo"]["info_kind"] == "bridge"
    if ver not in ("0.1.0", "0.2.0", "0.3.0", "0.3.1"):
        chk = run_plugin("bridge", "CHECK", with_prev(c, out), container_id="ctr1",
                         netns=cont_ns.path, in_netns=host_ns.name, path=PATH)
        assert chk.rc == 0, chk
    assert delete(host_ns, cont_ns, with_prev(c, out)).rc == 0
    assert subprocess.run(["ip", "-n", cont_ns.name, "link", "show", "eth0"],
                          capture_output=True).returncode != 0
    assert ipam_files(tmp_path) == ["last_reserved_ip.0", "lock"]
    assert delete(host_ns, cont_ns, c).rc == 0


def test_two_containers_reach_each_other_and_gateway(host_ns, make_netns, tmp_path):
    c = conf(tmp_path)
    a, b = make_netns("ca"), make_netns("cb")
    ra, rb = add(host_ns, a, c, "ca"), add(host_ns, b, c, "cb")
    assert ra.rc == 0 and rb.rc == 0, (ra, rb)
    ipa = ra.json["ips"][0]["address"].split("/")[0]
    ipb = rb.json["ips"][0]["address"].split("/")[0]
    assert ipa != ipb
    assert ping(a, ipb) and ping(b, ipa) and ping(a, "10.99.0.1")
    assert ping(host_ns, ipa)
    for ns, cid, r in ((a, "ca", ra), (b, "cb", rb)):
        assert delete(host_ns, ns, with_prev(c, r.json), cid).rc == 0


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_masquerade_rules_added_and_removed(host_ns, cont_ns, tmp_path, backend):
    c = conf(tmp_path, ipMasq=True, ipMasqBackend=backend)
    r = add(host_ns, cont_ns, c)
    assert r.rc == 0, r
    if backend == "iptables":
        rules = nat_rules(host_ns)
        assert any("-A POSTROUTING -s 10.99.0.2/32" in ln for ln in rules), rules
        assert any("MASQUERADE" in ln for ln in rules)
    else:
        t = host_ns.run("nft", "list", "table", "inet", "cni_plugins_masquerade").stdout
        assert "10.99.0.2" in t and "masquerade" in t
    assert delete(host_ns, cont_ns, with_prev(c, r.json)).rc == 0
    assert nat_rules(host_ns) == []
    t = host_ns.run("nft", "list", "table", "inet", "cni_plugins_masquerade", check=False).stdout
    assert "10.99.0.2" not in t
    assert delete(host_ns, cont_ns, c).rc == 0


def test_hairpin_promisc_mtu(host_ns, cont_ns, tmp_path):
    c = conf(tmp_path, hairpinMode=True, mtu=1400)
    r = add(host_ns, cont_ns, c)
    assert r.rc == 0, r
    veth = r.json["interfaces"][1]["name"]
    port = host_ns.ipj("-d", "link", "show", veth)[0]
    assert port["linkinfo"]["info_slave_data"]["hairpin"] is True
    assert port["mtu"] == 1400 and port["master"] == "cnitbr0"
    assert cont_ns.ipj("link", "show", "eth0")[0]["mtu"] == 1400
    assert delete(host_ns, cont_ns, c).rc == 0
    c2 = conf(tmp_path, promiscMode=True, bridge="cnitbr1")
    r = add(host_ns, cont_ns, c2, "ctr2")
    assert r.rc == 0, r
    assert "PROMISC" in host_ns.ipj("link", "show", "cnitbr1")[0]["flags"]
    assert delete(host_ns, cont_ns, c2, "ctr2").rc == 0


def test_hairpin_and_promisc_exclusive(host_ns, cont_ns, tmp_path):
    r = add(host_ns, cont_ns, conf(tmp_path, hairpinMode=True, promiscMode=True))
    assert r.rc == 1 and r.json["code"] == 7


def test_dual_stack(host_ns, cont_ns, tmp_path):
    c = conf(tmp_path, isDefaultGateway=True)
    c["ipam"] = {"type": "host-local", "dataDir": str(tmp_path / "ipam"),
                 "ranges": [[{"subnet": "10.99.0.0/24"}], [{"subnet": "fd00:99::/64"}]]}
    r = add(host_ns, cont_ns, c)
    assert r.rc == 0, r
    addrs = [i["address"] for i in r.json["ips"]]
    assert addrs == ["10.99.0.2/24", "fd00:99::2/64"]
    routes = {(x["dst"], x.get("gw")) for x in r.json["routes"]}
    assert ("0.0.0.0/0", "10.99.0.1") in routes and ("::/0", "fd00:99::1") in routes
    have = [f"{a['local']}/{a['prefixlen']}" for a in
            cont_ns.ipj("addr", "show", "eth0")[0]["addr_info"] if a["scope"] == "global"]
    assert sorted(have) == sorted(addrs)
    assert "tentative" not in json.dumps(cont_ns.ipj("addr", "show", "eth0"))
    assert ping(cont_ns, "10.99.0.1")
    assert cont_ns.run("ping", "-6", "-c1", "-W2", "fd00:99::1", check=False).returncode == 0
    assert delete(host_ns, cont_ns, with_prev(c, r.json)).rc == 0


def test_del_idempotent_and_after_netns_gone(host_ns, make_netns, tmp_path):
    c = conf(tmp_path, ipMasq=True)
    cont = make_netns("gone")
    r = add(host_ns, cont, c)
    assert r.rc == 0, r
    veth = r.json["interfaces"][1]["name"]
    subprocess.run(["ip", "netns", "del", cont.name], check=True)
    assert delete(host_ns, cont, with_prev(c, r.json)).rc == 0
    assert delete(host_ns, cont, with_prev(c, r.json)).rc == 0
    # containerd's second DEL: no netns, no prevResult
    assert delete(host_ns, cont, c, netns="").rc == 0
    assert ipam_files(tmp_path) == ["last_reserved_ip.0", "lock"]
    assert nat_rules(host_ns) == []
    # the host end goes with the container's netns, which the kernel tears down asynchronously
    # (no DEL can delete it: the netns is gone, as in Go)
    assert eventually(lambda: host_ns.ip("link", "show", veth, check=False).returncode != 0)


def test_ipam_error_leaves_nothing(host_ns, cont_ns, tmp_path):
    c = conf(tmp_path, ipMasq=True)
    c["ipam"] = {"type": "debug", "debugError": {"code": 11, "msg": "no addresses today"},
                 "debugErrorOn": ["ADD"]}
    c["debugError"] = c["ipam"]["debugError"]
    c["debugErrorOn"] = ["ADD"]
    before = host_ns.ipj("link", "show")
    r = add(host_ns, cont_ns, c)
    assert r.rc == 1 and r.json["code"] == 11 and r.json["msg"] == "no addresses today"
    assert cont_ns.ip("link", "show", "eth0", check=False).returncode != 0
    after = [lk["ifname"] for lk in host_ns.ipj("link", "show")]
    assert not [n for n in after if n.startswith("veth")]
    assert len(after) <= len(before) + 1  # at most the bridge itself
    assert nat_rules(host_ns) == []


def test_failure_after_ipam_releases_reservation(host_ns, cont_ns, tmp_path):
    """A bridge holding a conflicting IPv4 address makes ADD fail after IPAM ADD."""
    host_ns.ip("link", "add", "cnitbr0", "type", "bridge")
    host_ns.ip("addr", "add", "192.168.77.1/24", "dev", "cnitbr0")
    c = conf(tmp_path, ipMasq=True)
    r = add(host_ns, cont_ns, c)
    assert r.rc == 1 and "incompatible address" in r.json["msg"], r
    assert ipam_files(tmp_path) == ["last_reserved_ip.0", "lock"]
    assert cont_ns.ip("link", "show", "eth0", check=False).returncode != 0
    assert not [lk for lk in host_ns.ipj("link", "show") if lk["ifname"].startswith("veth")]
    assert nat_rules(host_ns) == []
    r = add(host_ns, cont_ns, conf(tmp_path, forceAddress=True))
    assert r.rc == 0, r
    assert delete(host_ns, cont_ns, c).rc == 0


def test_l2_only(host_ns, cont_ns, tmp_path):
    c = conf(tmp_path)
    del c["ipam"]
    r = add(host_ns, cont_ns, c)
    assert r.rc == 0, r
    assert "ips" not in r.json
    assert "UP" in cont_ns.ipj("link", "show", "eth0")[0]["flags"]
    r2 = add(host_ns, cont_ns, dict(c, cniVersion="0.2.0"), "ctr2", "eth1")
    assert r2.rc == 1 and r2.json["code"] == 1  # 0.2.0 cannot express an L2-only result
    assert cont_ns.ip("link", "show", "eth1", check=False).returncode != 0
    assert delete(host_ns, cont_ns, c).rc == 0


def test_vlan_entries(host_ns, cont_ns, tmp_path):
    if host_ns.ip("link", "add", "cnitvf", "type", "bridge", "vlan_filtering", "1",
                  check=False).returncode != 0:
        pytest.skip("this kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING)")
    host_ns.ip("link", "del", "cnitvf")
    c = conf(tmp_path, vlan=100, vlanTrunk=[{"id": 200}, {"minID": 300, "maxID": 302}],
             preserveDefaultVlan=False)
    r = add(host_ns, cont_ns, c)
    assert r.rc == 0, r
    veth = r.json["interfaces"][1]["name"]
    vl = json.loads(host_ns.run("bridge", "-j", "vlan", "show", "dev", veth).stdout)
    vids = {v["vlan"]: v.get("flags", []) for v in vl[0]["vlans"]}
    assert set(vids) == {100, 200, 300, 301, 302}
    assert "PVID" in vids[100] and "Egress Untagged" in vids[100]
    assert delete(host_ns, cont_ns, c).rc == 0


def test_mac_precedence(host_ns, cont_ns, tmp_path):
    c = conf(tmp_path, capabilities={"mac": True}, runtimeConfig={"mac": "0a:58:0a:63:00:09"},
             args={"cni": {"mac": "0a:58:0a:63:00:08"}})
    r = add(host_ns, cont_ns, c, cni_args="IgnoreUnknown=1;MAC=0a:58:0a:63:00:07")
    assert r.rc == 0, r
    assert cont_ns.ipj("link", "show", "eth0")[0]["address"] == "0a:58:0a:63:00:09"
    assert r.json["interfaces"][2]["mac"] == "0a:58:0a:63:00:09"
    assert delete(host_ns, cont_ns, c).rc == 0


def test_refuses_own_netns(host_ns, tmp_path):
    c = conf(tmp_path)
    r = run_plugin("bridge", "ADD", c, netns=f"/run/netns/{host_ns.name}", in_netns=host_ns.name,
                   path=PATH)
    assert r.rc == 1 and r.json["code"] == 8
    assert host_ns.ip("link", "show", "eth0", check=False).returncode != 0


def test_existing_ifname_refused(host_ns, cont_ns, tmp_path):
    cont_ns.ip("link", "add", "eth0", "type", "veth", "peer", "name", "x0")
    r = add(host_ns, cont_ns, conf(tmp_path))
    assert r.rc == 1 and "already exists" in r.json["msg"]
    assert ipam_files(tmp_path) in ([], ["lock"], ["last_reserved_ip.0", "lock"])


@pytest.mark.gobin("host-local")
def test_interop_our_bridge_go_host_local(host_ns, cont_ns, tmp_path):
    r = add(host_ns, cont_ns, conf(tmp_path), path=f"{GO_BIN}")
    # bridge itself is ours, found by absolute path; IPAM is Go's via CNI_PATH
    assert r.rc == 0, r
    assert delete(host_ns, cont_ns, conf(tmp_path), path=GO_BIN).rc == 0
    assert ipam_files(tmp_path) == ["last_reserved_ip.0", "lock"]


@pytest.mark.gobin("bridge")
def test_interop_go_bridge_our_host_local(host_ns, cont_ns, tmp_path):
    if not os.path.exists(os.path.join(BIN, "host-local")):
        pytest.skip("bin/host-local not built")
    gob = os.path.join(GO_BIN, "bridge")
    r = add(host_ns, cont_ns, conf(tmp_path), plugin=gob, path=BIN)
    assert r.rc == 0, r
    assert r.json["ips"][0]["address"] == "10.99.0.2/24"
    assert delete(host_ns, cont_ns, conf(tmp_path), plugin=gob, path=BIN).rc == 0
    assert ipam_files(tmp_path) == ["last_reserved_ip.0", "lock"]


@pytest.mark.gobin("bridge")
def test_interop_go_bridge_masq_deleted_by_ours(host_ns, cont_ns, tmp_path):
    c = conf(tmp_path, ipMasq=True)
    gob = os.path.join(GO_BIN, "bridge")
    r = add(host_ns, cont_ns, c, plugin=gob, path=GO_BIN)
    assert r.rc == 0, r
    assert nat_rules(host_ns)
    assert delete(host_ns, cont_ns, with_prev(c, r.json), path=GO_BIN).rc == 0
    assert nat_rules(host_ns) == []
    assert ipam_files(tmp_path) == ["last_reserved_ip.0", "lock"]


def test_sigkill_during_add_leaves_only_what_del_removes(host_ns, make_netns, tmp_path):
    """Kill ADD at many instants; the next DEL must leave no link, reservation or rule."""
    import random
    import signal
    import time
    c = conf(tmp_path, ipMasq=True)
    env = {"PATH": os.environ["PATH"], "CNI_COMMAND": "ADD", "CNI_CONTAINERID": "kill1",
           "CNI_IFNAME": "eth0", "CNI_PATH": PATH}
    rnd = random.Random(7)
    killed = 0
    for i in range(25):
        cont = make_netns(f"k{i}")
        stdin = tmp_path / "conf.json"
        stdin.write_text(json.dumps(c))
        with open(stdin, "rb") as f:
            p = subprocess.Popen(["ip", "netns", "exec", host_ns.name, os.path.join(BIN, "bridge")],
                                 stdin=f, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 env=dict(env, CNI_NETNS=cont.path), start_new_session=True)
        time.sleep(rnd.uniform(0, 0.06))
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            killed += 1
        p.wait()
        r = delete(host_ns, cont, c, cid="kill1")
        assert r.rc == 0, r
        assert cont.ip("link", "show", "eth0", check=False).returncode != 0
        assert not [lk for lk in host_ns.ipj("link", "show") if lk["ifname"].startswith("veth")]
        assert [f for f in ipam_files(tmp_path) if not f.startswith(("lock", "last_"))] == []
        assert nat_rules(host_ns) == []
        subprocess.run(["ip", "netns", "del", cont.name])
    assert killed >= 5  # the kills did land mid-ADD


def test_add_sends_gratuitous_arp(host_ns, cont_ns, tmp_path):
    """As Go's bridge: after ADD, each IPv4 address is announced on the bridge."""
    import socket
    import time
    from test_nl_kernel_wire import _frames, _sniff
    host_ns.ip("link", "add", "cnitbr0", "type", "bridge")
    host_ns.ip("link", "set", "cnitbr0", "up")
    s = _sniff(host_ns.path, "cnitbr0")
    with s:
        r = add(host_ns, cont_ns, conf(tmp_path))
        assert r.rc == 0, r
        mac = bytes.fromhex(r.json["interfaces"][2]["mac"].replace(":", ""))
        ip4 = socket.inet_aton("10.99.0.2")
        seen = False
        for f in _frames(s, time.monotonic() + 3):
            if f[12:14] == b"\x08\x06" and f[6:12] == mac and f[28:32] == ip4 and f[38:42] == ip4:
                seen = True
                break
    assert seen, "no gratuitous ARP for 10.99.0.2 from the container"
    assert delete(host_ns, cont_ns, conf(tmp_path)).rc == 0
