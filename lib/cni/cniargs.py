"""What the runtime hands over beside the config: identifiers (container ID, network name)
and CNI_ARGS, parsed with Go's rules (skel's LoadArgs). Its own module so that the no-op
fast path (cni.fastpath) checks them without loading the config parser."""
from __future__ import annotations

from cni.errors import InvalidEnvError

_NAME_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def valid_id(s: str) -> bool:
    """`^[A-Za-z0-9][A-Za-z0-9_.-]*$`: container IDs and network names."""
    return bool(s) and s[0] in _ALNUM and all(c in _NAME_OK for c in s)


def parse_cni_args(s: str) -> list:
    """CNI_ARGS 'K=V;K2=V2' -> [(K, V), ...]; Go's strict pair rules (code 4)."""
    if not s:
        return []
    out = []
    for pair in s.split(";"):
        kv = pair.split("=")
        if len(kv) != 2 or not kv[0]:
            raise InvalidEnvError("invalid CNI_ARGS", f"ARGS: invalid pair {pair!r}")
        out.append((kv[0], kv[1]))
    return out


def _truthy(v: str, key: str) -> bool:
    lv = v.lower()
    if lv in ("1", "true"):
        return True
    if lv in ("0", "false"):
        return False
    raise InvalidEnvError("invalid CNI_ARGS", f"ARGS: {key}={v!r} is not a boolean")


def load_cni_args(s: str, known) -> dict:
    """Pick known keys (case-sensitive, as Go field names) out of CNI_ARGS.

    Unknown keys are an error unless IgnoreUnknown is true, as Go's LoadArgs.
    Returns {key: value} for the known keys present.
    """
    pairs = parse_cni_args(s)
    out: dict = {}
    unknown = []
    ignore = False
    for k, v in pairs:
        if k == "IgnoreUnknown":
            ignore = _truthy(v, k)
        elif k in known:
            out[k] = v
        else:
            unknown.append(k)
    if unknown and not ignore:
        raise InvalidEnvError("invalid CNI_ARGS", f"ARGS: unknown args {unknown}")
    return out
