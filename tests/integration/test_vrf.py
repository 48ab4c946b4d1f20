"""vrf (chained) over the exec protocol (skips where the kernel has no VRF driver)."""
from __future__ import annotations

import functools

import pytest

from helpers import BIN, run_in_host

pytestmark = [pytest.mark.root, pytest.mark.kmod("vrf")]
PREV = {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0"}],
        "ips": [{"address": "10.72.0.2/24", "interface": 0}]}


@pytest.fixture
def lab(host_ns, cont_ns, built_bins):
    for n in ("eth0", "eth1"):
        cont_ns.ip("link", "add", n, "type", "veth", "peer", "name", n + "p")
        cont_ns.ip("link", "set", n, "up")
        cont_ns.ip("link", "set", n + "p", "up")
    cont_ns.ip("addr", "add", "10.72.0.2/24", "dev", "eth0")
    cont_ns.ip("addr", "add", "2001:db8:72::2/64", "dev", "eth0", "nodad")
    cont_ns.ip("route", "add", "10.94.0.0/16", "via", "10.72.0.1", "dev", "eth0")
    return host_ns, cont_ns


def conf(**kw):
    c = {"cniVersion": "1.0.0", "name": "vrfnet", "type": "vrf", "vrfname": "blue",
         "prevResult": PREV}
    c.update(kw)
    return {k: v for k, v in c.items() if v is not None}


run = functools.partial(run_in_host, "vrf", path=BIN)


def test_add_check_del(lab):
    host, cont = lab
    r = run("ADD", conf(), host, cont)
    assert r.rc == 0, r
    assert r.json["ips"] == PREV["ips"]
    vrf = cont.ipj("-d", "link", "show", "blue")[0]
    assert vrf["linkinfo"]["info_data"]["table"] == 1
    assert cont.ipj("link", "show", "eth0")[0]["master"] == "blue"
    v6 = [a["local"] for a in cont.ipj("addr", "show", "eth0")[0]["addr_info"]
          if a["family"] == "inet6" and a["scope"] == "global"]
    assert v6 == ["2001:db8:72::2"]
    assert any(x["dst"] == "10.94.0.0/16" for x in cont.ipj("route", "show", "table", "1"))
    assert run("CHECK", conf(), host, cont).rc == 0
    r = run("ADD", conf(table=7), host, cont, ifname="eth1")
    assert r.rc == 1, r                                  # exists with another table
    assert run("ADD", conf(), host, cont, ifname="eth1").rc == 0
    assert run("DEL", conf(), host, cont).rc == 0
    assert "blue" in [x["ifname"] for x in cont.ipj("link")]   # eth1 still in it
    assert run("DEL", conf(), host, cont, ifname="eth1").rc == 0
    assert "blue" not in [x["ifname"] for x in cont.ipj("link")]
    assert run("DEL", conf(), host, cont).rc == 0


def test_auto_table_skips_used(lab):
    host, cont = lab
    cont.ip("link", "add", "red", "type", "vrf", "table", "1")
    assert run("ADD", conf(), host, cont).rc == 0
    assert cont.ipj("-d", "link", "show", "blue")[0]["linkinfo"]["info_data"]["table"] == 2
    assert run("DEL", conf(), host, cont).rc == 0


def test_del_missing_iface_and_netns(lab):
    host, cont = lab
    assert run("ADD", conf(), host, cont).rc == 0
    cont.ip("link", "del", "eth0")
    assert run("DEL", conf(), host, cont).rc == 0          # plugins#1282
    assert "blue" not in [x["ifname"] for x in cont.ipj("link")]
    assert run("DEL", conf(), host, cont, netns="/run/netns/cnit-gone-x").rc == 0
