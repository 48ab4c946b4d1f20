"""The portmap plugin's input: the runtime's port mappings and the backend options, validated.

normalize_mappings() checks runtimeConfig.portMappings; resolve_backend() picks iptables or
nftables as Go's ensureBackend does and checks the options of that backend (conditions,
externalSetMarkChain, markMasqBit) at config time, so that every value can become rule text
(cni.fw.rules). The rules themselves are cni.fw.portmap's.
"""
from __future__ import annotations

from cni import addr as ipaddress
from cni.errors import InvalidConfigError
from cni.fw import backend as be
from cni.fw import rules
from cni.fw.backend import IPTABLES, NFTABLES

PROTOCOLS = rules.PROTOCOLS
MAX_MAPPINGS = 65536 * 2        # a mapping per port and protocol (tcp, udp): more is absurd


def normalize_mappings(raw, field: str = "runtimeConfig.portMappings") -> list:
    """runtimeConfig.portMappings -> [{hostPort, containerPort, protocol, hostIP}] (validated).

    Keys match case-insensitively (containerd sends HostPort, ...); protocol defaults to tcp
    and is lower-cased; hostIP "" means unset (None), else an ipaddress object (a plain
    address: an IPv6 zone such as `fe80::1%eth0` is refused).
    """
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidConfigError("invalid portMappings", f"{field} must be a list")
    if len(raw) > MAX_MAPPINGS:
        raise InvalidConfigError("too many port mappings",
                                 f"{field} holds {len(raw)} entries; at most {MAX_MAPPINGS}"
                                 " (every port, for tcp and udp) are allowed")
    out = []
    for i, item in enumerate(raw):
        at = f"{field}[{i}]"
        if not isinstance(item, dict):
            raise InvalidConfigError("invalid port mapping", f"{at} must be an object")
        low = {str(k).lower(): v for k, v in item.items()}
        m: dict = {}
        for key in ("hostPort", "containerPort"):
            v = low.get(key.lower())
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 65535:
                raise InvalidConfigError(f"invalid {key}", f"{at}.{key}={v!r}: must be 1-65535")
            m[key] = v
        proto = low.get("protocol") or "tcp"
        if not isinstance(proto, str) or proto.lower() not in PROTOCOLS:
            raise InvalidConfigError("invalid protocol",
                                     f"{at}.protocol={proto!r}: must be tcp, udp or sctp")
        m["protocol"] = proto.lower()
        hip = low.get("hostip") or None
        if hip is not None:
            try:
                if not isinstance(hip, str) or "%" in hip:
                    raise ValueError(hip)
                hip = ipaddress.ip_address(hip)
            except ValueError:
                raise InvalidConfigError("invalid hostIP",
                                         f"{at}.hostIP={hip!r:.80}: must be an IP address") from None
        m["hostIP"] = hip
        out.append(m)
    return out


def conditions_backend(conditions) -> str:
    """Go detectBackendOfConditions: iptables if the first item starts with '-' or '!'."""
    if not conditions or not conditions[0]:
        return ""
    return IPTABLES if conditions[0][0] in "-!" else NFTABLES


def resolve_backend(backend: str | None = None, *, conditions_v4=None, conditions_v6=None,
                    external_setmark_chain=None, mark_masq_bit=None) -> str:
    """Pick the backend as Go's ensureBackend does and reject options of the other one."""
    if mark_masq_bit is not None and external_setmark_chain is not None:
        raise InvalidConfigError("cannot specify externalSetMarkChain and markMasqBit")
    if mark_masq_bit is not None and not 0 <= mark_masq_bit <= 31:
        raise InvalidConfigError("markMasqBit must be between 0 and 31", f"markMasqBit={mark_masq_bit}")
    owned: dict = {IPTABLES: [], NFTABLES: []}
    if external_setmark_chain is not None:
        owned[IPTABLES].append("externalSetMarkChain")
    for name, cond in (("conditionsV4", conditions_v4), ("conditionsV6", conditions_v6)):
        b = conditions_backend(cond)
        if b:
            owned[b].append(name)
    chosen = be.select(backend)
    wrong = NFTABLES if chosen == IPTABLES else IPTABLES
    if owned[wrong]:
        raise InvalidConfigError(f"{chosen} backend was requested but configuration contains "
                                 f"{wrong}-specific options", ", ".join(owned[wrong]))
    check_options(chosen, conditions_v4=conditions_v4, conditions_v6=conditions_v6,
                  external_setmark_chain=external_setmark_chain)
    return chosen


def check_options(backend: str, *, conditions_v4=None, conditions_v6=None,
                  external_setmark_chain=None) -> None:
    """Refuse (code 7, naming the field) any option that cannot become rule text as given."""
    if external_setmark_chain is not None:
        rules.ipt_chain(external_setmark_chain, "externalSetMarkChain")
    cond = rules.nft_conditions if backend == NFTABLES else rules.ipt_conditions
    cond(conditions_v4, "conditionsV4")
    cond(conditions_v6, "conditionsV6")
