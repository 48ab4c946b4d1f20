"""dhcp: packet codec against captured dnsmasq 2.90 exchanges, client messages, retry and
lease timers on a fake clock, daemon flags/protocol, plugin side."""
from __future__ import annotations

import ipaddress
import os
import random
import socket
import threading

import pytest

from cni.std import json as jsonx
from cni.dhcp import client as C
from cni.dhcp import daemon as D
from cni.dhcp import flags as F
from cni.dhcp import lease as L
from cni.dhcp import packet as P
from cni.dhcp import plugin_side as PS
from cni.dhcp import request as R
from cni.dhcp import server as S
from cni.dhcp import transport as T
from cni.errors import CNIError

IP = ipaddress.IPv4Address
NET = ipaddress.IPv4Network


# ---- option encoders: what a server sends (the daemon only decodes) -----------------------

def encode_static_routes(routes) -> bytes:
    return b"".join(ipaddress.IPv4Address(d).packed + ipaddress.IPv4Address(g).packed
                    for d, g in routes)


def encode_classless_routes(routes) -> bytes:
    out = bytearray()
    for dst, gw in routes:
        net = ipaddress.IPv4Network(dst)
        sig = (net.prefixlen + 7) // 8
        out.append(net.prefixlen)
        out += net.network_address.packed[:sig] + ipaddress.IPv4Address(gw).packed
    return bytes(out)


def encode_domain_search(names) -> bytes:
    """Option 119 without compression."""
    out = bytearray()
    for name in names:
        for label in name.strip(".").split("."):
            if label:
                out.append(len(label))
                out += label.encode("ascii")
        out.append(0)
    return bytes(out)


# Captured on a veth in a test netns (tcpdump): our client <-> dnsmasq 2.90.
# Exchange 1: client sends option 57 (max size 576) and asks for 30 classless routes, so
# dnsmasq overloads the `file` field (option 52 = 1). Exchange 2: renew/rebind with option 121.
DISCOVER = bytes.fromhex(
    "0101060052e6b438000000000000000000000000000000000000000002aabbccdd0100000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000638253633501013d0b006f766c2f6e65742f63303902024037070103"
    "060f777921ff000000000000000000000000000000000000000000000000000000000000"
)
OFFER_OVERLOAD = bytes.fromhex(
    "0201060052e6b43800000000000000000a4d00210a4d00010000000002aabbccdd0100000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000f0c6578616d706c652e7465737406080a4d00350a4d0036"
    "03040a4d0001ff00000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000006382536335010236040a4d00013304000000783a040000003c3b0400"
    "0000690104ffffff001c040a4d00ff21080ac800000a4d000179d2100a640a4d0001100a650a4d0001100a66"
    "0a4d0001100a670a4d0001100a680a4d0001100a690a4d0001100a6a0a4d0001100a6b0a4d0001100a6c0a4d"
    "0001100a6d0a4d0001100a6e0a4d0001100a6f0a4d0001100a700a4d0001100a710a4d0001100a720a4d0001"
    "100a730a4d0001100a740a4d0001100a750a4d0001100a760a4d0001100a770a4d0001100a780a4d0001100a"
    "790a4d0001100a7a0a4d0001100a7b0a4d0001100a7c0a4d0001100a7d0a4d0001100a7e0a4d0001100a7f0a"
    "4d0001100a800a4d0001100a810a4d000177210161076578616d706c650474657374000162c002076578616d"
    "706c65036f726700340101ff"
)
REQUEST = bytes.fromhex(
    "0101060052e6b438000000000000000000000000000000000000000002aabbccdd0100000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000006382536335010332040a4d002136040a4d00013d0b006f766c2f6e65"
    "742f63303902024037070103060f777921ff000000000000000000000000000000000000"
)
ACK_OVERLOAD = bytes.fromhex(
    "0201060052e6b43800000000000000000a4d00210a4d00010000000002aabbccdd0100000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000f0c6578616d706c652e7465737406080a4d00350a4d0036"
    "03040a4d0001ff00000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000006382536335010536040a4d00013304000000783a040000003c3b0400"
    "0000690104ffffff001c040a4d00ff21080ac800000a4d000179d2100a640a4d0001100a650a4d0001100a66"
    "0a4d0001100a670a4d0001100a680a4d0001100a690a4d0001100a6a0a4d0001100a6b0a4d0001100a6c0a4d"
    "0001100a6d0a4d0001100a6e0a4d0001100a6f0a4d0001100a700a4d0001100a710a4d0001100a720a4d0001"
    "100a730a4d0001100a740a4d0001100a750a4d0001100a760a4d0001100a770a4d0001100a780a4d0001100a"
    "790a4d0001100a7a0a4d0001100a7b0a4d0001100a7c0a4d0001100a7d0a4d0001100a7e0a4d0001100a7f0a"
    "4d0001100a800a4d0001100a810a4d000177210161076578616d706c650474657374000162c002076578616d"
    "706c65036f726700340101ff"
)
RELEASE = bytes.fromhex(
    "01010600f2a74de4000000000a4d002100000000000000000000000002aabbccdd0100000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000006382536335010736040a4d00013d0b006f766c2f6e65742f6330ff00"
    "000000000000000000000000000000000000000000000000000000000000000000000000"
)
ACK_STATIC = bytes.fromhex(
    "020106003a09653300000000000000000a4d00220a4d00010000000002aabbccdd0200000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000006382536335010536040a4d00013304000000783a040000003c3b0400"
    "0000690104ffffff001c040a4d00ff21080ac800000a4d000177210161076578616d706c6504746573740001"
    "62c002076578616d706c65036f7267000f0c6578616d706c652e7465737406080a4d00350a4d003603040a4d"
    "0001ff"
)
RENEW = bytes.fromhex(
    "01010600ea129b29000000000a4d0028000000000000000000000000824f7b31954e00000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000638253633501033d0c00636964312f6e65742f633037050103060f79"
    "ff0000000000000000000000000000000000000000000000000000000000000000000000"
)
ACK_CLASSLESS = bytes.fromhex(
    "02010600ea129b29000000000a4d00280a4d00280a4d000100000000824f7b31954e00000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000006382536335010536040a4d00013304000000783a04000000363b0400"
    "0000630104ffffff001c040a4d00ff790c100a140a4d0001000a4d00010f0c6578616d706c652e7465737406"
    "040a4d003503040a4d0001ff"
)
REBIND = bytes.fromhex(
    "010106008e0ce0b3000000000a4d0028000000000000000000000000824f7b31954e00000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000638253633501033d0c00636964312f6e65742f633037050103060f79"
    "ff0000000000000000000000000000000000000000000000000000000000000000000000"
)
RENEW_FRAME = bytes.fromhex(
    "fa0ee7a7d153824f7b31954e08004500014800000000401164e30a4d00280a4d0001004400430134f0fd0101"
    "0600ea129b29000000000a4d0028000000000000000000000000824f7b31954e000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000638253633501033d0c00636964312f6e65742f633037050103060f79ff00"
    "00000000000000000000000000000000000000000000000000000000000000000000"
)

ALL = {"DISCOVER": DISCOVER, "OFFER_OVERLOAD": OFFER_OVERLOAD, "REQUEST": REQUEST,
       "ACK_OVERLOAD": ACK_OVERLOAD, "RELEASE": RELEASE, "ACK_STATIC": ACK_STATIC,
       "RENEW": RENEW, "ACK_CLASSLESS": ACK_CLASSLESS, "REBIND": REBIND}
CID_OVL = b"\x00ovl/net/c0"
MAC1 = bytes.fromhex("02aabbccdd01")


# ---- codec: golden bytes ------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(ALL))
def test_golden_roundtrip(name):
    raw = ALL[name]
    assert P.encode(P.decode(raw)) == raw


def test_discover_fields():
    p = P.decode(DISCOVER)
    assert (p.op, p.htype, p.hlen, p.hops, p.xid, p.secs, p.flags) == (1, 1, 6, 0, 1390851128, 0, 0)
    assert p.ciaddr == p.yiaddr == p.siaddr == p.giaddr == IP(0)
    assert p.mac == MAC1 and p.chaddr == MAC1 + bytes(10)
    assert p.options == [(53, b"\x01"), (61, CID_OVL), (57, b"\x02\x40"),
                         (55, bytes([1, 3, 6, 15, 119, 121, 33]))]
    assert p.message_type == P.DISCOVER and p.trailer == bytes(30) and len(DISCOVER) == 300


def test_request_selecting_fields():
    p = P.decode(REQUEST)
    o = P.merged_options(p)
    assert p.message_type == P.REQUEST and p.ciaddr == IP(0)
    assert o[P.OPT_REQUESTED_IP] == IP("10.77.0.33").packed
    assert o[P.OPT_SERVER_ID] == IP("10.77.0.1").packed
    assert o[P.OPT_CLIENT_ID] == CID_OVL


def test_offer_with_overload_decodes_file_options():
    p = P.decode(OFFER_OVERLOAD)
    assert p.op == P.BOOTREPLY and p.yiaddr == IP("10.77.0.33") and p.siaddr == IP("10.77.0.1")
    main_codes = [c for c, _ in p.options]
    assert (P.OPT_OVERLOAD, b"\x01") in p.options
    assert P.OPT_DOMAIN_NAME not in main_codes and P.OPT_DNS not in main_codes
    o = P.merged_options(p)
    assert P.OPT_OVERLOAD not in o
    assert P.get_str(o, P.OPT_DOMAIN_NAME) == "example.test"
    assert P.get_ips(o, P.OPT_DNS) == [IP("10.77.0.53"), IP("10.77.0.54")]
    assert P.get_ips(o, P.OPT_ROUTER) == [IP("10.77.0.1")]
    assert P.get_u32(o, P.OPT_LEASE_TIME) == 120
    assert (P.get_u32(o, P.OPT_T1), P.get_u32(o, P.OPT_T2)) == (60, 105)
    assert p.file.startswith(b"\x0f\x0cexample.test\x06\x08")


def test_ack_overload_lease_view():
    lease = C.Lease(P.decode(ACK_OVERLOAD), b"\x02" * 6, 1000.0)
    assert lease.interface() == ipaddress.IPv4Interface("10.77.0.33/24")
    assert lease.gateway() == IP("10.77.0.1") and lease.server_id == IP("10.77.0.1")
    routes = lease.routes()
    # option 121 present: only the classless routes, no option 33 and no default route
    assert len(routes) == 30
    assert routes[0] == (NET("10.100.0.0/16"), IP("10.77.0.1"), None)
    assert routes[-1] == (NET("10.129.0.0/16"), IP("10.77.0.1"), None)
    assert lease.dns() == {"nameservers": ["10.77.0.53", "10.77.0.54"], "domain": "example.test",
                           "search": ["a.example.test", "b.example.test", "example.org"]}
    assert (lease.lease_time, lease.t1, lease.t2) == (120, 60, 105)
    assert (lease.renew_at, lease.rebind_at, lease.expire_at) == (1060.0, 1105.0, 1120.0)


def test_ack_static_routes_then_default():
    lease = C.Lease(P.decode(ACK_STATIC), b"\x02" * 6, 0.0)
    assert lease.routes() == [(NET("10.0.0.0/8"), IP("10.77.0.1"), None),
                              (NET("0.0.0.0/0"), IP("10.77.0.1"), None)]


def test_renew_and_rebind_have_no_server_id_or_requested_ip():
    for raw in (RENEW, REBIND):
        p = P.decode(raw)
        o = P.merged_options(p)
        assert p.message_type == P.REQUEST and p.ciaddr == IP("10.77.0.40")
        assert P.OPT_SERVER_ID not in o and P.OPT_REQUESTED_IP not in o


def test_release_fields():
    p = P.decode(RELEASE)
    assert p.message_type == P.RELEASE and p.options == [
        (53, b"\x07"), (54, IP("10.77.0.1").packed), (61, CID_OVL)]
    assert p.ciaddr == IP("10.77.0.33")


def test_ack_classless():
    lease = C.Lease(P.decode(ACK_CLASSLESS), b"\x02" * 6, 0.0)
    assert lease.routes() == [(NET("10.20.0.0/16"), IP("10.77.0.1"), None),
                              (NET("0.0.0.0/0"), IP("10.77.0.1"), None)]
    assert lease.dns() == {"nameservers": ["10.77.0.53"], "domain": "example.test"}


def test_captured_frame_ip_udp_headers():
    ip = RENEW_FRAME[14:]
    assert RENEW_FRAME[12:14] == b"\x08\x00"
    assert T.build_ip_udp(RENEW, "10.77.0.40", "10.77.0.1") == ip
    assert T.checksum(ip[:20]) == 0
    src, payload = T.parse_ip_udp(ip, dport=67)
    assert src == IP("10.77.0.40") and payload == RENEW
    assert T.parse_ip_udp(ip) is None  # not to port 68


def test_udp_checksum_verifies():
    pkt = T.build_ip_udp(b"hello", "1.2.3.4", "5.6.7.8")
    pseudo = pkt[12:20] + b"\x00\x11" + pkt[24:26]
    assert T.checksum(pseudo + pkt[20:]) == 0


# ---- codec: synthetic cases ----------------------------------------------------------------

@pytest.mark.parametrize("routes,wire", [
    ([("0.0.0.0/0", "10.0.0.1")], "000a000001"),
    ([("10.0.0.0/8", "10.0.0.1")], "080a0a000001"),
    ([("192.168.128.0/25", "1.2.3.4")], "19c0a88000" + "01020304"),
    ([("10.1.2.3/32", "0.0.0.0")], "200a01020300000000"),
    ([("128.0.0.0/1", "9.9.9.9"), ("10.17.0.0/16", "9.9.9.9")], "0180090909091" + "00a1109090909"),
])
def test_classless_routes(routes, wire):
    exp = [(NET(d), IP(g)) for d, g in routes]
    assert encode_classless_routes(exp).hex() == wire
    assert P.decode_classless_routes(bytes.fromhex(wire)) == exp


@pytest.mark.parametrize("bad", ["21" + "00" * 8, "180a00", "080a0a0000"])
def test_classless_routes_malformed(bad):
    with pytest.raises(P.DHCPDecodeError):
        P.decode_classless_routes(bytes.fromhex(bad))


def test_classless_route_without_router_is_link_scope():
    ack = P.Packet(P.BOOTREPLY, 1, yiaddr="10.0.0.5", options=[
        (P.OPT_MESSAGE_TYPE, b"\x05"), (P.OPT_SUBNET_MASK, IP("255.255.255.0").packed),
        (P.OPT_ROUTER, IP("10.0.0.1").packed),
        (P.OPT_CLASSLESS_ROUTES, encode_classless_routes([(NET("10.9.0.0/16"), IP(0))]))])
    lease = C.Lease(P.decode(P.encode(ack)), b"", 0.0)
    assert lease.routes() == [(NET("10.9.0.0/16"), IP(0), C.SCOPE_LINK)]
    res = R.lease_result(lease, 7)
    assert res["routes"] == [{"dst": "10.9.0.0/16", "gw": "0.0.0.0", "priority": 7, "scope": 253}]


def test_malformed_classless_falls_back_to_static():
    ack = P.Packet(P.BOOTREPLY, 1, yiaddr="10.0.0.5", options=[
        (P.OPT_SUBNET_MASK, IP("255.0.0.0").packed), (P.OPT_CLASSLESS_ROUTES, b"\x21\x00"),
        (P.OPT_STATIC_ROUTES, encode_static_routes([("172.16.5.0", "10.0.0.2")]))])
    lease = C.Lease(ack, b"", 0.0)
    assert lease.routes() == [(NET("172.16.0.0/16"), IP("10.0.0.2"), None)]
    assert lease.gateway() is None


def test_classful_networks():
    assert P.classful_network("10.1.2.3") == NET("10.0.0.0/8")
    assert P.classful_network("172.16.1.0") == NET("172.16.0.0/16")
    assert P.classful_network("192.168.1.0") == NET("192.168.1.0/24")
    assert P.classful_network("0.0.0.0") == NET("0.0.0.0/0")
    with pytest.raises(P.DHCPDecodeError):
        P.decode_static_routes(b"\x01" * 7)


def test_long_option_split_and_concatenated():
    value = bytes(range(256)) * 2  # 512 bytes
    wire = P.pack_options([(P.OPT_CLASSLESS_ROUTES, value)])
    assert wire[:2] == b"\x79\xff" and wire[257:259] == b"\x79\xff" and wire[514:516] == b"\x79\x02"
    pkt = P.decode(P.encode(P.Packet(P.BOOTREPLY, 9, options=P.unpack_options(wire)[0])))
    assert P.merged_options(pkt)[P.OPT_CLASSLESS_ROUTES] == value


def test_overload_sname_and_file_order():
    file_opts = P.pack_options([(P.OPT_DOMAIN_NAME, b"ex"), (P.OPT_HOST_NAME, b"f")]) + b"\xff"
    sname_opts = P.pack_options([(P.OPT_HOST_NAME, b"s")]) + b"\xff"
    pkt = P.Packet(P.BOOTREPLY, 5, sname=sname_opts, file=file_opts, options=[
        (P.OPT_HOST_NAME, b"m"), (P.OPT_OVERLOAD, b"\x03"), (P.PAD, b"")], trailer=b"")
    raw = P.encode(pkt)
    assert len(raw) == 236 + 4 + 3 + 3 + 1 + 1
    back = P.decode(raw)
    assert back == pkt and P.encode(back) == raw
    o = P.merged_options(back)
    assert o[P.OPT_HOST_NAME] == b"mfs" and o[P.OPT_DOMAIN_NAME] == b"ex"


def test_overload_ignored_without_option_52():
    file_opts = P.pack_options([(P.OPT_DOMAIN_NAME, b"ex")]) + b"\xff"
    pkt = P.Packet(P.BOOTREPLY, 5, file=file_opts, options=[])
    assert P.OPT_DOMAIN_NAME not in P.merged_options(pkt)


@pytest.mark.parametrize("mutate,err", [
    (lambda b: b[:239], "too short"),
    (lambda b: b[:236] + b"\x00\x00\x00\x00" + b[240:], "magic"),
    (lambda b: b[:240] + b"\x35\x05\x01", "overruns"),
    (lambda b: b[:240] + b"\x35\x01\x01", "END"),
    (lambda b: b[:240] + b"\x34\x01\x07\xff", "overload"),
])
def test_decode_errors(mutate, err):
    with pytest.raises(P.DHCPDecodeError, match=err):
        P.decode(mutate(DISCOVER))


def test_domain_search_compression():
    raw = bytes.fromhex("0161076578616d706c650474657374000162c002076578616d706c65036f726700")
    assert P.decode_domain_search(raw) == ["a.example.test", "b.example.test", "example.org"]
    assert P.decode_domain_search(encode_domain_search(["x.y", "z"])) == ["x.y", "z"]
    with pytest.raises(P.DHCPDecodeError):
        P.decode_domain_search(b"\xc0\x00")


def test_option_names():
    assert P.parse_option_name("routers") == 3
    assert P.parse_option_name("dhcp-client-identifier") == 61
    assert P.parse_option_name("121") == 121
    for bad in ("256", "foo", "-1"):
        with pytest.raises(ValueError):
            P.parse_option_name(bad)


def test_lease_timer_defaults():
    assert C.lease_timers({}) == (3600, 1800, 3060)
    o = {P.OPT_LEASE_TIME: P.u32(100), P.OPT_T1: P.u32(90), P.OPT_T2: P.u32(80)}
    assert C.lease_timers(o) == (100, 50, 80)      # T1 > T2: T1 defaults
    o = {P.OPT_LEASE_TIME: P.u32(100), P.OPT_T2: P.u32(200)}
    assert C.lease_timers(o) == (100, 50, 85)      # T2 > lease: T2 defaults


def test_client_id():
    assert C.client_id_for("c", "n", "eth0") == b"\x00c/n/eth0"
    assert len(C.client_id_for("x" * 300, "n", "eth0")) == 255


# ---- client on a fake transport ------------------------------------------------------------

class FakeTransport:
    """Answers like a server: OFFER/ACK from a script of (message type, yiaddr)."""

    def __init__(self, replies):
        self.sent, self.replies, self.pending = [], list(replies), []
        self.server_mac = b"\x0a" * 6

    def send(self, payload, *, src, dst, dst_mac):
        pkt = P.decode(payload)
        self.sent.append((pkt, IP(src), IP(dst), dst_mac))
        if self.replies:
            mtype, yi = self.replies.pop(0)
            if mtype is None:
                return
            opts = [(P.OPT_MESSAGE_TYPE, bytes([mtype])), (P.OPT_SERVER_ID, IP("10.0.0.1").packed),
                    (P.OPT_SUBNET_MASK, IP("255.255.255.0").packed),
                    (P.OPT_LEASE_TIME, P.u32(100))]
            other = P.Packet(P.BOOTREPLY, pkt.xid ^ 1, yiaddr=yi, chaddr=pkt.chaddr, options=opts)
            reply = P.Packet(P.BOOTREPLY, pkt.xid, yiaddr=yi, chaddr=pkt.chaddr, options=opts)
            self.pending += [(P.encode(other), b"\x01" * 6), (b"garbage", b"\x01" * 6),
                             (P.encode(reply), self.server_mac)]

    def recv(self, timeout):
        return self.pending.pop(0) if self.pending else None

    def close(self):
        pass


class FakeClock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t

    def sleep(self, d):
        self.t += d
        return False


def _client(tr, clock=None, **kw):
    return C.Client(tr, MAC1, client_id=CID_OVL, timeout=0.05, rng=random.Random(1),
                    clock=clock or FakeClock(), **kw)


def test_dora_messages():
    tr = FakeTransport([(P.OFFER, "10.0.0.7"), (P.ACK, "10.0.0.7")])
    lease = _client(tr, provide={P.OPT_HOST_NAME: b"pod"}, broadcast=True).acquire()
    assert lease.address == IP("10.0.0.7") and lease.server_mac == tr.server_mac
    (disc, s1, d1, m1), (req, s2, d2, m2) = tr.sent
    assert disc.message_type == P.DISCOVER and req.message_type == P.REQUEST
    assert disc.xid == req.xid and disc.flags == req.flags == P.FLAG_BROADCAST
    assert (s1, d1, m1) == (s2, d2, m2) == (IP(0), IP("255.255.255.255"), b"\xff" * 6)
    o = P.merged_options(req)
    assert o[P.OPT_REQUESTED_IP] == IP("10.0.0.7").packed and o[P.OPT_SERVER_ID] == IP("10.0.0.1").packed
    assert o[P.OPT_CLIENT_ID] == CID_OVL and o[P.OPT_HOST_NAME] == b"pod"
    assert o[P.OPT_PARAM_REQUEST] == bytes([3, 1])


def test_renew_unicast_rebind_broadcast_release():
    tr = FakeTransport([(P.OFFER, "10.0.0.7"), (P.ACK, "10.0.0.7"), (P.ACK, "10.0.0.7"),
                        (P.ACK, "10.0.0.7")])
    cl = _client(tr)
    lease = cl.renew(cl.acquire())
    lease = cl.rebind(lease)
    cl.release(lease)
    renew, rebind, rel = tr.sent[2:]
    assert renew[1:] == (IP("10.0.0.7"), IP("10.0.0.1"), tr.server_mac)
    assert rebind[1:] == (IP("10.0.0.7"), IP("255.255.255.255"), b"\xff" * 6)
    assert rel[1:] == (IP("10.0.0.7"), IP("10.0.0.1"), tr.server_mac)
    for pkt, *_ in (renew, rebind):
        o = P.merged_options(pkt)
        assert pkt.ciaddr == IP("10.0.0.7") and P.OPT_SERVER_ID not in o and P.OPT_REQUESTED_IP not in o
    assert [c for c, _ in rel[0].options] == [P.OPT_MESSAGE_TYPE, P.OPT_SERVER_ID, P.OPT_CLIENT_ID]


def test_init_reboot_request():
    tr = FakeTransport([(P.OFFER, "10.0.0.7"), (P.ACK, "10.0.0.7"), (P.ACK, "10.0.0.7")])
    cl = _client(tr)
    lease = cl.reboot(cl.acquire())
    assert lease.address == IP("10.0.0.7")
    pkt, src, dst, mac = tr.sent[2]
    o = P.merged_options(pkt)
    assert pkt.message_type == P.REQUEST and pkt.ciaddr == IP(0)
    assert (src, dst, mac) == (IP(0), IP("255.255.255.255"), b"\xff" * 6)
    assert o[P.OPT_REQUESTED_IP] == IP("10.0.0.7").packed and P.OPT_SERVER_ID not in o


def test_nak_and_timeout():
    with pytest.raises(C.NakError):
        _client(FakeTransport([(P.OFFER, "10.0.0.7"), (P.NAK, "0.0.0.0")])).acquire()
    with pytest.raises(C.DHCPTimeout):
        C.Client(FakeTransport([(None, None)]), MAC1, client_id=b"x", timeout=0.01).acquire()


def test_backoff_schedule():
    clock, delays = FakeClock(0.0), []

    def wait(d):
        delays.append(d)
        clock.t += d
        return False

    def fail(left):
        raise C.DHCPTimeout("nothing")

    with pytest.raises(C.DHCPTimeout, match="no more tries"):
        C.backoff_retry(fail, resend_max=30.0, deadline=200.0, clock=clock, wait=wait,
                        rng=random.Random(3))
    assert len(delays) >= 8
    assert all(1.0 <= d <= 3.0 for d in delays[:4])
    bases = [4.0, 8.0, 16.0, 30.0, 30.0]
    for d, b in zip(delays[4:], bases):
        assert b - 1.0 <= d <= b + 1.0
    assert clock.t <= 200.0


def test_backoff_stops_on_nak_and_stop():
    def nak(left):
        raise C.NakError("no")
    with pytest.raises(C.NakError):
        C.backoff_retry(nak, deadline=1e9, wait=lambda d: False)

    def fail(left):
        raise C.DHCPTimeout("x")
    with pytest.raises(C.Stopped):
        C.backoff_retry(fail, deadline=1e9, wait=lambda d: True)


# ---- lease keeper on a fake clock -----------------------------------------------------------

class ScriptedOps:
    """LinkOps replacement: a fake client whose answers come from `script` by operation."""

    def __init__(self, clock, script):
        self.clock, self.script, self.calls, self.link = clock, script, [], {"up": False, "exists": True}

    def exists(self, ifname):
        return self.link["exists"]

    def set_up(self, ifname, up=True):
        self.link["up"] = up

    def open_client(self, keeper):
        ops = self

        class Cl:
            def _do(self, op, lease=None):
                ops.calls.append((op, ops.clock.t))
                outcome = ops.script(op, ops.clock.t)
                if isinstance(outcome, Exception):
                    ops.clock.t += 1.0
                    raise outcome
                ack = P.Packet(P.BOOTREPLY, 1, yiaddr="10.0.0.9", options=[
                    (P.OPT_SUBNET_MASK, IP("255.255.255.0").packed), (P.OPT_LEASE_TIME, P.u32(100)),
                    (P.OPT_SERVER_ID, IP("10.0.0.1").packed)])
                return C.Lease(ack, b"\x01" * 6, ops.clock.t)

            def acquire(self, requested=None, *, timeout=None):
                return self._do("acquire")

            def renew(self, lease, *, timeout=None):
                return self._do("renew")

            def rebind(self, lease, *, timeout=None):
                return self._do("rebind")

            def reboot(self, lease, *, timeout=None):
                return self._do("reboot")

            def release(self, lease):
                ops.calls.append(("release", ops.clock.t))

        return FakeTransport([]), Cl()


def _keeper(clock, ops, stop_after):
    def wait(d):
        clock.t += d
        return clock.t >= stop_after

    s = L.Settings(timeout=1.0, resend_max=8.0, resend_timeout=30.0)
    return L.Keeper(b"\x00c/n/eth0", None, "eth0", request=[1, 3], provide={}, settings=s,
                    ops=ops, clock=clock, wait=wait)


def test_keeper_renews_at_t1_and_releases_on_stop():
    clock = FakeClock(0.0)
    ops = ScriptedOps(clock, lambda op, t: None)
    k = _keeper(clock, ops, stop_after=160.0)
    k._run()
    ops_seen = [op for op, _ in ops.calls]
    assert ops_seen[:3] == ["acquire", "renew", "renew"] and ops_seen[-1] == "release"
    assert ops.calls[1][1] == 50.0 and ops.calls[2][1] == 100.0  # T1 = lease/2
    assert ops.link["up"] and k.error is None


def test_keeper_rebinds_after_t2_then_expires_and_downs_link():
    clock = FakeClock(0.0)
    ops = ScriptedOps(clock, lambda op, t: None if op == "acquire" else C.DHCPTimeout("silent"))
    k = _keeper(clock, ops, stop_after=1e9)
    k._run()
    renews = [t for op, t in ops.calls if op == "renew"]
    rebinds = [t for op, t in ops.calls if op == "rebind"]
    assert renews and min(renews) == 50.0 and max(renews) < 85.0
    assert rebinds and min(rebinds) >= 85.0 and max(rebinds) < 100.0
    assert ops.link["up"] is False and k.lease is None
    assert "release" not in [op for op, _ in ops.calls]


def test_keeper_nak_on_renew_reacquires():
    clock = FakeClock(0.0)
    answers = {"renew": [C.NakError("nak")]}
    ops = ScriptedOps(clock, lambda op, t: answers.get(op, [None]).pop(0) if answers.get(op) else None)
    k = _keeper(clock, ops, stop_after=70.0)
    k._run()
    assert [op for op, _ in ops.calls][:3] == ["acquire", "renew", "acquire"]


def test_keeper_acquire_failure_is_try_again_later():
    clock = FakeClock(0.0)
    ops = ScriptedOps(clock, lambda op, t: C.DHCPTimeout("silent"))
    k = _keeper(clock, ops, stop_after=1e9)
    k._run()
    assert isinstance(k.error, CNIError) and k.error.code == 11
    assert clock.t <= 31.0


def test_keeper_stops_when_link_vanishes():
    clock = FakeClock(0.0)
    ops = ScriptedOps(clock, lambda op, t: None)
    k = _keeper(clock, ops, stop_after=1e9)

    def gone_after_acquire(op, t):
        ops.link["exists"] = False
    ops.script = gone_after_acquire
    k._run()
    assert [op for op, _ in ops.calls] == ["acquire"]


def _restored_keeper(clock, ops, stop_after, expire_in=100.0):
    k = _keeper(clock, ops, stop_after)
    ack = P.Packet(P.BOOTREPLY, 1, yiaddr="10.0.0.9", options=[
        (P.OPT_SUBNET_MASK, IP("255.255.255.0").packed), (P.OPT_LEASE_TIME, P.u32(100)),
        (P.OPT_SERVER_ID, IP("10.0.0.1").packed)])
    k.restored = C.Lease(ack, b"\x01" * 6, clock.t + expire_in - 100.0)
    return k


def test_keeper_restored_lease_is_reclaimed_first():
    clock = FakeClock(0.0)
    ops = ScriptedOps(clock, lambda op, t: None)
    changes = []
    k = _restored_keeper(clock, ops, stop_after=60.0)
    k.on_change = lambda keeper: changes.append((keeper.state, keeper.finished))
    k._run()
    seen = [op for op, _ in ops.calls]
    assert seen[:2] == ["reboot", "renew"] and seen[-1] == "release"
    assert ops.calls[1][1] == 50.0                       # T1 counted from the reclaim
    assert changes[0] == (L.BOUND, False) and changes[-1][1] is True


def test_keeper_restored_lease_nak_reacquires_same_address():
    clock = FakeClock(0.0)
    answers = {"reboot": [C.NakError("nak")]}
    ops = ScriptedOps(clock, lambda op, t: answers[op].pop(0) if answers.get(op) else None)
    k = _restored_keeper(clock, ops, stop_after=10.0)
    k._run()
    assert [op for op, _ in ops.calls][:2] == ["reboot", "acquire"]


def test_keeper_restored_lease_kept_when_reboot_is_unanswered():
    clock = FakeClock(0.0)
    ops = ScriptedOps(clock, lambda op, t: C.DHCPTimeout("silent") if op == "reboot" else None)
    k = _restored_keeper(clock, ops, stop_after=45.0, expire_in=80.0)   # T1 in 30 s
    k._run()
    seen = [(op, t) for op, t in ops.calls]
    assert {op for op, _ in seen[:-2]} == {"reboot"} and all(t < 31.0 for _, t in seen[:-2])
    assert seen[-2][0] == "renew" and seen[-2][1] >= 30.0 and seen[-1][0] == "release"


def test_keeper_restored_expired_lease_acquires_again():
    clock = FakeClock(0.0)
    ops = ScriptedOps(clock, lambda op, t: C.DHCPTimeout("silent") if op == "reboot" else None)
    k = _restored_keeper(clock, ops, stop_after=60.0, expire_in=-5.0)
    k._run()
    seen = [op for op, _ in ops.calls]
    assert seen[0] == "reboot" and "acquire" in seen and ops.link["up"]


def test_keeper_restored_without_link_ends():
    clock = FakeClock(0.0)
    ops = ScriptedOps(clock, lambda op, t: None)
    ops.link["exists"] = False
    k = _restored_keeper(clock, ops, stop_after=1e9)
    k._run()
    assert ops.calls == [] and k.error is not None and k.finished and not k.alive


def test_wait_ready_deadline():
    s = L.Settings()
    k = L.Keeper(b"\x00c/n/eth0", None, "eth0", request=[], provide={}, settings=s)
    with pytest.raises(CNIError) as ei:
        k.wait_ready(0.05)
    assert ei.value.code == 11


# ---- lease state file ------------------------------------------------------------------------

def test_state_roundtrip(tmp_path):
    from cni.dhcp import state as ST
    assert ST.state_path("", "/run/cni/dhcp.sock") == "/run/cni/dhcp.leases.json"
    assert ST.state_path("/var/lib/x", "/run/a.sock") == "/var/lib/x/a.leases.json"
    k = L.Keeper(b"\x00cid/net/eth0", "/run/netns/x", "eth0", request=[1, 3, 121],
                 provide={12: b"web"}, settings=L.Settings(), container_id="cid", network="net")
    lease = C.Lease(P.decode(ACK_CLASSLESS), b"\x02" * 6, 500.0)
    rec = ST.record(k, lease, clock=lambda: 600.0, wall=lambda: 10000.0)
    assert rec["boundAt"] == 9900.0 and rec["address"] == "10.77.0.40"
    path = str(tmp_path / "st" / "dhcp.leases.json")
    ST.save(path, [rec, {"clientID": "zz"}, 5])
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    logged = []
    got = ST.load(path, logged.append)
    assert len(got) == 1 and len(logged) == 2
    r = got[0]
    assert (r.client_id, r.container_id, r.network, r.ifname, r.netns) == (
        b"\x00cid/net/eth0", "cid", "net", "eth0", "/run/netns/x")
    assert r.request == [1, 3, 121] and r.provide == {12: b"web"}
    assert r.lease.address == lease.address and r.lease.server_mac == lease.server_mac
    assert abs((r.lease.bound_at - __import__("time").monotonic()) + (
        __import__("time").time() - 9900.0)) < 5
    with open(path, "w") as f:
        f.write("{garbage")
    assert ST.load(path, logged.append) == [] and "unreadable" in logged[-1]
    assert ST.load(str(tmp_path / "none.json"), logged.append) == []


# ---- daemon: flags, options, protocol --------------------------------------------------------

@pytest.mark.parametrize("s,sec", [("10s", 10), ("1m2s", 62), ("3m28s", 208), ("500ms", 0.5),
                                   ("1.5h", 5400), ("0", 0), ("-2s", -2)])
def test_parse_duration(s, sec):
    assert F.parse_duration(s) == pytest.approx(sec)


@pytest.mark.parametrize("bad", ["", "10", "1x", "s", "1..2s"])
def test_parse_duration_bad(bad):
    with pytest.raises(ValueError):
        F.parse_duration(bad)


def test_parse_flags():
    o = F.parse_flags([])
    assert (o.socketpath, o.pidfile, o.hostprefix, o.broadcast) == (F.DEFAULT_SOCKET_PATH, "", "", False)
    assert (o.timeout, o.resendmax, o.resendtimeout) == (10.0, 62.0, 208.0)
    o = F.parse_flags(["-socketpath", "/x.sock", "--pidfile=/p", "-broadcast", "-timeout", "2s",
                       "-resendmax=4s", "-hostprefix", "/host"])
    assert (o.socketpath, o.pidfile, o.hostprefix, o.broadcast, o.timeout, o.resendmax) == (
        "/x.sock", "/p", "/host", True, 2.0, 4.0)
    assert F.parse_flags(["-broadcast=false"]).broadcast is False
    for bad in (["-nope"], ["-timeout"], ["-timeout", "ten"], ["-broadcast=maybe"]):
        with pytest.raises(F.UsageError):
            F.parse_flags(bad)


def test_run_usage_exit_codes(capsys):
    assert D.run(["-h"]) == 0
    assert D.run(["-bogus"]) == 2
    assert D.run(["-pidfile", "relative.pid"]) == 1


def test_prepare_options():
    ipam = {"request": [{"option": "121"}, {"option": "host-name"}],
            "provide": [{"option": "host-name", "fromArg": "K8S_POD_NAME"},
                        {"option": "60", "value": "vend"}]}
    req, prov = R.prepare_options("IgnoreUnknown=1;K8S_POD_NAME=web-0", ipam)
    assert req == [121, 12, 3, 1]
    assert prov == {12: b"web-0", 60: b"vend"}
    req, _ = R.prepare_options("", {"request": [{"option": "6", "skipDefault": True}]})
    assert req == [6]
    with pytest.raises(CNIError) as ei:
        R.prepare_options("", {"provide": [{"option": "12", "value": "x" * 256}]})
    assert ei.value.code == 7
    with pytest.raises(CNIError):
        R.prepare_options("", {"request": [{"option": "bogus"}]})


def test_lease_result_shape():
    lease = C.Lease(P.decode(ACK_CLASSLESS), b"", 0.0)
    assert R.lease_result(lease) == {
        "cniVersion": "1.1.0", "ips": [{"address": "10.77.0.40/24", "gateway": "10.77.0.1"}],
        "routes": [{"dst": "10.20.0.0/16", "gw": "10.77.0.1"}, {"dst": "0.0.0.0/0", "gw": "10.77.0.1"}],
        "dns": {"nameservers": ["10.77.0.53"], "domain": "example.test"}}


class FakeKeeper:
    made = []

    def __init__(self, key, netns, ifname, *, request, provide, settings, container_id="",
                 network="", restored=None, on_change=None):
        self.key, self.netns, self.ifname = key, netns, ifname
        self.container_id, self.network = container_id, network
        self.finished = False
        self.ready = threading.Event()
        self.lease = C.Lease(P.decode(ACK_CLASSLESS), b"", 0.0)
        self.error = None
        self.alive = True
        self.nudged = self.stopped = 0
        FakeKeeper.made.append(self)

    def start(self):
        self.ready.set()
        return self

    def wait_ready(self, timeout=None):
        return self.lease

    def nudge(self):
        self.nudged += 1

    def stop(self, *, release=True, timeout=None):
        self.stopped += 1


@pytest.fixture
def daemon_sock(tmp_path):
    """A Daemon with fake keepers, served on a unix socket in a background thread."""
    FakeKeeper.made = []
    d = D.Daemon(L.Settings(), "/hostprefix", keeper_factory=FakeKeeper,
                 netns_check=lambda path: None)
    path = str(tmp_path / "run" / "dhcp.sock")
    lst = D.get_listener(path, environ={})
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            try:
                conn, _ = lst.accept()
            except OSError:
                return
            threading.Thread(target=S.serve_connection, args=(d.handle, L.log, conn),
                             daemon=True).start()

    th = threading.Thread(target=loop, daemon=True)
    th.start()
    yield d, path
    stop.set()
    lst.shutdown(socket.SHUT_RDWR)
    lst.close()


CONF = jsonx.dumps({"cniVersion": "1.1.0", "name": "net1", "ipam": {"type": "dhcp", "priority": 3}})


def test_protocol_allocate_check_release(daemon_sock):
    d, path = daemon_sock
    args = PS.request_args("cid", "/run/netns/x", "eth1", "", CONF)
    assert oct(os.stat(os.path.dirname(path)).st_mode & 0o777) == "0o700"
    res = PS.call(path, "allocate", args)
    assert res["ips"] == [{"address": "10.77.0.40/24", "gateway": "10.77.0.1"}]
    assert all(r["priority"] == 3 for r in res["routes"])
    k = FakeKeeper.made[0]
    assert k.key == b"\x00cid/net1/eth1" and k.netns == "/hostprefix/run/netns/x" and k.ifname == "eth1"
    assert PS.call(path, "allocate", args) == res and k.nudged == 1 and len(FakeKeeper.made) == 1
    assert PS.call(path, "check", args)["ips"] == res["ips"]
    assert PS.call(path, "status", {})["leases"] == 1
    assert PS.call(path, "release", args) == {} and k.stopped == 1
    assert PS.call(path, "release", args) == {}          # unknown lease: success
    with pytest.raises(CNIError) as ei:
        PS.call(path, "check", args)
    assert ei.value.code == 3


def test_protocol_errors(daemon_sock):
    d, path = daemon_sock
    with pytest.raises(CNIError) as ei:
        PS.call(path, "frobnicate", {})
    assert ei.value.code == 6 and "unknown" in ei.value.msg
    with pytest.raises(CNIError) as ei:
        PS.call(path, "allocate", {"containerID": "c", "ifName": "eth0", "config": "{nope"})
    assert ei.value.code == 6
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(b'{"v": 99, "op": "status"}')
    s.shutdown(socket.SHUT_WR)
    reply = jsonx.loads(s.recv(65536))
    s.close()
    assert reply["ok"] is False and "protocol version" in reply["error"]["msg"]
    # a client that vanishes mid-request does not hurt the daemon
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(b'{"v": 1, "op"')
    s.close()
    assert PS.call(path, "status", {})["leases"] == 0


def test_daemon_not_running(tmp_path):
    path = str(tmp_path / "missing.sock")
    with pytest.raises(CNIError) as ei:
        PS.call(path, "allocate", {})
    assert ei.value.code == 50
    assert "dhcp daemon" in ei.value.details and path in ei.value.details


def test_socket_path_from_config():
    assert PS.socket_path({"ipam": {"daemonSocketPath": "/a.sock"}}) == "/a.sock"
    assert PS.socket_path({"ipam": {}}) == "/run/cni/dhcp.sock"
    assert PS.request_args("c", "rel/ns", "eth0", "", b"{}")["netns"] == os.path.abspath("rel/ns")


# ---- the plugin through skel (no daemon) ----------------------------------------------------

def _run_plugin(cmd, conf, **env):
    import io

    import dhcp as plugin
    out = io.StringIO()
    environ = {"CNI_COMMAND": cmd, "CNI_CONTAINERID": "cid", "CNI_NETNS": "/run/netns/none",
               "CNI_IFNAME": "eth1", "CNI_PATH": "/opt/cni/bin", **env}
    rc = plugin.skel.run(plugin.PLUGIN, environ=environ, stdin=io.BytesIO(jsonx.dumps(conf).encode()),
                         stdout=out, stderr=io.StringIO())
    return rc, (jsonx.loads(out.getvalue()) if out.getvalue() else None)


def test_plugin_without_daemon(tmp_path):
    conf = {"cniVersion": "1.1.0", "name": "n", "type": "dhcp",
            "ipam": {"type": "dhcp", "daemonSocketPath": str(tmp_path / "none.sock")}}
    rc, out = _run_plugin("STATUS", conf)
    assert rc == 1 and out["code"] == 50
    rc, out = _run_plugin("ADD", conf)
    assert rc == 1 and out["code"] == 50 and "dhcp daemon" in out["details"]
    assert _run_plugin("DEL", conf) == (0, None)     # no daemon holds no lease


def test_plugin_config_errors():
    conf = {"cniVersion": "1.1.0", "name": "n", "type": "dhcp", "ipam": {"priority": "high"}}
    rc, out = _run_plugin("ADD", conf)
    assert rc == 1 and out["code"] == 7
    conf["ipam"] = {"request": ["routers"]}
    assert _run_plugin("ADD", conf)[1]["code"] == 7


def test_plugin_add_and_check_via_daemon(daemon_sock):
    _, path = daemon_sock
    conf = {"cniVersion": "0.4.0", "name": "n", "type": "dhcp",
            "ipam": {"type": "dhcp", "daemonSocketPath": path}}
    rc, res = _run_plugin("ADD", conf)
    assert rc == 0 and res["cniVersion"] == "0.4.0"
    assert res["ips"] == [{"version": "4", "address": "10.77.0.40/24", "gateway": "10.77.0.1"}]
    rc, out = _run_plugin("CHECK", {**conf, "prevResult": res})
    assert (rc, out) == (0, None)
    bad = {**res, "ips": [{"version": "4", "address": "10.9.9.9/24"}]}
    rc, out = _run_plugin("CHECK", {**conf, "prevResult": bad})
    assert rc == 1 and out["code"] == 3


# ---- server framing ----------------------------------------------------------------------------

def _serve_pair(payload: bytes, handle=lambda req: {"echo": req}, shutdown=True) -> bytes:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    a.settimeout(10)
    a.sendall(payload)
    if shutdown:
        a.shutdown(socket.SHUT_WR)
    S.serve_connection(handle, lambda m: None, b)
    out = b""
    while True:
        chunk = a.recv(65536)
        if not chunk:
            break
        out += chunk
    a.close()
    return out


def test_server_answers_json_and_go_rpc_connect():
    assert jsonx.loads(_serve_pair(b'{"v": 1}')) == {"v": 1, "ok": True, "result": {"echo": {"v": 1}}}
    reply = _serve_pair(b"CONNECT /_goRPC_ HTTP/1.0\n\n", shutdown=False)
    status = reply.split(b"\r\n", 1)[0]
    assert status.startswith(b"HTTP/1.0 501 ") and b"pycni dhcp daemon" in status
    assert reply.endswith(b"\r\n\r\n")
    assert S._looks_http(b"GET / HTTP/1.1") and not S._looks_http(b'{"v": 1}')
    err = jsonx.loads(_serve_pair(b"[1]"))["error"]
    assert err["code"] == 6


def test_plugin_side_names_the_go_daemon(tmp_path):
    path = str(tmp_path / "go.sock")
    lst = socket.socket(socket.AF_UNIX)
    lst.bind(path)
    lst.listen(1)

    def go_like():
        c, _ = lst.accept()
        while c.recv(65536):
            pass
        c.sendall(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n400 Bad Request")
        c.close()
    th = threading.Thread(target=go_like)
    th.start()
    with pytest.raises(CNIError) as ei:
        PS.call(path, "allocate", {})
    th.join()
    lst.close()
    assert ei.value.code == 50 and "Go dhcp daemon" in ei.value.details
    assert f"dhcp daemon -socketpath {path}" in ei.value.details
