"""A small D-Bus client: wire-format marshalling, AUTH EXTERNAL, method calls (for firewalld).

Values: y b n q i u x t d -> int/bool/float, s o g -> str, a<T> -> list (a{KV} -> dict),
(...) -> tuple, v -> Variant(signature, value). Messages are written little-endian; either
byte order is read.
"""
from __future__ import annotations

import os
import socket
import struct

SYSTEM_BUS = "unix:path=/run/dbus/system_bus_socket"
BUS_NAME, BUS_PATH = "org.freedesktop.DBus", "/org/freedesktop/DBus"
METHOD_CALL, METHOD_RETURN, ERROR, SIGNAL = 1, 2, 3, 4
NO_REPLY_EXPECTED = 0x1
F_PATH, F_INTERFACE, F_MEMBER, F_ERROR_NAME, F_REPLY_SERIAL, F_DESTINATION, F_SENDER, \
    F_SIGNATURE = range(1, 9)
FIELD_SIG = {F_PATH: "o", F_INTERFACE: "s", F_MEMBER: "s", F_ERROR_NAME: "s", F_REPLY_SERIAL: "u",
             F_DESTINATION: "s", F_SENDER: "s", F_SIGNATURE: "g"}
_FIXED = {"y": ("B", 1), "b": ("I", 4), "n": ("h", 2), "q": ("H", 2), "i": ("i", 4),
          "u": ("I", 4), "x": ("q", 8), "t": ("Q", 8), "d": ("d", 8), "h": ("I", 4)}
_ALIGN = {"s": 4, "o": 4, "g": 1, "a": 4, "(": 8, "{": 8, "v": 1}
MAX_MESSAGE = 1 << 27


class DBusError(OSError):
    """An error reply (name + message) or a protocol/transport failure."""

    def __init__(self, name: str, message: str = ""):
        super().__init__(f"{name}: {message}" if message else name)
        self.name = name
        self.message = message


class Variant:
    __slots__ = ("signature", "value")

    def __init__(self, signature: str, value):
        self.signature, self.value = signature, value

    def __eq__(self, other):
        return isinstance(other, Variant) and (self.signature, self.value) == (other.signature,
                                                                                other.value)

    def __repr__(self) -> str:
        return f"Variant({self.signature!r}, {self.value!r})"


# --- signatures -------------------------------------------------------------------------------

def _type_end(sig: str, i: int) -> int:
    """Index just past the single complete type starting at sig[i]."""
    c = sig[i]
    if c == "a":
        return _type_end(sig, i + 1)
    if c in "({":
        close = ")" if c == "(" else "}"
        j = i + 1
        while sig[j] != close:
            j = _type_end(sig, j)
        return j + 1
    if c in _FIXED or c in "sogv":
        return i + 1
    raise ValueError(f"invalid D-Bus signature {sig!r}")


def split_signature(sig: str) -> list:
    out, i = [], 0
    try:
        while i < len(sig):
            j = _type_end(sig, i)
            out.append(sig[i:j])
            i = j
    except IndexError:
        raise ValueError(f"invalid D-Bus signature {sig!r}") from None
    return out


def _align_of(t: str) -> int:
    return _FIXED[t[0]][1] if t[0] in _FIXED else _ALIGN[t[0]]


# --- marshalling ------------------------------------------------------------------------------

class _Writer:
    __slots__ = ("buf", "e")

    def __init__(self, endian: str = "<"):
        self.buf = bytearray()
        self.e = endian

    def pad(self, n: int) -> None:
        self.buf += b"\0" * (-len(self.buf) % n)

    def put(self, t: str, v) -> None:
        c = t[0]
        if c in _FIXED:
            fmt, size = _FIXED[c]
            self.pad(size)
            self.buf += struct.pack(self.e + fmt, int(v) if c == "b" else v)
        elif c in "so":
            b = v.encode()
            self.pad(4)
            self.buf += struct.pack(self.e + "I", len(b)) + b + b"\0"
        elif c == "g":
            b = v.encode()
            self.buf += bytes((len(b),)) + b + b"\0"
        elif c == "v":
            self.put("g", v.signature)
            self.put(v.signature, v.value)
        elif c == "(":
            self.pad(8)
            for st, sv in zip(split_signature(t[1:-1]), v):
                self.put(st, sv)
        elif c == "a":
            et = t[1:]
            self.pad(4)
            at = len(self.buf)
            self.buf += b"\0\0\0\0"
            self.pad(_align_of(et))
            start = len(self.buf)
            if et[0] == "{":
                kt, vt = split_signature(et[1:-1])
                for k, x in v.items():
                    self.pad(8)
                    self.put(kt, k)
                    self.put(vt, x)
            else:
                for x in v:
                    self.put(et, x)
            struct.pack_into(self.e + "I", self.buf, at, len(self.buf) - start)
        else:
            raise ValueError(f"cannot marshal type {t!r}")


def marshal(signature: str, values, endian: str = "<") -> bytes:
    """The body bytes of `values` (a sequence, one per complete type in `signature`)."""
    w = _Writer(endian)
    types = split_signature(signature)
    if len(types) != len(values):
        raise ValueError(f"signature {signature!r} needs {len(types)} values, got {len(values)}")
    for t, v in zip(types, values):
        w.put(t, v)
    return bytes(w.buf)


class _Reader:
    __slots__ = ("buf", "pos", "e")

    def __init__(self, buf, pos: int = 0, endian: str = "<"):
        self.buf, self.pos, self.e = buf, pos, endian

    def align(self, n: int) -> None:
        self.pos += -self.pos % n

    def get(self, t: str):
        c = t[0]
        if c in _FIXED:
            fmt, size = _FIXED[c]
            self.align(size)
            v = struct.unpack_from(self.e + fmt, self.buf, self.pos)[0]
            self.pos += size
            return bool(v) if c == "b" else v
        if c in "so":
            self.align(4)
            n = struct.unpack_from(self.e + "I", self.buf, self.pos)[0]
            s = bytes(self.buf[self.pos + 4:self.pos + 4 + n]).decode()
            self.pos += 5 + n
            return s
        if c == "g":
            n = self.buf[self.pos]
            s = bytes(self.buf[self.pos + 1:self.pos + 1 + n]).decode()
            self.pos += 2 + n
            return s
        if c == "v":
            sig = self.get("g")
            return Variant(sig, self.get(sig))
        if c == "(":
            self.align(8)
            return tuple(self.get(st) for st in split_signature(t[1:-1]))
        if c == "a":
            et = t[1:]
            self.align(4)
            n = struct.unpack_from(self.e + "I", self.buf, self.pos)[0]
            self.pos += 4
            self.align(_align_of(et))
            end = self.pos + n
            if end > len(self.buf):
                raise DBusError("org.freedesktop.DBus.Error.InvalidArgs", "array overruns message")
            if et[0] == "{":
                kt, vt = split_signature(et[1:-1])
                d = {}
                while self.pos < end:
                    self.align(8)
                    k = self.get(kt)
                    d[k] = self.get(vt)
                return d
            out = []
            while self.pos < end:
                out.append(self.get(et))
            return out
        raise ValueError(f"cannot unmarshal type {t!r}")


def unmarshal(signature: str, buf, endian: str = "<") -> list:
    r = _Reader(memoryview(buf), 0, endian)
    try:
        return [r.get(t) for t in split_signature(signature)]
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise DBusError("org.freedesktop.DBus.Error.InvalidArgs", f"bad body: {exc}") from None


# --- messages ---------------------------------------------------------------------------------

class Message:
    __slots__ = ("type", "flags", "serial", "fields", "body")

    def __init__(self, type: int, fields: dict, body=(), *, flags: int = 0, serial: int = 0):
        self.type, self.flags, self.serial = type, flags, serial
        self.fields, self.body = fields, list(body)

    def get(self, field: int, default=None):
        return self.fields.get(field, default)

    def encode(self) -> bytes:
        sig = self.fields.get(F_SIGNATURE, "")
        body = marshal(sig, self.body) if sig else b""
        fields = [(k, Variant(FIELD_SIG[k], v)) for k, v in sorted(self.fields.items())
                  if v not in (None, "")]
        w = _Writer("<")
        for t, v in (("y", ord("l")), ("y", self.type), ("y", self.flags), ("y", 1),
                     ("u", len(body)), ("u", self.serial), ("a(yv)", fields)):
            w.put(t, v)
        w.pad(8)
        return bytes(w.buf) + body

    @classmethod
    def decode(cls, data) -> Message:
        e = {ord("l"): "<", ord("B"): ">"}.get(data[0])
        if e is None:
            raise DBusError("org.freedesktop.DBus.Error.InvalidArgs", "bad endianness byte")
        r = _Reader(memoryview(data), 1, e)
        mtype, flags, _ = r.get("y"), r.get("y"), r.get("y")  # then the protocol version
        blen, serial = r.get("u"), r.get("u")
        fields = {k: v.value for k, v in r.get("a(yv)")}
        r.align(8)
        sig = fields.get(F_SIGNATURE, "")
        body = unmarshal(sig, data[r.pos:r.pos + blen], e) if sig else []
        return cls(mtype, fields, body, flags=flags, serial=serial)


def message_size(head: bytes) -> int:
    """Total length of a message from its first 16 bytes."""
    e = "<" if head[0] == ord("l") else ">"
    blen, _serial, flen = struct.unpack_from(e + "III", head, 4)
    size = 16 + flen + (-(16 + flen) % 8) + blen
    if size > MAX_MESSAGE:
        raise DBusError("org.freedesktop.DBus.Error.LimitsExceeded", f"message of {size} bytes")
    return size


# --- connection -------------------------------------------------------------------------------

def _sockaddr(address: str):
    for part in address.split(";"):
        kind, _, rest = part.partition(":")
        if kind != "unix":
            continue
        kv = dict(x.split("=", 1) for x in rest.split(",") if "=" in x)
        if "path" in kv:
            return _unescape(kv["path"])
        if "abstract" in kv:
            return "\0" + _unescape(kv["abstract"])
    raise DBusError("org.freedesktop.DBus.Error.BadAddress", f"no usable unix address in {address!r}")


def _unescape(s: str) -> str:
    if "%" not in s:
        return s
    from urllib.parse import unquote  # lazy: only an escaped bus address needs it
    return unquote(s)


def system_bus_address() -> str:
    return os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or SYSTEM_BUS


class Connection:
    """One authenticated bus connection; `call()` sends a method call and waits for its reply."""

    __slots__ = ("sock", "serial", "unique_name", "_rbuf", "timeout")

    def __init__(self, address: str | None = None, *, timeout: float = 5.0, hello: bool = True):
        self.timeout = timeout
        self.serial = 0
        self.unique_name = ""
        self._rbuf = b""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.settimeout(timeout)
            self.sock.connect(_sockaddr(address or system_bus_address()))
            self._auth()
            if hello:
                self.unique_name = self.call(BUS_NAME, BUS_PATH, BUS_NAME, "Hello")[0]
        except BaseException:
            self.sock.close()
            raise

    def _auth(self) -> None:
        uid = str(os.geteuid()).encode().hex()
        self.sock.sendall(b"\0AUTH EXTERNAL " + uid.encode() + b"\r\n")
        line = self._readline()
        if not line.startswith(b"OK "):
            raise DBusError("org.freedesktop.DBus.Error.AuthFailed", line.decode("ascii", "replace"))
        self.sock.sendall(b"BEGIN\r\n")

    def _readline(self) -> bytes:
        while b"\r\n" not in self._rbuf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise DBusError("org.freedesktop.DBus.Error.NoReply", "connection closed during auth")
            self._rbuf += chunk
            if len(self._rbuf) > 16384:
                raise DBusError("org.freedesktop.DBus.Error.AuthFailed", "auth line too long")
        line, _, self._rbuf = self._rbuf.partition(b"\r\n")
        return line

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _read(self, n: int) -> bytes:
        while len(self._rbuf) < n:
            chunk = self.sock.recv(max(65536, n - len(self._rbuf)))
            if not chunk:
                raise DBusError("org.freedesktop.DBus.Error.Disconnected", "bus closed the connection")
            self._rbuf += chunk
        out, self._rbuf = self._rbuf[:n], self._rbuf[n:]
        return out

    def recv(self) -> Message:
        head = self._read(16)
        rest = self._read(message_size(head) - 16)
        return Message.decode(head + rest)

    def send(self, msg: Message) -> int:
        self.serial += 1
        msg.serial = self.serial
        self.sock.sendall(msg.encode())
        return msg.serial

    def call(self, dest: str, path: str, interface: str, member: str, signature: str = "",
             args=()) -> list:
        """Call a method; its reply body, or DBusError for an error reply."""
        fields = {F_PATH: path, F_INTERFACE: interface, F_MEMBER: member, F_DESTINATION: dest}
        if signature:
            fields[F_SIGNATURE] = signature
        serial = self.send(Message(METHOD_CALL, fields, args))
        try:
            while True:
                m = self.recv()
                if m.get(F_REPLY_SERIAL) != serial:
                    continue                    # signals (NameAcquired) and strays
                if m.type == ERROR:
                    text = m.body[0] if m.body and isinstance(m.body[0], str) else ""
                    raise DBusError(m.get(F_ERROR_NAME, "org.freedesktop.DBus.Error.Failed"), text)
                return m.body
        except socket.timeout:
            raise DBusError("org.freedesktop.DBus.Error.NoReply",
                            f"{interface}.{member}: no reply within {self.timeout} s") from None

    def reply(self, to: Message, signature: str = "", args=()) -> None:
        fields = {F_REPLY_SERIAL: to.serial, F_DESTINATION: to.get(F_SENDER)}
        if signature:
            fields[F_SIGNATURE] = signature
        self.send(Message(METHOD_RETURN, fields, args))

    def error(self, to: Message, name: str, text: str = "") -> None:
        fields = {F_REPLY_SERIAL: to.serial, F_DESTINATION: to.get(F_SENDER), F_ERROR_NAME: name}
        if text:
            fields[F_SIGNATURE] = "s"
        self.send(Message(ERROR, fields, [text] if text else []))
