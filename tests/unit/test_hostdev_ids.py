"""host-device: deviceID/pciBusID must be a PCI address or an auxiliary device name,
kernelpath is judged after resolving it, and the saved host state knows its owner (issue 12)."""
from __future__ import annotations

import os

import pytest

from cni.errors import CNIError, InvalidConfigError
from cni.links import hostdev

GOOD_PCI = ["0000:03:00.1", "0000:af:1f.7", "10000:e1:00.0", "ABCD:0A:1B.0"]
BAD_PCI = ["03:00.1", "0000:03:00.8", "0000:03:00", "0000:3:00.1", "000:03:00.1",
           "0000:03:00.1/../../../class/net", "../0000:03:00.1", "0000:03:00.1\n",
           "0000:03:00.10", "g000:03:00.1", "", "x" * 5000, "0000:03:00.1\x00", "0000:03:0０.1"]
GOOD_AUX = ["mlx5_core.sf.4", "mlx5_core.eth.0", "ice.roce.12", "a-b.c_d.0"]
BAD_AUX = ["mlx5_core.sf", "..", "a..b.0", "mlx5_core/sf.4", "mlx5_core.sf.x", ".a.b.0",
           "a.b.0/..", "a.b. 0", "a.b.0\x00", "x" * 300 + ".a.0", "eth0"]


@pytest.mark.parametrize("v", GOOD_PCI)
def test_pci_addresses_accepted(v):
    assert hostdev.is_pci_address(v) and hostdev.check_pci_address(v, "pciBusID") == v


@pytest.mark.parametrize("v", BAD_PCI)
def test_pci_addresses_refused(v):
    assert not hostdev.is_pci_address(v)
    with pytest.raises(InvalidConfigError) as ei:
        hostdev.check_pci_address(v, "pciBusID")
    assert ei.value.code == 7 and "pciBusID" in ei.value.details and len(ei.value.details) < 300


def test_short_pci_address_gets_a_hint():
    with pytest.raises(InvalidConfigError, match="invalid pciBusID") as ei:
        hostdev.check_pci_address("03:00.1", "pciBusID")
    assert "0000:03:00.1" in ei.value.details


@pytest.mark.parametrize("v", GOOD_AUX)
def test_aux_names(v):
    assert hostdev.is_aux_name(v) and not hostdev.is_pci_address(v)


@pytest.mark.parametrize("v", BAD_AUX)
def test_bad_aux_names(v):
    assert not hostdev.is_aux_name(v)


@pytest.fixture
def sysfs(tmp_path, monkeypatch):
    """A fake /sys: devices/ with a PCI netdev, class/net/ (what '..' would reach), bus/."""
    devs = tmp_path / "devices"
    (devs / "pci0000:00" / "0000:00:05.0" / "net" / "ens5").mkdir(parents=True)
    (devs / "virtual" / "net" / "lo").mkdir(parents=True)
    (tmp_path / "class" / "net" / "eth0").mkdir(parents=True)
    pci = tmp_path / "bus" / "pci" / "devices"
    pci.mkdir(parents=True)
    os.symlink(devs / "pci0000:00" / "0000:00:05.0", pci / "0000:00:05.0")
    (tmp_path / "bus" / "auxiliary" / "devices" / "mlx5_core.sf.4" / "net" / "sf4").mkdir(
        parents=True)
    # a link inside devices/ pointing out of it
    os.symlink(tmp_path / "class", devs / "pci0000:00" / "0000:00:05.0" / "escape")
    monkeypatch.setattr(hostdev, "SYS_DEVICES", str(devs))
    monkeypatch.setattr(hostdev, "SYS_PCI", str(pci))
    monkeypatch.setattr(hostdev, "SYS_AUX", str(tmp_path / "bus" / "auxiliary" / "devices"))
    return tmp_path


def test_kernelpath_inside_devices(sysfs):
    kp = str(sysfs / "devices" / "pci0000:00" / "0000:00:05.0")
    assert hostdev.select_name(None, kernelpath=kp) == "ens5"
    # '..' that stays inside devices/ is fine
    assert hostdev.select_name(None, kernelpath=kp + "/../0000:00:05.0") == "ens5"


@pytest.mark.parametrize("tail", ["/../class", "/pci0000:00/../../class",
                                  "/pci0000:00/0000:00:05.0/escape"])
def test_kernelpath_escaping_devices_is_code_7(sysfs, tail):
    kp = str(sysfs / "devices") + tail
    assert os.path.isdir(os.path.join(kp, "net", "eth0"))      # what the old check listed
    with pytest.raises(InvalidConfigError) as ei:
        hostdev.select_name(None, kernelpath=kp)
    assert ei.value.code == 7 and ei.value.msg == "invalid kernelpath"
    assert "outside" in ei.value.details


@pytest.mark.parametrize("kp", ["/tmp/x", "sys/devices/x", "/sys/devices/\x00x", "/sys/devicesX"])
def test_kernelpath_prefix(kp, monkeypatch):
    with pytest.raises(InvalidConfigError, match="invalid kernelpath"):
        hostdev.select_name(None, kernelpath=kp)


def test_device_id(sysfs):
    assert hostdev.handle_device_id("0000:00:05.0") == ("0000:00:05.0", "")
    assert hostdev.handle_device_id("mlx5_core.sf.4") == ("", "mlx5_core.sf.4")
    with pytest.raises(CNIError, match="not found") as ei:
        hostdev.handle_device_id("0000:00:09.0")
    assert ei.value.code != 7
    for bad in ("../../class/net/eth0", "..", "0000:00:05.0/..", "eth0", "00:05.0", "a\x00"):
        with pytest.raises(InvalidConfigError) as ei:
            hostdev.handle_device_id(bad)
        assert ei.value.code == 7 and "runtimeConfig.deviceID" in ei.value.details


def _load(**kw):
    import host_device
    c = {"cniVersion": "1.0.0", "name": "n", "type": "host-device"}
    c.update(kw)
    return host_device.Config.load(c)


def test_plugin_fields_are_code_7(sysfs):
    for kw, field in (({"pciBusID": "../x"}, "pciBusID"), ({"pciBusID": "05.0"}, "pciBusID"),
                      ({"device": "a/b"}, "device"), ({"device": "x" * 16}, "device"),
                      ({"device": "a\x00"}, "device")):
        with pytest.raises(InvalidConfigError) as ei:
            _load(**kw)
        assert ei.value.code == 7 and field in ei.value.msg + ei.value.details
    conf = _load(device="", runtimeConfig={"deviceID": "../../../class/net/eth0"})
    with pytest.raises(InvalidConfigError, match="invalid runtimeConfig.deviceID"):
        conf.resolve()


def test_state_file_of_the_twin_attachment(tmp_path, monkeypatch):
    monkeypatch.setattr(hostdev, "STATE_DIR", str(tmp_path))
    hostdev.save_state("a-b", "c", {"name": "hd0", "mtu": 1400})
    assert hostdev.state_path("a-b", "c") == hostdev.state_path("a", "b-c")
    assert hostdev.load_state("a-b", "c")["name"] == "hd0"
    assert hostdev.load_state("a", "b-c") is None
    hostdev.drop_state("a", "b-c")
    assert hostdev.load_state("a-b", "c")["name"] == "hd0"
    hostdev.drop_state("a-b", "c")
    assert not os.listdir(tmp_path)
    # a state file written before ids were recorded is still used
    with open(hostdev.state_path("x", "eth0"), "w") as f:
        f.write('{"name": "hd1"}')
    assert hostdev.load_state("x", "eth0") == {"name": "hd1"}
