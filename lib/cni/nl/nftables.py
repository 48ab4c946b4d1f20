"""nf_tables over NETLINK_NETFILTER, only what spares us an `nft` exec: does a table exist?

DEL paths clean up nftables state "just in case" (a config may have switched backends);
asking the kernel directly costs well under a millisecond, an `nft list` ~6 ms.
"""
from __future__ import annotations

from .rtnl_defs import NETLINK_NETFILTER
from .schema import BE32, BE64, BYTES, STR, Attrs, Struct
from .socket import NetlinkError, NetlinkSocket

NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_NEWTABLE, NFT_MSG_GETTABLE = 0, 1
GETTABLE = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE
NEWTABLE = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE
FAMILIES = {"inet": 1, "ip": 2, "arp": 3, "netdev": 5, "bridge": 7, "ip6": 10}

NFGENMSG = Struct("nfgenmsg", "=BBH", ("family", "version", "res_id"))
NFTA_TABLE = Attrs("NFTA_TABLE", {1: ("NFTA_TABLE_NAME", STR), 2: ("NFTA_TABLE_FLAGS", BE32),
                                  3: ("NFTA_TABLE_USE", BE32), 4: ("NFTA_TABLE_HANDLE", BE64),
                                  5: ("NFTA_TABLE_PAD", BYTES), 6: ("NFTA_TABLE_USERDATA", BYTES),
                                  7: ("NFTA_TABLE_OWNER", BE32)})
MESSAGES = {GETTABLE: (NFGENMSG, NFTA_TABLE), NEWTABLE: (NFGENMSG, NFTA_TABLE)}


def table_exists(family: str, name: str):
    """True/False for table `family name` in the current netns; None when the kernel can't say."""
    try:
        nl = NetlinkSocket(NETLINK_NETFILTER, MESSAGES)
    except OSError:
        return None
    try:
        nl.request(GETTABLE, {"family": FAMILIES[family]}, [("NFTA_TABLE_NAME", name)])
        return True
    except NetlinkError as exc:
        if exc.errno == 2:  # ENOENT
            return False
        return None
    finally:
        nl.close()
