"""firewall backend nftables without a kernel: the ADD batch against golden bytes from `nft -f`
(tests/unit/nft_firewall_golden.json, captured with strace -e write=3 for `source`), the batch
against an existing table (nothing duplicated, stale rules replaced), the plugin's backend
choice and config errors, and DEL reaching both rule backends."""
from __future__ import annotations

import _socket
import json
import os
import sys

import pytest

from cni import skel
from cni.errors import CNIError
from cni.fw import backend as be
from cni.fw import firewall, nft_firewall
from cni.nl import nft_defs as d
from cni.nl import nftables as n

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "plugins"))
import firewall as firewall_plugin  # noqa: E402

GOLDEN = json.load(open(os.path.join(HERE, "nft_firewall_golden.json")))
A4, A6 = _socket.inet_pton(_socket.AF_INET, "10.99.0.7"), _socket.inet_pton(_socket.AF_INET6, "fd99::7")
C = "h-1, net: n, if: eth0, id: c1"


class FakeRule:
    """What NftSocket.rules() yields, for the parts add_batch reads."""

    def __init__(self, chain, handle, comment=None, exprs=()):
        self.chain, self.handle, self.comment, self.exprs = chain, handle, comment, list(exprs)


def _ops(batch) -> list:
    """(message, chain, comment) of each operation."""
    out = []
    for m in n.decode_batch(batch.encode(0))[1:-1]:
        a = m.attrs
        chain = a.get("NFTA_RULE_CHAIN") or a.get("NFTA_CHAIN_NAME")
        out.append((m.type & 0xFF, chain, n.comment_of(a.get("NFTA_RULE_USERDATA"))))
    return out


def test_add_batch_equals_nft_bytes():
    b = nft_firewall.add_batch([], set(), [A4, A6], C, "h-1", bridge="cnitbr0", isolated=True)
    assert b.encode(0, ack=False) == bytes.fromhex(GOLDEN["batch"])


CHAINS = {"forward", "allow", "admin", "isolation_stage_1", "isolation_stage_2"}


def test_add_batch_against_an_existing_table():
    """Admin jump and isolation rules present: not added again; this instance's old rules
    deleted in the same batch as the new ones go in; another container's rules untouched."""
    have = [FakeRule(nft_firewall.ALLOW, 5, nft_firewall.ADMIN_COMMENT,
                     [n.verdict(d.NFT_JUMP, nft_firewall.ADMIN)])]
    have += [FakeRule(c, 6, m) for c, m, _ in nft_firewall.isolation_rules("cnitbr0", False)]
    have += [FakeRule(nft_firewall.ALLOW, 7, C), FakeRule(nft_firewall.ALLOW, 8, C),
             FakeRule(nft_firewall.ALLOW, 9, "h-2, net: n, if: eth0, id: c2")]
    ops = _ops(nft_firewall.add_batch(have, CHAINS, [A4], C, "h-1", bridge="cnitbr0"))
    rules = [(c, m) for t, c, m in ops if t == d.NFT_MSG_NEWRULE]
    assert rules == [("forward", nft_firewall.POLICY_COMMENT), ("forward", nft_firewall.ALLOW_COMMENT),
                     ("allow", C), ("allow", C)]
    dels = [m for m in n.decode_batch(nft_firewall.add_batch(have, CHAINS, [A4], C, "h-1").encode(0))
            if m.type & 0xFF == d.NFT_MSG_DELRULE and m.attrs.get("NFTA_RULE_HANDLE")]
    assert sorted(m.attrs.get("NFTA_RULE_HANDLE") for m in dels) == [7, 8]
    # isolated on a bridge that had same-bridge: only its extra drop is added
    ops = _ops(nft_firewall.add_batch(have, CHAINS, [A4], C, "h-1", bridge="cnitbr0", isolated=True))
    assert [c for t, c, m in ops if t == d.NFT_MSG_NEWRULE and m and "(ingressPolicy: isolated)" in m] == ["isolation_stage_1"]
    # another admin chain: its jump is inserted first
    b = nft_firewall.add_batch(have, CHAINS, [A4], C, "h-1", admin="MY-ADMIN")
    new = [(m.flags, m.attrs.get("NFTA_RULE_CHAIN")) for m in n.decode_batch(b.encode(0))
           if m.type & 0xFF == d.NFT_MSG_NEWRULE and "MY-ADMIN" in str(m.attrs)]
    assert len(new) == 1 and new[0][1] == "allow" and not new[0][0] & 0x800   # no NLM_F_APPEND


def test_steady_state_add_only_adds_rules():
    """forward as written, every chain there: the batch is the table (a no-op) and new rules;
    no chain or rule is rewritten (the kernel would free the old one after an RCU grace
    period, which closing the socket waits for)."""
    have = [FakeRule("forward", 1, None, [n.verdict(d.NFT_JUMP, "isolation_stage_1")]),
            FakeRule("forward", 2, None, [n.verdict(d.NFT_JUMP, "allow")]),
            FakeRule("allow", 3, None, [n.verdict(d.NFT_JUMP, "admin")])]
    ops = _ops(nft_firewall.add_batch(have, CHAINS, [A4], C, "h-1"))
    assert [(t, c) for t, c, _ in ops] == [(d.NFT_MSG_NEWTABLE, None), (d.NFT_MSG_NEWRULE, "allow"),
                                           (d.NFT_MSG_NEWRULE, "allow")]
    have.insert(1, FakeRule("forward", 4, None, [n.verdict(d.NF_ACCEPT)]))   # someone's accept
    ops = _ops(nft_firewall.add_batch(have, CHAINS, [A4], C, "h-1"))
    assert [(t, c) for t, c, _ in ops][:4] == [(d.NFT_MSG_NEWTABLE, None), (d.NFT_MSG_DELRULE, "forward"),
                                               (d.NFT_MSG_NEWRULE, "forward"), (d.NFT_MSG_NEWRULE, "forward")]


def _add(conf: dict):
    """The plugin's ADD after skel has parsed the config (netns and env checks left out)."""
    return firewall_plugin.add(skel.Args("ADD", "ctr1", "/x", "eth0"), firewall_plugin.Config.load(conf))


PREV = {"cniVersion": "1.0.0", "interfaces": [{"name": "cnitbr0"}, {"name": "veth0"},
                                              {"name": "eth0", "sandbox": "/x"}],
        "ips": [{"address": "10.99.0.7/24", "interface": 2}]}


@pytest.fixture
def calls(monkeypatch):
    """Record the nft_firewall and iptables writes instead of making them."""
    seen = []
    monkeypatch.setattr(nft_firewall, "add", lambda *a, **k: seen.append(("nft add", a, k)))
    monkeypatch.setattr(nft_firewall, "delete", lambda *a, **k: seen.append(("nft delete", a, k)))
    monkeypatch.setattr(firewall, "add", lambda *a, **k: seen.append(("ipt add", a, k)))
    monkeypatch.setattr(firewall, "delete", lambda *a, **k: seen.append(("ipt delete", a, k)))
    monkeypatch.setattr(be, "run", lambda *a, **k: pytest.fail("a tool ran"))
    from cni.meta import firewalld
    monkeypatch.setattr(firewalld, "is_running", lambda: False)
    return seen


def test_plugin_backend_choice(calls, monkeypatch):
    conf = {"cniVersion": "1.0.0", "name": "n", "type": "firewall", "prevResult": PREV}
    firewall_plugin.add(skel.Args("ADD", "ctr1", "/x", "eth0"),
                        firewall_plugin.Config.load(dict(conf, backend="nftables")))
    assert calls[-1][0] == "nft add"
    args, kw = calls[-1][1], calls[-1][2]
    assert args[0] == [A4] and args[1].endswith(", net: n, if: eth0, id: ctr1") and kw["bridge"] == ""
    monkeypatch.setattr(be, "have_iptables", lambda v6=False: False)     # auto: no iptables tools
    firewall_plugin.add(skel.Args("ADD", "ctr1", "/x", "eth0"), firewall_plugin.Config.load(conf))
    assert calls[-1][0] == "nft add"
    monkeypatch.setattr(be, "have_iptables", lambda v6=False: True)      # auto: iptables
    firewall_plugin.add(skel.Args("ADD", "ctr1", "/x", "eth0"), firewall_plugin.Config.load(conf))
    assert calls[-1][0] == "ipt add"
    calls.clear()
    monkeypatch.setattr(be, "NATIVE", None)
    monkeypatch.setattr(be, "nft_table_may_exist", lambda fam, t: t == nft_firewall.TABLE)
    firewall_plugin.delete(skel.Args("DEL", "ctr1", "", "eth0"),
                           firewall_plugin.Config.load(dict(conf, backend="iptables")))
    assert [c[0] for c in calls] == ["ipt delete", "nft delete"]          # both, whatever is set
    assert calls[1][1][0] == firewall.masq.hash_for_instance("n", "eth0", "ctr1")


@pytest.mark.parametrize("extra,field", [
    ({"backend": "nft"}, "backend"),
    ({"backend": "nftables", "iptablesAdminChainName": "allow"}, "iptablesAdminChainName"),
    ({"backend": "nftables", "iptablesAdminChainName": "forward"}, "iptablesAdminChainName"),
    ({"backend": "nftables", "ingressPolicy": "isolated",
      "prevResult": dict(PREV, interfaces=[{"name": ""}])}, "bridge"),
])
def test_plugin_config_errors_write_nothing(calls, extra, field):
    conf = {"cniVersion": "1.0.0", "name": "n", "type": "firewall", "prevResult": PREV, **extra}
    with pytest.raises(CNIError) as ei:
        _add(conf)
    assert ei.value.code == 7 and field in f"{ei.value.msg} {ei.value.details}", ei.value
    assert calls == []


def test_update_batch_switches_policy_and_admin():
    iso = nft_firewall.isolation_rules("cnitbr0", True)
    other = nft_firewall.isolation_rules("cnitbr1", True)
    have = [FakeRule("allow", 1, None, [n.verdict(d.NFT_JUMP, "OTHER")]),
            FakeRule("allow", 2, None, [n.verdict(d.NFT_JUMP, "admin")]),
            FakeRule("allow", 3, C), FakeRule("allow", 4, C)]
    have += [FakeRule(c, 10 + i, m) for i, (c, m, _) in enumerate(iso)]
    have += [FakeRule(c, 20 + i, m) for i, (c, m, _) in enumerate(other)]

    def deleted(batch):
        return sorted(m.attrs.get("NFTA_RULE_HANDLE") for m in n.decode_batch(batch.encode(0))
                      if m.type & 0xFF == d.NFT_MSG_DELRULE and m.attrs.get("NFTA_RULE_HANDLE"))
    same = nft_firewall.update_batch(have, CHAINS, [A4], C, "h-1", bridge="cnitbr0", policy="same-bridge")
    assert deleted(same) == [2, 3, 4, 12]             # admin jump (moved first), old rules, isolated drop
    ops = _ops(same)
    assert (d.NFT_MSG_NEWRULE, "allow", nft_firewall.ADMIN_COMMENT) in ops
    assert not [o for o in ops if o[0] == d.NFT_MSG_NEWRULE and o[1].startswith("isolation")]
    assert deleted(nft_firewall.update_batch(have, CHAINS, [A4], C, "h-1", bridge="cnitbr0",
                                             policy="open")) == [2, 3, 4, 10, 11, 12]
    have[0], have[1] = have[1], have[0]               # admin already first: stays
    assert deleted(nft_firewall.update_batch(have, CHAINS, [A4], C, "h-1", bridge="cnitbr0",
                                             policy="isolated")) == [3, 4]
