"""Find and execute plugins: CNI_PATH lookup, exec protocol, delegation (spec section 4)."""
from __future__ import annotations

import os

from cni.std import json as jsonx
from cni.errors import CNIError, InternalError, InvalidConfigError, from_dict

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
    raise InvalidConfigError(f"failed to find plugin {name!r} in path {list(paths)}",
                             "install it into a CNI_PATH directory")


def exec_plugin(path: str, stdin: bytes, env, timeout: float | None = DEFAULT_TIMEOUT, *,
                cancel=None) -> bytes:
    """Run a plugin; return stdout on success, raise CNIError carrying its code on failure.

    `cancel` (see proc.run) kills the plugin when set; proc.Cancelled is raised then.
    """
    from cni.std import process as proc
    try:
        rc, out, err = proc.run([path], stdin, env, timeout, cancel=cancel)
    except TimeoutError:
        raise InternalError(f"plugin {os.path.basename(path)} timed out",
                            f"no answer after {timeout} s") from None
    except OSError as exc:
        raise InternalError(f"cannot execute plugin {path}", str(exc)) from None
    if err:
        from cni.log import warn
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
    from cni.convert import from_json
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
             timeout: float | None = DEFAULT_TIMEOUT) -> bytes:
    """Run a delegate with our own environment and only CNI_COMMAND changed."""
    base = os.environ if env is None else env
    path = find_in_path(plugin, base.get("CNI_PATH", ""))
    child = dict(base)
    child["CNI_COMMAND"] = command
    module = embedded_module(plugin, path)
    if module is not None:
        return run_in_process(module, stdin, child)
    return exec_plugin(path, stdin, child, timeout)


def embedded_module(plugin: str, path: str) -> str | None:
    """The module to run `path` in-process, if our archive embeds the very same build.

    A zipapp that delegates (bridge -> host-local) may carry the delegate's code and
    its content hash; when the file found in CNI_PATH ends with the matching
    archive comment, it is that code, and running it here saves an interpreter start.
    """
    if os.environ.get("CNI_NO_INPROCESS") == "1":
        return None
    try:
        from _pycni_embed import EMBEDDED
    except ImportError:
        return None
    ent = EMBEDDED.get(plugin)
    if ent is None:
        return None
    want = f"pycni {plugin} {ent[1]}".encode()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        if size < len(want) or os.pread(fd, len(want), size - len(want)) != want:
            return None
    finally:
        os.close(fd)
    return ent[0]


def run_in_process(module: str, stdin: bytes, env) -> bytes:
    """Run an embedded plugin's skel dispatch as its exec would; errors keep their codes."""
    import io
    from cni import skel
    plugin = __import__(module).PLUGIN
    try:
        out = skel.dispatch(plugin, env, io.BytesIO(stdin))
    except CNIError:
        raise
    except RecursionError:
        raise InternalError("input nested too deeply") from None
    except Exception as exc:  # as the skel of an exec'd plugin reports it
        raise InternalError(str(exc) or type(exc).__name__, type(exc).__name__) from None
    return out.encode()


def delegate_add(plugin: str, stdin: bytes, **kw):
    return parse_result(delegate("ADD", plugin, stdin, **kw), _request_version(stdin))


def delegate_check(plugin: str, stdin: bytes, **kw) -> None:
    delegate("CHECK", plugin, stdin, **kw)


def delegate_del(plugin: str, stdin: bytes, **kw) -> None:
    delegate("DEL", plugin, stdin, **kw)


def delegate_status(plugin: str, stdin: bytes, **kw) -> None:
    delegate("STATUS", plugin, stdin, **kw)


def delegate_gc(plugin: str, stdin: bytes, **kw) -> None:
    delegate("GC", plugin, stdin, **kw)


__all__ = ["CNIError", "find_in_path", "exec_plugin", "parse_result", "delegate",
           "delegate_add", "delegate_check", "delegate_del", "delegate_status", "delegate_gc"]
