"""Command line of `dhcp daemon`: Go `flag` package rules and Go durations."""
from __future__ import annotations

from cni.dhcp import client as C
from cni.dhcp.plugin_side import DEFAULT_SOCKET_PATH

USAGE = """Usage of daemon:
  -broadcast
        broadcast DHCP leases
  -hostprefix string
        optional prefix to host root
  -pidfile string
        optional path to write daemon PID to
  -resendmax duration
        optional dhcp client max resend delay between requests (default 1m2s)
  -resendtimeout duration
        optional dhcp client resend timeout, no more retries after this timeout (default 3m28s)
  -socketpath string
        optional dhcp server socketpath
  -statedir string
        optional directory of the lease state file (default: the socket's directory)
  -timeout duration
        optional dhcp client timeout duration for each request (default 10s)
"""

_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(s: str) -> float:
    """Go time.ParseDuration ("1m30s", "500ms", "-2h", "0") -> seconds."""
    orig, total, sign = s, 0.0, 1.0
    if s[:1] in "+-" and s:
        sign, s = (-1.0 if s[0] == "-" else 1.0), s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f"invalid duration {orig!r}")
    while s:
        i = 0
        while i < len(s) and (s[i].isdigit() or s[i] == "."):
            i += 1
        num, s = s[:i], s[i:]
        j = 0
        while j < len(s) and not (s[j].isdigit() or s[j] == "."):
            j += 1
        unit, s = s[:j], s[j:]
        if not num or num == "." or num.count(".") > 1 or unit not in _UNITS:
            raise ValueError(f"invalid duration {orig!r}")
        total += float(num) * _UNITS[unit]
    return sign * total


class Options:
    __slots__ = ("pidfile", "hostprefix", "socketpath", "statedir", "broadcast", "timeout",
                 "resendmax", "resendtimeout")

    def __init__(self):
        self.pidfile = self.hostprefix = self.socketpath = self.statedir = ""
        self.broadcast = False
        self.timeout, self.resendmax = 10.0, C.RESEND_DELAY_MAX
        self.resendtimeout = C.RESEND_TIMEOUT


class UsageError(Exception):
    pass


def parse_flags(argv: list) -> Options:
    """Go `flag` package rules: -name value, -name=value, --name; bools take only =value."""
    o = Options()
    kinds = {"pidfile": str, "hostprefix": str, "socketpath": str, "statedir": str,
             "broadcast": bool,
             "timeout": float, "resendmax": float, "resendtimeout": float}
    args = list(argv)
    while args:
        a = args[0]
        if len(a) < 2 or a[0] != "-":
            break  # first non-flag argument ends parsing
        args.pop(0)
        if a == "--":
            break
        name = a[2:] if a.startswith("--") else a[1:]
        value = None
        if "=" in name:
            name, value = name.split("=", 1)
        if name in ("h", "help"):
            raise UsageError("")
        if name not in kinds:
            raise UsageError(f"flag provided but not defined: -{name}")
        kind = kinds[name]
        if kind is bool:
            if value is None:
                value = "true"
            if value.lower() not in ("1", "t", "true", "0", "f", "false"):
                raise UsageError(f"invalid boolean value {value!r} for -{name}")
            setattr(o, name, value.lower() in ("1", "t", "true"))
            continue
        if value is None:
            if not args:
                raise UsageError(f"flag needs an argument: -{name}")
            value = args.pop(0)
        if kind is float:
            try:
                setattr(o, name, parse_duration(value))
            except ValueError:
                raise UsageError(f"invalid value {value!r} for flag -{name}: "
                                 "parse error") from None
        else:
            setattr(o, name, value)
    if not o.socketpath:
        o.socketpath = DEFAULT_SOCKET_PATH
    return o
