"""The runtime library: load network configurations and run them (libcni for Python).

Public API:
    load(dirname, name) -> NetworkConfigList       load_all(dirname) -> [NetworkConfigList]
    list_from_bytes(data) / list_from_conf(data) / list_from_file(filename)
    CNIConfig(path, *, cache_dir, timeout, env, exec_fn)
        .add_network_list(net, rt) -> Result   .check_network_list(net, rt)
        .del_network_list(net, rt)             .gc_network_list(net, valid_attachments=None)
        .status_network_list(net)              .select_version(net) -> str
        .plugin_versions(type) -> tuple        .validate_network_list(net) -> [capability]
        .cached_result(net, rt) -> Result|None .cached_attachments(container_id="")
    RuntimeConf(container_id, netns, ifname="eth0", *, args=[(k, v)], capability_args={})
"""
from __future__ import annotations

from cni.runtime.cache import Attachment
from cni.runtime.conf import (NetworkConfigList, NoConfigsFoundError, NotFoundError, PluginConf,
                              list_from_bytes, list_from_conf, list_from_file, load, load_all)
from cni.runtime.libcni import DEFAULT_CACHE_DIR, CNIConfig, RuntimeConf

__all__ = ["Attachment", "CNIConfig", "DEFAULT_CACHE_DIR", "NetworkConfigList",
           "NoConfigsFoundError", "NotFoundError", "PluginConf", "RuntimeConf",
           "list_from_bytes", "list_from_conf", "list_from_file", "load", "load_all"]

