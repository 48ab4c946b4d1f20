"""Absurd counts and out-of-range numbers in configs: a clear code 6/7, never 999 and never
a slow quadratic check (issue 12, item 5)."""
from __future__ import annotations

import random
import time

import pytest

from cni import convert, version
from cni.errors import CNIError, DecodingError, InvalidConfigError
from cni.ipam import ranges


def _range_list(n, *, step=4, v6=False):
    """n disjoint /30-sized pools inside one big subnet."""
    out = []
    for i in range(n):
        lo, hi = 16 + i * step, 16 + i * step + step - 2
        if v6:
            out.append({"subnet": "fd00::/64", "rangeStart": f"fd00::{lo:x}",
                        "rangeEnd": f"fd00::{hi:x}"})
        else:
            out.append({"subnet": "10.0.0.0/8", "rangeStart": f"10.{lo >> 16 & 255}.{lo >> 8 & 255}.{lo & 255}",
                        "rangeEnd": f"10.{hi >> 16 & 255}.{hi >> 8 & 255}.{hi & 255}"})
    return out


def test_overlap_check_of_5000_ranges_is_fast(monkeypatch):
    """The pairwise check made 12.5 million Range.overlaps calls for 5000 ranges (tens of
    seconds); the sweep makes none and sorts once."""
    calls = []
    real = ranges.Range.overlaps
    monkeypatch.setattr(ranges.Range, "overlaps", lambda a, b: calls.append(1) or real(a, b))
    lst = _range_list(5000)
    random.Random(5).shuffle(lst)
    t = time.perf_counter()
    (rs,) = ranges.load_range_sets({"ranges": [lst]}, None, "1.0.0")
    dt = time.perf_counter() - t
    assert len(rs.ranges) == 5000 and not calls
    print(f"5000 ranges parsed and checked in {dt * 1000:.1f} ms")
    assert dt < 5.0
    # one overlapping pair hidden among them is found, and named
    bad = lst + [{"subnet": "10.0.0.0/8", "rangeStart": "10.0.39.1", "rangeEnd": "10.0.39.2"}]
    with pytest.raises(InvalidConfigError, match="invalid IPAM config") as ei:
        ranges.load_range_set(bad, "ipam.ranges[0]")
    assert "overlap" in ei.value.details and "10.0.39.1-10.0.39.2" in ei.value.details
    # 5000 single-range sets: the cross-set check is the same sweep
    sets = [[r] for r in lst[:1000]]
    t = time.perf_counter()
    assert len(ranges.load_range_sets({"ranges": sets}, None, "1.0.0")) == 1000
    assert time.perf_counter() - t < 5.0 and not calls


def test_sweep_agrees_with_pairwise_definition():
    rnd = random.Random(12)
    for _ in range(400):
        rs = []
        for _ in range(rnd.randrange(1, 9)):
            v6 = rnd.random() < 0.3
            a = rnd.randrange(0, 60)
            b = a + rnd.randrange(0, 8)
            rs.append(ranges.Range(v6, 0, 24 if not v6 else 120, a, b, 0))
        brute = any(rs[i].overlaps(rs[j]) for i in range(len(rs)) for j in range(i + 1, len(rs)))
        pair = ranges.first_overlap(rs)
        assert (pair is not None) == brute, rs
        if pair:
            i, j = pair
            assert i < j and rs[i].overlaps(rs[j])


def test_cross_set_overlap_names_both_sets():
    ipam = {"ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "fd00::/64"}],
                       [{"subnet": "10.2.0.0/24"}], [{"subnet": "10.1.0.128/25"}]]}
    with pytest.raises(InvalidConfigError) as ei:
        ranges.load_range_sets(ipam, None, "1.0.0")
    assert ei.value.details == "ipam.ranges: range set 0 overlaps with 3"


@pytest.mark.parametrize("ipam,rt,frag", [
    ({"ranges": [[{"subnet": "10.0.0.0/24"}]] * 1025}, None, "ipam.ranges: 1025 range sets; at most 1024"),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}] * 8193]}, None, "8193 ranges; at most 8192"),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}] * 3000] * 3}, None, "9000 ranges; at most 8192"),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}]]}, [[{"subnet": "10.1.0.0/24"}]] * 2000,
     "runtimeConfig.ipRanges: 2000 range sets; at most 1024"),
])
def test_range_counts_are_capped(ipam, rt, frag):
    t = time.perf_counter()
    with pytest.raises(InvalidConfigError) as ei:
        ranges.load_range_sets(ipam, rt, "1.0.0")
    assert ei.value.code == 7 and frag in ei.value.details
    assert time.perf_counter() - t < 0.5          # refused before parsing a single range


def test_total_range_cap_across_groups():
    sets = [[r] for r in _range_list(600)]
    rt = [[r] for r in _range_list(600, v6=True)]
    with pytest.raises(InvalidConfigError, match="invalid IPAM config") as ei:
        ranges.load_range_sets({"ranges": sets}, rt, "1.0.0")
    assert "at most 1024 range sets and 8192 ranges" in ei.value.details


def _route(**kw):
    d = {"dst": "10.96.0.0/16"}
    d.update(kw)
    return d


@pytest.mark.parametrize("key,val,top", [
    ("priority", -1, 4294967295), ("priority", 2 ** 32, 4294967295), ("table", -1, 4294967295),
    ("table", 2 ** 64, 4294967295), ("mtu", -5, 4294967295), ("advmss", 2 ** 40, 4294967295),
    ("scope", 256, 255), ("scope", -1, 255),
])
def test_route_numbers_out_of_range(key, val, top):
    with pytest.raises(DecodingError) as ei:
        convert.from_json({"cniVersion": "1.0.0", "routes": [_route(**{key: val})]})
    assert ei.value.details == f"routes[0].{key} must be between 0 and {top}"
    r = convert.from_json({"cniVersion": "1.0.0", "routes": [_route(**{key: top})]}).routes[0]
    assert getattr(r, key) == top


def test_ipam_route_errors_are_code_7():
    from cni.ipam import allocator

    class Conf:
        cni_version, name, runtime_config, args = "1.0.0", "n", {}, {}
        ipam = {"type": "host-local", "ranges": [[{"subnet": "10.0.0.0/24"}]],
                "routes": [_route(table=-1)]}

        def cni_arg(self, key, default=None):
            return default
    with pytest.raises(InvalidConfigError) as ei:
        allocator.load_config(Conf())
    assert ei.value.code == 7 and ei.value.details == "ipam.routes[0].table must be between 0 and 4294967295"
    Conf.ipam["routes"] = [_route()] * 4097
    with pytest.raises(InvalidConfigError) as ei:
        allocator.load_config(Conf())
    assert "ipam.routes holds 4097 routes; at most 4096" in ei.value.details
    Conf.ipam["routes"] = [_route()] * 4096
    assert len(allocator.load_config(Conf()).routes) == 4096


def test_result_route_count_capped():
    with pytest.raises(DecodingError, match="too many routes"):
        convert.from_json({"cniVersion": "1.0.0", "routes": [_route()] * 5000})
    with pytest.raises(DecodingError, match="too many routes"):
        convert.from_json({"cniVersion": "0.2.0", "ip4": {"ip": "10.0.0.2/24",
                                                          "routes": [_route()] * 5000}})


@pytest.mark.parametrize("v", ["1." + "1" * 5000, "1" * 5000, "0.4." + "9" * 20,
                               "1.0." + "0" * 5000 + "1" + "0" * 19])
def test_huge_version_parts_are_decoding_errors(v):
    t = time.perf_counter()
    with pytest.raises(DecodingError) as ei:
        version.parse(v)
    assert time.perf_counter() - t < 0.1
    assert ei.value.code == 6 and len(ei.value.details) < 200 and "too large" in ei.value.details


def test_version_leading_zeros_still_parse():
    assert version.parse("1.0." + "0" * 5000) == (1, 0, 0)
    assert version.parse("0.4." + "9" * 18) == (0, 4, 999999999999999999)


def test_skel_answers_code_6_for_a_5000_digit_version():
    import io

    from cni import skel
    plugin = skel.Plugin("t", type("C", (), {"load": classmethod(lambda c, o, r: None)}),
                         add=lambda a, c: None)
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c", "CNI_NETNS": "/x", "CNI_IFNAME": "eth0"}
    out = io.StringIO()
    data = ('{"cniVersion": "1.' + "7" * 5000 + '.0", "name": "n"}').encode()
    assert skel.run(plugin, env, io.BytesIO(data), out) == 1
    import json
    err = json.loads(out.getvalue())
    assert err["code"] == 6 and err["msg"] == "invalid version"


def test_errors_are_cni_errors():
    assert issubclass(DecodingError, CNIError)


# ---- environment, sysctl keys, link numbers, bandwidth, port mappings -----------------------

def test_non_utf8_ifname_is_code_4():
    import io
    import json
    import os

    from cni import skel
    from cni.config import valid_ifname
    plugin = skel.Plugin("t", None, add=lambda a, c: None)
    # what os.environ holds for CNI_IFNAME=b"et\xffh0" (surrogateescape)
    name = os.fsdecode(b"et\xffh0")
    assert valid_ifname(name) == "interface name is not valid UTF-8"
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c", "CNI_NETNS": "/x", "CNI_IFNAME": name}
    out = io.StringIO()
    assert skel.run(plugin, env, io.BytesIO(b"{}"), out) == 1
    err = json.loads(out.getvalue())
    assert err["code"] == 4 and err["msg"] == "invalid CNI_IFNAME"
    assert "not valid UTF-8" in err["details"]


def test_non_utf8_ifname_through_a_zipapp(built_bins):
    import json
    import os
    import subprocess
    env = {b"CNI_COMMAND": b"DEL", b"CNI_CONTAINERID": b"c", b"CNI_NETNS": b"",
           b"CNI_IFNAME": b"et\xffh0", b"CNI_PATH": b"/nonexistent"}
    r = subprocess.run([os.path.join(built_bins, "loopback")], env=env, capture_output=True,
                       input=b'{"cniVersion": "1.0.0", "name": "n", "type": "loopback"}')
    assert r.returncode == 1 and json.loads(r.stdout)["code"] == 4, r


@pytest.mark.parametrize("key", ["net.ipv4.conf.IFNAME.arp_notify\x00", "net/ipv4/\x00x"])
def test_sysctl_key_with_nul_is_code_7(key):
    from cni.meta import tuning
    with pytest.raises(InvalidConfigError) as ei:
        tuning.sysctl_path(key, "eth0")
    assert ei.value.msg == "invalid sysctl key" and "NUL" in ei.value.details


@pytest.mark.parametrize("key,want", [
    ("net.ipv4.conf.IFNAME.arp_notify", "/proc/sys/net/ipv4/conf/eth0/arp_notify"),
    # every '.' becomes '/': a '..' cannot survive, the key stays a (missing) net/ key
    ("net/ipv4/conf/IFNAME/../../../kernel/x", "/proc/sys/net/ipv4/conf/eth0/kernel/x"),
    ("net/../kernel/hostname", "/proc/sys/net/kernel/hostname"),
    ("net..ipv4..ip_forward", "/proc/sys/net/ipv4/ip_forward"),
    ("kernel.hostname", None), ("/net", None), ("", None),
])
def test_sysctl_keys_stay_under_proc_sys_net(key, want):
    from cni.meta import tuning
    if want is None:
        with pytest.raises(InvalidConfigError):
            tuning.sysctl_path(key, "eth0")
    else:
        assert tuning.sysctl_path(key, "eth0") == want


def test_sysctl_module_refuses_dot_dot_and_nul():
    from cni import sysctl
    assert sysctl.path("net.ipv4.conf.eth0/1.rp_filter") == "/proc/sys/net/ipv4/conf/eth0.1/rp_filter"
    for bad in ("net/ipv4/conf/../../kernel/x", "net/./x", "net/x\x00"):
        with pytest.raises(ValueError):
            sysctl.path(bad)


@pytest.mark.parametrize("mtu,txq,field", [(-1, None, "mtu"), (65536, None, "mtu"),
                                           (2 ** 64, None, "mtu"), (1500, -1, "txQLen"),
                                           (1500, 2 ** 32, "txQLen")])
def test_tuning_numbers(mtu, txq, field):
    from cni.meta import tuning
    with pytest.raises(InvalidConfigError) as ei:
        tuning.check_values(mtu, txq)
    assert ei.value.msg == f"invalid {field}" and "out of range" in ei.value.details
    tuning.check_values(65535, 2 ** 32 - 1)


@pytest.mark.parametrize("plugin", ["ipvlan", "macvlan", "vlan", "tuning"])
@pytest.mark.parametrize("mtu", [-1, 65536, 2 ** 64, 10 ** 5000], ids=["-1", "65536", "2^64", "10^5000"])
def test_link_plugins_mtu_range(plugin, mtu):
    import importlib
    mod = importlib.import_module(plugin)
    conf = {"cniVersion": "1.0.0", "name": "n", "type": plugin, "master": "eth0", "mtu": mtu,
            "vlanId": 5}
    with pytest.raises(InvalidConfigError) as ei:
        c = mod.Config.load(conf)
        if plugin == "tuning":
            from cni import skel
            c.resolve(skel.Args())
    assert ei.value.code == 7 and "mtu" in ei.value.details


def test_tuning_data_dir_with_nul():
    import tuning as plugin
    with pytest.raises(InvalidConfigError, match="invalid dataDir"):
        plugin.Config.load({"cniVersion": "1.0.0", "name": "n", "type": "tuning",
                            "dataDir": "/run/x\x00y"})


@pytest.mark.parametrize("rate,burst,frag", [
    (2 ** 64, 80000, "ingressRate=18446744073709551616 bit/s is more than 18446744073709551615"),
    (2 ** 70, 80000, "more than"), (10 ** 5000, 80000, "a 16610-bit number"),
    (8000, 8 * 0xFFFFFFFF, "burst cannot be more than 4GB"),
], ids=["2^64", "2^70", "10^5000", "burst"])
def test_bandwidth_limits(rate, burst, frag):
    from cni.meta import bandwidth
    with pytest.raises(InvalidConfigError) as ei:
        bandwidth.validate_rate_burst(rate, burst, "ingress")
    assert frag in ei.value.msg + ei.value.details
    bandwidth.validate_rate_burst(10 ** 12, 8 * 10 ** 9, "ingress")


def test_port_mapping_count_capped():
    from cni.fw import portmap_config
    m = {"hostPort": 8080, "containerPort": 80}
    t = time.perf_counter()
    with pytest.raises(InvalidConfigError) as ei:
        portmap_config.normalize_mappings([m] * (65536 * 2 + 1))
    assert time.perf_counter() - t < 0.1
    assert ei.value.msg == "too many port mappings"
    assert "131073 entries; at most 131072" in ei.value.details


def test_host_local_resolv_conf_with_nul_is_code_7():
    from cni.ipam import allocator

    class Conf:
        cni_version, name, runtime_config, args = "1.0.0", "n", {}, {}
        ipam = {"type": "host-local", "ranges": [[{"subnet": "10.0.0.0/24"}]],
                "resolvConf": "/etc/resolv.conf\x00x"}

        def cni_arg(self, key, default=None):
            return default
    with pytest.raises(InvalidConfigError) as ei:
        allocator.load_config(Conf())
    assert "ipam.resolvConf" in ei.value.details


@pytest.mark.parametrize("rate,burst", [(100000, 2 ** 32), (2 ** 64 - 1, 80000)])
def test_bandwidth_burst_that_wraps_tbf_buffer_to_zero(rate, burst, monkeypatch):
    """burst/rate in ticks is a u32 that wraps (as in Go); at 0 the kernel says EINVAL."""
    from cni.meta import bandwidth
    from cni.nl import tc
    monkeypatch.setattr(tc, "_tick_in_usec", 15.625)        # this machine's /proc/net/psched
    with pytest.raises(InvalidConfigError) as ei:
        bandwidth.validate_rate_burst(rate, burst, "egress")
    assert ei.value.msg == "invalid egressBurst" and "empty buffer" in ei.value.details
    bandwidth.validate_rate_burst(8_000_000, 80_000, "egress")       # the usual numbers
    bandwidth.validate_rate_burst(10_000_000, 2 ** 32 - 1, "egress")  # containerd's burst


def test_tuning_data_dir_too_long():
    import tuning as plugin
    with pytest.raises(InvalidConfigError, match="invalid dataDir"):
        plugin.Config.load({"cniVersion": "1.0.0", "name": "n", "type": "tuning",
                            "dataDir": "/" + "x" * 100000})
