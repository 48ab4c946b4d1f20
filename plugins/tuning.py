"""tuning: set sysctls and link attributes of the container interface (chained).

Keys (as the Go plugin): sysctl (net.* only; IFNAME replaced by CNI_IFNAME; checked against
/etc/cni/tuning/allowlist.conf when it exists; duplicate keys rejected), mac, mtu, promisc,
allmulti, txQLen, dataDir (/run/cni/tuning); args.cni.{sysctl,mac,promisc,mtu,allmulti,txQLen}
override them; the `mac` capability and CNI_ARGS MAC. Beyond Go: ifName renames the container
interface (the result says so; DEL renames it back). Changed link attributes are saved under
dataDir (atomically) and restored on DEL; sysctls are not restored.
"""
from __future__ import annotations

from cni import skel
from cni.config import NetConf, check_path, parse_fields, valid_ifname
from cni.errors import CNIError, InvalidConfigError
from cni.ip import check_mac, open_netns, open_netns_for_del
from cni.meta import require_prev
from cni.meta import tuning as t
from cni.nl.rtnl import Rtnl
from cni.rollback import on_error
from cni.std import oslite as os


def _sysctl_map(value, field):
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidConfigError("invalid config", f"{field} must map names to strings")
    return value


class Config(NetConf):
    FIELDS = {
        "sysctl": ("sysctl", _sysctl_map, dict),
        "mac": ("mac", str, ""),
        "promisc": ("promisc", bool, False),
        "mtu": ("mtu", int, 0),
        "txQLen": ("txqlen", int, None),
        "allmulti": ("allmulti", bool, None),
        "dataDir": ("data_dir", str, ""),
        "ifName": ("if_name", str, ""),
    }
    ARGS = {
        "sysctl": ("sysctl", _sysctl_map, None), "mac": ("mac", str, None),
        "promisc": ("promisc", bool, None), "mtu": ("mtu", int, None),
        "txQLen": ("txqlen", int, None), "allmulti": ("allmulti", bool, None),
    }
    __slots__ = tuple(a for a, _, _ in FIELDS.values())

    def validate(self) -> None:
        dups = t.duplicate_sysctl_keys(self.raw_bytes)
        if dups:
            raise InvalidConfigError("duplicated sysctl keys are not allowed", ", ".join(dups))
        self.data_dir = check_path(self.data_dir or t.DEFAULT_DATA_DIR, "dataDir")
        if self.if_name:
            why = valid_ifname(self.if_name)
            if why:
                raise InvalidConfigError("invalid ifName", f"{self.if_name!r}: {why}")
        self.sysctl = dict(self.sysctl)

    def resolve(self, args) -> None:
        """Apply CNI_ARGS MAC, runtimeConfig.mac and args.cni.* (in Go's precedence)."""
        if args.args:
            mac = args.cni_args("MAC").get("MAC")
            if mac:
                self.mac = mac
        if isinstance(self.runtime_config.get("mac"), str) and self.runtime_config["mac"]:
            self.mac = self.runtime_config["mac"]
        cni = self.args.get("cni") if isinstance(self.args, dict) else None
        if isinstance(cni, dict):
            class Over:
                __slots__ = tuple(a for a, _, _ in Config.ARGS.values())
            o = Over()
            parse_fields(cni, self.ARGS, o, "args.cni.")
            if o.sysctl:
                self.sysctl.update(o.sysctl)
            for a in ("mac", "promisc", "mtu", "txqlen", "allmulti"):
                if getattr(o, a) is not None:
                    setattr(self, a, getattr(o, a))
        if self.mac:
            self.mac = check_mac(self.mac)
        t.check_values(self.mtu, self.txqlen)
        for key in self.sysctl:
            t.sysctl_path(key, "IFNAME")
        t.check_allowlist(self.sysctl)

    def wanted(self) -> dict:
        return {"mac": self.mac, "promisc": self.promisc, "mtu": self.mtu,
                "allmulti": self.allmulti, "txQLen": self.txqlen, "ifName": self.if_name}


def add(args: skel.Args, conf: Config):
    prev = require_prev(conf, "required prevResult missing")
    conf.resolve(args)
    want = conf.wanted()
    with open_netns(args.netns) as ns:
        if conf.sysctl:
            t.write_sysctls(ns, conf.sysctl, args.ifname)
        if not (want["mac"] or want["promisc"] or want["mtu"] or want["allmulti"] is not None
                or want["txQLen"] is not None or want["ifName"]):
            return prev
        with Rtnl(ns) as h, on_error() as undo:
            link = h.link_lookup(args.ifname)
            if link is None:
                raise CNIError(f"failed to get {args.ifname}", f"not found in {args.netns}")
            path = t.backup_path(conf.data_dir, args.container_id, args.ifname)
            saved = t.snapshot(link, want)
            t.write_backup(path, saved)
            undo(_restore_file, h, args.ifname, path, link.index)
            t.apply(h, args.ifname, want)
            if conf.if_name and conf.if_name != args.ifname:
                _rename(h, link.index, conf.if_name)
    for itf in prev.interfaces:
        if itf.name == args.ifname and itf.sandbox:
            if conf.mac:
                itf.mac = conf.mac
            if conf.if_name:
                itf.name = conf.if_name
    return prev


def _rename(h, index: int, name: str) -> None:
    """Rename a link; the kernel wants it down for that, so it is brought back up after."""
    up = h.link_get(index).up
    if up:
        h.link_set(index, up=False)
    h.link_set(index, name=name)
    if up:
        h.link_set(index, up=True)


def _restore_file(h, ifname: str, path: str, index=None) -> None:
    """Put the saved attributes back on the link (by index, or by its current name), then
    its original name if tuning renamed it."""
    data = t.read_backup(path)
    ref = index if index is not None else ifname
    if data:
        t.restore(h, ref, data)
        if data.get("ifName") and h.link_get(ref).name != data["ifName"]:
            _rename(h, h.index(ref), data["ifName"])
    if data is not None:
        os.unlink(path)


def delete(args: skel.Args, conf: Config) -> None:
    path = t.backup_path(conf.data_dir, args.container_id, args.ifname)
    if not os.path.exists(path):
        return
    ns = open_netns_for_del(args.netns)
    if ns is None:              # no netns (any more): nothing can be restored
        os.unlink(path)
        return
    with ns, Rtnl(ns) as h:
        current = conf.if_name or args.ifname       # the name tuning gave it, if any
        link = h.link_lookup(current) or h.link_lookup(args.ifname)
        if link is None:
            os.unlink(path)
            return
        _restore_file(h, link.name, path, link.index)


def check(args: skel.Args, conf: Config) -> None:
    require_prev(conf, "required prevResult missing")
    conf.resolve(args)
    with open_netns(args.netns) as ns:
        if conf.sysctl:
            t.check_sysctls(ns, conf.sysctl, conf.if_name or args.ifname)
        with Rtnl(ns) as h:
            name = conf.if_name or args.ifname
            link = h.link_lookup(name)
            if link is None:
                raise CNIError(f"cannot find container link {name}")
            t.check_link(link, conf.wanted(), name)


def update(args: skel.Args, conf: Config):
    """UPDATE (our extension): sysctls written, link attributes set to the new config in one
    RTM_NEWLINK; the originals saved by ADD stay saved for DEL (an attribute the config no
    longer sets gets its original back). The backup is widened before the link changes and
    narrowed after, so a crash at any point leaves DEL able to restore. Renaming (ifName)
    is not an update: the interface must already carry the configured name (code 7)."""
    prev = require_prev(conf, "required prevResult missing")
    conf.resolve(args)
    name = conf.if_name or args.ifname
    path = t.backup_path(conf.data_dir, args.container_id, args.ifname)
    saved = t.read_backup(path) or {}
    if saved.get("ifName") and not conf.if_name:
        raise InvalidConfigError("UPDATE cannot rename the container interface",
                                 f"ADD renamed it from {saved['ifName']!r}: DEL and ADD")
    with open_netns(args.netns) as ns, Rtnl(ns) as h:
        link = h.link_lookup(name)
        if link is None:
            if conf.if_name:
                raise InvalidConfigError("UPDATE cannot rename the container interface",
                                         f"ifName={conf.if_name!r}: DEL and ADD the attachment")
            raise CNIError(f"failed to get {name}", f"not found in {args.netns}")
        if conf.sysctl:
            t.write_sysctls(ns, conf.sysctl, name)
        back, during, after = t.plan_update(saved, link, conf.wanted())
        if during != saved:
            t.write_backup(path, during)
        kw = {**t.restore_kwargs(back), **t.apply_kwargs(conf.wanted())}
        if kw:
            h.link_set(link.index, **kw)
        if after != during:
            t.write_backup(path, after)
    for itf in prev.interfaces:
        if itf.name == name and itf.sandbox:
            mac = conf.mac or back.get("mac")
            if mac:
                itf.mac = mac
    return prev


PLUGIN = skel.Plugin("tuning", Config, add=add, delete=delete, check=check, update=update)


def main() -> None:
    skel.main(PLUGIN)


if __name__ == "__main__":
    main()
