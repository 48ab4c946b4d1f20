"""Unit tests of cni.meta helpers and the meta plugins' config parsing (no root needed)."""
from __future__ import annotations

import io
import ipaddress
import json

import pytest

from cni import names, skel
from cni.convert import from_json
from cni.errors import InvalidConfigError
from cni.meta import container_ips, ifname_ips, valid_attachments
from cni.meta import bandwidth as bw
from cni.meta import sbr as sbrm
from cni.meta import tuning as tm

PREV = {"cniVersion": "1.0.0",
        "interfaces": [{"name": "cni0"}, {"name": "veth1"}, {"name": "eth0", "sandbox": "/run/netns/x"},
                       {"name": "net1", "sandbox": "/run/netns/x"}],
        "ips": [{"address": "10.0.0.9/24", "interface": 1},          # host side: skipped
                {"address": "10.0.1.9/24", "interface": 3},          # other ifname: skipped
                {"address": "10.0.0.5/24", "interface": 2},
                {"address": "10.0.0.6/24", "interface": 2},          # second v4: not used
                {"address": "fd00::5/64"}]}                          # no index: taken


def test_container_ips_like_go():
    prev = from_json(PREV, "1.0.0")
    assert container_ips(prev, "eth0") == [ipaddress.ip_interface("10.0.0.5/24"),
                                          ipaddress.ip_interface("fd00::5/64")]
    assert [i.address_str for i in ifname_ips(prev, "eth0")] == ["10.0.0.5/24", "10.0.0.6/24", "fd00::5/64"]


def test_valid_attachments_both_keys():
    class C:
        raw = {"cni.dev/attachments": [{"containerID": "a", "ifname": "eth0"}]}
    assert valid_attachments(C) == [("a", "eth0")]
    C.raw = {"cni.dev/valid-attachments": [{"containerID": "b", "ifname": "eth1"}]}
    assert valid_attachments(C) == [("b", "eth1")]


def test_ifb_name_matches_go_hash():
    # (prefix + sha512(net+cid) hex)[:15], as Go's MustFormatHashWithPrefix(15, "bwp", ...)
    import hashlib
    want = ("bwp" + hashlib.sha512(b"mynetabc123").hexdigest())[:15]
    assert names.ifb_name("mynet", "abc123") == want and len(want) == 15


@pytest.mark.parametrize("rate,burst,msg", [(1000, 0, "burst must also be set"),
                                            (0, 1000, "rate must also be set"),
                                            (1000, 8 * 0xFFFFFFFF, "4GB"),
                                            (-1, -1, "negative")])
def test_bandwidth_validation(rate, burst, msg):
    with pytest.raises(InvalidConfigError) as e:
        bw.validate_rate_burst(rate, burst, "ingress")
    assert msg in e.value.msg + e.value.details
    bw.validate_rate_burst(0, 0, "x")
    bw.validate_rate_burst(8000, 8 * 0xFFFFFFFE, "x")


def test_sysctl_path():
    assert tm.sysctl_path("net.ipv4.conf.IFNAME.arp_filter", "eth0") == "/proc/sys/net/ipv4/conf/eth0/arp_filter"
    assert tm.sysctl_path("net/core/somaxconn", "eth0") == "/proc/sys/net/core/somaxconn"
    # only the first IFNAME is replaced; an interface name with a dot keeps it
    assert tm.sysctl_path("net.ipv4.conf.IFNAME.x", "eth0.5") == "/proc/sys/net/ipv4/conf/eth0.5/x"
    # dots become slashes first, so ".." cannot survive to climb out of /proc/sys/net
    assert tm.sysctl_path("net/../../kernel/x", "eth0") == "/proc/sys/net/kernel/x"
    for bad in ("kernel.hostname", "vm.swappiness", "/net/x"):
        with pytest.raises(InvalidConfigError):
            tm.sysctl_path(bad, "eth0")


def test_allowlist(tmp_path):
    p = tmp_path / "allowlist.conf"
    assert tm.read_allowlist(str(p)) is None
    tm.check_allowlist({"net.anything": "1"}, str(p))              # no file: everything allowed
    p.write_text("^net\\.ipv4\\.conf\\.IFNAME\\.[a-z_]*$\n\n  ^net\\.core\\.somaxconn$  \n")
    assert tm.read_allowlist(str(p)) == ["^net\\.ipv4\\.conf\\.IFNAME\\.[a-z_]*$", "^net\\.core\\.somaxconn$"]
    tm.check_allowlist({"net.core.somaxconn": "1", "net.ipv4.conf.IFNAME.arp_filter": "1"}, str(p))
    with pytest.raises(InvalidConfigError):
        tm.check_allowlist({"net.ipv4.ip_forward": "1"}, str(p))


def test_duplicate_sysctl_keys():
    raw = b'{"sysctl": {"a": "1", "b": "2", "a": "3"}, "other": {"x": 1, "x": 2}}'
    assert tm.duplicate_sysctl_keys(raw) == ["a"]
    assert tm.duplicate_sysctl_keys(b'{"sysctl": {"a": "1"}}') == []
    assert tm.duplicate_sysctl_keys(b'{"name": "x"}') == []


def test_backup_atomic_round_trip(tmp_path):
    path = tm.backup_path(str(tmp_path / "d"), "cid", "eth0")
    tm.write_backup(path, {"mtu": 1500, "promisc": False})
    assert json.loads(open(path).read()) == {"mtu": 1500, "promisc": False}
    assert tm.read_backup(path) == {"mtu": 1500, "promisc": False}
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["cid_eth0.json"]
    assert tm.read_backup(str(tmp_path / "none.json")) is None


def test_snapshot_only_changed_attributes():
    class L:
        mac, promisc, mtu, allmulti, txqlen = "aa:bb:cc:dd:ee:ff", False, 1500, True, 1000
    assert tm.snapshot(L, {"mtu": 9000}) == {"mtu": 1500}
    assert tm.snapshot(L, {"mac": "x", "promisc": True, "allmulti": False, "txQLen": 0}) == {
        "mac": "aa:bb:cc:dd:ee:ff", "promisc": False, "allmulti": True, "txQLen": 1000}


def test_sbr_static_gateways():
    assert sbrm.static_gateways(["10.0.0.1", "fd00::1"]) == {4: ipaddress.ip_address("10.0.0.1"),
                                                             6: ipaddress.ip_address("fd00::1")}
    for bad in (["1.1.1.1", "2.2.2.2"], ["x"], ["1.1.1.1", "::1", "2.2.2.2"]):
        with pytest.raises(InvalidConfigError):
            sbrm.static_gateways(bad)


# --- plugin configs through skel (no kernel work: parse errors and pass-through only) ----------

def dispatch(plugin, conf, command="ADD", **env):
    e = {"CNI_COMMAND": command, "CNI_CONTAINERID": "c1", "CNI_NETNS": "/run/netns/none",
         "CNI_IFNAME": "eth0", "CNI_PATH": "/nonexistent", **env}
    out = io.StringIO()
    rc = skel.run(plugin, environ=e, stdin=io.BytesIO(json.dumps(conf).encode()), stdout=out,
                  stderr=io.StringIO())
    return rc, json.loads(out.getvalue()) if out.getvalue() else None


def test_portmap_config_case_insensitive():
    import portmap
    conf = portmap.Config.load({"cniVersion": "1.0.0", "name": "n", "type": "portmap", "runtimeConfig": {
        "portMappings": [{"HostPort": 80, "ContainerPort": 8080, "Protocol": "UDP", "HostIP": ""}]}})
    assert conf.mappings == [{"hostPort": 80, "containerPort": 8080, "protocol": "udp", "hostIP": None}]
    assert conf.snat is True and conf.backend is None
    rc, out = dispatch(portmap.PLUGIN, {"cniVersion": "1.0.0", "name": "n", "type": "portmap",
                                        "prevResult": PREV})
    assert rc == 0 and out["ips"][0]["address"] == "10.0.0.9/24"       # no mappings: pass through
    rc, out = dispatch(portmap.PLUGIN, {"cniVersion": "1.0.0", "name": "n", "type": "portmap",
                                        "markMasqBit": 40})
    assert rc == 1 and "markMasqBit" in out["msg"]


def test_bandwidth_and_firewall_versions():
    import bandwidth
    import firewall
    assert "0.2.0" not in bandwidth.PLUGIN.versions and "0.3.0" in bandwidth.PLUGIN.versions
    assert firewall.PLUGIN.versions[0] == "0.3.0"                    # 0.3.x ADD/DEL (issue 15)
    rc, out = dispatch(bandwidth.PLUGIN, {"cniVersion": "1.0.0", "name": "n", "type": "bandwidth",
                                          "prevResult": PREV})
    assert rc == 0 and out["interfaces"][0]["name"] == "cni0"          # all zero: pass through
    c = bandwidth.Config.load({"cniVersion": "1.0.0", "name": "n", "type": "bandwidth", "egressRate": 8,
                               "egressBurst": 8, "runtimeConfig": {"bandwidth": {"ingressRate": 800,
                                                                                 "ingressBurst": 800}}})
    assert (c.ingress_rate, c.egress_rate) == (0, 8)                    # top-level keys win
    c = bandwidth.Config.load({"cniVersion": "1.0.0", "name": "n", "type": "bandwidth",
                               "runtimeConfig": {"bandwidth": {"ingressRate": 800, "ingressBurst": 800}}})
    assert (c.ingress_rate, c.ingress_burst) == (800, 800)


def test_tuning_precedence(monkeypatch):
    import tuning
    conf = tuning.Config.load({"cniVersion": "1.0.0", "name": "n", "type": "tuning", "mac": "02:00:00:00:00:01",
                               "mtu": 1400, "sysctl": {"net.core.somaxconn": "1"},
                               "runtimeConfig": {"mac": "02:00:00:00:00:03"},
                               "args": {"cni": {"mtu": 1300, "sysctl": {"net.core.x": "2"}}}})
    args = skel.Args("ADD", "c", "/x", "eth0", "IgnoreUnknown=1;MAC=02:00:00:00:00:02")
    conf.resolve(args)
    assert conf.mac == "02:00:00:00:00:03" and conf.mtu == 1300
    assert conf.sysctl == {"net.core.somaxconn": "1", "net.core.x": "2"}
    assert conf.data_dir == "/run/cni/tuning"
