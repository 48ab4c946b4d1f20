"""nf_tables codec: golden bytes captured from `nft -f` (strace -e write=3) and from kernel dumps
(`nft list ruleset` under strace -e read=3), in tests/unit/nft_golden.json.

Requests: the batch our builders make must equal, byte for byte, what nft 1.0.6 sent for the same
ruleset text (`source` in the fixture), with the ACK flag off as nft sends it. Dumps: every
message decodes and re-encodes to the same bytes (the kernel's nf_tables nests carry no
NLA_F_NESTED, so they are re-encoded with nest_flag=0).
"""
from __future__ import annotations

import _socket
import json
import os
import random
import sys

import pytest

from cni.nl import nft_defs as d
from cni.nl import nftables as n
from cni.nl.codec import NLM_F_ACK, decode, encode

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = json.load(open(os.path.join(HERE, "nft_golden.json")))
V4 = lambda s: _socket.inet_pton(_socket.AF_INET, s)    # noqa: E731
V6 = lambda s: _socket.inet_pton(_socket.AF_INET6, s)   # noqa: E731
T = "cni_plugins_masquerade"


def masq_batch() -> n.Batch:
    """GOLDEN['masq']['source'] through our builders."""
    b = n.Batch()
    b.add_table("inet", T, comment="Masquerading for plugins from github.com/containernetworking/plugins")
    b.add_chain("inet", T, "masq_checks",
                comment="Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet")
    b.add_chain("inet", T, "postrouting", hook="postrouting", priority=100, type="nat")
    b.flush_chain("inet", T, "postrouting")
    b.add_rule("inet", T, "postrouting", n.match_addr("daddr", V4("224.0.0.0"), 4) + [n.verdict(d.NFT_RETURN)])
    b.add_rule("inet", T, "postrouting", n.match_addr("daddr", V6("ff00::"), 8) + [n.verdict(d.NFT_RETURN)])
    b.add_rule("inet", T, "postrouting", [n.verdict(d.NFT_GOTO, "masq_checks")])
    b.add_rule("inet", T, "masq_checks",
               n.match_addr("saddr", V4("10.88.0.5"))
               + n.match_addr("daddr", V4("10.88.0.5"), 16, negate=True, inet=False) + [n.masq()],
               comment="abc, net: n, if: eth0, id: x")
    b.add_rule("inet", T, "masq_checks",
               n.match_addr("saddr", V6("fd00::5"))
               + n.match_addr("daddr", V6("fd00::5"), 64, negate=True, inet=False) + [n.masq()],
               comment="abc2")
    return b


def dnat_batch() -> n.Batch:
    """GOLDEN['dnat_ct_fib_delete']['source'] through our builders."""
    b = n.Batch()
    b.add_table("ip", "cnit_t")
    b.add_chain("ip", "cnit_t", "c1")
    b.add_chain("ip", "cnit_t", "pre", hook="prerouting", priority=-100, type="nat", policy=d.NF_ACCEPT)
    b.add_rule("ip", "cnit_t", "c1", [
        n.meta(d.NFT_META_L4PROTO), n.cmp(d.NFT_CMP_EQ, b"\x06"),
        n.payload(d.NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2), n.cmp(d.NFT_CMP_EQ, (8080).to_bytes(2, "big")),
        n.counter(), n.immediate(V4("10.0.0.2"), 1), n.immediate((80).to_bytes(2, "big"), 2),
        n.nat(d.NFT_NAT_DNAT, d.NFPROTO_IPV4, addr_reg=1, proto_reg=2,
              flags=d.NF_NAT_RANGE_PROTO_SPECIFIED)])
    b.add_rule("ip", "cnit_t", "pre", [n.ct(d.NFT_CT_STATE), n.bitwise(b"\x06\0\0\0", bytes(4)),
                                       n.cmp(d.NFT_CMP_NEQ, bytes(4)), n.verdict(d.NF_ACCEPT)])
    b.add_rule("ip", "cnit_t", "pre", [n.fib(d.NFT_FIB_RESULT_ADDRTYPE, d.NFTA_FIB_F_DADDR),
                                       n.cmp(d.NFT_CMP_EQ, (2).to_bytes(4, sys.byteorder)),
                                       n.verdict(d.NFT_JUMP, "c1")])
    b.delete_rule("ip", "cnit_t", "c1", 7)
    return b


@pytest.mark.parametrize("name,build", [("masq", masq_batch), ("dnat_ct_fib_delete", dnat_batch)])
def test_batch_bytes_equal_nft(name, build):
    ref = bytes.fromhex(GOLDEN[name]["hex"])
    ours = build().encode(0, ack=False)
    if ours != ref:   # show the first differing message for a readable failure
        for a, b in zip(n.decode_batch(ref), n.decode_batch(ours)):
            assert b == a
    assert ours == ref


@pytest.mark.parametrize("name", ["masq", "dnat_ct_fib_delete"])
def test_batch_decode_reencode(name):
    ref = bytes.fromhex(GOLDEN[name]["hex"])
    msgs = decode(ref, d.MESSAGES)
    assert msgs[0].type == d.NFNL_MSG_BATCH_BEGIN and msgs[-1].type == d.NFNL_MSG_BATCH_END
    assert msgs[0].hdr["res_id"] == d.NFNL_SUBSYS_NFTABLES
    assert b"".join(encode(m, d.MESSAGES[m.type]) for m in msgs) == ref


def test_batch_acks_every_operation_not_the_frame():
    msgs = decode(masq_batch().encode(100), d.MESSAGES)
    assert [m.seq for m in msgs] == list(range(100, 100 + len(msgs)))
    assert not msgs[0].flags & NLM_F_ACK and not msgs[-1].flags & NLM_F_ACK
    assert all(m.flags & NLM_F_ACK for m in msgs[1:-1])


@pytest.mark.parametrize("kind", ["dump_tables", "dump_chains", "dump_rules"])
def test_kernel_dumps_reencode_byte_for_byte(kind):
    raw = bytes.fromhex(GOLDEN[kind])
    msgs = decode(raw, d.MESSAGES)
    assert msgs
    assert b"".join(encode(m, d.MESSAGES[m.type], nest_flag=0) for m in msgs) == raw


def test_dumped_rules_decode_to_handles_comments_and_expressions():
    msgs = decode(bytes.fromhex(GOLDEN["dump_rules"]), d.MESSAGES)
    rules = [n.Rule(m) for m in msgs]
    assert [(r.table, r.chain) for r in rules][:3] == [(T, "masq_checks")] * 2 + [(T, "postrouting")]
    assert all(isinstance(r.handle, int) and r.handle > 0 for r in rules)
    assert rules[0].comment.endswith("net: net1, if: eth0, id: cid1")
    assert [e.get("NFTA_EXPR_NAME") for e in rules[0].exprs] == \
        ["meta", "cmp", "payload", "cmp", "payload", "cmp", "masq"]
    assert rules[-1].comment is None
    chains = [n._Chain(m) for m in decode(bytes.fromhex(GOLDEN["dump_chains"]), d.MESSAGES)]
    assert {c.name for c in chains} == {"masq_checks", "postrouting"}
    hook = [c for c in chains if c.name == "postrouting"][0].hook
    assert hook.get("NFTA_HOOK_HOOKNUM") == d.NF_INET_POST_ROUTING and hook.get("NFTA_HOOK_PRIORITY") == 100


def test_udata_comment_round_trip_and_limits():
    for text in ("", "x", "name: \"n\" id: \"c\"", "é" * 100):
        assert n.comment_of(n.udata_comment(text)) == text
    assert n.udata_comment("abc") == b"\x00\x04abc\x00"
    with pytest.raises(ValueError):
        n.udata_comment("a\0b")
    with pytest.raises(ValueError):
        n.udata_comment("x" * 255)
    assert n.comment_of(b"") is None and n.comment_of(b"\x01\x02ab") is None


def _eval(exprs, packet_addr: bytes, field_off: int) -> bool:
    """Evaluate a match_addr expression list on one address (nfproto guard assumed true)."""
    reg = b""
    for e in exprs:
        name, data = e.get("NFTA_EXPR_NAME"), e.get("NFTA_EXPR_DATA")
        if name == "meta":
            continue
        if name == "payload":
            off = data.get("NFTA_PAYLOAD_OFFSET") - field_off
            reg = packet_addr[off:off + data.get("NFTA_PAYLOAD_LEN")]
        elif name == "bitwise":
            mask = data.get("NFTA_BITWISE_MASK").get("NFTA_DATA_VALUE")
            reg = bytes(a & b for a, b in zip(reg, mask))
        elif name == "cmp":
            want = data.get("NFTA_CMP_DATA").get("NFTA_DATA_VALUE")
            if want == b"\x02" or want == b"\x0a":   # the nfproto guard
                continue
            ok = reg == want
            if data.get("NFTA_CMP_OP") == d.NFT_CMP_NEQ:
                ok = not ok
            if not ok:
                return False
    return True


def test_match_addr_matches_exactly_the_prefix():
    import ipaddress
    rnd = random.Random(7)
    for _ in range(300):
        v6 = rnd.random() < 0.5
        bits = 128 if v6 else 32
        plen = rnd.randint(0, bits)
        net_addr = rnd.getrandbits(bits).to_bytes(bits // 8, "big")
        net = ipaddress.ip_network((net_addr, plen), strict=False)
        exprs = n.match_addr("daddr", net_addr, plen, inet=False)
        off = 24 if v6 else 16
        for _ in range(5):
            cand = rnd.getrandbits(bits).to_bytes(bits // 8, "big")
            if rnd.random() < 0.5:   # force some inside
                cand = (int.from_bytes(net.network_address.packed, "big")
                        | (int.from_bytes(cand, "big") & int(net.hostmask))).to_bytes(bits // 8, "big")
            inside = ipaddress.ip_address(cand) in net
            assert _eval(exprs, cand, off) == inside
            neg = n.match_addr("daddr", net_addr, plen, negate=True, inet=False)
            assert _eval(neg, cand, off) == (not inside)


def test_match_addr_refuses_bad_input():
    with pytest.raises(ValueError):
        n.match_addr("saddr", b"\x01\x02\x03", 8)
    with pytest.raises(ValueError):
        n.match_addr("saddr", V4("10.0.0.1"), 33)


def test_error_description_names_the_operation():
    b = masq_batch()
    assert n._describe(b, 1).startswith("add table cni_plugins_masquerade")
    assert n._describe(b, 4) == "delete rule cni_plugins_masquerade postrouting"
    assert n._describe(b, 0) == "nf_tables batch"


def test_portmap_batches_equal_nft_for_our_text():
    """GOLDEN['portmap_v4'/'portmap_v6']['source'] is what cni.fw.portmap.nft_lines writes."""
    from cni.fw import nft_native as nn
    ms = [nn.Mapping(6, 8080, 80), nn.Mapping(17, 5353, 53, V4("10.1.2.3")), nn.Mapping(132, 9090, 90)]
    assert nn.portmap_batch("cid-1", ms, V4("10.88.0.5")).encode(0, ack=False) == \
        bytes.fromhex(GOLDEN["portmap_v4"]["hex"])
    assert nn.portmap_batch("cid-1", ms, V6("fd00::5"), masq_all=True).encode(0, ack=False) == \
        bytes.fromhex(GOLDEN["portmap_v6"]["hex"])


@pytest.mark.parametrize("args", [(1, 80, 80), (6, 0, 80), (6, 80, 65536), (6, 80, 80, b"\x01\x02")])
def test_portmap_mapping_refuses_bad_values(args):
    from cni.fw import nft_native as nn
    with pytest.raises(ValueError):
        nn.Mapping(*args)


@pytest.mark.parametrize("case", GOLDEN["iptables_nft_rules"], ids=lambda c: c["spec"][:40])
def test_iptables_nft_rule_messages_equal_iptables_restore(case):
    """Each NEWRULE iptables-restore (nf_tables flavour, 1.8.9) sent, rebuilt from the rule text."""
    from cni.fw import iptables_nft as x
    from cni.fw.ipt_expr import decode as decode_rule
    from cni.fw.ipt_rule import parse
    from cni.nl.codec import Msg
    v6 = case["family"] == "ip6"
    rule = parse(case["spec"], v6)
    assert rule.text(v6) == case["spec"]
    msg = Msg(d.msg_type(d.NFT_MSG_NEWRULE), case["flags"], case["seq"], 0,
              {"family": d.FAMILIES[case["family"]], "version": 0, "res_id": 0},
              x.rule_attrs(case["table"], case["chain"], rule, v6))
    ref = bytes.fromhex(case["hex"])
    assert encode(msg, d.MESSAGES[msg.type]) == ref
    back = decode_rule([e for _, e in decode(ref, d.MESSAGES)[0].attrs.get("NFTA_RULE_EXPRESSIONS")], v6)
    assert back == rule


@pytest.mark.parametrize("spec", [
    "-j", "-s 10.0.0.1 -j", '-m comment --comment "x', "-m comment --comment x", "-p gre -j ACCEPT",
    "-m tcp --dport 80 -j ACCEPT", "-m string --string x -j DROP", "-i a/b -j DROP",
    "-i " + "x" * 16 + " -j DROP", "-j DNAT --to-destination 10.0.0.1", "-j MARK --set-mark 1",
    "-m mark --mark zz -j ACCEPT", "-p tcp -m multiport --dports " + ",".join(["1"] * 16) + " -j ACCEPT",
    "-m conntrack --ctstate BOGUS -j ACCEPT", "-s 10.0.0.0/33 -j ACCEPT", "-j LOG --log-prefix x",
    "-m comment --comment " + "x" * 256 + " -j ACCEPT", "-m addrtype --src-type LOCAL -j ACCEPT"])
def test_iptables_nft_parse_refuses_what_it_does_not_translate(spec):
    from cni.fw import ipt_rule as x
    with pytest.raises(x.Unsupported):
        x.parse(spec, False)


def test_iptables_nft_tokens_follow_iptables_save_quoting():
    from cni.fw import ipt_rule as x
    assert x.tokens('-m comment --comment "a \\"b\\" c" -j X') == \
        ["-m", "comment", "--comment", 'a "b" c', "-j", "X"]
    assert x.tokens('--comment ""') == ["--comment", ""]
