"""A delegating plugin finds its IPAM delegate before touching the kernel (issue 15): with no
CNI_PATH (optional by the spec) or a CNI_PATH without the delegate, ADD fails with code 7 and
leaves no bridge, veth, or link behind."""
from __future__ import annotations

import pytest

from helpers import run_plugin

pytestmark = [pytest.mark.root]


@pytest.fixture(autouse=True)
def _bins(built_bins):
    return built_bins


def links(ns):
    return sorted(lk["ifname"] for lk in ns.ipj("link", "show"))


def conf(tmp_path, plugin):
    c = {"cniVersion": "1.0.0", "name": "cnit-pre", "type": plugin,
         "ipam": {"type": "host-local", "subnet": "10.95.0.0/24",
                  "dataDir": str(tmp_path / "ipam")}}
    if plugin == "bridge":
        c["bridge"] = "cnitprebr0"
    if plugin in ("macvlan", "ipvlan", "vlan"):
        c["master"] = "eth0"
    if plugin == "vlan":
        c["vlan"] = 7
    return c


@pytest.mark.parametrize("plugin", ["bridge", "ptp", "macvlan", "ipvlan", "vlan", "dummy", "tap"])
@pytest.mark.parametrize("path", ["", "/nonexistent-cni-bin"])
def test_missing_ipam_delegate_fails_before_kernel_work(host_ns, cont_ns, tmp_path, plugin, path):
    host_ns.ip("link", "add", "eth0", "type", "veth", "peer", "name", "peer0")
    host_ns.ip("link", "set", "eth0", "up")
    before_host, before_cont = links(host_ns), links(cont_ns)
    r = run_plugin(plugin, "ADD", conf(tmp_path, plugin), netns=cont_ns.path,
                   in_netns=host_ns.name, path=path)
    assert r.rc == 1, r
    assert r.json["code"] == 7 and "host-local" in r.json["msg"] + r.json.get("details", ""), r
    assert links(host_ns) == before_host                  # no bridge, no veth
    assert links(cont_ns) == before_cont
    assert not (tmp_path / "ipam").exists()
