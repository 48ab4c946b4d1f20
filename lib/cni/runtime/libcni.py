"""The runtime side of CNI (the Python counterpart of Go's libcni).

    from cni.runtime import CNIConfig, RuntimeConf, load
    net = load("/etc/cni/net.d", "mynet")
    cni = CNIConfig(["/opt/cni/bin"])
    rt = RuntimeConf("ctr-1", "/run/netns/ctr-1", "eth0",
                     capability_args={"portMappings": [...]})
    result = cni.add_network_list(net, rt)      # a cni.types.Result
    cni.check_network_list(net, rt)
    cni.del_network_list(net, rt)
    cni.update_network_list(net, rt, {"portMappings": [...]})   # our extension
    cni.gc_network_list(net, valid_attachments=[("ctr-2", "eth0")])
    cni.status_network_list(net)
    with Cancel(timeout=30) as c:               # a deadline for a whole operation
        cni.del_network_list(net, rt, cancel=c)

Execution follows spec section 3: ADD runs the plugins in order threading
each result into the next request as prevResult and stops at the first
error; the final result is cached (libcni's format) only when every plugin
succeeded. DEL runs them in reverse, each with the cached result; unlike
libcni it does not stop at a failing or missing plugin (a later IPAM plugin
would leak its addresses), and reports the first error after trying all.
The cache file is removed after a successful DEL. Version selection picks
the highest of cniVersion/cniVersions that every plugin supports.

Single-plugin configurations (NetworkConfig, from a .conf file) have the
same operations without `_list`, as in libcni: no version negotiation, the
configuration's bytes cached as read, and DEL fails on an unreadable cache.

Like libcni, this class takes no locks: the caller serialises operations on
one container and keeps GC exclusive with ADD/DEL (spec section 3).
"""
from __future__ import annotations

import os

from cni import invoke
from cni import version as _v
from cni.convert import from_json
from cni.errors import CNIError, IncompatibleVersionError, InvalidConfigError
from cni.log import warn
from cni.runtime import cache, gc, plugins, request, results, update
from cni.runtime.conf import NetworkConfig, NetworkConfigList, PluginConf
from cni.runtime.plugins import (Cancel, CancelledError, PathFinder, VersionInfo, is_not_found,
                                 not_found, plugin_error)
from cni.runtime.request import RuntimeConf, check_attachment
from cni.types import Result

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

DEFAULT_CACHE_DIR = cache.DEFAULT_DIR

_VERSION_CACHE: dict = {}  # (path, ino, size, mtime_ns) -> VersionInfo


class CNIConfig:
    """Runs network configurations (libcni's CNIConfig).

    path:      plugin directories (a list, or a ':'-separated string); plugins
               find their delegates through it (CNI_PATH).
    cache_dir: where results are cached (libcni's format, shared with Go runtimes).
    timeout:   seconds one plugin execution may take (None: no limit).
    env:       the base environment of the plugins (default: this process's).
    finder:    `finder(plugin_type) -> path` to locate plugins (default:
               PathFinder(path)); a falsy return means "not found".
    exec_fn:   `exec_fn(path, stdin, env, timeout) -> stdout` replaces the real
               exec (it gets `cancel=` too when an operation has a token).

    Every operation takes an optional `cancel` token (Cancel, or a
    threading.Event) that kills the running plugin and raises CancelledError.
    Errors are CNIError subclasses carrying the spec's error codes.
    """

    def __init__(self, path: list[str] | str, *, cache_dir: str = DEFAULT_CACHE_DIR,
                 timeout: float | None = invoke.DEFAULT_TIMEOUT, env: dict | None = None,
                 exec_fn: Callable[..., bytes] | None = None,
                 finder: Callable[[str], str] | None = None):
        if isinstance(path, str):
            path = [p for p in path.split(":") if p]
        self.path = list(path)
        self.cache_dir = cache_dir or DEFAULT_CACHE_DIR
        self.timeout = timeout
        self.env = env
        self.exec_fn = exec_fn or invoke.exec_plugin
        self.finder = finder or PathFinder(self.path)

    # ---- plumbing -------------------------------------------------------------------------

    def find(self, plugin_type: str) -> str:
        """The executable for a plugin type, by the finder; InvalidConfigError if none."""
        path = self.finder(plugin_type)
        if not path:
            raise not_found(plugin_type, repr(self.path))
        return path

    def _env(self, command: str, rt: RuntimeConf | None) -> dict:
        return request.environ(os.environ if self.env is None else self.env, command, rt,
                               self.path)

    def _run(self, path: str, stdin: bytes, env: dict, cancel: Cancel | None) -> bytes:
        return plugins.run(self.exec_fn, path, stdin, env, self.timeout, cancel)

    def _exec(self, path: str, command: str, stdin: bytes, rt: RuntimeConf | None,
              cancel: Cancel | None = None) -> bytes:
        return self._run(path, stdin, self._env(command, rt), cancel)

    def _exec_result(self, path: str, command: str, net, version: str, plugin: PluginConf,
                     prev_result: dict | None, rt: RuntimeConf, cancel: Cancel | None) -> Result:
        """Run a command that answers with a result (ADD, UPDATE) and parse that result."""
        out = self._exec(path, command, self.request(net, version, plugin, prev_result=prev_result,
                                                     rt=rt), rt, cancel)
        return invoke.parse_result(out, version)

    @staticmethod
    def request(net: NetworkConfigList | NetworkConfig | str, version: str, plugin: PluginConf,
                *, prev_result: dict | None = None, rt: RuntimeConf | None = None,
                inject: dict | None = None) -> bytes:
        """The stdin for one plugin (see cni.runtime.request.build)."""
        return request.build(net if isinstance(net, str) else net.name, version, plugin,
                             prev_result=prev_result, rt=rt, inject=inject)

    # ---- versions -------------------------------------------------------------------------

    def get_version_info(self, plugin_type: str, *, cancel: Cancel | None = None) -> VersionInfo:
        """What a plugin answers to VERSION (libcni's GetVersionInfo); cached per
        executable file (path, inode, size, mtime) for the life of the process.
        A plugin that does not know VERSION supports 0.1.0 only."""
        path = self.find(plugin_type)
        try:
            st = os.stat(path)
            key = (path, st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            key = None
        if key is not None and key in _VERSION_CACHE:
            return _VERSION_CACHE[key]
        env = request.environ(os.environ if self.env is None else self.env, "VERSION", None,
                              ["dummy"])
        env.update(CNI_NETNS="dummy", CNI_IFNAME="dummy")
        info = plugins.probe_version(plugin_type, lambda stdin: self._run(path, stdin, env,
                                                                          cancel))
        if key is not None:
            _VERSION_CACHE[key] = info
        return info

    def plugin_versions(self, plugin_type: str, *, cancel: Cancel | None = None) -> tuple[str, ...]:
        """The spec versions a plugin supports (get_version_info's supported_versions)."""
        return self.get_version_info(plugin_type, cancel=cancel).supported_versions

    def select_version(self, net: NetworkConfigList, *, cancel: Cancel | None = None) -> str:
        """The highest candidate version (cniVersion and cniVersions) every plugin supports.

        With a single candidate no plugin is asked. Plugins missing from the
        path are left out of the vote (the operation reports them).
        """
        cands = [c for c in net.cni_versions if c in _v.ALL] or list(net.cni_versions)
        if len(cands) <= 1:
            return cands[0] if cands else net.cni_version
        supported = {}
        for p in net.plugins:
            try:
                supported[p.type] = set(self.plugin_versions(p.type, cancel=cancel))
            except CNIError as exc:
                if is_not_found(exc):
                    continue
                raise
        for c in cands:
            if all(c in s for s in supported.values()):
                return c
        detail = "; ".join(f"{t}: {sorted(s, key=_v.parse)}" for t, s in supported.items())
        raise IncompatibleVersionError(
            f"no version of {cands} is supported by every plugin of network {net.name!r}",
            detail)

    def _validate_plugin(self, plugin_type: str, version: str, cancel: Cancel | None) -> None:
        if not self.get_version_info(plugin_type, cancel=cancel).supports(version or "0.1.0"):
            raise IncompatibleVersionError(
                f"plugin {plugin_type} does not support config version {version or '0.1.0'!r}")

    def validate_network_list(self, net: NetworkConfigList, *,
                              cancel: Cancel | None = None) -> list[str]:
        """Check that every plugin exists and supports the version; return the
        capabilities the list declares (libcni's ValidateNetworkList)."""
        version = self.select_version(net, cancel=cancel)
        errs, caps = [], []
        for p in net.plugins:
            try:
                self._validate_plugin(p.type, version, cancel)
            except CancelledError:
                raise
            except CNIError as exc:
                errs.append(str(exc))
            caps.extend(c for c, on in p.capabilities.items() if on is True and c not in caps)
        if errs:
            raise IncompatibleVersionError("invalid network configuration", "; ".join(errs))
        return caps

    def validate_network(self, conf: NetworkConfig, *, cancel: Cancel | None = None) -> list[str]:
        """validate_network_list for a single-plugin configuration (ValidateNetwork)."""
        self._validate_plugin(conf.type, conf.cni_version, cancel)
        return [c for c, on in conf.capabilities.items() if on is True]

    # ---- cache ----------------------------------------------------------------------------

    def _cached(self, name: str, version: str, rt: RuntimeConf) -> dict | None:
        return results.cached_dict(self.cache_dir, name, version, rt)

    def _cached_result(self, name: str, version: str, rt: RuntimeConf) -> Result | None:
        obj = self._cached(name, version, rt)
        return from_json(obj, version) if obj is not None else None

    def _cache_add(self, name: str, config: bytes, rt: RuntimeConf, result: Result) -> None:
        results.store(self.cache_dir, name, config, rt, result)

    def get_network_list_cached_result(self, net: NetworkConfigList, rt: RuntimeConf, *,
                                       cancel: Cancel | None = None) -> Result | None:
        """The result of the last successful ADD of this attachment, converted to
        the list's version, or None (GetNetworkListCachedResult)."""
        return self._cached_result(net.name, self.select_version(net, cancel=cancel), rt)

    def get_network_list_cached_config(self, net: NetworkConfigList, rt: RuntimeConf) \
            -> tuple[bytes | None, RuntimeConf | None]:
        """(configuration bytes, RuntimeConf) as the last ADD cached them: `rt` with
        the cached CNI_ARGS and capability arguments, or (None, None) without a
        cache file (GetNetworkListCachedConfig)."""
        return results.cached_config(self.cache_dir, net.name, rt)

    def get_network_cached_result(self, conf: NetworkConfig, rt: RuntimeConf) -> Result | None:
        """get_network_list_cached_result for a single-plugin configuration."""
        return self._cached_result(conf.name, conf.cni_version, rt)

    def get_network_cached_config(self, conf: NetworkConfig, rt: RuntimeConf) \
            -> tuple[bytes | None, RuntimeConf | None]:
        """get_network_list_cached_config for a single-plugin configuration."""
        return results.cached_config(self.cache_dir, conf.name, rt)

    def get_cached_attachments(self, container_id: str = "") -> list[cache.Attachment]:
        """The cached attachments (of every network), all or one container's."""
        return cache.attachments(self.cache_dir, container_id)

    cached_result = get_network_list_cached_result  # the names of earlier releases
    cached_attachments = get_cached_attachments

    # ---- network lists --------------------------------------------------------------------

    def add_network_list(self, net: NetworkConfigList, rt: RuntimeConf, *,
                         cancel: Cancel | None = None) -> Result:
        """ADD: run the plugins in order, each with the previous one's result as
        prevResult; cache and return the last result. Stops at the first error
        (the caller then DELs the attachment); nothing is cached then."""
        check_attachment(net.name, rt)
        version = self.select_version(net, cancel=cancel)
        prev, result = None, None
        for p in net.plugins:
            try:
                result = self._exec_result(self.find(p.type), "ADD", net, version, p, prev, rt,
                                           cancel)
            except CNIError as exc:
                raise plugin_error(exc, p, "add") from None
            prev = results.as_prev(result, version)
        if result is None:
            raise InvalidConfigError("no plugin configs found", f"network {net.name!r}")
        self._cache_add(net.name, net.bytes, rt, result)
        return result

    def check_network_list(self, net: NetworkConfigList, rt: RuntimeConf, *,
                           cancel: Cancel | None = None) -> None:
        """CHECK: run the plugins in order with the cached result; stops at the
        first error. Needs version 0.4.0 or later; a no-op with disableCheck."""
        version = self.select_version(net, cancel=cancel)
        if not _v.has_check(version):
            raise IncompatibleVersionError(
                f"configuration version {version!r} does not support the CHECK command",
                "CHECK needs cniVersion 0.4.0 or later")
        if net.disable_check:
            return
        prev = self._cached(net.name, version, rt)
        for p in net.plugins:
            try:
                self._exec(self.find(p.type), "CHECK",
                           self.request(net, version, p, prev_result=prev, rt=rt), rt, cancel)
            except CNIError as exc:
                raise plugin_error(exc, p, "check") from None

    def del_network_list(self, net: NetworkConfigList, rt: RuntimeConf, *,
                         cancel: Cancel | None = None) -> None:
        """DEL: run the plugins in reverse with the cached result, then drop the cache.

        Unlike libcni every plugin is tried: one missing from the path is skipped
        with a warning, and the first error is raised after the others ran (the
        cache file is kept then). Cancelling stops at once.
        """
        version = self.select_version(net, cancel=cancel)
        prev = None
        if _v.has_check(version):  # prevResult on DEL since 0.4.0
            try:
                prev = self._cached(net.name, version, rt)
            except CNIError as exc:
                warn(f"network {net.name}: ignoring unusable cached result: {exc}")
                cache.delete(self.cache_dir, net.name, rt.container_id, rt.ifname)
        first = None
        for p in reversed(net.plugins):
            try:
                path = self.find(p.type)
            except CNIError as exc:
                if is_not_found(exc):
                    warn(f"network {net.name}: skipping DEL of missing plugin {p.type!r}: {exc}")
                    continue
                first = first or plugin_error(exc, p, "delete")
                continue
            try:
                self._exec(path, "DEL", self.request(net, version, p, prev_result=prev, rt=rt),
                           rt, cancel)
            except CancelledError as exc:
                raise plugin_error(exc, p, "delete") from None
            except CNIError as exc:
                if first is None:
                    first = plugin_error(exc, p, "delete")
                else:
                    warn(f"network {net.name}: {plugin_error(exc, p, 'delete')}")
        if first is not None:
            raise first
        if rt.container_id and rt.ifname:
            cache.delete(self.cache_dir, net.name, rt.container_id, rt.ifname)

    def update_network_list(self, net: NetworkConfigList, rt: RuntimeConf,
                            new_capability_args: dict | None = None, *,
                            cancel: Cancel | None = None) -> Result:
        """UPDATE (our extension): change a live attachment in place to `net` with
        `new_capability_args` (all of them: they replace the cached ones; None keeps
        those). Each plugin gets UPDATE, in order, with the cached result as prevResult;
        one that answers code 4 (it predates UPDATE) gets DEL with its cached config and
        capability args, then ADD. Refused (code 7) when the plugin types or the interface
        plugin's config/runtimeConfig differ from the cache (a new interface or address:
        DEL and ADD instead); code 3 without a cached attachment; cniVersion >= 1.0.0.
        The cache file is rewritten atomically with the new config, capability args and
        result once every plugin succeeded; an interrupted UPDATE is finished by repeating
        it (each plugin's UPDATE is idempotent) or undone by DEL. See cni.runtime.update."""
        return update.run(self, net, rt, new_capability_args, cancel)

    def gc_network_list(self, net: NetworkConfigList,
                        valid_attachments: Iterable[tuple[str, str]] | None = None, *,
                        cancel: Cancel | None = None) -> None:
        """GC: DEL every cached attachment of this network that is not in
        valid_attachments ((containerID, ifname) pairs; None: none is valid), then
        send GC to each plugin (cniVersion 1.1.0 or later). A no-op with disableGC.

        Errors are collected; the first is raised with the others in its details.
        """
        gc.run(self, net, valid_attachments, cancel)

    def status_network_list(self, net: NetworkConfigList, *, cancel: Cancel | None = None) -> None:
        """STATUS: ask each plugin in order whether it is ready for ADD; the first
        error is raised with its code (50: not available). A no-op before 1.1.0."""
        version = self.select_version(net, cancel=cancel)
        if not _v.has_status(version):
            return
        for p in net.plugins:
            self._exec(self.find(p.type), "STATUS", self.request(net, version, p), None, cancel)

    get_status_network_list = status_network_list  # libcni's name

    # ---- single-plugin configurations (libcni's AddNetwork & co.) -------------------------

    def add_network(self, conf: NetworkConfig, rt: RuntimeConf, *,
                    cancel: Cancel | None = None) -> Result:
        """ADD of one plugin configuration; its result is cached with `conf.bytes`."""
        check_attachment(conf.name, rt)
        result = self._exec_result(self.find(conf.type), "ADD", conf, conf.cni_version,
                                   conf.plugin, None, rt, cancel)
        self._cache_add(conf.name, conf.bytes, rt, result)
        return result

    def check_network(self, conf: NetworkConfig, rt: RuntimeConf, *,
                      cancel: Cancel | None = None) -> None:
        """CHECK of one plugin configuration with its cached result (0.4.0 or later)."""
        if not _v.has_check(conf.cni_version):
            raise IncompatibleVersionError(
                f"configuration version {conf.cni_version!r} does not support the CHECK"
                " command", "CHECK needs cniVersion 0.4.0 or later")
        prev = self._cached(conf.name, conf.cni_version, rt)
        self._exec(self.find(conf.type), "CHECK",
                   self.request(conf, conf.cni_version, conf.plugin, prev_result=prev, rt=rt),
                   rt, cancel)

    def del_network(self, conf: NetworkConfig, rt: RuntimeConf, *,
                    cancel: Cancel | None = None) -> None:
        """DEL of one plugin configuration with its cached result (0.4.0 or later),
        then drop the cache file. An unreadable cache file is an error here."""
        prev = self._cached(conf.name, conf.cni_version, rt) \
            if _v.has_check(conf.cni_version) else None
        self._exec(self.find(conf.type), "DEL",
                   self.request(conf, conf.cni_version, conf.plugin, prev_result=prev, rt=rt),
                   rt, cancel)
        if rt.container_id and rt.ifname:
            cache.delete(self.cache_dir, conf.name, rt.container_id, rt.ifname)

