"""CNI error tree: one class per spec code; plugin-specific codes are >= 100."""
from __future__ import annotations

import errno


class CNIError(Exception):
    """An error that reaches the runtime as the spec's error object."""

    code = 999

    def __init__(self, msg: str, details: str = "", *, code: int | None = None):
        super().__init__(msg)
        self.msg = msg
        self.details = details
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.msg}: {self.details}" if self.details else self.msg

    def to_dict(self, cni_version: str | None = None) -> dict:
        d: dict = {}
        if cni_version:
            d["cniVersion"] = cni_version
        d["code"] = self.code
        d["msg"] = self.msg
        if self.details:
            d["details"] = self.details
        return d


class IncompatibleVersionError(CNIError):
    code = 1


class UnsupportedFieldError(CNIError):
    code = 2


class UnknownContainerError(CNIError):
    code = 3


class InvalidEnvError(CNIError):
    code = 4


class IOFailureError(CNIError):
    code = 5


class DecodingError(CNIError):
    code = 6


class InvalidConfigError(CNIError):
    code = 7


class InvalidNetNSError(CNIError):
    """libcni extension: CNI_NETNS is the plugin's own network namespace."""
    code = 8


class TryAgainLaterError(CNIError):
    code = 11


class PluginNotAvailableError(CNIError):
    code = 50


class LimitedConnectivityError(CNIError):
    code = 51


class InternalError(CNIError):
    code = 999


BY_CODE = {c.code: c for c in (
    IncompatibleVersionError, UnsupportedFieldError, UnknownContainerError, InvalidEnvError,
    IOFailureError, DecodingError, InvalidConfigError, InvalidNetNSError, TryAgainLaterError,
    PluginNotAvailableError, LimitedConnectivityError, InternalError)}


class PluginNotFoundError(InvalidConfigError):
    """No plugin of that name in CNI_PATH (code 7, as Go's FindInPath error)."""


def from_dict(d: dict) -> CNIError:
    """Rebuild an error from a plugin's error object (keeps the code)."""
    try:
        code = int(d.get("code", 999))
    except (TypeError, ValueError):
        code = 999
    cls = BY_CODE.get(code, CNIError)
    return cls(str(d.get("msg", "")), str(d.get("details", "") or ""), code=code)


def os_details(exc: OSError) -> str:
    """`path: [ENOSPC] No space left on device`: an OSError for an error's details."""
    name = errno.errorcode.get(exc.errno or 0, "")
    text = f"[{name}] {exc.strerror or exc}" if name else str(exc.strerror or exc)
    return f"{exc.filename}: {text}" if exc.filename else text
