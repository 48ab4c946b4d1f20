#!/usr/bin/env python3
"""Feed hostile values to every config field of every plugin in bin/ (root, real kernel).

Each case runs ADD (in a throw-away "host" netns, against a throw-away container netns) and
then DEL with the same config. A case is bad when the plugin answers code 999, dies with a
traceback, exits without an error object, or hangs. Usage:

    sudo scripts/fuzz_configs.py [--bin bin] [--plugins bridge,tuning] [--json out.json]

Prints one line per bad case and a summary: cases tried, execs, bad ones by plugin.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAG = uuid.uuid4().hex[:6]
HOST, CONT = f"cnitfzh{TAG}", f"cnitfzc{TAG}"

# the hostile values (JSON-encodable); the raw texts in RAW are spliced in as JSON text
VALUES = [None, "", -1, 2 ** 64, "x" * 100000, {}, [], 1.5, True, "\x00x", "a\nb",
          "../../../etc", 2 ** 32, -2 ** 63]
RAW = ["1" * 5000, "1e400", "NaN"]       # a 5000-digit number, an infinite float, NaN


def hl(d):
    return {"type": "host-local", "dataDir": d, "ranges": [[{"subnet": "10.231.0.0/24"}]],
            "routes": [{"dst": "10.96.0.0/16"}]}


def prev(ver="1.0.0"):
    return {"cniVersion": ver, "interfaces": [{"name": "cnitfzv0"},
                                              {"name": "eth0", "sandbox": "/run/netns/" + CONT}],
            "ips": [{"address": "10.231.1.2/24", "gateway": "10.231.1.1", "interface": 1}],
            "routes": [{"dst": "0.0.0.0/0"}]}


def bases(tmp):
    d = os.path.join(tmp, "ipam")
    chained = {"prevResult": prev()}
    return {
        "bridge": {"bridge": "cnitfzbr", "ipam": hl(d)},
        "ptp": {"ipam": hl(d)},
        "macvlan": {"master": "cnitfzm", "ipam": hl(d)},
        "ipvlan": {"master": "cnitfzm", "ipam": hl(d)},
        "vlan": {"master": "cnitfzm", "vlanId": 5, "ipam": hl(d)},
        "host-device": {"device": "cnitfzhd"},
        "tap": {"ipam": hl(d)},
        "dummy": {"ipam": hl(d)},
        "loopback": {},
        "host-local": {"ipam": hl(d)},
        "static": {"ipam": {"type": "static", "addresses": [{"address": "10.231.2.5/24"}],
                            "routes": [{"dst": "10.97.0.0/16", "gw": "10.231.2.1"}]}},
        "tuning": dict(chained, sysctl={"net.ipv4.conf.IFNAME.arp_notify": "1"}, mtu=1400,
                       dataDir=os.path.join(tmp, "tuning")),
        "bandwidth": dict(chained, ingressRate=100000, ingressBurst=50000,
                          egressRate=100000, egressBurst=50000),
        "portmap": dict(chained, capabilities={"portMappings": True},
                        runtimeConfig={"portMappings": [
                            {"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}]}),
        "firewall": dict(chained, backend="iptables"),
        "sbr": dict(chained),
        "vrf": dict(chained, vrfname="cnitfzvrf"),
        "debug": {"cniOutput": os.path.join(tmp, "debug.out")},
        "sample": dict(chained, anotherAwesomeArg="x"),
    }


def plugin_fields(name):
    sys.path[:0] = [os.path.join(ROOT, "lib"), os.path.join(ROOT, "plugins")]
    mod = __import__(name.replace("-", "_"))
    cfg = getattr(mod, "Config", None)
    return list(getattr(cfg, "FIELDS", {}) or {})


COMMON = ["cniVersion", "name", "ipam", "dns", "args", "runtimeConfig", "capabilities",
          "prevResult", "dns.nameservers", "args.cni"]
IPAM = ["ipam.type", "ipam.ranges", "ipam.ranges.0", "ipam.ranges.0.0",
        "ipam.ranges.0.0.subnet", "ipam.ranges.0.0.rangeStart", "ipam.ranges.0.0.gateway",
        "ipam.routes", "ipam.routes.0", "ipam.routes.0.dst", "ipam.routes.0.gw",
        "ipam.routes.0.priority", "ipam.routes.0.table", "ipam.routes.0.mtu",
        "ipam.routes.0.scope", "ipam.routes.0.advmss", "ipam.dataDir", "ipam.resolvConf",
        "ipam.subnet", "runtimeConfig.ipRanges", "runtimeConfig.ips"]
STATIC = ["ipam.addresses", "ipam.addresses.0", "ipam.addresses.0.address",
          "ipam.addresses.0.gateway", "ipam.routes", "ipam.routes.0.dst", "ipam.routes.0.table",
          "ipam.routes.0.priority", "ipam.routes.0.mtu", "ipam.dns"]
PREV = ["prevResult.interfaces", "prevResult.interfaces.0", "prevResult.interfaces.1.name",
        "prevResult.interfaces.1.sandbox", "prevResult.interfaces.1.mtu", "prevResult.ips",
        "prevResult.ips.0.address", "prevResult.ips.0.interface", "prevResult.ips.0.gateway",
        "prevResult.routes", "prevResult.routes.0.dst", "prevResult.routes.0.table",
        "prevResult.routes.0.priority", "prevResult.routes.0.mtu", "prevResult.cniVersion"]
EXTRA = {
    "portmap": ["runtimeConfig.portMappings", "runtimeConfig.portMappings.0",
                "runtimeConfig.portMappings.0.hostPort",
                "runtimeConfig.portMappings.0.containerPort",
                "runtimeConfig.portMappings.0.protocol", "runtimeConfig.portMappings.0.hostIP"],
    "bandwidth": ["runtimeConfig.bandwidth", "runtimeConfig.bandwidth.ingressRate",
                  "runtimeConfig.bandwidth.egressBurst"],
    "tuning": ["sysctl.net.ipv4.conf.IFNAME.arp_notify", "args.cni.mtu", "args.cni.sysctl",
               "runtimeConfig.mac"],
    "host-device": ["runtimeConfig.deviceID"],
    "macvlan": ["runtimeConfig.mac"],
    "bridge": ["runtimeConfig.mac"],
}


def fields_for(name):
    out = COMMON + plugin_fields(name) + EXTRA.get(name, [])
    if name in ("bridge", "ptp", "macvlan", "ipvlan", "vlan", "tap", "dummy", "host-local"):
        out += IPAM
    if name == "static":
        out += STATIC
    if name in CHAINED:
        out += PREV
    return out


def put(obj, path, value):
    """Set obj[path] (dotted; digits index lists, creating dicts on the way)."""
    parts = path.split(".")
    if parts[0] == "sysctl":                        # the key holds dots
        parts = ["sysctl", ".".join(parts[1:])]
    cur = obj
    for p in parts[:-1]:
        if isinstance(cur, list):
            if int(p) >= len(cur):
                return False
            cur = cur[int(p)]
        else:
            if not isinstance(cur.get(p), (dict, list)):
                cur[p] = {}
            cur = cur[p]
    last = parts[-1]
    if isinstance(cur, list):
        if int(last) >= len(cur):
            return False
        cur[int(last)] = value
    else:
        cur[last] = value
    return True


MARK = "@@RAW@@"
BIN_DIR = [os.path.join(ROOT, "bin")]


CHAINED = ("tuning", "bandwidth", "portmap", "firewall", "sbr", "vrf", "sample")


def run(exe, cmd, conf_text, env_extra=None, cwd=None):
    ifname = b"eth0" if os.path.basename(exe) in CHAINED else b"net1"
    env = {b"PATH": b"/usr/sbin:/usr/bin:/sbin:/bin", b"CNI_COMMAND": cmd.encode(),
           b"CNI_CONTAINERID": b"cnitfz" + TAG.encode(), b"CNI_NETNS": f"/run/netns/{CONT}".encode(),
           b"CNI_IFNAME": ifname, b"CNI_PATH": BIN_DIR[0].encode(),
           b"CNI_DEBUG": b"1"}
    env.update(env_extra or {})
    t = time.monotonic()
    try:
        r = subprocess.run(["ip", "netns", "exec", HOST, exe], input=conf_text, env=env,
                           capture_output=True, timeout=30, cwd=cwd)
    except subprocess.TimeoutExpired:
        return "hang", b"", b"", 30.0
    dt = time.monotonic() - t
    return r.returncode, r.stdout, r.stderr, dt


def _msg(out):
    try:
        return json.loads(out).get("msg")
    except (ValueError, AttributeError):
        return None


def verdict(rc, out, err):
    """None when fine, else why it is bad."""
    if rc == "hang":
        return "hang"
    if b"Traceback" in err:
        return "traceback"
    if rc == 0:
        return None
    try:
        obj = json.loads(out)
    except ValueError:
        return f"rc={rc} without an error object"
    if not isinstance(obj, dict) or "code" not in obj:
        return f"rc={rc} without an error object"
    if obj["code"] == 999:
        return "code 999"
    return None


def setup():
    for ns in (HOST, CONT):
        subprocess.run(["ip", "netns", "add", ns], check=True)
    sh = ["ip", "-n", HOST]
    subprocess.run(sh + ["link", "add", "cnitfzm", "type", "veth", "peer", "name", "cnitfzmp"],
                   check=True)
    subprocess.run(sh + ["link", "add", "cnitfzv0", "type", "veth", "peer", "name", "eth0",
                         "netns", CONT], check=True)
    for dev in ("cnitfzm", "cnitfzmp", "cnitfzv0"):
        subprocess.run(sh + ["link", "set", dev, "up"], check=True)
    subprocess.run(["ip", "-n", CONT, "link", "set", "eth0", "up"], check=True)
    subprocess.run(["ip", "-n", CONT, "addr", "add", "10.231.1.2/24", "dev", "eth0"], check=True)


def reset_hd():
    subprocess.run(["ip", "-n", HOST, "link", "del", "cnitfzhd"], capture_output=True)
    subprocess.run(["ip", "-n", HOST, "link", "add", "cnitfzhd", "type", "veth", "peer", "name",
                    "cnitfzhdp"], capture_output=True)


def reset(name):
    """Put back what a previous case may have changed (a chained plugin's DEL does not undo
    everything: the main plugin would delete the veth)."""
    if name == "host-device":
        reset_hd()
    if name in CHAINED:
        for where in ("root", "ingress"):
            subprocess.run(["ip", "netns", "exec", HOST, "tc", "qdisc", "del", "dev", "cnitfzv0",
                            where], capture_output=True)
        for cmd in (["ip", "link", "set", "eth0", "mtu", "1500", "up"],
                    ["ip", "addr", "flush", "dev", "eth0"],
                    ["ip", "addr", "add", "10.231.1.2/24", "dev", "eth0"],
                    ["ip", "rule", "flush"], ["ip", "rule", "add", "pref", "0", "table", "local"],
                    ["ip", "rule", "add", "pref", "32766", "table", "main"]):
            subprocess.run(["ip", "-n", CONT] + cmd[1:], capture_output=True)


DEFAULT_STORE = "/var/lib/cni/networks/cnitfznet"   # where host-local goes when a case drops dataDir


def teardown(had_store: bool):
    for ns in (HOST, CONT):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    if not had_store:
        shutil.rmtree(DEFAULT_STORE, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "bin"))
    ap.add_argument("--plugins", default="")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    BIN_DIR[0] = os.path.abspath(a.bin)
    tmp = tempfile.mkdtemp(prefix="cnitfz")
    base = bases(tmp)
    names = [p for p in (a.plugins.split(",") if a.plugins else base) if p]
    had_store = os.path.exists(DEFAULT_STORE)
    setup()
    cases = execs = 0
    bad: list = []
    baseline: dict = {}
    try:
        for name in names:
            exe = os.path.join(a.bin, name)
            # what the valid config gives on this machine (no ipvlan/vlan/vrf/dummy module...)
            base_text = json.dumps(dict({"cniVersion": "1.0.0", "name": "cnitfznet",
                                         "type": name}, **base[name])).encode()
            for cmd in ("ADD", "DEL"):
                reset(name)
                rc, out, _, _ = run(exe, cmd, base_text, cwd=tmp)
                if rc != 0:
                    baseline.setdefault((name, cmd), set()).add(_msg(out))
            for field in fields_for(name):
                for i, val in enumerate(VALUES + RAW):
                    conf = {"cniVersion": "1.0.0", "name": "cnitfznet", "type": name}
                    conf.update(copy.deepcopy(base[name]))
                    raw = i >= len(VALUES)
                    if not put(conf, field, MARK if raw else val):
                        continue
                    text = json.dumps(conf)
                    if raw:
                        text = text.replace(json.dumps(MARK), val)
                    cases += 1
                    reset(name)
                    for cmd in ("ADD", "DEL"):
                        rc, out, err, dt = run(exe, cmd, text.encode(), cwd=tmp)
                        execs += 1
                        why = verdict(rc, out, err)
                        if why == "code 999" and _msg(out) in baseline.get((name, cmd), ()):
                            why = None          # the valid config fails the same way here
                        if why:
                            shown = repr(val)[:40]
                            line = (f"{name} {cmd} {field}={shown}: {why}: "
                                    f"{out.decode(errors='replace')[:300]!r} "
                                    f"{err.decode(errors='replace')[-400:]!r}")
                            print(line, flush=True)
                            bad.append({"plugin": name, "cmd": cmd, "field": field,
                                        "value": shown, "why": why,
                                        "out": out.decode(errors="replace")[:2000],
                                        "err": err.decode(errors="replace")[-3000:]})
        # the environment: bytes that are not UTF-8, in every variable
        for name in names:
            exe = os.path.join(a.bin, name)
            conf = {"cniVersion": "1.0.0", "name": "cnitfznet", "type": name}
            conf.update(copy.deepcopy(base[name]))
            for var, val in ((b"CNI_IFNAME", b"et\xffh0"), (b"CNI_CONTAINERID", b"c\xff"),
                             (b"CNI_NETNS", b"/run/netns/\xff"), (b"CNI_ARGS", b"IP=\xff"),
                             (b"CNI_PATH", b"/\xff"), (b"CNI_ARGS", b"K8S_POD_NAME=\xff;IgnoreUnknown=1")):
                cases += 1
                reset(name)
                for cmd in ("ADD", "DEL"):
                    rc, out, err, dt = run(exe, cmd, json.dumps(conf).encode(), {var: val}, tmp)
                    execs += 1
                    why = verdict(rc, out, err)
                    if why == "code 999" and _msg(out) in baseline.get((name, cmd), ()):
                        why = None
                    if why:
                        print(f"{name} {cmd} env {var.decode()}={val!r}: {why}: "
                              f"{out.decode(errors='replace')[:300]!r} "
                              f"{err.decode(errors='replace')[-400:]!r}", flush=True)
                        bad.append({"plugin": name, "cmd": cmd, "field": var.decode(),
                                    "value": repr(val), "why": why})
    finally:
        teardown(had_store)
    by: dict = {}
    for b in bad:
        by[b["plugin"]] = by.get(b["plugin"], 0) + 1
    print(f"cases={cases} execs={execs} bad={len(bad)} {by}")
    print(f"baseline failures of the valid configs (not counted): {baseline}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"cases": cases, "execs": execs, "bad": bad}, f, indent=1)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
