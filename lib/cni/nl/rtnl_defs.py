"""rtnetlink uapi constants and attribute tables (links, addresses, routes, rules, neighbours, tc).

Numbers and names follow linux/{rtnetlink,if_link,if_addr,neighbour,fib_rules,pkt_sched,pkt_cls,
tc_act/tc_mirred,if_bridge}.h verbatim.
"""
from __future__ import annotations

from struct import Struct as _S

from .schema import (BE16, BE32, BYTES, FLAG, IP, MAC, S32, STR, U8, U16, U32, U64, Array, Attrs,
                     HdrAttrs, Nested, Struct, Switch)

NETLINK_ROUTE, NETLINK_NETFILTER = 0, 12
AF_UNSPEC, AF_INET, AF_BRIDGE, AF_INET6, AF_PACKET = 0, 2, 7, 10, 17

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_NEWNEIGH, RTM_DELNEIGH, RTM_GETNEIGH = 28, 29, 30
RTM_NEWRULE, RTM_DELRULE, RTM_GETRULE = 32, 33, 34
RTM_NEWQDISC, RTM_DELQDISC, RTM_GETQDISC = 36, 37, 38
RTM_NEWTCLASS, RTM_DELTCLASS, RTM_GETTCLASS = 40, 41, 42
RTM_NEWTFILTER, RTM_DELTFILTER, RTM_GETTFILTER = 44, 45, 46
RTM_NEWNSID, RTM_DELNSID, RTM_GETNSID = 88, 89, 90

IFF_UP, IFF_BROADCAST, IFF_LOOPBACK, IFF_POINTOPOINT = 0x1, 0x2, 0x8, 0x10
IFF_RUNNING, IFF_NOARP, IFF_PROMISC, IFF_ALLMULTI = 0x40, 0x80, 0x100, 0x200
IFF_MULTICAST, IFF_LOWER_UP = 0x1000, 0x10000
OPERSTATES = ("unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up")
RTEXT_FILTER_VF, RTEXT_FILTER_BRVLAN, RTEXT_FILTER_BRVLAN_COMPRESSED = 1, 2, 4

MACVLAN_MODES = {"private": 1, "vepa": 2, "bridge": 4, "passthru": 8, "source": 16}
MACVLAN_FLAG_NOPROMISC, MACVLAN_FLAG_NODST = 1, 2
IPVLAN_MODES = {"l2": 0, "l3": 1, "l3s": 2}
IPVLAN_FLAGS = {"bridge": 0, "private": 1, "vepa": 2}
ETH_P_8021Q, ETH_P_8021AD, ETH_P_ALL, ETH_P_IP = 0x8100, 0x88A8, 0x0003, 0x0800
VLAN_PROTOCOLS = {"802.1q": ETH_P_8021Q, "802.1ad": ETH_P_8021AD}

BRIDGE_FLAGS_MASTER, BRIDGE_FLAGS_SELF = 1, 2
BRIDGE_VLAN_INFO_MASTER, BRIDGE_VLAN_INFO_PVID, BRIDGE_VLAN_INFO_UNTAGGED = 1, 2, 4
BRIDGE_VLAN_INFO_RANGE_BEGIN, BRIDGE_VLAN_INFO_RANGE_END, BRIDGE_VLAN_INFO_BRENTRY = 8, 16, 32

IFA_F_SECONDARY, IFA_F_NODAD, IFA_F_OPTIMISTIC, IFA_F_DADFAILED = 0x01, 0x02, 0x04, 0x08
IFA_F_HOMEADDRESS, IFA_F_DEPRECATED, IFA_F_TENTATIVE, IFA_F_PERMANENT = 0x10, 0x20, 0x40, 0x80
IFA_F_MANAGETEMPADDR, IFA_F_NOPREFIXROUTE, IFA_F_MCAUTOJOIN = 0x100, 0x200, 0x400

RT_SCOPE_UNIVERSE, RT_SCOPE_SITE, RT_SCOPE_LINK, RT_SCOPE_HOST, RT_SCOPE_NOWHERE = 0, 200, 253, 254, 255
RT_TABLE_UNSPEC, RT_TABLE_MAIN, RT_TABLE_LOCAL = 0, 254, 255
RTPROT_UNSPEC, RTPROT_KERNEL, RTPROT_BOOT, RTPROT_STATIC = 0, 2, 3, 4
RTN_TYPES = {"unspec": 0, "unicast": 1, "local": 2, "broadcast": 3, "anycast": 4, "multicast": 5,
             "blackhole": 6, "unreachable": 7, "prohibit": 8, "throw": 9, "nat": 10}
RTN_UNICAST = 1
RTNH_F_ONLINK = 4
FR_ACT_TO_TBL, FR_ACT_GOTO, FR_ACT_NOP = 1, 2, 3
FR_ACT_BLACKHOLE, FR_ACT_UNREACHABLE, FR_ACT_PROHIBIT = 6, 7, 8
FIB_RULE_INVERT = 0x2
NUD_INCOMPLETE, NUD_REACHABLE, NUD_STALE, NUD_DELAY, NUD_PROBE = 0x01, 0x02, 0x04, 0x08, 0x10
NUD_FAILED, NUD_NOARP, NUD_PERMANENT = 0x20, 0x40, 0x80

TC_H_ROOT, TC_H_INGRESS, TC_H_CLSACT = 0xFFFFFFFF, 0xFFFFFFF1, 0xFFFFFFF1
TC_H_MIN_INGRESS, TC_H_MIN_EGRESS = 0xFFF2, 0xFFF3
TC_U32_TERMINAL = 1
TC_ACT_OK, TC_ACT_PIPE, TC_ACT_STOLEN = 0, 3, 4
TCA_EGRESS_REDIR, TCA_EGRESS_MIRROR, TCA_INGRESS_REDIR, TCA_INGRESS_MIRROR = 1, 2, 3, 4

# ---- headers
IFINFOMSG = Struct("ifinfomsg", "=BxHiII", ("family", "type", "index", "flags", "change"))
IFADDRMSG = Struct("ifaddrmsg", "=BBBBI", ("family", "prefixlen", "flags", "scope", "index"))
RTMSG = Struct("rtmsg", "=BBBBBBBBI", ("family", "dst_len", "src_len", "tos", "table",
                                       "protocol", "scope", "type", "flags"))
FIBRULEHDR = Struct("fib_rule_hdr", "=BBBBBBBBI", ("family", "dst_len", "src_len", "tos", "table",
                                                   "res1", "res2", "action", "flags"))
NDMSG = Struct("ndmsg", "=BxxxiHBB", ("family", "ifindex", "state", "flags", "type"))
TCMSG = Struct("tcmsg", "=BxxxiIII", ("family", "ifindex", "handle", "parent", "info"))
RTGENMSG = Struct("rtgenmsg", "=Bxxx", ("family",))

# ---- links
RAWNEST = Nested(Attrs("raw", {}))          # nested, contents kept as raw "#<id>" attributes
BRIDGE_VLAN_INFO = Struct("bridge_vlan_info", "=HH", ("flags", "vid"))
VLAN_FLAGS = Struct("ifla_vlan_flags", "=II", ("flags", "mask"))
PORT_RANGE = Struct("ifla_vxlan_port_range", "!HH", ("low", "high"))

VETH_DATA = Attrs("VETH_INFO", {1: ("VETH_INFO_PEER", HdrAttrs(IFINFOMSG, lambda: IFLA))})
BRIDGE_DATA = Attrs("IFLA_BR", {
    1: ("IFLA_BR_FORWARD_DELAY", U32), 2: ("IFLA_BR_HELLO_TIME", U32), 3: ("IFLA_BR_MAX_AGE", U32),
    4: ("IFLA_BR_AGEING_TIME", U32), 5: ("IFLA_BR_STP_STATE", U32), 6: ("IFLA_BR_PRIORITY", U16),
    7: ("IFLA_BR_VLAN_FILTERING", U8), 8: ("IFLA_BR_VLAN_PROTOCOL", BE16),
    9: ("IFLA_BR_GROUP_FWD_MASK", U16), 10: ("IFLA_BR_ROOT_ID", BYTES), 11: ("IFLA_BR_BRIDGE_ID", BYTES),
    12: ("IFLA_BR_ROOT_PORT", U16), 13: ("IFLA_BR_ROOT_PATH_COST", U32),
    14: ("IFLA_BR_TOPOLOGY_CHANGE", U8), 15: ("IFLA_BR_TOPOLOGY_CHANGE_DETECTED", U8),
    16: ("IFLA_BR_HELLO_TIMER", U64), 17: ("IFLA_BR_TCN_TIMER", U64),
    18: ("IFLA_BR_TOPOLOGY_CHANGE_TIMER", U64), 19: ("IFLA_BR_GC_TIMER", U64),
    20: ("IFLA_BR_GROUP_ADDR", MAC), 21: ("IFLA_BR_FDB_FLUSH", FLAG), 22: ("IFLA_BR_MCAST_ROUTER", U8),
    23: ("IFLA_BR_MCAST_SNOOPING", U8), 24: ("IFLA_BR_MCAST_QUERY_USE_IFADDR", U8),
    25: ("IFLA_BR_MCAST_QUERIER", U8), 26: ("IFLA_BR_MCAST_HASH_ELASTICITY", U32),
    27: ("IFLA_BR_MCAST_HASH_MAX", U32), 28: ("IFLA_BR_MCAST_LAST_MEMBER_CNT", U32),
    29: ("IFLA_BR_MCAST_STARTUP_QUERY_CNT", U32), 30: ("IFLA_BR_MCAST_LAST_MEMBER_INTVL", U64),
    31: ("IFLA_BR_MCAST_MEMBERSHIP_INTVL", U64), 32: ("IFLA_BR_MCAST_QUERIER_INTVL", U64),
    33: ("IFLA_BR_MCAST_QUERY_INTVL", U64), 34: ("IFLA_BR_MCAST_QUERY_RESPONSE_INTVL", U64),
    35: ("IFLA_BR_MCAST_STARTUP_QUERY_INTVL", U64), 36: ("IFLA_BR_NF_CALL_IPTABLES", U8),
    37: ("IFLA_BR_NF_CALL_IP6TABLES", U8), 38: ("IFLA_BR_NF_CALL_ARPTABLES", U8),
    39: ("IFLA_BR_VLAN_DEFAULT_PVID", U16), 40: ("IFLA_BR_PAD", BYTES),
    41: ("IFLA_BR_VLAN_STATS_ENABLED", U8), 42: ("IFLA_BR_MCAST_STATS_ENABLED", U8),
    43: ("IFLA_BR_MCAST_IGMP_VERSION", U8), 44: ("IFLA_BR_MCAST_MLD_VERSION", U8),
    45: ("IFLA_BR_VLAN_STATS_PER_PORT", U8), 46: ("IFLA_BR_MULTI_BOOLOPT", BYTES),
    47: ("IFLA_BR_MCAST_QUERIER_STATE", BYTES), 48: ("IFLA_BR_FDB_N_LEARNED", U32),
    49: ("IFLA_BR_FDB_MAX_LEARNED", U32)})
BRPORT = Attrs("IFLA_BRPORT", {
    1: ("IFLA_BRPORT_STATE", U8), 2: ("IFLA_BRPORT_PRIORITY", U16), 3: ("IFLA_BRPORT_COST", U32),
    4: ("IFLA_BRPORT_MODE", U8), 5: ("IFLA_BRPORT_GUARD", U8), 6: ("IFLA_BRPORT_PROTECT", U8),
    7: ("IFLA_BRPORT_FAST_LEAVE", U8), 8: ("IFLA_BRPORT_LEARNING", U8),
    9: ("IFLA_BRPORT_UNICAST_FLOOD", U8), 10: ("IFLA_BRPORT_PROXYARP", U8),
    11: ("IFLA_BRPORT_LEARNING_SYNC", U8), 12: ("IFLA_BRPORT_PROXYARP_WIFI", U8),
    13: ("IFLA_BRPORT_ROOT_ID", BYTES), 14: ("IFLA_BRPORT_BRIDGE_ID", BYTES),
    15: ("IFLA_BRPORT_DESIGNATED_PORT", U16), 16: ("IFLA_BRPORT_DESIGNATED_COST", U16),
    17: ("IFLA_BRPORT_ID", U16), 18: ("IFLA_BRPORT_NO", U16),
    19: ("IFLA_BRPORT_TOPOLOGY_CHANGE_ACK", U8), 20: ("IFLA_BRPORT_CONFIG_PENDING", U8),
    21: ("IFLA_BRPORT_MESSAGE_AGE_TIMER", U64), 22: ("IFLA_BRPORT_FORWARD_DELAY_TIMER", U64),
    23: ("IFLA_BRPORT_HOLD_TIMER", U64), 24: ("IFLA_BRPORT_FLUSH", FLAG),
    25: ("IFLA_BRPORT_MULTICAST_ROUTER", U8), 26: ("IFLA_BRPORT_PAD", BYTES),
    27: ("IFLA_BRPORT_MCAST_FLOOD", U8), 28: ("IFLA_BRPORT_MCAST_TO_UCAST", U8),
    29: ("IFLA_BRPORT_VLAN_TUNNEL", U8), 30: ("IFLA_BRPORT_BCAST_FLOOD", U8),
    31: ("IFLA_BRPORT_GROUP_FWD_MASK", U16), 32: ("IFLA_BRPORT_NEIGH_SUPPRESS", U8),
    33: ("IFLA_BRPORT_ISOLATED", U8), 34: ("IFLA_BRPORT_BACKUP_PORT", U32),
    35: ("IFLA_BRPORT_MRP_RING_OPEN", U8), 36: ("IFLA_BRPORT_MRP_IN_OPEN", U8),
    37: ("IFLA_BRPORT_MCAST_EHT_HOSTS_LIMIT", U32), 38: ("IFLA_BRPORT_MCAST_EHT_HOSTS_CNT", U32),
    39: ("IFLA_BRPORT_LOCKED", U8), 40: ("IFLA_BRPORT_MAB", U8),
    41: ("IFLA_BRPORT_MCAST_N_GROUPS", U32), 42: ("IFLA_BRPORT_MCAST_MAX_GROUPS", U32),
    43: ("IFLA_BRPORT_NEIGH_VLAN_SUPPRESS", U8), 44: ("IFLA_BRPORT_BACKUP_NHID", U32)})
MACVLAN_DATA = Attrs("IFLA_MACVLAN", {
    1: ("IFLA_MACVLAN_MODE", U32), 2: ("IFLA_MACVLAN_FLAGS", U16), 3: ("IFLA_MACVLAN_MACADDR_MODE", U32),
    4: ("IFLA_MACVLAN_MACADDR", MAC), 5: ("IFLA_MACVLAN_MACADDR_DATA", BYTES),
    6: ("IFLA_MACVLAN_MACADDR_COUNT", U32), 7: ("IFLA_MACVLAN_BC_QUEUE_LEN", U32),
    8: ("IFLA_MACVLAN_BC_QUEUE_LEN_USED", U32), 9: ("IFLA_MACVLAN_BC_CUTOFF", S32)})
IPVLAN_DATA = Attrs("IFLA_IPVLAN", {1: ("IFLA_IPVLAN_MODE", U16), 2: ("IFLA_IPVLAN_FLAGS", U16)})
VLAN_DATA = Attrs("IFLA_VLAN", {
    1: ("IFLA_VLAN_ID", U16), 2: ("IFLA_VLAN_FLAGS", VLAN_FLAGS), 3: ("IFLA_VLAN_EGRESS_QOS", BYTES),
    4: ("IFLA_VLAN_INGRESS_QOS", BYTES), 5: ("IFLA_VLAN_PROTOCOL", BE16)})
VRF_DATA = Attrs("IFLA_VRF", {1: ("IFLA_VRF_TABLE", U32)})
VXLAN_DATA = Attrs("IFLA_VXLAN", {
    1: ("IFLA_VXLAN_ID", U32), 2: ("IFLA_VXLAN_GROUP", IP), 3: ("IFLA_VXLAN_LINK", U32),
    4: ("IFLA_VXLAN_LOCAL", IP), 5: ("IFLA_VXLAN_TTL", U8), 6: ("IFLA_VXLAN_TOS", U8),
    7: ("IFLA_VXLAN_LEARNING", U8), 8: ("IFLA_VXLAN_AGEING", U32), 9: ("IFLA_VXLAN_LIMIT", U32),
    10: ("IFLA_VXLAN_PORT_RANGE", PORT_RANGE), 11: ("IFLA_VXLAN_PROXY", U8), 12: ("IFLA_VXLAN_RSC", U8),
    13: ("IFLA_VXLAN_L2MISS", U8), 14: ("IFLA_VXLAN_L3MISS", U8), 15: ("IFLA_VXLAN_PORT", BE16),
    16: ("IFLA_VXLAN_GROUP6", IP), 17: ("IFLA_VXLAN_LOCAL6", IP), 18: ("IFLA_VXLAN_UDP_CSUM", U8),
    19: ("IFLA_VXLAN_UDP_ZERO_CSUM6_TX", U8), 20: ("IFLA_VXLAN_UDP_ZERO_CSUM6_RX", U8),
    21: ("IFLA_VXLAN_REMCSUM_TX", U8), 22: ("IFLA_VXLAN_REMCSUM_RX", U8), 23: ("IFLA_VXLAN_GBP", FLAG),
    24: ("IFLA_VXLAN_REMCSUM_NOPARTIAL", FLAG), 25: ("IFLA_VXLAN_COLLECT_METADATA", U8),
    26: ("IFLA_VXLAN_LABEL", BE32), 27: ("IFLA_VXLAN_GPE", FLAG), 28: ("IFLA_VXLAN_TTL_INHERIT", U8),
    29: ("IFLA_VXLAN_DF", U8), 30: ("IFLA_VXLAN_VNIFILTER", U8), 31: ("IFLA_VXLAN_LOCALBYPASS", U8)})
TUN_DATA = Attrs("IFLA_TUN", {
    1: ("IFLA_TUN_OWNER", U32), 2: ("IFLA_TUN_GROUP", U32), 3: ("IFLA_TUN_TYPE", U8),
    4: ("IFLA_TUN_PI", U8), 5: ("IFLA_TUN_VNET_HDR", U8), 6: ("IFLA_TUN_PERSIST", U8),
    7: ("IFLA_TUN_MULTI_QUEUE", U8), 8: ("IFLA_TUN_NUM_QUEUES", U32),
    9: ("IFLA_TUN_NUM_DISABLED_QUEUES", U32)})
INFO_DATA = {"veth": VETH_DATA, "bridge": BRIDGE_DATA, "macvlan": MACVLAN_DATA,
             "macvtap": MACVLAN_DATA, "ipvlan": IPVLAN_DATA, "ipvtap": IPVLAN_DATA,
             "vlan": VLAN_DATA, "vrf": VRF_DATA, "vxlan": VXLAN_DATA, "tun": TUN_DATA}
LINKINFO = Attrs("IFLA_INFO", {
    1: ("IFLA_INFO_KIND", STR),
    2: ("IFLA_INFO_DATA", Switch("IFLA_INFO_KIND", {k: Nested(v) for k, v in INFO_DATA.items()})),
    3: ("IFLA_INFO_XSTATS", BYTES), 4: ("IFLA_INFO_SLAVE_KIND", STR),
    5: ("IFLA_INFO_SLAVE_DATA", Switch("IFLA_INFO_SLAVE_KIND", {"bridge": Nested(BRPORT)}))})

INET6_AF = Attrs("IFLA_INET6", {
    1: ("IFLA_INET6_FLAGS", U32), 2: ("IFLA_INET6_CONF", BYTES), 3: ("IFLA_INET6_STATS", BYTES),
    4: ("IFLA_INET6_MCAST", BYTES), 5: ("IFLA_INET6_CACHEINFO", BYTES),
    6: ("IFLA_INET6_ICMP6STATS", BYTES), 7: ("IFLA_INET6_TOKEN", BYTES),  # raw: decoding it would import ipaddress on every link read
    8: ("IFLA_INET6_ADDR_GEN_MODE", U8), 9: ("IFLA_INET6_RA_MTU", U32)})
AF_SPEC = Attrs("IFLA_AF_SPEC", {
    AF_INET: ("AF_INET", Nested(Attrs("IFLA_INET", {1: ("IFLA_INET_CONF", BYTES)}))),
    AF_INET6: ("AF_INET6", Nested(INET6_AF))})
BRIDGE_AF_SPEC = Attrs("IFLA_BRIDGE", {
    0: ("IFLA_BRIDGE_FLAGS", U16), 1: ("IFLA_BRIDGE_MODE", U16),
    2: ("IFLA_BRIDGE_VLAN_INFO", BRIDGE_VLAN_INFO), 3: ("IFLA_BRIDGE_VLAN_TUNNEL_INFO", BYTES),
    4: ("IFLA_BRIDGE_MRP", BYTES), 5: ("IFLA_BRIDGE_CFM", BYTES), 6: ("IFLA_BRIDGE_MST", BYTES)})

IFLA = Attrs("IFLA", {
    1: ("IFLA_ADDRESS", MAC), 2: ("IFLA_BROADCAST", MAC), 3: ("IFLA_IFNAME", STR), 4: ("IFLA_MTU", U32),
    5: ("IFLA_LINK", U32), 6: ("IFLA_QDISC", STR), 7: ("IFLA_STATS", BYTES), 8: ("IFLA_COST", U32),
    9: ("IFLA_PRIORITY", U32), 10: ("IFLA_MASTER", U32), 11: ("IFLA_WIRELESS", BYTES),
    12: ("IFLA_PROTINFO", Switch("hdr.family", {AF_BRIDGE: Nested(BRPORT)})), 13: ("IFLA_TXQLEN", U32),
    14: ("IFLA_MAP", BYTES), 15: ("IFLA_WEIGHT", U32), 16: ("IFLA_OPERSTATE", U8),
    17: ("IFLA_LINKMODE", U8), 18: ("IFLA_LINKINFO", Nested(LINKINFO)), 19: ("IFLA_NET_NS_PID", U32),
    20: ("IFLA_IFALIAS", STR), 21: ("IFLA_NUM_VF", U32), 22: ("IFLA_VFINFO_LIST", BYTES),
    23: ("IFLA_STATS64", BYTES), 24: ("IFLA_VF_PORTS", BYTES), 25: ("IFLA_PORT_SELF", BYTES),
    26: ("IFLA_AF_SPEC", Switch("hdr.family", {AF_BRIDGE: Nested(BRIDGE_AF_SPEC)}, Nested(AF_SPEC))),
    27: ("IFLA_GROUP", U32), 28: ("IFLA_NET_NS_FD", U32), 29: ("IFLA_EXT_MASK", U32),
    30: ("IFLA_PROMISCUITY", U32), 31: ("IFLA_NUM_TX_QUEUES", U32), 32: ("IFLA_NUM_RX_QUEUES", U32),
    33: ("IFLA_CARRIER", U8), 34: ("IFLA_PHYS_PORT_ID", BYTES), 35: ("IFLA_CARRIER_CHANGES", U32),
    36: ("IFLA_PHYS_SWITCH_ID", BYTES), 37: ("IFLA_LINK_NETNSID", S32),
    38: ("IFLA_PHYS_PORT_NAME", STR), 39: ("IFLA_PROTO_DOWN", U8), 40: ("IFLA_GSO_MAX_SEGS", U32),
    41: ("IFLA_GSO_MAX_SIZE", U32), 42: ("IFLA_PAD", BYTES), 43: ("IFLA_XDP", RAWNEST),
    44: ("IFLA_EVENT", U32), 45: ("IFLA_NEW_NETNSID", S32), 46: ("IFLA_TARGET_NETNSID", S32),
    47: ("IFLA_CARRIER_UP_COUNT", U32), 48: ("IFLA_CARRIER_DOWN_COUNT", U32),
    49: ("IFLA_NEW_IFINDEX", S32), 50: ("IFLA_MIN_MTU", U32), 51: ("IFLA_MAX_MTU", U32),
    52: ("IFLA_PROP_LIST", Nested(lambda: PROP_LIST)), 53: ("IFLA_ALT_IFNAME", STR),
    54: ("IFLA_PERM_ADDRESS", MAC), 55: ("IFLA_PROTO_DOWN_REASON", RAWNEST),
    56: ("IFLA_PARENT_DEV_NAME", STR), 57: ("IFLA_PARENT_DEV_BUS_NAME", STR),
    58: ("IFLA_GRO_MAX_SIZE", U32), 59: ("IFLA_TSO_MAX_SIZE", U32), 60: ("IFLA_TSO_MAX_SEGS", U32),
    61: ("IFLA_ALLMULTI", U32), 62: ("IFLA_DEVLINK_PORT", RAWNEST), 63: ("IFLA_GSO_IPV4_MAX_SIZE", U32),
    64: ("IFLA_GRO_IPV4_MAX_SIZE", U32)})
PROP_LIST = Attrs("IFLA_PROP", {53: ("IFLA_ALT_IFNAME", STR)})

# ---- addresses, routes, rules, neighbours
IFA_CACHEINFO = Struct("ifa_cacheinfo", "=IIII", ("prefered", "valid", "cstamp", "tstamp"))
IFA = Attrs("IFA", {
    1: ("IFA_ADDRESS", IP), 2: ("IFA_LOCAL", IP), 3: ("IFA_LABEL", STR), 4: ("IFA_BROADCAST", IP),
    5: ("IFA_ANYCAST", IP), 6: ("IFA_CACHEINFO", IFA_CACHEINFO), 7: ("IFA_MULTICAST", IP),
    8: ("IFA_FLAGS", U32), 9: ("IFA_RT_PRIORITY", U32), 10: ("IFA_TARGET_NETNSID", S32),
    11: ("IFA_PROTO", U8)})
RTAX = Attrs("RTAX", {
    1: ("RTAX_LOCK", U32), 2: ("RTAX_MTU", U32), 3: ("RTAX_WINDOW", U32), 4: ("RTAX_RTT", U32),
    5: ("RTAX_RTTVAR", U32), 6: ("RTAX_SSTHRESH", U32), 7: ("RTAX_CWND", U32), 8: ("RTAX_ADVMSS", U32),
    9: ("RTAX_REORDERING", U32), 10: ("RTAX_HOPLIMIT", U32), 11: ("RTAX_INITCWND", U32),
    12: ("RTAX_FEATURES", U32), 13: ("RTAX_RTO_MIN", U32), 14: ("RTAX_INITRWND", U32),
    15: ("RTAX_QUICKACK", U32), 16: ("RTAX_CC_ALGO", STR), 17: ("RTAX_FASTOPEN_NO_COOKIE", U32)})
RTA = Attrs("RTA", {
    1: ("RTA_DST", IP), 2: ("RTA_SRC", IP), 3: ("RTA_IIF", U32), 4: ("RTA_OIF", U32),
    5: ("RTA_GATEWAY", IP), 6: ("RTA_PRIORITY", U32), 7: ("RTA_PREFSRC", IP),
    8: ("RTA_METRICS", Nested(RTAX)), 9: ("RTA_MULTIPATH", BYTES), 11: ("RTA_FLOW", U32),
    12: ("RTA_CACHEINFO", BYTES), 15: ("RTA_TABLE", U32), 16: ("RTA_MARK", U32),
    17: ("RTA_MFC_STATS", BYTES), 18: ("RTA_VIA", BYTES), 19: ("RTA_NEWDST", BYTES),
    20: ("RTA_PREF", U8), 21: ("RTA_ENCAP_TYPE", U16), 22: ("RTA_ENCAP", BYTES),
    23: ("RTA_EXPIRES", U32), 24: ("RTA_PAD", BYTES), 25: ("RTA_UID", U32),
    26: ("RTA_TTL_PROPAGATE", U8), 27: ("RTA_IP_PROTO", U8), 28: ("RTA_SPORT", BE16),
    29: ("RTA_DPORT", BE16), 30: ("RTA_NH_ID", U32), 31: ("RTA_FLOWLABEL", BE32)})
FIB_RULE_PORT_RANGE = Struct("fib_rule_port_range", "=HH", ("start", "end"))
FRA = Attrs("FRA", {
    1: ("FRA_DST", IP), 2: ("FRA_SRC", IP), 3: ("FRA_IIFNAME", STR), 4: ("FRA_GOTO", U32),
    6: ("FRA_PRIORITY", U32), 10: ("FRA_FWMARK", U32), 11: ("FRA_FLOW", U32), 12: ("FRA_TUN_ID", BYTES),
    13: ("FRA_SUPPRESS_IFGROUP", U32), 14: ("FRA_SUPPRESS_PREFIXLEN", U32), 15: ("FRA_TABLE", U32),
    16: ("FRA_FWMASK", U32), 17: ("FRA_OIFNAME", STR), 18: ("FRA_PAD", BYTES), 19: ("FRA_L3MDEV", U8),
    20: ("FRA_UID_RANGE", Struct("fib_rule_uid_range", "=II", ("start", "end"))),
    21: ("FRA_PROTOCOL", U8), 22: ("FRA_IP_PROTO", U8), 23: ("FRA_SPORT_RANGE", FIB_RULE_PORT_RANGE),
    24: ("FRA_DPORT_RANGE", FIB_RULE_PORT_RANGE), 25: ("FRA_DSCP", U8)})
NDA = Attrs("NDA", {
    1: ("NDA_DST", IP), 2: ("NDA_LLADDR", MAC), 3: ("NDA_CACHEINFO", BYTES), 4: ("NDA_PROBES", U32),
    5: ("NDA_VLAN", U16), 6: ("NDA_PORT", BE16), 7: ("NDA_VNI", U32), 8: ("NDA_IFINDEX", U32),
    9: ("NDA_MASTER", U32), 10: ("NDA_LINK_NETNSID", S32), 11: ("NDA_SRC_VNI", U32),
    12: ("NDA_PROTOCOL", U8), 13: ("NDA_NH_ID", U32), 14: ("NDA_FDB_EXT_ATTRS", BYTES),
    15: ("NDA_FLAGS_EXT", U32)})
NETNSA = Attrs("NETNSA", {1: ("NETNSA_NSID", S32), 2: ("NETNSA_PID", U32), 3: ("NETNSA_FD", U32),
                          4: ("NETNSA_TARGET_NSID", S32), 5: ("NETNSA_CURRENT_NSID", S32)})

# ---- traffic control
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

MESSAGES = {}
for _types, _schema in (((RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK), (IFINFOMSG, IFLA)),
                        ((RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR), (IFADDRMSG, IFA)),
                        ((RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE), (RTMSG, RTA)),
                        ((RTM_NEWNEIGH, RTM_DELNEIGH, RTM_GETNEIGH), (NDMSG, NDA)),
                        ((RTM_NEWRULE, RTM_DELRULE, RTM_GETRULE), (FIBRULEHDR, FRA)),
                        ((RTM_NEWQDISC, RTM_DELQDISC, RTM_GETQDISC, RTM_NEWTCLASS, RTM_DELTCLASS,
                          RTM_GETTCLASS, RTM_NEWTFILTER, RTM_DELTFILTER, RTM_GETTFILTER), (TCMSG, TCA)),
                        ((RTM_NEWNSID, RTM_DELNSID, RTM_GETNSID), (RTGENMSG, NETNSA))):
    for _t in _types:
        MESSAGES[_t] = _schema
del _types, _schema, _t
