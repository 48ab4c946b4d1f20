"""The DHCP client's raw link: IPv4/UDP framing, an AF_PACKET socket with a BPF filter, and
the interface flags it needs (ioctl on a socket of the current netns).

The socket is AF_PACKET/SOCK_DGRAM bound to the interface, so it works before the interface
has an address; IPv4 and UDP headers are built and checked here.
"""
from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
import time

# uapi values (linux/if_ether.h, linux/sockios.h, linux/if.h, asm-generic/socket.h); kept here,
# not taken from cni.nl.rtnl_defs, so that the dhcp daemon does not carry the netlink package
ETH_P_IP = 0x0800
SIOCGIFFLAGS, SIOCSIFFLAGS = 0x8913, 0x8914
IFF_UP = 0x1
SO_ATTACH_FILTER = 26

SERVER_PORT, CLIENT_PORT = 67, 68
BROADCAST_MAC = b"\xff" * 6
ANY = ipaddress.IPv4Address(0)
LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


# ---- IPv4/UDP framing --------------------------------------------------------------------

def checksum(data: bytes) -> int:
    """RFC 1071 ones' complement sum."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def build_ip_udp(payload: bytes, src, dst, *, sport: int = CLIENT_PORT,
                 dport: int = SERVER_PORT, ttl: int = 64) -> bytes:
    """IPv4 header + UDP header (both checksums computed) + payload."""
    src = ipaddress.IPv4Address(src).packed
    dst = ipaddress.IPv4Address(dst).packed
    ulen = 8 + len(payload)
    pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_UDP, ulen)
    udp = struct.pack("!HHHH", sport, dport, ulen, 0) + payload
    csum = checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, 0, 0, ttl, socket.IPPROTO_UDP, 0,
                      src, dst)
    hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
    return hdr + udp


def parse_ip_udp(data: bytes, *, dport: int = CLIENT_PORT):
    """Return (src ip, udp payload) of an unfragmented IPv4/UDP datagram to dport, else None.
    Checksums are not verified: veth traffic may carry partial (offloaded) checksums."""
    if len(data) < 28 or data[0] >> 4 != 4 or data[9] != socket.IPPROTO_UDP:
        return None
    ihl = (data[0] & 0x0F) * 4
    total = struct.unpack_from("!H", data, 2)[0]
    if struct.unpack_from("!H", data, 6)[0] & 0x3FFF or ihl < 20 or total > len(data):
        return None  # fragment, bad header length or truncated
    _sp, dp, ulen = struct.unpack_from("!HHH", data, ihl)
    if dp != dport or ulen < 8 or ihl + ulen > total:
        return None
    return ipaddress.IPv4Address(data[12:16]), data[ihl + 8:ihl + ulen]


# classic BPF: IPv4 UDP, not a fragment, destination port 68 (offsets from the IP header)
_BPF = [(0x30, 0, 0, 9), (0x15, 0, 6, 17), (0x28, 0, 0, 6), (0x45, 4, 0, 0x1FFF),
        (0xB1, 0, 0, 0), (0x48, 0, 0, 2), (0x15, 0, 1, CLIENT_PORT),
        (0x06, 0, 0, 0xFFFF), (0x06, 0, 0, 0)]


class PacketTransport:
    """AF_PACKET datagram socket on one interface of the current netns."""

    def __init__(self, ifname: str):
        self.ifname = ifname
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
        try:
            self._attach_filter()
            self.sock.bind((ifname, ETH_P_IP))
            self.mac = self.sock.getsockname()[4][:6]
        except OSError:
            self.sock.close()
            raise

    def _attach_filter(self) -> None:
        import ctypes  # lazy: python3-minimal lacks ctypes; only the daemon's socket needs it
        prog = b"".join(struct.pack("HBBI", *ins) for ins in _BPF)
        buf = ctypes.create_string_buffer(prog, len(prog))
        fprog = struct.pack("HL", len(_BPF), ctypes.addressof(buf))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        # drain anything queued before the filter was attached
        self.sock.setblocking(False)
        try:
            while True:
                self.sock.recv(65535)
        except BlockingIOError:
            pass
        self.sock.setblocking(True)

    def send(self, payload: bytes, *, src=ANY, dst=LIMITED_BROADCAST,
             dst_mac: bytes = BROADCAST_MAC) -> None:
        self.sock.sendto(build_ip_udp(payload, src, dst), (self.ifname, ETH_P_IP, 0, 0, dst_mac))

    def recv(self, timeout: float):
        """(udp payload, source MAC) of the next DHCP-client datagram, or None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                return None
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            parsed = parse_ip_udp(data)
            if parsed is not None:
                return parsed[1], addr[4][:6]

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---- interface helpers (ioctl on a socket of the current netns) --------------------------

def _ifreq_flags(ifname: str, flags: int | None = None) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH22x", ifname.encode(), 0)
        cur = struct.unpack_from("16sH", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]
        if flags is not None:
            fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH22x", ifname.encode(), flags))
        return cur


def link_exists(ifname: str) -> bool:
    try:
        socket.if_nametoindex(ifname)
        return True
    except OSError:
        return False


def set_link_up(ifname: str, up: bool = True) -> None:
    cur = _ifreq_flags(ifname)
    want = cur | IFF_UP if up else cur & ~IFF_UP
    if want != cur:
        _ifreq_flags(ifname, want)
