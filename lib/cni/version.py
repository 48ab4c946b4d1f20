"""Spec versions: the supported list, parsing and comparison."""
from __future__ import annotations

from cni.errors import DecodingError

ALL = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
CURRENT = "1.1.0"
LEGACY = ("0.1.0", "0.2.0")
_INT64_MAX = (1 << 63) - 1


def _short(s: str) -> str:
    """repr(s), cut to 40 characters: an error message never echoes a huge input."""
    return repr(s) if len(s) <= 40 else repr(s[:40]) + f"... ({len(s)} characters)"


def parse(v: str) -> tuple:
    """'1.0' -> (1, 0, 0); '' -> (0, 1, 0), as Go's ParseVersion."""
    if v == "":
        return (0, 1, 0)
    if not isinstance(v, str):
        raise DecodingError("invalid version", f"{v!r} is not a string")
    parts = v.split(".")
    if len(parts) > 3:
        raise DecodingError("invalid version", f"{_short(v)} has too many parts")
    out = []
    for p in parts:
        if not p.isdigit() or not p.isascii():
            raise DecodingError("invalid version", f"{_short(v)}: {_short(p)} is not a number")
        q = p.lstrip("0") or "0"          # Go's Atoi: leading zeros are fine, int64 is not
        if len(q) > 19 or int(q) > _INT64_MAX:
            raise DecodingError("invalid version",
                                f"{_short(v)}: part {_short(p)} is too large")
        out.append(int(q))
    while len(out) < 3:
        out.append(0)
    return tuple(out)


def ge(a: str, b: str) -> bool:
    return parse(a) >= parse(b)


def starting_from(v: str) -> tuple:
    """The versions in ALL that are >= v."""
    p = parse(v)
    return tuple(x for x in ALL if parse(x) >= p)


def family(v: str) -> str:
    """Result-format family: '0.2' (0.1/0.2), '0.4' (0.3.x/0.4), '1' (1.x)."""
    p = parse(v)
    if p < (0, 3, 0):
        return "0.2"
    if p < (1, 0, 0):
        return "0.4"
    if p < (2, 0, 0):
        return "1"
    raise DecodingError("unsupported CNI result version", f"{v!r}")


def has_check(v: str) -> bool:
    return ge(v, "0.4.0")


def has_status(v: str) -> bool:
    return ge(v, "1.1.0")


has_gc = has_status
