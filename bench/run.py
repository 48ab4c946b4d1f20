"""`make bench`: run every bench module in bench/ (bench_*.py), each printing its own lines."""
from __future__ import annotations

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> int:
    only = sys.argv[1:]
    rc = 0
    for fn in sorted(os.listdir(HERE)):
        if not (fn.startswith("bench_") and fn.endswith(".py")):
            continue
        if only and fn[6:-3] not in only:
            continue
        r = subprocess.run([sys.executable, os.path.join(HERE, fn)])
        rc |= r.returncode
        print(flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
