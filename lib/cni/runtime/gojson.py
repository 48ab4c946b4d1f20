"""JSON encoded byte-for-byte as Go's encoding/json.Marshal writes it.

The result cache is shared with Go runtimes (podman, containerd, cnitool), so
the file we write must be what libcni would have written: compact, map keys
sorted, `<`, `>`, `&`, U+2028 and U+2029 escaped, other non-ASCII kept as
UTF-8, numbers decoded as float64 printed the way Go prints them.
"""
from __future__ import annotations

_ESC = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b",
        "\f": "\\f", "<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
        "\u2028": "\\u2028", "\u2029": "\\u2029"}


def quote(s: str) -> str:
    """A Go-escaped JSON string literal."""
    out = ['"']
    for ch in s:
        e = _ESC.get(ch)
        if e is not None:
            out.append(e)
        elif ch < " ":
            out.append("\\u%04x" % ord(ch))
        elif "\ud800" <= ch <= "\udfff":  # lone surrogate: Go writes U+FFFD
            out.append("\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _number(n) -> str:
    """A JSON number as Go prints a float64 (what a decoded interface{} holds)."""
    f = float(n)
    if f != f or f in (float("inf"), float("-inf")):
        raise ValueError("cannot encode non-finite number")
    if f.is_integer() and abs(f) < 1e21:
        return str(int(f))
    a = abs(f)
    if a < 1e-6 or a >= 1e21:
        mant, _, exp = repr(f).partition("e")
        if not exp:
            mant, _, exp = ("%r" % f).partition("e")
        e = int(exp)
        return f"{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"
    return repr(f)


def dumps(obj, *, sort_keys: bool = True) -> str:
    """Compact Go-style JSON. Dict keys are sorted (Go maps) unless sort_keys is False."""
    out: list = []
    _enc(obj, out, sort_keys)
    return "".join(out)


def _enc(o, out: list, sort_keys: bool) -> None:
    if isinstance(o, str):
        out.append(quote(o))
    elif o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif isinstance(o, (int, float)):
        out.append(_number(o))
    elif isinstance(o, dict):
        keys = sorted(o, key=lambda k: str(k).encode("utf-8", "surrogatepass")) \
            if sort_keys else list(o)
        out.append("{")
        for n, k in enumerate(keys):
            if n:
                out.append(",")
            out.append(quote(str(k)))
            out.append(":")
            _enc(o[k], out, sort_keys)
        out.append("}")
    elif isinstance(o, (list, tuple)):
        out.append("[")
        for n, v in enumerate(o):
            if n:
                out.append(",")
            _enc(v, out, sort_keys)
        out.append("]")
    else:
        raise TypeError(f"cannot encode {type(o).__name__} as JSON")

