"""Traffic control: qdiscs (tbf, htb, ingress, clsact), htb classes, u32/matchall filters with a
mirred redirect action, and Go's TBF rate/burst/limit/buffer arithmetic. Mixed into Rtnl.
"""
from __future__ import annotations

from .codec import NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE
from .records import Tc
from .rtnl_defs import (ETH_P_ALL, RTM_DELQDISC, RTM_DELTFILTER, RTM_GETQDISC,
                        RTM_GETTCLASS, RTM_GETTFILTER, RTM_NEWQDISC, RTM_NEWTCLASS, RTM_NEWTFILTER)
from .tc_defs import (TC_ACT_STOLEN, TC_H_CLSACT, TC_H_INGRESS, TC_H_ROOT, TC_U32_TERMINAL,
                      TCA_EGRESS_REDIR)

TIME_UNITS_PER_SEC = 1000000
HANDLE_1 = 0x10000            # handle(1): '1:'
INGRESS_PARENT = 0xFFFF0000   # handle(0xFFFF): 'ffff:', where ingress/clsact filters hang
LATENCY_MS = 25.0
_tick_in_usec = None


def handle(major: int, minor: int = 0) -> int:
    """TC_H_MAKE: handle(1, 0) is '1:', handle(0xffff) is 'ffff:'."""
    return ((major & 0xFFFF) << 16) | (minor & 0xFFFF)


def parse_handle(s: str) -> int:
    """'1:', '1:1', 'ffff:', 'root' -> int."""
    if s == "root":
        return TC_H_ROOT
    major, _, minor = s.partition(":")
    return handle(int(major or "0", 16), int(minor or "0", 16))


def tick_in_usec() -> float:
    """Ticks per microsecond from /proc/net/psched, computed as vishvananda/netlink does."""
    global _tick_in_usec
    if _tick_in_usec is None:
        try:
            with open("/proc/net/psched") as f:
                t2us, us2t, clock_res = (int(x, 16) for x in f.read().split()[:3])
        except (OSError, ValueError):
            t2us, us2t, clock_res = 1000, 64, 1000000000
        if clock_res == 1000000000:
            t2us = us2t
        _tick_in_usec = t2us / us2t * (clock_res / TIME_UNITS_PER_SEC)
    return _tick_in_usec


def time2tick(usec: int) -> int:
    return int(usec * tick_in_usec()) & 0xFFFFFFFF


def tbf_params(rate_bits: int, burst_bits: int, latency_ms: float = LATENCY_MS) -> dict:
    """The bandwidth plugin's TBF numbers: {'rate': bytes/s, 'buffer': ticks, 'limit': bytes}."""
    if rate_bits <= 0 or burst_bits <= 0:
        raise ValueError(f"invalid rate/burst: {rate_bits}/{burst_bits}")
    rate = rate_bits // 8
    burst = (burst_bits // 8) & 0xFFFFFFFF
    buffer = time2tick(int(burst * TIME_UNITS_PER_SEC / rate) & 0xFFFFFFFF)
    latency = TIME_UNITS_PER_SEC * (latency_ms / 1000.0)
    limit = (int(rate * latency / TIME_UNITS_PER_SEC) + burst) & 0xFFFFFFFF
    return {"rate": rate, "buffer": buffer, "limit": limit}


def _mirred(ifindex: int, eaction: int = TCA_EGRESS_REDIR, action: int = TC_ACT_STOLEN) -> list:
    return [("TCA_ACT_KIND", "mirred"),
            ("TCA_ACT_OPTIONS", [("TCA_MIRRED_PARMS", {"eaction": eaction, "action": action,
                                                       "ifindex": ifindex})])]


def _tbf_options(rate: int, buffer: int, limit: int, peakrate: int, mtu: int) -> list:
    opts = [("TCA_TBF_PARMS", {"rate": min(rate, 0xFFFFFFFF), "peakrate": min(peakrate, 0xFFFFFFFF),
                               "limit": limit, "buffer": buffer, "mtu": mtu})]
    if rate >= 1 << 32:
        opts.append(("TCA_TBF_RATE64", rate))
    if peakrate >= 1 << 32:
        opts.append(("TCA_TBF_PRATE64", peakrate))
    return opts


class TcOps:
    """Traffic-control methods of Rtnl; they use self._nl and self.index (LinkOps)."""

    __slots__ = ()

    def _tc(self, mtype, ref, hdr, attrs=(), flags=0) -> None:
        hdr["ifindex"] = self.index(ref)
        self._nl.request(mtype, hdr, list(attrs), flags=flags)

    def qdisc_add(self, ref, kind: str, *, parent: int = TC_H_ROOT, handle: int = 0,
                  options=None, replace: bool = False) -> None:
        a = [("TCA_KIND", kind)]
        if options is not None:
            a.append(("TCA_OPTIONS", options))
        self._tc(RTM_NEWQDISC, ref, {"handle": handle, "parent": parent}, a,
                 NLM_F_CREATE | (NLM_F_REPLACE if replace else NLM_F_EXCL))

    def qdisc_change(self, ref, kind: str, *, parent: int = TC_H_ROOT, handle: int = 0,
                     options=None) -> None:
        """`tc qdisc change`: new options for the existing qdisc `handle` (RTM_NEWQDISC without
        NLM_F_CREATE): the qdisc, its handle and its queue stay; ENOENT when it is absent."""
        a = [("TCA_KIND", kind)]
        if options is not None:
            a.append(("TCA_OPTIONS", options))
        self._tc(RTM_NEWQDISC, ref, {"handle": handle, "parent": parent}, a, 0)

    def tbf_add(self, ref, *, rate: int, buffer: int, limit: int, parent: int = TC_H_ROOT,
                handle: int = HANDLE_1, peakrate: int = 0, mtu: int = 0,
                replace: bool = False) -> None:
        """TBF like Go's netlink.Tbf: rate in bytes/s, buffer in ticks, limit in bytes (no rtab)."""
        opts = _tbf_options(rate, buffer, limit, peakrate, mtu)
        self.qdisc_add(ref, "tbf", parent=parent, handle=handle, options=opts, replace=replace)

    def tbf_change(self, ref, *, rate: int, buffer: int, limit: int, parent: int = TC_H_ROOT,
                   handle: int = HANDLE_1, peakrate: int = 0, mtu: int = 0) -> None:
        """`tc qdisc change ... tbf`: the TBF `handle` gets new numbers (as tbf_add) in place."""
        self.qdisc_change(ref, "tbf", parent=parent, handle=handle,
                          options=_tbf_options(rate, buffer, limit, peakrate, mtu))

    def ingress_add(self, ref) -> None:
        self.qdisc_add(ref, "ingress", parent=TC_H_INGRESS, handle=0xFFFF0000)

    def clsact_add(self, ref) -> None:
        self.qdisc_add(ref, "clsact", parent=TC_H_CLSACT, handle=0xFFFF0000)

    def htb_add(self, ref, *, handle: int = HANDLE_1, parent: int = TC_H_ROOT, default: int = 0,
                r2q: int = 10) -> None:
        self.qdisc_add(ref, "htb", parent=parent, handle=handle, options=[
            ("TCA_HTB_INIT", {"version": 3, "rate2quantum": r2q, "defcls": default})])

    def htb_class_add(self, ref, classid: int, *, parent: int, rate: int, ceil: int = 0,
                      buffer: int = 0, cbuffer: int = 0, prio: int = 0, quantum: int = 0) -> None:
        """An htb class; rate/ceil in bytes/s, buffers in ticks (default: one MTU at the rate)."""
        ceil = ceil or rate
        buffer = buffer or time2tick(int(1600 * TIME_UNITS_PER_SEC / rate))
        cbuffer = cbuffer or time2tick(int(1600 * TIME_UNITS_PER_SEC / ceil))
        opts = [("TCA_HTB_PARMS", {"rate": min(rate, 0xFFFFFFFF), "ceil": min(ceil, 0xFFFFFFFF),
                                   "buffer": buffer, "cbuffer": cbuffer, "prio": prio,
                                   "quantum": quantum})]
        if rate >= 1 << 32:
            opts.append(("TCA_HTB_RATE64", rate))
        if ceil >= 1 << 32:
            opts.append(("TCA_HTB_CEIL64", ceil))
        self._tc(RTM_NEWTCLASS, ref, {"handle": classid, "parent": parent},
                 [("TCA_KIND", "htb"), ("TCA_OPTIONS", opts)], NLM_F_CREATE | NLM_F_EXCL)

    def qdisc_del(self, ref, *, parent: int = TC_H_ROOT, handle: int = 0) -> None:
        self._tc(RTM_DELQDISC, ref, {"handle": handle, "parent": parent})

    def qdisc_list(self, ref=None) -> list[Tc]:
        want = None if ref is None else self.index(ref)
        msgs = self._nl.dump(RTM_GETQDISC, {"ifindex": want or 0})
        return [Tc(m) for m in msgs if want is None or m.hdr["ifindex"] == want]

    def class_list(self, ref, *, parent: int = 0) -> list[Tc]:
        return [Tc(m) for m in self._nl.dump(RTM_GETTCLASS, {"ifindex": self.index(ref),
                                                              "parent": parent})]

    def filter_add_u32_redirect(self, ref, target, *, parent: int = INGRESS_PARENT, prio: int = 1,
                                protocol: int = ETH_P_ALL, classid: int | None = None,
                                handle: int = 0) -> None:
        """`u32 match u32 0 0 [classid X] action mirred egress redirect dev TARGET`."""
        opts = []
        if classid is not None:
            opts.append(("TCA_U32_CLASSID", classid))
        opts.append(("TCA_U32_ACT", [_mirred(self.index(target))]))
        opts.append(("TCA_U32_SEL", {"flags": TC_U32_TERMINAL, "keys": [(0, 0, 0, 0)]}))
        self._filter_add(ref, "u32", opts, parent, prio, protocol, handle)

    def _filter_add(self, ref, kind, opts, parent, prio, protocol, handle_) -> None:
        info = (prio << 16) | (((protocol & 0xFF) << 8) | ((protocol >> 8) & 0xFF))
        self._tc(RTM_NEWTFILTER, ref, {"handle": handle_, "parent": parent, "info": info},
                 [("TCA_KIND", kind), ("TCA_OPTIONS", opts)], NLM_F_CREATE | NLM_F_EXCL)

    def filter_list(self, ref, *, parent: int = INGRESS_PARENT) -> list[Tc]:
        return [Tc(m) for m in self._nl.dump(RTM_GETTFILTER, {"ifindex": self.index(ref),
                                                               "parent": parent})]

    def filter_del(self, ref, *, parent: int = INGRESS_PARENT, prio: int = 0,
                   protocol: int = 0) -> None:
        info = (prio << 16) | (((protocol & 0xFF) << 8) | ((protocol >> 8) & 0xFF))
        self._tc(RTM_DELTFILTER, ref, {"parent": parent, "info": info})
