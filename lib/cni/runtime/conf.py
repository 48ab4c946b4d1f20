"""Loading network configurations, as libcni's conf.go does.

A directory holds `.conflist` files (network configuration lists) and the
older single-plugin `.conf`/`.json` files. Lookup by name reads the
conflists in lexical order first, then the single-plugin files; the first
network with the name wins. A single-plugin file becomes a one-plugin list.
Unless `loadOnlyInlinedPlugins` is true, plugin objects found in
`<dir>/<network name>/*.conf` are appended after the inline ones.
"""
from __future__ import annotations

import os

from cni.std import json as jsonx
from cni import version as _v
from cni.config import check_name
from cni.errors import CNIError, DecodingError, InvalidConfigError

LIST_EXTS = (".conflist",)
CONF_EXTS = (".conf", ".json")


class NotFoundError(InvalidConfigError):
    """No network of that name in the directory."""


class NoConfigsFoundError(InvalidConfigError):
    """The directory holds no configuration files at all."""


class PluginConf:
    """One plugin object: its `type`, declared capabilities and the raw object."""
    __slots__ = ("type", "name", "capabilities", "raw", "source")

    def __init__(self, raw: dict, source: str = ""):
        self.raw = raw
        self.source = source
        self.type = raw.get("type")
        self.name = raw.get("name") if isinstance(raw.get("name"), str) else ""
        caps = raw.get("capabilities")
        self.capabilities = caps if isinstance(caps, dict) else {}

    def __repr__(self):
        return f"PluginConf({self.type!r})"


class NetworkConfigList:
    """A network configuration (list): name, versions, flags and plugins.

    `bytes` is the configuration as read (what the cache stores); `cni_versions`
    holds the candidate versions (cniVersion plus cniVersions), highest first.
    """
    __slots__ = ("name", "cni_version", "cni_versions", "disable_check", "disable_gc",
                 "load_only_inlined_plugins", "plugins", "bytes", "source", "raw")

    def __init__(self, name: str, cni_version: str, plugins, *, cni_versions=None,
                 disable_check: bool = False, disable_gc: bool = False,
                 load_only_inlined_plugins: bool = False, bytes_: bytes = b"",
                 source: str = "", raw: dict | None = None):
        self.name = name
        self.cni_version = cni_version
        self.cni_versions = list(cni_versions) if cni_versions else [cni_version]
        self.disable_check = disable_check
        self.disable_gc = disable_gc
        self.load_only_inlined_plugins = load_only_inlined_plugins
        self.plugins = list(plugins)
        self.bytes = bytes_
        self.source = source
        self.raw = raw if raw is not None else {}

    def __repr__(self):
        return (f"NetworkConfigList({self.name!r}, {self.cni_version!r},"
                f" {[p.type for p in self.plugins]!r})")


class NetworkConfig:
    """One plugin's configuration on its own, as a `.conf` file holds it
    (libcni's NetworkConfig): what CNIConfig.add_network & co. take.

    `bytes` is the configuration as read (what the cache stores); `plugin` its
    PluginConf; `name` and `cni_version` come from the object itself.
    """
    __slots__ = ("name", "cni_version", "plugin", "bytes", "source")

    def __init__(self, name: str, cni_version: str, plugin: PluginConf, *, bytes_: bytes = b"",
                 source: str = ""):
        self.name = name
        self.cni_version = cni_version
        self.plugin = plugin
        self.bytes = bytes_
        self.source = source

    @property
    def type(self) -> str:
        """The plugin type (the executable's name)."""
        return self.plugin.type

    @property
    def capabilities(self) -> dict:
        """The capabilities the configuration declares (name -> enabled)."""
        return self.plugin.capabilities

    def to_list(self) -> NetworkConfigList:
        """The same network as a one-plugin list (libcni's ConfListFromConf)."""
        return list_from_conf(self.bytes, self.source)

    def __repr__(self) -> str:
        return f"NetworkConfig({self.name!r}, {self.cni_version!r}, {self.type!r})"


def _flag(obj: dict, key: str) -> bool:
    v = obj.get(key, False)
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    raise InvalidConfigError("invalid network config", f"{key} must be a boolean, got {v!r}")


def _decode(data: bytes, what: str) -> dict:
    try:
        obj = jsonx.loads(data)
    except ValueError as exc:
        raise DecodingError(f"error parsing {what}", str(exc)) from None
    if not isinstance(obj, dict):
        raise DecodingError(f"error parsing {what}", "the configuration must be a JSON object")
    return obj


def plugin_from_dict(obj, source: str = "") -> PluginConf:
    """Validate one plugin object: a bare `type` name and boolean capabilities."""
    if not isinstance(obj, dict):
        raise InvalidConfigError("invalid plugin config", f"{source}: a plugin must be an object")
    t = obj.get("type")
    if not isinstance(t, str) or not t:
        raise InvalidConfigError("invalid plugin config", f"{source}: plugin has no \"type\"")
    if "/" in t or "\\" in t or ".." in t or "\x00" in t or t == ".":
        raise InvalidConfigError("invalid plugin type",
                                 f"{source}: type {t!r} must be a bare file name")
    caps = obj.get("capabilities")
    if caps is not None:
        if not isinstance(caps, dict) or not all(isinstance(v, bool) for v in caps.values()):
            raise InvalidConfigError("invalid plugin config",
                                     f"{source}: capabilities must map names to booleans")
    return PluginConf(obj, source)


def _single_version(obj: dict) -> str:
    """A single-plugin conf's cniVersion ('' when absent or empty), checked."""
    ver = obj.get("cniVersion") or ""
    if not isinstance(ver, str):
        raise InvalidConfigError("invalid network config", "cniVersion must be a string")
    if ver:
        _v.parse(ver)
    return ver


def _versions(obj: dict) -> tuple:
    """(cniVersion, [candidates highest first]) from cniVersion and cniVersions."""
    ver = obj.get("cniVersion", "")
    if ver is None:
        ver = ""
    if not isinstance(ver, str):
        raise InvalidConfigError("invalid network config", "cniVersion must be a string")
    cands = []
    if ver:
        _v.parse(ver)
        cands.append(ver)
    more = obj.get("cniVersions")
    if more is not None:
        if not isinstance(more, list) or not all(isinstance(x, str) for x in more):
            raise InvalidConfigError("invalid network config",
                                     "cniVersions must be a list of strings")
        for x in more:
            if _v.parse(x) > _v.parse(_v.CURRENT):
                continue  # newer than this library: not a candidate
            if x not in cands:
                cands.append(x)
    cands.sort(key=_v.parse, reverse=True)
    if not cands:
        cands = [ver]
    return (cands[0] if more else ver), cands


def list_from_bytes(data: bytes, source: str = "") -> NetworkConfigList:
    """Parse a network configuration list (inline plugins only)."""
    obj = _decode(data, f"network config {source}".strip())
    name = obj.get("name")
    if not isinstance(name, str):
        raise InvalidConfigError("invalid network config", f"{source}: missing or bad \"name\"")
    check_name(name)
    ver, cands = _versions(obj)
    only_inline = _flag(obj, "loadOnlyInlinedPlugins")
    plugins = []
    raw_plugins = obj.get("plugins")
    if raw_plugins is None:
        if only_inline:
            raise InvalidConfigError("invalid network config", f"{source}: no \"plugins\" key"
                                     " while loadOnlyInlinedPlugins is true")
    elif not isinstance(raw_plugins, list) or not raw_plugins:
        raise InvalidConfigError("invalid network config",
                                 f"{source}: \"plugins\" must be a non-empty list")
    else:
        plugins = [plugin_from_dict(p, f"{source} plugins[{i}]")
                   for i, p in enumerate(raw_plugins)]
    return NetworkConfigList(name, ver, plugins, cni_versions=cands,
                             disable_check=_flag(obj, "disableCheck"),
                             disable_gc=_flag(obj, "disableGC"),
                             load_only_inlined_plugins=only_inline, bytes_=bytes(data),
                             source=source, raw=obj)


def list_from_conf(data: bytes, source: str = "") -> NetworkConfigList:
    """A single-plugin conf wrapped as a list (libcni's ConfListFromConf)."""
    obj = _decode(data, f"network config {source}".strip())
    plugin = plugin_from_dict(obj, source)
    name = obj.get("name")
    if not isinstance(name, str):
        raise InvalidConfigError("invalid network config", f"{source}: missing or bad \"name\"")
    check_name(name)
    ver = _single_version(obj)
    wrapped = jsonx.dumps({"name": name, "cniVersion": ver, "plugins": [obj]}, go=True).encode()
    return NetworkConfigList(name, ver, [plugin], bytes_=wrapped, source=source,
                             raw={"name": name, "cniVersion": ver, "plugins": [obj]})


def conf_from_bytes(data: bytes, source: str = "") -> NetworkConfig:
    """Parse a single-plugin configuration (libcni's ConfFromBytes)."""
    obj = _decode(data, f"network config {source}".strip())
    plugin = plugin_from_dict(obj, source)
    name = obj.get("name", "")
    if not isinstance(name, str):
        raise InvalidConfigError("invalid network config", f"{source}: \"name\" must be a string")
    if name:
        check_name(name)
    ver = _single_version(obj)
    return NetworkConfig(name, ver, plugin, bytes_=bytes(data), source=source)


def conf_from_file(filename: str) -> NetworkConfig:
    """Read a single-plugin `.conf`/`.json` file (libcni's ConfFromFile)."""
    with open(filename, "rb") as f:
        return conf_from_bytes(f.read(), filename)


def load_conf(dirname: str, name: str) -> NetworkConfig:
    """The single-plugin network called `name` among dirname's `.conf`/`.json` files
    (libcni's LoadConf); conflists are not looked at."""
    files = conf_files(dirname, CONF_EXTS)
    if not files:
        raise NoConfigsFoundError("no net configurations found", f"in {dirname}")
    conf = _named(files, name, conf_from_file)
    if conf is None:
        raise _not_found(name, dirname, "check the file's \"name\"")
    return conf


def sibling_plugins(dirname: str, network: str) -> list:
    """Plugin objects from `<dirname>/<network>/*.conf`, sorted by file name."""
    d = os.path.join(dirname, network)
    out = []
    for fn in conf_files(d, (".conf",)):
        with open(fn, "rb") as f:
            out.append(plugin_from_dict(_decode(f.read(), fn), fn))
    return out


def list_from_file(filename: str) -> NetworkConfigList:
    """Read a .conflist (or a .conf/.json, wrapped) with its sibling-folder plugins."""
    with open(filename, "rb") as f:
        data = f.read()
    if filename.endswith(LIST_EXTS):
        net = list_from_bytes(data, filename)
        if not net.load_only_inlined_plugins:
            net.plugins.extend(sibling_plugins(os.path.dirname(filename), net.name))
    else:
        net = list_from_conf(data, filename)
    if not net.plugins:
        raise InvalidConfigError("no plugin configs found", f"{filename}: network {net.name!r}")
    return net


def conf_files(dirname: str, exts) -> list:
    """Regular files in dirname (not recursive) whose extension is in exts, sorted."""
    try:
        names = sorted(os.listdir(dirname))
    except (FileNotFoundError, NotADirectoryError):
        return []
    out = []
    for n in names:
        p = os.path.join(dirname, n)
        if os.path.splitext(n)[1] in exts and os.path.isfile(p):
            out.append(p)
    return out


def load(dirname: str, name: str) -> NetworkConfigList:
    """The network called `name` (libcni's LoadNetworkConf / LoadConfList)."""
    files = conf_files(dirname, LIST_EXTS)
    net = _named(files, name, list_from_file)
    if net is not None:
        return net
    singles = conf_files(dirname, CONF_EXTS)
    if not files and not singles:
        raise NoConfigsFoundError("no net configurations found", f"in {dirname}")
    net = _named(singles, name, list_from_file)
    if net is None:
        raise _not_found(name, dirname, "check NETCONFPATH and the network's \"name\"")
    return net


def _named(files: list, name: str, read):
    """The first of `files`, read by `read`, whose name is `name`; None if none is."""
    for fn in files:
        net = read(fn)
        if net.name == name:
            return net
    return None


def _not_found(name: str, dirname: str, hint: str) -> NotFoundError:
    return NotFoundError(f"no net configuration with name \"{name}\" in {dirname}", hint)


def load_all(dirname: str, *, errors: list | None = None) -> list:
    """Every network in dirname, in lookup order; a name seen earlier shadows later ones.

    A file that fails to load raises, or with `errors` given is skipped and
    recorded there as (filename, CNIError).
    """
    out, seen = [], set()
    for fn in conf_files(dirname, LIST_EXTS) + conf_files(dirname, CONF_EXTS):
        try:
            net = list_from_file(fn)
        except (CNIError, OSError) as exc:
            if errors is None:
                raise
            errors.append((fn, exc))
            continue
        if net.name not in seen:
            seen.add(net.name)
            out.append(net)
    return out
