"""tuning through the exec protocol after our bridge: sysctls and link attributes applied in the
container, the backup file, CHECK, and the original values restored on DEL."""
from __future__ import annotations

import json
import os

import pytest

from chain_helpers import chained, ok, run

pytestmark = pytest.mark.root
MAC = "02:11:22:33:44:55"


def link(cont):
    return cont.ipj("-d", "link", "show", "eth0")[0]


def sysctl(cont, key):
    return cont.run("sysctl", "-n", key).stdout.strip()


def test_tuning_apply_check_restore(attached, host_ns, cont_ns, tmp_path):
    before = link(cont_ns)
    data = tmp_path / "tuning"
    conf = chained(attached, {"type": "tuning", "dataDir": str(data), "mtu": 1400, "promisc": True,
                              "allmulti": True, "txQLen": 2000,
                              "sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1",
                                         "net/core/somaxconn": "500"},
                              "args": {"cni": {"sysctl": {"net.ipv4.conf.eth0.arp_ignore": "2"}}},
                              "runtimeConfig": {"mac": MAC}})
    out = ok(run("tuning", "ADD", conf, host_ns, cont_ns, "ctr1"))
    assert out["interfaces"][2]["mac"] == MAC and out["ips"] == attached["ips"]
    now = link(cont_ns)
    assert now["address"] == MAC and now["mtu"] == 1400 and now["txqlen"] == 2000
    assert "PROMISC" in now["flags"] and "ALLMULTI" in now["flags"]
    assert sysctl(cont_ns, "net.ipv4.conf.eth0.arp_filter") == "1"
    assert sysctl(cont_ns, "net.core.somaxconn") == "500"
    assert sysctl(cont_ns, "net.ipv4.conf.eth0.arp_ignore") == "2"
    backup = json.loads((data / "ctr1_eth0.json").read_text())
    assert backup == {"mac": before["address"], "promisc": False, "mtu": before["mtu"],
                      "allmulti": False, "txQLen": before["txqlen"]}
    assert [p for p in os.listdir(data) if ".tmp" in p] == []
    ok(run("tuning", "CHECK", chained(out, {k: v for k, v in conf.items() if k != "prevResult"}),
           host_ns, cont_ns, "ctr1"))
    cont_ns.ip("link", "set", "eth0", "mtu", "1300")
    assert run("tuning", "CHECK", conf, host_ns, cont_ns, "ctr1").rc == 1
    ok(run("tuning", "DEL", conf, host_ns, cont_ns, "ctr1"))
    after = link(cont_ns)
    for k in ("address", "mtu", "txqlen"):
        assert after[k] == before[k], k
    assert "PROMISC" not in after["flags"] and "ALLMULTI" not in after["flags"]
    assert not (data / "ctr1_eth0.json").exists()
    ok(run("tuning", "DEL", conf, host_ns, cont_ns, "ctr1"))                      # again
    ok(run("tuning", "DEL", chained(None, {"type": "tuning"}), host_ns, None, "ctr1", netns=""))


def test_tuning_cni_args_mac_and_errors(attached, host_ns, cont_ns, tmp_path):
    conf = chained(attached, {"type": "tuning", "dataDir": str(tmp_path / "t")})
    out = ok(run("tuning", "ADD", conf, host_ns, cont_ns, "ctr1", cni_args=f"IgnoreUnknown=1;MAC={MAC}"))
    assert out["interfaces"][2]["mac"] == MAC and link(cont_ns)["address"] == MAC
    ok(run("tuning", "DEL", conf, host_ns, cont_ns, "ctr1"))
    assert link(cont_ns)["address"] == attached["interfaces"][2]["mac"]
    for extra, code in (({"sysctl": {"kernel.hostname": "x"}}, 7),
                        ({"mac": "zz"}, 7)):
        r = run("tuning", "ADD", chained(attached, {"type": "tuning", **extra}), host_ns, cont_ns, "ctr1")
        assert r.rc == 1 and r.json["code"] == code, r.stdout
    dup = ('{"cniVersion":"1.0.0","name":"pmnet","type":"tuning","sysctl":{"net.core.somaxconn":"1",'
           '"net.core.somaxconn":"2"},"prevResult":' + json.dumps(attached) + "}")
    r = run("tuning", "ADD", dup, host_ns, cont_ns, "ctr1")
    assert r.rc == 1 and "duplicated" in r.json["msg"]
    r = run("tuning", "ADD", chained(None, {"type": "tuning"}), host_ns, cont_ns, "ctr1")
    assert r.rc == 1 and "prevResult" in r.json["msg"]


def test_tuning_ifname_renames_and_restores(attached, host_ns, cont_ns, tmp_path):
    data = tmp_path / "tuning"
    conf = chained(attached, {"type": "tuning", "dataDir": str(data), "ifName": "net0", "mtu": 1450})
    out = ok(run("tuning", "ADD", conf, host_ns, cont_ns, "ctr1"))
    assert out["interfaces"][2]["name"] == "net0" and out["ips"] == attached["ips"]
    now = cont_ns.ipj("-d", "link", "show", "net0")[0]
    assert now["mtu"] == 1450 and "UP" in now["flags"]
    assert cont_ns.ip("link", "show", "eth0", check=False).returncode != 0
    assert [a["local"] for a in cont_ns.ipj("addr", "show", "net0")[0]["addr_info"]
            if a["family"] == "inet"] == [attached["ips"][0]["address"].split("/")[0]]
    ok(run("tuning", "CHECK", chained(out, {k: v for k, v in conf.items() if k != "prevResult"}),
           host_ns, cont_ns, "ctr1"))
    ok(run("tuning", "DEL", conf, host_ns, cont_ns, "ctr1"))
    back = link(cont_ns)
    assert back["ifname"] == "eth0" and back["mtu"] != 1450 and "UP" in back["flags"]
    ok(run("tuning", "DEL", conf, host_ns, cont_ns, "ctr1"))


def test_tuning_bad_ifname(attached, host_ns, cont_ns, tmp_path):
    conf = chained(attached, {"type": "tuning", "ifName": "x" * 16})
    r = run("tuning", "ADD", conf, host_ns, cont_ns, "ctr1")
    assert r.rc == 1 and r.json["code"] == 7 and "ifName" in r.json["msg"]
