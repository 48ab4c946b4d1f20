"""cnitool: run a network configuration against a network namespace by hand.

usage: cnitool [-i IFNAME] [--json] add|check|del|update <network> <netns-path>
       cnitool [--json] status <network> [<netns-path>]
       cnitool [--json] gc <network> [<netns-path>] [--valid CONTAINERID:IFNAME ...]
       cnitool list [-q]                 networks in NETCONFPATH and their plugins
       cnitool version [<network>]       versions each plugin supports
       cnitool -h | --help | help        this text

<network> is the "name" inside a .conflist/.conf/.json file of NETCONFPATH.
add and update print the result (JSON, indented); check, del, status and gc print
nothing on success. GC deletes every cached attachment of the network that
no --valid names, then sends GC to the plugins (cniVersion 1.1.0 or later).
update (our extension) changes an attachment made by add in place: the plugins
get UPDATE with the network's current config and CAP_ARGS (they replace the
cached capability args; CAP_ARGS unset keeps them); see README.

environment:
  NETCONFPATH      config directory (default /etc/cni/net.d)
  CNI_PATH         plugin directories, ':'-separated (also passed to the plugins)
  CNI_ARGS         K=V;K2=V2 passed to the plugins
  CAP_ARGS         JSON object of capability arguments (e.g. portMappings)
  CNI_IFNAME       interface name when -i is not given (default eth0)
  CNI_CONTAINERID  container ID (default: cnitool-<sha512 of the netns path>[:20])
  CNI_CACHE_DIR    result cache directory (default /var/lib/cni)
  CNI_TIMEOUT      seconds allowed per plugin execution (default 60)
  CNI_DEBUG        1: show the plugins' stderr and debug lines even on success
The plugins run with the rest of this environment unchanged.

errors: one line on stderr, "cnitool: <verb> <network>: error <code>: <message>",
and with --json the CNI error object on stdout; the exit status is 1 (2 for a
usage error, 130 when interrupted).
"""
from __future__ import annotations

import hashlib
import os
import sys

from cni.std import json as jsonx
from cni.errors import CNIError, InvalidConfigError, InvalidEnvError
from cni.log import warn
from cni.runtime import CNIConfig, RuntimeConf, load, load_all
from cni.runtime.results import go_dict

VERBS = ("add", "check", "del", "update", "gc", "status", "list", "version", "help")


class Usage(Exception):
    pass


def container_id(netns: str) -> str:
    """Go cnitool's container ID: 'cnitool-' + 20 hex chars of SHA-512(abs netns path)."""
    return "cnitool-" + hashlib.sha512(os.path.abspath(netns).encode()).hexdigest()[:20]


def parse_cni_args(s: str) -> list:
    """CNI_ARGS as cnitool reads it: K=V pairs, each with one '=' and both parts non-empty."""
    out = []
    if not s:
        return out
    for pair in s.split(";"):
        kv = pair.split("=")
        if len(kv) != 2 or not kv[0] or not kv[1]:
            raise InvalidEnvError("invalid CNI_ARGS pair", f"{pair!r} is not K=V")
        out.append((kv[0], kv[1]))
    return out


def parse_argv(argv: list) -> dict:
    opts = {"ifname": None, "json": False, "quiet": False, "valid": None, "args": []}
    it = iter(argv)
    for a in it:
        if a in ("-h", "--help"):
            raise Usage()
        if a in ("-i", "--ifname"):
            opts["ifname"] = next(it, None)
            if not opts["ifname"]:
                raise Usage("-i needs an interface name")
        elif a.startswith("--ifname="):
            opts["ifname"] = a.split("=", 1)[1]
        elif a == "--json":
            opts["json"] = True
        elif a == "-q":
            opts["quiet"] = True
        elif a == "--valid":
            v = next(it, None)
            if not v or ":" not in v:
                raise Usage("--valid needs CONTAINERID:IFNAME")
            opts["valid"] = (opts["valid"] or []) + [tuple(v.rsplit(":", 1))]
        elif a.startswith("-") and a != "-":
            raise Usage(f"unknown option {a}")
        else:
            opts["args"].append(a)
    if not opts["args"]:
        raise Usage("no command given")
    verb = opts["args"][0]
    if verb not in VERBS:
        raise Usage(f"unknown command {verb!r}")
    need = {"add": 3, "check": 3, "del": 3, "update": 3, "gc": 2, "status": 2}.get(verb, 1)
    if len(opts["args"]) < need:
        raise Usage(f"{verb} needs " + ("<network> <netns-path>" if need == 3 else "<network>"))
    return opts


def _runtime(opts: dict, env):
    timeout = env.get("CNI_TIMEOUT")
    try:
        timeout = float(timeout) if timeout else 60.0
    except ValueError:
        raise InvalidEnvError("invalid CNI_TIMEOUT", f"{timeout!r} is not a number") from None
    return CNIConfig(env.get("CNI_PATH", ""), cache_dir=env.get("CNI_CACHE_DIR", ""),
                     timeout=timeout)


def _rtconf(opts: dict, env):
    netns = os.path.abspath(opts["args"][2]) if len(opts["args"]) > 2 else ""
    caps = {}
    if env.get("CAP_ARGS"):
        try:
            caps = jsonx.loads(env["CAP_ARGS"])
        except ValueError as exc:
            raise InvalidEnvError("invalid CAP_ARGS", str(exc)) from None
        if not isinstance(caps, dict):
            raise InvalidEnvError("invalid CAP_ARGS", "must be a JSON object")
        caps = _sorted(caps)  # Go's cnitool decodes CAP_ARGS into maps: cached sorted
    ifname = opts["ifname"] or env.get("CNI_IFNAME") or "eth0"
    cid = env.get("CNI_CONTAINERID") or container_id(netns)
    return RuntimeConf(cid, netns, ifname, args=parse_cni_args(env.get("CNI_ARGS", "")),
                       capability_args=caps)


def _sorted(v):
    if isinstance(v, dict):
        return {k: _sorted(v[k]) for k in sorted(v)}
    if isinstance(v, list):
        return [_sorted(x) for x in v]
    return v


def _confdir(env) -> str:
    return env.get("NETCONFPATH") or "/etc/cni/net.d"


def cmd_list(opts: dict, env, out) -> int:
    errors: list = []
    nets = load_all(_confdir(env), errors=errors)
    for fn, exc in errors:
        warn(f"skipping {fn}: {exc}")
    for n in nets:
        if opts["quiet"]:
            out.write(n.name + "\n")
        else:
            vers = n.cni_version if len(n.cni_versions) <= 1 else ",".join(n.cni_versions)
            out.write(f"{n.name}\t{vers or '-'}\t{','.join(p.type for p in n.plugins)}"
                      f"\t{n.source}\n")
    return 0


def cmd_version(opts: dict, env, out) -> int:
    cfg = _runtime(opts, env)
    if len(opts["args"]) > 1:
        net = load(_confdir(env), opts["args"][1])
        types = list(dict.fromkeys(p.type for p in net.plugins))
        out.write(f"network {net.name}: selected version {cfg.select_version(net)}\n")
    else:
        types = []
        for d in cfg.path:
            try:
                names = sorted(os.listdir(d))
            except OSError:
                continue
            types.extend(n for n in names if n not in types and n != "cnitool"
                         and os.path.isfile(os.path.join(d, n))
                         and os.access(os.path.join(d, n), os.X_OK))
    rc = 0
    for t in types:
        try:
            out.write(f"{t}: {' '.join(cfg.plugin_versions(t))}\n")
        except CNIError as exc:
            out.write(f"{t}: error: {exc}\n")
            rc = 1
    return rc


def run(argv: list, env=None, out=None, err=None) -> int:
    env = os.environ if env is None else env
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    try:
        opts = parse_argv(argv)
    except Usage as exc:
        if not exc.args:  # -h/--help
            out.write(__doc__)
            return 0
        err.write(f"cnitool: {exc.args[0]}\n")
        err.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    verb = opts["args"][0]
    if verb == "help":
        out.write(__doc__)
        return 0
    try:
        if verb == "list":
            return cmd_list(opts, env, out)
        if verb == "version":
            return cmd_version(opts, env, out)
        cfg = _runtime(opts, env)
        net = load(_confdir(env), opts["args"][1])
        if verb == "status":
            cfg.status_network_list(net)
        elif verb == "gc":
            cfg.gc_network_list(net, opts["valid"])
        else:
            rt = _rtconf(opts, env)
            if verb == "add":
                res = cfg.add_network_list(net, rt)
                out.write(jsonx.dumps(go_dict(res), indent=4))
                out.flush()
            elif verb == "update":
                caps = rt.capability_args if env.get("CAP_ARGS") else None
                res = cfg.update_network_list(net, rt, caps)
                out.write(jsonx.dumps(go_dict(res), indent=4))
                out.flush()
            elif verb == "check":
                cfg.check_network_list(net, rt)
            else:
                cfg.del_network_list(net, rt)
        return 0
    except CNIError as exc:
        return _fail(exc, verb, opts, out, err)
    except OSError as exc:
        return _fail(InvalidConfigError("cannot read configuration", str(exc)), verb, opts,
                     out, err)
    except KeyboardInterrupt:  # the running plugin was killed by proc.run
        err.write(f"cnitool: {' '.join([verb] + opts['args'][1:2])}: interrupted\n")
        return 130


def _fail(exc: CNIError, verb: str, opts: dict, out, err) -> int:
    """One human line on stderr; the error object on stdout with --json."""
    what = " ".join([verb] + opts["args"][1:2])
    line = " ".join(f"cnitool: {what}: error {exc.code}: {exc}".split())
    err.write(line + "\n")
    if opts["json"]:
        out.write(jsonx.dumps(exc.to_dict(), indent=4) + "\n")
    return 1


def main() -> None:
    rc = run(sys.argv[1:])
    try:
        sys.stdout.flush()
    except OSError:
        pass
    raise SystemExit(rc)


if __name__ == "__main__":
    main()
