"""GC has one meaning everywhere (issue 15).

- Every plugin with an IPAM delegate forwards GC to it (macvlan, ipvlan, vlan, host-device,
  dummy and tap included), so a stale host-local reservation is released through them.
- A GC request without `cni.dev/valid-attachments` (nor its `cni.dev/attachments` spelling)
  removes nothing anywhere: not leases, not masquerade rules, not portmap chains.
"""
from __future__ import annotations

import pytest

from helpers import BIN, leases, run_plugin
from test_bridge import add as bridge_add
from test_bridge import conf as bridge_conf
from test_bridge import delete as bridge_delete
from test_bridge import nat_rules

pytestmark = [pytest.mark.root]
PATH = BIN
LINK_PLUGINS = ["macvlan", "ipvlan", "vlan", "host-device", "dummy", "tap"]


@pytest.fixture(autouse=True)
def _bins(built_bins):
    return built_bins


def ipam(tmp_path, net):
    return {"type": "host-local", "dataDir": str(tmp_path / "ipam"),
            "ranges": [[{"subnet": "10.77.0.0/24"}]]}


def reserve(tmp_path, net, cid):
    """A host-local reservation made straight through host-local (no kernel work)."""
    c = {"cniVersion": "1.1.0", "name": net, "type": "x", "ipam": ipam(tmp_path, net)}
    r = run_plugin("host-local", "ADD", c, container_id=cid, netns="/var/run/netns/cnit-unused",
                   path=PATH)
    assert r.rc == 0, r
    return r.json["ips"][0]["address"].split("/")[0]


def gc_conf(tmp_path, plugin, net, key=None, valid=None):
    c = {"cniVersion": "1.1.0", "name": net, "type": plugin, "ipam": ipam(tmp_path, net)}
    if plugin in ("macvlan", "ipvlan", "vlan"):
        c["master"] = "cnitnomaster"       # GC must not need the master to exist
    if plugin == "vlan":
        c["vlan"] = 10
    if plugin == "host-device":
        c["device"] = "cnitnodev"
    if key is not None:
        c[key] = valid
    return c


def gc(c, **kw):
    return run_plugin(c["type"], "GC", c, container_id="", ifname="", netns="", path=PATH, **kw)


@pytest.mark.parametrize("plugin", LINK_PLUGINS)
@pytest.mark.parametrize("key", ["cni.dev/valid-attachments", "cni.dev/attachments"])
def test_link_plugin_gc_forwards_to_ipam(tmp_path, plugin, key):
    net = "cnitgc-" + plugin
    keep, stale = reserve(tmp_path, net, "keep"), reserve(tmp_path, net, "stale")
    assert leases(tmp_path, net) == sorted([keep, stale])
    r = gc(gc_conf(tmp_path, plugin, net))                      # no list: nothing removed
    assert r.rc == 0, r
    assert leases(tmp_path, net) == sorted([keep, stale])
    r = gc(gc_conf(tmp_path, plugin, net, key, [{"containerID": "keep", "ifname": "eth0"}]))
    assert r.rc == 0, r
    assert leases(tmp_path, net) == [keep]                       # the stale one is released
    r = gc(gc_conf(tmp_path, plugin, net, key, [{"containerID": 5}]))
    assert r.rc == 1 and r.json["code"] == 7, r


@pytest.mark.kmod("macvlan")
def test_macvlan_gc_releases_stale_reservation_kernel(host_ns, make_netns, tmp_path):
    """Two containers on macvlan; one vanishes without DEL; GC keeps the live one's lease."""
    host_ns.ip("link", "add", "eth0", "type", "veth", "peer", "name", "peer0")
    host_ns.ip("link", "set", "eth0", "up")
    net = "cnitgc-mv"
    c = {"cniVersion": "1.1.0", "name": net, "type": "macvlan", "master": "eth0",
         "ipam": ipam(tmp_path, net)}
    a, b = make_netns("gca"), make_netns("gcb")
    for ns, cid in ((a, "ga"), (b, "gb")):
        r = run_plugin("macvlan", "ADD", c, container_id=cid, netns=ns.path, in_netns=host_ns.name,
                       path=PATH)
        assert r.rc == 0, r
    assert len(leases(tmp_path, net)) == 2
    r = run_plugin("macvlan", "GC", c, container_id="", ifname="", in_netns=host_ns.name,
                   path=PATH)
    assert r.rc == 0, r
    assert len(leases(tmp_path, net)) == 2
    mine = a.ipj("addr", "show", "eth0")[0]["addr_info"][0]["local"]
    c2 = dict(c, **{"cni.dev/valid-attachments": [{"containerID": "ga", "ifname": "eth0"}]})
    r = run_plugin("macvlan", "GC", c2, container_id="", ifname="", in_netns=host_ns.name,
                   path=PATH)
    assert r.rc == 0, r
    assert leases(tmp_path, net) == [mine]
    for ns, cid in ((a, "ga"), (b, "gb")):
        r = run_plugin("macvlan", "DEL", c, container_id=cid, netns=ns.path, in_netns=host_ns.name,
                       path=PATH)
        assert r.rc == 0, r


def masq_rules(host):
    return [ln for ln in nat_rules(host) if ln.startswith("-A POSTROUTING")]


@pytest.mark.parametrize("plugin", ["bridge", "ptp"])
def test_gc_without_list_keeps_masquerade(host_ns, cont_ns, tmp_path, plugin):
    c = bridge_conf(tmp_path, cniVersion="1.1.0", ipMasq=True, ipMasqBackend="iptables",
                    type=plugin)
    assert bridge_add(host_ns, cont_ns, c, plugin=plugin).rc == 0
    try:
        before = masq_rules(host_ns)
        assert len(before) == 1
        r = run_plugin(plugin, "GC", c, container_id="", ifname="", in_netns=host_ns.name,
                       path=PATH)
        assert r.rc == 0, r
        assert masq_rules(host_ns) == before                     # nothing is known stale
        assert len(leases(tmp_path, "cnit-br")) == 1
        c2 = dict(c, **{"cni.dev/attachments": [{"containerID": "other", "ifname": "eth0"}]})
        r = run_plugin(plugin, "GC", c2, container_id="", ifname="", in_netns=host_ns.name,
                       path=PATH)
        assert r.rc == 0, r
        assert masq_rules(host_ns) == [] and leases(tmp_path, "cnit-br") == []
    finally:
        assert bridge_delete(host_ns, cont_ns, c, plugin=plugin).rc == 0


def test_portmap_gc_without_list_keeps_chains(host_ns, cont_ns, tmp_path):
    c = bridge_conf(tmp_path, cniVersion="1.1.0")
    r = bridge_add(host_ns, cont_ns, c)
    assert r.rc == 0, r
    pm = {"cniVersion": "1.1.0", "name": "cnit-br", "type": "portmap", "backend": "iptables",
          "runtimeConfig": {"portMappings": [{"hostPort": 18080, "containerPort": 80}]},
          "prevResult": r.json}
    try:
        r = run_plugin("portmap", "ADD", pm, container_id="ctr1", netns=cont_ns.path,
                       in_netns=host_ns.name, path=PATH)
        assert r.rc == 0, r
        before = [ln for ln in nat_rules(host_ns) if "DN-" in ln]
        assert before
        gc_c = {k: v for k, v in pm.items() if k not in ("prevResult", "runtimeConfig")}
        r = run_plugin("portmap", "GC", gc_c, container_id="", ifname="", in_netns=host_ns.name,
                       path=PATH)
        assert r.rc == 0, r
        assert [ln for ln in nat_rules(host_ns) if "DN-" in ln] == before
        gc_c["cni.dev/attachments"] = []
        r = run_plugin("portmap", "GC", gc_c, container_id="", ifname="", in_netns=host_ns.name,
                       path=PATH)
        assert r.rc == 0, r
        assert [ln for ln in nat_rules(host_ns) if "DN-" in ln] == []
    finally:
        run_plugin("portmap", "DEL", pm, container_id="ctr1", netns=cont_ns.path,
                   in_netns=host_ns.name, path=PATH)
        assert bridge_delete(host_ns, cont_ns, c).rc == 0


def test_valid_attachments_helper_shapes():
    from cni.errors import InvalidConfigError
    from cni.meta import valid_attachments

    class C:
        raw: dict = {}
    assert valid_attachments(C) is None
    C.raw = {"cni.dev/attachments": []}
    assert valid_attachments(C) == []
    C.raw = {"cni.dev/valid-attachments": [{"containerID": "a", "ifname": "eth0"}],
             "cni.dev/attachments": [{"containerID": "b", "ifname": "eth0"}]}
    assert valid_attachments(C) == [("a", "eth0")]               # the spec's spelling wins
    for bad in ({"cni.dev/attachments": {"containerID": "a"}},
                {"cni.dev/valid-attachments": [{"containerID": "a"}]},
                {"cni.dev/valid-attachments": ["a"]}):
        C.raw = bad
        with pytest.raises(InvalidConfigError):
            valid_attachments(C)
