"""Plugin skeleton: environment -> config -> handler -> JSON on stdout + exit code.

A plugin declares `PLUGIN = skel.Plugin(...)` and calls `skel.run(PLUGIN)`.
Only this module (and cnitool) writes to stdout.
"""
from __future__ import annotations

import os
import sys

from cni import jsonx
from cni import version as _v
from cni.errors import (CNIError, DecodingError, IncompatibleVersionError, InternalError,
                        InvalidEnvError, InvalidNetNSError, IOFailureError)

STDIN_LIMIT = 4 << 20
COMMANDS = ("ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION")
# var -> commands that require it (commands that merely accept it are not listed)
ENV_TABLE = (
    ("CNI_COMMAND", COMMANDS),
    ("CNI_CONTAINERID", ("ADD", "DEL", "CHECK")),
    ("CNI_NETNS", ("ADD", "CHECK")),
    ("CNI_IFNAME", ("ADD", "DEL", "CHECK")),
    ("CNI_PATH", ("GC",)),
)
MIN_VERSION = {"CHECK": "0.4.0", "STATUS": "1.1.0", "GC": "1.1.0"}
_IFNAME_BAD = frozenset("/:\x00") | frozenset(" \t\n\r\v\f\x1c\x1d\x1e\x1f\x85\xa0")


class Plugin:
    __slots__ = ("name", "config", "add", "delete", "check", "status", "gc", "versions", "about")

    def __init__(self, name: str, config, *, add=None, delete=None, check=None, status=None,
                 gc=None, versions=_v.ALL, about: str = ""):
        self.name = name
        self.config = config
        self.add, self.delete, self.check, self.status, self.gc = add, delete, check, status, gc
        self.versions = tuple(versions)
        self.about = about or f"CNI {name} plugin (pycni {_about_version()})"


def _about_version() -> str:
    from cni import __version__
    return __version__


class Args:
    """What the runtime passed in the environment and on stdin."""
    __slots__ = ("command", "container_id", "netns", "ifname", "args", "path", "stdin",
                 "netns_override", "environ")

    def __init__(self, command: str = "", container_id: str = "", netns: str = "",
                 ifname: str = "", args: str = "", path=(), stdin: bytes = b"",
                 netns_override: bool = False, environ=None):
        self.command = command
        self.container_id = container_id
        self.netns = netns
        self.ifname = ifname
        self.args = args
        self.path = list(path)
        self.stdin = stdin
        self.netns_override = netns_override
        self.environ = environ if environ is not None else os.environ

    def cni_args(self, *known) -> dict:
        """Parse CNI_ARGS, keeping `known` keys (Go LoadArgs semantics)."""
        from cni.config import load_cni_args
        return load_cni_args(self.args, known)


def valid_ifname(name: str) -> str:
    """'' if ok, else the reason (Go's ValidateInterfaceName + NUL)."""
    if not name:
        return "interface name is empty"
    try:
        size = len(name.encode())
    except UnicodeEncodeError:      # bytes that are not UTF-8 arrive as lone surrogates
        return "interface name is not valid UTF-8"
    if size > 15:
        return "interface name is too long"
    if name in (".", ".."):
        return "interface name is . or .."
    for c in name:
        if c in _IFNAME_BAD or c.isspace():
            return f"interface name contains an invalid character {c!r}"
    return ""


def _check_env(cmd: str, env) -> None:
    missing = [var for var, need in ENV_TABLE if cmd in need and not env.get(var)]
    if missing:
        raise InvalidEnvError(f"required env variables [{','.join(missing)}] missing",
                              "set them as the CNI spec requires for " + cmd)
    if cmd in ("ADD", "DEL", "CHECK"):
        from cni.config import valid_id
        cid = env.get("CNI_CONTAINERID", "")
        if not valid_id(cid) or len(cid) > 1024:
            raise InvalidEnvError("invalid CNI_CONTAINERID",
                                  f"{cid[:64]!r} must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
        why = valid_ifname(env.get("CNI_IFNAME", ""))
        if why:
            raise InvalidEnvError("invalid CNI_IFNAME", f"{env.get('CNI_IFNAME')!r}: {why}")


def _read_stdin(stdin) -> bytes:
    try:
        buf = stdin.read(STDIN_LIMIT + 1)
    except OSError as exc:
        raise IOFailureError("error reading from stdin", str(exc)) from None
    if len(buf) > STDIN_LIMIT:
        raise IOFailureError("network config on stdin is too large",
                             f"more than {STDIN_LIMIT} bytes")
    return buf


def _own_netns(path: str) -> bool:
    try:
        a = os.stat(path)
        b = os.stat("/proc/self/ns/net")
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _version_reply(stdin, versions) -> str:
    ver = _v.CURRENT
    try:
        obj = jsonx.loads(stdin.read(65536) or b"{}")
        if isinstance(obj, dict) and isinstance(obj.get("cniVersion"), str) and obj["cniVersion"]:
            ver = obj["cniVersion"]
    except (ValueError, OSError):
        pass
    return jsonx.dumps({"cniVersion": ver, "supportedVersions": list(versions)})


def dispatch(plugin: Plugin, env, stdin, state: dict | None = None) -> str:
    """Run one command; return the text for stdout (may be ''). Raises CNIError.

    `state["version"]` receives the config's cniVersion once it is known, so
    an error can be reported in that version.
    """
    state = {} if state is None else state
    cmd = env.get("CNI_COMMAND", "")
    if cmd == "VERSION":
        return _version_reply(stdin, plugin.versions)
    if cmd not in COMMANDS:
        raise InvalidEnvError(f"unknown CNI_COMMAND: {cmd}", "expected one of " + ", ".join(COMMANDS))
    _check_env(cmd, env)
    raw = _read_stdin(stdin)
    try:
        obj = jsonx.loads(raw)
    except ValueError as exc:
        raise DecodingError("error decoding network config", str(exc)) from None
    if not isinstance(obj, dict):
        raise DecodingError("error decoding network config", "stdin must hold a JSON object")
    from cni.config import check_name
    check_name(obj.get("name"))
    ver = obj.get("cniVersion", "")
    if not isinstance(ver, str):
        raise DecodingError("invalid cniVersion", "cniVersion must be a string")
    _v.parse(ver)
    state["version"] = ver or "0.1.0"
    if (ver or "0.1.0") not in plugin.versions:
        raise IncompatibleVersionError(
            "incompatible CNI versions",
            f"config is {ver!r}, plugin supports {list(plugin.versions)}")
    need = MIN_VERSION.get(cmd)
    if need and not _v.ge(ver, need):
        raise IncompatibleVersionError(f"config version does not allow {cmd}",
                                       f"config is {ver!r}; {cmd} needs {need} or later")
    args = Args(cmd, env.get("CNI_CONTAINERID", ""), env.get("CNI_NETNS", ""),
                env.get("CNI_IFNAME", ""), env.get("CNI_ARGS", ""),
                [p for p in env.get("CNI_PATH", "").split(":") if p], raw,
                env.get("CNI_NETNS_OVERRIDE", "").lower() in ("1", "true"), env)
    if args.netns and cmd in ("ADD", "DEL", "CHECK") and not args.netns_override \
            and _own_netns(args.netns):
        raise InvalidNetNSError("CNI_NETNS is the plugin's own network namespace",
                                f"refusing to configure {args.netns!r}: it is the host's")
    handler = {"ADD": plugin.add, "DEL": plugin.delete, "CHECK": plugin.check,
               "STATUS": plugin.status, "GC": plugin.gc}[cmd]
    conf = plugin.config.load(obj, raw)
    if conf.cni_version == "":
        conf.cni_version = ver
    if handler is None:
        return ""
    result = handler(args, conf)
    if cmd != "ADD":
        return ""
    if result is None:
        raise InternalError("plugin returned no result for ADD")
    from cni.convert import to_json
    try:
        return jsonx.dumps(to_json(result, ver or "0.1.0"), indent=4)
    except CNIError:
        # the work is done but cannot be reported in this version: undo it, then fail
        _undo_add(plugin, args, conf, result)
        raise


def _undo_add(plugin: Plugin, args: Args, conf, result) -> None:
    if plugin.delete is None:
        return
    conf.prev_result = result
    args.command = "DEL"
    try:
        plugin.delete(args, conf)
    except Exception as exc:  # report the original error; this one goes to stderr
        from cni.log import warn
        warn(f"undoing ADD failed: {exc}")


def run(plugin: Plugin, environ=None, stdin=None, stdout=None, stderr=None) -> int:
    """Entry point: returns the exit status (0 ok, 1 error)."""
    env = os.environ if environ is None else environ
    stdin = stdin if stdin is not None else sys.stdin.buffer
    stdout = stdout if stdout is not None else sys.stdout
    stderr = stderr if stderr is not None else sys.stderr
    cmd = env.get("CNI_COMMAND", "")
    if cmd == "":
        stderr.write(plugin.about + "\nCNI protocol versions supported: "
                     + ", ".join(plugin.versions) + "\n")
        return 0
    state: dict = {}
    try:
        out = dispatch(plugin, env, stdin, state)
        code = 0
    except CNIError as exc:
        out, code = _error_text(exc, state), 1
    except RecursionError:
        out, code = _error_text(InternalError("input nested too deeply"), state), 1
    except Exception as exc:  # any bug still yields the spec's error object
        if env.get("CNI_DEBUG") == "1":
            import traceback
            traceback.print_exc(file=stderr)
        err = InternalError(str(exc) or type(exc).__name__, type(exc).__name__)
        out, code = _error_text(err, state), 1
    if out:
        try:
            stdout.write(out)
            stdout.flush()
        except OSError:
            pass
    return code


def _error_text(exc: CNIError, state: dict) -> str:
    return jsonx.dumps(exc.to_dict(state.get("version") or _v.CURRENT), indent=4)


def main(plugin: Plugin) -> None:
    """Run and exit. Skips interpreter teardown (a few ms per exec): all output is flushed
    and every file we wrote was closed or replaced atomically before this point."""
    code = run(plugin)
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
