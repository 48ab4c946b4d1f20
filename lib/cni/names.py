"""Go's hashed names: (prefix + the sha512 hex of a text)[:length], as its
MustFormatHashWithPrefix makes them.

iptables chains (cni.fw.backend.chain_name), the masquerade hashes (cni.fw.masq) and the
bandwidth plugin's IFB device are named this way. A module of its own, so that the no-op fast
path can name an IFB without loading the firewall layer.
"""
from __future__ import annotations

IFB_PREFIX = "bwp"
IFB_NAME_LEN = 15


def sha512_hex(s: str) -> str:
    try:
        from _sha512 import sha512  # lazy: by version; 3.11, cheaper than hashlib
    except ImportError:
        try:
            from _sha2 import sha512  # 3.12+
        except ImportError:
            from hashlib import sha512
    return sha512(s.encode()).hexdigest()


def hash_with_prefix(length: int, prefix: str, to_hash: str) -> str:
    """Go MustFormatHashWithPrefix: (prefix + sha512 hex)[:length]."""
    if len(prefix) >= length or length > 128:
        raise ValueError("invalid length")
    return (prefix + sha512_hex(to_hash))[:length]


def ifb_name(network: str, container_id: str) -> str:
    """The bandwidth plugin's IFB for a container's egress shaping (Go's getIfbDeviceName)."""
    return hash_with_prefix(IFB_NAME_LEN, IFB_PREFIX, network + container_id)
