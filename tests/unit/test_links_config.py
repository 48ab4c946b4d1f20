"""Config validation and small pure helpers of macvlan/ipvlan/vlan/dummy/tap/host-device/vrf."""
from __future__ import annotations

import io
import json

import pytest

import dummy
import host_device
import ipvlan
import macvlan
import tap
import vlan
import vrf
from cni import skel
from cni.errors import CNIError

ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "abc", "CNI_NETNS": "/nonexistent/netns",
       "CNI_IFNAME": "eth0", "CNI_PATH": "/nonexistent"}


def err(plugin, conf, **env):
    e = dict(ENV, **env)
    with pytest.raises(CNIError) as ei:
        skel.dispatch(plugin.PLUGIN, e, io.BytesIO(json.dumps(conf).encode()))
    return ei.value


def base(t, ver="1.0.0", **kw):
    c = {"cniVersion": ver, "name": "n", "type": t}
    c.update(kw)
    return c


@pytest.mark.parametrize("plugin,conf,code,words", [
    (macvlan, base("macvlan", mode="bogus"), 7, "mode"),
    (macvlan, base("macvlan", mtu=-1), 7, "MTU"),
    (macvlan, base("macvlan", master="a/b"), 7, "master"),
    (macvlan, base("macvlan", mac="zz"), None, None),
    (ipvlan, base("ipvlan", mode="l4"), 7, "mode"),
    (ipvlan, base("ipvlan", flag="nope"), 7, "flag"),
    (ipvlan, base("ipvlan", master="eth0"), 7, "IPAM"),
    (vlan, base("vlan"), 7, "master"),
    (vlan, base("vlan", master="eth0", vlanId=4095), 7, "VLAN"),
    (vlan, base("vlan", master="eth0", vlanId=5), 7, "IPAM"),
    (dummy, base("dummy"), 7, "IPAM"),
    (tap, base("tap", owner=-1), 7, "owner"),
    (tap, base("tap", mtu=70000), 7, "MTU"),
    (tap, base("tap", bridge="x" * 20), 7, "bridge"),
    (host_device, base("host-device"), 7, "device"),
    (host_device, base("host-device", hwaddr="nope"), 7, "MAC"),
    (vrf, base("vrf"), 7, "vrf name"),
    (vrf, base("vrf", vrfname="blue", table=-1), 7, "table"),
    (vrf, base("vrf", "0.3.0", vrfname="blue"), 1, "version"),
    (vrf, base("vrf", vrfname="blue"), None, "prevResult"),
])
def test_bad_config(plugin, conf, code, words):
    e = err(plugin, conf)
    if code is not None:
        assert e.code == code, e.to_dict("1.0.0")
    if words:
        assert words.lower() in (e.msg + " " + e.details).lower(), e.to_dict("1.0.0")


def test_mac_precedence():
    from cni.links import resolve_mac
    args = skel.Args(args="IgnoreUnknown=1;MAC=02:00:00:00:00:02;K8S_POD_NAME=x")
    assert resolve_mac("02:00:00:00:00:01", skel.Args(), {}) == "02:00:00:00:00:01"
    assert resolve_mac("02:00:00:00:00:01", args, {}) == "02:00:00:00:00:02"
    assert resolve_mac("02:00:00:00:00:01", args, {"mac": "02:00:00:00:00:03"}) == \
        "02:00:00:00:00:03"
    with pytest.raises(CNIError):
        resolve_mac("", skel.Args(), {"mac": "nope"})


def test_vrf_free_table():
    assert vrf.free_table([]) == 1
    assert vrf.free_table([1, 2, 4]) == 3
    assert vrf.free_table(range(1, 253)) == 256          # 253-255 are reserved tables


def test_ipvlan_chained_master():
    conf = ipvlan.Config.load(base("ipvlan", prevResult={
        "cniVersion": "1.0.0", "interfaces": [{"name": "ens5"}], "ips": []}))
    assert conf.chained_master() == "ens5"
    conf = ipvlan.Config.load(base("ipvlan", prevResult={
        "cniVersion": "1.0.0", "interfaces": [{"name": "a"}, {"name": "b"}]}))
    with pytest.raises(CNIError, match="chained master"):
        conf.chained_master()


def test_host_device_state_roundtrip(tmp_path, monkeypatch):
    from cni.links import hostdev
    monkeypatch.setattr(hostdev, "STATE_DIR", str(tmp_path / "st"))
    assert hostdev.load_state("c1", "net1") is None
    hostdev.save_state("c1", "net1", {"name": "ens4", "mtu": 9000, "up": True, "addrs": []})
    assert hostdev.load_state("c1", "net1")["mtu"] == 9000
    hostdev.drop_state("c1", "net1")
    hostdev.drop_state("c1", "net1")
    assert hostdev.load_state("c1", "net1") is None


def test_host_device_kernelpath_must_be_sysfs():
    from cni.errors import InvalidConfigError
    from cni.links import hostdev
    with pytest.raises(InvalidConfigError):
        hostdev.select_name(None, kernelpath="/etc/passwd")
    with pytest.raises(InvalidConfigError):
        hostdev.select_name(None, kernelpath="sys/devices/x")


def test_status_unconditional_for_vlan_and_dummy():
    for plugin, t in ((vlan, "vlan"), (dummy, "dummy")):
        c = base(t, "1.1.0", master="eth0")
        e = err(plugin, c, CNI_COMMAND="STATUS")
        assert "ipam" in (e.msg + e.details).lower()
    for plugin, t in ((macvlan, "macvlan"), (tap, "tap"), (ipvlan, "ipvlan"),
                      (host_device, "host-device"), (vrf, "vrf")):
        c = base(t, "1.1.0", vrfname="blue", device="x")
        assert skel.dispatch(plugin.PLUGIN, dict(ENV, CNI_COMMAND="STATUS"),
                             io.BytesIO(json.dumps(c).encode())) == ""
