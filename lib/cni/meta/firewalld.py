"""firewalld over D-Bus (org.fedoraproject.FirewallD1): zone sources for container addresses."""
from __future__ import annotations

from cni.errors import CNIError
from cni.std import oslite as os

NAME = "org.fedoraproject.FirewallD1"
PATH = "/org/fedoraproject/FirewallD1"
ZONE_IFACE = NAME + ".zone"
ZONE_ALREADY_SET = "ZONE_ALREADY_SET"


def _bus_socket_absent() -> bool:
    """Cheap pre-check: the default system bus socket does not exist (no import, no connect)."""
    addr = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS", "")
    if addr:
        return False
    return not os.path.exists("/run/dbus/system_bus_socket")


def connect(address: str | None = None):
    from cni import dbus  # lazy: the D-Bus client (socket) only for the firewalld backend
    return dbus.Connection(address)


def is_running(address: str | None = None) -> bool:
    """True when the bus answers GetNameOwner for firewalld (as Go isFirewalldRunning)."""
    if address is None and _bus_socket_absent():
        return False
    from cni import dbus  # lazy: the D-Bus client (socket) only for the firewalld backend
    try:
        with dbus.Connection(address, timeout=2.0) as c:
            c.call(dbus.BUS_NAME, dbus.BUS_PATH, dbus.BUS_NAME, "GetNameOwner", "s", [NAME])
        return True
    except OSError:
        return False


def source(ip) -> str:
    ip = getattr(ip, "ip", ip)
    return f"{ip}/{ip.max_prefixlen}"


def _zone_call(conn, member: str, zone: str, ip):
    return conn.call(NAME, PATH, ZONE_IFACE, member, "ss", [zone, source(ip)])


def _connect(address):
    from cni import dbus  # lazy: the D-Bus client (socket) only for the firewalld backend
    try:
        return dbus.Connection(address)
    except OSError as exc:
        raise CNIError("cannot connect to firewalld over D-Bus", str(exc)) from None


def add(ips, zone: str, address: str | None = None) -> None:
    from cni import dbus  # lazy: the D-Bus client (socket) only for the firewalld backend
    with _connect(address) as conn:
        for ip in ips:
            try:
                _zone_call(conn, "addSource", zone, ip)
            except dbus.DBusError as exc:
                if ZONE_ALREADY_SET not in str(exc):
                    raise CNIError(f"failed to add the address {source(ip)} to {zone} zone",
                                   str(exc)) from None


def delete(ips, zone: str, address: str | None = None) -> None:
    """removeSource for each address; every error is ignored (as Go)."""
    from cni import dbus  # lazy: the D-Bus client (socket) only for the firewalld backend
    try:
        conn = dbus.Connection(address)
    except OSError:
        return
    with conn:
        for ip in ips:
            try:
                _zone_call(conn, "removeSource", zone, ip)
            except OSError:
                pass


def check(ips, zone: str, address: str | None = None) -> None:
    from cni import dbus  # lazy: the D-Bus client (socket) only for the firewalld backend
    with _connect(address) as conn:
        for ip in ips:
            try:
                found = _zone_call(conn, "querySource", zone, ip)
            except dbus.DBusError as exc:
                raise CNIError(f"failed to find the address {source(ip)} in {zone} zone",
                               str(exc)) from None
            if not (found and found[0] is True):
                raise CNIError(f"address {source(ip)} is not in {zone} zone", "querySource: false")
