"""iptables rules written as iptables-nft writes them, checked against iptables-nft itself.

For a corpus holding every rule form the CNI plugins write (masquerade, portmap, firewall), in
both families: iptables-restore (the nf_tables flavour) loads it into a scratch netns; then

- each rule dumped over netlink decodes to exactly the line `iptables-save` prints for it;
- our encoding of that line equals, byte for byte, the expressions iptables-nft stored;
- rules we write over netlink are printed by `iptables-save` as the same lines, and
  `iptables -D` (iptables' own rule comparison) deletes them.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cni.nl import nft_defs as d
from cni.nl.codec import encode

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytestmark = [pytest.mark.root, pytest.mark.tool("iptables-restore", "ip6tables-restore")]

Q = '\\"'
CORPUS = {
    False: {"nat": [
        f'-s 10.88.0.5/32 -m comment --comment "name: {Q}podman{Q} id: {Q}cid1{Q}" -j CNI-abc',
        f'-d 10.88.0.0/16 -m comment --comment "name: {Q}podman{Q} id: {Q}cid1{Q}" -j ACCEPT',
        f'! -d 224.0.0.0/4 -m comment --comment "name: {Q}podman{Q} id: {Q}cid1{Q}" -j MASQUERADE',
        f'-p tcp -m comment --comment "dnat name: {Q}n{Q} id: {Q}c{Q}" -m multiport --dports 8080,9090 -j CNI-abc',
        "-s 10.88.0.0/16 -d 10.1.2.3/32 -p tcp -m tcp --dport 8080 -j MARK --set-xmark 0x2000/0x2000",
        "-s 127.0.0.1/32 -p udp -m udp --dport 53 -j MARK --set-xmark 0x2000/0x2000",
        "-p udp -m udp --dport 53 -j DNAT --to-destination 10.88.0.5:53",
        "-p sctp -m sctp --dport 99 -j DNAT --to-destination 10.88.0.5:99",
        f'-p sctp -m comment --comment "dnat name: {Q}n{Q} id: {Q}c{Q}" -m multiport --dports 99 -j CNI-abc',
        "-m mark --mark 0x2000/0x2000 -j MASQUERADE",
        '-m comment --comment "CNI portfwd masquerade mark" -j MARK --set-xmark 0x2000/0x2000',
        "-m addrtype --dst-type LOCAL -j CNI-abc",
        "-j RETURN",
    ], "filter": [
        "-d 10.88.0.5/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-s 10.88.0.5/32 -j ACCEPT",
        "-i br0 ! -o br0 -j CNI-abc",
        "-i br0 -o br0 -j DROP",
        "-o cni+ -j DROP",
        "! -s 10.0.0.0/8 ! -i br0 -j ACCEPT",
        '-m comment --comment "CNI firewall plugin rules" -j CNI-abc',
        "! -p udp -j RETURN",
    ]},
    True: {"nat": [
        "-s fd00::5/128 -m comment --comment x -j CNI-abc",
        "-d fd00::/64 -m comment --comment x -j ACCEPT",
        "! -d ff00::/8 -m comment --comment x -j MASQUERADE",
        "-s fd00::/64 -d fd00::1/128 -p tcp -m tcp --dport 8080 -j MARK --set-xmark 0x2000/0x2000",
        "-p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd00::5]:80",
        "-m addrtype --dst-type LOCAL -j CNI-abc",
    ], "filter": [
        "-d fd00::5/128 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-i br0 ! -o br0 -j DROP",
    ]},
}


def _restore(ns, v6: bool) -> None:
    text = ""
    for table, specs in CORPUS[v6].items():
        text += f"*{table}\n-N CNI-abc\n" + "".join(f"-A CNI-abc {s}\n" for s in specs) + "COMMIT\n"
    prog = "ip6tables-restore" if v6 else "iptables-restore"
    r = subprocess.run(["ip", "netns", "exec", ns.name, prog, "--noflush"], input=text,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _dump(ns, v6: bool, table: str) -> list:
    code = f"""
import sys; sys.path.insert(0, {os.path.join(ROOT, 'lib')!r})
from cni.nl import nftables as n
from cni.nl.codec import encode
from cni.nl import nft_defs as d
with n.NftSocket() as nl:
    for m in nl._dump(d.NFT_MSG_GETRULE, {'ip6' if v6 else 'ip'!r}, [("NFTA_RULE_TABLE", {table!r})]):
        print(encode(m, d.MESSAGES[m.type], nest_flag=0).hex())
"""
    out = ns.run(sys.executable, "-c", code).stdout.split()
    from cni.nl.codec import decode
    return [decode(bytes.fromhex(h), d.MESSAGES)[0] for h in out]


def _sent_form(e):
    """A dumped expression as it was sent: the kernel adds NFTA_BITWISE_OP (boolean) and pads."""
    from cni.nl.codec import AttrList
    data = e.get("NFTA_EXPR_DATA")
    keep = AttrList((k, v) for k, v in data if k not in ("NFTA_BITWISE_OP", "NFTA_COUNTER_PAD"))
    return AttrList([("NFTA_EXPR_NAME", e.get("NFTA_EXPR_NAME")), ("NFTA_EXPR_DATA", keep)])


@pytest.mark.parametrize("v6", [False, True], ids=["ip", "ip6"])
def test_corpus_decodes_and_encodes_as_iptables_nft(make_netns, v6):
    from cni.fw import ipt_expr, ipt_rule
    ns = make_netns("iptn")
    _restore(ns, v6)
    for table, specs in CORPUS[v6].items():
        msgs = [m for m in _dump(ns, v6, table) if m.attrs.get("NFTA_RULE_CHAIN") == "CNI-abc"]
        assert len(msgs) == len(specs)
        saved = [ln[len("-A CNI-abc "):] for ln in ns.run(
            "ip6tables-save" if v6 else "iptables-save", "-t", table).stdout.splitlines()
            if ln.startswith("-A CNI-abc ")]
        assert saved == specs                      # the corpus is in iptables-save's own form
        for spec, m in zip(specs, msgs):
            exprs = [_sent_form(e) for _, e in m.attrs.get("NFTA_RULE_EXPRESSIONS")]
            rule = ipt_expr.decode(exprs, v6)
            assert rule is not None, spec
            assert rule.text(v6) == spec
            ours, proto = ipt_expr.encode(ipt_rule.parse(spec, v6), v6)
            schema = d.NFTA_EXPR_LIST
            assert schema.pack([("NFTA_LIST_ELEM", e) for e in ours], nest_flag=0) == \
                schema.pack([("NFTA_LIST_ELEM", e) for e in exprs], nest_flag=0), spec
            assert proto == (ipt_rule.PROTOS.get(spec.split("-p ")[1].split()[0], 0)
                             if "-p " in spec and "! -p" not in spec else 0)


@pytest.mark.parametrize("v6", [False, True], ids=["ip", "ip6"])
def test_rules_we_write_are_iptables_rules(make_netns, v6):
    """Written over netlink: iptables-save prints the corpus, and iptables -D removes it."""
    ns = make_netns("iptw")
    code = f"""
import sys; sys.path.insert(0, {os.path.join(ROOT, 'lib')!r})
from cni.fw import iptables_nft as x
from cni.fw.ipt_rule import parse
from cni.nl import nftables as n
corpus = {CORPUS[v6]!r}
b = n.Batch()
for table, specs in corpus.items():
    x.add_table(b, table, {v6!r})
    x.new_chain(b, table, "CNI-abc", {v6!r})
    for s in specs:
        x.append_rule(b, table, "CNI-abc", parse(s, {v6!r}), {v6!r})
x.new_chain(b, "nat", "CNI-post", {v6!r})
x.add_base_chain(b, "nat", "POSTROUTING", {v6!r})
x.insert_rule(b, "nat", "POSTROUTING", parse("-j CNI-post", {v6!r}), {v6!r})
b.commit()
"""
    r = ns.run(sys.executable, "-c", code, check=False)
    assert r.returncode == 0, r.stderr
    save = "ip6tables-save" if v6 else "iptables-save"
    for table, specs in CORPUS[v6].items():
        lines = ns.run(save, "-t", table).stdout.splitlines()
        assert [ln[len("-A CNI-abc "):] for ln in lines if ln.startswith("-A CNI-abc ")] == specs
        assert ":CNI-abc - [0:0]" in lines
    assert "-A POSTROUTING -j CNI-post" in ns.run(save, "-t", "nat").stdout
    ipt = "ip6tables" if v6 else "iptables"
    for table, specs in CORPUS[v6].items():
        for s in specs:
            r = subprocess.run(f"ip netns exec {ns.name} {ipt} -t {table} -D CNI-abc {s}",
                               shell=True, capture_output=True, text=True)
            assert r.returncode == 0, (s, r.stderr)
        assert "-A CNI-abc" not in ns.run(save, "-t", table).stdout


APPLY = f"""
import sys, ipaddress
sys.path.insert(0, {os.path.join(ROOT, 'lib')!r})
from cni.fw import masq
from cni.fw import backend as be

def masq_add(cid, addr, native):
    be.NATIVE = bool(native)       # True: netlink (iptables_nft); False: iptables-restore
    ipi = ipaddress.ip_interface(addr)
    masq._ipt_setup("n", cid, [ipi], ipi.version == 6)

def masq_del(cid, addr, native):
    be.NATIVE = bool(native)
    ipi = ipaddress.ip_interface(addr)
    masq._ipt_teardown("n", cid, [ipi], ipi.version == 6)
"""


def _save(ns, v6=False) -> str:
    out = ns.run("ip6tables-save" if v6 else "iptables-save").stdout
    return "\n".join(ln for ln in out.splitlines() if not ln.startswith("#"))


@pytest.mark.parametrize("addr", ["10.88.0.5/16", "fd00::5/64"])
def test_apply_writes_what_iptables_restore_writes(make_netns, addr):
    nat, txt = make_netns("ipa"), make_netns("ipb")
    v6 = ":" in addr
    for ns, native in ((nat, True), (txt, False)):
        r = ns.run(sys.executable, "-c", APPLY + f"masq_add('c1', {addr!r}, {native}); "
                                                  f"masq_add('c2', {addr!r}, {native}); "
                                                  f"masq_add('c1', {addr!r}, {native})", check=False)
        assert r.returncode == 0, r.stderr
    assert _save(nat, v6) == _save(txt, v6) and "MASQUERADE" in _save(nat, v6)
    # either path deletes what the other wrote
    nat.run(sys.executable, "-c", APPLY + f"masq_del('c1', {addr!r}, False)")
    txt.run(sys.executable, "-c", APPLY + f"masq_del('c1', {addr!r}, True)")
    assert _save(nat, v6) == _save(txt, v6)
    for ns in (nat, txt):
        ns.run(sys.executable, "-c", APPLY + f"masq_del('c2', {addr!r}, True); masq_del('c2', {addr!r}, True)")
        assert "CNI-" not in _save(ns, v6)


def test_apply_concurrent_writers_all_land(make_netns):
    """Two writers racing on one table: the generation check makes each batch recompute."""
    ns = make_netns("ipc")
    code = APPLY + """
import sys
k = int(sys.argv[1])
for i in range(15):
    masq_add(f"c{k}-{i}", f"10.{80 + k}.0.{i + 2}/24", True)
"""
    procs = [subprocess.Popen(["ip", "netns", "exec", ns.name, sys.executable, "-c", code, str(k)],
                              stderr=subprocess.PIPE, text=True) for k in (1, 2)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    save = _save(ns)
    assert save.count("-A POSTROUTING") == 30
    assert save.count("-j MASQUERADE") == 30
