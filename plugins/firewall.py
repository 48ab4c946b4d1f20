"""firewall: allow the container's addresses through the host firewall (chained, >= 0.3.0).

Keys (as the Go plugin): backend (iptables|firewalld; default firewalld when it answers on the
system bus, else iptables), iptablesAdminChainName (CNI-ADMIN), firewalldZone (trusted),
ingressPolicy (open|same-bridge|isolated; iptables rules whatever the backend).
firewalld is reached over the system bus socket with our own D-Bus client (cni.meta.dbus).
iptablesAdminChainName and firewalldZone are checked with the config (code 7); the bridge name
from prevResult, which only ADD's ingressPolicy rules use, at the start of ADD.
"""
from __future__ import annotations

from cni import skel
from cni.config import NetConf
from cni.errors import InvalidConfigError
from cni.version import starting_from

BACKENDS = ("", "iptables", "firewalld")


class Config(NetConf):
    FIELDS = {
        "backend": ("backend", str, ""),
        "iptablesAdminChainName": ("admin_chain", str, ""),
        "firewalldZone": ("zone", str, ""),
        "ingressPolicy": ("ingress_policy", str, ""),
    }
    __slots__ = tuple(a for a, _, _ in FIELDS.values())

    def validate(self) -> None:
        from cni.fw import rules
        from cni.fw.firewall import validate_ingress_policy
        if self.backend not in BACKENDS:
            raise InvalidConfigError(f"unknown backend {self.backend!r}",
                                     "backend must be iptables or firewalld")
        if self.admin_chain:
            rules.ipt_chain(self.admin_chain, "iptablesAdminChainName")
        self.zone = self.zone or "trusted"
        rules.zone_name(self.zone, "firewalldZone")
        self.ingress_policy = validate_ingress_policy(self.ingress_policy)

    def use_firewalld(self) -> bool:
        if self.backend:
            return self.backend == "firewalld"
        from cni.meta import firewalld
        return firewalld.is_running()


def _ips(prev) -> list:
    return [ipc.address for ipc in prev.ips] if prev is not None else []


def _bridge(prev) -> str:
    """The first interface of prevResult (the bridge), checked when ADD will use it."""
    if not prev.interfaces or not prev.interfaces[0].name:
        return ""
    from cni.fw import rules
    return rules.ifname(prev.interfaces[0].name, "prevResult.interfaces[0].name")


def add(args: skel.Args, conf: Config):
    from cni.fw import firewall
    from cni.meta import require_prev
    from cni.rollback import on_error
    prev = require_prev(conf, "missing prevResult from earlier plugin")
    ips = _ips(prev)
    bridge = _bridge(prev) if conf.ingress_policy != "open" else ""
    if conf.use_firewalld():
        from cni.meta import firewalld
        with on_error() as undo:
            firewalld.add(ips, conf.zone)
            undo(firewalld.delete, ips, conf.zone)
            if conf.ingress_policy != "open":
                from cni.meta.isolation import setup
                setup(ips, conf.ingress_policy, bridge)
        return prev
    with on_error() as undo:
        undo(firewall.delete, ips, admin_chain=conf.admin_chain)
        firewall.add(ips, admin_chain=conf.admin_chain, ingress_policy=conf.ingress_policy,
                     bridge=bridge)
    return prev


def delete(args: skel.Args, conf: Config) -> None:
    # per-address rules only; the shared chains and isolation rules stay (as Go)
    ips = _ips(conf.prev_result)
    if conf.prev_result is None and args.netns:
        from cni.ip import container_addrs   # 0.3.x: DEL carries no prevResult
        ips = container_addrs(args.netns, args.ifname)
    if not ips:
        return
    if conf.use_firewalld():
        from cni.meta import firewalld
        firewalld.delete(ips, conf.zone)
        return
    from cni.fw import firewall
    firewall.delete(ips, admin_chain=conf.admin_chain)


def check(args: skel.Args, conf: Config) -> None:
    from cni.meta import require_prev
    prev = require_prev(conf, "missing prevResult from earlier plugin")
    if conf.use_firewalld():
        from cni.meta import firewalld
        firewalld.check(_ips(prev), conf.zone)
        return
    from cni.fw import firewall
    firewall.check(_ips(prev), admin_chain=conf.admin_chain)


def update(args: skel.Args, conf: Config):
    """UPDATE (our extension): switch the bridge's ingress policy and the admin chain in place
    (cni.fw.firewall.update, one restore batch per family); with firewalld, the addresses
    go to the (new) zone and the ingress policy is switched in iptables as for ADD."""
    from cni.fw import firewall
    from cni.meta import require_prev
    prev = require_prev(conf, "missing prevResult from earlier plugin")
    ips = _ips(prev)
    bridge = _bridge(prev)
    if conf.use_firewalld():
        from cni.fw import iptables
        from cni.meta import firewalld
        firewalld.add(ips, conf.zone)
        if bridge:
            for v6 in sorted({ip.version == 6 for ip in ips}):
                iptables.apply("filter", lambda b: firewall.set_policy(b, conf.ingress_policy, bridge),
                               v6=v6)
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
