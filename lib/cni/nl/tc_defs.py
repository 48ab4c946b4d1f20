"""Traffic control's uapi constants and attribute tables (linux/pkt_sched.h, pkt_cls.h,
tc_act/tc_mirred.h): qdiscs (tbf, htb, ingress, clsact), classes, u32/matchall filters and
the mirred action. Only cni.nl.tc (the bandwidth plugin) needs them: the other plugins'
rtnetlink sockets decode links and layer 3 only (rtnl_defs.MESSAGES).
"""
from __future__ import annotations

from struct import Struct as _S

from . import rtnl_defs
from .rtnl_defs import (RTM_DELQDISC, RTM_DELTCLASS, RTM_DELTFILTER, RTM_GETQDISC, RTM_GETTCLASS,
                        RTM_GETTFILTER, RTM_NEWQDISC, RTM_NEWTCLASS, RTM_NEWTFILTER)
from .schema import BE16, BE32, BYTES, FLAG, STR, U8, U32, U64, Array, Attrs, Nested, Struct, Switch

TC_H_ROOT, TC_H_INGRESS, TC_H_CLSACT = 0xFFFFFFFF, 0xFFFFFFF1, 0xFFFFFFF1
TC_H_MIN_INGRESS, TC_H_MIN_EGRESS = 0xFFF2, 0xFFF3
TC_U32_TERMINAL = 1
TC_ACT_OK, TC_ACT_PIPE, TC_ACT_STOLEN = 0, 3, 4
TCA_EGRESS_REDIR, TCA_EGRESS_MIRROR, TCA_INGRESS_REDIR, TCA_INGRESS_MIRROR = 1, 2, 3, 4

TCMSG = Struct("tcmsg", "=BxxxiIII", ("family", "ifindex", "handle", "parent", "info"))

_RATESPEC = "BBHhHI"
TC_TBF_QOPT = Struct("tc_tbf_qopt", "=" + _RATESPEC * 2 + "III", (
    "rate_cell_log", "rate_linklayer", "rate_overhead", "rate_cell_align", "rate_mpu", "rate",
    "peak_cell_log", "peak_linklayer", "peak_overhead", "peak_cell_align", "peak_mpu", "peakrate",
    "limit", "buffer", "mtu"))
TC_HTB_OPT = Struct("tc_htb_opt", "=" + _RATESPEC * 2 + "IIIII", (
    "rate_cell_log", "rate_linklayer", "rate_overhead", "rate_cell_align", "rate_mpu", "rate",
    "ceil_cell_log", "ceil_linklayer", "ceil_overhead", "ceil_cell_align", "ceil_mpu", "ceil",
    "buffer", "cbuffer", "quantum", "level", "prio"))
TC_HTB_GLOB = Struct("tc_htb_glob", "=IIIII", ("version", "rate2quantum", "defcls", "debug",
                                               "direct_pkts"))
TC_MIRRED = Struct("tc_mirred", "=IIiiiiI", ("index", "capab", "action", "refcnt", "bindcnt",
                                             "eaction", "ifindex"))
TBF = Attrs("TCA_TBF", {
    1: ("TCA_TBF_PARMS", TC_TBF_QOPT), 2: ("TCA_TBF_RTAB", BYTES), 3: ("TCA_TBF_PTAB", BYTES),
    4: ("TCA_TBF_RATE64", U64), 5: ("TCA_TBF_PRATE64", U64), 6: ("TCA_TBF_BURST", U32),
    7: ("TCA_TBF_PBURST", U32), 8: ("TCA_TBF_PAD", BYTES)})
HTB = Attrs("TCA_HTB", {
    1: ("TCA_HTB_PARMS", TC_HTB_OPT), 2: ("TCA_HTB_INIT", TC_HTB_GLOB), 3: ("TCA_HTB_CTAB", BYTES),
    4: ("TCA_HTB_RTAB", BYTES), 5: ("TCA_HTB_DIRECT_QLEN", U32), 6: ("TCA_HTB_RATE64", U64),
    7: ("TCA_HTB_CEIL64", U64), 8: ("TCA_HTB_PAD", BYTES), 9: ("TCA_HTB_OFFLOAD", FLAG)})
MIRRED = Attrs("TCA_MIRRED", {1: ("TCA_MIRRED_TM", BYTES), 2: ("TCA_MIRRED_PARMS", TC_MIRRED),
                              3: ("TCA_MIRRED_PAD", BYTES), 4: ("TCA_MIRRED_BLOCKID", U32)})
ACT = Attrs("TCA_ACT", {
    1: ("TCA_ACT_KIND", STR), 2: ("TCA_ACT_OPTIONS", Switch("TCA_ACT_KIND", {"mirred": Nested(MIRRED)})),
    3: ("TCA_ACT_INDEX", U32), 4: ("TCA_ACT_STATS", BYTES), 5: ("TCA_ACT_PAD", BYTES),
    6: ("TCA_ACT_COOKIE", BYTES), 7: ("TCA_ACT_FLAGS", BYTES), 8: ("TCA_ACT_HW_STATS", BYTES),
    9: ("TCA_ACT_USED_HW_STATS", BYTES), 10: ("TCA_ACT_IN_HW_COUNT", U32)})
ACTIONS = Array(Nested(ACT))


class _U32Sel:
    """struct tc_u32_sel + keys[]; value: dict with 'keys' = [(mask, val, off, offmask), ...]."""

    __slots__ = ()
    nested = False
    _H, _K = _S("=BBBx"), _S("!II")
    _M, _T = _S("=Hhh"), _S("=ii")

    def pack(self, v) -> bytes:
        keys = v.get("keys", ())
        out = [self._H.pack(v.get("flags", 0), v.get("offshift", 0), len(keys)),
               BE16.pack(v.get("offmask", 0)),
               self._M.pack(v.get("off", 0), v.get("offoff", 0), v.get("hoff", 0)),
               BE32.pack(v.get("hmask", 0))]
        for mask, val, off, offmask in keys:
            out.append(self._K.pack(mask, val) + self._T.pack(off, offmask))
        return b"".join(out)

    def unpack(self, mv) -> dict:
        mv = bytes(mv)
        flags, offshift, nkeys = self._H.unpack_from(mv, 0)
        off, offoff, hoff = self._M.unpack_from(mv, 6)
        if len(mv) != 16 + 16 * nkeys:
            raise ValueError("tc_u32_sel length")
        keys = [self._K.unpack_from(mv, p) + self._T.unpack_from(mv, p + 8)
                for p in range(16, 16 + 16 * nkeys, 16)]
        return {"flags": flags, "offshift": offshift, "nkeys": nkeys,
                "offmask": BE16.unpack(mv[4:6]), "off": off, "offoff": offoff, "hoff": hoff,
                "hmask": BE32.unpack(mv[12:16]), "keys": keys}

    def __repr__(self) -> str:
        return "U32SEL"


U32SEL = _U32Sel()
U32_FILTER = Attrs("TCA_U32", {
    1: ("TCA_U32_CLASSID", U32), 2: ("TCA_U32_HASH", U32), 3: ("TCA_U32_LINK", U32),
    4: ("TCA_U32_DIVISOR", U32), 5: ("TCA_U32_SEL", U32SEL), 6: ("TCA_U32_POLICE", BYTES),
    7: ("TCA_U32_ACT", ACTIONS), 8: ("TCA_U32_INDEV", STR), 9: ("TCA_U32_PCNT", BYTES),
    10: ("TCA_U32_MARK", BYTES), 11: ("TCA_U32_FLAGS", U32), 12: ("TCA_U32_PAD", BYTES)})
MATCHALL = Attrs("TCA_MATCHALL", {
    1: ("TCA_MATCHALL_CLASSID", U32), 2: ("TCA_MATCHALL_ACT", ACTIONS), 3: ("TCA_MATCHALL_FLAGS", U32),
    4: ("TCA_MATCHALL_PCNT", BYTES), 5: ("TCA_MATCHALL_PAD", BYTES)})
EMPTY = Attrs("TCA_EMPTY", {})
TCA_OPTIONS = {"tbf": Nested(TBF), "htb": Nested(HTB), "u32": Nested(U32_FILTER),
               "matchall": Nested(MATCHALL), "ingress": Nested(EMPTY), "clsact": Nested(EMPTY)}
TCA = Attrs("TCA", {
    1: ("TCA_KIND", STR), 2: ("TCA_OPTIONS", Switch("TCA_KIND", TCA_OPTIONS)), 3: ("TCA_STATS", BYTES),
    4: ("TCA_XSTATS", BYTES), 5: ("TCA_RATE", BYTES), 6: ("TCA_FCNT", U32), 7: ("TCA_STATS2", BYTES),
    8: ("TCA_STAB", BYTES), 9: ("TCA_PAD", BYTES), 10: ("TCA_DUMP_INVISIBLE", FLAG),
    11: ("TCA_CHAIN", U32), 12: ("TCA_HW_OFFLOAD", U8), 13: ("TCA_INGRESS_BLOCK", U32),
    14: ("TCA_EGRESS_BLOCK", U32), 15: ("TCA_DUMP_FLAGS", BYTES), 16: ("TCA_EXT_WARN_MSG", STR)})

# rtnetlink's messages plus tc's: what a TcRtnl socket decodes
MESSAGES = dict(rtnl_defs.MESSAGES)
for _t in (RTM_NEWQDISC, RTM_DELQDISC, RTM_GETQDISC, RTM_NEWTCLASS, RTM_DELTCLASS, RTM_GETTCLASS,
           RTM_NEWTFILTER, RTM_DELTFILTER, RTM_GETTFILTER):
    MESSAGES[_t] = (TCMSG, TCA)
del _t
