"""Scale of the rule model and of portmap's builders: 100k rules and 60k port mappings in
seconds, linear (a list-membership step per rule made these minutes), with the multiset index
kept in step with the rule lists through every edit.
"""
from __future__ import annotations

import gc
import ipaddress
import time

import pytest

from cni.fw import iptables, portmap, portmap_config
from cni.nl import nft_defs as d
from cni.nl import nftables as nft
from cni.nl.codec import AttrList, Msg, decode_one, encode
from test_fw_masq import fake  # noqa: F401  (fixture)

V4 = ipaddress.ip_interface("10.88.0.2/24")
OPTS = dict(portmap._OPTS)


@pytest.fixture(autouse=True)
def _no_gc():
    """As in the plugin process (plugins/portmap.py): the cyclic collector's passes over
    millions of live objects would make every size here superlinear."""
    gc.disable()
    yield
    gc.enable()


def elapsed(fn, *args) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def in_step(t: iptables.Table) -> None:
    """The index agrees with the lists."""
    for chain, specs in t.chains.items():
        for s in set(specs):
            assert t.count(chain, s) == specs.count(s), (chain, s)


# --- Table / Batch ---------------------------------------------------------------------------

def fill(n: int) -> None:
    b = iptables.Batch(iptables.Table("nat", {"BIG": [f"-p tcp --dport {i} -j X" for i in range(n)]}))
    for i in range(n):                              # all present: no new line
        b.append_unique("BIG", f"-p tcp --dport {i} -j X")
    for i in range(n):                              # all new
        b.append_unique("BIG", f"-p udp --dport {i} -j X")
    assert all(b.has("BIG", f"-p udp --dport {i} -j X") for i in range(0, n, 97))
    for i in range(n):
        b.append("JUMPS", f"-m multiport --dports {i} -j BIG")
    b.delete_many("BIG", [f"-p tcp --dport {i} -j X" for i in range(n)])
    b.delete_chain("BIG")
    assert len(b.lines) == 4 * n + 3 and "JUMPS" in b.t.chains and not b.t.chains["JUMPS"]


def test_batch_100k_rules_linear():
    fill(1000)                                      # warm up
    small, big = elapsed(fill, 10_000), elapsed(fill, 100_000)
    assert big < 10, f"100k rules: {big:.1f}s"      # with list membership: hours
    assert big / max(small, 1e-3) < 30, f"10x the rules cost {big / small:.0f}x"


def test_index_in_step_through_every_edit():
    t = iptables.Table("nat", {"A": ["-j X", "-s 1 -j X", "-j X"], "B": ["-j A"]})
    b = iptables.Batch(t)
    assert t.count("A", "-j X") == 2 and t.count("NOPE", "-j X") == 0
    b.append_unique("A", "-j X")
    b.insert_unique("A", "-s 2 -j X")
    b.append("A", "-j X")
    in_step(t)
    b.delete("A", "-j X", every=False)
    assert t.chains["A"] == ["-s 2 -j X", "-s 1 -j X", "-j X", "-j X"]
    in_step(t)
    b.delete("A", "-j X")
    assert t.chains["A"] == ["-s 2 -j X", "-s 1 -j X"] and not t.has("A", "-j X")
    b.delete("A", "-j GONE")
    b.delete_many("A", {"-s 1 -j X": 1, "-j GONE": 2})
    in_step(t)
    assert b.lines == ["-I A 1 -s 2 -j X", "-A A -j X", "-D A -j X", "-D A -j X", "-D A -j X",
                       "-D A -s 1 -j X"]


def test_delete_chains_one_pass_flushes_before_deleting():
    t = iptables.Table("nat", {"C1": ["-j C2"], "C2": ["-j ACCEPT"],
                               "POSTROUTING": ["-s 1 -j C1", "-j C2", "-j C22"]})
    b = iptables.Batch(t)
    b.delete_chains(["C2", "C1", "C2", "ABSENT"])
    assert b.lines == ["-D POSTROUTING -s 1 -j C1", "-D POSTROUTING -j C2",
                       "-F C2", "-F C1", "-X C2", "-X C1"]   # C1 jumps to C2: both flushed first
    assert t.chains["POSTROUTING"] == ["-j C22"] and "C1" not in t.chains
    assert t.jumps_to("C22") == [("POSTROUTING", "-j C22")]
    assert t.jumps_to_any(["C", "C2"]) == []


# --- portmap builders --------------------------------------------------------------------------

def mappings(n: int, proto: str = "tcp") -> list:
    return portmap_config.normalize_mappings([{"hostPort": 1000 + i % 60000, "containerPort": 1000 + i % 60000,
                                        "protocol": proto, "hostIP": ""} for i in range(n)])


def build(n: int, cond=None):
    m = mappings(n) + mappings(n, "udp")
    o = {**OPTS, "conditions_v4": cond}
    b = iptables.Batch(iptables.Table("nat"))
    portmap._ipt_build(b, "net", "cid", m, V4, o)
    return b, m, o


@pytest.mark.parametrize("cond", [None, ["-m", "set", "--match-set", "allowed", "src"]])
def test_ipt_build_60k_tcp_and_udp(cond):
    """podman's 60k-port range for tcp and udp: 360k rules, 8000 multiport jumps."""
    t0 = time.perf_counter()
    b, m, o = build(60000, cond)
    first = time.perf_counter() - t0
    dn = portmap.dn_chain("net", "cid")
    assert len(b.t.chains[dn]) == 6 * 60000 and len(b.t.chains[portmap.DNAT_CHAIN]) == 2 * 4000
    again = iptables.Batch(b.t)                     # a repeated ADD writes nothing
    t0 = time.perf_counter()
    portmap._ipt_build(again, "net", "cid", m, V4, o)
    portmap._ipt_check(b.t, "net", "cid", m, V4, o)
    second = time.perf_counter() - t0
    assert again.lines == []
    assert first < 30 and second < 30, (first, second)
    b.t.chains[dn].pop()
    b.t._index.pop(dn)
    with pytest.raises(portmap.PortmapCheckError):
        portmap._ipt_check(b.t, "net", "cid", m, V4, o)


def test_ipt_build_linear():
    build(1000)
    small, big = elapsed(build, 6000), elapsed(build, 60000)
    assert big / small < 20, f"10x the mappings cost {big / small:.0f}x"


def test_gc_drops_many_stale_containers_in_one_pass(fake):  # noqa: F811
    """portmap.gc with 500 containers, half stale: one restore, every jump, chain flush and
    delete of the stale ones, none of the valid ones."""
    lines = ["*nat", ":CNI-HOSTPORT-DNAT - [0:0]"]
    jumps = []
    for i in range(500):
        dn = portmap.dn_chain("net", f"c{i}")
        lines += [f":{dn} - [0:0]", f"-A {dn} -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.2:80"]
        jumps.append(f'-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"net\\" '
                     f'id: \\"c{i}\\"" -m multiport --dports 80 -j {dn}')
    save = "\n".join(lines + jumps + ["COMMIT", ""])
    f = fake(saves={("iptables-save", "nat"): save}, available=("iptables-save", "iptables-restore"))
    t0 = time.perf_counter()
    portmap.gc("net", [f"c{i}" for i in range(0, 500, 2)])
    assert time.perf_counter() - t0 < 5
    (text,) = f.inputs("iptables-restore")
    out = text.splitlines()
    stale = {portmap.dn_chain("net", f"c{i}") for i in range(1, 500, 2)}
    assert {ln.rsplit("-j ", 1)[1] for ln in out if ln.startswith("-D ")} == stale
    assert {ln[3:] for ln in out if ln.startswith("-F ")} == stale == {ln[3:] for ln in out if ln.startswith("-X ")}
    assert len(out) == 2 + 3 * 250


# --- netlink ---------------------------------------------------------------------------------

def rule_msg() -> bytes:
    attrs = AttrList([("NFTA_RULE_TABLE", "cni_hostport"), ("NFTA_RULE_CHAIN", "hostports"),
                      ("NFTA_RULE_HANDLE", 7),
                      ("NFTA_RULE_EXPRESSIONS", AttrList([("NFTA_LIST_ELEM", nft.verdict(d.NFT_JUMP, "x"))])),
                      ("NFTA_RULE_USERDATA", nft.udata_comment("cid-1"))])
    t = d.msg_type(d.NFT_MSG_NEWRULE)
    return encode(Msg(t, 0, 1, 0, {"family": 2, "version": 0, "res_id": 0}, attrs), d.MESSAGES[t])


def test_rules_without_expressions_decode():
    data = rule_msg()
    full = nft.Rule(decode_one(data, 0, len(data), d.MESSAGES)[1])
    light = nft.Rule(decode_one(data, 0, len(data), nft._no_exprs())[1])
    assert (light.chain, light.handle, light.comment) == ("hostports", 7, "cid-1") and light.exprs is None
    assert (full.chain, full.handle, full.comment) == ("hostports", 7, "cid-1") and len(full.exprs) == 1


class FakeSock:
    def __init__(self, refuse_force=False):
        self.opts, self.refuse = [], refuse_force

    def setsockopt(self, level, opt, value):
        if self.refuse and opt in (32, 33):
            raise PermissionError(1, "Operation not permitted")
        self.opts.append((level, opt, value))


@pytest.mark.parametrize("refuse", [False, True])
def test_batch_buffers_fit_the_batch(refuse):
    """Past ~300 operations the default buffers lose ACKs (ENOBUFS) or refuse the send
    (EMSGSIZE); the socket grows them to the batch first."""
    s = object.__new__(nft.NftSocket)
    s._sock = FakeSock(refuse)
    s._fit_buffers(4000, 30)
    assert s._sock.opts == []                       # small: default buffers
    s._fit_buffers(6_000_000, 60000)
    force = (7, 8) if refuse else (32, 33)
    assert s._sock.opts == [(1, force[0], 6_000_000 + 65536), (1, force[1], 60002 * 1024)]


# --- conntrack ---------------------------------------------------------------------------------

def test_conntrack_delete_ports_one_dump_for_60k_ports():
    from cni.nl import conntrack as ct

    def flow(port, proto=17, fam=2):
        tup = AttrList([("CTA_TUPLE_IP", AttrList([("CTA_IP_V4_DST", "10.0.0.1")])),
                        ("CTA_TUPLE_PROTO", AttrList([("CTA_PROTO_NUM", proto), ("CTA_PROTO_DST_PORT", port)]))])
        return Msg(0, hdr={"family": fam}, attrs=AttrList([("CTA_TUPLE_ORIG", tup)]))

    class FakeNl:
        dumps, deleted = 0, []

        def dump(self, mtype, hdr, attrs=()):
            FakeNl.dumps += 1
            return [flow(p) for p in range(1, 65536)] + [flow(80, proto=6), flow(1000, fam=10)]

        def request(self, mtype, hdr, attrs=()):
            FakeNl.deleted.append(attrs[0][1])
    c = object.__new__(ct.Conntrack)
    c._nl = FakeNl()
    t0 = time.perf_counter()
    n = c.delete_ports(proto=ct.IPPROTO_UDP, dports=range(1000, 61000), families=(2,))
    assert time.perf_counter() - t0 < 10
    assert FakeNl.dumps == 1 and n == 60000 == len(FakeNl.deleted)
