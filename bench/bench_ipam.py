#!/usr/bin/env python3
"""host-local: ours (bin/host-local) vs Go (/usr/lib/cni/host-local), paired.

N sequential ADDs into one /20, then N DELs; the two implementations alternate
op by op, each with its own data dir, each exec's stdin read from a file.
Prints medians per op, the ours/Go ratio, and the per-ADD cost when the store
holds ~100 and ~N reservations (it should not grow).

With --stride K (default 5) only every K-th op of ours is an exec (and timed);
the others run the same code in-process (same files on disk) to keep the run
under ~3 minutes. Go's ops are all execs and all timed. --stride 1 execs all.

usage: bench_ipam.py [-n 2000] [--stride 5] [--ours bin/host-local] [--go /usr/lib/cni/host-local]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--ours", default=os.path.join(ROOT, "bin", "host-local"))
    ap.add_argument("--go", default="/usr/lib/cni/host-local")
    ap.add_argument("--stride", type=int, default=5)
    a = ap.parse_args()
    sys.path[:0] = [os.path.join(ROOT, "lib"), os.path.join(ROOT, "plugins")]
    import io
    import host_local
    from cni import skel
    impls = {"ours": a.ours, "go": a.go}
    tmp = tempfile.mkdtemp(prefix="bench-ipam-")
    try:
        confs = {}
        for k in impls:
            conf = {"cniVersion": "1.0.0", "name": "bench", "type": "bridge",
                    "ipam": {"type": "host-local", "dataDir": os.path.join(tmp, k),
                             "ranges": [[{"subnet": "10.64.0.0/20"}]]}}
            confs[k] = os.path.join(tmp, f"{k}.json")
            with open(confs[k], "w") as f:
                json.dump(conf, f)
        times = {k: {"ADD": [], "DEL": []} for k in impls}
        base = {"CNI_NETNS": "/var/run/netns/bench", "CNI_IFNAME": "eth0",
                "CNI_PATH": "/opt/cni/bin", "PATH": "/usr/bin:/bin"}
        t_start = time.perf_counter()
        for cmd in ("ADD", "DEL"):
            for i in range(a.n):
                env = dict(base, CNI_COMMAND=cmd, CNI_CONTAINERID=f"bench-{i:05d}")
                for k, binary in impls.items():
                    if k == "ours" and i % a.stride:
                        with open(confs[k], "rb") as stdin:
                            rc = skel.run(host_local.PLUGIN, env, stdin, io.StringIO(), io.StringIO())
                        if rc:
                            print(f"in-process {cmd} {i} failed", file=sys.stderr)
                            return 1
                        continue
                    with open(confs[k], "rb") as stdin:
                        t0 = time.perf_counter()
                        p = subprocess.run([binary], stdin=stdin, env=env,
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                        dt = (time.perf_counter() - t0) * 1000
                    if p.returncode != 0:
                        print(f"{k} {cmd} {i} failed: {p.stdout!r} {p.stderr!r}", file=sys.stderr)
                        return 1
                    times[k][cmd].append((i, dt))
        wall = time.perf_counter() - t_start
        left = {k: sorted(os.listdir(os.path.join(tmp, k, "bench"))) for k in impls}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    def med(xs):
        return statistics.median(x[1] if isinstance(x, tuple) else x for x in xs)

    def window(xs, lo, hi):  # ops whose index i is in [lo, hi)
        return [x for x in xs if lo <= x[0] < hi]
    print(f"host-local bench: {a.n} ADDs into a /20 then {a.n} DELs, paired, "
          f"ours timed every {a.stride}th op (exec), go every op ({wall:.0f} s wall)")
    print(f"{'':6}{'ADD median':>12}{'DEL median':>12}{'ADD@100':>10}{'ADD@N':>10}"
          f"{'DEL@N':>10}{'DEL@100':>10}   (ms; @k = median of ~100 ops with ~k reservations)")
    n = a.n
    for k in impls:
        t = times[k]
        print(f"{k:6}{med(t['ADD']):12.2f}{med(t['DEL']):12.2f}"
              f"{med(window(t['ADD'], 50, 150)):10.2f}{med(window(t['ADD'], n - 100, n)):10.2f}"
              f"{med(window(t['DEL'], 0, 100)):10.2f}{med(window(t['DEL'], n - 150, n - 50)):10.2f}")
    for cmd in ("ADD", "DEL"):
        print(f"ratio ours/go {cmd}: {med(times['ours'][cmd]) / med(times['go'][cmd]):.2f}x")
    for k in impls:
        t = times[k]["ADD"]
        print(f"{k}: per-ADD growth from ~100 to ~{a.n} reservations: "
              f"{med(window(t, n - 100, n)) - med(window(t, 50, 150)):+.2f} ms")
    print("left in store:", {k: v for k, v in left.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
