"""Chain bench: podman's default network (bridge + host-local with ipMasq and hairpin, portmap
with 2 mappings, firewall, tuning), ADD then DEL in reverse with the ADD result as prevResult
(as libcni does), each verb preceded by a VERSION probe as podman does (BENCH_PROBES=0: none),
ours vs the Go reference, paired and interleaved.

The bench process itself enters a bench "host" netns (so plugins are exec'd directly, without
`ip netns exec` diluting the ratio); each side has its own container netns, network name,
bridge and subnet. Per-plugin medians are printed too. BENCH_BEFORE=DIR (an earlier build of
ours) runs as a third side in the same cycles: its medians and ours relative to it follow.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
from common import BIN, GO_BIN, line, rotated  # noqa: E402

CHAIN = ("bridge", "portmap", "firewall", "tuning")
PROBES = os.environ.get("BENCH_PROBES", "1") == "1"   # a VERSION exec before every verb
MAPPINGS = [{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"},
            {"hostPort": 15353, "containerPort": 53, "protocol": "udp"}]


def sh(*argv):
    subprocess.run(argv, check=True, capture_output=True)


def plugin_confs(name: str, n: int, ipam_dir: str) -> list:
    return [
        {"type": "bridge", "bridge": f"cnic{n}", "isGateway": True, "ipMasq": True,
         "hairpinMode": True,
         "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}], "dataDir": ipam_dir,
                  "ranges": [[{"subnet": f"10.{n}.0.0/16", "gateway": f"10.{n}.0.1"}]]}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
        {"type": "firewall"},
        {"type": "tuning"},
    ]


class Side:
    """One implementation's chain: its binaries, CNI_PATH, network and container netns."""

    def __init__(self, label, bindir, ipam_path, name, n, cont, ipam_dir):
        self.label, self.bindir, self.name, self.cont = label, bindir, name, cont
        self.confs = plugin_confs(name, n, ipam_dir)
        self.env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_NETNS": f"/run/netns/{cont}",
                    "CNI_IFNAME": "eth0", "CNI_PATH": ipam_path}
        self.times: dict = {}
        self.seq = 0
        self.cpu = 0.0           # CPU seconds of the plugins and what they ran (less load-bound)

    def _stdin(self, conf, prev):
        c = {"cniVersion": "1.0.0", "name": self.name, **conf}
        if conf.get("capabilities", {}).get("portMappings"):
            c["runtimeConfig"] = {"portMappings": MAPPINGS}
        if prev is not None:
            c["prevResult"] = prev
        return json.dumps(c).encode()

    def _exec(self, plugin, cmd, data, cid):
        if PROBES and cmd != "VERSION":          # podman asks each plugin's VERSION first
            self._exec(plugin, "VERSION", b'{"cniVersion":"1.0.0"}', cid)
        env = dict(self.env, CNI_COMMAND=cmd, CNI_CONTAINERID=cid)
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        r = subprocess.run([os.path.join(self.bindir, plugin)], input=data, capture_output=True,
                           env=env)
        dt = time.perf_counter() - t
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu += (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
        if r.returncode:
            raise SystemExit(f"{self.label} {plugin} {cmd} failed: {r.stdout!r} {r.stderr!r}")
        self.times.setdefault(f"{plugin} {cmd}", []).append(dt)
        return r.stdout

    def cycle(self) -> float:
        self.cpu = 0.0
        self.seq += 1
        cid = f"bench{self.seq}"
        t = time.perf_counter()
        prev = None
        for conf in self.confs:                                   # ADD, threading prevResult
            prev = json.loads(self._exec(conf["type"], "ADD", self._stdin(conf, prev), cid))
        for conf in reversed(self.confs):                         # DEL, reverse, cached result
            self._exec(conf["type"], "DEL", self._stdin(conf, prev), cid)
        return time.perf_counter() - t


def main() -> int:
    if os.geteuid() != 0 or not all(os.path.exists(os.path.join(GO_BIN, p)) for p in CHAIN):
        print("== chain bench skipped (needs root and the Go plugins in /usr/lib/cni)")
        return 0
    missing = [p for p in CHAIN + ("host-local",) if not os.path.exists(os.path.join(BIN, p))]
    if missing:
        print(f"== chain bench skipped (bin/ lacks {missing}: run make build)")
        return 0
    from cni.netns import NetNS
    tag = uuid.uuid4().hex[:6]
    host, c_ours, c_go = f"cnib-h-{tag}", f"cnib-co-{tag}", f"cnib-cg-{tag}"
    c_before = f"cnib-cb-{tag}"
    before_bin = os.environ.get("BENCH_BEFORE")
    d = tempfile.mkdtemp()
    for ns in (host, c_ours, c_go) + ((c_before,) if before_bin else ()):
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    try:
        ours = Side("ours", BIN, BIN, "chaino", 81, c_ours, os.path.join(d, "ipam-o"))
        go = Side("go", GO_BIN, GO_BIN, "chaing", 82, c_go, os.path.join(d, "ipam-g"))
        sides = {"ours": ours, "go": go}
        if before_bin:
            sides["before"] = Side("before", before_bin, before_bin, "chainb", 83, c_before,
                                   os.path.join(d, "ipam-b"))
        n = int(os.environ.get("BENCH_N", "20"))
        cycles: dict = {k: [] for k in sides}
        with NetNS.open(f"/run/netns/{host}") as hns, hns.enter():
            for _ in range(2):                                    # warm up (and make bridges)
                for side in sides.values():
                    side.cycle()
            for side in sides.values():
                side.times.clear()
            cpu: dict = {k: [] for k in sides}
            for i in range(n):
                for k in rotated(sides, i):
                    cycles[k].append(sides[k].cycle())
                    cpu[k].append(sides[k].cpu)
            leftovers = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
        mo, mg = statistics.median(cycles["ours"]), statistics.median(cycles["go"])
        print(f"== chain (bridge+host-local+ipMasq, portmap x2, firewall, tuning): ADD+DEL, "
              f"median of {n}" + (", a VERSION probe before each verb (as podman)" if PROBES else ""))
        print(line("whole chain ADD+DEL (8 execs + 2 IPAM" + (" + 8 VERSION)" if PROBES else ")"),
                   mo, mg, "go"))
        print(line("  same, CPU time (user+sys, children)", statistics.median(cpu["ours"]),
                   statistics.median(cpu["go"]), "go"))
        target = "met" if mo <= 0.7 * mg else "MISSED"
        print(f"{'target <= 0.70x Go':<44} {target}")
        for key in ours.times:
            print(line("  " + key, statistics.median(ours.times[key]),
                       statistics.median(go.times[key]), "go"))
        if before_bin:
            pre = sides["before"]
            print(f"-- against the earlier build {before_bin}, in the same cycles")
            print(line("whole chain ADD+DEL", mo, statistics.median(cycles["before"]), "before"))
            print(line("  same, CPU time", statistics.median(cpu["ours"]),
                       statistics.median(cpu["before"]), "before"))
            for key in ours.times:
                print(line("  " + key, statistics.median(ours.times[key]),
                           statistics.median(pre.times[key]), "before"))
        per = [ln for ln in leftovers.splitlines() if "bench" in ln]
        if per:
            print(f"!! per-container rules left behind: {per[:3]}")
    finally:
        for ns in (c_ours, c_go, c_before, host):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
