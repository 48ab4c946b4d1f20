"""Start-up cost kept by a list, not a clock: the modules each plugin verb must never load.

Each plugin runs as its sh preamble runs it (with -X importtime), in a test host netns against
a container netns, for ADD, CHECK and DEL; the modules it imported are read from importtime's
report (our own modules too: the setns fallback, tc's tables, the no-op fast path for the
other verbs, the config parser when the fast path answers and, where no tool runs, the process
layer).
`os` (0.9 ms: `_collections_abc`, `posixpath`, the environ mapping) is replaced by
cni.std.oslite, `_json` (0.25 ms) by cni.std.json's pure parser for documents up to 64 KiB;
the rest are what the start-up issue names: a plugin that needs them on this path has grown
a cost that `make bench` would show.
"""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from cni.fastpath import NOOP
from helpers import BIN, imported_modules, launch_importtime

NEVER = {"os", "posixpath", "_collections_abc", "ipaddress", "re", "json", "_json", "subprocess",
         "typing", "functools", "collections", "enum", "dataclasses", "logging", "argparse", "ctypes",
         "socket", "contextlib", "runpy", "tempfile", "random", "hashlib", "traceback",
         "linecache", "warnings", "importlib.util", "datetime", "__future__",
         "cni.std.nsenter",     # the setns fallback: this interpreter has _ctypes
         "cni.nl.tc_defs"}      # tc's tables: only bandwidth shapes
# cases that run no tool, so they must not load the process layer (cni.std.process)
NO_TOOLS = {"loopback", "ptp", "host-local", "static", "tuning", "tuning-sysctl", "bridge"}


@pytest.fixture(scope="module", autouse=True)
def _built(built_bins):
    return built_bins


def _run(host, exe: str, verb: str, conf: dict, env: dict):
    e = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND": verb, **env}
    r = subprocess.run(["ip", "netns", "exec", host.name, *launch_importtime(exe)],
                       input=json.dumps(conf).encode(), capture_output=True, env=e)
    return r, imported_modules(r.stderr)


def _prev(cont) -> dict:
    return {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": cont.path}],
            "ips": [{"address": "10.199.0.2/24", "gateway": "10.199.0.1", "interface": 0}],
            "routes": [{"dst": "0.0.0.0/0"}]}


def _cases(tmp_path, cont):
    ipam = {"type": "host-local", "subnet": "10.199.64.0/18", "dataDir": str(tmp_path / "ipam")}
    prev = _prev(cont)
    return {
        "loopback": ("loopback", "lo", {"type": "loopback"}),
        "bridge": ("bridge", "eth1", {"type": "bridge", "bridge": "cnitsm0", "isGateway": True,
                                      "ipam": ipam}),
        "ptp": ("ptp", "eth1", {"type": "ptp", "ipam": dict(ipam, subnet="10.199.128.0/18")}),
        "host-local": ("host-local", "eth1", dict(ipam, subnet="10.199.192.0/20")),
        "static": ("static", "eth1", {"type": "static", "addresses": [
            {"address": "10.199.250.2/24"}]}),
        "tuning": ("tuning", "eth0", {"type": "tuning", "prevResult": prev}),
        "tuning-sysctl": ("tuning", "eth0", {"type": "tuning", "prevResult": prev, "sysctl": {
            "net.ipv4.conf.eth0.arp_notify": "1"}}),
        "portmap": ("portmap", "eth0", {"type": "portmap", "prevResult": prev,
                                        "capabilities": {"portMappings": True}}),
        "bandwidth": ("bandwidth", "eth0", {"type": "bandwidth", "prevResult": prev}),
        "firewall": ("firewall", "eth0", {"type": "firewall", "prevResult": prev}),
    }


@pytest.mark.parametrize("case", ["loopback", "bridge", "ptp", "host-local", "static", "tuning",
                                  "tuning-sysctl", "portmap", "bandwidth", "firewall"])
def test_plugin_verbs_load_none_of_the_expensive_modules(case, tmp_path, host_ns, cont_ns):
    cont_ns.ip("link", "add", "eth0", "type", "veth", "peer", "name", "cnitsmp", "netns",
               host_ns.name)
    cont_ns.ip("addr", "add", "10.199.0.2/24", "dev", "eth0")
    cont_ns.ip("link", "set", "eth0", "up")
    plugin, ifname, body = _cases(tmp_path, cont_ns)[case]
    exe = os.path.join(BIN, plugin)
    if plugin in ("host-local", "static"):       # IPAM plugins read their section from "ipam"
        body = {"type": plugin, "ipam": body}
    conf = dict(body, cniVersion="1.0.0", name="cnitsm")
    env = {"CNI_CONTAINERID": "cnitsm1", "CNI_NETNS": cont_ns.path, "CNI_IFNAME": ifname,
           "CNI_PATH": BIN}
    seen = {}
    answered = []
    # bandwidth CHECK wants the shaping it would have set up: only ADD and DEL are no-ops
    for verb in ("ADD", "DEL") if plugin == "bandwidth" else ("ADD", "CHECK", "DEL"):
        r, mods = _run(host_ns, exe, verb, conf, env)
        assert r.returncode == 0, (verb, r.stdout[-800:], r.stderr[-800:])
        assert mods, "no importtime report"
        if verb == "ADD" and r.stdout.strip():
            conf = dict(conf, prevResult=json.loads(r.stdout))
        never = NEVER - ({"cni.nl.tc_defs"} if plugin == "bandwidth" else set())
        if (plugin, verb) not in NOOP:       # the boot loads the fast path only for its verbs
            never = never | {"cni.fastpath"}
        elif plugin.replace("-", "_") not in mods:   # the fast path answered: no config parser
            never = never | {"cni.config", "cni.skel"}
            answered.append(verb)
        bad = mods & (never | ({"cni.std.process"} if case in NO_TOOLS else set()))
        if bad:
            seen[verb] = sorted(bad)
    assert not seen, f"{case} loaded {seen}"
    if case in ("tuning", "portmap", "bandwidth"):
        assert answered, f"{case}: the fast path answered no verb"
