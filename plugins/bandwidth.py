"""bandwidth: shape the container's traffic with TBF (chained after a veth plugin, >= 0.3.0).

Keys (as the Go plugin): ingressRate/ingressBurst (bits/s, bits; traffic to the container,
TBF on the host veth), egressRate/egressBurst (traffic from the container: the host veth's
ingress is redirected to an IFB named bwp<hash> that carries the TBF); the `bandwidth`
capability (runtimeConfig.bandwidth) counts only when none of the four keys is set.
"""
from __future__ import annotations

from cni import skel
from cni.config import NetConf, parse_fields
from cni.errors import CNIError, InvalidConfigError
from cni.ip import open_netns
from cni.log import warn
from cni.meta import bandwidth as bw
from cni.meta import require_prev
from cni.names import ifb_name
from cni.nl.rtnl import Rtnl
from cni.nl.rtnl_tc import TcRtnl
from cni.nl.tc_defs import TC_H_INGRESS
from cni.rollback import on_error
from cni.types import Interface, Result
from cni.version import starting_from

KEYS = (("ingressRate", "ingress_rate"), ("ingressBurst", "ingress_burst"),
        ("egressRate", "egress_rate"), ("egressBurst", "egress_burst"))


class Config(NetConf):
    FIELDS = {k: (a, int, None) for k, a in KEYS}
    __slots__ = tuple(a for _, a in KEYS)

    def validate(self) -> None:
        if all(getattr(self, a) is None for _, a in KEYS):
            limits = self.runtime_config.get("bandwidth")
            if limits is not None:
                if not isinstance(limits, dict):
                    raise InvalidConfigError("invalid config", "runtimeConfig.bandwidth must be an object")
                parse_fields(limits, self.FIELDS, self, "runtimeConfig.bandwidth.")
        for _, a in KEYS:
            if getattr(self, a) is None:
                setattr(self, a, 0)
        bw.validate_rate_burst(self.ingress_rate, self.ingress_burst, "ingress")
        bw.validate_rate_burst(self.egress_rate, self.egress_burst, "egress")
        for k in ("shapedSubnets", "unshapedSubnets"):
            if self.raw.get(k):
                warn(f"{k} is ignored (the Go plugin reverted it; all traffic is shaped)")

    def is_zero(self) -> bool:
        return not (self.ingress_rate or self.egress_rate)


def add(args: skel.Args, conf: Config):
    if conf.is_zero():
        return conf.prev_result or Result(conf.cni_version)
    prev = require_prev(conf)
    with open_netns(args.netns) as ns, Rtnl(ns) as cont, TcRtnl() as host, on_error() as undo:
        veth = bw.host_veth(host, cont, prev, args.ifname)
        if conf.ingress_rate:
            bw.add_tbf(host, veth.index, conf.ingress_rate, conf.ingress_burst)
            undo(host.qdisc_del, veth.index, handle=bw.TBF_HANDLE)
        if conf.egress_rate:
            name = ifb_name(conf.name, args.container_id)
            undo(bw.teardown, host, name)
            undo(host.qdisc_del, veth.index, parent=TC_H_INGRESS, handle=bw.INGRESS_HANDLE)
            ifb = bw.setup_egress(host, veth, name, conf.egress_rate, conf.egress_burst)
            prev.interfaces.append(Interface(ifb.name, ifb.mac or ""))
    return prev


def delete(args: skel.Args, conf: Config) -> None:
    with TcRtnl() as host:
        bw.teardown(host, ifb_name(conf.name, args.container_id))


def check(args: skel.Args, conf: Config) -> None:
    prev = require_prev(conf, "must be called as a chained plugin")
    with open_netns(args.netns) as ns, Rtnl(ns) as cont, TcRtnl() as host:
        veth = bw.host_veth(host, cont, prev, args.ifname)
        if conf.ingress_rate:
            bw.check_tbf(host, veth.index, conf.ingress_rate, conf.ingress_burst, veth.name)
        if conf.egress_rate:
            name = ifb_name(conf.name, args.container_id)
            ifb = host.link_lookup(name)
            if ifb is None:
                raise CNIError("get ifb device", f"{name} not found")
            bw.check_redirect(host, veth, ifb)
            bw.check_tbf(host, ifb.index, conf.egress_rate, conf.egress_burst, name)


def update(args: skel.Args, conf: Config):
    """UPDATE (our extension): rates and bursts changed in place with `tc qdisc change` (the
    qdiscs keep their handles; no teardown); a direction whose rate becomes 0 is unshaped, one
    that gains a rate is set up as ADD does. The result lists the IFB while egress is shaped."""
    prev = require_prev(conf)
    name = ifb_name(conf.name, args.container_id)
    listed = any(i.name == name and not i.sandbox for i in prev.interfaces)  # cached result
    if listed and prev.interfaces[-1].name == name:    # where ADD put it: no index shifts
        prev.interfaces.pop()
        listed = False
    with open_netns(args.netns) as ns, Rtnl(ns) as cont, TcRtnl() as host:
        veth = bw.host_veth(host, cont, prev, args.ifname)
        bw.update_ingress(host, veth, conf.ingress_rate, conf.ingress_burst)
        ifb = bw.update_egress(host, veth, name, conf.egress_rate, conf.egress_burst)
        if ifb is not None and not listed:
            prev.interfaces.append(Interface(ifb.name, ifb.mac or ""))
    return prev


PLUGIN = skel.Plugin("bandwidth", Config, add=add, delete=delete, check=check, update=update,
                     versions=starting_from("0.3.0"))


def main() -> None:
    skel.main(PLUGIN)


if __name__ == "__main__":
    main()
