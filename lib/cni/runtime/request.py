"""What one plugin execution gets from the runtime: the RuntimeConf of the attachment,
the checks made before ADD, the environment and the stdin (spec section 3,
"Deriving request configuration")."""
from __future__ import annotations

from cni.std import json as jsonx
from cni.cniargs import valid_id
from cni.config import check_name, valid_ifname
from cni.errors import InvalidEnvError, UnknownContainerError
from cni.runtime.conf import PluginConf

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


class RuntimeConf:
    """The per-attachment arguments of an operation (libcni's RuntimeConf).

    container_id, netns (a path) and ifname become CNI_CONTAINERID, CNI_NETNS
    and CNI_IFNAME; `args` is a list of (key, value) pairs sent as CNI_ARGS;
    `capability_args` maps capability names (portMappings, bandwidth, mac, ...)
    to values, each passed in `runtimeConfig` to the plugins that declare it.
    """
    __slots__ = ("container_id", "netns", "ifname", "args", "capability_args")

    def __init__(self, container_id: str = "", netns: str = "", ifname: str = "eth0", *,
                 args: Iterable[tuple[str, str]] | None = None,
                 capability_args: dict | None = None):
        self.container_id = container_id
        self.netns = netns
        self.ifname = ifname
        self.args = [(str(k), str(v)) for k, v in (args or ())]
        self.capability_args = dict(capability_args or {})

    def cni_args(self) -> str:
        """`args` in CNI_ARGS form: K1=V1;K2=V2."""
        return ";".join(f"{k}={v}" for k, v in self.args)

    def __eq__(self, other) -> bool:
        return isinstance(other, RuntimeConf) and all(
            getattr(self, a) == getattr(other, a) for a in self.__slots__)

    def __repr__(self) -> str:
        return f"RuntimeConf({self.container_id!r}, {self.netns!r}, {self.ifname!r})"


def check_attachment(network: str, rt: RuntimeConf) -> None:
    """The checks libcni makes before ADD: container ID, network name, interface name."""
    if not rt.container_id:
        raise UnknownContainerError("missing containerID", "the container ID is empty")
    if not valid_id(rt.container_id):
        raise InvalidEnvError("invalid characters in containerID",
                              f"{rt.container_id!r} must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    check_name(network)
    why = valid_ifname(rt.ifname)
    if why:
        raise InvalidEnvError("invalid interface name", f"{rt.ifname!r}: {why}")


def environ(base: Mapping[str, str], command: str, rt: RuntimeConf | None, path: list) -> dict:
    """The plugin's environment: `base` with the CNI_* variables of this call."""
    env = dict(base)
    env["CNI_COMMAND"] = command
    env["CNI_CONTAINERID"] = rt.container_id if rt else ""
    env["CNI_NETNS"] = rt.netns if rt else ""
    env["CNI_IFNAME"] = rt.ifname if rt else ""
    env["CNI_ARGS"] = rt.cni_args() if rt else ""
    env["CNI_PATH"] = ":".join(path)
    return env


def build(name: str, version: str, plugin: PluginConf, *, prev_result: dict | None = None,
          rt: RuntimeConf | None = None, inject: dict | None = None) -> bytes:
    """The stdin for one plugin: its object with the network's `name` and `version`,
    prevResult, and the runtimeConfig entries of the capabilities it declares as
    true; `capabilities` is dropped (the spec says the runtime must not send it)."""
    obj = dict(plugin.raw)
    obj.pop("capabilities", None)
    obj.pop("prevResult", None)
    obj["name"] = name
    obj["cniVersion"] = version
    if prev_result is not None:
        obj["prevResult"] = prev_result
    if rt is not None:
        rc = {cap: rt.capability_args[cap] for cap, on in plugin.capabilities.items()
              if on is True and cap in rt.capability_args}
        if rc:
            obj["runtimeConfig"] = rc
    if inject:
        obj.update(inject)
    return jsonx.dumps(obj).encode()
