"""Find and execute plugins: CNI_PATH lookup, exec protocol, delegation (spec section 4)."""
from __future__ import annotations

from cni import embed
from cni.errors import CNIError, InternalError, InvalidConfigError, PluginNotFoundError, from_dict
from cni.std import json as jsonx
from cni.std import oslite as os

DEFAULT_TIMEOUT = 60.0


def check_plugin_name(name) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidConfigError("no plugin name provided", "plugin type is empty")
    if "/" in name or "\\" in name or "\x00" in name or name in (".", "..") or len(name) > 255:
        raise InvalidConfigError("invalid plugin name", f"{name!r} must be a bare file name")
    return name


def find_in_path(name: str, paths) -> str:
    """The first regular file `name` in `paths` (a list, or a ':' string).

    As Go's FindInPath, an entry is used as given, so a relative one ("bin") is relative
    to the cwd. An empty entry or "." is skipped: in Go their join has no '/', so the
    exec looks the name up in PATH instead, never in the cwd; we do not run it at all.
    """
    check_plugin_name(name)
    if isinstance(paths, str):
        paths = paths.split(":")
    paths = [p for p in paths if p]
    if not paths:
        raise InvalidConfigError("no paths provided", f"cannot find plugin {name!r}: CNI_PATH is empty")
    for d in paths:
        if os.path.normpath(d) == ".":
            continue
        p = os.path.join(d, name)
        if os.path.isfile(p):
            return p
    raise PluginNotFoundError(f"failed to find plugin {name!r} in path {list(paths)}",
                              "install it into a CNI_PATH directory")


def exec_plugin(path: str, stdin: bytes, env, timeout: float | None = DEFAULT_TIMEOUT, *,
                cancel=None) -> bytes:
    """Run a plugin; return stdout on success, raise CNIError carrying its code on failure.

    `cancel` (see proc.run) kills the plugin when set; proc.Cancelled is raised then.
    """
    from cni.std import process as proc  # lazy: only the exec path (in-process delegation needs none)
    try:
        rc, out, err = proc.run([path], stdin, env, timeout, cancel=cancel)
    except TimeoutError:
        raise InternalError(f"plugin {os.path.basename(path)} timed out",
                            f"no answer after {timeout} s") from None
    except OSError as exc:
        raise InternalError(f"cannot execute plugin {path}", str(exc)) from None
    if err:
        from cni.log import warn  # lazy: only with a plugin's stderr
        if rc != 0 or os.environ.get("CNI_DEBUG") == "1":
            for line in err.decode("utf-8", "replace").splitlines():
                warn(f"{os.path.basename(path)}: {line}")
    if rc == 0:
        return out
    if not out.strip():
        if err.strip():
            raise InternalError(f"netplugin failed: {err.decode('utf-8', 'replace').strip()!r}",
                                f"exit status {rc}")
        raise InternalError("netplugin failed with no error message", f"exit status {rc}")
    try:
        obj = jsonx.loads(out)
        if not isinstance(obj, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        raise InternalError("netplugin failed but error parsing its diagnostic message",
                            f"{out[:512]!r}: {exc}") from None
    raise from_dict(obj)


def parse_result(out: bytes, version: str):
    """Decode a plugin's ADD output; a result without cniVersion gets the request's."""
    from cni.convert import from_json  # lazy: only an exec'd ADD has JSON to parse
    try:
        obj = jsonx.loads(out) if out.strip() else {}
    except ValueError as exc:
        raise InternalError("cannot decode plugin result", str(exc)) from None
    if obj is None:
        obj = {}
    if isinstance(obj, dict) and not obj.get("cniVersion"):
        obj["cniVersion"] = version
    return from_json(obj, version)


def _request_version(stdin: bytes) -> str:
    try:
        v = jsonx.loads(stdin).get("cniVersion", "")
        return v if isinstance(v, str) else ""
    except (ValueError, AttributeError):
        return ""


def delegate(command: str, plugin: str, stdin: bytes, *, env=None,
             timeout: float | None = DEFAULT_TIMEOUT):
    """Run a delegate with `env` (the caller's environment: skel.Args.environ, else ours)
    and only CNI_COMMAND changed. Returns its stdout, or, run in-process (cni.embed), the
    result object (ADD) or None."""
    base = os.environ if env is None else env
    path = find_in_path(plugin, base.get("CNI_PATH", ""))
    child = dict(base)
    child["CNI_COMMAND"] = command
    module = embed.module_for(plugin, path, child)
    if module is not None:
        return embed.run(module, stdin, child)
    return exec_plugin(path, stdin, child, timeout)


def delegate_add(plugin: str, stdin: bytes, **kw):
    out = delegate("ADD", plugin, stdin, **kw)
    if not isinstance(out, bytes):      # in-process: already the Result
        return out
    return parse_result(out, _request_version(stdin))


def delegate_check(plugin: str, stdin: bytes, **kw) -> None:
    delegate("CHECK", plugin, stdin, **kw)


def delegate_del(plugin: str, stdin: bytes, **kw) -> None:
    delegate("DEL", plugin, stdin, **kw)


def delegate_status(plugin: str, stdin: bytes, **kw) -> None:
    delegate("STATUS", plugin, stdin, **kw)


def delegate_gc(plugin: str, stdin: bytes, **kw) -> None:
    delegate("GC", plugin, stdin, **kw)


__all__ = ["CNIError", "PluginNotFoundError", "find_in_path", "exec_plugin", "parse_result", "delegate",
           "delegate_add", "delegate_check", "delegate_del", "delegate_status", "delegate_gc"]
