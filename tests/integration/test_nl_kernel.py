"""Kernel-access layer against a real kernel, inside fresh network namespaces only.

Every operation is done by our code, read back by our decoder and by `ip -j` / `tc -j`, and the two
must agree.
"""
from __future__ import annotations

import errno
import ipaddress
import os
import subprocess

import pytest

from cni import sysctl, tuntap
from cni.errors import InternalError, InvalidEnvError
from cni.netns import NetNS, is_netns, same_as_current
from cni.nl import conntrack, tc
from cni.nl.rtnl_tc import TcRtnl as Rtnl  # the full handle (tc included)
from cni.nl.rtnl_defs import AF_INET, AF_INET6, BRIDGE_VLAN_INFO_PVID, BRIDGE_VLAN_INFO_UNTAGGED
from cni.nl.socket import LinkNotFoundError, NetlinkError

pytestmark = pytest.mark.root


@pytest.fixture
def rtnl(host_ns):
    with Rtnl(host_ns.path) as h:
        yield h


def ipj_link(ns, name):
    (d,) = ns.ipj("-d", "link", "show", "dev", name)
    return d


def test_rtnl_socket_is_bound_to_its_netns(host_ns, cont_ns):
    with Rtnl(host_ns.path) as a, Rtnl(cont_ns.path) as b:
        a.veth_add("cnit-a0", "cnit-a1")
        assert a.link_lookup("cnit-a0") is not None
        assert b.link_lookup("cnit-a0") is None                     # other netns
    with NetNS.open(host_ns.path) as ns:
        assert not same_as_current(host_ns.path)
        with ns.enter():
            h = Rtnl()                                              # created inside, used outside
        with h:
            assert h.link_get("cnit-a0").kind == "veth"


def test_veth_peer_lands_in_other_netns_and_attrs_agree(host_ns, cont_ns, rtnl):
    with NetNS.open(cont_ns.path) as peer_ns:
        lk = rtnl.veth_add("eth0", "veth1234", peer_netns=peer_ns, mtu=1400,
                           mac="02:11:22:33:44:55", peer_mac="02:11:22:33:44:66")
    assert (lk.name, lk.kind, lk.mtu, lk.mac) == ("eth0", "veth", 1400, "02:11:22:33:44:55")
    assert lk.netnsid is not None                                   # peer lives elsewhere
    peer = ipj_link(cont_ns, "veth1234")
    assert peer["mtu"] == 1400 and peer["address"] == "02:11:22:33:44:66"
    assert peer["linkinfo"]["info_kind"] == "veth"
    rtnl.link_set("eth0", up=True, txqlen=321, promisc=True, allmulti=True, alias="hello")
    ours, ip = rtnl.link_get("eth0"), ipj_link(host_ns, "eth0")
    assert (ours.index, ours.name, ours.mtu, ours.mac, ours.txqlen, ours.alias) == \
        (ip["ifindex"], ip["ifname"], ip["mtu"], ip["address"], ip["txqlen"], ip["ifalias"])
    assert ours.up and "UP" in ip["flags"]
    assert ours.promisc and "PROMISC" in ip["flags"] and ours.allmulti and "ALLMULTI" in ip["flags"]
    rtnl.link_set("eth0", up=False, promisc=False, mtu=1300, mac="02:00:00:00:00:01", name="eth9")
    ip = ipj_link(host_ns, "eth9")
    assert "UP" not in ip["flags"] and "PROMISC" not in ip["flags"] and ip["mtu"] == 1300
    assert ip["address"] == "02:00:00:00:00:01" and rtnl.link_get(ip["ifindex"]).name == "eth9"
    names = {lk.name for lk in rtnl.link_list()}
    assert names == {d["ifname"] for d in host_ns.ipj("link", "show")}
    assert [lk.name for lk in rtnl.link_list(kind="veth")] == ["eth9"]
    rtnl.link_del("eth9")
    assert cont_ns.ipj("link", "show", "dev", "lo") and \
        "veth1234" not in {d["ifname"] for d in cont_ns.ipj("link", "show")}


def test_move_link_to_other_netns(host_ns, cont_ns, rtnl):
    rtnl.veth_add("cnit-m0", "cnit-m1")
    with NetNS.open(cont_ns.path) as other:
        rtnl.link_set("cnit-m1", netns=other)
    assert rtnl.link_lookup("cnit-m1") is None
    assert ipj_link(cont_ns, "cnit-m1")["ifname"] == "cnit-m1"


def test_missing_link_errors(rtnl):
    with pytest.raises(LinkNotFoundError) as ei:
        rtnl.link_get("nope0")
    assert ei.value.errno == errno.ENODEV
    with pytest.raises(LinkNotFoundError):
        rtnl.link_del("nope0")
    rtnl.link_del("nope0", missing_ok=True)                       # a DEL's "already gone"
    rtnl.link_del(4242, missing_ok=True)
    assert rtnl.link_lookup(4242) is None
    with pytest.raises(NetlinkError) as ei:                        # kernel error + ext-ack
        rtnl.addr_add(4242, "10.0.0.1/24")
    assert ei.value.errno == errno.ENODEV
    assert "Device not found" in ei.value.extack and "Device not found" in str(ei.value)
    with pytest.raises(LinkNotFoundError):                         # our lookup by name
        rtnl.addr_add("nope0", "10.0.0.1/24")


def test_addresses_agree_with_ip(host_ns, rtnl):
    rtnl.veth_add("cnit-d0", "cnit-d1")
    rtnl.link_set("cnit-d0", up=True)
    rtnl.link_set("cnit-d1", up=True)
    rtnl.addr_add("cnit-d0", "10.1.0.5/24")
    rtnl.addr_add("cnit-d0", "10.1.0.9/32", peer="10.1.0.10", scope=253)
    rtnl.addr_add("cnit-d0", "fd00::5/64", nodad=True, noprefixroute=True)
    rtnl.addr_add("cnit-d0", "fd00:1::5/64")
    rtnl.addr_wait_dad("cnit-d0")
    (ip,) = host_ns.ipj("addr", "show", "dev", "cnit-d0")
    theirs = {(a["local"], a["prefixlen"]) for a in ip["addr_info"]}
    ours = {(str(a.ip), a.prefixlen) for a in rtnl.addr_list("cnit-d0")}
    assert ours == theirs and ("fd00::5", 64) in ours
    info = {a["local"]: a for a in ip["addr_info"]}
    assert info["10.1.0.5"]["broadcast"] == "10.1.0.255" and info["10.1.0.9"]["address"] == "10.1.0.10"
    assert info["fd00::5"].get("noprefixroute") and not info["fd00:1::5"].get("tentative")
    by_ip = {str(a.ip): a for a in rtnl.addr_list("cnit-d0")}
    assert by_ip["10.1.0.9"].peer == ipaddress.ip_address("10.1.0.10") and by_ip["10.1.0.9"].scope == 253
    assert {str(a.ip) for a in rtnl.addr_list("cnit-d0", family=AF_INET6)} >= {"fd00::5", "fd00:1::5"}
    rtnl.addr_del("cnit-d0", "10.1.0.5/24")
    rtnl.addr_del("cnit-d0", "fd00::5/64")
    left = {a["local"] for a in host_ns.ipj("addr", "show", "dev", "cnit-d0")[0]["addr_info"]}
    assert "10.1.0.5" not in left and "fd00::5" not in left
    with pytest.raises(NetlinkError) as ei:
        rtnl.addr_del("cnit-d0", "10.1.0.5/24")
    assert ei.value.errno == errno.EADDRNOTAVAIL


def test_routes_agree_with_ip(host_ns, rtnl):
    rtnl.veth_add("cnit-r0", "cnit-r1")
    rtnl.link_set("cnit-r0", up=True)
    rtnl.link_set("cnit-r1", up=True)
    rtnl.addr_add("cnit-r0", "10.1.0.2/24")
    rtnl.addr_add("cnit-r0", "fd00::2/64", nodad=True)
    rtnl.route_add("10.2.0.0/16", gw="10.1.0.1", dev="cnit-r0", metric=10)
    rtnl.route_add("10.3.0.0/16", dev="cnit-r0", table=100, src="10.1.0.2")
    rtnl.route_add("0.0.0.0/0", gw="10.1.0.1", dev="cnit-r0", table=1000)
    rtnl.route_add("192.168.7.0/24", gw="10.9.9.9", dev="cnit-r0", onlink=True)
    rtnl.route_add("fd01::/64", gw="fd00::1", dev="cnit-r0", metric=1024)
    rtnl.route_add("10.66.0.0/16", type="blackhole")
    rtnl.route_replace("10.2.0.0/16", gw="10.1.0.3", dev="cnit-r0", metric=10)

    def norm_ip(r):
        dst = r["dst"] if r["dst"] != "default" else ("::/0" if ":" in r.get("gateway", "") else "0.0.0.0/0")
        if "/" not in dst:
            dst += "/128" if ":" in dst else "/32"
        return (str(ipaddress.ip_network(dst)), r.get("gateway"), r.get("table", "main"),
                r.get("metric", 0))

    def norm_ours(r):
        t = {254: "main", 255: "local"}.get(r.table, str(r.table))
        return (str(r.dst), str(r.gw) if r.gw else None, t, r.priority)

    theirs = {norm_ip(r) for r in host_ns.ipj("route", "show", "table", "all")
              if r.get("table") != "local" and r["dst"] != "multicast"}
    theirs |= {norm_ip(r) for r in host_ns.ipj("-6", "route", "show", "table", "all")
               if r.get("table") != "local" and not r["dst"].startswith("ff00")}
    ours = {norm_ours(r) for r in rtnl.route_list(table=None) if r.table != 255
            and not (r.family == AF_INET6 and r.dst.is_multicast)}
    assert ours == theirs
    assert ("10.2.0.0/16", "10.1.0.3", "main", 10) in ours and ("0.0.0.0/0", "10.1.0.1", "1000", 0) in ours
    t100 = rtnl.route_list(table=100)
    assert [(str(r.dst), str(r.prefsrc), r.scope) for r in t100] == [("10.3.0.0/16", "10.1.0.2", 253)]
    assert [r for r in rtnl.route_list(family=AF_INET) if str(r.dst) == "10.66.0.0/16"][0].type == 6
    assert all(r.oif == rtnl.index("cnit-r0") for r in rtnl.route_list(dev="cnit-r0"))
    rtnl.route_del("10.2.0.0/16", gw="10.1.0.3", dev="cnit-r0")
    rtnl.route_del("0.0.0.0/0", table=1000)
    rtnl.route_del("fd01::/64", dev="cnit-r0")
    left = {norm_ours(r)[0] for r in rtnl.route_list(table=None)}
    assert not left & {"10.2.0.0/16", "fd01::/64"} and "0.0.0.0/0" not in left
    with pytest.raises(NetlinkError) as ei:
        rtnl.route_del("10.2.0.0/16", dev="cnit-r0")
    assert ei.value.errno == errno.ESRCH


def test_rules_agree_with_ip(host_ns, rtnl):
    rtnl.rule_add(priority=100, src="10.1.0.2/32", table=100)
    rtnl.rule_add(priority=101, iif="lo", table=1000)
    rtnl.rule_add(priority=102, src="fd00::/64", table=100)
    theirs = {(r["priority"], r.get("src", "all") + (f"/{r['srclen']}" if "srclen" in r else ""),
               r.get("iif"), str(r["table"]))
              for r in host_ns.ipj("rule", "show") + host_ns.ipj("-6", "rule", "show")}
    names = {255: "local", 254: "main", 253: "default"}

    def src(r):
        if r.src is None:
            return "all"
        return str(r.src.network_address) if r.src.prefixlen == r.src.max_prefixlen else str(r.src)
    ours = {(r.priority, src(r), r.iif, names.get(r.table, str(r.table))) for r in rtnl.rule_list()}
    theirs = {(p, s.split("/")[0] if s.endswith("/32") else s, i, t) for p, s, i, t in theirs}
    assert ours == theirs and (101, "all", "lo", "1000") in ours
    rtnl.rule_del(priority=100, src="10.1.0.2/32", table=100)
    rtnl.rule_del(priority=102, src="fd00::/64", table=100)
    assert {r.priority for r in rtnl.rule_list()} & {100, 102} == set()


@pytest.mark.kmod("bridge")
def test_bridge_and_port_options(host_ns, rtnl):
    br = rtnl.bridge_add("cnit-br0", mtu=1450)
    assert br.kind == "bridge" and br.info.get("IFLA_BR_STP_STATE") == 0
    rtnl.veth_add("cnit-p0", "cnit-p1")
    rtnl.link_set("cnit-p0", master="cnit-br0", up=True)
    rtnl.bridge_port_set("cnit-p0", hairpin=True, learning=False, isolated=True)
    port = rtnl.link_get("cnit-p0").slave_info
    assert (port.get("IFLA_BRPORT_MODE"), port.get("IFLA_BRPORT_LEARNING"),
            port.get("IFLA_BRPORT_ISOLATED")) == (1, 0, 1)
    ip = ipj_link(host_ns, "cnit-p0")
    assert ip["master"] == "cnit-br0"
    sd = ip["linkinfo"]["info_slave_data"]
    assert sd["hairpin"] is True and sd["learning"] is False and sd["isolated"] is True
    assert rtnl.link_get("cnit-p0").master == br.index
    assert [lk.name for lk in rtnl.link_list(master="cnit-br0")] == ["cnit-p0"]
    rtnl.link_set("cnit-p0", nomaster=True)
    assert "master" not in ipj_link(host_ns, "cnit-p0")


@pytest.mark.kmod("bridge")
def test_bridge_vlans(host_ns, rtnl):
    try:
        rtnl.bridge_add("cnit-brv", vlan_filtering=1)
    except NetlinkError as e:
        if e.errno == errno.EOPNOTSUPP:
            pytest.skip("kernel built without bridge VLAN filtering")
        raise
    rtnl.veth_add("cnit-v0", "cnit-v1")
    rtnl.link_set("cnit-v0", master="cnit-brv")
    rtnl.bridge_vlan_add("cnit-v0", 10, pvid=True, untagged=True)
    rtnl.bridge_vlan_add("cnit-v0", 20)
    rtnl.bridge_vlan_add("cnit-brv", 20, self_=True)
    vl = rtnl.bridge_vlan_list("cnit-v0")[rtnl.index("cnit-v0")]
    assert (10, BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED) in vl and (20, 0) in vl
    out = subprocess.run(["bridge", "-n", host_ns.name, "-j", "vlan", "show", "dev", "cnit-v0"],
                         capture_output=True, text=True, check=True).stdout
    assert '"vlan":10' in out.replace(" ", "") and '"vlan":20' in out.replace(" ", "")
    rtnl.bridge_vlan_del("cnit-v0", 20)
    assert 20 not in [v for v, _ in rtnl.bridge_vlan_list("cnit-v0")[rtnl.index("cnit-v0")]]


@pytest.mark.parametrize("kind,mode", [("macvlan", "bridge"), ("macvlan", "private"),
                                       ("macvlan", "vepa"), ("macvlan", "passthru"),
                                       ("macvtap", "bridge")])
def test_macvlan_created_directly_in_target_netns(host_ns, cont_ns, rtnl, kind, mode):
    rtnl.veth_add("cnit-up0", "cnit-up1")
    with NetNS.open(cont_ns.path) as target:
        try:
            lk = rtnl.link_add("cnit-mv0", kind, parent="cnit-up0", mode=mode, netns=target,
                               mac="02:aa:00:00:00:01")
        except NetlinkError as e:                 # conftest's kmod probe has no parent link
            if e.errno == errno.EOPNOTSUPP:
                pytest.skip(f"this kernel cannot create {kind} links")
            raise
    assert lk.kind == kind and (lk.mac == "02:aa:00:00:00:01" or mode == "passthru")
    assert rtnl.link_lookup("cnit-mv0") is None                   # passthru: parent's MAC
    ip = ipj_link(cont_ns, "cnit-mv0")
    assert ip["linkinfo"]["info_kind"] == kind and ip["linkinfo"]["info_data"]["mode"] == mode


@pytest.mark.kmod("ipvlan")
def test_ipvlan(host_ns, rtnl):
    rtnl.veth_add("cnit-up0", "cnit-up1")
    lk = rtnl.link_add("cnit-ipv", "ipvlan", parent="cnit-up0", mode="l3", flags="private")
    assert lk.info.get("IFLA_IPVLAN_MODE") == 1


@pytest.mark.kmod("vlan")
def test_vlan(host_ns, rtnl):
    rtnl.veth_add("cnit-up0", "cnit-up1")
    lk = rtnl.link_add("cnit-up0.7", "vlan", parent="cnit-up0", vlan_id=7)
    assert lk.info.get("IFLA_VLAN_ID") == 7


@pytest.mark.kmod("dummy")
def test_dummy(rtnl):
    assert rtnl.link_add("cnit-dm0", "dummy").kind == "dummy"


@pytest.mark.kmod("vrf")
def test_vrf(rtnl):
    assert rtnl.vrf_add("cnit-vrf", 100).info.get("IFLA_VRF_TABLE") == 100


def test_vxlan_and_ifb(host_ns, rtnl):
    rtnl.veth_add("cnit-up0", "cnit-up1")
    try:
        vx = rtnl.link_add("cnit-vx0", "vxlan", vni=42, link=rtnl.index("cnit-up0"),
                           local="10.0.0.1", port=4789, learning=False)
    except NetlinkError as e:
        if e.errno == errno.EOPNOTSUPP:
            pytest.skip("this kernel cannot create vxlan links")
        raise
    assert (vx.info.get("IFLA_VXLAN_ID"), vx.info.get("IFLA_VXLAN_PORT"),
            str(vx.info.get("IFLA_VXLAN_LOCAL"))) == (42, 4789, "10.0.0.1")
    assert ipj_link(host_ns, "cnit-vx0")["linkinfo"]["info_data"]["id"] == 42
    assert rtnl.ifb_add("cnit-ifb0").kind == "ifb"


def test_tc_tbf_ingress_u32_redirect(host_ns, rtnl):
    rtnl.veth_add("cnit-t0", "cnit-t1")
    try:
        rtnl.ifb_add("cnit-ifb")
    except NetlinkError:
        pytest.skip("no ifb")
    p = tc.tbf_params(1_000_000, 100_000)
    rtnl.tbf_add("cnit-t0", **p)
    rtnl.ingress_add("cnit-t0")
    rtnl.filter_add_u32_redirect("cnit-t0", "cnit-ifb", classid=tc.handle(1, 1))
    rtnl.clsact_add("cnit-t1")
    rtnl.htb_add("cnit-ifb", default=1)
    rtnl.htb_class_add("cnit-ifb", tc.handle(1, 1), parent=tc.handle(1), rate=125000)
    qs = {(q.kind, q.handle) for q in rtnl.qdisc_list("cnit-t0")}
    assert ("tbf", 0x10000) in qs and ("ingress", 0xFFFF0000) in qs
    (tbf,) = [q for q in rtnl.qdisc_list("cnit-t0") if q.kind == "tbf"]
    parms = tbf.options.get("TCA_TBF_PARMS")
    assert (parms["rate"], parms["limit"], parms["buffer"]) == (p["rate"], p["limit"], p["buffer"])
    out = subprocess.run(["tc", "-n", host_ns.name, "-j", "qdisc", "show", "dev", "cnit-t0"],
                         capture_output=True, text=True, check=True).stdout
    import json
    tcq = {q["kind"]: q for q in json.loads(out)}
    assert tcq["tbf"]["options"]["rate"] == 125000 and tcq["tbf"]["options"]["lat"] > 0
    assert tcq["tbf"]["handle"] == "1:" and "ingress" in tcq
    f = [x for x in rtnl.filter_list("cnit-t0") if x.options and x.options.get("TCA_U32_ACT")]
    (act,) = f[0].options.get("TCA_U32_ACT")
    assert act.get("TCA_ACT_OPTIONS").get("TCA_MIRRED_PARMS")["ifindex"] == rtnl.index("cnit-ifb")
    out = subprocess.run(["tc", "-n", host_ns.name, "filter", "show", "dev", "cnit-t0", "ingress"],
                         capture_output=True, text=True, check=True).stdout
    assert "Egress Redirect to device cnit-ifb" in out and "flowid 1:1" in out
    assert [c.kind for c in rtnl.class_list("cnit-ifb")] == ["htb"]
    rtnl.filter_del("cnit-t0", prio=1)
    assert not [x for x in rtnl.filter_list("cnit-t0") if x.options]
    rtnl.qdisc_del("cnit-t0")
    assert "tbf" not in {q.kind for q in rtnl.qdisc_list("cnit-t0")}


def test_tap_via_tuntap(host_ns, rtnl):
    with NetNS.open(host_ns.path) as ns, ns.enter():
        name = tuntap.create("cnit-tap0", mode="tap", multi_queue=True, vnet_hdr=True, owner=0)
        tun = tuntap.create("cnit-tun%d", mode="tun")
    assert name == "cnit-tap0" and tun == "cnit-tun0"
    lk = rtnl.link_get("cnit-tap0")
    assert lk.kind == "tun"
    d = ipj_link(host_ns, "cnit-tap0")["linkinfo"]["info_data"]
    assert d["type"] == "tap" and d.get("multi_queue") is True and d.get("vnet_hdr") is True
    rtnl.link_del("cnit-tap0")
    with NetNS.open(host_ns.path) as ns, ns.enter():
        tuntap.remove("cnit-tun0", mode="tun")
    assert rtnl.link_lookup("cnit-tun0") is None


def test_conntrack_delete_in_netns(host_ns):
    with NetNS.open(host_ns.path) as ns, ns.enter():
        ct = conntrack.Conntrack()
    with ct:
        assert ct.delete(proto=17, dport=5353) == 0


@pytest.mark.tool("nft")
def test_conntrack_delete_matching_flow(host_ns):
    host_ns.run("nft", "add table ip cnit; add chain ip cnit out { type filter hook output "
                "priority 0; }; add rule ip cnit out ct state new counter")
    host_ns.run("python3", "-c", "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM);"
                "[s.sendto(b'x', ('127.0.0.1', p)) for p in (5353, 5354)]")
    with NetNS.open(host_ns.path) as ns, ns.enter():
        ct = conntrack.Conntrack()
    with ct:
        flows = ct.list(AF_INET)
        if not flows:
            pytest.skip("conntrack not tracking in this kernel")
        assert {f.dport for f in flows if f.proto == 17} >= {5353, 5354}
        assert ct.delete(proto=17, dport=5353, dst="127.0.0.1") == 1
        assert {f.dport for f in ct.list(AF_INET) if f.proto == 17} == {5354}


def test_netns_enter_restores_even_on_exception(host_ns):
    before = os.stat("/proc/thread-self/ns/net")
    with NetNS.open(host_ns.path) as ns:
        with pytest.raises(RuntimeError):
            with ns.enter():
                assert same_as_current(host_ns.path)
                raise RuntimeError("boom")
        after = os.stat("/proc/thread-self/ns/net")
        assert (before.st_dev, before.st_ino) == (after.st_dev, after.st_ino)
        with ns.enter(), ns.enter():                                # nesting
            assert same_as_current(host_ns.path)
    assert not same_as_current(host_ns.path) and same_as_current("/proc/self/ns/net")


def test_netns_restore_failure_is_internal_error(host_ns, monkeypatch):
    import cni.std.setns as netns_mod
    home = NetNS.current()
    real = netns_mod.setns
    calls = []

    def flaky(fd, nstype=0):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.EINVAL, "no")
        real(fd, nstype)
    monkeypatch.setattr(netns_mod, "setns", flaky)
    with NetNS.open(host_ns.path) as ns:
        with pytest.raises(InternalError):
            with ns.enter():
                pass
    monkeypatch.undo()
    with home:                                                       # put this thread back
        real(home.fd)
        assert not same_as_current(host_ns.path)


def test_netns_open_validation(host_ns, tmp_path):
    assert is_netns(host_ns.path) and is_netns("/proc/self/ns/net")
    f = tmp_path / "plain"
    f.write_text("x")
    assert not is_netns(str(f))
    with pytest.raises(InvalidEnvError) as ei:
        NetNS.open(str(f))
    assert "CNI_NETNS" in str(ei.value)
    with pytest.raises(InvalidEnvError):
        NetNS.open("/proc/self/ns/uts")
    with pytest.raises(FileNotFoundError):
        NetNS.open(str(tmp_path / "missing"))
    assert same_as_current("/proc/self/ns/net")


def test_sysctl_in_netns(host_ns):
    host_before = sysctl.read("net.ipv4.conf.lo.forwarding")
    with NetNS.open(host_ns.path) as ns, ns.enter():
        sysctl.write("net/ipv4/ip_forward", "0")
        assert sysctl.read("net/ipv4/ip_forward") == "0"
        sysctl.write("net.ipv4.ip_forward", 1)
        assert sysctl.read("net.ipv4.ip_forward") == "1"
        assert sysctl.ensure("net.ipv4.ip_forward", "1") is False
        assert sysctl.ensure("net.ipv6.conf.lo.disable_ipv6", "1") is True
    assert host_ns.run("cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"
    assert sysctl.read("net.ipv4.conf.lo.forwarding") == host_before


def test_garp_and_unsolicited_na(host_ns, cont_ns, rtnl):
    with NetNS.open(cont_ns.path) as peer:
        rtnl.veth_add("cnit-g0", "cnit-g1", peer_netns=peer)
    rtnl.link_set("cnit-g0", up=True)
    cont_ns.ip("link", "set", "cnit-g1", "up")
    rtnl.addr_add("cnit-g0", "10.5.0.2/24")
    rtnl.addr_add("cnit-g0", "fd05::2/64", nodad=True)
    rtnl.send_garp("cnit-g0", "10.5.0.2", count=2)
    rtnl.send_garp("cnit-g0", "fd05::2")


def test_large_dump_is_complete(host_ns, rtnl):
    for i in range(60):
        rtnl.veth_add(f"cnit-x{i}", f"cnit-y{i}")
    assert len(rtnl.link_list(kind="veth")) == 120
    assert len(host_ns.ipj("link", "show")) == len(rtnl.link_list())


def test_exist_ok_makes_a_second_add_a_no_op(host_ns, rtnl):
    rtnl.veth_add("cnit-x0", "cnit-x1")
    rtnl.link_set("cnit-x0", up=True)
    rtnl.addr_add("cnit-x0", "10.7.0.5/24")
    with pytest.raises(NetlinkError) as ei:
        rtnl.addr_add("cnit-x0", "10.7.0.5/24")
    assert ei.value.errno == errno.EEXIST
    rtnl.addr_add("cnit-x0", "10.7.0.5/24", exist_ok=True)
    rtnl.route_add("10.8.0.0/16", gw="10.7.0.1", dev="cnit-x0")
    with pytest.raises(NetlinkError) as ei:
        rtnl.route_add("10.8.0.0/16", gw="10.7.0.1", dev="cnit-x0")
    assert ei.value.errno == errno.EEXIST
    rtnl.route_add("10.8.0.0/16", gw="10.7.0.1", dev="cnit-x0", exist_ok=True)
    with pytest.raises(NetlinkError) as ei:                      # other errors still raise
        rtnl.route_add("10.9.0.0/16", gw="10.99.0.1", dev="cnit-x0", exist_ok=True)
    assert ei.value.errno == errno.ENETUNREACH
    assert [a["local"] for a in host_ns.ipj("addr", "show", "dev", "cnit-x0")[0]["addr_info"]
            if a["family"] == "inet"] == ["10.7.0.5"]
    assert len(host_ns.ipj("route", "show", "10.8.0.0/16")) == 1


def test_rtnl_by_path_uses_the_pinned_namespace(host_ns, cont_ns, tmp_path):
    """Rtnl(path) sees the namespace skel pinned for that path, even once the path moves."""
    from cni import netns as netns_mod
    host_ns.ip("link", "add", "cnit-pin0", "type", "veth", "peer", "name", "cnit-pin1")
    link = tmp_path / "ns"
    link.symlink_to(host_ns.path)
    with netns_mod.pin(str(link)):
        link.unlink()
        link.symlink_to(cont_ns.path)                 # the path now names another netns
        with Rtnl(str(link)) as h:
            assert h.link_lookup("cnit-pin0") is not None
    with Rtnl(str(link)) as h:                        # unpinned: the path as it is now
        assert h.link_lookup("cnit-pin0") is None
