"""Shared bench helpers: paired, interleaved timing of whole execs."""
from __future__ import annotations

import os
import statistics
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BENCH_BIN") or os.path.join(ROOT, "bin")   # BENCH_BIN: another build
GO_BIN = "/usr/lib/cni"


def exec_once(argv, env=None, stdin_path=None) -> tuple:
    """Run argv with stdin from a file; return (seconds, returncode, stdout)."""
    fin = open(stdin_path or os.devnull, "rb")
    try:
        t = time.perf_counter()
        r = subprocess.run(argv, stdin=fin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        dt = time.perf_counter() - t
    finally:
        fin.close()
    return dt, r.returncode, r.stdout


def rotated(items, i: int) -> list:
    """`items` starting at position i (mod len): round i of a paired bench runs its sides in
    this order, so each side goes first as often as the others. With a fixed order, the same
    build's bridge DEL measured 2-3 ms slower in first place than in second (the kernel's
    deferred work from the previous execs): rotating spreads such order effects evenly."""
    items = list(items)
    k = i % len(items) if items else 0
    return items[k:] + items[:k]


def paired(cases: dict, n: int = 40, warmup: int = 3) -> dict:
    """cases: name -> callable() returning seconds. Interleaved, in rotating order; returns
    name -> median seconds."""
    times = {k: [] for k in cases}
    for _ in range(warmup):
        for f in cases.values():
            f()
    for i in range(n):
        for k in rotated(cases, i):
            times[k].append(cases[k]())
    return {k: statistics.median(v) for k, v in times.items()}


def line(label: str, ours: float, ref: float, ref_label: str) -> str:
    return (f"{label:<44} ours {ours * 1000:8.2f} ms   {ref_label} {ref * 1000:8.2f} ms"
            f"   ratio {ours / ref:5.2f}x")


def launch_argv(exe: str, *pyopts: str) -> list:
    """argv that runs `exe` as its sh preamble does, with extra interpreter options
    (e.g. "-X", "importtime"): the preamble's `exec 'PYTHON' -IS -c 'CODE' "$0"` line."""
    with open(exe, "rb") as f:
        head = f.read(8192).decode("latin-1")
    i = head.index("\nexec '") + 7
    python = head[i:head.index("'", i)]
    j = head.index("-IS -c '", i) + 8
    code = head[j:head.index("' \"$0\"", j)]
    return [python, *pyopts, "-IS", "-c", code, exe]
