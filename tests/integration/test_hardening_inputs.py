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
