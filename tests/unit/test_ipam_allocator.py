"""host-local ranges, store and allocator, in-process against a temp-dir store (no kernel)."""
from __future__ import annotations

import os

import pytest

from cni.errors import CNIError, InvalidConfigError, InvalidEnvError
from cni.ipam import allocator, ranges, sweep
from cni.ipam.store import LAST_PREFIX, OWNER_DIR, STAMP_NS, Store, owner_name


class Conf:
    """The NetConf attributes the allocator reads."""

    def __init__(self, ipam, cni_version="1.0.0", runtime_config=None, args=None, name="net"):
        self.ipam, self.cni_version, self.name = ipam, cni_version, name
        self.runtime_config = runtime_config or {}
        self.args = args or {}

    def cni_arg(self, key, default=None):
        c = self.args.get("cni")
        return c.get(key, default) if isinstance(c, dict) else default


def ipc_for(ranges_, cni_args="", **kw):
    return allocator.load_config(Conf({"type": "host-local", "ranges": ranges_}, **kw), cni_args)


def add(tmp_path, ipc, cid, ifname="eth0", net="net"):
    with Store(str(tmp_path), net) as st:
        return [(ip.address_str, ip.gateway_str) for ip in allocator.allocate(ipc, st, cid, ifname)]


def names(tmp_path, net="net"):
    """The network folder's files, with the owner index files (in their hidden folder)."""
    d = tmp_path / net
    out = [n for n in os.listdir(d) if n != OWNER_DIR]
    if (d / OWNER_DIR).is_dir():
        out += os.listdir(d / OWNER_DIR)
    return sorted(out)


def reservations(tmp_path, net="net"):
    return sorted(n for n in names(tmp_path, net)
                  if n != "lock" and not n.startswith(("last_reserved_ip.", "owner:", ".")))


# -- addresses ---------------------------------------------------------------------
@pytest.mark.parametrize("s", ["10.0.0.1", "0.0.0.0", "255.255.255.255", "::", "::1", "fd00::1",
                               "2001:db8:0:1:1:1:1:1", "2001:db8::1:0:0:1", "1:0:0:2::3",
                               "fe80::", "1::", "2001:0:0:1::1"])
def test_format_round_trip_matches_go_style(s):
    import ipaddress
    v6, n = ranges.parse_ip(s)
    assert ranges.format_ip(v6, n) == str(ipaddress.ip_address(s))


def test_v4_mapped_is_v4_and_bad_ips_rejected():
    assert ranges.parse_ip("::ffff:10.0.0.1") == (False, 0x0A000001)
    for bad in ["", "1.2.3", "01.2.3.4", "1.2.3.4 ", "fe80::1%eth0", "x", None, 5]:
        with pytest.raises(ValueError):
            ranges.parse_ip(bad)


# -- canonicalization ---------------------------------------------------------------
def test_defaults_v4_and_v6():
    (rs4,), = [ranges.load_range_sets({"ranges": [[{"subnet": "10.0.0.0/24"}]]}, None, "1.0.0")]
    r = rs4.ranges[0]
    assert (str(r), r.gateway_str, r.subnet_str) == ("10.0.0.1-10.0.0.254", "10.0.0.1", "10.0.0.0/24")
    (rs6,) = ranges.load_range_sets({"ranges": [[{"subnet": "fd00::/120"}]]}, None, "1.0.0")
    assert str(rs6) == "fd00::1-fd00::ff"


@pytest.mark.parametrize("rng,frag", [
    ({"subnet": "10.0.0.5/24"}, "host bits"),
    ({"subnet": "10.0.0.0/31"}, "too small"),
    ({"subnet": "10.0.0.0/32"}, "too small"),
    ({"subnet": "fd00::/127"}, "too small"),
    ({"subnet": "10.0.0.0/33"}, "prefix"),
    ({"subnet": "bogus/24"}, "not an IP"),
    ({"subnet": "10.0.0.0"}, "CIDR"),
    ({}, "subnet: missing"),
    ({"subnet": "10.0.0.0/24", "rangeStart": "10.0.1.1"}, "rangeStart"),
    ({"subnet": "10.0.0.0/24", "rangeEnd": "10.0.1.1"}, "rangeEnd"),
    ({"subnet": "10.0.0.0/24", "rangeStart": "nope"}, "rangeStart"),
    ({"subnet": "10.0.0.0/24", "gateway": "nope"}, "gateway"),
    ({"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.9", "rangeEnd": "10.0.0.5"}, "after"),
])
def test_bad_ranges_are_code_7_naming_the_field(rng, frag):
    with pytest.raises(InvalidConfigError) as ei:
        ranges.load_range_sets({"ranges": [[rng]]}, None, "1.0.0")
    assert ei.value.code == 7 and frag in ei.value.details
    assert "ipam.ranges[0][0]" in ei.value.details


@pytest.mark.parametrize("ipam,frag", [
    ({}, "no IP ranges"),
    ({"ranges": []}, "no IP ranges"),
    ({"ranges": [[]]}, "empty range set"),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}, {"subnet": "fd00::/64"}]]}, "mixed"),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}, {"subnet": "10.0.0.0/25"}]]}, "overlap"),
    ({"ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "10.0.0.0/24"}]]}, "range set 0 overlaps with 1"),
    ({"ranges": "x"}, "list"),
])
def test_bad_range_sets(ipam, frag):
    with pytest.raises(InvalidConfigError) as ei:
        ranges.load_range_sets(ipam, None, "1.0.0")
    assert frag in ei.value.details


def test_two_sets_same_family_need_030():
    ipam = {"ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "10.1.0.0/24"}]]}
    with pytest.raises(InvalidConfigError) as ei:
        ranges.load_range_sets(ipam, None, "0.2.0")
    assert "more than 1 address per family" in ei.value.details
    assert len(ranges.load_range_sets(ipam, None, "0.3.0")) == 2
    one_each = {"ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "fd00::/64"}]]}
    assert len(ranges.load_range_sets(one_each, None, "0.2.0")) == 2


def test_disjoint_ranges_in_one_subnet_and_legacy_and_runtime_order():
    ipam = {"subnet": "10.9.0.0/24", "ranges": [[
        {"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.10", "rangeEnd": "10.0.0.20"},
        {"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.30", "rangeEnd": "10.0.0.40"}]]}
    sets = ranges.load_range_sets(ipam, [[{"subnet": "10.7.0.0/24"}]], "1.0.0")
    assert [str(s) for s in sets] == ["10.7.0.1-10.7.0.254", "10.9.0.1-10.9.0.254",
                                      "10.0.0.10-10.0.0.20,10.0.0.30-10.0.0.40"]


# -- allocation ----------------------------------------------------------------------
def test_sequential_skips_gateway_and_writes_go_layout(tmp_path):
    ipc = ipc_for([[{"subnet": "10.0.0.0/29"}]])
    assert add(tmp_path, ipc, "c1") == [("10.0.0.2/29", "10.0.0.1")]
    assert add(tmp_path, ipc, "c2") == [("10.0.0.3/29", "10.0.0.1")]
    d = tmp_path / "net"
    assert (d / "10.0.0.2").read_bytes() == b"c1\r\neth0"
    assert (d / (LAST_PREFIX + "0")).read_bytes() == b"10.0.0.3"
    assert os.stat(d / (LAST_PREFIX + "0")).st_mtime_ns % 10**9 == STAMP_NS
    assert (d / "lock").exists()
    assert (d / OWNER_DIR / owner_name("c1", "eth0")).read_bytes() == b"c1\r\neth0"


def test_gateway_inside_range_is_skipped_and_explicit_gateway(tmp_path):
    ipc = ipc_for([[{"subnet": "10.0.0.0/29", "gateway": "10.0.0.3"}]])
    got = [add(tmp_path, ipc, f"c{i}")[0][0] for i in range(5)]
    assert got == ["10.0.0.1/29", "10.0.0.2/29", "10.0.0.4/29", "10.0.0.5/29", "10.0.0.6/29"]


def test_exhaustion_names_range_and_wraps_round_robin(tmp_path):
    ipc = ipc_for([[{"subnet": "10.0.0.0/29"}]])  # .2 .. .6 usable
    for i in range(5):
        add(tmp_path, ipc, f"c{i}")
    with pytest.raises(CNIError) as ei:
        add(tmp_path, ipc, "full")
    assert "no IP addresses available in range set: 10.0.0.1-10.0.0.6" in ei.value.details
    assert "range 0" in ei.value.msg
    # free .3 and .5; last reserved is .6 -> wraps to .3, then .5
    with Store(str(tmp_path), "net") as st:
        st.release("c1", "eth0")
        st.release("c3", "eth0")
    assert add(tmp_path, ipc, "n1")[0][0] == "10.0.0.3/29"
    assert add(tmp_path, ipc, "n2")[0][0] == "10.0.0.5/29"


def test_round_robin_resumes_after_last_reserved(tmp_path):
    ipc = ipc_for([[{"subnet": "10.0.0.0/24"}]])
    d = tmp_path / "net"
    d.mkdir()
    (d / (LAST_PREFIX + "0")).write_text("10.0.0.77")
    assert add(tmp_path, ipc, "c1")[0][0] == "10.0.0.78/24"
    # a released address is not reused until the range has been gone through
    with Store(str(tmp_path), "net") as st:
        st.release("c1", "eth0")
    assert add(tmp_path, ipc, "c2")[0][0] == "10.0.0.79/24"
    # last_reserved outside the set -> start at rangeStart
    (d / (LAST_PREFIX + "0")).write_text("192.168.0.1")
    assert add(tmp_path, ipc, "c3")[0][0] == "10.0.0.2/24"


def test_rangestart_rangeend_and_multi_range_wrap(tmp_path):
    ipc = ipc_for([[{"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.250"},
                    {"subnet": "10.1.0.0/24", "rangeEnd": "10.1.0.3"}]])
    got = [add(tmp_path, ipc, f"c{i}")[0][0] for i in range(7)]
    # 10.1.0.1 is that range's gateway
    assert got == ["10.0.0.250/24", "10.0.0.251/24", "10.0.0.252/24", "10.0.0.253/24",
                   "10.0.0.254/24", "10.1.0.2/24", "10.1.0.3/24"]
    with pytest.raises(CNIError):
        add(tmp_path, ipc, "x")
    with Store(str(tmp_path), "net") as st:
        st.release("c0", "eth0")
    assert add(tmp_path, ipc, "y")[0][0] == "10.0.0.250/24"


def test_multiple_range_sets_dual_stack(tmp_path):
    ipc = ipc_for([[{"subnet": "10.0.0.0/24"}], [{"subnet": "fd00::/64", "rangeStart": "fd00::10"}]])
    assert add(tmp_path, ipc, "c1") == [("10.0.0.2/24", "10.0.0.1"), ("fd00::10/64", "fd00::1")]
    assert (tmp_path / "net" / (LAST_PREFIX + "1")).read_text() == "fd00::10"
    assert reservations(tmp_path) == ["10.0.0.2", "fd00::10"]


def test_duplicate_allocation_refused_per_set(tmp_path):
    ipc = ipc_for([[{"subnet": "10.0.0.0/24"}]])
    add(tmp_path, ipc, "c1")
    with pytest.raises(CNIError) as ei:
        add(tmp_path, ipc, "c1")
    assert "duplicate allocation is not allowed" in ei.value.details
    assert add(tmp_path, ipc, "c1", "eth1")[0][0] == "10.0.0.3/24"  # other ifname is fine
    assert reservations(tmp_path) == ["10.0.0.2", "10.0.0.3"]


def test_requested_ips_all_sources(tmp_path):
    base = [[{"subnet": "10.0.0.0/24"}], [{"subnet": "fd00::/64"}]]
    ipc = ipc_for(base, cni_args="IgnoreUnknown=1;IP=10.0.0.50,fd00::50;K8S_POD_NAME=x")
    assert [a for a, _ in add(tmp_path, ipc, "c1")] == ["10.0.0.50/24", "fd00::50/64"]
    ipc = ipc_for(base, args={"cni": {"ips": ["10.0.0.51/24"]}})
    assert add(tmp_path, ipc, "c2")[0][0] == "10.0.0.51/24"
    ipc = ipc_for(base, runtime_config={"ips": ["fd00::52/64"]})
    assert add(tmp_path, ipc, "c3")[1][0] == "fd00::52/64"
    # taken, gateway, outside every set
    for req, frag in [("10.0.0.50", "not available"), ("10.0.0.1", "gateway"),
                      ("192.168.1.1", "failed to allocate all requested IPs")]:
        with pytest.raises(CNIError) as ei:
            add(tmp_path, ipc_for(base, runtime_config={"ips": [req]}), "cx")
        assert frag in str(ei.value)
    # nothing left behind by the failures
    assert reservations(tmp_path) == sorted(["10.0.0.50", "fd00::50", "10.0.0.51", "fd00::51",
                                             "10.0.0.52", "fd00::52"])  # round robin after requests
    assert not any("cx" in n for n in names(tmp_path))


def test_bad_requested_ip_and_unknown_cni_args():
    with pytest.raises(InvalidEnvError):
        ipc_for([[{"subnet": "10.0.0.0/24"}]], cni_args="IP=nope")
    with pytest.raises(InvalidEnvError):
        ipc_for([[{"subnet": "10.0.0.0/24"}]], cni_args="FOO=1")
    with pytest.raises(InvalidConfigError):
        ipc_for([[{"subnet": "10.0.0.0/24"}]], runtime_config={"ips": ["x"]})


def test_ip_ranges_capability_prepends(tmp_path):
    ipc = ipc_for([[{"subnet": "10.0.0.0/24"}]],
                  runtime_config={"ipRanges": [[{"subnet": "10.5.0.0/24"}]]})
    assert [a for a, _ in add(tmp_path, ipc, "c1")] == ["10.5.0.2/24", "10.0.0.2/24"]


def test_partial_failure_releases_everything(tmp_path):
    ipc_small = ipc_for([[{"subnet": "10.0.0.0/30"}]])  # one address: .2
    add(tmp_path, ipc_small, "first")
    ipc = ipc_for([[{"subnet": "10.1.0.0/24"}], [{"subnet": "10.0.0.0/30"}]])
    with pytest.raises(CNIError):
        add(tmp_path, ipc, "c1")
    assert reservations(tmp_path) == ["10.0.0.2"]
    assert not any(n.startswith("owner:c1") for n in names(tmp_path))


def test_release_legacy_id_only_and_check(tmp_path):
    ipc = ipc_for([[{"subnet": "10.0.0.0/24"}]])
    add(tmp_path, ipc, "c1")
    d = tmp_path / "net"
    (d / "10.0.0.100").write_text("old")
    (d / "10.0.0.101").write_text("c1\r\neth0\n")  # a foreign file with trailing space
    with Store(str(tmp_path), "net") as st:
        assert st.find("c1", "eth0") and st.find("old", "eth9") and not st.find("zz", "eth0")
        assert sorted(st.release("c1", "eth0")) == ["10.0.0.101", "10.0.0.2"]
        assert st.release("old", "eth0") == ["10.0.0.100"]
        assert st.release("old", "eth0") == []
    assert reservations(tmp_path) == []
    assert names(tmp_path) == ["last_reserved_ip.0", "lock"]


def test_gc(tmp_path):
    ipc = ipc_for([[{"subnet": "10.0.0.0/24"}]])
    for c in ("a", "b", "c"):
        add(tmp_path, ipc, c)
    (tmp_path / "net" / "10.0.0.200").write_text("legacy")
    with Store(str(tmp_path), "net") as st:
        sweep.gc(st, {("b", "eth0"), ("legacy", "eth3")})
    assert reservations(tmp_path) == ["10.0.0.200", "10.0.0.3"]
    assert [n for n in names(tmp_path) if n.startswith("owner:")] == ["owner:b:eth0"]
    with Store(str(tmp_path), "net") as st:
        sweep.gc(st, set())
    assert names(tmp_path) == ["last_reserved_ip.0", "lock"]


def test_hostile_names_rejected():
    for bad in ["..", ".", "a/b", "x\x00", "n" * 256, ""]:
        with pytest.raises(InvalidConfigError):
            Store("/tmp", bad)
    with pytest.raises(InvalidConfigError):
        Store("/tmp\x00x", "net")


def test_hostile_container_id_and_long_keys(tmp_path):
    ipc = ipc_for([[{"subnet": "10.0.0.0/24"}]])
    for bad in ["", "a\r\nb", "x\x00", " lead"]:
        with pytest.raises(InvalidEnvError):
            add(tmp_path, ipc, bad)
    long_id = "a" * 1000
    add(tmp_path, ipc, long_id, "../../x")
    assert [n for n in names(tmp_path) if n.startswith("owner:")][0].startswith("owner:h:")
    assert all("/" not in n for n in names(tmp_path))
    with Store(str(tmp_path), "net") as st:
        assert st.release(long_id, "../../x") == ["10.0.0.2"]


def test_leftover_tmp_removed_and_skip_listing(tmp_path):
    ipc = ipc_for([[{"subnet": "10.0.0.0/24"}]])
    d = tmp_path / "net"
    d.mkdir()
    (d / ".pycni.tmp").write_text("junk")
    for i in range(2, 120):  # a long taken run triggers the one-listing skip path
        (d / f"10.0.0.{i}").write_text(f"x{i}\r\neth0")
    assert add(tmp_path, ipc, "c1")[0][0] == "10.0.0.120/24"
    assert not (d / ".pycni.tmp").exists()


def test_adopts_foreign_reservations(tmp_path):
    ipc = ipc_for([[{"subnet": "10.0.0.0/24"}]])
    d = tmp_path / "net"
    d.mkdir()
    (d / "10.0.0.9").write_text("go1\r\neth0")
    (d / (LAST_PREFIX + "0")).write_text("10.0.0.9")  # no marker: written by someone else
    with pytest.raises(CNIError, match="duplicate"):
        add(tmp_path, ipc, "go1")
    assert os.stat(d / "10.0.0.9").st_nlink == 2  # now linked to its owner file
    assert add(tmp_path, ipc, "c2")[0][0] == "10.0.0.10/24"
    with Store(str(tmp_path), "net") as st:
        assert st.release("go1", "eth0") == ["10.0.0.9"]
