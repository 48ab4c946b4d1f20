"""debug: a test plugin that records every call and answers as configured.

Config keys:
  cniOutput       file to append one JSON line per call: {command, env, stdin}.
  debugResult     a result object to return from ADD (default: prevResult, or an empty result).
  debugError      {"code", "msg", "details"}: fail with this error ...
  debugErrorOn    ... only for these verbs (default: every verb).
  debugStderr     text to write to stderr on each call.
The supported versions come from the binary's name: `debug` supports all of
them; a copy named `debug-X.Y.Z` supports versions up to X.Y.Z only (for
testing version negotiation).
"""
from __future__ import annotations

import sys

from cni import skel
from cni import version as _v
from cni.std import json as jsonx
from cni.config import NetConf
from cni.convert import from_json
from cni.errors import CNIError
from cni.std import oslite as os
from cni.types import Result

FAST_VERSION = False  # the versions depend on the file name at run time


class Config(NetConf):
    FIELDS = {
        "cniOutput": ("cni_output", str, ""),
        "debugResult": ("debug_result", dict, None),
        "debugError": ("debug_error", dict, None),
        "debugErrorOn": ("debug_error_on", list, None),
        "debugStderr": ("debug_stderr", str, ""),
    }
    __slots__ = tuple(a for a, _, _ in FIELDS.values())


def _record(args: skel.Args, conf: Config) -> None:
    if conf.debug_stderr:
        sys.stderr.write(conf.debug_stderr + "\n")
    if conf.cni_output:
        env = {k: v for k, v in args.environ.items() if k.startswith("CNI_")}
        line = jsonx.dumps({"command": args.command, "env": env,
                            "stdin": args.stdin.decode("utf-8", "replace")}) + "\n"
        fd = os.open(conf.cni_output, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    err = conf.debug_error
    if err and (conf.debug_error_on is None or args.command in conf.debug_error_on):
        raise CNIError(str(err.get("msg", "debug error")), str(err.get("details", "")),
                       code=int(err.get("code", 999)))


def add(args: skel.Args, conf: Config):
    _record(args, conf)
    if conf.debug_result is not None:
        return from_json(conf.debug_result, conf.cni_version)
    if conf.prev_result is not None:
        return conf.prev_result
    return Result(conf.cni_version)


def other(args: skel.Args, conf: Config) -> None:
    _record(args, conf)


def _versions() -> tuple:
    base = os.path.basename(sys.argv[0] if sys.argv and sys.argv[0] else "debug")
    if base.startswith("debug-"):
        top = base[len("debug-"):]
        try:
            return tuple(v for v in _v.ALL if _v.parse(v) <= _v.parse(top))
        except CNIError:
            pass
    return _v.ALL


PLUGIN = skel.Plugin("debug", Config, add=add, delete=other, check=other, status=other, gc=other)


def main() -> None:
    PLUGIN.versions = _versions()
    skel.main(PLUGIN)


if __name__ == "__main__":
    main()
