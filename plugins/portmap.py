"""portmap: forward host ports to the container (DNAT), chained after an interface plugin.

Keys (as the Go plugin): backend (iptables|nftables), snat (default true), markMasqBit (13),
externalSetMarkChain, conditionsV4, conditionsV6, masqAll; the `portMappings` capability
(runtimeConfig.portMappings, keys matched case-insensitively, hostIP "" = unset).
Beyond Go: DEL removes the container's rules even without runtimeConfig/prevResult/netns
(containerd's second DEL), stale UDP conntrack entries are flushed on DEL too, and GC drops
the chains of containers that are no longer valid attachments, and UPDATE (our extension)
replaces the container's mappings in one transaction per family.
"""
from __future__ import annotations

import gc as _gc

from cni import skel
from cni.config import NetConf
from cni.fw import portmap, portmap_update
from cni.fw.portmap_config import normalize_mappings, resolve_backend
from cni.meta import container_ips, require_prev, string_list, valid_attachments
from cni.meta.hostnet import enable_route_localnet, flush_udp_conntrack
from cni.rollback import on_error


class Config(NetConf):
    FIELDS = {
        "backend": ("backend", str, None),
        "snat": ("snat", bool, True),
        "markMasqBit": ("mark_masq_bit", int, None),
        "externalSetMarkChain": ("external_setmark_chain", str, None),
        "conditionsV4": ("conditions_v4", string_list, None),
        "conditionsV6": ("conditions_v6", string_list, None),
        "masqAll": ("masq_all", bool, False),
    }
    __slots__ = tuple(a for a, _, _ in FIELDS.values()) + ("mappings", "which")

    def validate(self) -> None:
        self.mappings = normalize_mappings(_runtime_mappings(self.runtime_config))
        if self.backend == "":
            self.backend = None
        self.which = self.resolved_backend()      # also validates markMasqBit & co

    def options(self) -> dict:
        return {"snat": self.snat, "mark_masq_bit": self.mark_masq_bit,
                "external_setmark_chain": self.external_setmark_chain,
                "conditions_v4": self.conditions_v4, "conditions_v6": self.conditions_v6,
                "masq_all": self.masq_all}

    def resolved_backend(self) -> str:
        return resolve_backend(self.backend, conditions_v4=self.conditions_v4,
                               conditions_v6=self.conditions_v6,
                               external_setmark_chain=self.external_setmark_chain,
                               mark_masq_bit=self.mark_masq_bit)


def _runtime_mappings(rc: dict):
    if "portMappings" in rc:
        return rc["portMappings"]
    for k, v in rc.items():
        if k.lower() == "portmappings":
            return v
    return None


def add(args: skel.Args, conf: Config):
    prev = require_prev(conf)
    if not conf.mappings:
        return prev
    backend = conf.which
    ips = container_ips(prev, args.ifname)
    with on_error() as undo:
        undo(portmap.delete, conf.name, args.container_id, backend)
        portmap.add(conf.name, args.container_id, conf.mappings, ips, backend=backend,
                    **conf.options())
        if conf.snat and any(i.version == 4 for i in ips):
            enable_route_localnet(next(i for i in ips if i.version == 4).ip)
    flush_udp_conntrack(conf.mappings, {i.version for i in ips})
    return prev


def delete(args: skel.Args, conf: Config) -> None:
    # by chain name / comment: needs neither prevResult nor runtimeConfig nor the netns
    portmap.delete(conf.name, args.container_id, conf.which)
    if conf.mappings:
        flush_udp_conntrack(conf.mappings, {4, 6})


def check(args: skel.Args, conf: Config) -> None:
    prev = require_prev(conf, "required prevResult missing")
    if not conf.mappings:
        return
    portmap.check(conf.name, args.container_id, conf.mappings, container_ips(prev, args.ifname),
                  backend=conf.which, **conf.options())


def update(args: skel.Args, conf: Config):
    """UPDATE (our extension): this container's mappings become runtimeConfig.portMappings,
    old rules out and new ones in as one transaction per family (cni.fw.portmap_update);
    UDP conntrack entries of the old and the new host ports are flushed."""
    prev = require_prev(conf)
    ips = container_ips(prev, args.ifname)
    old = portmap_update.update(conf.name, args.container_id, conf.mappings, ips,
                                backend=conf.which, **conf.options())
    if conf.mappings and conf.snat and any(i.version == 4 for i in ips):
        enable_route_localnet(next(i for i in ips if i.version == 4).ip)
    gone = [{"hostPort": port, "protocol": proto} for proto, port in old]
    flush_udp_conntrack(conf.mappings + gone, {i.version for i in ips} or {4, 6})
    return prev


def gc(args: skel.Args, conf: Config) -> None:
    valid = valid_attachments(conf)
    if valid is not None:  # no list: nothing is known to be stale
        portmap.gc(conf.name, [cid for cid, _ in valid], conf.which)


PLUGIN = skel.Plugin("portmap", Config, add=add, delete=delete, check=check, gc=gc, update=update)


def main() -> None:
    # A short-lived process: no cyclic GC. With 60k mappings (a podman port range) the config,
    # the rules and the netlink dumps are millions of live objects, and the collector's
    # passes over them made ADD/CHECK/DEL grow faster than the mappings (3x slower at 30k).
    _gc.disable()
    skel.main(PLUGIN)


if __name__ == "__main__":
    main()
