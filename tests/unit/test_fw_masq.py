"""masq: golden rules (as observed from Go bridge 1.1.1) and batching with a fake tool runner."""
from __future__ import annotations

import ipaddress
import json
import os

import pytest

from cni.std import process as proc
from cni.fw import backend, masq

V4 = ipaddress.ip_interface("10.88.0.2/24")
V6 = ipaddress.ip_interface("fd00:88::2/64")
CH = "CNI-70a29d9dc18bc4d652ea5d59"
C = '-m comment --comment "name: \\"mynet\\" id: \\"abc123\\""'

# iptables-save -t nat after the Go bridge plugin ADD (name mynet, id abc123), IPv4.
GO_V4 = f"""*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:{CH} - [0:0]
-A POSTROUTING -s 10.88.0.2/32 {C} -j {CH}
-A {CH} -d 10.88.0.0/24 {C} -j ACCEPT
-A {CH} ! -d 224.0.0.0/4 {C} -j MASQUERADE
COMMIT
"""


class FakeTools:
    """Stands in for cni.std.process.run: serves canned *-save / nft -j output, records every exec."""

    def __init__(self, saves=None, nft_lists=None, available=("iptables-save", "iptables-restore",
                                                            "ip6tables-save", "ip6tables-restore", "nft")):
        self.saves = saves or {}
        self.nft_lists = nft_lists or {}
        self.available = set(available)
        self.calls = []

    def which(self, name):
        return f"/fake/{name}" if name in self.available else None

    def __call__(self, argv, input=b"", env=None, timeout=30.0):
        name = os.path.basename(argv[0])
        self.calls.append((name, list(argv[1:]), input.decode()))
        if name.endswith("-save"):
            return 0, self.saves.get((name, argv[argv.index("-t") + 1]), "").encode(), b""
        if name == "nft" and "list" in argv:
            key = " ".join(argv[argv.index("list") + 1:])
            if key in self.nft_lists:
                return 0, json.dumps(self.nft_lists[key]).encode(), b""
            return 1, b"", b"Error: No such file or directory"
        return 0, b"", b""

    def names(self):
        return [c[0] for c in self.calls]

    def inputs(self, name):
        return [c[2] for c in self.calls if c[0] == name]


@pytest.fixture
def fake(monkeypatch):
    def make(**kw):
        f = FakeTools(**kw)
        monkeypatch.setattr(proc, "run", f)
        monkeypatch.setattr(backend, "which", f.which)
        # the fake tools hold the state: the kernel probes must not answer for them
        monkeypatch.setattr(backend, "nft_table_may_exist", lambda family, name: True)
        monkeypatch.setattr(backend, "ipt_table_may_exist", lambda table, v6: True)
        return f
    return make


def test_rules_golden():
    assert masq.ipt_rules("mynet", "abc123", V4) == [
        (CH, f"-d 10.88.0.0/24 {C} -j ACCEPT"),
        (CH, f"! -d 224.0.0.0/4 {C} -j MASQUERADE"),
        ("POSTROUTING", f"-s 10.88.0.2/32 {C} -j {CH}")]
    assert masq.ipt_rules("mynet", "abc123", V6) == [
        (CH, f"-d fd00:88::/64 {C} -j ACCEPT"),
        (CH, f"! -d ff00::/8 {C} -j MASQUERADE"),
        ("POSTROUTING", f"-s fd00:88::2/128 {C} -j {CH}")]


def test_setup_one_restore_per_family(fake):
    f = fake()
    masq.setup("mynet", "abc123", "eth0", [V4, V6], "iptables")
    assert f.names() == ["iptables-save", "iptables-restore", "ip6tables-save", "ip6tables-restore"]
    assert f.calls[1][1] == ["--noflush", "--wait"]
    assert f.inputs("iptables-restore")[0] == (
        f"*nat\n-N {CH}\n-A {CH} -d 10.88.0.0/24 {C} -j ACCEPT\n"
        f"-A {CH} ! -d 224.0.0.0/4 {C} -j MASQUERADE\n"
        f"-A POSTROUTING -s 10.88.0.2/32 {C} -j {CH}\nCOMMIT\n")


def test_setup_is_append_unique(fake):
    f = fake(saves={("iptables-save", "nat"): GO_V4})
    masq.setup("mynet", "abc123", "eth0", [V4], "iptables")
    assert f.names() == ["iptables-save"]  # everything present: no restore at all
    second = ipaddress.ip_interface("10.99.0.7/16")
    masq.setup("mynet", "abc123", "eth0", [V4, second], "iptables")
    assert f.inputs("iptables-restore")[0] == (
        f"*nat\n-A {CH} -d 10.99.0.0/16 {C} -j ACCEPT\n"
        f"-A POSTROUTING -s 10.99.0.7/32 {C} -j {CH}\nCOMMIT\n")


def test_teardown_removes_go_rules_both_forms(fake):
    legacy = GO_V4.replace("COMMIT", f"-A POSTROUTING -s 10.88.0.0/24 {C} -j {CH}\nCOMMIT")
    f = fake(saves={("iptables-save", "nat"): legacy})
    masq.teardown("mynet", "abc123", "eth0", [V4])
    # iptables v4 (save+restore) then nft (one list; the table is absent so no write)
    assert f.names() == ["iptables-save", "iptables-restore", "nft"]
    assert f.inputs("iptables-restore")[0] == (
        f"*nat\n-D POSTROUTING -s 10.88.0.2/32 {C} -j {CH}\n"
        f"-D POSTROUTING -s 10.88.0.0/24 {C} -j {CH}\n-F {CH}\n-X {CH}\nCOMMIT\n")


def test_teardown_nothing_there(fake):
    f = fake(available=("iptables-save", "iptables-restore"))
    masq.teardown("mynet", "abc123", "eth0", [V4, V6])  # no ip6tables, no nft: skipped
    assert f.names() == ["iptables-save"]
    f.calls.clear()
    masq.teardown("mynet", "abc123", "eth0", [])         # no ips: still looks in v4 (by chain name)
    assert f.names() == ["iptables-save"]


def _nft_rules(*rules):
    objs = [{"chain": {"family": "inet", "table": masq.TABLE, "name": masq.CHAIN, "handle": 1}}]
    for handle, comment in rules:
        objs.append({"rule": {"family": "inet", "table": masq.TABLE, "chain": masq.CHAIN,
                              "handle": handle, "comment": comment, "expr": []}})
    return {"nftables": objs}


def test_nft_setup_golden(fake):
    mine = masq.nft_comment("mynet", "eth0", "abc123")
    other = masq.nft_comment("mynet", "eth0", "zzz")
    key = f"chain inet {masq.TABLE} {masq.CHAIN}"
    f = fake(nft_lists={key: _nft_rules((7, mine), (8, other))})
    masq.setup("mynet", "abc123", "eth0", [V4, V6], "nftables")
    assert [c[1][:2] for c in f.calls] == [["-j", "list"], ["-f", "-"]]
    t = "inet cni_plugins_masquerade"
    assert f.inputs("nft")[1].splitlines() == [
        f'add table {t} {{ comment "Masquerading for plugins from github.com/containernetworking/plugins" ; }}',
        f'add chain {t} masq_checks {{ comment "Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet" ; }}',
        f"add chain {t} postrouting {{ type nat hook postrouting priority 100 ; }}",
        f"flush chain {t} postrouting",
        f"add rule {t} postrouting ip daddr == 224.0.0.0/4 return",
        f"add rule {t} postrouting ip6 daddr == ff00::/8 return",
        f"add rule {t} postrouting goto masq_checks",
        f"delete rule {t} masq_checks handle 7",
        f'add rule {t} masq_checks ip saddr == 10.88.0.2 ip daddr != 10.88.0.0/24 masquerade comment "{mine}"',
        f'add rule {t} masq_checks ip6 saddr == fd00:88::2 ip6 daddr != fd00:88::/64 masquerade comment "{mine}"',
    ]


def test_nft_teardown_and_gc(fake):
    key = f"chain inet {masq.TABLE} {masq.CHAIN}"
    a = masq.nft_comment("mynet", "eth0", "a")
    b = masq.nft_comment("mynet", "eth1", "b")
    o = masq.nft_comment("othernet", "eth0", "a")
    f = fake(nft_lists={key: _nft_rules((1, a), (2, b), (3, o))}, available=("nft",))
    masq.teardown("mynet", "a", "eth0", [V4])
    assert f.inputs("nft")[-1] == f"delete rule inet {masq.TABLE} {masq.CHAIN} handle 1\n"
    f.calls.clear()
    masq.gc("mynet", [{"containerID": "b", "ifname": "eth1"}])
    assert f.inputs("nft")[-1] == f"delete rule inet {masq.TABLE} {masq.CHAIN} handle 1\n"
    f.calls.clear()
    masq.gc("mynet", [("a", "eth0"), ("b", "eth1")])
    assert f.names() == ["nft"]  # nothing stale: read only


def test_check(fake):
    fake(saves={("iptables-save", "nat"): GO_V4})
    masq.check("mynet", "abc123", "eth0", [V4], "iptables")
    with pytest.raises(masq.MasqCheckError):
        masq.check("mynet", "abc123", "eth0", [ipaddress.ip_interface("10.88.0.3/24")], "iptables")
    with pytest.raises(masq.MasqCheckError):
        masq.check("mynet", "other", "eth0", [V4], "iptables")


def test_ipt_gc(fake):
    other_ch = backend.chain_name("mynet", "dead")
    oc = C.replace("abc123", "dead")
    save = GO_V4.replace("COMMIT", f":{other_ch} - [0:0]\n-A POSTROUTING -s 10.88.0.9/32 {oc} -j {other_ch}\n"
                                   f"-A {other_ch} -d 10.88.0.0/24 {oc} -j ACCEPT\nCOMMIT")
    f = fake(saves={("iptables-save", "nat"): save}, available=("iptables-save", "iptables-restore"))
    masq.gc("mynet", [{"containerID": "abc123", "ifname": "eth0"}])
    assert f.inputs("iptables-restore") == [
        f"*nat\n-D POSTROUTING -s 10.88.0.9/32 {oc} -j {other_ch}\n-F {other_ch}\n-X {other_ch}\nCOMMIT\n"]
    f.calls.clear()
    masq.gc("othernet", [])
    assert f.names() == ["iptables-save"]


def test_restore_failure_is_recomputed(fake):
    """A restore that fails (a concurrent writer) is recomputed from a fresh read, then gives up."""
    f = fake()
    real = f.__class__.__call__
    fails = {"n": 1}

    def flaky(self, argv, input=b"", env=None, timeout=30.0):
        rc, out, err = real(self, argv, input, env, timeout)
        if argv[0].endswith("-restore") and fails["n"] > 0:
            fails["n"] -= 1
            return 1, b"", b"iptables-restore: line 2 failed: Chain already exists."
        return rc, out, err
    f.__class__.__call__ = flaky
    try:
        masq.setup("mynet", "abc123", "eth0", [V4], "iptables")
        assert f.names() == ["iptables-save", "iptables-restore"] * 2
        fails["n"] = 99
        with pytest.raises(backend.RuleError) as ei:
            masq.setup("mynet", "abc123", "eth0", [V4], "iptables")
        assert "Chain already exists" in ei.value.details
    finally:
        f.__class__.__call__ = real
