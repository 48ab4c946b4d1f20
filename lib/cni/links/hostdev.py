"""host-device helpers: find the host link, remember its host state, move it in and out.

A move is one RTM_NEWLINK carrying IFLA_NET_NS_FD + IFLA_IFNAME + IFLA_IFALIAS: the kernel moves
and renames in one step, so the host never sees the container name (no udev/NetworkManager race)
and a host name already used in the container does not collide. ifalias = the original host name
(as Go), and the host state (name, MTU, up, addresses) is kept in STATE_DIR for DEL to restore.
"""
from __future__ import annotations

from cni.std import json as jsonx
from cni.errors import CNIError, InvalidConfigError
from cni.ip import global_addrs
from cni.nl.socket import NetlinkError
from cni.std import oslite as os

SYS_PCI = "/sys/bus/pci/devices"
SYS_AUX = "/sys/bus/auxiliary/devices"
SYS_DEVICES = "/sys/devices"
USERSPACE_DRIVERS = ("vfio-pci", "uio_pci_generic", "igb_uio")
STATE_DIR = "/run/cni/host-device"
_HEX = frozenset("0123456789abcdefABCDEF")
_AUX_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def is_pci_address(s: str) -> bool:
    """'0000:03:00.1' as the kernel names PCI devices in sysfs: domain (4 to 8 hex digits,
    PCI domains beyond 0xffff exist on VMD hosts), bus, device, function 0-7."""
    dom, _, rest = s.partition(":")
    bus, _, rest = rest.partition(":")
    dev, _, fn = rest.partition(".")
    return (4 <= len(dom) <= 8 and len(bus) == 2 and len(dev) == 2
            and all(c in _HEX for c in dom + bus + dev) and fn in tuple("01234567"))


def is_aux_name(s: str) -> bool:
    """An auxiliary bus device, '<module>.<name>.<id>' (e.g. mlx5_core.sf.4): no '/', no '..'."""
    parts = s.split(".")
    return (len(s) <= 255 and len(parts) >= 3 and parts[-1].isascii() and parts[-1].isdigit()
            and all(p and all(c in _AUX_CHARS for c in p) for p in parts))


def check_pci_address(value: str, field: str) -> str:
    if is_pci_address(value):
        return value
    hint = ""
    if is_pci_address("0000:" + value):
        hint = f"; with its domain, as sysfs names it: 0000:{value}"
    raise InvalidConfigError(f"invalid {field}",
                             f"{field} {_short(value)} is not a PCI address such as "
                             f"0000:03:00.1{hint}")


def _short(s: str) -> str:
    return repr(s) if len(s) <= 64 else repr(s[:64]) + f"... ({len(s)} characters)"


def handle_device_id(device_id: str) -> tuple[str, str]:
    """runtimeConfig.deviceID -> (pciBusID, auxiliary device). Only a PCI address or an
    auxiliary device name is looked up in sysfs (code 7 for anything else)."""
    if not device_id:
        return "", ""
    if is_pci_address(device_id):
        if os.path.exists(os.path.join(SYS_PCI, device_id)):
            return device_id, ""
    elif is_aux_name(device_id):
        if os.path.exists(os.path.join(SYS_AUX, device_id)):
            return "", device_id
    else:
        check_pci_address(device_id, "runtimeConfig.deviceID")   # raises, with a hint
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
        return _first_netdev(kernelpath_net(kernelpath))
    if pci:
        net = os.path.join(SYS_PCI, pci, "net")
        if not os.path.lexists(net):
            import glob  # lazy: only a kernelpath lookup globs
            found = sorted(glob.glob(os.path.join(SYS_PCI, pci, "virtio*", "net")))
            if not found:
                raise CNIError("failed to find host device", f"no net directory under {pci}")
            net = found[0]
        return _first_netdev(net)
    if aux:
        return _first_netdev(os.path.join(SYS_AUX, aux, "net"))
    raise CNIError("failed to find host device", "no selector given")


def kernelpath_net(kernelpath: str) -> str:
    """The device's real `net` directory: kernelpath and its net/ resolved (symlinks, '..')
    must stay under /sys/devices, so '/sys/devices/../class' cannot list every host link."""
    why = ""
    if "\0" in kernelpath or not kernelpath.startswith(SYS_DEVICES + "/"):
        why = f"must be absolute and begin with {SYS_DEVICES}/"
    else:
        top = os.path.realpath(SYS_DEVICES) + "/"
        real = os.path.realpath(kernelpath)
        net = os.path.realpath(os.path.join(real, "net"))
        if not (real + "/").startswith(top) or not net.startswith(top):
            why = f"resolves to {real}, outside {SYS_DEVICES}/"
        else:
            return net
    raise InvalidConfigError("invalid kernelpath", f"kernelpath {_short(kernelpath)} {why}")


def state_path(container_id: str, ifname: str) -> str:
    return os.path.join(STATE_DIR, f"{container_id}-{ifname}.json")


def save_state(container_id: str, ifname: str, state: dict) -> str:
    os.makedirs(STATE_DIR, mode=0o700, exist_ok=True)
    path = state_path(container_id, ifname)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        # the file name joins the two with '-' ('a-b'+'c' = 'a'+'b-c'): keep who owns it
        f.write(jsonx.dumps(dict(state, containerID=container_id, ifName=ifname)))
    os.replace(tmp, path)
    return path


def _read_state(container_id: str, ifname: str):
    """(state or None, whether the file belongs to another attachment)."""
    try:
        with open(state_path(container_id, ifname), "rb") as f:
            st = jsonx.loads(f.read())
    except (OSError, ValueError):
        return None, False
    if not isinstance(st, dict):
        return None, False
    if "containerID" in st and (st.get("containerID"), st.get("ifName")) != (container_id, ifname):
        return None, True
    return st, False


def load_state(container_id: str, ifname: str) -> dict | None:
    return _read_state(container_id, ifname)[0]


def drop_state(container_id: str, ifname: str) -> None:
    if _read_state(container_id, ifname)[1]:
        return                                   # another attachment's
    try:
        os.unlink(state_path(container_id, ifname))
    except FileNotFoundError:
        pass


def host_addrs(h, index: int) -> list:
    """The link's global addresses as 'ip/prefix' strings."""
    return [str(a) for a in global_addrs(h, index)]


def restore_on_host(h, index: int, state: dict) -> None:
    """Put back MTU, addresses and up-state recorded at ADD (best effort per item)."""
    from cni.log import warn  # lazy: an error path only
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
            h.addr_add(index, a, exist_ok=True)
        except (NetlinkError, ValueError) as exc:
            warn(f"host-device: restoring address {a} on {link.name}: {exc}")
