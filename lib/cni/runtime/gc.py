"""GC of a network list (CNIConfig.gc_network_list): DEL the stale cached attachments, then
send GC to every plugin with the valid ones (cniVersion 1.1.0 or later).

Errors are collected; the first is raised with the others in its details.
"""
from __future__ import annotations

from cni import version as _v
from cni.errors import CNIError
from cni.runtime.conf import NetworkConfigList
from cni.runtime.plugins import Cancel, CancelledError
from cni.runtime.request import RuntimeConf

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable


def run(cfg, net: NetworkConfigList, valid_attachments: Iterable[tuple[str, str]] | None,
        cancel: Cancel | None = None) -> None:
    """The body of CNIConfig.gc_network_list (cfg is the CNIConfig)."""
    if net.disable_gc:
        return
    valid = None if valid_attachments is None else [(str(c), str(i))
                                                     for c, i in valid_attachments]
    vset = set(valid or ())
    errs = []
    for att in cfg.get_cached_attachments():
        if att.network != net.name or (att.container_id, att.ifname) in vset:
            continue
        rt = RuntimeConf(att.container_id, att.netns, att.ifname, args=att.cni_args,
                         capability_args=att.capability_args)
        try:
            cfg.del_network_list(net, rt, cancel=cancel)
        except CancelledError:
            raise
        except CNIError as exc:
            errs.append(exc.__class__(f"failed to delete stale attachment {att.container_id}"
                                      f" {att.ifname}: {exc.msg}", exc.details,
                                      code=exc.code))
    version = cfg.select_version(net, cancel=cancel)
    if _v.has_gc(version):
        inject = None
        if valid is not None:
            lst = [{"containerID": c, "ifname": i} for c, i in valid]
            inject = {"cni.dev/valid-attachments": lst, "cni.dev/attachments": lst}
        for p in net.plugins:
            try:
                cfg._exec(cfg.find(p.type), "GC",
                          cfg.request(net, version, p, inject=inject), None, cancel)
            except CancelledError:
                raise
            except CNIError as exc:
                errs.append(exc.__class__(f"failed to GC plugin {p.type}: {exc.msg}",
                                          exc.details, code=exc.code))
    if errs:
        first = errs[0]
        if len(errs) > 1:
            first.details = "; ".join(filter(None, [first.details] + [str(e) for e in
                                                                       errs[1:]]))
        raise first
