"""Result conversion between every pair of spec versions."""
from __future__ import annotations

import itertools

import pytest

from cni import convert
from cni.std import json as jsonx
from cni.errors import DecodingError, IncompatibleVersionError
from cni.version import ALL

# The spec's ADD example (SPEC.md section 5), extended with an IPv6 address.
V1 = {
    "interfaces": [
        {"name": "cni0", "mac": "00:11:22:33:44:55"},
        {"name": "veth3243", "mac": "55:44:33:22:11:11"},
        {"name": "eth0", "mac": "99:88:77:66:55:44", "sandbox": "/var/run/netns/blue"},
    ],
    "ips": [
        {"interface": 2, "address": "10.1.0.5/16", "gateway": "10.1.0.1"},
        {"interface": 2, "address": "2001:db8::5/64", "gateway": "2001:db8::1"},
    ],
    "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0", "gw": "2001:db8::1"}],
    "dns": {"nameservers": ["10.1.0.1"]},
}
V04 = {
    "interfaces": V1["interfaces"],
    "ips": [
        {"version": "4", "interface": 2, "address": "10.1.0.5/16", "gateway": "10.1.0.1"},
        {"version": "6", "interface": 2, "address": "2001:db8::5/64", "gateway": "2001:db8::1"},
    ],
    "routes": V1["routes"],
    "dns": {"nameservers": ["10.1.0.1"]},
}
V02 = {
    "ip4": {"ip": "10.1.0.5/16", "gateway": "10.1.0.1", "routes": [{"dst": "0.0.0.0/0"}]},
    "ip6": {"ip": "2001:db8::5/64", "gateway": "2001:db8::1",
            "routes": [{"dst": "::/0", "gw": "2001:db8::1"}]},
    "dns": {"nameservers": ["10.1.0.1"]},
}


def family(v):
    return "0.2" if v in ("0.1.0", "0.2.0") else ("0.4" if v.startswith("0.") else "1")


def example(v):
    base = {"0.2": V02, "0.4": V04, "1": V1}[family(v)]
    return dict(jsonx.loads(jsonx.dumps(base)), cniVersion=v)


def expected(src_v, dst_v):
    out = example(dst_v)
    # what is lost on the way through an older family
    if family(src_v) == "0.2" and family(dst_v) != "0.2":
        out.pop("interfaces")
        for ip in out["ips"]:
            ip.pop("interface")
    return out


@pytest.mark.parametrize("src,dst", list(itertools.product(ALL, ALL)))
def test_every_pair(src, dst):
    res = convert.from_json(example(src))
    assert res.cni_version == src
    assert convert.to_json(res, dst) == expected(src, dst)


@pytest.mark.parametrize("dst", ["0.1.0", "0.2.0"])
def test_two_ipv4_cannot_go_to_020(dst):
    r = dict(example("1.0.0"))
    r["ips"] = [{"address": "10.0.0.2/24"}, {"address": "10.0.1.2/24"}]
    with pytest.raises(IncompatibleVersionError) as ei:
        convert.to_json(convert.from_json(r), dst)
    assert ei.value.code == 1 and "IPv4" in ei.value.details


@pytest.mark.parametrize("dst", ["0.1.0", "0.2.0"])
def test_l2_only_cannot_go_to_020(dst):
    r = {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0"}]}
    with pytest.raises(IncompatibleVersionError):
        convert.to_json(convert.from_json(r), dst)


def test_04_always_has_dns_1x_omits_empty():
    r = convert.from_json({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24"}]})
    assert convert.to_json(r, "0.4.0")["dns"] == {}
    assert "dns" not in convert.to_json(r, "1.1.0")


def test_1x_fields_dropped_in_04():
    r = convert.from_json({"cniVersion": "1.1.0", "interfaces": [
        {"name": "eth0", "mtu": 1400, "socketPath": "/s", "pciID": "0000:00:01.0"}]})
    assert convert.to_json(r, "0.4.0")["interfaces"] == [{"name": "eth0"}]
    assert convert.to_json(r, "1.0.0")["interfaces"][0]["mtu"] == 1400


def test_route_extras_survive_04_not_02():
    r = convert.from_json({"cniVersion": "1.1.0", "ips": [{"address": "10.0.0.2/24"}], "routes": [
        {"dst": "10.9.0.0/16", "gw": "10.0.0.1", "mtu": 1300, "priority": 5, "table": 0,
         "scope": 253}]})
    assert convert.to_json(r, "0.4.0")["routes"][0] == {
        "dst": "10.9.0.0/16", "gw": "10.0.0.1", "mtu": 1300, "priority": 5, "table": 0,
        "scope": 253}
    assert convert.to_json(r, "0.2.0")["ip4"]["routes"] == [{"dst": "10.9.0.0/16", "gw": "10.0.0.1"}]


def test_missing_version_takes_default():
    r = convert.from_json({"ips": [{"address": "10.0.0.2/24", "version": "4"}]}, "0.4.0")
    assert r.cni_version == "0.4.0"


@pytest.mark.parametrize("bad", [
    {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.300/24"}]},
    {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.3"}]},
    {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.3/33"}]},
    {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.3/24", "gateway": "nope"}]},
    {"cniVersion": "1.0.0", "routes": [{"dst": "x"}]},
    {"cniVersion": "0.4.0", "ips": [{"address": "10.0.0.3/24"}]},
    {"cniVersion": "0.4.0", "ips": [{"version": "6", "address": "10.0.0.3/24"}]},
    {"cniVersion": "1.0.0", "interfaces": "eth0"},
    {"cniVersion": "9.0.0"},
    {"cniVersion": "x.y"},
    [1, 2],
])
def test_bad_results_are_decoding_errors(bad):
    with pytest.raises(DecodingError) as ei:
        convert.from_json(bad)
    assert ei.value.code == 6


def test_unsupported_target():
    r = convert.from_json(example("1.0.0"))
    with pytest.raises(IncompatibleVersionError):
        convert.to_json(r, "1.2.0")


def test_ip_version_is_an_int_in_the_model_and_a_string_in_0_4_json():
    r = convert.from_json({"ips": [{"address": "10.0.0.2/24", "version": "4"},
                                   {"address": "fd00::2/64", "version": "6"}]}, "0.4.0")
    assert [ip.version for ip in r.ips] == [4, 6]
    assert [ip.version for ip in r.ips] == [ip.address.version for ip in r.ips]
    assert [d["version"] for d in convert.to_json(r, "0.3.1")["ips"]] == ["4", "6"]
    assert all("version" not in d for d in convert.to_json(r, "1.0.0")["ips"])
