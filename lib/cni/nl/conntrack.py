"""NETLINK_NETFILTER conntrack: list entries and delete those matching protocol + original dst port.

portmap uses `delete(proto=17, dport=hostPort)` to flush stale UDP flows, as Go's
netlink.ConntrackDeleteFilters does: dump the table, then delete each match by its original tuple.
"""
from __future__ import annotations

from ..addr import ip_address
from .nfsock import NetfilterSocket
from .rtnl_defs import AF_INET, AF_INET6
from .schema import BE16, BE32, BE64, BYTES, IP, U8, Attrs, Nested, Struct
from .socket import Closing, NetlinkError

NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_NEW, IPCTNL_MSG_CT_GET, IPCTNL_MSG_CT_DELETE = 0, 1, 2
CT_GET = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET
CT_DELETE = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE
CT_NEW = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW
IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP = 6, 17, 132
ENOENT, EOPNOTSUPP = 2, 95

NFGENMSG = Struct("nfgenmsg", "=BBH", ("family", "version", "res_id"))
CTA_IP = Attrs("CTA_IP", {1: ("CTA_IP_V4_SRC", IP), 2: ("CTA_IP_V4_DST", IP),
                          3: ("CTA_IP_V6_SRC", IP), 4: ("CTA_IP_V6_DST", IP)})
CTA_PROTO = Attrs("CTA_PROTO", {1: ("CTA_PROTO_NUM", U8), 2: ("CTA_PROTO_SRC_PORT", BE16),
                                3: ("CTA_PROTO_DST_PORT", BE16), 4: ("CTA_PROTO_ICMP_ID", BE16),
                                5: ("CTA_PROTO_ICMP_TYPE", U8), 6: ("CTA_PROTO_ICMP_CODE", U8)})
CTA_TUPLE = Attrs("CTA_TUPLE", {1: ("CTA_TUPLE_IP", Nested(CTA_IP)),
                                2: ("CTA_TUPLE_PROTO", Nested(CTA_PROTO)),
                                3: ("CTA_TUPLE_ZONE", BE16)})
CTA = Attrs("CTA", {
    1: ("CTA_TUPLE_ORIG", Nested(CTA_TUPLE)), 2: ("CTA_TUPLE_REPLY", Nested(CTA_TUPLE)),
    3: ("CTA_STATUS", BE32), 4: ("CTA_PROTOINFO", BYTES), 5: ("CTA_HELP", BYTES),
    6: ("CTA_NAT_SRC", BYTES), 7: ("CTA_TIMEOUT", BE32), 8: ("CTA_MARK", BE32),
    9: ("CTA_COUNTERS_ORIG", BYTES), 10: ("CTA_COUNTERS_REPLY", BYTES), 11: ("CTA_USE", BE32),
    12: ("CTA_ID", BE32), 13: ("CTA_NAT_DST", BYTES), 14: ("CTA_TUPLE_MASTER", Nested(CTA_TUPLE)),
    15: ("CTA_SEQ_ADJ_ORIG", BYTES), 16: ("CTA_SEQ_ADJ_REPLY", BYTES), 17: ("CTA_SECMARK", BYTES),
    18: ("CTA_ZONE", BE16), 19: ("CTA_SECCTX", BYTES), 20: ("CTA_TIMESTAMP", BYTES),
    21: ("CTA_MARK_MASK", BE32), 22: ("CTA_LABELS", BYTES), 23: ("CTA_LABELS_MASK", BYTES),
    24: ("CTA_SYNPROXY", BYTES), 25: ("CTA_FILTER", BYTES), 26: ("CTA_STATUS_MASK", BE32),
    27: ("CTA_TIMESTAMP_EVENT", BE64)})
MESSAGES = {CT_GET: (NFGENMSG, CTA), CT_NEW: (NFGENMSG, CTA), CT_DELETE: (NFGENMSG, CTA)}


class Flow:
    """One conntrack entry's original direction."""

    __slots__ = ("family", "proto", "src", "dst", "sport", "dport", "orig", "zone")

    def __init__(self, msg):
        self.family = msg.hdr["family"]
        self.orig = msg.attrs.get("CTA_TUPLE_ORIG")
        self.zone = msg.attrs.get("CTA_ZONE")
        ip = self.orig.get("CTA_TUPLE_IP") or ()
        pr = self.orig.get("CTA_TUPLE_PROTO") or ()
        self.src = ip and (ip.get("CTA_IP_V4_SRC") or ip.get("CTA_IP_V6_SRC"))
        self.dst = ip and (ip.get("CTA_IP_V4_DST") or ip.get("CTA_IP_V6_DST"))
        self.proto = pr and pr.get("CTA_PROTO_NUM")
        self.sport = pr and pr.get("CTA_PROTO_SRC_PORT")
        self.dport = pr and pr.get("CTA_PROTO_DST_PORT")

    def __repr__(self) -> str:
        return f"Flow(proto={self.proto}, {self.src}:{self.sport} -> {self.dst}:{self.dport})"


class Conntrack(Closing):
    """A ctnetlink socket in the current network namespace (enter the netns before creating)."""

    __slots__ = ("_nl",)

    def __init__(self):
        self._nl = NetfilterSocket(MESSAGES)   # its release after a commit waits for nothing

    def close(self) -> None:
        self._nl.close()

    def list(self, family: int = AF_INET) -> list[Flow]:
        try:
            msgs = self._nl.dump(CT_GET, {"family": family})
        except NetlinkError as e:
            if e.errno in (ENOENT, EOPNOTSUPP):   # no conntrack in this kernel/netns
                return []
            raise
        return [Flow(m) for m in msgs if m.attrs.get("CTA_TUPLE_ORIG")]

    def delete(self, *, proto: int, dport: int, dst=None, family: int | None = None) -> int:
        """Delete entries with this protocol and original dst port (and dst ip); returns the count."""
        if dst is not None and isinstance(dst, str):
            dst = ip_address(dst)
        fams = (family,) if family else ((AF_INET if dst.version == 4 else AF_INET6,) if dst
                                         else (AF_INET, AF_INET6))
        n = 0
        for fam in fams:
            for f in self.list(fam):
                if f.proto != proto or f.dport != dport or (dst is not None and f.dst != dst):
                    continue
                attrs = [("CTA_TUPLE_ORIG", f.orig)]
                if f.zone is not None:
                    attrs.append(("CTA_ZONE", f.zone))
                try:
                    self._nl.request(CT_DELETE, {"family": fam}, attrs)
                    n += 1
                except NetlinkError as e:
                    if e.errno != ENOENT:                      # already expired: fine
                        raise
        return n


    def delete_ports(self, *, proto: int, dports, families=(AF_INET, AF_INET6)) -> int:
        """Delete entries of `proto` whose original dst port is in `dports`, for `families`.

        One AF_UNSPEC dump covers every family and port: each dump walks the whole
        (global) conntrack hash table, ~14 ms with a large table, whatever it returns.
        """
        ports = set(dports)
        if not ports:
            return 0
        n = 0
        for f in self.list(0):
            if f.family not in families or f.proto != proto or f.dport not in ports:
                continue
            attrs = [("CTA_TUPLE_ORIG", f.orig)]
            if f.zone is not None:
                attrs.append(("CTA_ZONE", f.zone))
            try:
                self._nl.request(CT_DELETE, {"family": f.family}, attrs)
                n += 1
            except NetlinkError as e:
                if e.errno != ENOENT:                      # already expired: fine
                    raise
        return n


def delete(*, proto: int, dport: int, dst=None, family: int | None = None) -> int:
    """One-shot Conntrack().delete(...) in the current network namespace."""
    with Conntrack() as ct:
        return ct.delete(proto=proto, dport=dport, dst=dst, family=family)

