"""bridge/ptp bench: full ADD+DEL cycles, ours vs the Go reference, paired and interleaved.

Everything happens in bench namespaces: a "host" netns where the plugins run and
a container netns per cycle. Scenarios: bridge + host-local, bridge + host-local
+ ipMasq, ptp + host-local.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import BIN, GO_BIN, line, paired  # noqa: E402


def sh(*argv):
    subprocess.run(argv, check=True, capture_output=True)


def main() -> int:
    if os.geteuid() != 0 or not os.path.exists(os.path.join(GO_BIN, "bridge")):
        print("== bridge bench skipped (needs root and the Go plugins in /usr/lib/cni)")
        return 0
    ours_ipam = os.path.exists(os.path.join(BIN, "host-local"))
    tag = uuid.uuid4().hex[:6]
    host, cont = f"cnib-h-{tag}", f"cnib-c-{tag}"
    d = tempfile.mkdtemp()
    sh("ip", "netns", "add", host)
    sh("ip", "netns", "add", cont)
    sh("ip", "-n", host, "link", "set", "lo", "up")
    try:
        def conf(kind, name, masq, n):
            c = {"cniVersion": "1.0.0", "name": name, "type": kind,
                 "ipam": {"type": "host-local", "subnet": f"10.{n}.0.0/16",
                          "dataDir": os.path.join(d, "ipam"), "routes": [{"dst": "0.0.0.0/0"}]}}
            if kind == "bridge":
                c.update(bridge=f"cnib{n}", isGateway=True)
            if masq:
                c["ipMasq"] = True
            p = os.path.join(d, f"{name}.json")
            with open(p, "w") as f:
                json.dump(c, f)
            return p

        def cycle(plugin, path, stdin, n=[0]):
            n[0] += 1
            env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_CONTAINERID": f"b{n[0]}",
                   "CNI_NETNS": f"/run/netns/{cont}", "CNI_IFNAME": "eth0", "CNI_PATH": path}
            t = time.perf_counter()
            for cmd in ("ADD", "DEL"):
                with open(stdin, "rb") as f:
                    r = subprocess.run(["ip", "netns", "exec", host, plugin], stdin=f,
                                       capture_output=True, env=dict(env, CNI_COMMAND=cmd))
                if r.returncode:
                    raise SystemExit(f"{plugin} {cmd} failed: {r.stdout!r} {r.stderr!r}")
            return time.perf_counter() - t

        scen = [("bridge + host-local", "bridge", False, 71),
                ("bridge + host-local + ipMasq", "bridge", True, 72),
                ("ptp + host-local", "ptp", False, 73)]
        cases = {}
        for label, kind, masq, n in scen:
            ours_conf = conf(kind, f"o{n}", masq, n)
            go_conf = conf(kind, f"g{n}", masq, n + 10)
            our_path = BIN if ours_ipam else GO_BIN
            cases[label + "|ours"] = (lambda k=kind, p=our_path, c=ours_conf:
                                      cycle(os.path.join(BIN, k), p, c))
            cases[label + "|go"] = (lambda k=kind, c=go_conf:
                                    cycle(os.path.join(GO_BIN, k), GO_BIN, c))
        m = paired(cases, n=int(os.environ.get("BENCH_N", "20")), warmup=2)
        print("== bridge/ptp: one ADD+DEL cycle, median"
              + ("" if ours_ipam else " (ours with Go host-local: bin/host-local missing)"))
        for label, *_ in scen:
            print(line(label, m[label + "|ours"], m[label + "|go"], "go"))
    finally:
        subprocess.run(["ip", "netns", "del", cont], capture_output=True)
        subprocess.run(["ip", "netns", "exec", host, "iptables-save"], capture_output=True)
        subprocess.run(["ip", "netns", "del", host], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
