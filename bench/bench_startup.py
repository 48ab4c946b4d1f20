"""Start-up report: every plugin and verb against a bare interpreter and the Go plugin.

For each plugin (ours in bin/, Go's in /usr/lib/cni) and verb (ADD, CHECK, DEL, VERSION),
run in a bench "host" netns against a container netns that has an eth0 (the bench process
enters the host netns itself, so plugins are exec'd directly). Every exec is paired with
a bare `python3 -IS -c pass` and the Go plugin in the same round (interleaved), and the
medians are printed with both ratios. Chained plugins get a prevResult; the cases marked
"no-op" ask for nothing (no mappings, no limits, no changes). Then `-X importtime`'s top
10 for the three slowest verbs relative to the bare interpreter.

With --before DIR (an earlier build of ours), that build runs in the same rounds too, and two
more columns give its median and ours relative to it: before and after, paired.

usage: bench_startup.py [--bin DIR] [--before DIR] [--only PLUGIN ...]   (BENCH_N rounds, default 30)
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
from common import BIN, GO_BIN, exec_once, launch_argv, rotated  # noqa: E402

PY = "/usr/bin/python3"
SUBNET = "10.197"
# each side's own subnet (its store), bridge suffix, ifname and container-id letter: all sides
# share the two netns
SIDES = {"ours": ("10.197", "", "eth1", "o"), "go": ("10.198", "g", "eth2", "g"),
         "before": ("10.196", "b", "eth3", "b")}


def sh(*argv):
    subprocess.run(argv, check=True, capture_output=True)


def prev_result(cont: str) -> dict:
    return {"cniVersion": "1.0.0",
            "interfaces": [{"name": "eth0", "sandbox": f"/run/netns/{cont}"}],
            "ips": [{"address": f"{SUBNET}.0.2/24", "gateway": f"{SUBNET}.0.1", "interface": 0}],
            "routes": [{"dst": "0.0.0.0/0"}]}


def scenarios(d: str, cont: str) -> list:
    """(label, plugin, conf, verbs): conf is the stdin without name/cniVersion."""
    prev = prev_result(cont)
    ipam = {"type": "host-local", "subnet": f"{SUBNET}.64.0/18", "dataDir": os.path.join(d, "ipam")}
    return [
        ("loopback", "loopback", {"type": "loopback"}, ("ADD", "CHECK", "DEL")),
        ("bridge+host-local", "bridge",
         {"type": "bridge", "bridge": "cnisb0", "isGateway": True,
          "ipam": dict(ipam, routes=[{"dst": "0.0.0.0/0"}])}, ("ADD", "CHECK", "DEL")),
        ("ptp+host-local", "ptp", {"type": "ptp", "ipam": dict(ipam, subnet=f"{SUBNET}.128.0/18")},
         ("ADD", "CHECK", "DEL")),
        ("host-local", "host-local", {"type": "host-local", "ipam": dict(
            ipam, subnet=f"{SUBNET}.192.0/20")}, ("ADD", "CHECK", "DEL")),
        ("static", "static", {"type": "static", "ipam": {"type": "static", "addresses": [
            {"address": f"{SUBNET}.250.2/24"}]}}, ("ADD", "CHECK", "DEL")),
        ("tuning no-op", "tuning", {"type": "tuning", "prevResult": prev}, ("ADD", "CHECK", "DEL")),
        ("tuning sysctl", "tuning", {"type": "tuning", "prevResult": prev, "sysctl": {
            "net.ipv4.conf.eth0.arp_notify": "1"}}, ("ADD", "CHECK", "DEL")),
        ("portmap no-op", "portmap", {"type": "portmap", "prevResult": prev,
                                      "capabilities": {"portMappings": True}},
         ("ADD", "CHECK", "DEL")),
        ("bandwidth no-op", "bandwidth", {"type": "bandwidth", "prevResult": prev},
         ("ADD", "DEL")),
        ("firewall", "firewall", {"type": "firewall", "prevResult": prev}, ("ADD", "CHECK", "DEL")),
    ]


class Runner:
    def __init__(self, bins: dict, cont: str, d: str):
        self.bins, self.cont, self.d = bins, cont, d
        self.n = 0

    def stdin(self, side: str, label: str, conf: dict) -> str:
        subnet, suffix, _, letter = SIDES[side]
        name = letter + label.split()[0].replace("+", "-")
        c = dict(conf, cniVersion="1.0.0", name=name)
        if side != "ours" and "ipam" in c:    # own store and subnet: all sides share the netns
            c["ipam"] = json.loads(json.dumps(c["ipam"]).replace(f"{SUBNET}.", f"{subnet}."))
            if "dataDir" in c["ipam"]:
                c["ipam"]["dataDir"] += "-" + side
        if side != "ours" and c.get("bridge"):
            c["bridge"] = c["bridge"] + suffix
        p = os.path.join(self.d, f"{side}-{label.replace(' ', '_')}.json")
        with open(p, "w") as f:
            json.dump(c, f)
        return p

    def env(self, side: str, verb: str, cid: str, ifname: str) -> dict:
        return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND": verb,
                "CNI_CONTAINERID": cid, "CNI_NETNS": f"/run/netns/{self.cont}",
                "CNI_IFNAME": ifname, "CNI_PATH": self.bins[side]}


def ratio(a: float, b: float) -> str:
    return f"{a / b:5.2f}x" if b else "   - "


def importtime_top(exe: str, env: dict, stdin: str, k: int = 10) -> list:
    with open(stdin, "rb") as f:
        r = subprocess.run(launch_argv(exe, "-X", "importtime"), stdin=f,
                           capture_output=True, env=env)
    rows = []
    for ln in r.stderr.decode().splitlines():
        if ln.startswith("import time:") and ln.count("|") == 2 and "self [us]" not in ln:
            self_us, cum, name = [x.strip() for x in ln[len("import time:"):].split("|")]
            rows.append((int(self_us), int(cum), name))
    rows.sort(key=lambda r: -r[0])
    return rows[:k], sum(r[0] for r in rows)


def main() -> int:
    argv = sys.argv[1:]
    ours, before = BIN, None
    if "--bin" in argv:
        i = argv.index("--bin")
        ours = os.path.abspath(argv[i + 1])
        del argv[i:i + 2]
    if "--before" in argv:
        i = argv.index("--before")
        before = os.path.abspath(argv[i + 1])
        del argv[i:i + 2]
    bins = {"ours": ours, "go": GO_BIN, **({"before": before} if before else {})}
    only = argv[1:] if argv[:1] == ["--only"] else []
    if os.geteuid() != 0 or not os.path.exists(os.path.join(GO_BIN, "bridge")):
        print("== start-up bench skipped (needs root and the Go plugins in /usr/lib/cni)")
        return 0
    from cni.netns import NetNS
    tag = uuid.uuid4().hex[:6]
    host, cont = f"cnib-h-{tag}", f"cnib-c-{tag}"
    d = tempfile.mkdtemp()
    for ns in (host, cont):
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "-n", host, "link", "add", "cnisbv", "type", "veth", "peer", "name", "eth0",
       "netns", cont)
    sh("ip", "-n", cont, "addr", "add", f"{SUBNET}.0.2/24", "dev", "eth0")
    sh("ip", "-n", cont, "link", "set", "eth0", "up")
    sh("ip", "-n", host, "addr", "add", f"{SUBNET}.0.1/24", "dev", "cnisbv")
    sh("ip", "-n", host, "link", "set", "cnisbv", "up")
    sh("ip", "-n", cont, "route", "add", "default", "via", f"{SUBNET}.0.1")
    n = int(os.environ.get("BENCH_N", "30"))
    run = Runner(bins, cont, d)
    vin = os.path.join(d, "version.json")
    with open(vin, "w") as f:
        f.write('{"cniVersion":"1.0.0"}')
    results = []     # (label, verb, ours, go, bare, before)
    slow = []        # (ratio, exe, env, stdin, label verb)
    try:
        with NetNS.open(f"/run/netns/{host}") as hns, hns.enter():
            for label, plugin, conf, verbs in scenarios(d, cont):
                if only and plugin not in only:
                    continue
                exe = {s: os.path.join(b, plugin) for s, b in bins.items()}
                if not os.path.exists(exe["ours"]):
                    continue
                sides = [s for s in bins if os.path.exists(exe[s])]
                stdin = {s: run.stdin(s, label, conf) for s in sides}
                chained = bool(conf.get("prevResult"))
                ifname = {s: "eth0" if chained else SIDES[s][2] for s in sides}
                times = {(s, v): [] for s in sides + ["bare"] for v in verbs}
                later = {s: stdin[s] + ".prev" for s in sides}   # CHECK/DEL get the ADD result
                for i in range(n + 2):
                    for v in verbs:
                        for s in rotated(sides, i):
                            cid = f"sb{SIDES[s][3]}{plugin[:4]}{i}"
                            src = stdin[s] if v == "ADD" else later[s]
                            dt, rc, out = exec_once([exe[s]], run.env(s, v, cid, ifname[s]), src)
                            if rc:
                                raise SystemExit(f"{s} {label} {v} failed: {out[:300]!r}")
                            if v == "ADD":
                                with open(stdin[s]) as f:
                                    c = json.load(f)
                                c["prevResult"] = json.loads(out)
                                with open(later[s], "w") as f:
                                    json.dump(c, f)
                            if i >= 2:
                                times[(s, v)].append(dt)
                        dt = exec_once([PY, "-IS", "-c", "pass"], run.env("ours", v, "x", ifname["ours"]),
                                       stdin["ours"])[0]
                        if i >= 2:
                            times[("bare", v)].append(dt)
                for v in verbs:
                    m = {s: statistics.median(times[(s, v)]) for s in sides + ["bare"]}
                    results.append((label, v, m["ours"], m.get("go", 0.0), m["bare"],
                                    m.get("before", 0.0)))
                    slow.append((m["ours"] / m["bare"], exe["ours"],
                                 run.env("ours", v, "imp", ifname["ours"]),
                                 stdin["ours"] if v == "ADD" else later["ours"], f"{label} {v}"))
            # VERSION for every plugin
            vt = {}
            names = sorted(p for p in os.listdir(ours) if not p.startswith(".") and p != "cnitool")
            if only:
                names = [p for p in names if p in only]
            venv = {"CNI_COMMAND": "VERSION", "PATH": "/usr/bin:/bin"}
            for i in range(n):
                for p in names:
                    for s, dirn in bins.items():
                        e = os.path.join(dirn, p)
                        if os.path.exists(e):
                            vt.setdefault((p, s), []).append(exec_once([e], venv, vin)[0])
                vt.setdefault(("", "bare"), []).append(exec_once([PY, "-IS", "-c", "pass"], venv,
                                                                 vin)[0])
            bare_v = statistics.median(vt[("", "bare")])
            print(f"== start-up: median wall time per exec over {n} rounds, paired with a bare "
                  f"`python3 -IS -c pass` and Go 1.1.1 ({ours})")
            if before:
                print(f"   before: {before}, in the same rounds")
            print(f"{'plugin':<22}{'verb':<8}{'ours ms':>9}{'bare ms':>9}{'go ms':>9}"
                  f"{'/bare':>8}{'/go':>8}" + (f"{'before':>9}{'/before':>9}" if before else ""))

            def row(label, v, o, b, g, pre):
                print(f"{label:<22}{v:<8}{o * 1e3:9.2f}{b * 1e3:9.2f}{g * 1e3:9.2f}"
                      f"{ratio(o, b):>8}{ratio(o, g):>8}"
                      + (f"{pre * 1e3:9.2f}{ratio(o, pre):>9}" if before else ""))
            for label, v, o, g, b, pre in results:
                row(label, v, o, b, g, pre)
            for p in names:
                med = {s: statistics.median(vt[(p, s)]) if (p, s) in vt else 0.0 for s in bins}
                row(p, "VERSION", med["ours"], bare_v, med["go"], med.get("before", 0.0))
            slow.sort(key=lambda t: -t[0])
            for r, exe, env, stdin, what in slow[:3]:
                try:
                    top, total = importtime_top(exe, env, stdin)
                except ValueError:          # not a preamble build (an older bin/)
                    continue
                print(f"-- -X importtime, {what} ({r:.2f}x bare): {total / 1000:.1f} ms of "
                      f"imports; top 10 by self time (us self / cumulative)")
                for self_us, cum, name in top:
                    print(f"     {self_us:6d} {cum:7d}  {name}")
    finally:
        for ns in (cont, host):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["rm", "-rf", d])
    return 0


if __name__ == "__main__":
    sys.exit(main())
