"""JSON codec standing in for `json` (which pulls in `re`; python3-minimal lacks it).

Decoding uses a pure-Python parser for documents up to SMALL (64 KiB: every config
and result a runtime sends), and the C scanner in `_json` above that when the
interpreter has it (Debian's python3-minimal lacks both `json` and `_json`); errors
are always located by the pure parser. Encoding is pure Python and has two styles:

- default: what `json.dumps(obj, ensure_ascii=True, separators=(",", ":"))` writes,
  or Go's MarshalIndent layout with `indent`;
- `go=True`: byte-for-byte what Go's encoding/json.Marshal writes, for the result cache
  shared with Go runtimes (podman, containerd, cnitool): compact, map keys sorted by
  UTF-8 bytes, `<`, `>`, `&`, U+2028 and U+2029 escaped, other non-ASCII kept as UTF-8,
  numbers printed as Go prints the float64 a decoded interface{} holds.
"""
from __future__ import annotations

_json = None     # the C scanner's module, imported for the first large document
_UNSET = object()
_scan = _UNSET   # its scanner; None: none (python3-minimal), or the pure parser forced
# Below this size the pure parser is quicker than importing `_json` (~0.25 ms of an exec):
# a 1 KB config parses in ~0.1 ms either way.
SMALL = 64 << 10

__all__ = ["loads", "dumps", "quote"]

_WS = " \t\n\r"


def _reject_constant(name):
    raise ValueError(f"invalid JSON constant {name}")


class _Context:
    """The attributes `_json.make_scanner` reads from its context object."""
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_reject_constant)
    memo: dict = {}


def _c_scanner():
    global _json, _scan
    if _scan is _UNSET:
        try:
            import _json as j  # lazy: it pays for itself only on a large document
        except ImportError:  # python3-minimal
            _scan = None
        else:
            _json, _scan = j, j.make_scanner(_Context())
    return _scan


def loads(data, pairs_hook=None):
    """Decode a JSON document from str or bytes; raise ValueError on bad input.

    `pairs_hook`, as json's object_pairs_hook, gets each object's (key, value) list
    (duplicate keys kept) and returns what stands for it (always the pure parser)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"invalid UTF-8: {exc}") from None
    if data.startswith("\ufeff"):
        raise ValueError("unexpected UTF-8 BOM")
    n = len(data)
    i = 0
    while i < n and data[i] in _WS:
        i += 1
    if i == n:
        raise ValueError("empty input")
    scan = _c_scanner() if n > SMALL and pairs_hook is None else None
    if scan is not None:
        try:
            obj, end = scan(data, i)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None
        except Exception:  # noqa: BLE001 - see _locate
            raise ValueError(_locate(data, i)) from None
    else:
        try:
            obj, end = _Parser(data, pairs_hook).value(i)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None
    j = end
    while j < n and data[j] in _WS:
        j += 1
    if j < n:
        raise ValueError(f"invalid character {data[j]!r} after top-level value at offset {j}")
    return obj


def _locate(data: str, i: int) -> str:
    """Why and where `data` is invalid, found again by the pure-Python parser.

    The C scanner reports errors through `json.decoder.JSONDecodeError`, which
    it looks up in sys.modules without importing it: with `json` not loaded (we
    never load it) a syntax error surfaces as a bare SystemError naming the
    scanner object, and a truncated document as StopIteration. Either way the
    parser below gives one message, with an offset, whichever interpreter runs.
    """
    try:
        _Parser(data).value(i)
    except ValueError as exc:
        return str(exc)
    except RecursionError:
        return "JSON nested too deeply"
    return "invalid JSON"


class _Parser:
    """The pure-Python parser: documents up to SMALL, and interpreters without `_json`."""

    __slots__ = ("s", "hook")
    _ESC = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}

    def __init__(self, s: str, hook=None):
        self.s = s
        self.hook = hook

    def _ws(self, i: int) -> int:
        s = self.s
        while i < len(s) and s[i] in _WS:
            i += 1
        return i

    def _fail(self, i: int):
        if i >= len(self.s):
            raise ValueError(f"unexpected end of JSON input at offset {i}")
        raise ValueError(f"invalid character {self.s[i]!r} at offset {i}")

    def value(self, i: int, depth: int = 0):
        if depth > 128:
            raise ValueError("JSON nested too deeply")
        s = self.s
        if i >= len(s):
            self._fail(i)
        c = s[i]
        if c == '"':
            return self.string(i + 1)
        if c == "{":
            return self.obj(i + 1, depth)
        if c == "[":
            return self.arr(i + 1, depth)
        for lit, val in (("true", True), ("false", False), ("null", None)):
            if s.startswith(lit, i):
                return val, i + len(lit)
            if lit.startswith(s[i:i + len(lit)]) and len(s) - i < len(lit):
                self._fail(len(s))  # a literal cut short
        return self.number(i)

    def number(self, i: int):
        s, j = self.s, i
        if j < len(s) and s[j] == "-":
            j += 1
        k = j
        while j < len(s) and s[j].isdigit() and s[j].isascii():
            j += 1
        if j == k or (s[k] == "0" and j - k > 1):
            self._fail(i)
        is_float = False
        if j < len(s) and s[j] == ".":
            j = self._digits(j + 1, i)
            is_float = True
        if j < len(s) and s[j] in "eE":
            j += 1
            if j < len(s) and s[j] in "+-":
                j += 1
            j = self._digits(j, i)
            is_float = True
        text = s[i:j]
        return (float(text) if is_float else int(text)), j

    def _digits(self, j: int, start: int) -> int:
        """The end of the run of ASCII digits at `j` (a fraction or exponent); none fails at `start`."""
        s, k = self.s, j
        while j < len(s) and s[j] in "0123456789":
            j += 1
        if j == k:
            self._fail(start)
        return j

    def string(self, i: int):
        s, out, q = self.s, [], -1
        while True:
            if q < i:  # str.find and min() run in C: long strings stay fast
                q = s.find('"', i)
                if q < 0:
                    q = len(s)
            end = q
            b = s.find("\\", i, end)
            j = end if b < 0 else b
            seg = s[i:j]
            if seg and min(seg) < " ":  # a raw control character: fail where it is
                self._fail(i + next(k for k, c in enumerate(seg) if c < " "))
            out.append(seg)
            if j >= len(s):
                self._fail(j)
            if s[j] == '"':
                return "".join(out), j + 1
            esc = s[j + 1:j + 2]
            if esc == "u":
                cp = self._hex4(j + 2)
                j += 6
                if 0xD800 <= cp < 0xDC00 and s.startswith("\\u", j):
                    lo = self._hex4(j + 2)
                    if 0xDC00 <= lo < 0xE000:
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                        j += 6
                out.append(chr(cp))
                i = j
            elif esc in self._ESC:
                out.append(self._ESC[esc])
                i = j + 2
            else:
                self._fail(j + 1)  # past the end when the input stops after the backslash

    def _hex4(self, i: int) -> int:
        h = self.s[i:i + 4]
        if len(h) < 4 and all(c in "0123456789abcdefABCDEF" for c in h):
            self._fail(len(self.s))  # cut short
        if len(h) != 4 or any(c not in "0123456789abcdefABCDEF" for c in h):
            self._fail(i)
        return int(h, 16)

    def obj(self, i: int, depth: int):
        d: dict = {}
        pairs = None if self.hook is None else []    # for a pairs hook: duplicates kept
        i = self._ws(i)
        if self.s[i:i + 1] == "}":
            return (d if pairs is None else self.hook(pairs)), i + 1
        while True:
            if self.s[i:i + 1] != '"':
                self._fail(i)
            k, i = self.string(i + 1)
            i = self._ws(i)
            if self.s[i:i + 1] != ":":
                self._fail(i)
            v, i = self.value(self._ws(i + 1), depth + 1)
            if pairs is None:
                d[k] = v
            else:
                pairs.append((k, v))
            i = self._ws(i)
            c = self.s[i:i + 1]
            if c == "}":
                return (d if pairs is None else self.hook(pairs)), i + 1
            if c != ",":
                self._fail(i)
            i = self._ws(i + 1)

    def arr(self, i: int, depth: int):
        a: list = []
        i = self._ws(i)
        if self.s[i:i + 1] == "]":
            return a, i + 1
        while True:
            v, i = self.value(self._ws(i), depth + 1)
            a.append(v)
            i = self._ws(i)
            c = self.s[i:i + 1]
            if c == "]":
                return a, i + 1
            if c != ",":
                self._fail(i)
            i = self._ws(i + 1)


_ESC_OUT = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _quote(s: str) -> str:
    """A string literal as json.dumps(ensure_ascii=True) writes it."""
    if s.isascii() and s.isprintable() and '"' not in s and "\\" not in s:
        return '"' + s + '"'
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif o < 0x20 or o > 0x7E:
            if o > 0xFFFF:
                o -= 0x10000
                out.append("\\u%04x\\u%04x" % (0xD800 | (o >> 10), 0xDC00 | (o & 0x3FF)))
            else:
                out.append(_ESC_OUT.get(ch) or "\\u%04x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


_GO_ESC = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b",
           "\f": "\\f", "<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
           "\u2028": "\\u2028", "\u2029": "\\u2029"}
_GO_TABLE: dict = {}    # str.translate table for Go's escaping, built on first use


def _quote_go(s: str) -> str:
    """A string as Go's encoding/json writes it: _GO_ESC, other control characters as
    \\u00XX, and a lone surrogate (an undecodable byte) as U+FFFD."""
    if not _GO_TABLE:
        _GO_TABLE.update(dict.fromkeys(range(0xD800, 0xE000), "\ufffd"))
        _GO_TABLE.update((c, "\\u%04x" % c) for c in range(0x20))
        _GO_TABLE.update((ord(ch), e) for ch, e in _GO_ESC.items())
    return '"' + s.translate(_GO_TABLE) + '"'


def quote(s: str, *, go: bool = False) -> str:
    """One JSON string literal, in the default or the Go style."""
    return _quote_go(s) if go else _quote(s)


def _number(o) -> str:
    if isinstance(o, int):
        return int.__repr__(o)
    if o != o or o in (float("inf"), float("-inf")):
        raise ValueError("cannot encode non-finite float")
    return float.__repr__(o)


def _number_go(n) -> str:
    """A JSON number as Go prints a float64 (what a decoded interface{} holds)."""
    f = float(n)
    if f != f or f in (float("inf"), float("-inf")):
        raise ValueError("cannot encode non-finite float")
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


def _utf8_key(k) -> bytes:
    return str(k).encode("utf-8", "surrogatepass")


def dumps(obj, indent: int | None = None, *, go: bool = False, sort_keys: bool | None = None) -> str:
    """Encode obj; `indent` gives Go-style pretty output (as MarshalIndent).

    `go=True` writes Go's Marshal bytes (see the module doc); its keys are sorted
    unless sort_keys=False. The default style keeps dict order unless sort_keys=True.
    """
    out: list = []
    if go:
        _enc(obj, out, indent, 0, _quote_go, _number_go, sort_keys is not False)
    else:
        _enc(obj, out, indent, 0, _quote, _number, bool(sort_keys))
    return "".join(out)


def _enc(o, out: list, indent, level: int, quote, number, sort: bool) -> None:
    """Append the encoding of `o`: `quote` writes strings, `number` numbers; `sort` orders dict keys."""
    if isinstance(o, str):
        out.append(quote(o))
    elif o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif isinstance(o, (int, float)):
        out.append(number(o))
    elif isinstance(o, (dict, list, tuple)):
        if not o:
            out.append("{}" if isinstance(o, dict) else "[]")
            return
        if indent is None:
            first, sep, colon, close = "", ",", ":", ""
        else:
            first = "\n" + " " * (indent * (level + 1))
            sep, colon, close = "," + first, ": ", "\n" + " " * (indent * level)
        if isinstance(o, dict):
            keys = sorted(o, key=_utf8_key) if sort else o
            out.append("{" + first)
            for n, k in enumerate(keys):
                if n:
                    out.append(sep)
                out.append(quote(str(k)))
                out.append(colon)
                _enc(o[k], out, indent, level + 1, quote, number, sort)
            out.append(close + "}")
        else:
            out.append("[" + first)
            for n, v in enumerate(o):
                if n:
                    out.append(sep)
                _enc(v, out, indent, level + 1, quote, number, sort)
            out.append(close + "]")
    else:
        raise TypeError(f"cannot encode {type(o).__name__} as JSON")
