"""host-device selectors against a fake sysfs: pciBusID (plain and virtio), the auxiliary
bus, runtimeConfig.deviceID, DPDK driver detection and Go's priority order."""
from __future__ import annotations

import os

import pytest

from cni.errors import CNIError
from cni.links import hostdev


class _Link:
    def __init__(self, name, mac):
        self.name, self.mac = name, mac


class _H:
    def link_list(self):
        return [_Link("lo", "00:00:00:00:00:00"), _Link("ens9", "0a:58:0a:00:00:09")]


@pytest.fixture
def sysfs(tmp_path, monkeypatch):
    pci, aux = tmp_path / "pci", tmp_path / "aux"
    (pci / "0000:00:05.0" / "net" / "ens5").mkdir(parents=True)
    (pci / "0000:00:06.0" / "virtio3" / "net" / "ens6").mkdir(parents=True)
    (pci / "0000:00:07.0").mkdir(parents=True)
    (aux / "mlx5_core.sf.4" / "net" / "enp0s0f0s4").mkdir(parents=True)
    drivers = tmp_path / "drivers"
    for d in ("vfio-pci", "virtio-pci"):
        (drivers / d).mkdir(parents=True)
    os.symlink(drivers / "vfio-pci", pci / "0000:00:07.0" / "driver")
    os.symlink(drivers / "virtio-pci", pci / "0000:00:05.0" / "driver")
    monkeypatch.setattr(hostdev, "SYS_PCI", str(pci))
    monkeypatch.setattr(hostdev, "SYS_AUX", str(aux))
    return tmp_path


def test_pci_virtio_and_aux(sysfs):
    assert hostdev.select_name(None, pci="0000:00:05.0") == "ens5"
    assert hostdev.select_name(None, pci="0000:00:06.0") == "ens6"
    assert hostdev.select_name(None, aux="mlx5_core.sf.4") == "enp0s0f0s4"
    with pytest.raises(CNIError):
        hostdev.select_name(None, pci="0000:00:07.0")        # no netdev (DPDK-bound)


def test_device_id_resolution(sysfs):
    assert hostdev.handle_device_id("0000:00:05.0") == ("0000:00:05.0", "")
    assert hostdev.handle_device_id("mlx5_core.sf.4") == ("", "mlx5_core.sf.4")
    assert hostdev.handle_device_id("") == ("", "")
    with pytest.raises(CNIError, match="not found"):
        hostdev.handle_device_id("0000:00:99.0")


def test_dpdk_driver(sysfs):
    assert hostdev.has_dpdk_driver("0000:00:07.0") is True
    assert hostdev.has_dpdk_driver("0000:00:05.0") is False
    with pytest.raises(CNIError):
        hostdev.has_dpdk_driver("0000:00:06.0")              # no driver bound


def test_priority_order(sysfs):
    # device > hwaddr > kernelpath > pciBusID > auxiliary device (Go's order)
    assert hostdev.select_name(_H(), device="hd0", hwaddr="0a:58:0a:00:00:09",
                               pci="0000:00:05.0") == "hd0"
    assert hostdev.select_name(_H(), hwaddr="0A:58:0A:00:00:09", pci="0000:00:05.0") == "ens9"
    assert hostdev.select_name(_H(), pci="0000:00:05.0", aux="mlx5_core.sf.4") == "ens5"
    with pytest.raises(CNIError):
        hostdev.select_name(_H(), hwaddr="0a:58:0a:00:00:99")
    with pytest.raises(CNIError):
        hostdev.select_name(_H())


def test_plugin_resolve_applies_device_id(sysfs):
    import host_device
    conf = host_device.Config.load({"cniVersion": "1.0.0", "name": "n", "type": "host-device",
                                    "runtimeConfig": {"deviceID": "0000:00:07.0"}})
    conf.resolve()
    assert conf.pci_bus_id == "0000:00:07.0" and conf.dpdk is True
    conf = host_device.Config.load({"cniVersion": "1.0.0", "name": "n", "type": "host-device",
                                    "device": "hd0",
                                    "runtimeConfig": {"deviceID": "mlx5_core.sf.4"}})
    conf.resolve()
    assert conf.aux_device == "mlx5_core.sf.4" and conf.dpdk is False
