"""cni.addr against the stdlib's ipaddress: same text, comparisons, hashes, containment."""
from __future__ import annotations

import ipaddress
import random

import pytest

from cni import addr

RND = random.Random(1313)


def _v6_ints(n: int):
    """Random IPv6 ints with zero runs of every length and position (the RFC 5952 cases)."""
    out = [0, 1, (1 << 128) - 1, 0xFFFF << 32 | 0x01020304, 0x0102_0304, 0xFE80 << 112 | 1]
    for _ in range(n):
        h = [RND.choice((0, 0, 0, RND.randrange(1, 0x10000), RND.randrange(1, 16))) for _ in range(8)]
        out.append(int("".join("%04x" % x for x in h), 16))
    return out


def _v4_ints(n: int):
    return [0, 1, 0xFFFFFFFF, 0x7F000001, 0xA9FE0101] + [RND.randrange(1 << 32) for _ in range(n)]


CASES = [(4, i) for i in _v4_ints(300)] + [(6, i) for i in _v6_ints(600)]


@pytest.mark.parametrize("ver", (4, 6))
def test_addresses_match_ipaddress(ver):
    for v, i in CASES:
        if v != ver:
            continue
        ref = ipaddress.IPv4Address(i) if ver == 4 else ipaddress.IPv6Address(i)
        ours = addr.IPv4Address(i) if ver == 4 else addr.IPv6Address(i)
        assert str(ours) == str(ref), hex(i)
        assert repr(ours) == repr(ref)
        assert ours.packed == ref.packed and int(ours) == i and ours.version == ref.version
        assert ours.max_prefixlen == ref.max_prefixlen
        assert addr.ip_address(str(ref)) == ours == ref and ref == ours
        assert addr.ip_address(ref.packed) == ours
        assert hash(ours) == hash(ref)
        for name in ("is_unspecified", "is_loopback", "is_link_local", "is_multicast"):
            assert getattr(ours, name) == getattr(ref, name), (name, ref)
        if ver == 6:
            m = ours.ipv4_mapped
            assert (m and str(m)) == (ref.ipv4_mapped and str(ref.ipv4_mapped))


def test_ordering_and_arithmetic_match():
    for ver in (4, 6):
        ints = [i for v, i in CASES if v == ver]
        ours = sorted((addr.IPv4Address if ver == 4 else addr.IPv6Address)(i) for i in ints)
        ref = sorted((ipaddress.IPv4Address if ver == 4 else ipaddress.IPv6Address)(i) for i in ints)
        assert [str(a) for a in ours] == [str(a) for a in ref]
        for j in (len(ours) // 2, -4, -3):
            a, b, ra, rb = ours[j], ours[j + 1], ref[j], ref[j + 1]
            assert (a < b, a <= b, a > b, a >= b) == (ra < rb, ra <= rb, ra > rb, ra >= rb)
            assert str(a + 1) == str(ra + 1) and str(b - 1) == str(rb - 1)
    assert {addr.ip_address("10.0.0.1"), ipaddress.ip_address("10.0.0.1")} == {
        ipaddress.ip_address("10.0.0.1")}
    with pytest.raises(ValueError):
        addr.ip_address("255.255.255.255") + 1
    with pytest.raises(TypeError):
        addr.ip_address("10.0.0.1") < addr.ip_address("::1")


@pytest.mark.parametrize("ver", (4, 6))
def test_networks_and_interfaces_match(ver):
    bits = 32 if ver == 4 else 128
    for v, i in [c for c in CASES if c[0] == ver][:300]:
        plen = RND.randrange(bits + 1)
        text = f"{(ipaddress.IPv4Address if ver == 4 else ipaddress.IPv6Address)(i)}/{plen}"
        ri, oi = ipaddress.ip_interface(text), addr.ip_interface(text)
        assert str(oi) == str(ri) and oi == ri and ri == oi and hash(oi) == hash(ri)
        assert str(oi.ip) == str(ri.ip) and oi.network == ri.network
        assert str(oi.network) == str(ri.network) and hash(oi.network) == hash(ri.network)
        rn, on = ri.network, oi.network
        assert on.prefixlen == rn.prefixlen and on.num_addresses == rn.num_addresses
        for a in ("network_address", "broadcast_address", "netmask", "hostmask"):
            assert str(getattr(on, a)) == str(getattr(rn, a)), (a, text)
        assert on.with_prefixlen == rn.with_prefixlen
        for name in ("is_unspecified", "is_loopback", "is_link_local", "is_multicast"):
            assert getattr(on, name) == getattr(rn, name), (name, text)
        assert (ri.ip in rn) and (oi.ip in on) and (oi.ip in rn) and (ri.ip in on)
        other = (ipaddress.IPv4Address if ver == 4 else ipaddress.IPv6Address)(RND.randrange(1 << bits))
        assert ((addr.IPv4Address if ver == 4 else addr.IPv6Address)(int(other)) in on) == (other in rn)
        if ri.ip != rn.network_address:
            with pytest.raises(ValueError):
                addr.ip_network(text)
            with pytest.raises(ValueError):
                ipaddress.ip_network(text)
        assert addr.ip_network(text, strict=False) == rn


def test_network_relations_match():
    texts = ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.2.0.0/16", "0.0.0.0/0",
             "192.168.0.0/30", "192.168.0.4/30", "10.1.2.3/32"]
    for a in texts:
        for b in texts:
            ra, rb, oa, ob = (ipaddress.ip_network(a), ipaddress.ip_network(b),
                              addr.ip_network(a), addr.ip_network(b))
            assert oa.overlaps(ob) == ra.overlaps(rb), (a, b)
            assert oa.subnet_of(ob) == ra.subnet_of(rb) and oa.supernet_of(ob) == ra.supernet_of(rb)
            assert (oa < ob, oa > ob, oa == ob) == (ra < rb, ra > rb, ra == rb)
    v6 = ["fd00::/8", "fd00:1::/64", "::/0", "fe80::/10", "fd00:1::5/128"]
    for a in v6:
        for b in v6:
            assert addr.ip_network(a).overlaps(addr.ip_network(b)) == \
                ipaddress.ip_network(a).overlaps(ipaddress.ip_network(b))


def test_hosts_and_iteration_match():
    for text in ("10.0.0.0/29", "10.0.0.0/31", "10.0.0.7/32", "fd00::/125", "fd00::/127",
                 "fd00::1/128", "192.168.1.0/24"):
        r, o = ipaddress.ip_network(text), addr.ip_network(text)
        assert [str(a) for a in o.hosts()] == [str(a) for a in r.hosts()], text
        assert [str(a) for a in o] == [str(a) for a in r], text


def test_parsing_forms_and_errors():
    assert str(addr.ip_network("10.0.0.0/255.255.0.0")) == "10.0.0.0/16"
    assert str(addr.ip_interface("10.0.0.5")) == "10.0.0.5/32"
    assert str(addr.ip_network(("10.1.2.3", 24), strict=False)) == "10.1.2.0/24"
    assert str(addr.ip_interface("FD00::0:1/64")) == str(ipaddress.ip_interface("FD00::0:1/64"))
    assert addr.ip_address(addr.ip_interface("10.0.0.5/24").ip) == addr.ip_address("10.0.0.5")
    for bad in ("", "10.0.0", "10.0.0.256", "010.0.0.1", "1.2.3.4/24", "fd00:::1", "x",
                "10.0.0.1 ", "::g"):
        with pytest.raises(ValueError):
            addr.ip_address(bad)
        with pytest.raises(ValueError):
            ipaddress.ip_address(bad)
    for bad in ("10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/x", "fd00::/129", "10.0.0.0/255.0.255.0",
                "10.0.0.0/1.5"):
        with pytest.raises(ValueError):
            addr.ip_network(bad, strict=False)
        with pytest.raises(ValueError):
            ipaddress.ip_network(bad, strict=False)
    for bad in (-1, 1 << 128, b"\x01\x02\x03", None, True):
        with pytest.raises((ValueError, TypeError)):
            addr.ip_address(bad)
