"""UPDATE of a live attachment (our extension of the spec; see README "UPDATE: our extension").

CNIConfig.update_network_list() calls run(): each plugin of the list, in order, gets
CNI_COMMAND=UPDATE with its new configuration, the attachment's new runtimeConfig and, as
prevResult, the cached result (the first plugin) or the previous plugin's new result. A plugin
that answers code 4 (unknown command: every plugin that predates UPDATE, such as the Go
reference plugins) is updated by DEL (old config, old capability args, cached result) then ADD
(new config). The first plugin, which made the interface, is never deleted: its configuration
must not change (refuse_interface_change), and a code 4 from it keeps its cached result.
The cache file is rewritten (atomically) only when every plugin succeeded.
"""
from __future__ import annotations

from cni import version as _v
from cni.convert import from_json
from cni.errors import (CNIError, IncompatibleVersionError, InvalidConfigError, InvalidEnvError,
                        UnknownContainerError)
from cni.runtime.conf import NetworkConfigList, list_from_bytes, list_from_conf
from cni.runtime import results
from cni.runtime.plugins import CancelledError, plugin_error
from cni.runtime.request import RuntimeConf, check_attachment

MIN_VERSION = "1.0.0"
UNKNOWN_COMMAND = InvalidEnvError.code   # what skel answers to a CNI_COMMAND it does not know


def _first_plugin_view(net: NetworkConfigList, rt: RuntimeConf) -> tuple:
    """What the interface plugin (the first) is given: its config and its runtimeConfig."""
    p = net.plugins[0]
    caps = {c: rt.capability_args.get(c) for c, on in p.capabilities.items()
            if on is True and c in rt.capability_args}
    return p.raw, caps


def refuse_interface_change(old: NetworkConfigList, new: NetworkConfigList,
                            old_rt: RuntimeConf, new_rt: RuntimeConf) -> None:
    """The rule for "would need a new interface or address" (code 7 when broken): the plugin
    list keeps its types in the same order, and the first plugin (the interface plugin with
    its ipam section) gets the same configuration and the same runtimeConfig (ips, mac,
    ...) as when the attachment was added. Everything else may change."""
    if [p.type for p in old.plugins] != [p.type for p in new.plugins]:
        raise InvalidConfigError("UPDATE cannot add, remove or reorder plugins",
                                 f"{[p.type for p in old.plugins]} -> {[p.type for p in new.plugins]}"
                                 "; DEL and ADD the attachment")
    if _first_plugin_view(old, old_rt) != _first_plugin_view(new, new_rt):
        raise InvalidConfigError(
            f"UPDATE cannot change the interface plugin {new.plugins[0].type!r}",
            "its configuration or runtimeConfig differs from the cached one; a new interface "
            "or address needs DEL and ADD")


def _cached_list(data: bytes, name: str) -> NetworkConfigList:
    try:
        return list_from_bytes(data, "cache") if b'"plugins"' in data else list_from_conf(data, "cache")
    except CNIError as exc:
        raise InvalidConfigError(f"cached config of network {name!r} is unusable",
                                 str(exc)) from None


def run(cfg, net: NetworkConfigList, rt: RuntimeConf, new_capability_args: dict | None,
        cancel=None):
    """The body of CNIConfig.update_network_list (cfg is the CNIConfig)."""
    check_attachment(net.name, rt)
    version = cfg.select_version(net, cancel=cancel)
    if not _v.ge(version or "0.1.0", MIN_VERSION):
        raise IncompatibleVersionError(f"configuration version {version!r} does not allow UPDATE",
                                       f"UPDATE needs cniVersion {MIN_VERSION} or later")
    old_bytes, old_rt = cfg.get_network_list_cached_config(net, rt)
    cached = None if old_bytes is None else results.cached_dict(cfg.cache_dir, net.name, version,
                                                                 rt)
    if old_bytes is None or cached is None:
        raise UnknownContainerError(
            f"no cached attachment of network {net.name!r} to update",
            f"container {rt.container_id!r} interface {rt.ifname!r}: ADD it first")
    old = _cached_list(old_bytes, net.name)
    caps = old_rt.capability_args if new_capability_args is None else new_capability_args
    new_rt = RuntimeConf(rt.container_id, rt.netns, rt.ifname, args=rt.args, capability_args=caps)
    refuse_interface_change(old, net, old_rt, new_rt)
    prev, result = cached, None
    for i, p in enumerate(net.plugins):
        try:
            path = cfg.find(p.type)
            try:
                result = cfg._exec_result(path, "UPDATE", net, version, p, prev, new_rt, cancel)
            except CancelledError:
                raise
            except CNIError as exc:
                if exc.code != UNKNOWN_COMMAND:
                    raise
                if i == 0:      # unchanged interface plugin without UPDATE: nothing to redo
                    result = from_json(prev, version)
                else:
                    cfg._exec(path, "DEL", cfg.request(net.name, version, old.plugins[i],
                                                       prev_result=cached, rt=old_rt), old_rt, cancel)
                    result = cfg._exec_result(path, "ADD", net, version, p, prev, new_rt, cancel)
        except CNIError as exc:
            raise plugin_error(exc, p, "update") from None
        prev = results.as_prev(result, version)
    results.store(cfg.cache_dir, net.name, net.bytes, new_rt, result)
    return result


__all__ = ["run", "refuse_interface_change", "MIN_VERSION"]
