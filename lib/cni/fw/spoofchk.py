"""bridge `macspoofchk`: drop frames from a container port whose source MAC is not its own.

Layout as Go's: table `bridge nat`, base chain PREROUTING (filter, prerouting,
priority -300), a jump per port to `cni-br-iface-<cid>-<ifname>`, which jumps to
`...-mac` holding `ether saddr <mac> return` then `drop`. Rules carry the
comment `macspoofchk-<cid>-<ifname>`. One `nft -f -` per change.
The chain names embed CNI_CONTAINERID and CNI_IFNAME, so both must form an nft identifier
(cni.fw.rules.nft_name): validate() refuses others (code 4) before anything is made, and
teardown() has nothing to remove for them.
"""
from __future__ import annotations

from cni.errors import InvalidEnvError
from cni.fw import backend, nft_text, rules

FAMILY, TABLE, BASE = "bridge", "nat", "PREROUTING"


def _names(container_id: str, ifname: str) -> tuple:
    iface = f"cni-br-iface-{container_id}-{ifname}"
    return iface, iface + "-mac", f"macspoofchk-{container_id}-{ifname}"


def validate(container_id: str, ifname: str) -> tuple:
    """The chain names and comment, or InvalidEnvError naming CNI_IFNAME / CNI_CONTAINERID."""
    for var, value in (("CNI_CONTAINERID", container_id), ("CNI_IFNAME", ifname)):
        if not value or not set(value) <= rules.NFT_NAME_CHARS:
            raise InvalidEnvError(f"invalid {var} for macspoofchk",
                                  f"{var}={value[:64]!r}: an nft chain name holds only letters, "
                                  "digits, '_', '.' and '-'")
    iface, macc, comment = _names(container_id, ifname)
    try:
        rules.nft_name(macc, "macspoofchk chain")
    except rules.RuleValueError as exc:
        raise InvalidEnvError("CNI_CONTAINERID too long for macspoofchk", exc.details) from None
    return iface, macc, comment


def setup(container_id: str, ifname: str, host_if: str, mac: str) -> None:
    iface, macc, comment = validate(container_id, ifname)
    c = rules.nft_comment(comment)
    port = rules.nft_ifname(host_if, "host interface")
    nft_text.apply([
        f"add table {FAMILY} {TABLE}",
        f"add chain {FAMILY} {TABLE} {BASE} {{ type filter hook prerouting priority -300 ; policy accept ; }}",
        f"add chain {FAMILY} {TABLE} {iface}",
        f"add chain {FAMILY} {TABLE} {macc}",
        f"flush chain {FAMILY} {TABLE} {iface}",
        f"flush chain {FAMILY} {TABLE} {macc}",
        f"add rule {FAMILY} {TABLE} {BASE} iifname {port} jump {iface} {c}",
        f"add rule {FAMILY} {TABLE} {iface} jump {macc} {c}",
        f"add rule {FAMILY} {TABLE} {macc} ether saddr {rules.mac(mac)} return {c}",
        f"add rule {FAMILY} {TABLE} {macc} drop {c}",
    ])


def teardown(container_id: str, ifname: str) -> None:
    """Remove this port's rules and chains; nothing there (or no nft) is fine."""
    try:
        iface, macc, comment = validate(container_id, ifname)
    except InvalidEnvError:
        return                       # setup refused these names: nothing of ours can exist
    if not backend.have_nft() or not backend.nft_table_may_exist(FAMILY, TABLE):
        return
    rs = nft_text.list_table(FAMILY, TABLE)
    if rs is None:
        return
    lines = [nft_text.delete_rule(r) for r in rs.in_chain(BASE)
             if r.comment == comment or _jumps_to(r, iface)]
    for ch in (iface, macc):
        if ch in rs.chains:
            lines += [f"flush chain {FAMILY} {TABLE} {ch}", f"delete chain {FAMILY} {TABLE} {ch}"]
    nft_text.apply(lines)


def _jumps_to(rule, chain: str) -> bool:
    for e in rule.expr or ():
        if isinstance(e, dict) and e.get("jump", {}).get("target") == chain:
            return True
    return False
