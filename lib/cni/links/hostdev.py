"""host-device helpers: find the host link, remember its host state, move it in and out.

A move is one RTM_NEWLINK carrying IFLA_NET_NS_FD + IFLA_IFNAME + IFLA_IFALIAS: the kernel moves
and renames in one step, so the host never sees the container name (no udev/NetworkManager race)
and a host name already used in the container does not collide. ifalias = the original host name
(as Go), and the host state (name, MTU, up, addresses) is kept in STATE_DIR for DEL to restore.
"""
from __future__ import annotations

import os

from cni import jsonx
from cni.errors import CNIError, InvalidConfigError

SYS_PCI = "/sys/bus/pci/devices"
SYS_AUX = "/sys/bus/auxiliary/devices"
USERSPACE_DRIVERS = ("vfio-pci", "uio_pci_generic", "igb_uio")
STATE_DIR = "/run/cni/host-device"


def handle_device_id(device_id: str) -> tuple[str, str]:
    """runtimeConfig.deviceID -> (pciBusID, auxiliary device)."""
    if not device_id:
        return "", ""
    if os.path.exists(os.path.join(SYS_PCI, device_id)):
        return device_id, ""
    if os.path.exists(os.path.join(SYS_AUX, device_id)):
        return "", device_id
    raise CNIError(f"runtime config DeviceID {device_id} not found or unsupported",
                   f"neither {SYS_PCI}/{device_id} nor {SYS_AUX}/{device_id} exists")


def has_dpdk_driver(pci: str) -> bool:
    """True when the PCI device is bound to a userspace (DPDK) driver: no netdev to move."""
    drv = os.path.join(SYS_PCI, pci, "driver")
    if not os.path.exists(drv):
        raise CNIError("error with host device", f"{pci}: no driver bound ({drv})")
    return os.path.basename(os.path.realpath(drv)) in USERSPACE_DRIVERS


def _first_netdev(path: str) -> str:
    try:
        names = sorted(os.listdir(path))
    except OSError as exc:
        raise CNIError("failed to find host device", f"{path}: {exc.strerror}") from None
    if not names:
        raise CNIError("failed to find host device", f"no network device in {path}")
    return names[0]


def select_name(h, *, device="", hwaddr="", kernelpath="", pci="", aux="") -> str:
    """The host link name chosen by the selectors, in Go's priority order."""
    if device:
        return device
    if hwaddr:
        want = hwaddr.lower()
        for link in h.link_list():
            if (link.mac or "").lower() == want:
                return link.name
        raise CNIError("failed to find host device", f"no link has MAC {hwaddr}")
    if kernelpath:
        if not os.path.isabs(kernelpath) or not kernelpath.startswith("/sys/devices/"):
            raise InvalidConfigError("invalid kernelpath",
                                     f"{kernelpath!r} must be absolute and begin with /sys/devices/")
        return _first_netdev(os.path.join(kernelpath, "net"))
    if pci:
        net = os.path.join(SYS_PCI, pci, "net")
        if not os.path.lexists(net):
            import glob
            found = sorted(glob.glob(os.path.join(SYS_PCI, pci, "virtio*", "net")))
            if not found:
                raise CNIError("failed to find host device", f"no net directory under {pci}")
            net = found[0]
        return _first_netdev(net)
    if aux:
        return _first_netdev(os.path.join(SYS_AUX, aux, "net"))
    raise CNIError("failed to find host device", "no selector given")


def state_path(container_id: str, ifname: str) -> str:
    return os.path.join(STATE_DIR, f"{container_id}-{ifname}.json")


def save_state(container_id: str, ifname: str, state: dict) -> str:
    os.makedirs(STATE_DIR, mode=0o700, exist_ok=True)
    path = state_path(container_id, ifname)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(jsonx.dumps(state))
    os.replace(tmp, path)
    return path


def load_state(container_id: str, ifname: str) -> dict | None:
    try:
        with open(state_path(container_id, ifname), "rb") as f:
            st = jsonx.loads(f.read())
        return st if isinstance(st, dict) else None
    except (OSError, ValueError):
        return None


def drop_state(container_id: str, ifname: str) -> None:
    try:
        os.unlink(state_path(container_id, ifname))
    except FileNotFoundError:
        pass


def host_addrs(h, index: int) -> list:
    """The link's global addresses as 'ip/prefix' strings."""
    return [str(a.interface) for a in h.addr_list(index) if a.scope == 0]


def restore_on_host(h, index: int, state: dict) -> None:
    """Put back MTU, addresses and up-state recorded at ADD (best effort per item)."""
    from cni.log import warn
    from cni.nl.socket import NetlinkError
    link = h.link_get(index)
    mtu = state.get("mtu")
    try:
        if isinstance(mtu, int) and mtu > 0 and link.mtu != mtu:
            h.link_set(index, mtu=mtu)
        if state.get("up"):
            h.link_up(index)
    except NetlinkError as exc:
        warn(f"host-device: restoring {link.name}: {exc}")
    have = {str(a.interface) for a in h.addr_list(index)}
    for a in state.get("addrs") or []:
        if a in have:
            continue
        try:
            h.addr_add(index, a)
        except (NetlinkError, ValueError) as exc:
            if getattr(exc, "errno", 0) != 17:
                warn(f"host-device: restoring address {a} on {link.name}: {exc}")
