"""firewall: allow the container's addresses through the host firewall (chained, >= 0.3.0).

Keys (as the Go plugin): backend (iptables|firewalld|nftables; default firewalld when it answers
on the system bus, else as cni.fw.backend.select: iptables where its tools exist, else
nftables), iptablesAdminChainName (CNI-ADMIN; with nftables the admin chain's name, default
"admin"), firewalldZone (trusted), ingressPolicy (open|same-bridge|isolated; with firewalld
still iptables rules, as Go). nftables (ours; Go has none) writes table `inet cni_firewall`
over netlink (layout in cni.fw.nft_firewall). DEL removes what the iptables and nftables
backends wrote for the container whichever is configured, so switching backends leaks nothing.
firewalld is reached over the system bus socket with our own D-Bus client (cni.dbus).
iptablesAdminChainName and firewalldZone are checked with the config (code 7); the bridge name
from prevResult, which only ADD's ingressPolicy rules use, at the start of ADD.
"""
from __future__ import annotations

from cni import skel
from cni.config import NetConf
from cni.errors import InvalidConfigError
from cni.fw import backend as be
from cni.fw import firewall, rules
from cni.ip import container_addrs
from cni.meta import firewalld, isolation, require_prev
from cni.rollback import on_error
from cni.version import starting_from

BACKENDS = ("", "iptables", "firewalld", "nftables")


class Config(NetConf):
    FIELDS = {
        "backend": ("backend", str, ""),
        "iptablesAdminChainName": ("admin_chain", str, ""),
        "firewalldZone": ("zone", str, ""),
        "ingressPolicy": ("ingress_policy", str, ""),
    }
    __slots__ = tuple(a for a, _, _ in FIELDS.values())

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise InvalidConfigError(f"unknown backend {self.backend!r}",
                                     "backend must be iptables, nftables or firewalld")
        if self.admin_chain:
            rules.ipt_chain(self.admin_chain, "iptablesAdminChainName")
        self.zone = self.zone or "trusted"
        rules.zone_name(self.zone, "firewalldZone")
        self.ingress_policy = firewall.validate_ingress_policy(self.ingress_policy)

    def use_firewalld(self) -> bool:
        if self.backend:
            return self.backend == "firewalld"
        return firewalld.is_running()

    def rule_backend(self) -> str:
        """iptables or nftables: the explicit one, else iptables where its tools exist."""
        return be.select(self.backend if self.backend != "firewalld" else None)


def _ips(prev) -> list:
    return [ipc.address for ipc in prev.ips] if prev is not None else []


def _bridge(prev) -> str:
    """The first interface of prevResult (the bridge), checked when ADD will use it."""
    if not prev.interfaces or not prev.interfaces[0].name:
        return ""
    return rules.ifname(prev.interfaces[0].name, "prevResult.interfaces[0].name")


def add(args: skel.Args, conf: Config):
    prev = require_prev(conf, "missing prevResult from earlier plugin")
    ips = _ips(prev)
    bridge = _bridge(prev) if conf.ingress_policy != "open" else ""
    if conf.use_firewalld():
        with on_error() as undo:
            firewalld.add(ips, conf.zone)
            undo(firewalld.delete, ips, conf.zone)
            if conf.ingress_policy != "open":
                isolation.setup(ips, conf.ingress_policy, bridge)
        return prev
    if conf.rule_backend() == "nftables":    # one transaction: nothing to undo
        firewall.nft_add(ips, network=conf.name, container_id=args.container_id,
                         ifname=args.ifname, admin_chain=conf.admin_chain,
                         ingress_policy=conf.ingress_policy, bridge=bridge)
        return prev
    with on_error() as undo:
        # registered first: add() writes per family and can fail after the first; delete()
        # removes whatever part of it exists
        undo(firewall.delete, ips, admin_chain=conf.admin_chain)
        firewall.add(ips, admin_chain=conf.admin_chain, ingress_policy=conf.ingress_policy,
                     bridge=bridge)
    return prev


def delete(args: skel.Args, conf: Config) -> None:
    # per-container rules only; the shared chains and isolation rules stay (as Go)
    ips = _ips(conf.prev_result)
    if conf.prev_result is None and args.netns:
        ips = container_addrs(args.netns, args.ifname)   # 0.3.x: DEL carries no prevResult
    if ips and conf.use_firewalld():
        firewalld.delete(ips, conf.zone)
    firewall.teardown(ips, network=conf.name, container_id=args.container_id,
                      ifname=args.ifname, admin_chain=conf.admin_chain)


def check(args: skel.Args, conf: Config) -> None:
    prev = require_prev(conf, "missing prevResult from earlier plugin")
    if conf.use_firewalld():
        firewalld.check(_ips(prev), conf.zone)
        return
    if conf.rule_backend() == "nftables":
        bridge = _bridge(prev) if conf.ingress_policy != "open" else ""
        firewall.nft_check(_ips(prev), network=conf.name, container_id=args.container_id,
                           ifname=args.ifname, admin_chain=conf.admin_chain,
                           ingress_policy=conf.ingress_policy, bridge=bridge)
        return
    firewall.check(_ips(prev), admin_chain=conf.admin_chain)


def update(args: skel.Args, conf: Config):
    """UPDATE (our extension): switch the bridge's ingress policy and the admin chain in place
    (cni.fw.firewall.update, one restore batch per family); with firewalld, the addresses
    go to the (new) zone and the ingress policy is switched in iptables as for ADD."""
    prev = require_prev(conf, "missing prevResult from earlier plugin")
    ips = _ips(prev)
    bridge = _bridge(prev)
    if conf.use_firewalld():
        from cni.fw import iptables    # lazy: the iptables backend only
        firewalld.add(ips, conf.zone)
        if bridge:
            for v6 in sorted({ip.version == 6 for ip in ips}):
                iptables.apply("filter", lambda b: firewall.set_policy(b, conf.ingress_policy, bridge),
                               v6=v6)
        return prev
    if conf.rule_backend() == "nftables":
        firewall.nft_update(ips, network=conf.name, container_id=args.container_id,
                            ifname=args.ifname, admin_chain=conf.admin_chain,
                            ingress_policy=conf.ingress_policy, bridge=bridge)
        return prev
    firewall.update(ips, admin_chain=conf.admin_chain, ingress_policy=conf.ingress_policy,
                    bridge=bridge)
    return prev


PLUGIN = skel.Plugin("firewall", Config, add=add, delete=delete, check=check, update=update,
                     versions=starting_from("0.3.0"))  # CHECK: >= 0.4.0 (skel), UPDATE: 1.0.0


def main() -> None:
    skel.main(PLUGIN)


if __name__ == "__main__":
    main()
