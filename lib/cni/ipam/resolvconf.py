"""resolv.conf -> DNS, as host-local's `resolvConf` option reads it."""
from __future__ import annotations

from cni.errors import IOFailureError
from cni.types import DNS


def parse(text: str) -> DNS:
    """nameserver (one each), domain (last wins), search and options (appended).

    Lines starting with '#' or ';' are comments; a keyword without a value is ignored.
    """
    dns = DNS()
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        fields = line.split()
        if len(fields) < 2:
            continue
        key = fields[0]
        if key == "nameserver":
            dns.nameservers.append(fields[1])
        elif key == "domain":
            dns.domain = fields[1]
        elif key == "search":
            dns.search.extend(fields[1:])
        elif key == "options":
            dns.options.extend(fields[1:])
    return dns


def load(path: str) -> DNS:
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 20)
    except OSError as exc:
        raise IOFailureError("cannot read resolvConf", f"{path}: {exc.strerror or exc}") from None
    return parse(data.decode("utf-8", "replace"))
