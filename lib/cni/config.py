"""Network configuration: the NetConf base, a declarative field parser, field checks."""
from __future__ import annotations

from cni.cniargs import valid_id
from cni.errors import DecodingError, InvalidConfigError, InvalidEnvError
from cni.std import json as jsonx

_IFNAME_BAD = frozenset("/:\x00") | frozenset(" \t\n\r\v\f\x1c\x1d\x1e\x1f\x85\xa0")
IFNAMSIZ = 16           # the kernel's limit, NUL included
_TYPE_NAMES = {bool: "a boolean", int: "an integer", str: "a string", list: "a list",
               dict: "an object", float: "a number"}


def valid_ifname(name: str) -> str:
    """'' if ok, else the reason (Go's ValidateInterfaceName + NUL)."""
    if not name:
        return "interface name is empty"
    try:
        size = len(name.encode())
    except UnicodeEncodeError:      # bytes that are not UTF-8 arrive as lone surrogates
        return "interface name is not valid UTF-8"
    if size > IFNAMSIZ - 1:
        return "interface name is too long"
    if name in (".", ".."):
        return "interface name is . or .."
    for c in name:
        if c in _IFNAME_BAD or c.isspace():
            return f"interface name contains an invalid character {c!r}"
    return ""


def check_attachment(cid: str, ifname: str, cid_var: str, ifname_var: str) -> None:
    """A container ID and interface name as the spec requires them (InvalidEnvError, code 4);
    `cid_var`/`ifname_var` name where they came from."""
    if not valid_id(cid) or len(cid) > 1024:
        raise InvalidEnvError(f"invalid {cid_var}",
                              f"{cid[:64]!r} must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
    why = valid_ifname(ifname)
    if why:
        raise InvalidEnvError(f"invalid {ifname_var}", f"{ifname[:64]!r}: {why}")


def load_object(raw, msg: str, not_object: str) -> dict:
    """A JSON object from text or bytes; DecodingError(msg) for bad JSON or (with the
    detail `not_object`) for any other value."""
    try:
        obj = jsonx.loads(raw)
    except ValueError as exc:
        raise DecodingError(msg, str(exc)) from None
    if not isinstance(obj, dict):
        raise DecodingError(msg, not_object)
    return obj


def check_ifname(name: str, msg: str, shown=None) -> str:
    """`name` if valid_ifname accepts it, else InvalidConfigError(msg) with the reason
    (`shown`: how the details print the value, default its repr)."""
    why = valid_ifname(name)
    if why:
        raise InvalidConfigError(msg, f"{repr(name) if shown is None else shown}: {why}")
    return name


def ifname(value, field: str) -> str:
    """A FIELDS type: a string that, when not empty, is a valid interface name
    (InvalidConfigError "invalid <field>" otherwise)."""
    value = coerce(value, str, field)
    return check_ifname(value, f"invalid {field}") if value else value


def check_name(name) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidConfigError("missing network name", "the config has no \"name\"")
    if not valid_id(name) or len(name) > 255:
        raise InvalidConfigError("invalid network name",
                                 f"name {name!r} must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    return name


def coerce(value, typ, field: str):
    """Check a decoded JSON value against a field type; Go's json rules, strict."""
    if typ is None or value is None:
        return value
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidConfigError("invalid config", f"{field} must be a number")
        return value
    if typ is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidConfigError("invalid config", f"{field} must be an integer")
        return value
    if isinstance(typ, type):
        if not isinstance(value, typ) or (typ is not bool and isinstance(value, bool)):
            raise InvalidConfigError("invalid config",
                                     f"{field} must be {_TYPE_NAMES.get(typ, typ.__name__)}")
        return value
    return typ(value, field)  # a converter function(value, field) -> value


def match_key(obj: dict, key: str):
    """The key of `obj` that Go's encoding/json would decode into a struct field named `key`.

    An exact match wins; otherwise keys compare case-insensitively (Unicode case folding,
    like Go's), and of several such keys the last one in the document counts, as Go sets the
    field once per key in order. None when nothing matches.
    """
    if dict.__contains__(obj, key):
        return key
    want = key.casefold()
    found = None
    for k in obj:
        if isinstance(k, str) and k.casefold() == want:
            found = k
    return found


def lookup(obj, key: str, default=None):
    """obj[key] matched as Go decodes a struct field (see match_key); nested objects come back
    as GoObject so that their fields are read the same way."""
    k = match_key(obj, key) if isinstance(obj, dict) else None
    if k is None:
        return default
    v = dict.__getitem__(obj, k)
    return GoObject(v) if type(v) is dict else v


class GoObject(dict):
    """A decoded JSON object whose fixed keys are read as Go reads a struct: `get`, `[]` and
    `in` match exactly, else case-insensitively (match_key). Iterating, len() and JSON encoding
    see the plain dict, keys spelled as sent.
    """

    __slots__ = ()

    def get(self, key, default=None):
        return lookup(self, key, default)

    def __getitem__(self, key):
        k = match_key(self, key)
        if k is None:
            raise KeyError(key)
        v = dict.__getitem__(self, k)
        return GoObject(v) if type(v) is dict else v

    def __contains__(self, key) -> bool:
        return match_key(self, key) is not None


def _go_object(value, field):
    if not isinstance(value, dict):
        raise InvalidConfigError("invalid config", f"{field} must be an object")
    return GoObject(value)


def parse_fields(obj, table: dict, target, prefix: str = "") -> None:
    """Fill `target` attributes from obj per {jsonKey: (attr, type, default)}.

    Keys match as Go's encoding/json matches struct fields (match_key).
    """
    for key, (attr, typ, default) in table.items():
        k = match_key(obj, key) if obj else None
        v = dict.__getitem__(obj, k) if k is not None else None
        if v is None:
            if isinstance(default, type):      # list / dict: a fresh empty one
                v = default()
            elif isinstance(default, (list, dict)):
                v = type(default)(default)
            else:
                v = default
        else:
            v = coerce(v, typ, prefix + key)
        setattr(target, attr, v)


def _dns(v, field):
    from cni.types import DNS  # lazy: only a config with dns (types pulls cni.addr)
    try:
        return DNS.from_dict(GoObject(v) if type(v) is dict else v)
    except DecodingError as exc:
        raise InvalidConfigError("invalid config", exc.details) from None


class NetConf:
    """Base of every plugin's config: the spec's common keys plus the raw object.

    Subclasses add a FIELDS table {jsonKey: (attr, type, default)} and may
    override validate(). Unknown keys stay in `raw` untouched.
    """

    BASE_FIELDS = {
        "cniVersion": ("cni_version", str, ""),
        "name": ("name", str, ""),
        "type": ("type", str, ""),
        "ipam": ("ipam", _go_object, None),
        "dns": ("dns", _dns, None),
        "args": ("args", _go_object, GoObject),
        "runtimeConfig": ("runtime_config", _go_object, GoObject),
        "capabilities": ("capabilities", dict, dict),
    }
    FIELDS: dict = {}
    __slots__ = ("cni_version", "name", "type", "ipam", "dns", "args", "runtime_config",
                 "capabilities", "prev_result", "raw", "raw_bytes")

    @classmethod
    def load(cls, obj: dict, raw_bytes: bytes = b"") -> NetConf:
        self = cls.__new__(cls)
        parse_fields(obj, cls.BASE_FIELDS, self)
        if cls.FIELDS:
            parse_fields(obj, cls.FIELDS, self)
        self.raw = GoObject(obj)
        self.raw_bytes = raw_bytes
        self.prev_result = None
        prev = self.raw.get("prevResult")
        if prev is not None:
            from cni.convert import from_json  # lazy: only a config with prevResult
            try:
                self.prev_result = from_json(prev, self.cni_version)
            except DecodingError as exc:
                raise DecodingError("invalid prevResult", str(exc)) from None
        self.validate()
        return self

    def validate(self) -> None:
        """Check field values; raise InvalidConfigError naming the field."""

    def ipam_type(self) -> str:
        t = (self.ipam or {}).get("type", "")
        return t if isinstance(t, str) else ""

    def cni_arg(self, key: str, default=None):
        """args.cni.<key> from the config's `args` (the CONVENTIONS way)."""
        c = self.args.get("cni") if isinstance(self.args, dict) else None
        return c.get(key, default) if isinstance(c, dict) else default


# ---- numeric limits of kernel fields (a value that cannot be encoded is code 7, not 999) ----
MAX_MTU = 65535                 # ETH_MAX_MTU: the largest MTU of the links we create or tune
U32_MAX = 0xFFFFFFFF


def check_range(value: int, lo: int, hi: int, field: str) -> int:
    """value if lo <= value <= hi, else code 7 naming the field and the bounds."""
    if not lo <= value <= hi:
        # str() of a huge int is slow, and raises beyond 4300 digits on Python 3.11+
        shown = str(value) if abs(value).bit_length() <= 96 else \
            f"a {abs(value).bit_length()}-bit number"
        raise InvalidConfigError(f"invalid {field}",
                                 f"{field} {shown} is out of range [{lo}, {hi}]")
    return value


def check_mtu(value: int, field: str = "mtu") -> int:
    return check_range(value, 0, MAX_MTU, field)


def check_path(value: str, field: str) -> str:
    """A file system path from the config: no NUL byte, at most PATH_MAX (what the kernel
    takes)."""
    if "\0" in value:
        raise InvalidConfigError(f"invalid {field}", f"{field} holds a NUL character")
    if len(value.encode("utf-8", "surrogateescape")) >= 4096:
        raise InvalidConfigError(f"invalid {field}", f"{field} is longer than 4095 bytes")
    return value
