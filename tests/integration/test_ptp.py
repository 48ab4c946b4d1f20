"""ptp through the exec protocol."""
from __future__ import annotations

import os

import pytest

from helpers import BIN, GO_BIN, run_plugin
from helpers import ptp_conf as conf

pytestmark = [pytest.mark.root]
PATH = f"{BIN}:{GO_BIN}"


@pytest.fixture(autouse=True)
def _bins(built_bins):
    return built_bins


def run(cmd, host, cont, c, cid="p1", netns=None):
    return run_plugin("ptp", cmd, c, container_id=cid, in_netns=host.name, path=PATH,
                      netns=cont.path if netns is None else netns)


def files(tmp_path):
    d = tmp_path / "ipam" / "cnit-ptp"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


@pytest.mark.parametrize("ver", ["0.2.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
def test_ptp_lifecycle(host_ns, cont_ns, tmp_path, ver):
    c = conf(tmp_path, cniVersion=ver, ipMasq=True, mtu=1300)
    r = run("ADD", host_ns, cont_ns, c)
    assert r.rc == 0, r
    out = r.json
    if ver != "0.2.0":
        hv = out["interfaces"][0]["name"]
        assert out["interfaces"][1] == {"name": "eth0", "mac": out["interfaces"][1]["mac"],
                                        "sandbox": cont_ns.path}
        host_addrs = [a["local"] + "/" + str(a["prefixlen"])
                      for a in host_ns.ipj("addr", "show", hv)[0]["addr_info"]
                      if a["scope"] == "global"]
        assert host_addrs == ["10.98.0.1/32"]
        assert host_ns.ipj("link", "show", hv)[0]["mtu"] == 1300
        assert any(x["dst"] == "10.98.0.2" and x["dev"] == hv for x in host_ns.ipj("route"))
    routes = {(x["dst"], x.get("gateway")) for x in cont_ns.ipj("route")}
    assert ("default", "10.98.0.1") in routes and ("10.98.0.0/24", "10.98.0.1") in routes
    assert ("10.98.0.1", None) in routes
    assert cont_ns.run("ping", "-c1", "-W2", "10.98.0.1", check=False).returncode == 0
    assert host_ns.run("ping", "-c1", "-W2", "10.98.0.2", check=False).returncode == 0
    nat = host_ns.run("iptables-save", "-t", "nat").stdout
    assert "-A POSTROUTING -s 10.98.0.2/32" in nat
    if ver not in ("0.2.0", "0.3.1"):
        assert run("CHECK", host_ns, cont_ns, dict(c, prevResult=out)).rc == 0
    assert run("DEL", host_ns, cont_ns, dict(c, prevResult=out)).rc == 0
    assert run("DEL", host_ns, cont_ns, c).rc == 0
    assert run("DEL", host_ns, cont_ns, c, netns="").rc == 0
    assert "CNI-" not in host_ns.run("iptables-save", "-t", "nat").stdout
    assert files(tmp_path) == ["last_reserved_ip.0", "lock"]
    assert cont_ns.ip("link", "show", "eth0", check=False).returncode != 0


def test_ptp_two_containers_share_gateway(host_ns, make_netns, tmp_path):
    c = conf(tmp_path)
    a, b = make_netns("pa"), make_netns("pb")
    ra, rb = run("ADD", host_ns, a, c, "pa"), run("ADD", host_ns, b, c, "pb")
    assert ra.rc == 0 and rb.rc == 0, (ra, rb)
    ipb = rb.json["ips"][0]["address"].split("/")[0]
    assert a.run("ping", "-c1", "-W2", ipb, check=False).returncode == 0
    for ns, cid in ((a, "pa"), (b, "pb")):
        assert run("DEL", host_ns, ns, c, cid).rc == 0


def test_ptp_requires_gateway(host_ns, cont_ns, tmp_path):
    c = conf(tmp_path)
    c["ipam"] = {"type": "static", "addresses": [{"address": "10.98.5.5/24"}]}
    if not os.path.exists(os.path.join(BIN, "static")):
        pytest.skip("bin/static not built")
    r = run("ADD", host_ns, cont_ns, c)
    assert r.rc == 1 and "gateway" in r.json["msg"]
    assert cont_ns.ip("link", "show", "eth0", check=False).returncode != 0


def test_ptp_dual_stack(host_ns, cont_ns, tmp_path):
    c = conf(tmp_path)
    c["ipam"] = {"type": "host-local", "dataDir": str(tmp_path / "ipam"),
                 "ranges": [[{"subnet": "10.98.0.0/24"}], [{"subnet": "fd00:98::/64"}]],
                 "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]}
    r = run("ADD", host_ns, cont_ns, c)
    assert r.rc == 0, r
    assert [i["address"] for i in r.json["ips"]] == ["10.98.0.2/24", "fd00:98::2/64"]
    assert cont_ns.run("ping", "-6", "-c1", "-W3", "fd00:98::1", check=False).returncode == 0
    assert run("DEL", host_ns, cont_ns, c).rc == 0
