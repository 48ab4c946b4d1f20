"""Port-mapping rules for the portmap plugin, rule-compatible with Go's plugins/meta/portmap.

iptables (nat): shared chains CNI-HOSTPORT-DNAT (PREROUTING/OUTPUT `-m addrtype --dst-type
LOCAL`), CNI-HOSTPORT-SETMARK and CNI-HOSTPORT-MASQ (POSTROUTING, first); per container
CNI-DN-<hash> reached by multiport jumps (<= 15 ports per rule, protocols sorted).
nftables: tables `ip cni_hostport` / `ip6 cni_hostport`; per-container rules carry the
container ID as comment. The shared chains are left in place on DEL, as Go does.
Every value reaches rule text through cni.fw.rules; cni.fw.portmap_config checks the options
(conditions, externalSetMarkChain) at config time and the runtime's mappings.
"""
from __future__ import annotations

from cni.errors import InternalError
from cni.fw import backend as be
from cni.fw import nft_native, nft_text, rules
from cni.fw.backend import NFTABLES
from cni.fw.portmap_config import resolve_backend

DNAT_CHAIN = "CNI-HOSTPORT-DNAT"
SETMARK_CHAIN = "CNI-HOSTPORT-SETMARK"
MASQ_CHAIN = "CNI-HOSTPORT-MASQ"
OLD_SNAT_CHAIN = "CNI-HOSTPORT-SNAT"
# the chains whose rules _ipt_build looks at, besides the container's own CNI-DN chain
_ADD_READS = ("PREROUTING", "OUTPUT", "POSTROUTING", DNAT_CHAIN, SETMARK_CHAIN, MASQ_CHAIN)
DEFAULT_MARK_BIT = 13
NFT_TABLE = "cni_hostport"
NFT_CHAINS = ("hostports", "hostip_hostports", "masquerading")
_OPTS = {"snat": True, "mark_masq_bit": None, "external_setmark_chain": None,
         "conditions_v4": None, "conditions_v6": None, "masq_all": False}


class PortmapCheckError(InternalError):
    """CHECK found a port-mapping rule missing."""


def _pick_ips(container_ips) -> dict:
    """First address of each family: {4: ip_interface, 6: ip_interface}."""
    out: dict = {}
    for ipi in container_ips:
        out.setdefault(ipi.version, ipi)
    return out


def _for_family(m: dict, version: int) -> bool:
    return m["hostIP"] is None or m["hostIP"].version == version


# --- iptables ------------------------------------------------------------------------------

def dn_chain(network: str, container_id: str) -> str:
    return be.chain_name(network, container_id, "DN-")


def ipt_entry_rules(network: str, container_id: str, mappings: list, conditions=None) -> list:
    """Jump rules into CNI-DN-<hash> (save form, without the `-j`)."""
    text = f'dnat name: "{network}" id: "{container_id}"'
    if len(text.encode()) > rules.IPT_COMMENT_MAX:    # Go's cut (iptables keeps 255 bytes of it)
        text = text.encode()[:253].decode("utf-8", "ignore") + "..."
    comment = rules.ipt_comment(text, "name/CNI_CONTAINERID")
    cond = "".join(" " + t for t in rules.ipt_conditions(conditions))
    by_proto: dict = {}
    for m in mappings:
        by_proto.setdefault(rules.proto(m["protocol"]), []).append(str(rules.port(m["hostPort"])))
    out = []
    for proto in sorted(by_proto):
        ports = by_proto[proto]
        for i in range(0, len(ports), 15):
            out.append(f"-p {proto} {comment} -m multiport --dports {','.join(ports[i:i + 15])}{cond}")
    return out


def ipt_chain_rules(mappings: list, ipi, *, snat: bool = True, masq_all: bool = False,
                    setmark: str = SETMARK_CHAIN) -> list:
    """Rules of CNI-DN-<hash> for one container address, in Go's order (save form)."""
    v6 = ipi.version == 6
    setmark = rules.ipt_chain(setmark, "externalSetMarkChain")
    out = []
    for m in mappings:
        if not _for_family(m, ipi.version):
            continue
        hip = m["hostIP"]
        dst = f"-d {rules.host(hip)} " if hip is not None and not hip.is_unspecified else ""
        p = rules.proto(m["protocol"])
        base = f"{dst}-p {p} -m {p} --dport {rules.port(m['hostPort'])}"
        if snat:
            out.append(f"{base} -j {setmark}" if masq_all else f"-s {rules.net(ipi)} {base} -j {setmark}")
            if not v6 and not masq_all:
                out.append(f"-s 127.0.0.1/32 {base} -j {setmark}")
        out.append(f"{base} -j DNAT --to-destination {rules.dnat_to(ipi, m['containerPort'])}")
    return out


def _entry_key(spec: str):
    toks = spec.split()
    try:
        return toks[toks.index("-p") + 1], toks[toks.index("--dports") + 1]
    except (ValueError, IndexError):
        return None


class _Entries:
    """The jumps into one CNI-DN chain that CNI-HOSTPORT-DNAT holds, for O(1) lookups.

    With user conditions iptables-save reorders them, so a jump also matches by target,
    protocol and port list instead of its exact text (keys built once, not per lookup).
    """

    __slots__ = ("t", "chain", "keys")

    def __init__(self, t, chain: str, lenient: bool):
        self.t, self.chain = t, chain
        tail = " -j " + chain
        self.keys = ({_entry_key(r) for r in t.chains.get(DNAT_CHAIN, ()) if r.endswith(tail)}
                     if lenient else None)

    def has(self, spec: str) -> bool:
        if self.t.has(DNAT_CHAIN, f"{spec} -j {self.chain}"):
            return True
        return self.keys is not None and _entry_key(spec) in self.keys

    def added(self, spec: str) -> None:
        if self.keys is not None:
            self.keys.add(_entry_key(spec))


def _ipt_build(b, network, container_id, mappings, ipi, o) -> None:
    setmark = o["external_setmark_chain"] or SETMARK_CHAIN
    if o["snat"] and o["external_setmark_chain"] is None:
        mark = rules.mark(o["mark_masq_bit"] if o["mark_masq_bit"] is not None else DEFAULT_MARK_BIT)
        b.ensure_chain(SETMARK_CHAIN)
        b.append_unique(SETMARK_CHAIN,
                        f"{rules.ipt_comment('CNI portfwd masquerade mark')} -j MARK --set-xmark {mark}")
        b.ensure_chain(MASQ_CHAIN)
        b.append_unique(MASQ_CHAIN, f"-m mark --mark {mark} -j MASQUERADE")
        b.insert_unique("POSTROUTING",
                        f"{rules.ipt_comment('CNI portfwd requiring masquerade')} -j {MASQ_CHAIN}")
    b.ensure_chain(DNAT_CHAIN)
    for entry in ("PREROUTING", "OUTPUT"):
        b.append_unique(entry, f"-m addrtype --dst-type LOCAL -j {DNAT_CHAIN}")
    chain = dn_chain(network, container_id)
    b.ensure_chain(chain)
    for spec in ipt_chain_rules(mappings, ipi, snat=o["snat"], masq_all=o["masq_all"], setmark=setmark):
        b.append_unique(chain, spec)
    cond = o["conditions_v6"] if ipi.version == 6 else o["conditions_v4"]
    have = _Entries(b.t, chain, bool(cond))
    for spec in ipt_entry_rules(network, container_id, mappings, cond):
        if not have.has(spec):
            b.append(DNAT_CHAIN, f"{spec} -j {chain}")
            have.added(spec)


def _ipt_chains(network: str, container_id: str) -> tuple:
    return dn_chain(network, container_id), be.chain_name(network, container_id, "SN-")  # SN: pre-0.8


def _ipt_delete(b, network: str, container_id: str) -> None:
    b.delete_chains(_ipt_chains(network, container_id))


def _ipt_check(t, network, container_id, mappings, ipi, o) -> None:
    chain = dn_chain(network, container_id)
    if chain not in t.chains:
        raise PortmapCheckError(f"chain {chain} not found in iptables table nat")
    setmark = o["external_setmark_chain"] or SETMARK_CHAIN
    for spec in ipt_chain_rules(mappings, ipi, snat=o["snat"], masq_all=o["masq_all"], setmark=setmark):
        if not t.has(chain, spec):
            raise PortmapCheckError(f"rule not found in chain {chain}", spec)
    cond = o["conditions_v6"] if ipi.version == 6 else o["conditions_v4"]
    have = _Entries(t, chain, bool(cond))
    for spec in ipt_entry_rules(network, container_id, mappings, cond):
        if not have.has(spec):
            raise PortmapCheckError(f"rule not found in chain {DNAT_CHAIN}", spec)


# --- nftables ------------------------------------------------------------------------------

def nft_lines(container_id: str, mappings: list, ipi, stale=(), *, snat: bool = True,
              masq_all: bool = False, conditions=None) -> list:
    """The `nft -f -` transaction for one container address (Go's forwardPorts)."""
    v6 = ipi.version == 6
    fam = ipx = "ip6" if v6 else "ip"
    t = f"{fam} {NFT_TABLE}"
    cond = rules.nft_conditions(conditions)
    cond = cond + " " if cond else ""
    lines = [f"add table {t} {{ {rules.nft_comment('CNI portmap plugin')} ; }}",
             f"add chain {t} hostports", f"add chain {t} hostip_hostports",
             f"add chain {t} hostports_all", f"flush chain {t} hostports_all",
             f"add rule {t} hostports_all jump hostip_hostports",
             f"add rule {t} hostports_all jump hostports"]
    for hook in ("prerouting", "output"):
        lines += [f"add chain {t} {hook} {{ type nat hook {hook} priority -100 ; }}",
                  f"flush chain {t} {hook}",
                  f"add rule {t} {hook} {cond}fib daddr type local jump hostports_all"]
    if snat:
        lines.append(f"add chain {t} masquerading {{ type nat hook postrouting priority 100 ; }}")
    lines += [nft_text.delete_rule(r) for r in stale]
    cmt = rules.nft_comment(container_id, "CNI_CONTAINERID")
    ip = rules.addr(ipi)
    for m in mappings:
        if not _for_family(m, ipi.version):
            continue
        hip = m["hostIP"]
        dst = f"{ipx} daddr {rules.addr(hip)} " if hip is not None and not hip.is_unspecified else ""
        lines.append(f"add rule {t} hostports {dst}{rules.proto(m['protocol'])} dport "
                     f"{rules.port(m['hostPort'])} dnat to {rules.dnat_to(ipi, m['containerPort'])} {cmt}")
    if snat:
        src = ("::/0" if v6 else "0.0.0.0/0") if masq_all else ip
        lines.append(f"add rule {t} masquerading {ipx} saddr {src} {ipx} daddr {ip} masquerade {cmt}")
        if not v6 and not masq_all:
            lines.append(f"add rule {t} masquerading ip saddr 127.0.0.1 ip daddr {ip} masquerade {cmt}")
    return lines


def _nft_native_add(container_id: str, mappings: list, container_ips, o: dict) -> None:
    """nftables ADD over netlink: both families in one transaction (cni.fw.nft_native)."""
    comment = rules.nft_comment_text(container_id, "CNI_CONTAINERID")
    ms = [nft_native.Mapping(nft_native.PROTOCOLS[m["protocol"]], m["hostPort"], m["containerPort"],
                             None if m["hostIP"] is None else m["hostIP"].packed) for m in mappings]
    ips = [ipi.ip.packed for _, ipi in sorted(_pick_ips(container_ips).items())]
    _nft_call(nft_native.portmap_add, comment, ms, ips, snat=o["snat"], masq_all=o["masq_all"])


def _nft_call(fn, *args, **kw):
    """Run an nft_native call; a kernel refusal becomes a RuleError like a failed tool."""
    try:
        return fn(*args, **kw)
    except OSError as exc:
        raise be.RuleError("nf_tables portmap update failed", str(exc)) from None


def _nft_owned(fam: str, container_id: str) -> list:
    rs = nft_text.list_table(fam, NFT_TABLE)
    if rs is None:
        return []
    return [r for r in rs.rules if r.chain in NFT_CHAINS and r.comment == container_id]


# --- public API ----------------------------------------------------------------------------

def _options(kw: dict) -> dict:
    unknown = set(kw) - set(_OPTS)
    if unknown:
        raise TypeError(f"unknown portmap options: {sorted(unknown)}")
    return {**_OPTS, **kw}


def _resolve(backend, opts) -> tuple:
    """(options with defaults, backend to use) for add and check."""
    o = _options(opts)
    which = resolve_backend(backend, conditions_v4=o["conditions_v4"], conditions_v6=o["conditions_v6"],
                            external_setmark_chain=o["external_setmark_chain"],
                            mark_masq_bit=o["mark_masq_bit"])
    return o, which


def add(network: str, container_id: str, mappings: list, container_ips, *,
        backend: str | None = None, **opts) -> None:
    """Install the mappings for the first IPv4 and first IPv6 container address.

    opts: snat=True, mark_masq_bit=None (13), external_setmark_chain=None, conditions_v4=None,
    conditions_v6=None, masq_all=False. One read and one write per family.
    """
    if not mappings:
        return
    o, which = _resolve(backend, opts)
    if which == NFTABLES and be.nft_native() and not (o["conditions_v4"] or o["conditions_v6"]):
        _nft_native_add(container_id, mappings, container_ips, o)
        return
    for ver, ipi in sorted(_pick_ips(container_ips).items()):
        if which == NFTABLES:
            be.require("nft")
            stale = _nft_owned("ip6" if ver == 6 else "ip", container_id)
            nft_text.apply(nft_lines(container_id, mappings, ipi, stale, snat=o["snat"], masq_all=o["masq_all"],
                                     conditions=o["conditions_v6"] if ver == 6 else o["conditions_v4"]))
        else:
            from cni.fw import iptables  # lazy: the iptables backend only
            for tool in iptables.tools(ver == 6):
                be.require(tool)
            iptables.apply("nat", lambda b, ipi=ipi: _ipt_build(b, network, container_id, mappings, ipi, o),
                           v6=ver == 6, rules=3 * len(mappings),
                           only=_ADD_READS + (dn_chain(network, container_id),))


def delete(network: str, container_id: str, backend: str | None = None) -> None:
    """Remove the container's rules of both backends (whatever either could have written, so a
    host that switched backends leaks nothing) in both families; absent tools, chains and rules
    are fine. `backend` is accepted for symmetry."""
    if any(be.nft_table_may_exist(fam, NFT_TABLE) for fam in ("ip", "ip6")):
        if be.nft_native():
            _nft_call(nft_native.portmap_delete, rules.nft_comment_text(container_id, "CNI_CONTAINERID"))
        elif be.have_nft():
            for fam in ("ip", "ip6"):
                if be.nft_table_may_exist(fam, NFT_TABLE):
                    nft_text.apply([nft_text.delete_rule(r) for r in _nft_owned(fam, container_id)])
    for v6 in (False, True):
        if be.have_iptables(v6) and be.ipt_table_may_exist("nat", v6):
            from cni.fw import iptables  # lazy: only where iptables may have left rules
            if not iptables.drop_chains_nft("nat", _ipt_chains(network, container_id),
                                            (DNAT_CHAIN, OLD_SNAT_CHAIN), v6=v6):
                iptables.apply("nat", lambda b: _ipt_delete(b, network, container_id), v6=v6)


def check(network: str, container_id: str, mappings: list, container_ips, *,
          backend: str | None = None, **opts) -> None:
    """Raise PortmapCheckError unless the rules for every mapping exist."""
    if not mappings:
        return
    o, which = _resolve(backend, opts)
    for ver, ipi in sorted(_pick_ips(container_ips).items()):
        if which == NFTABLES:
            fam = "ip6" if ver == 6 else "ip"
            if be.nft_native():
                have = _nft_call(nft_native.portmap_count, fam,
                                 rules.nft_comment_text(container_id, "CNI_CONTAINERID"))
            else:
                have = {}
                for r in _nft_owned(fam, container_id):
                    have[r.chain] = have.get(r.chain, 0) + 1
            want = sum(1 for m in mappings if _for_family(m, ver))
            if have.get("hostports", 0) < want:
                raise PortmapCheckError('missing hostport rules in "hostports" chain')
            masq = (2 if ver == 4 and not o["masq_all"] else 1) if o["snat"] else 0
            if have.get("masquerading", 0) < masq:
                raise PortmapCheckError('missing hostport rules in "masquerading" chain')
        else:
            from cni.fw import iptables  # lazy: the iptables backend only
            t = iptables.save("nat", v6=ver == 6, rules=3 * len(mappings),
                              only=(DNAT_CHAIN, dn_chain(network, container_id)))
            _ipt_check(t, network, container_id, mappings, ipi, o)


def gc(network: str, valid_container_ids, backend: str | None = None) -> None:
    """Drop this network's per-container chains whose container is not valid (iptables only:
    nftables rules are commented with the container ID alone, so their network is unknown)."""
    from cni.fw import iptables  # lazy: the iptables backend only
    valid = set(valid_container_ids)
    prefix = rules.quote(f'dnat name: "{network}" id: "')[:-1]

    def stale_chains(t) -> list:
        stale: dict = {}
        for spec in t.chains.get(DNAT_CHAIN, ()):
            at = spec.find("--comment " + prefix)
            if at < 0:
                continue
            cid = spec[at + len("--comment ") + len(prefix):].split('\\"', 1)[0]
            target = spec.rsplit("-j ", 1)[-1]
            if cid not in valid and cid not in stale and target == dn_chain(network, cid):
                stale[cid] = _ipt_chains(network, cid)
        return [c for pair in stale.values() for c in pair]
    for v6 in (False, True):
        if not be.have_iptables(v6):
            continue
        if be.iptables_nft(v6):      # read CNI-HOSTPORT-DNAT alone; drop the chains unread
            doomed = stale_chains(iptables.save("nat", v6=v6, only=(DNAT_CHAIN,)))
            if not doomed or iptables.drop_chains_nft("nat", doomed, (DNAT_CHAIN, OLD_SNAT_CHAIN), v6=v6):
                continue
        iptables.apply("nat", lambda b: b.delete_chains(stale_chains(b.t)), v6=v6)   # one pass


__all__ = ["normalize_mappings", "resolve_backend", "add", "delete", "check", "gc",
           "PortmapCheckError", "DNAT_CHAIN", "SETMARK_CHAIN", "MASQ_CHAIN"]
