"""IP masquerade for bridge/ptp `ipMasq`, rule-compatible with Go's pkg/ip ipmasq (both backends).

iptables (table nat, per family): chain CNI-<sha512(net+cid)>[:24] holding
`-d <subnet> -j ACCEPT` and `! -d <multicast> -j MASQUERADE`, and a POSTROUTING jump
`-s <ip>/32 -j <chain>`, every rule commented `name: "<net>" id: "<cid>"`.
nftables: table `inet cni_plugins_masquerade`, base chain `postrouting` (rebuilt on ADD) that
returns for multicast and jumps to `masq_checks`, which holds one rule per container IP whose
comment starts with `<h16(net)>-<h16(ifname:cid)>`. Rule text is built with cni.fw.rules.
"""
from __future__ import annotations

from cni.errors import InternalError
from cni.fw import backend as be
from cni.fw import rules
from cni.fw.backend import IPTABLES, NFTABLES
from cni.names import hash_with_prefix

TABLE = "cni_plugins_masquerade"
CHAIN = "masq_checks"
_MCAST = {4: "224.0.0.0/4", 6: "ff00::/8"}


class MasqCheckError(InternalError):
    """CHECK found a masquerade rule missing."""


# --- naming ------------------------------------------------------------------------------------

def hash_for_network(network: str) -> str:
    return hash_with_prefix(16, "", network)


def hash_for_instance(network: str, ifname: str, container_id: str) -> str:
    return hash_for_network(network) + "-" + hash_with_prefix(16, "", f"{ifname}:{container_id}")


def nft_comment(network: str, ifname: str, container_id: str) -> str:
    def strip(s: str) -> str:
        return s.replace('"', "")
    text = (f"{hash_for_instance(network, ifname, container_id)}, net: {strip(network)}, "
            f"if: {strip(ifname)}, id: {strip(container_id)}")
    return rules.printable(text, "name/CNI_IFNAME/CNI_CONTAINERID")[:128]


def _families(ips) -> dict:
    fams: dict = {}
    for ipi in ips:
        fams.setdefault(ipi.version, []).append(ipi)
    return fams


def _attachment(a) -> tuple:
    """(containerID, ifname) from a GC attachment dict or a pair."""
    if isinstance(a, dict):
        return a.get("containerID", ""), a.get("ifname", "")
    return a[0], a[1]


# --- iptables ------------------------------------------------------------------------------

def ipt_rules(network: str, container_id: str, ipi) -> list:
    """[(chain, spec)] for one address, in Go's order."""
    chain = be.chain_name(network, container_id)
    c = _ipt_comment(network, container_id)
    return [(chain, f"-d {rules.net(ipi)} {c} -j ACCEPT"),
            (chain, f"! -d {_MCAST[ipi.version]} {c} -j MASQUERADE"),
            ("POSTROUTING", f"-s {rules.host(ipi)} {c} -j {chain}")]


def _ipt_comment(network: str, container_id: str) -> str:
    return rules.ipt_comment(be.format_comment(network, container_id), "name/CNI_CONTAINERID")


def _ipt_setup(network: str, container_id: str, ips: list, v6: bool) -> None:
    from cni.fw import iptables  # lazy: the iptables backend only

    def build(b):
        b.ensure_chain(be.chain_name(network, container_id))
        for ipi in ips:
            for chain, spec in ipt_rules(network, container_id, ipi):
                b.append_unique(chain, spec)
    iptables.apply("nat", build, v6=v6)


def _ipt_teardown(network: str, container_id: str, ips: list, v6: bool) -> None:
    from cni.fw import iptables  # lazy: the iptables backend only
    chain = be.chain_name(network, container_id)
    c = _ipt_comment(network, container_id)

    def build(b):
        for ipi in ips:  # Go's two POSTROUTING forms; delete_chain sweeps any other jump
            b.delete("POSTROUTING", f"-s {rules.host(ipi)} {c} -j {chain}")
            b.delete("POSTROUTING", f"-s {rules.net(ipi)} {c} -j {chain}")
        b.delete_chain(chain)
    iptables.apply("nat", build, v6=v6)


def _ipt_check(network: str, container_id: str, ips: list, v6: bool) -> None:
    from cni.fw import iptables  # lazy: the iptables backend only
    t = iptables.save("nat", v6=v6)
    chain = be.chain_name(network, container_id)
    if chain not in t.chains:
        raise MasqCheckError("masquerade chain missing", f"chain={chain}")
    for ipi in ips:
        for ch, spec in ipt_rules(network, container_id, ipi):
            if spec not in t.chains.get(ch, ()):
                raise MasqCheckError("masquerade rule missing", f"-A {ch} {spec}")


def _ipt_gc(network: str, valid_ids: set, v6: bool) -> None:
    from cni.fw import iptables  # lazy: the iptables backend only
    prefix = rules.quote(f"name: {be.go_quote(network)} id: ")[:-1]  # open quote kept

    def build(b):
        for spec in list(b.t.chains.get("POSTROUTING", ())):
            at = spec.find("--comment " + prefix)
            if at < 0 or " -j CNI-" not in spec:
                continue
            target = spec.rsplit("-j ", 1)[1]
            rest = spec[at + len("--comment ") + len(prefix):]
            cid_q = rest.split(" ", 1)[0]  # \"<cid>\"" for plain ids
            cid = cid_q.replace('\\"', '"').strip('"')
            if cid in valid_ids or be.chain_name(network, cid) != target:
                continue
            b.delete_chain(target)
    iptables.apply("nat", build, v6=v6)


# --- nftables ------------------------------------------------------------------------------

def _nft_find(prefix: str) -> list:
    from cni.fw import nft_text  # lazy: the nftables backend only
    rs = nft_text.list_table("inet", TABLE, CHAIN)
    if rs is None:
        return []
    return [r for r in rs.in_chain(CHAIN) if r.comment and r.comment.startswith(prefix)]


def nft_setup_lines(network: str, container_id: str, ifname: str, ips: list, stale: list) -> list:
    from cni.fw import nft_text  # lazy: the nftables backend only
    comment = rules.nft_comment
    t = f"inet {TABLE}"
    lines = [
        f"add table {t} {{ {comment('Masquerading for plugins from github.com/containernetworking/plugins')} ; }}",
        f"add chain {t} {CHAIN} {{ {comment('Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet')} ; }}",
        f"add chain {t} postrouting {{ type nat hook postrouting priority 100 ; }}",
        f"flush chain {t} postrouting",
        f"add rule {t} postrouting ip daddr == 224.0.0.0/4 return",
        f"add rule {t} postrouting ip6 daddr == ff00::/8 return",
        f"add rule {t} postrouting goto {CHAIN}",
    ]
    lines += [nft_text.delete_rule(r) for r in stale]
    cmt = comment(nft_comment(network, ifname, container_id), "name/CNI_IFNAME/CNI_CONTAINERID")
    for ipi in ips:
        ipx = "ip" if ipi.version == 4 else "ip6"
        lines.append(f"add rule {t} {CHAIN} {ipx} saddr == {rules.addr(ipi)} {ipx} daddr != "
                     f"{rules.net(ipi)} masquerade {cmt}")
    return lines


def _nft_setup(network: str, container_id: str, ifname: str, ips: list) -> None:
    from cni.fw import nft_native, nft_text  # lazy: the nftables backend only
    prefix = hash_for_instance(network, ifname, container_id)
    if be.nft_native():
        text = rules.nft_comment_text(nft_comment(network, ifname, container_id),
                                      "name/CNI_IFNAME/CNI_CONTAINERID")
        _native(nft_native.setup, ips, text, prefix)
        return
    be.require("nft")
    nft_text.apply(nft_setup_lines(network, container_id, ifname, ips, _nft_find(prefix)))


def _nft_teardown(network: str, container_id: str, ifname: str) -> None:
    from cni.fw import nft_native, nft_text  # lazy: the nftables backend only
    prefix = hash_for_instance(network, ifname, container_id)
    if be.nft_native():
        _native(nft_native.teardown, prefix)
        return
    nft_text.apply([nft_text.delete_rule(r) for r in _nft_find(prefix)])


def _native(fn, *args):
    """Run an nft_native call; a kernel refusal becomes a RuleError like a failed tool."""
    try:
        return fn(*args)
    except OSError as exc:
        raise be.RuleError("nf_tables masquerade update failed", str(exc)) from None


# --- public API ----------------------------------------------------------------------------

def setup(network: str, container_id: str, ifname: str, ips, backend: str | None = None) -> None:
    """Masquerade traffic from each address leaving its subnet (ADD)."""
    ips = list(ips)
    if be.select(backend, "ipMasqBackend") == NFTABLES:
        if ips:
            _nft_setup(network, container_id, ifname, ips)
        return
    from cni.fw import iptables  # lazy: the iptables backend only
    for ver, group in sorted(_families(ips).items()):
        for tool in iptables.tools(ver == 6):
            be.require(tool)
        _ipt_setup(network, container_id, group, ver == 6)


def teardown(network: str, container_id: str, ifname: str, ips=(), backend: str | None = None) -> None:
    """Remove what setup (ours or Go's) made, with either backend; missing tools/rules are fine.

    `backend` is accepted for symmetry and ignored: both backends are always cleaned.
    With no ips the iptables chain is still found by name, in both families.
    """
    ips = list(ips)
    fams = _families(ips) or {4: [], 6: []}
    errors = []
    for ver, group in sorted(fams.items()):
        if be.have_iptables(ver == 6) and be.ipt_table_may_exist("nat", ver == 6):
            try:
                _ipt_teardown(network, container_id, group, ver == 6)
            except be.RuleError as exc:
                errors.append(str(exc))
    if (be.nft_native() or be.have_nft()) and be.nft_table_may_exist("inet", TABLE):
        try:
            _nft_teardown(network, container_id, ifname)
        except be.RuleError as exc:
            errors.append(str(exc))
    if errors:
        raise be.RuleError("masquerade teardown failed", "; ".join(errors))


def check(network: str, container_id: str, ifname: str, ips, backend: str | None = None) -> None:
    """Raise MasqCheckError unless every address's masquerade rules exist."""
    ips = list(ips)
    if not ips:
        return
    if be.select(backend, "ipMasqBackend") == NFTABLES:
        from cni.fw import nft_native  # lazy: the nftables backend only
        want = rules.nft_comment_text(nft_comment(network, ifname, container_id))
        if be.nft_native():
            count = _native(nft_native.count, want)
        else:
            count = sum(1 for r in _nft_find(want) if r.comment == want)
        if count < len(ips):
            raise MasqCheckError("masquerade rule missing", f"comment={want}")
        return
    for ver, group in sorted(_families(ips).items()):
        _ipt_check(network, container_id, group, ver == 6)


def gc(network: str, valid_attachments, backend: str | None = None) -> None:
    """Delete this network's masquerade rules whose attachment is not in valid_attachments.

    valid_attachments: dicts {"containerID", "ifname"} (as in cni.dev/valid-attachments) or
    (containerID, ifname) pairs. iptables rules carry no ifname, so they match by container ID.
    """
    pairs = [_attachment(a) for a in valid_attachments]
    if (be.nft_native() or be.have_nft()) and be.nft_table_may_exist("inet", TABLE):
        from cni.fw import nft_native, nft_text  # lazy: the nftables backend only
        valid = set()
        for cid, ifn in pairs:
            try:
                valid.add(rules.nft_comment_text(nft_comment(network, ifn, cid)))
            except rules.RuleValueError:
                pass        # setup refuses such names: no rule of theirs can exist
        if be.nft_native():
            _native(nft_native.gc, hash_for_network(network) + "-", valid)
        else:
            found = _nft_find(hash_for_network(network) + "-")
            nft_text.apply([nft_text.delete_rule(r) for r in found if r.comment not in valid])
    ids = {cid for cid, _ in pairs}
    for v6 in (False, True):
        if be.have_iptables(v6):
            _ipt_gc(network, ids, v6)


__all__ = ["setup", "teardown", "check", "gc", "IPTABLES", "NFTABLES", "MasqCheckError"]
