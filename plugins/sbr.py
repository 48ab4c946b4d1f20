"""sbr: source-based routing for the container interface (chained).

Keys (as the Go plugin): table (fixed table id: only `from <addr>` rules are added),
gateways (at most one IPv4 and one IPv6 static gateway, overriding prevResult's),
addSourceHints (keep subnet routes in main with a src hint). Without `table`, each address
gets the first free table >= 100 with a default route and copies of the interface's routes,
which leave the main table. The netns file is flock'ed while working. DEL removes the rules
and, unlike Go, succeeds when the netns is already gone.
"""
from __future__ import annotations

from cni import skel
from cni.config import NetConf
from cni.errors import CNIError, InvalidConfigError
from cni.ip import open_netns, open_netns_for_del
from cni.meta import ifname_ips, require_prev, sbr, string_list
from cni.nl.rtnl import Rtnl
from cni.rollback import on_error


class Config(NetConf):
    FIELDS = {
        "table": ("table", int, None),
        "gateways": ("gateways", string_list, list),
        "addSourceHints": ("add_source_hints", bool, False),
    }
    __slots__ = tuple(a for a, _, _ in FIELDS.values())

    def validate(self) -> None:
        if self.table is not None and not 0 < self.table < 1 << 32:
            raise InvalidConfigError("invalid config", f"table={self.table}")


def add(args: skel.Args, conf: Config):
    prev = require_prev(conf, "this plugin must be called as chained plugin")
    if not prev.ips:
        raise CNIError(f"no IP addresses supplied on interface: {args.ifname}")
    ipcs = ifname_ips(prev, args.ifname)
    gws = sbr.static_gateways(conf.gateways) if conf.table is None else {}
    with open_netns(args.netns) as ns, sbr.NetnsLock(ns), Rtnl(ns) as h, \
            on_error() as undo:
        if conf.table is not None:
            sbr.add_rules_with_table(h, ipcs, conf.table, undo)
        else:
            sbr.add_routes(h, ipcs, args.ifname, gws, conf.add_source_hints, undo)
    return prev


def delete(args: skel.Args, conf: Config) -> None:
    ns = open_netns_for_del(args.netns)
    if ns is None:
        return
    with ns, sbr.NetnsLock(ns), Rtnl(ns) as h:
        sbr.tidy_rules(h, args.ifname, conf.table)


def check(args: skel.Args, conf: Config) -> None:
    """Nothing to compare (as Go)."""


PLUGIN = skel.Plugin("sbr", Config, add=add, delete=delete, check=check)


def main() -> None:
    skel.main(PLUGIN)


if __name__ == "__main__":
    main()
