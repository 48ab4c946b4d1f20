"""iptables rules of the firewall plugin (filter table), compatible with Go's plugins/meta/firewall.

FORWARD -> CNI-FORWARD (inserted first) -> admin chain (default CNI-ADMIN, first rule), then per
container address `-d IP conntrack RELATED,ESTABLISHED ACCEPT` and `-s IP ACCEPT`.
ingressPolicy same-bridge/isolated adds CNI-ISOLATION-STAGE-1/2 (never removed: shared).
Every change is one iptables-save read and one iptables-restore write per family (over netlink
on an iptables-nft host). The admin chain and the bridge name (prevResult) are checked by
cni.fw.rules before anything is written.

backend "nftables" (`nft_add`, `nft_check`, `nft_update`): table `inet cni_firewall` written over netlink,
laid out in cni.fw.nft_firewall, the container's rules found by its instance comment.
`teardown` (DEL) removes what either backend wrote for the container (the nftables part is
skipped only when cni.fw.backend.NATIVE forces the tools, as the unit tests do).
"""
from __future__ import annotations

from cni.errors import InternalError, InvalidConfigError
from cni.fw import backend as be
from cni.fw import masq, nft_firewall, rules

PRIV_CHAIN = "CNI-FORWARD"
ADMIN_CHAIN = "CNI-ADMIN"
STAGE1 = "CNI-ISOLATION-STAGE-1"
STAGE2 = "CNI-ISOLATION-STAGE-2"
POLICIES = ("open", "same-bridge", "isolated")
FILTER_COMMENT = "CNI firewall plugin rules"
ADMIN_COMMENT = "CNI firewall plugin admin overrides"
DEFAULT_POLICY_COMMENT = "CNI firewall plugin rules (ingressPolicy: same-bridge|isolated)"
# Go <= 1.1 used the same-bridge comment for the shared isolation rules; accept it as present.
LEGACY_POLICY_COMMENT = "CNI firewall plugin rules (ingressPolicy: same-bridge)"


class FirewallCheckError(InternalError):
    """CHECK found a firewall rule missing."""


def validate_ingress_policy(policy: str | None) -> str:
    policy = policy or "open"
    if policy not in POLICIES:
        raise InvalidConfigError(f"unknown ingress policy: {policy!r}", f"ingressPolicy={policy}")
    return policy


def ip_rules(ip) -> list:
    """The two CNI-FORWARD rules of one address (save form)."""
    h = rules.host(ip)
    return [f"-d {h} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", f"-s {h} -j ACCEPT"]


def _jump_rules(admin_chain: str) -> tuple:
    admin_chain = rules.ipt_chain(admin_chain, "iptablesAdminChainName")
    return (f"{rules.ipt_comment(FILTER_COMMENT)} -j {PRIV_CHAIN}",
            f"{rules.ipt_comment(ADMIN_COMMENT)} -j {admin_chain}")


def _families(ips) -> dict:
    fams: dict = {}
    for ip in ips:
        ip = getattr(ip, "ip", ip)
        fams.setdefault(ip.version, []).append(ip)
    return fams


def isolation_rules(bridge: str, isolated: bool, field: str = "prevResult.interfaces[0].name") -> list:
    """[(op, chain, spec, alts)] for the ingress policy, in Go's order."""
    comment = rules.ipt_comment
    bridge = rules.ipt_ifname(bridge, field)
    policy = comment("CNI firewall plugin rules (ingressPolicy: %s)" % ("isolated" if isolated else "same-bridge"))
    dflt, legacy = comment(DEFAULT_POLICY_COMMENT), comment(LEGACY_POLICY_COMMENT)

    def shared(before: str, after: str) -> tuple:   # the rule with the comment of today and Go <= 1.1
        return f"{before}{dflt} {after}", (f"{before}{legacy} {after}",)
    out = [("first", "FORWARD", *shared("", "-j " + STAGE1)),
           ("insert", STAGE1, f"-i {bridge} ! -o {bridge} {policy} -j {STAGE2}", ())]
    if isolated:
        out.append(("insert", STAGE1, f"-i {bridge} -o {bridge} {policy} -j DROP", ()))
    out += [("append", STAGE1, *shared("", "-j RETURN")),
            ("insert", STAGE2, *shared(f"-o {bridge} ", "-j DROP")),
            ("append", STAGE2, *shared("", "-j RETURN"))]
    return out


def put_rule(b, op: str, chain: str, spec: str, alts: tuple = ()) -> None:
    """Apply one isolation_rules() entry to an iptables Batch: insert/append when missing;
    "first": the rule must lead its chain, and is moved back to the top when something got
    ahead of it (an ACCEPT another tool or plugin inserted later would bypass the policy)."""
    if op == "first":
        rules = b.t.chains.get(chain, [])
        if rules and rules[0] in (spec, *alts):
            return
        keep = next((s for s in (spec, *alts) if b.has(chain, s)), spec)
        for s in (spec, *alts):
            b.delete(chain, s)
        b.insert(chain, keep)
    elif op == "insert":
        b.insert_unique(chain, spec, alts)
    else:
        b.append_unique(chain, spec, alts)


def _build_add(b, ips, admin_chain, policy, bridge) -> None:
    priv_jump, admin_jump = _jump_rules(admin_chain)
    isolation = isolation_rules(bridge, policy == "isolated") if policy != "open" else ()
    b.ensure_chain(PRIV_CHAIN)
    b.ensure_chain(admin_chain)
    b.insert_unique("FORWARD", priv_jump)
    b.insert_unique(PRIV_CHAIN, admin_jump)
    for ip in ips:
        for spec in ip_rules(ip):
            b.append_unique(PRIV_CHAIN, spec)
    if policy != "open":
        b.ensure_chain(STAGE1)
        b.ensure_chain(STAGE2)
        for op, chain, spec, alts in isolation:
            put_rule(b, op, chain, spec, alts)


def _prepare(ips, admin_chain: str, ingress_policy: str, bridge: str) -> tuple:
    """(admin chain, policy, addresses by family) for ADD and UPDATE; a policy other than
    open needs the bridge."""
    admin_chain = admin_chain or ADMIN_CHAIN
    policy = validate_ingress_policy(ingress_policy)
    fams = _families(ips)
    if policy != "open" and fams and not bridge:
        raise InvalidConfigError(f"interface needs to be set for ingress policy {policy!r}, "
                                 'make sure to chain "firewall" plugin with "bridge"')
    return admin_chain, policy, fams


def _apply(fams: dict, build) -> None:
    """One iptables-restore batch per family: build(batch, that family's addresses)."""
    from cni.fw import iptables       # lazy: the iptables backend alone (not nftables) needs it
    for ver, group in sorted(fams.items()):
        for tool in iptables.tools(ver == 6):
            be.require(tool)
        iptables.apply("filter", lambda b, g=group: build(b, g), v6=ver == 6)


def add(ips, *, admin_chain: str = "", ingress_policy: str = "open", bridge: str = "") -> None:
    """Allow traffic to/from each container address; set up the ingress policy (ADD)."""
    admin_chain, policy, fams = _prepare(ips, admin_chain, ingress_policy, bridge)
    _jump_rules(admin_chain)                       # refuse bad names before any write
    if policy != "open" and fams:
        isolation_rules(bridge, policy == "isolated")
    _apply(fams, lambda b, g: _build_add(b, g, admin_chain, policy, bridge))


def delete(ips, *, admin_chain: str = "") -> None:
    """Remove the per-address rules only (shared chains stay); missing tools/rules are fine."""
    from cni.fw import iptables       # lazy: the iptables backend only
    for ver, group in sorted(_families(ips).items()):
        if not be.have_iptables(ver == 6):
            continue

        def build(b, g=group):
            for ip in g:
                for spec in ip_rules(ip):
                    b.delete(PRIV_CHAIN, spec)
        iptables.apply("filter", build, v6=ver == 6)


# --- nftables backend ------------------------------------------------------------------------

def _nft_instance(network: str, ifname: str, container_id: str) -> tuple:
    """(comment, prefix) of the container's rules: the instance comment the masquerade rules
    carry, found by its hash prefix."""
    text = rules.nft_comment_text(masq.nft_comment(network, ifname, container_id),
                                  "name/CNI_IFNAME/CNI_CONTAINERID")
    return text, masq.hash_for_instance(network, ifname, container_id)


def _nft_admin(admin_chain: str) -> str:
    if not admin_chain:
        return nft_firewall.ADMIN
    rules.ipt_chain(admin_chain, "iptablesAdminChainName")
    if admin_chain in (nft_firewall.FORWARD, nft_firewall.ALLOW, nft_firewall.STAGE1,
                       nft_firewall.STAGE2):
        raise InvalidConfigError(f"iptablesAdminChainName {admin_chain!r} is a chain of the "
                                 f"nftables backend", f"table inet {nft_firewall.TABLE}")
    return admin_chain


def _packed(ips) -> list:
    return [getattr(ip, "ip", ip).packed for ip in ips]


def _nft(what: str, fn, *args, **kw):
    """Run an nft_firewall call; a kernel refusal becomes a RuleError like a failed tool."""
    try:
        return fn(*args, **kw)
    except OSError as exc:
        raise be.RuleError(f"nf_tables firewall {what} failed", str(exc)) from None


def nft_add(ips, *, network: str, container_id: str, ifname: str, admin_chain: str = "",
            ingress_policy: str = "open", bridge: str = "") -> None:
    """ADD with backend nftables: one transaction, whatever the number of addresses."""
    policy = validate_ingress_policy(ingress_policy)
    admin = _nft_admin(admin_chain)
    comment, prefix = _nft_instance(network, ifname, container_id)
    ips = list(ips)
    if not ips:
        return                              # as the iptables backend: nothing to allow
    if policy != "open":
        if not bridge:
            raise InvalidConfigError(f"interface needs to be set for ingress policy {policy!r}, "
                                     'make sure to chain "firewall" plugin with "bridge"')
        rules.ifname(bridge, "prevResult.interfaces[0].name")
    else:
        bridge = ""
    _nft("update", nft_firewall.add, _packed(ips), comment, prefix, admin=admin, bridge=bridge,
         isolated=policy == "isolated")


def nft_update(ips, *, network: str, container_id: str, ifname: str, admin_chain: str = "",
               ingress_policy: str = "open", bridge: str = "") -> None:
    """UPDATE with backend nftables, as `update` for iptables: the container's rules as ADD
    makes them, the admin chain's jump first, the bridge's ingress policy switched to
    `ingress_policy`; one transaction, so the old rules hold until the new ones are in."""
    policy = validate_ingress_policy(ingress_policy)
    admin = _nft_admin(admin_chain)
    comment, prefix = _nft_instance(network, ifname, container_id)
    ips = list(ips)
    if policy != "open" and ips and not bridge:
        raise InvalidConfigError(f"interface needs to be set for ingress policy {policy!r}, "
                                 'make sure to chain "firewall" plugin with "bridge"')
    if bridge:
        rules.ifname(bridge, "prevResult.interfaces[0].name")
    _nft("update", nft_firewall.update, _packed(ips), comment, prefix, admin=admin,
         bridge=bridge, policy=policy)


def nft_check(ips, *, network: str, container_id: str, ifname: str, admin_chain: str = "",
              ingress_policy: str = "open", bridge: str = "") -> None:
    """Raise FirewallCheckError unless the table, its jumps, the ingress policy's rules and
    both rules of every address exist."""
    policy = validate_ingress_policy(ingress_policy)
    comment, _ = _nft_instance(network, ifname, container_id)
    ips = list(ips)
    if not ips:
        return                              # ADD wrote nothing either
    missing = _nft("read", nft_firewall.problems, _packed(ips), comment,
                   admin=_nft_admin(admin_chain), bridge=bridge if policy != "open" else "",
                   isolated=policy == "isolated")
    if missing:
        raise FirewallCheckError("expected nftables firewall rule not found", "; ".join(missing))


def teardown(ips, *, network: str, container_id: str, ifname: str, admin_chain: str = "") -> None:
    """DEL: what either backend wrote for the container (a host that switched backends
    leaks nothing). iptables rules are found by address, nftables rules by instance comment."""
    errors = []
    try:
        delete(ips, admin_chain=admin_chain)
    except be.RuleError as exc:
        errors.append(str(exc))
    if be.nft_native() and be.nft_table_may_exist("inet", nft_firewall.TABLE):
        try:
            _nft("delete", nft_firewall.delete, masq.hash_for_instance(network, ifname, container_id))
        except be.RuleError as exc:
            errors.append(str(exc))
    if errors:
        raise be.RuleError("firewall teardown failed", "; ".join(errors))


def check(ips, *, admin_chain: str = "") -> None:
    """Raise FirewallCheckError unless the jump rules and every per-address rule exist."""
    from cni.fw import iptables       # lazy: the iptables backend only
    priv_jump, admin_jump = _jump_rules(admin_chain or ADMIN_CHAIN)
    for ver, group in sorted(_families(ips).items()):
        t = iptables.save("filter", v6=ver == 6)
        want = [("FORWARD", priv_jump), (PRIV_CHAIN, admin_jump)]
        want += [(PRIV_CHAIN, spec) for ip in group for spec in ip_rules(ip)]
        for chain, spec in want:
            if spec not in t.chains.get(chain, ()):
                raise FirewallCheckError(f"expected {chain} rule not found", spec)


# --- UPDATE (our extension) -------------------------------------------------------------------

def _bridge_specs(bridge: str) -> set:
    """(chain, spec) of every isolation rule that names `bridge`, under either policy (and the
    Go <= 1.1 comment); the shared rules (FORWARD jump, RETURNs) are not among them."""
    out = set()
    for isolated in (False, True):
        for op, chain, spec, alts in isolation_rules(bridge, isolated):
            if op == "insert":
                out.update((chain, s) for s in (spec, *alts))
    return out


def set_policy(b, policy: str, bridge: str) -> None:
    """Make the bridge's isolation rules those of `policy` in one Batch: rules of another
    policy out, missing ones in (open: the bridge's rules removed, the shared ones kept)."""
    want = isolation_rules(bridge, policy == "isolated") if policy != "open" else ()
    keep = {(chain, s) for _, chain, spec, alts in want for s in (spec, *alts)}
    for chain, spec in sorted(_bridge_specs(bridge) - keep):
        b.delete(chain, spec)
    if want:
        b.ensure_chain(STAGE1)
        b.ensure_chain(STAGE2)
        for op, chain, spec, alts in want:
            put_rule(b, op, chain, spec, alts)


def update(ips, *, admin_chain: str = "", ingress_policy: str = "open", bridge: str = "") -> None:
    """UPDATE: the per-address rules as ADD makes them, the admin chain's jump (a new name
    gets its jump first in CNI-FORWARD; an old admin chain's jump stays, as DEL leaves shared
    chains), and the ingress policy of the container's bridge switched to `ingress_policy`
    (an ingress policy belongs to the bridge: every container on it shares it). One
    iptables-restore batch per family, so the old rules hold until the new ones are in."""
    admin_chain, policy, fams = _prepare(ips, admin_chain, ingress_policy, bridge)
    _, admin_jump = _jump_rules(admin_chain)
    if bridge:
        isolation_rules(bridge, True)              # refuse a bad name before any write

    def build(b, g):
        _build_add(b, g, admin_chain, "open", "")
        rules_ = b.t.chains[PRIV_CHAIN]
        if rules_[0] != admin_jump:                # the new admin chain is consulted first
            b.delete(PRIV_CHAIN, admin_jump)
            b.insert(PRIV_CHAIN, admin_jump)
        if bridge:
            set_policy(b, policy, bridge)
    _apply(fams, build)
