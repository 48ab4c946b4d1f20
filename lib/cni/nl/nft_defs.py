"""nf_tables uapi constants and attribute tables (NETLINK_NETFILTER, NFNL_SUBSYS_NFTABLES).

Numbers and names follow linux/netfilter/nf_tables.h and nfnetlink.h verbatim. Expression
payloads (NFTA_EXPR_DATA) are picked by the expression's name, as the kernel does.
"""
from __future__ import annotations

from .schema import BE32, BE64, BYTES, STR, U8, Attrs, Nested, Num, Struct, Switch

NFNL_SUBSYS_NFTABLES = 10
NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END = 0x10, 0x11

(NFT_MSG_NEWTABLE, NFT_MSG_GETTABLE, NFT_MSG_DELTABLE, NFT_MSG_NEWCHAIN, NFT_MSG_GETCHAIN,
 NFT_MSG_DELCHAIN, NFT_MSG_NEWRULE, NFT_MSG_GETRULE, NFT_MSG_DELRULE, NFT_MSG_NEWSET,
 NFT_MSG_GETSET, NFT_MSG_DELSET, NFT_MSG_NEWSETELEM, NFT_MSG_GETSETELEM, NFT_MSG_DELSETELEM,
 NFT_MSG_NEWGEN, NFT_MSG_GETGEN) = range(17)

NFPROTO_INET, NFPROTO_IPV4, NFPROTO_ARP, NFPROTO_NETDEV = 1, 2, 3, 5
NFPROTO_BRIDGE, NFPROTO_IPV6 = 7, 10
FAMILIES = {"inet": NFPROTO_INET, "ip": NFPROTO_IPV4, "arp": NFPROTO_ARP,
            "netdev": NFPROTO_NETDEV, "bridge": NFPROTO_BRIDGE, "ip6": NFPROTO_IPV6}
FAMILY_NAMES = {v: k for k, v in FAMILIES.items()}

NF_INET_PRE_ROUTING, NF_INET_LOCAL_IN, NF_INET_FORWARD = 0, 1, 2
NF_INET_LOCAL_OUT, NF_INET_POST_ROUTING = 3, 4
HOOKS = {"prerouting": 0, "input": 1, "forward": 2, "output": 3, "postrouting": 4}
NF_DROP, NF_ACCEPT = 0, 1
NFT_CONTINUE, NFT_BREAK, NFT_JUMP, NFT_GOTO, NFT_RETURN = -1, -2, -3, -4, -5
NFT_REG_VERDICT, NFT_REG_1, NFT_REG_2 = 0, 1, 2

NFT_CMP_EQ, NFT_CMP_NEQ, NFT_CMP_LT, NFT_CMP_LTE, NFT_CMP_GT, NFT_CMP_GTE = range(6)
NFT_PAYLOAD_LL_HEADER, NFT_PAYLOAD_NETWORK_HEADER, NFT_PAYLOAD_TRANSPORT_HEADER = 0, 1, 2
NFT_META_MARK, NFT_META_IIF, NFT_META_OIF, NFT_META_IIFNAME, NFT_META_OIFNAME = 3, 4, 5, 6, 7
NFT_META_NFPROTO, NFT_META_L4PROTO = 15, 16
NFT_CT_STATE, NFT_CT_DIRECTION, NFT_CT_STATUS, NFT_CT_MARK = 0, 1, 2, 3
NFT_NAT_SNAT, NFT_NAT_DNAT = 0, 1
NF_NAT_RANGE_MAP_IPS, NF_NAT_RANGE_PROTO_SPECIFIED = 1, 2
NFT_FIB_RESULT_OIF, NFT_FIB_RESULT_OIFNAME, NFT_FIB_RESULT_ADDRTYPE = 1, 2, 3
NFTA_FIB_F_SADDR, NFTA_FIB_F_DADDR, NFTA_FIB_F_MARK, NFTA_FIB_F_IIF = 1, 2, 4, 8
NFT_SET_ANONYMOUS, NFT_SET_CONSTANT, NFT_SET_INTERVAL, NFT_SET_MAP = 1, 2, 4, 8
NFT_LOOKUP_F_INV = 1
NFTNL_UDATA_COMMENT = 0          # rule, chain and table comments alike
NFT_USERDATA_MAXLEN = 256

BES32 = Num("BES32", "!i")      # chain priority, verdict code: signed, network order

NFGENMSG = Struct("nfgenmsg", "!BBH", ("family", "version", "res_id"))

NFTA_TABLE = Attrs("NFTA_TABLE", {
    1: ("NFTA_TABLE_NAME", STR), 2: ("NFTA_TABLE_FLAGS", BE32), 3: ("NFTA_TABLE_USE", BE32),
    4: ("NFTA_TABLE_HANDLE", BE64), 5: ("NFTA_TABLE_PAD", BYTES),
    6: ("NFTA_TABLE_USERDATA", BYTES), 7: ("NFTA_TABLE_OWNER", BE32)})
NFTA_HOOK = Attrs("NFTA_HOOK", {
    1: ("NFTA_HOOK_HOOKNUM", BE32), 2: ("NFTA_HOOK_PRIORITY", BES32), 3: ("NFTA_HOOK_DEV", STR),
    4: ("NFTA_HOOK_DEVS", BYTES)})
NFTA_COUNTER = Attrs("NFTA_COUNTER", {
    1: ("NFTA_COUNTER_BYTES", BE64), 2: ("NFTA_COUNTER_PACKETS", BE64),
    3: ("NFTA_COUNTER_PAD", BYTES)})
NFTA_CHAIN = Attrs("NFTA_CHAIN", {
    1: ("NFTA_CHAIN_TABLE", STR), 2: ("NFTA_CHAIN_HANDLE", BE64), 3: ("NFTA_CHAIN_NAME", STR),
    4: ("NFTA_CHAIN_HOOK", Nested(NFTA_HOOK)), 5: ("NFTA_CHAIN_POLICY", BE32),
    6: ("NFTA_CHAIN_USE", BE32), 7: ("NFTA_CHAIN_TYPE", STR),
    8: ("NFTA_CHAIN_COUNTERS", Nested(NFTA_COUNTER)), 9: ("NFTA_CHAIN_PAD", BYTES),
    10: ("NFTA_CHAIN_FLAGS", BE32), 11: ("NFTA_CHAIN_ID", BE32),
    12: ("NFTA_CHAIN_USERDATA", BYTES)})

NFTA_VERDICT = Attrs("NFTA_VERDICT", {
    1: ("NFTA_VERDICT_CODE", BES32), 2: ("NFTA_VERDICT_CHAIN", STR),
    3: ("NFTA_VERDICT_CHAIN_ID", BE32)})
NFTA_DATA = Attrs("NFTA_DATA", {
    1: ("NFTA_DATA_VALUE", BYTES), 2: ("NFTA_DATA_VERDICT", Nested(NFTA_VERDICT))})
DATA = Nested(NFTA_DATA)

_R = BE32   # registers, ops, keys, lengths, offsets and flags are all network-order u32
EXPR_DATA = {
    "immediate": Attrs("NFTA_IMMEDIATE", {1: ("NFTA_IMMEDIATE_DREG", _R),
                                          2: ("NFTA_IMMEDIATE_DATA", DATA)}),
    "cmp": Attrs("NFTA_CMP", {1: ("NFTA_CMP_SREG", _R), 2: ("NFTA_CMP_OP", _R),
                              3: ("NFTA_CMP_DATA", DATA)}),
    "range": Attrs("NFTA_RANGE", {1: ("NFTA_RANGE_SREG", _R), 2: ("NFTA_RANGE_OP", _R),
                                  3: ("NFTA_RANGE_FROM_DATA", DATA),
                                  4: ("NFTA_RANGE_TO_DATA", DATA)}),
    "bitwise": Attrs("NFTA_BITWISE", {1: ("NFTA_BITWISE_SREG", _R), 2: ("NFTA_BITWISE_DREG", _R),
                                      3: ("NFTA_BITWISE_LEN", _R), 4: ("NFTA_BITWISE_MASK", DATA),
                                      5: ("NFTA_BITWISE_XOR", DATA), 6: ("NFTA_BITWISE_OP", _R),
                                      7: ("NFTA_BITWISE_DATA", DATA)}),
    "payload": Attrs("NFTA_PAYLOAD", {1: ("NFTA_PAYLOAD_DREG", _R), 2: ("NFTA_PAYLOAD_BASE", _R),
                                      3: ("NFTA_PAYLOAD_OFFSET", _R), 4: ("NFTA_PAYLOAD_LEN", _R),
                                      5: ("NFTA_PAYLOAD_SREG", _R),
                                      6: ("NFTA_PAYLOAD_CSUM_TYPE", _R),
                                      7: ("NFTA_PAYLOAD_CSUM_OFFSET", _R),
                                      8: ("NFTA_PAYLOAD_CSUM_FLAGS", _R)}),
    "meta": Attrs("NFTA_META", {1: ("NFTA_META_DREG", _R), 2: ("NFTA_META_KEY", _R),
                                3: ("NFTA_META_SREG", _R)}),
    "ct": Attrs("NFTA_CT", {1: ("NFTA_CT_DREG", _R), 2: ("NFTA_CT_KEY", _R),
                            3: ("NFTA_CT_DIRECTION", U8), 4: ("NFTA_CT_SREG", _R)}),
    "counter": NFTA_COUNTER,
    "nat": Attrs("NFTA_NAT", {1: ("NFTA_NAT_TYPE", _R), 2: ("NFTA_NAT_FAMILY", _R),
                              3: ("NFTA_NAT_REG_ADDR_MIN", _R), 4: ("NFTA_NAT_REG_ADDR_MAX", _R),
                              5: ("NFTA_NAT_REG_PROTO_MIN", _R), 6: ("NFTA_NAT_REG_PROTO_MAX", _R),
                              7: ("NFTA_NAT_FLAGS", _R)}),
    "masq": Attrs("NFTA_MASQ", {1: ("NFTA_MASQ_FLAGS", _R), 2: ("NFTA_MASQ_REG_PROTO_MIN", _R),
                                3: ("NFTA_MASQ_REG_PROTO_MAX", _R)}),
    "fib": Attrs("NFTA_FIB", {1: ("NFTA_FIB_DREG", _R), 2: ("NFTA_FIB_RESULT", _R),
                              3: ("NFTA_FIB_FLAGS", _R)}),
    "lookup": Attrs("NFTA_LOOKUP", {1: ("NFTA_LOOKUP_SET", STR), 2: ("NFTA_LOOKUP_SREG", _R),
                                    3: ("NFTA_LOOKUP_DREG", _R), 4: ("NFTA_LOOKUP_SET_ID", _R),
                                    5: ("NFTA_LOOKUP_FLAGS", _R)}),
    # iptables-nft's xtables compatibility expressions (the info blob is the xt struct)
    "match": Attrs("NFTA_MATCH", {1: ("NFTA_MATCH_NAME", STR), 2: ("NFTA_MATCH_REV", _R),
                                  3: ("NFTA_MATCH_INFO", BYTES)}),
    "target": Attrs("NFTA_TARGET", {1: ("NFTA_TARGET_NAME", STR), 2: ("NFTA_TARGET_REV", _R),
                                    3: ("NFTA_TARGET_INFO", BYTES)}),
}
NFTA_EXPR = Attrs("NFTA_EXPR", {
    1: ("NFTA_EXPR_NAME", STR),
    2: ("NFTA_EXPR_DATA", Switch("NFTA_EXPR_NAME",
                                 {k: Nested(v) for k, v in EXPR_DATA.items()}, default=BYTES))})
NFTA_EXPR_LIST = Attrs("NFTA_LIST", {1: ("NFTA_LIST_ELEM", Nested(NFTA_EXPR))})

NFTA_RULE_COMPAT = Attrs("NFTA_RULE_COMPAT", {1: ("NFTA_RULE_COMPAT_PROTO", BE32),
                                              2: ("NFTA_RULE_COMPAT_FLAGS", BE32)})
NFTA_RULE = Attrs("NFTA_RULE", {
    1: ("NFTA_RULE_TABLE", STR), 2: ("NFTA_RULE_CHAIN", STR), 3: ("NFTA_RULE_HANDLE", BE64),
    4: ("NFTA_RULE_EXPRESSIONS", Nested(NFTA_EXPR_LIST)),
    5: ("NFTA_RULE_COMPAT", Nested(NFTA_RULE_COMPAT)), 6: ("NFTA_RULE_POSITION", BE64),
    7: ("NFTA_RULE_USERDATA", BYTES), 8: ("NFTA_RULE_PAD", BYTES), 9: ("NFTA_RULE_ID", BE32),
    10: ("NFTA_RULE_POSITION_ID", BE32), 11: ("NFTA_RULE_CHAIN_ID", BE32)})

NFTA_SET_DESC = Attrs("NFTA_SET_DESC", {1: ("NFTA_SET_DESC_SIZE", BE32),
                                        2: ("NFTA_SET_DESC_CONCAT", BYTES)})
NFTA_SET = Attrs("NFTA_SET", {
    1: ("NFTA_SET_TABLE", STR), 2: ("NFTA_SET_NAME", STR), 3: ("NFTA_SET_FLAGS", BE32),
    4: ("NFTA_SET_KEY_TYPE", BE32), 5: ("NFTA_SET_KEY_LEN", BE32),
    6: ("NFTA_SET_DATA_TYPE", BE32), 7: ("NFTA_SET_DATA_LEN", BE32),
    8: ("NFTA_SET_POLICY", BE32), 9: ("NFTA_SET_DESC", Nested(NFTA_SET_DESC)),
    10: ("NFTA_SET_ID", BE32), 11: ("NFTA_SET_TIMEOUT", BE64), 12: ("NFTA_SET_GC_INTERVAL", BE32),
    13: ("NFTA_SET_USERDATA", BYTES), 14: ("NFTA_SET_PAD", BYTES), 15: ("NFTA_SET_OBJ_TYPE", BE32),
    16: ("NFTA_SET_HANDLE", BE64), 17: ("NFTA_SET_EXPR", BYTES), 18: ("NFTA_SET_EXPRESSIONS", BYTES)})
NFTA_SET_ELEM = Attrs("NFTA_SET_ELEM", {
    1: ("NFTA_SET_ELEM_KEY", DATA), 2: ("NFTA_SET_ELEM_DATA", DATA),
    3: ("NFTA_SET_ELEM_FLAGS", BE32), 4: ("NFTA_SET_ELEM_TIMEOUT", BE64),
    5: ("NFTA_SET_ELEM_EXPIRATION", BE64), 6: ("NFTA_SET_ELEM_USERDATA", BYTES),
    7: ("NFTA_SET_ELEM_EXPR", BYTES), 8: ("NFTA_SET_ELEM_PAD", BYTES),
    9: ("NFTA_SET_ELEM_OBJREF", STR), 10: ("NFTA_SET_ELEM_KEY_END", DATA),
    11: ("NFTA_SET_ELEM_EXPRESSIONS", BYTES)})
NFTA_SET_ELEM_LIST = Attrs("NFTA_SET_ELEM_LIST", {
    1: ("NFTA_SET_ELEM_LIST_TABLE", STR), 2: ("NFTA_SET_ELEM_LIST_SET", STR),
    3: ("NFTA_SET_ELEM_LIST_ELEMENTS",
        Nested(Attrs("NFTA_LIST", {1: ("NFTA_LIST_ELEM", Nested(NFTA_SET_ELEM))}))),
    4: ("NFTA_SET_ELEM_LIST_SET_ID", BE32)})
NFTA_GEN = Attrs("NFTA_GEN", {1: ("NFTA_GEN_ID", BE32), 2: ("NFTA_GEN_PROC_PID", BE32),
                              3: ("NFTA_GEN_PROC_NAME", STR)})


def msg_type(nft_msg: int) -> int:
    """The nlmsg_type of an nf_tables message: subsystem in the high byte."""
    return (NFNL_SUBSYS_NFTABLES << 8) | nft_msg


_BY_KIND = ((NFTA_TABLE, (NFT_MSG_NEWTABLE, NFT_MSG_GETTABLE, NFT_MSG_DELTABLE)),
            (NFTA_CHAIN, (NFT_MSG_NEWCHAIN, NFT_MSG_GETCHAIN, NFT_MSG_DELCHAIN)),
            (NFTA_RULE, (NFT_MSG_NEWRULE, NFT_MSG_GETRULE, NFT_MSG_DELRULE)),
            (NFTA_SET, (NFT_MSG_NEWSET, NFT_MSG_GETSET, NFT_MSG_DELSET)),
            (NFTA_SET_ELEM_LIST, (NFT_MSG_NEWSETELEM, NFT_MSG_GETSETELEM, NFT_MSG_DELSETELEM)),
            (NFTA_GEN, (NFT_MSG_NEWGEN, NFT_MSG_GETGEN)))
MESSAGES = {msg_type(m): (NFGENMSG, table) for table, ms in _BY_KIND for m in ms}
NFNL_BATCH = Attrs("NFNL_BATCH", {1: ("NFNL_BATCH_GENID", BE32)})
MESSAGES[NFNL_MSG_BATCH_BEGIN] = (NFGENMSG, NFNL_BATCH)
MESSAGES[NFNL_MSG_BATCH_END] = (NFGENMSG, None)
