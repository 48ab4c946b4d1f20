"""Netlink benchmark: N veth pairs in a fresh netns, each set up with an address and a route, then
deleted. Ours (cni.nl.rtnl) vs `ip -batch` of the same commands vs pyroute2 (if importable).

    sudo python3 bench/bench_netlink.py [-n 200] [-r 5]
    sudo .venv-bench/bin/python bench/bench_netlink.py     # includes pyroute2 (bench-only venv)

Prints the median wall time of each and the ratios to ours. The netns is removed in any case.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from cni.netns import NetNS  # noqa: E402
from cni.nl.rtnl import Rtnl  # noqa: E402


def names(i):
    return f"bv{i}", f"bp{i}", f"10.{100 + i // 250}.{i % 250}.1/24", f"10.{200 + i // 250}.{i % 250}.0/24"


def run_ours(path, n):
    t = time.perf_counter()
    with Rtnl(path) as h:
        for i in range(n):
            a, b, addr, net = names(i)
            lk = h.veth_add(a, b)
            h.link_set(lk.index, up=True)
            h.addr_add(lk.index, addr)
            h.route_add(net, dev=lk.index)
        for i in range(n):
            h.link_del(names(i)[0])
    return time.perf_counter() - t


def run_ip(nsname, n):
    lines = []
    for i in range(n):
        a, b, addr, net = names(i)
        lines += [f"link add {a} type veth peer name {b}", f"link set {a} up",
                  f"addr add {addr} dev {a}", f"route add {net} dev {a}"]
    lines += [f"link del {names(i)[0]}" for i in range(n)]
    script = "\n".join(lines) + "\n"
    t = time.perf_counter()
    subprocess.run(["ip", "-n", nsname, "-batch", "-"], input=script, text=True, check=True)
    return time.perf_counter() - t


def run_pyroute2(path, n):
    from pyroute2 import IPRoute
    t = time.perf_counter()
    with NetNS.open(path) as ns:
        with ns.enter():
            ipr = IPRoute()
    try:
        for i in range(n):
            a, b, addr, net = names(i)
            ipr.link("add", ifname=a, kind="veth", peer=b)
            idx = ipr.link_lookup(ifname=a)[0]
            ipr.link("set", index=idx, state="up")
            ip, plen = addr.split("/")
            ipr.addr("add", index=idx, address=ip, prefixlen=int(plen))
            dst, dlen = net.split("/")
            ipr.route("add", dst=dst, dst_len=int(dlen), oif=idx)
        for i in range(n):
            ipr.link("del", index=ipr.link_lookup(ifname=names(i)[0])[0])
    finally:
        ipr.close()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200, help="veth pairs per run")
    ap.add_argument("-r", type=int, default=5, help="runs per implementation")
    args = ap.parse_args()
    try:
        import pyroute2  # noqa: F401
        have_pr2 = True
    except ImportError:
        have_pr2 = False
    nsname = f"cnibench-{uuid.uuid4().hex[:8]}"
    path = f"/run/netns/{nsname}"
    subprocess.run(["ip", "netns", "add", nsname], check=True)
    results: dict[str, list[float]] = {"ours": [], "ip -batch": []}
    if have_pr2:
        results["pyroute2"] = []
    try:
        for _ in range(args.r):
            results["ours"].append(run_ours(path, args.n))
            results["ip -batch"].append(run_ip(nsname, args.n))
            if have_pr2:
                results["pyroute2"].append(run_pyroute2(path, args.n))
    finally:
        subprocess.run(["ip", "netns", "del", nsname], capture_output=True)
    base = statistics.median(results["ours"])
    print(f"{args.n} veth pairs x (create, up, addr, route) + delete; median of {args.r} runs")
    for k, v in results.items():
        med = statistics.median(v)
        print(f"  {k:10s} {med * 1000:8.1f} ms   {med / base:5.2f}x ours   "
              f"({args.n * 5 / med:,.0f} ops/s)")
    if not have_pr2:
        print("  pyroute2   not importable (run with .venv-bench/bin/python)")


if __name__ == "__main__":
    main()
