"""Hostile config values against the real kernel, through the zipapps in bin/ (issue 12 item 5):
each gets its CNI error code and a message naming the field, and leaves nothing behind."""
from __future__ import annotations

import os
import uuid

import pytest

from helpers import BIN, run_plugin

pytestmark = [pytest.mark.root]


# ---- host-device: kernelpath is judged after resolving '..' and symlinks -------------------

@pytest.fixture
def hd_lab(host_ns, cont_ns, built_bins, tmp_path):
    """host_ns holds veth hd0 <-> hd0p; `ip netns exec` gives the plugin host_ns's own /sys,
    where /sys/class/net lists exactly lo, hd0 and hd0p."""
    host_ns.ip("link", "add", "hd0", "type", "veth", "peer", "name", "hd0p")
    cid = "cnithd-" + uuid.uuid4().hex[:8]
    yield host_ns, cont_ns, cid
    state = "/run/cni/host-device"
    for name in os.listdir(state) if os.path.isdir(state) else ():
        if name.startswith(cid):
            os.unlink(os.path.join(state, name))


def _hd(cmd, host, cont, cid, **kw):
    c = {"cniVersion": "1.0.0", "name": "hdnet", "type": "host-device"}
    c.update(kw)
    return run_plugin("host-device", cmd, c, in_netns=host.name, container_id=cid,
                      netns=cont.path, ifname="net1")


def _names(ns):
    return sorted(x["ifname"] for x in ns.ipj("link"))


@pytest.mark.parametrize("kp", ["/sys/devices/../class", "/sys/devices/virtual/../../class",
                                "/sys/devices/virtual/net/hd0/subsystem/.."])
def test_kernelpath_escaping_sys_devices_is_refused(hd_lab, kp):
    host, cont, cid = hd_lab
    assert os.path.isdir("/sys/devices/virtual/net")
    r = _hd("ADD", host, cont, cid, kernelpath=kp)
    assert r.rc == 1 and r.json["code"] == 7, r
    assert r.json["msg"] == "invalid kernelpath" and "outside /sys/devices/" in r.json["details"]
    assert _names(host) == ["hd0", "hd0p", "lo"] and _names(cont) == ["lo"]
    assert _hd("DEL", host, cont, cid, kernelpath=kp).rc == 0


def test_kernelpath_inside_sys_devices_still_works(hd_lab):
    host, cont, cid = hd_lab
    # /sys/devices/virtual/net lists hd0, hd0p, lo: the first, hd0, moves
    kp = "/sys/devices/virtual/net/hd0/../.."
    r = _hd("ADD", host, cont, cid, kernelpath=kp)
    assert r.rc == 0, r
    assert _names(host) == ["hd0p", "lo"] and _names(cont) == ["lo", "net1"]
    assert _hd("DEL", host, cont, cid, kernelpath=kp).rc == 0
    assert _names(host) == ["hd0", "hd0p", "lo"] and _names(cont) == ["lo"]


@pytest.mark.parametrize("kw,field", [
    ({"pciBusID": "../../../class/net/hd0/device"}, "pciBusID"),
    ({"pciBusID": "00:05.0"}, "pciBusID"),
    ({"device": "hd0/../hd0p"}, "device"),
    ({"device": "x" * 100000}, "device"),
    ({"device": "", "runtimeConfig": {"deviceID": "../../../class/net/hd0"}},
     "runtimeConfig.deviceID"),
])
def test_host_device_selectors_are_code_7(hd_lab, kw, field):
    host, cont, cid = hd_lab
    r = _hd("ADD", host, cont, cid, **kw)
    assert r.rc == 1 and r.json["code"] == 7 and field in r.json["msg"] + r.json["details"], r
    assert len(r.stdout) < 1000
    assert _names(host) == ["hd0", "hd0p", "lo"] and _names(cont) == ["lo"]


# ---- bandwidth and tuning: numbers beyond what the kernel holds, NUL in a sysctl key --------

from chain_helpers import chained, run  # noqa: E402


def _tc_state(host_ns):
    qdiscs = host_ns.run("tc", "-j", "qdisc", "show").stdout
    links = sorted(x["ifname"] for x in host_ns.ipj("link"))
    return qdiscs, links


@pytest.mark.parametrize("kw,field", [
    ({"ingressRate": 2 ** 64, "ingressBurst": 80000}, "ingressRate"),
    ({"egressRate": 2 ** 70, "egressBurst": 80000}, "egressRate"),
    ({"egressRate": 8000, "egressBurst": 2 ** 64}, "egressBurst"),
    ({"ingressRate": 100000, "ingressBurst": 2 ** 32}, "ingressBurst"),   # buffer wraps to 0
    ({"egressRate": 100000, "egressBurst": 2 ** 32}, "egressBurst"),
    ({"runtimeConfig": {"bandwidth": {"ingressRate": 2 ** 67, "ingressBurst": 8}}}, "ingressRate"),
])
def test_bandwidth_beyond_tc_is_code_7(attached, host_ns, cont_ns, kw, field):
    before = _tc_state(host_ns)
    conf = chained(attached, dict({"type": "bandwidth"}, **kw))
    r = run("bandwidth", "ADD", conf, host_ns, cont_ns, "ctr1")
    assert r.rc == 1 and r.json["code"] == 7, r
    assert field in r.json["msg"] + r.json["details"] or "4GB" in r.json["msg"], r
    assert _tc_state(host_ns) == before                     # no qdisc, no IFB left
    d = run("bandwidth", "DEL", conf, host_ns, cont_ns, "ctr1")   # as Go: the config is refused
    assert d.rc == 1 and d.json["code"] == 7, d


@pytest.mark.parametrize("kw,field", [
    ({"mtu": 2 ** 32}, "mtu"), ({"mtu": 65536}, "mtu"), ({"mtu": -1}, "mtu"),
    ({"txQLen": 2 ** 32}, "txQLen"), ({"args": {"cni": {"mtu": 2 ** 64}}}, "mtu"),
    ({"sysctl": {"net.ipv4.conf.IFNAME.arp_notify\u0000": "1"}}, "sysctl key"),
    ({"args": {"cni": {"sysctl": {"net/core/\u0000somaxconn": "1"}}}}, "sysctl key"),
    ({"dataDir": "/run/cni/x\u0000y"}, "dataDir"),
])
def test_tuning_bad_values_are_code_7(attached, host_ns, cont_ns, tmp_path, kw, field):
    link = cont_ns.ipj("-d", "link", "show", "eth0")[0]
    conf = chained(attached, dict({"type": "tuning", "dataDir": str(tmp_path / "tuning")}, **kw))
    r = run("tuning", "ADD", conf, host_ns, cont_ns, "ctr1")
    assert r.rc == 1 and r.json["code"] == 7 and field in r.json["msg"] + r.json["details"], r
    after = cont_ns.ipj("-d", "link", "show", "eth0")[0]
    assert (after["mtu"], after["txqlen"]) == (link["mtu"], link["txqlen"])
    assert not (tmp_path / "tuning").exists()               # no backup file written
    d = run("tuning", "DEL", conf, host_ns, cont_ns, "ctr1")
    assert d.rc == 0 or d.json["code"] == 7, d
