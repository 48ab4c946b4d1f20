"""Gratuitous ARP (AF_PACKET) and unsolicited neighbour advertisement (ICMPv6), bound to a link.

The caller must already be in the link's network namespace (Rtnl.send_garp enters it).
"""
from __future__ import annotations

import _socket
import struct

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
ARPHRD_ETHER, ARPOP_REQUEST = 1, 1
ND_NEIGHBOR_ADVERT = 136
ND_NA_FLAG_OVERRIDE = 0x20000000
ND_OPT_TARGET_LL_ADDR = 2
HOP_LIMIT_ND = 255       # RFC 4861: neighbour discovery packets carry hop limit 255
ALL_NODES = "ff02::1"


def arp_packet(mac: bytes, ip4: bytes) -> bytes:
    """Ethernet broadcast frame carrying an ARP request for our own address (sender == target)."""
    eth = b"\xff" * 6 + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", ARPHRD_ETHER, ETH_P_IP, 6, 4, ARPOP_REQUEST) + mac + ip4 + b"\0" * 6 + ip4
    return eth + arp


def na_packet(mac: bytes, ip6: bytes) -> bytes:
    """ICMPv6 neighbour advertisement (override flag) with a target link-layer address option.

    The kernel fills in the checksum for raw ICMPv6 sockets.
    """
    return (struct.pack("!BBHI", ND_NEIGHBOR_ADVERT, 0, 0, ND_NA_FLAG_OVERRIDE) + ip6
            + struct.pack("!BB", ND_OPT_TARGET_LL_ADDR, 1) + mac)  # option length in units of 8 bytes


def announce(ifindex: int, mac: str, ip, count: int = 1) -> None:
    hw = bytes.fromhex(mac.replace(":", ""))
    if ip.version == 4:
        s = _socket.socket(_socket.AF_PACKET, _socket.SOCK_RAW, 0)
        try:
            s.bind(_packet_addr(ifindex))
            pkt = arp_packet(hw, ip.packed)
            for _ in range(count):
                s.send(pkt)
        finally:
            s.close()
        return
    s = _socket.socket(_socket.AF_INET6, _socket.SOCK_RAW, _socket.IPPROTO_ICMPV6)
    try:
        s.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_MULTICAST_IF, ifindex)
        s.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_MULTICAST_HOPS, HOP_LIMIT_ND)
        try:
            s.bind((str(ip), 0, 0, ifindex))
        except OSError:             # tentative address: let the kernel pick the source
            pass
        pkt = na_packet(hw, ip.packed)
        for _ in range(count):
            s.sendto(pkt, (ALL_NODES, 0, 0, ifindex))
    finally:
        s.close()


def _packet_addr(ifindex: int):
    """AF_PACKET bind address: Python wants (ifname, proto); resolve the name from the index."""
    return (_socket.if_indextoname(ifindex), ETH_P_ARP)
