"""The runtime side of CNI (the Python counterpart of Go's libcni).

    from cni.runtime import CNIConfig, RuntimeConf, load
    net = load("/etc/cni/net.d", "mynet")
    cni = CNIConfig(["/opt/cni/bin"])
    rt = RuntimeConf("ctr-1", "/run/netns/ctr-1", "eth0",
                     capability_args={"portMappings": [...]})
    result = cni.add_network_list(net, rt)      # a cni.types.Result
    cni.check_network_list(net, rt)
    cni.del_network_list(net, rt)
    cni.gc_network_list(net, valid_attachments=[("ctr-2", "eth0")])
    cni.status_network_list(net)

Execution follows spec section 3: ADD runs the plugins in order threading
each result into the next request as prevResult and stops at the first
error; the final result is cached (libcni's format) only when every plugin
succeeded. DEL runs them in reverse, each with the cached result; unlike
libcni it does not stop at a failing or missing plugin (a later IPAM plugin
would leak its addresses), and reports the first error after trying all.
The cache file is removed after a successful DEL. Version selection picks
the highest of cniVersion/cniVersions that every plugin supports.

Like libcni, this class takes no locks: the caller serialises operations on
one container and keeps GC exclusive with ADD/DEL (spec section 3).
"""
from __future__ import annotations

import os

from cni import invoke, jsonx
from cni import version as _v
from cni.config import valid_id
from cni.convert import from_json, to_json
from cni.errors import (CNIError, IncompatibleVersionError, InternalError, InvalidConfigError,
                        InvalidEnvError, UnknownContainerError)
from cni.runtime import cache
from cni.runtime.conf import NetworkConfigList, PluginConf

DEFAULT_CACHE_DIR = cache.DEFAULT_DIR

_VERSION_CACHE: dict = {}  # (path, ino, size, mtime_ns) -> tuple of versions


class RuntimeConf:
    """Per-attachment parameters: container ID, netns path, interface name,
    CNI_ARGS pairs and capability arguments (filtered per plugin into runtimeConfig)."""
    __slots__ = ("container_id", "netns", "ifname", "args", "capability_args")

    def __init__(self, container_id: str = "", netns: str = "", ifname: str = "eth0", *,
                 args=None, capability_args: dict | None = None):
        self.container_id = container_id
        self.netns = netns
        self.ifname = ifname
        self.args = [(str(k), str(v)) for k, v in (args or ())]
        self.capability_args = dict(capability_args or {})

    def cni_args(self) -> str:
        return ";".join(f"{k}={v}" for k, v in self.args)

    def __repr__(self):
        return f"RuntimeConf({self.container_id!r}, {self.netns!r}, {self.ifname!r})"


def _wrap(exc: CNIError, plugin: PluginConf, verb: str) -> CNIError:
    desc = f'type="{plugin.type}"' + (f' name="{plugin.name}"' if plugin.name else "")
    new = exc.__class__(f"plugin {desc} failed ({verb}): {exc.msg}", exc.details, code=exc.code)
    return new


def _is_missing(exc: CNIError) -> bool:
    return isinstance(exc, InvalidConfigError) and exc.msg.startswith("failed to find plugin")


def decode_version_info(out: bytes) -> tuple:
    """supportedVersions from a VERSION answer (Go's PluginDecoder rules)."""
    try:
        obj = jsonx.loads(out)
    except ValueError as exc:
        raise InternalError("decoding version info", str(exc)) from None
    if not isinstance(obj, dict) or not isinstance(obj.get("cniVersion"), str) \
            or not obj.get("cniVersion"):
        raise InternalError("decoding version info", "missing field cniVersion")
    sv = obj.get("supportedVersions")
    if sv is None:
        if obj["cniVersion"] == "0.2.0":
            return ("0.1.0", "0.2.0")
        raise InternalError("decoding version info", "missing field supportedVersions")
    if not isinstance(sv, list) or not all(isinstance(x, str) for x in sv):
        raise InternalError("decoding version info", "supportedVersions must be strings")
    return tuple(sv)


class CNIConfig:
    """Runs network configurations: plugin search path, cache dir, exec timeout.

    `env` is the base environment for plugins (default: this process's);
    `exec_fn(path, stdin, env, timeout) -> stdout` may replace the real exec.
    """

    def __init__(self, path, *, cache_dir: str = DEFAULT_CACHE_DIR,
                 timeout: float | None = invoke.DEFAULT_TIMEOUT, env=None, exec_fn=None):
        if isinstance(path, str):
            path = [p for p in path.split(":") if p]
        self.path = list(path)
        self.cache_dir = cache_dir or DEFAULT_CACHE_DIR
        self.timeout = timeout
        self.env = env
        self.exec_fn = exec_fn or invoke.exec_plugin

    # ---- plumbing -------------------------------------------------------------------------

    def find(self, plugin_type: str) -> str:
        return invoke.find_in_path(plugin_type, self.path)

    def _env(self, command: str, rt: RuntimeConf | None) -> dict:
        env = dict(os.environ if self.env is None else self.env)
        env["CNI_COMMAND"] = command
        env["CNI_CONTAINERID"] = rt.container_id if rt else ""
        env["CNI_NETNS"] = rt.netns if rt else ""
        env["CNI_IFNAME"] = rt.ifname if rt else ""
        env["CNI_ARGS"] = rt.cni_args() if rt else ""
        env["CNI_PATH"] = ":".join(self.path)
        return env

    def _exec(self, path: str, command: str, stdin: bytes, rt: RuntimeConf | None) -> bytes:
        return self.exec_fn(path, stdin, self._env(command, rt), self.timeout)

    @staticmethod
    def request(net: NetworkConfigList, version: str, plugin: PluginConf, *,
                prev_result: dict | None = None, rt: RuntimeConf | None = None,
                inject: dict | None = None) -> bytes:
        """The stdin for one plugin (spec section 3, "Deriving request configuration")."""
        obj = dict(plugin.raw)
        obj.pop("capabilities", None)  # spec: the runtime must not send it
        obj.pop("prevResult", None)
        obj["name"] = net.name
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

    # ---- versions -------------------------------------------------------------------------

    def plugin_versions(self, plugin_type: str) -> tuple:
        """The spec versions a plugin reports with VERSION (cached per file and process)."""
        path = self.find(plugin_type)
        try:
            st = os.stat(path)
            key = (path, st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            key = None
        if key is not None and key in _VERSION_CACHE:
            return _VERSION_CACHE[key]
        env = dict(os.environ if self.env is None else self.env)
        env.update(CNI_COMMAND="VERSION", CNI_NETNS="dummy", CNI_IFNAME="dummy",
                   CNI_PATH="dummy", CNI_CONTAINERID="", CNI_ARGS="")
        try:
            out = self.exec_fn(path, b'{"cniVersion":"' + _v.CURRENT.encode() + b'"}', env,
                               self.timeout)
            versions = decode_version_info(out)
        except CNIError as exc:
            if exc.msg == "unknown CNI_COMMAND: VERSION":
                versions = ("0.1.0",)
            else:
                raise exc.__class__(f"plugin {plugin_type}: VERSION failed: {exc.msg}",
                                    exc.details, code=exc.code) from None
        if key is not None:
            _VERSION_CACHE[key] = versions
        return versions

    def select_version(self, net: NetworkConfigList) -> str:
        """The highest candidate version (cniVersion ∪ cniVersions) all plugins support.

        With a single candidate no plugin is asked. Plugins missing from the
        path are left out of the vote (the operation reports them).
        """
        cands = [c for c in net.cni_versions if c in _v.ALL] or list(net.cni_versions)
        if len(cands) <= 1:
            return cands[0] if cands else net.cni_version
        supported = {}
        for p in net.plugins:
            try:
                supported[p.type] = set(self.plugin_versions(p.type))
            except CNIError as exc:
                if _is_missing(exc):
                    continue
                raise
        for c in cands:
            if all(c in s for s in supported.values()):
                return c
        detail = "; ".join(f"{t}: {sorted(s, key=_v.parse)}" for t, s in supported.items())
        raise IncompatibleVersionError(
            f"no version of {cands} is supported by every plugin of network {net.name!r}",
            detail)

    def validate_network_list(self, net: NetworkConfigList) -> list:
        """Check every plugin exists and supports the selected version; return capabilities."""
        version = self.select_version(net) or "0.1.0"
        errs, caps = [], []
        for p in net.plugins:
            try:
                if version not in self.plugin_versions(p.type):
                    errs.append(f"plugin {p.type} does not support config version {version!r}")
            except CNIError as exc:
                errs.append(str(exc))
            caps.extend(c for c, on in p.capabilities.items() if on is True and c not in caps)
        if errs:
            raise IncompatibleVersionError("invalid network configuration", "; ".join(errs))
        return caps

    # ---- cache ----------------------------------------------------------------------------

    def _cached(self, net: NetworkConfigList, version: str, rt: RuntimeConf):
        """The cached ADD result as a dict in `version`, or None (raises on a bad file)."""
        try:
            obj = cache.read_result(self.cache_dir, net.name, rt.container_id, rt.ifname)
        except ValueError as exc:
            raise InternalError(f"failed to get network {net.name!r} cached result",
                                str(exc)) from None
        if obj is None:
            return None
        try:
            return to_json(from_json(obj, version), version)
        except CNIError as exc:
            raise exc.__class__(f"failed to convert cached result to config version {version!r}",
                                str(exc), code=exc.code) from None

    def cached_result(self, net: NetworkConfigList, rt: RuntimeConf):
        """The cached result of the last ADD (a Result in the network's version) or None."""
        version = self.select_version(net)
        obj = self._cached(net, version, rt)
        return from_json(obj, version) if obj is not None else None

    def cached_attachments(self, container_id: str = "") -> list:
        """Attachments in the cache (all, or only one container's)."""
        return cache.attachments(self.cache_dir, container_id)

    # ---- operations -----------------------------------------------------------------------

    def add_network_list(self, net: NetworkConfigList, rt: RuntimeConf):
        """ADD: plugins in order with prevResult threading; cache the final result."""
        if not rt.container_id:
            raise UnknownContainerError("missing containerID", "the container ID is empty")
        if not valid_id(rt.container_id):
            raise InvalidEnvError("invalid characters in containerID",
                                  f"{rt.container_id!r} must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$")
        from cni.config import check_name
        from cni.skel import valid_ifname
        check_name(net.name)
        why = valid_ifname(rt.ifname)
        if why:
            raise InvalidEnvError("invalid interface name", f"{rt.ifname!r}: {why}")
        version = self.select_version(net)
        prev, result = None, None
        for p in net.plugins:
            try:
                path = self.find(p.type)
                out = self._exec(path, "ADD", self.request(net, version, p, prev_result=prev,
                                                           rt=rt), rt)
                result = invoke.parse_result(out, version)
            except CNIError as exc:
                raise _wrap(exc, p, "add") from None
            prev = _result_dict(result, version)
        if result is None:
            raise InvalidConfigError("no plugin configs found", f"network {net.name!r}")
        try:
            cache.write(self.cache_dir, net.name, rt.container_id, rt.ifname, net.bytes,
                        netns=rt.netns, cni_args=rt.args, capability_args=rt.capability_args,
                        result=go_result_dict(result))
        except (OSError, ValueError) as exc:
            raise InternalError(f"failed to set network {net.name!r} cached result",
                                str(exc)) from None
        return result

    def check_network_list(self, net: NetworkConfigList, rt: RuntimeConf) -> None:
        """CHECK: plugins in order with the cached result; a no-op with disableCheck."""
        version = self.select_version(net)
        if not _v.has_check(version):
            raise IncompatibleVersionError(
                f"configuration version {version!r} does not support the CHECK command",
                "CHECK needs cniVersion 0.4.0 or later")
        if net.disable_check:
            return
        prev = self._cached(net, version, rt)
        for p in net.plugins:
            try:
                self._exec(self.find(p.type), "CHECK",
                           self.request(net, version, p, prev_result=prev, rt=rt), rt)
            except CNIError as exc:
                raise _wrap(exc, p, "check") from None

    def del_network_list(self, net: NetworkConfigList, rt: RuntimeConf) -> None:
        """DEL: plugins in reverse with the cached result; tries every plugin.

        A plugin missing from the path is skipped with a warning. The first
        error is raised after the others ran; the cache file is kept then.
        """
        from cni.log import warn
        version = self.select_version(net)
        prev = None
        if _v.has_check(version):  # prevResult on DEL since 0.4.0
            try:
                prev = self._cached(net, version, rt)
            except CNIError as exc:
                warn(f"network {net.name}: ignoring unusable cached result: {exc}")
                cache.delete(self.cache_dir, net.name, rt.container_id, rt.ifname)
        first = None
        for p in reversed(net.plugins):
            try:
                path = self.find(p.type)
            except CNIError as exc:
                if _is_missing(exc):
                    warn(f"network {net.name}: skipping DEL of missing plugin {p.type!r}: {exc}")
                    continue
                first = first or _wrap(exc, p, "delete")
                continue
            try:
                self._exec(path, "DEL", self.request(net, version, p, prev_result=prev, rt=rt),
                           rt)
            except CNIError as exc:
                if first is None:
                    first = _wrap(exc, p, "delete")
                else:
                    warn(f"network {net.name}: {_wrap(exc, p, 'delete')}")
        if first is not None:
            raise first
        if rt.container_id and rt.ifname:
            cache.delete(self.cache_dir, net.name, rt.container_id, rt.ifname)

    def gc_network_list(self, net: NetworkConfigList, valid_attachments=None) -> None:
        """GC: DEL every cached attachment of this network not in valid_attachments
        (None: none is valid), then GC each plugin (cniVersion >= 1.1.0).

        valid_attachments: iterable of (containerID, ifname). Errors are collected;
        the first is raised with the others in its details.
        """
        if net.disable_gc:
            return
        valid = None if valid_attachments is None else [(str(c), str(i))
                                                         for c, i in valid_attachments]
        vset = set(valid or ())
        errs = []
        for att in self.cached_attachments():
            if att.network != net.name or (att.container_id, att.ifname) in vset:
                continue
            rt = RuntimeConf(att.container_id, att.netns, att.ifname, args=att.cni_args,
                             capability_args=att.capability_args)
            try:
                self.del_network_list(net, rt)
            except CNIError as exc:
                errs.append(exc.__class__(f"failed to delete stale attachment {att.container_id}"
                                          f" {att.ifname}: {exc.msg}", exc.details,
                                          code=exc.code))
        version = self.select_version(net)
        if _v.has_gc(version):
            inject = None
            if valid is not None:
                lst = [{"containerID": c, "ifname": i} for c, i in valid]
                inject = {"cni.dev/valid-attachments": lst, "cni.dev/attachments": lst}
            for p in net.plugins:
                try:
                    self._exec(self.find(p.type), "GC",
                               self.request(net, version, p, inject=inject), None)
                except CNIError as exc:
                    errs.append(exc.__class__(f"failed to GC plugin {p.type}: {exc.msg}",
                                              exc.details, code=exc.code))
        if errs:
            first = errs[0]
            if len(errs) > 1:
                first.details = "; ".join(filter(None, [first.details] + [str(e) for e in
                                                                           errs[1:]]))
            raise first

    def status_network_list(self, net: NetworkConfigList) -> None:
        """STATUS: each plugin in order; the first error is raised with its code.
        A no-op for versions before 1.1.0."""
        version = self.select_version(net)
        if not _v.has_status(version):
            return
        for p in net.plugins:
            self._exec(self.find(p.type), "STATUS", self.request(net, version, p), None)

    # single-plugin networks (libcni's AddNetwork & co.): a one-plugin list is the same thing
    add_network = add_network_list
    check_network = check_network_list
    del_network = del_network_list


def _result_dict(result, version: str) -> dict:
    """A result as the next request's prevResult, in the list version when expressible."""
    try:
        return to_json(result, version)
    except CNIError:
        return to_json(result, result.cni_version)


def go_result_dict(result) -> dict:
    """The result as Go's struct marshalling writes it (the 1.x/0.x `dns` is never omitted)."""
    d = to_json(result, result.cni_version)
    d.setdefault("dns", {})
    return d
