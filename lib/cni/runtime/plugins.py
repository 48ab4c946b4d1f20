"""Finding and running plugins for the runtime: plugin finders, cancellation, VERSION probes.

The pieces CNIConfig is built from and a caller may replace: a *finder* maps a
plugin type to an executable (PathFinder searches directories as CNI_PATH
does; any callable `finder(plugin_type) -> path` will do), a *cancel* token
stops a running operation (Cancel, or a threading.Event), and VersionInfo is
what a plugin answers to VERSION.
"""
from __future__ import annotations

import os
import time

from cni import invoke
from cni.std import json as jsonx
from cni.std import process as proc
from cni import version as _v
from cni.errors import CNIError, InternalError, InvalidConfigError, PluginNotFoundError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from cni.runtime.conf import PluginConf

_PIPE_BYTE = b"x"


class PathFinder:
    """The default plugin finder: the first regular file named like the plugin type
    in `dirs`, searched in order (libcni's FindInPath).

    >>> PathFinder(["/opt/cni/bin"])("bridge")
    '/opt/cni/bin/bridge'
    """
    __slots__ = ("dirs",)

    def __init__(self, dirs: list[str] | str):
        if isinstance(dirs, str):
            dirs = [d for d in dirs.split(":") if d]
        self.dirs = list(dirs)

    def __call__(self, plugin_type: str) -> str:
        """The path of the plugin; InvalidConfigError (code 7) if it is not found."""
        return invoke.find_in_path(plugin_type, self.dirs)

    def __repr__(self) -> str:
        return f"PathFinder({self.dirs!r})"


def not_found(plugin_type: str, where: str) -> InvalidConfigError:
    """The error for a plugin no finder knows (the one that DEL skips with a warning)."""
    return PluginNotFoundError(f"failed to find plugin {plugin_type!r} in path {where}",
                               "install it into a CNI_PATH directory")


def is_not_found(exc: Exception) -> bool:
    """True if exc says that a plugin could not be found."""
    return isinstance(exc, PluginNotFoundError)


def plugin_error(exc: CNIError, plugin: PluginConf, verb: str) -> CNIError:
    """exc, of the same class and code, with the plugin and the verb in front of its message."""
    desc = f'type="{plugin.type}"' + (f' name="{plugin.name}"' if plugin.name else "")
    return exc.__class__(f"plugin {desc} failed ({verb}): {exc.msg}", exc.details, code=exc.code)


class CancelledError(InternalError):
    """An operation was cancelled (its Cancel was set or its deadline passed);
    the plugin that was running was killed. Code 999."""


class Cancel:
    """A cancellation token for CNIConfig operations (Go's context, for Python).

    Pass it as `cancel=` to any CNIConfig operation, then call cancel() from
    another thread or a signal handler: the running plugin is killed at once,
    no further plugin is started, and the operation raises CancelledError.
    With `timeout` (seconds) the token also cancels itself at that deadline,
    which bounds the whole operation, every plugin of a list included.

        with Cancel(timeout=30) as c:
            cni.add_network_list(net, rt, cancel=c)

    Cancelling an ADD leaves what the plugins already did: DEL the attachment.
    A threading.Event works as a token too (it is looked at every 50 ms).
    """
    __slots__ = ("deadline", "reason", "_set", "_r", "_w")

    def __init__(self, timeout: float | None = None):
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.reason = ""
        self._set = False
        self._r, self._w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)

    def cancel(self, reason: str = "cancelled") -> None:
        """Cancel now (idempotent; safe from another thread or a signal handler)."""
        if not self._set:
            self.reason = reason
            self._set = True
        try:
            os.write(self._w, _PIPE_BYTE)
        except OSError:  # the pipe is full (already readable) or closed
            pass

    def is_set(self) -> bool:
        """True once cancel() was called or the deadline has passed."""
        if not self._set and self.deadline is not None and time.monotonic() >= self.deadline:
            self.cancel("deadline exceeded")
        return self._set

    def remaining(self) -> float | None:
        """Seconds left before the deadline (0 when passed), or None without one."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def fileno(self) -> int:
        """A descriptor that becomes readable when the token is cancelled."""
        return self._r

    def close(self) -> None:
        """Release the token's pipe (also done when it is garbage-collected)."""
        for fd in (getattr(self, "_r", -1), getattr(self, "_w", -1)):  # __init__ may have failed
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._r = self._w = -1

    def __enter__(self) -> Cancel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        self.close()

    def __repr__(self) -> str:
        return f"Cancel(set={self._set}, remaining={self.remaining()})"


class VersionInfo:
    """A plugin's answer to VERSION (libcni's PluginInfo).

    `cni_version` is the version of the answer itself; `supported_versions`
    the spec versions the plugin accepts in a configuration.
    """
    __slots__ = ("cni_version", "supported_versions")

    def __init__(self, cni_version: str, supported_versions: tuple[str, ...]):
        self.cni_version = cni_version
        self.supported_versions = tuple(supported_versions)

    def supports(self, version: str) -> bool:
        """True if the plugin accepts configurations of this spec version."""
        return version in self.supported_versions

    def __eq__(self, other) -> bool:
        return isinstance(other, VersionInfo) and (self.cni_version, self.supported_versions) \
            == (other.cni_version, other.supported_versions)

    def __repr__(self) -> str:
        return f"VersionInfo({self.cni_version!r}, {self.supported_versions!r})"


def decode_version_info(out: bytes) -> VersionInfo:
    """Decode a VERSION answer by Go's PluginDecoder rules (a 0.2.0 answer
    without supportedVersions means 0.1.0 and 0.2.0)."""
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
            return VersionInfo("0.2.0", ("0.1.0", "0.2.0"))
        raise InternalError("decoding version info", "missing field supportedVersions")
    if not isinstance(sv, list) or not all(isinstance(x, str) for x in sv):
        raise InternalError("decoding version info", "supportedVersions must be strings")
    return VersionInfo(obj["cniVersion"], tuple(sv))


LEGACY_VERSION_INFO = VersionInfo("0.1.0", ("0.1.0",))  # a plugin that predates VERSION


def run(exec_fn: Callable[..., bytes], path: str, stdin: bytes, env: dict,
        timeout: float | None, cancel: Cancel | None) -> bytes:
    """One plugin execution by exec_fn, bounded by `timeout` and by the cancel token
    (and its deadline); CancelledError once the token is set."""
    if cancel is None:
        return exec_fn(path, stdin, env, timeout)
    what = f"plugin {os.path.basename(path)} ({env.get('CNI_COMMAND')})"
    left = getattr(cancel, "remaining", lambda: None)()
    if left is not None:
        timeout = left if timeout is None else min(timeout, left)
    try:
        if cancel.is_set():
            raise proc.Cancelled(what)
        return exec_fn(path, stdin, env, timeout, cancel=cancel)
    except (proc.Cancelled, CNIError) as exc:
        if isinstance(exc, CNIError) and not cancel.is_set():
            raise
        why = getattr(cancel, "reason", "") or "cancelled"
        raise CancelledError(f"{what} cancelled: {why}",
                             "the plugin was killed or not started") from None


def probe_version(plugin_type: str, run_stdin: Callable[[bytes], bytes]) -> VersionInfo:
    """Ask a plugin VERSION through run_stdin(stdin) -> stdout, as libcni does."""
    try:
        return decode_version_info(run_stdin(b'{"cniVersion":"' + _v.CURRENT.encode() + b'"}'))
    except CancelledError:
        raise
    except CNIError as exc:
        if exc.msg == "unknown CNI_COMMAND: VERSION":
            return LEGACY_VERSION_INFO
        raise exc.__class__(f"plugin {plugin_type}: VERSION failed: {exc.msg}", exc.details,
                            code=exc.code) from None
