"""Diagnostics on stderr (stdout belongs to the protocol)."""
from __future__ import annotations

import sys

from cni.std import oslite as os


def warn(msg: str) -> None:
    try:
        sys.stderr.write(f"{os.path.basename(sys.argv[0] or 'cni')}: {msg}\n")
    except (OSError, ValueError):
        pass


def debug(msg: str) -> None:
    if os.environ.get("CNI_DEBUG") == "1":
        warn(msg)
