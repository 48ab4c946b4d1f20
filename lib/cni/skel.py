"""Plugin skeleton: environment -> config -> handler -> JSON on stdout + exit code.

A plugin declares `PLUGIN = skel.Plugin(...)` and calls `skel.run(PLUGIN)`.
Only this module (and cnitool) writes to stdout.
"""
from __future__ import annotations

import errno
import sys

from cni import __version__
from cni.std import json as jsonx
from cni import netns as _netns
from cni import version as _v
from cni.cniargs import load_cni_args
from cni.config import check_attachment, check_name, load_object
from cni.errors import (CNIError, DecodingError, IncompatibleVersionError, InternalError,
                        InvalidConfigError, InvalidEnvError, InvalidNetNSError, IOFailureError,
                        os_details)
from cni.std import oslite as os

# Far above any real config (podman's 60k published ports are ~4 MB); read in chunks,
# so memory stays linear in what the runtime actually sends.
STDIN_LIMIT = 256 << 20
_CHUNK = 1 << 20
COMMANDS = ("ADD", "DEL", "CHECK", "STATUS", "GC", "UPDATE", "VERSION")  # UPDATE: our extension
# var -> commands that require it (commands that merely accept it are not listed)
ENV_TABLE = (
    ("CNI_COMMAND", COMMANDS),
    ("CNI_CONTAINERID", ("ADD", "DEL", "CHECK", "UPDATE")),
    ("CNI_NETNS", ("ADD", "CHECK", "UPDATE")),
    ("CNI_IFNAME", ("ADD", "DEL", "CHECK", "UPDATE")),
    ("CNI_PATH", ("GC",)),
)
MIN_VERSION = {"CHECK": "0.4.0", "STATUS": "1.1.0", "GC": "1.1.0", "UPDATE": "1.0.0"}
_WITH_ATTACHMENT = ("ADD", "DEL", "CHECK", "UPDATE")   # commands about one attachment


class Plugin:
    """A plugin: its handlers, and the delegates its archive carries to run in-process
    (`embeds`, see cni.embed)."""
    __slots__ = ("name", "config", "add", "delete", "check", "status", "gc", "update", "versions",
                 "about", "embeds")

    def __init__(self, name: str, config, *, add=None, delete=None, check=None, status=None,
                 gc=None, update=None, versions=_v.ALL, about: str = "", embeds=()):
        self.name = name
        self.embeds = tuple(embeds)
        self.config = config
        self.add, self.delete, self.check, self.status, self.gc = add, delete, check, status, gc
        self.update = update
        self.versions = tuple(versions)
        self.about = about or f"CNI {name} plugin (pycni {_about_version()})"

    def main(self) -> None:
        """Run as the plugin's executable and exit (a plugin module's `main = PLUGIN.main`)."""
        main(self)


def _about_version() -> str:
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
        return load_cni_args(self.args, known)


def _check_env(cmd: str, env) -> None:
    missing = [var for var, need in ENV_TABLE if cmd in need and not env.get(var)]
    if missing:
        raise InvalidEnvError(f"required env variables [{','.join(missing)}] missing",
                              "set them as the CNI spec requires for " + cmd)
    if cmd in _WITH_ATTACHMENT:
        check_attachment(env.get("CNI_CONTAINERID", ""), env.get("CNI_IFNAME", ""),
                         "CNI_CONTAINERID", "CNI_IFNAME")


class StdioError(IOFailureError):
    """A standard stream is unusable (closed, EPIPE, ...): also reported on stderr."""


class _Closed:
    """Stands in for a standard stream whose descriptor was closed when we started."""
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def read(self, n: int = -1) -> bytes:
        raise OSError(errno.EBADF, f"{self.name} is closed")

    def write(self, data) -> int:
        raise OSError(errno.EBADF, f"{self.name} is closed")

    def flush(self) -> None:
        pass


def _read_stdin(stdin) -> bytes:
    chunks, total = [], 0
    try:
        while True:
            buf = stdin.read(_CHUNK)
            if not buf:
                break
            total += len(buf)
            if total > STDIN_LIMIT:
                raise IOFailureError("network config on stdin is too large",
                                     f"more than {STDIN_LIMIT} bytes")
            chunks.append(buf)
    except OSError as exc:
        raise StdioError("error reading from stdin", os_details(exc)) from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _pin_netns(args: Args):
    """Open CNI_NETNS once, without blocking (cni.netns.pin), for the rest of this call.

    Every NetNS.open of that path reuses this fd, so the own-netns check here and the
    plugin's work see one namespace. ADD/CHECK refuse a file that is not a netns (a FIFO,
    a tty, a directory ...); DEL goes on (nothing of ours can be in it). A missing path is
    left to the plugin (a DEL of a netns already gone succeeds).
    """
    try:
        ns = _netns.pin(args.netns)
    except InvalidEnvError:
        if args.command == "DEL":
            return None
        raise
    except OSError:
        return None
    if not args.netns_override and ns.is_current():
        ns.close()
        raise InvalidNetNSError("CNI_NETNS is the plugin's own network namespace",
                                f"refusing to configure {args.netns!r}: it is the host's")
    return ns


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
    if env.get("CNI_COMMAND", "") == "VERSION":
        return _version_reply(stdin, plugin.versions)
    result, ver = execute(plugin, env, stdin, state)
    if result is None:
        return ""
    from cni.convert import to_json  # lazy: only a command with a result prints one
    return jsonx.dumps(to_json(result, ver or "0.1.0"), indent=4)


def execute(plugin: Plugin, env, stdin, state: dict | None = None):
    """Run one command other than VERSION: (result or None, the config's cniVersion).

    An ADD result is known to be printable in that version (else the ADD is undone and
    the error raised); `state["undo"]` then holds what undoes it, should it not reach
    the runtime. Raises CNIError.
    """
    state = {} if state is None else state
    cmd = env.get("CNI_COMMAND", "")
    if cmd not in COMMANDS or cmd == "VERSION":
        raise InvalidEnvError(f"unknown CNI_COMMAND: {cmd}", "expected one of " + ", ".join(COMMANDS))
    _check_env(cmd, env)
    raw = _read_stdin(stdin)
    obj = load_object(raw, "error decoding network config", "stdin must hold a JSON object")
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
    pinned = _pin_netns(args) if args.netns and cmd in _WITH_ATTACHMENT else None
    try:
        return _call(plugin, args, obj, raw, ver, state), ver
    finally:
        if pinned is not None:
            pinned.close()


def _call(plugin: Plugin, args: Args, obj: dict, raw: bytes, ver: str, state: dict):
    cmd = args.command
    handler = {"ADD": plugin.add, "DEL": plugin.delete, "CHECK": plugin.check,
               "STATUS": plugin.status, "GC": plugin.gc,
               "UPDATE": plugin.update or _update_unchanged}[cmd]
    if cmd == "UPDATE" and plugin.update is None and plugin.check is None:
        raise InvalidEnvError(f"unknown CNI_COMMAND: {cmd}", f"{plugin.name} has no UPDATE")
    conf = plugin.config.load(obj, raw)
    if conf.cni_version == "":
        conf.cni_version = ver
    if handler is None:
        return None
    if cmd == "UPDATE" and plugin.update is None:
        result = handler(plugin, args, conf)
    else:
        result = handler(args, conf)
    if cmd not in ("ADD", "UPDATE"):
        return None
    if result is None:
        raise InternalError(f"plugin returned no result for {cmd}")
    if cmd == "UPDATE":     # nothing to undo: the runtime repeats an UPDATE it did not see end
        return result
    from cni.convert import to_json  # lazy: only a command with a result prints one
    try:
        to_json(result, ver or "0.1.0")
    except CNIError:
        # the work is done but cannot be reported in this version: undo it, then fail
        _undo_add(plugin, args, conf, result)
        raise
    state["undo"] = (args, conf, result)  # for run(), should the result not reach stdout
    return result


def _update_unchanged(plugin: Plugin, args: Args, conf):
    """UPDATE of a plugin without an update handler (interface and IPAM plugins): it can
    change nothing in place, so the update is accepted only when nothing it set up would
    change. The rule: its CHECK, run with the new config against prevResult (the cached
    result), must pass; then prevResult is the result. A CHECK failure refuses the update
    (code 7): the attachment needs DEL and ADD."""
    if conf.prev_result is None:
        raise InvalidConfigError("required prevResult missing",
                                 "UPDATE takes the attachment's cached result as prevResult")
    try:
        plugin.check(args, conf)
    except CNIError as exc:
        raise InvalidConfigError(f"UPDATE cannot change what {plugin.name} set up "
                                 "(a new interface or address needs DEL and ADD)",
                                 f"{exc.msg}: {exc.details}" if exc.details else exc.msg) from None
    return conf.prev_result


def _undo_add(plugin: Plugin, args: Args, conf, result) -> None:
    """Undo a finished ADD through the plugin's DEL, with `result` as prevResult: the one
    rollback of work done but never reported (an ADD's own failures unwind its
    cni.rollback stack)."""
    if plugin.delete is None:
        return
    conf.prev_result = result
    dargs = Args("DEL", args.container_id, args.netns, args.ifname, args.args, args.path,
                 args.stdin, args.netns_override, args.environ)
    try:
        plugin.delete(dargs, conf)
    except Exception as exc:  # report the original error; this one goes to stderr
        from cni.log import warn  # lazy: an error path only
        warn(f"undoing ADD failed: {exc}")


def run(plugin: Plugin, environ=None, stdin=None, stdout=None, stderr=None) -> int:
    """Entry point: returns the exit status (0 ok, 1 error).

    An ADD whose result cannot be written to stdout (closed, EPIPE, full disk) is
    undone through the plugin's DEL: the runtime never learns of it, so nothing
    else would release it. Whatever cannot reach stdout is said on stderr.
    """
    env = os.environ if environ is None else environ
    stdin = stdin if stdin is not None else _std("stdin")
    stdout = stdout if stdout is not None else _std("stdout")
    stderr = stderr if stderr is not None else _std("stderr")
    cmd = env.get("CNI_COMMAND", "")
    if cmd == "":
        _say(stderr, plugin.about + "\nCNI protocol versions supported: "
             + ", ".join(plugin.versions))
        return 0
    state: dict = {}
    try:
        out = dispatch(plugin, env, stdin, state)
        code = 0
    except CNIError as exc:
        out, code = _error_text(exc, state), 1
        if isinstance(exc, StdioError):
            _say(stderr, f"{plugin.name}: {exc}")
    except RecursionError:
        out, code = _error_text(InternalError("input nested too deeply"), state), 1
    except Exception as exc:  # any bug still yields the spec's error object
        if env.get("CNI_DEBUG") == "1":
            import traceback  # lazy: a bug's error path only
            try:
                traceback.print_exc(file=stderr)
            except (OSError, ValueError):
                pass
        err = InternalError(str(exc) or type(exc).__name__, type(exc).__name__)
        out, code = _error_text(err, state), 1
    if out:
        try:
            stdout.write(out)
            stdout.flush()
        except (OSError, ValueError) as exc:  # ValueError: a closed file object
            why = os_details(exc) if isinstance(exc, OSError) else str(exc)
            undo = state.get("undo") if code == 0 else None
            if undo is not None:
                _undo_add(plugin, *undo)
                _say(stderr, f"{plugin.name}: cannot write the ADD result to stdout ({why}); "
                     "the ADD was undone")
            else:
                _say(stderr, f"{plugin.name}: cannot write to stdout ({why}): "
                     + " ".join(out.split()))
            code = 1
    return code


def _std(name: str):
    """sys.stdin.buffer, sys.stdout, sys.stderr, or a _Closed when that fd was closed."""
    f = getattr(sys, name)
    if f is None:
        return _Closed(name)
    return f.buffer if name == "stdin" else f


def _say(stderr, text: str) -> None:
    try:
        stderr.write(text + "\n")
        stderr.flush()
    except (OSError, ValueError):
        pass


def _error_text(exc: CNIError, state: dict) -> str:
    return jsonx.dumps(exc.to_dict(state.get("version") or _v.CURRENT), indent=4)


def _hold_std_fds() -> None:
    """Put /dev/null on a closed fd 0, 1 or 2, so no file or socket we open later lands
    there (and reaches a child, or gets our output). Python already saw them closed:
    sys.stdin/stdout/stderr are None and run() treats those streams as closed."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            try:
                null = os.open(os.devnull, os.O_RDWR)
            except OSError:
                return
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            else:
                os.set_inheritable(fd, True)


def main(plugin: Plugin) -> None:
    """Run and exit. Skips interpreter teardown (a few ms per exec): all output is flushed
    and every file we wrote was closed or replaced atomically before this point."""
    _hold_std_fds()
    code = run(plugin)
    try:  # run() flushed stdout, or gave up on it: a late flush must not deliver an undone ADD
        if sys.stderr is not None:
            sys.stderr.flush()
    except (OSError, ValueError):
        pass
    nf = sys.modules.get("cni.nl.nfsock")        # loaded only if this exec used netfilter
    if nf is not None:
        nf.release_held_detached()
    os._exit(code)
