"""The runtime library: load network configurations and run them (libcni for Python).

    from cni.runtime import CNIConfig, RuntimeConf, load
    cni = CNIConfig("/opt/cni/bin")                  # plugin dirs, as CNI_PATH
    net = load("/etc/cni/net.d", "mynet")            # a NetworkConfigList
    rt = RuntimeConf("ctr-1", "/run/netns/ctr-1", "eth0")
    result = cni.add_network_list(net, rt)           # a cni.types.Result

Loading (cni.runtime.conf): load(dir, name), load_all(dir), list_from_bytes,
list_from_conf, list_from_file for lists; conf_from_bytes, conf_from_file,
load_conf(dir, name) for single-plugin configurations (NetworkConfig).

CNIConfig(path, *, cache_dir, timeout, env, exec_fn, finder) runs them:
    add/check/del/gc/status_network_list(net, ...)   add/check/del_network(conf, rt)
    get_network_list_cached_result / _cached_config  get_network_cached_result / _config
    get_cached_attachments(container_id)             validate_network_list / validate_network
    get_version_info(type) -> VersionInfo            select_version(net)
Each operation takes `cancel=` (a Cancel, or a threading.Event): setting it kills
the running plugin and raises CancelledError. Errors are cni.errors.CNIError
subclasses carrying the spec's codes.
"""
from __future__ import annotations

from cni.runtime.cache import Attachment
from cni.runtime.conf import (NetworkConfig, NetworkConfigList, NoConfigsFoundError,
                              NotFoundError, PluginConf, conf_from_bytes, conf_from_file,
                              list_from_bytes, list_from_conf, list_from_file, load, load_all,
                              load_conf)
from cni.runtime.libcni import DEFAULT_CACHE_DIR, CNIConfig
from cni.runtime.plugins import Cancel, CancelledError, PathFinder, VersionInfo
from cni.runtime.request import RuntimeConf

__all__ = ["Attachment", "CNIConfig", "Cancel", "CancelledError", "DEFAULT_CACHE_DIR",
           "NetworkConfig", "NetworkConfigList", "NoConfigsFoundError", "NotFoundError",
           "PathFinder", "PluginConf", "RuntimeConf", "VersionInfo", "conf_from_bytes",
           "conf_from_file", "list_from_bytes", "list_from_conf", "list_from_file", "load",
           "load_all", "load_conf"]
