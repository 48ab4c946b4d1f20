"""Whole chains through bin/cnitool and the bin/ zipapps, in test namespaces (issue 15):

- bridge + tuning + bandwidth passes CHECK (bandwidth appends its IFB device to the result's
  interfaces; bridge must find the host veth by what it is, not by its position);
- bandwidth reads its runtimeConfig the way Go decodes it: `"bandWidth"` (the spelling of the
  upstream chained-ptp-bandwidth conflist) shapes just as `"bandwidth"` does.
"""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from helpers import BIN

pytestmark = [pytest.mark.root]


@pytest.fixture
def cnitool(tmp_path, host_ns, built_bins):
    (tmp_path / "net.d").mkdir()

    def run(verb, name, netns, *, cid="cnit-chain", env=None):
        e = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
             "NETCONFPATH": str(tmp_path / "net.d"), "CNI_PATH": BIN,
             "CNI_CACHE_DIR": str(tmp_path / "cache"), "CNI_CONTAINERID": cid}
        e.update(env or {})
        return subprocess.run(["ip", "netns", "exec", host_ns.name, os.path.join(BIN, "cnitool"),
                               verb, name, netns], env=e, capture_output=True, text=True,
                              timeout=60)

    def write(obj):
        (tmp_path / "net.d" / (obj["name"] + ".conflist")).write_text(json.dumps(obj))
    run.write = write
    return run


def qdisc_kinds(host, dev):
    return sorted(q["kind"] for q in json.loads(host.run("tc", "-j", "qdisc", "show", "dev",
                                                         dev).stdout))


def host_veth(host):
    return [lk["ifname"] for lk in host.ipj("link", "show") if lk["ifname"].startswith("veth")]


@pytest.mark.parametrize("ver", ["0.4.0", "1.0.0", "1.1.0"])
def test_bridge_tuning_bandwidth_check(cnitool, host_ns, cont_ns, tmp_path, ver):
    net = {"cniVersion": ver, "name": "cnit-chain", "plugins": [
        {"type": "bridge", "bridge": "cnitchbr0", "isGateway": True,
         "ipam": {"type": "host-local", "subnet": "10.93.0.0/24",
                  "dataDir": str(tmp_path / "ipam")}},
        {"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.arp_filter": "1"}},
        {"type": "bandwidth", "ingressRate": 8000000, "ingressBurst": 80000,
         "egressRate": 8000000, "egressBurst": 80000}]}
    cnitool.write(net)
    r = cnitool("add", "cnit-chain", cont_ns.path)
    assert r.returncode == 0, r
    res = json.loads(r.stdout)
    names = [i["name"] for i in res["interfaces"]]
    assert names[0] == "cnitchbr0" and names[2] == "eth0" and names[-1].startswith("bwp")
    try:
        r = cnitool("check", "cnit-chain", cont_ns.path)
        assert r.returncode == 0, r                 # was: host veth mismatch: bwp... is not ...
        # CHECK still catches a host veth that left the bridge
        veth = host_veth(host_ns)[0]
        host_ns.ip("link", "set", veth, "nomaster")
        r = cnitool("check", "cnit-chain", cont_ns.path)
        assert r.returncode != 0 and "bridge" in r.stdout + r.stderr, r
    finally:
        r = cnitool("del", "cnit-chain", cont_ns.path)
        assert r.returncode == 0, r
    assert host_veth(host_ns) == []
    assert not [lk for lk in host_ns.ipj("link", "show") if lk["ifname"].startswith("bwp")]


@pytest.mark.parametrize("key", ["bandwidth", "bandWidth", "BANDWIDTH"])
def test_bandwidth_runtime_config_spellings(cnitool, host_ns, cont_ns, tmp_path, key):
    """The upstream chained-ptp-bandwidth conflist, as written there (0.3.1, "bandWidth")."""
    net = {"cniVersion": "0.3.1", "name": "cnit-ptpbw", "plugins": [
        {"type": "ptp", "ipMasq": False, "mtu": 512,
         "ipam": {"type": "host-local", "subnet": "10.94.2.0/24",
                  "dataDir": str(tmp_path / "ipam")}},
        {"type": "bandwidth", "runtimeConfig": {key: {
            "ingressRate": 800, "ingressBurst": 200, "egressRate": 800, "egressBurst": 200}}}]}
    cnitool.write(net)
    r = cnitool("add", "cnit-ptpbw", cont_ns.path)
    assert r.returncode == 0, r
    try:
        res = json.loads(r.stdout)
        veth = next(i["name"] for i in res["interfaces"] if i["name"].startswith("veth"))
        ifb = [i["name"] for i in res["interfaces"] if i["name"].startswith("bwp")]
        assert qdisc_kinds(host_ns, veth) == ["ingress", "tbf"]
        assert len(ifb) == 1 and "tbf" in qdisc_kinds(host_ns, ifb[0])
    finally:
        r = cnitool("del", "cnit-ptpbw", cont_ns.path)
        assert r.returncode == 0, r


def test_upstream_chained_bridge_bandwidth_conflist(cnitool, host_ns, cont_ns, tmp_path):
    """integration/testdata/chained-bridge-bandwidth/network-chain-test.conflist of upstream
    (bridge + bandwidth with runtimeConfig "bandWidth", 0.3.1), names and paths made ours."""
    net = {"cniVersion": "0.3.1", "name": "cnit-chainbw", "plugins": [
        {"type": "bridge", "bridge": "cnitbwbr1", "isDefaultGateway": True,
         "ipam": {"type": "host-local", "subnet": "10.12.2.0/24",
                  "dataDir": str(tmp_path / "ipam")}},
        {"type": "bandwidth", "runtimeConfig": {"bandWidth": {
            "ingressRate": 8000, "ingressBurst": 16000, "egressRate": 8000, "egressBurst": 16000}}}]}
    cnitool.write(net)
    r = cnitool("add", "cnit-chainbw", cont_ns.path)
    assert r.returncode == 0, r
    try:
        res = json.loads(r.stdout)
        veth = res["interfaces"][1]["name"]
        assert qdisc_kinds(host_ns, veth) == ["ingress", "tbf"]
        assert res["interfaces"][-1]["name"].startswith("bwp")
    finally:
        r = cnitool("del", "cnit-chainbw", cont_ns.path)
        assert r.returncode == 0, r


def test_go_struct_keys_fold(tmp_path):
    """The shared parser reads struct keys as Go: exact first, then case-insensitively."""
    from cni.config import GoObject, NetConf, lookup

    class C(NetConf):
        FIELDS = {"ingressRate": ("rate", int, 0)}
        __slots__ = ("rate",)
    c = C.load({"cniVersion": "1.0.0", "name": "n", "type": "t", "INGRESSRATE": 5,
                "RuntimeConfig": {"Mac": "aa:bb:cc:dd:ee:ff", "bandWidth": {"egressRate": 1}},
                "IPAM": {"Type": "host-local"}, "Args": {"CNI": {"ips": ["10.0.0.2"]}}})
    assert c.rate == 5
    assert c.runtime_config.get("mac") == "aa:bb:cc:dd:ee:ff"
    assert c.runtime_config["bandwidth"] == {"egressRate": 1}
    assert isinstance(c.runtime_config.get("bandwidth"), GoObject)
    assert "BandWidth" in c.runtime_config and "nope" not in c.runtime_config
    assert c.ipam_type() == "host-local" and c.cni_arg("ips") == ["10.0.0.2"]
    # exact match wins over a case-insensitive one, whatever the order
    assert lookup({"Mac": 1, "mac": 2}, "mac") == 2 and lookup({"mac": 2, "MAC": 1}, "mac") == 2
    # of two case-insensitive matches the last one counts (Go sets the field per key, in order)
    assert lookup({"MAC": 1, "Mac": 3}, "mac") == 3
    assert json.loads(json.dumps(c.runtime_config)) == {"Mac": "aa:bb:cc:dd:ee:ff",
                                                        "bandWidth": {"egressRate": 1}}
