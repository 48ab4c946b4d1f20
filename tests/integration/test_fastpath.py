"""cni.fastpath: a no-op answered from the zipapp's boot gives exactly what the plugin gives.

Each input runs twice: `bin/X` (the launcher tries cni.fastpath first) and `python3 -I bin/X`
(__main__: always the plugin itself); exit status and stdout must be identical, for inputs
that are no-ops and for inputs the fast path must leave to the plugin (errors included).
"""
from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from helpers import BIN

pytestmark = pytest.mark.root


def _both(plugin, command, conf, netns, *, cni_args="", ifname="eth0", cid="cnit-fp1"):
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND": command,
           "CNI_CONTAINERID": cid, "CNI_NETNS": netns, "CNI_IFNAME": ifname,
           "CNI_ARGS": cni_args, "CNI_PATH": BIN}
    data = conf if isinstance(conf, bytes) else json.dumps(conf).encode()
    exe = os.path.join(BIN, plugin)
    fast = subprocess.run([exe], input=data, capture_output=True, env=env)
    slow = subprocess.run(["/usr/bin/python3", "-I", exe], input=data, capture_output=True,
                          env=env)
    return fast, slow


def _prev(ns_path, ver="1.0.0"):
    return {"cniVersion": ver, "interfaces": [{"name": "eth0", "sandbox": ns_path}],
            "ips": [{"address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 0}],
            "routes": [{"dst": "0.0.0.0/0"}], "dns": {"nameservers": ["10.1.0.1"]}}


def _cases(ns):
    p = ns.path
    out = []
    for ver in ("0.3.1", "0.4.0", "1.0.0", "1.1.0"):
        out += [("tuning", "ADD", {"cniVersion": ver, "name": "n", "type": "tuning",
                                   "prevResult": _prev(p, ver)}, ""),
                ("portmap", "ADD", {"cniVersion": ver, "name": "n", "type": "portmap",
                                    "capabilities": {"portMappings": True},
                                    "runtimeConfig": {"portMappings": []},
                                    "prevResult": _prev(p, ver)}, ""),
                ("bandwidth", "ADD", {"cniVersion": ver, "name": "n", "type": "bandwidth",
                                      "prevResult": _prev(p, ver)}, "")]
    base = {"cniVersion": "1.0.0", "name": "n", "prevResult": _prev(p)}
    out += [
        ("portmap", "CHECK", dict(base, type="portmap"), ""),
        ("bandwidth", "ADD", {"cniVersion": "1.0.0", "name": "n", "type": "bandwidth"}, ""),
        ("tuning", "ADD", dict(base, type="tuning", prevResult=_prev(p, "0.3.1")), ""),   # converted
        ("tuning", "ADD", dict(base, type="tuning"), "IgnoreUnknown=1;K8S_POD_NAME=a"),
        # work, or errors, that only the plugin may report
        ("tuning", "ADD", dict(base, type="tuning"), "FOO=bar"),
        ("tuning", "ADD", dict(base, type="tuning"), "IgnoreUnknown=maybe;X=1"),
        ("tuning", "ADD", dict(base, type="tuning"), "broken"),
        ("tuning", "ADD", dict(base, type="tuning", Mtu="x"), ""),
        ("tuning", "ADD", {"cniVersion": "1.0.0", "name": "n", "type": "tuning"}, ""),
        ("tuning", "ADD", dict(base, type="tuning", name="bad name"), ""),
        ("tuning", "ADD", dict(base, type="tuning", cniVersion="9.9.9"), ""),
        ("tuning", "ADD", dict(base, type="tuning", runtimeConfig=[]), ""),
        ("tuning", "ADD", dict(base, type="tuning", prevResult={"ips": "x"}), ""),
        ("portmap", "ADD", dict(base, type="portmap", runtimeConfig={"portMappings": [
            {"hostPort": 0, "containerPort": 80}]}), ""),
        ("portmap", "ADD", dict(base, type="portmap", markMasqBit=99), ""),
        ("bandwidth", "ADD", dict(base, type="bandwidth", ingressRate=-1), ""),
        ("bandwidth", "ADD", dict(base, type="bandwidth", cniVersion="0.2.0"), ""),
        ("portmap", "CHECK", dict(base, type="portmap", cniVersion="0.3.1"), ""),
        ("tuning", "ADD", b"{not json", ""),
        ("firewall", "DEL", {"cniVersion": "1.0.0", "name": "n", "type": "firewall"}, ""),
        ("firewall", "DEL", {"cniVersion": "1.0.0", "name": "n", "type": "firewall",
                             "backend": "nope"}, ""),
        ("tuning", "DEL", dict(base, type="tuning"), ""),
        ("bandwidth", "DEL", dict(base, type="bandwidth"), ""),
        ("bandwidth", "DEL", {"cniVersion": "0.3.1", "name": "n", "type": "bandwidth"}, ""),
        ("bandwidth", "DEL", dict(base, type="bandwidth", egressRate=8000, egressBurst=80), ""),
        ("bandwidth", "DEL", dict(base, type="bandwidth", egressRate=-1), ""),
        ("bandwidth", "DEL", dict(base, type="bandwidth", runtimeConfig={"bandwidth": {}}), ""),
    ]
    return out


def test_fast_and_slow_paths_agree(cont_ns):
    tried = 0
    for plugin, cmd, conf, args in _cases(cont_ns):
        fast, slow = _both(plugin, cmd, conf, cont_ns.path, cni_args=args)
        same = [(r.returncode, re.sub(rb"0x[0-9a-f]+", b"0x", r.stdout)) for r in (fast, slow)]
        assert same[0] == same[1], (plugin, cmd, conf, args, fast, slow)   # (object ids differ)
        tried += 1
    assert tried >= 39


def test_own_netns_and_bad_env_are_the_plugins_to_report(cont_ns):
    conf = {"cniVersion": "1.0.0", "name": "n", "type": "tuning", "prevResult": _prev(cont_ns.path)}
    for netns, ifname, cid in (("/proc/self/ns/net", "eth0", "c1"), ("/nonexistent", "eth0", "c1"),
                               (cont_ns.path, "a/b", "c1"), (cont_ns.path, "eth0", "-bad"),
                               ("", "eth0", "c1")):
        fast, slow = _both("tuning", "ADD", conf, netns, ifname=ifname, cid=cid)
        assert fast.returncode == slow.returncode == 1 and fast.stdout == slow.stdout, (netns, ifname)


def test_the_no_op_does_not_load_the_plugin(cont_ns):
    """The point of it: tuning's no-op never imports the plugin, skel or the netlink code."""
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(BIN), "bench"))
    try:
        from common import launch_argv
    finally:
        del sys.path[0]
    conf = {"cniVersion": "1.0.0", "name": "n", "type": "tuning", "prevResult": _prev(cont_ns.path)}
    env = {"PATH": "/usr/bin:/bin", "CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1",
           "CNI_NETNS": cont_ns.path, "CNI_IFNAME": "eth0", "CNI_PATH": BIN}
    r = subprocess.run(launch_argv(os.path.join(BIN, "tuning"), "-X", "importtime"),
                       input=json.dumps(conf).encode(), capture_output=True, env=env)
    mods = {ln.rsplit("|", 1)[1].strip() for ln in r.stderr.decode().splitlines()
            if ln.startswith("import time:") and ln.count("|") == 2}
    assert r.returncode == 0 and "cni.fastpath" in mods, r.stderr[-500:]
    assert not mods & {"tuning", "cni.skel", "cni.nl.rtnl", "os", "cni.netns"}, sorted(mods)


def test_bandwidth_del_with_an_ifb_is_the_plugins(make_netns):
    """The fast path answers a bandwidth DEL only when no IFB of that name exists here; with
    one, the plugin runs and removes it (the config need not list any rate)."""
    from cni.names import ifb_name
    host = make_netns("fpbw")
    ifb = ifb_name("n", "cnit-fpbw")
    host.ip("link", "add", ifb, "type", "ifb")
    conf = {"cniVersion": "1.0.0", "name": "n", "type": "bandwidth"}
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND": "DEL",
           "CNI_CONTAINERID": "cnit-fpbw", "CNI_NETNS": "", "CNI_IFNAME": "eth0", "CNI_PATH": BIN}
    r = subprocess.run(["ip", "netns", "exec", host.name, os.path.join(BIN, "bandwidth")],
                       input=json.dumps(conf).encode(), capture_output=True, env=env)
    assert r.returncode == 0 and r.stdout == b"", (r.stdout, r.stderr)
    assert host.ip("link", "show", ifb, check=False).returncode != 0, "the IFB is still there"
