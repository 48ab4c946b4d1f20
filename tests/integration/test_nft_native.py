"""nf_tables over netlink against the real kernel, each test in scratch network namespaces.

- our batch equals, byte for byte, what `nft -f` sends for the text our nft backend writes;
- the native masquerade ruleset reads (`nft -j list ruleset`) exactly as the `nft -f` one;
- either side deletes what the other added (rules are found by comment prefix);
- a batch with one failing operation leaves nothing (atomic), and fails fast;
- SIGKILL at random instants of a busy add/delete loop never leaves a half-written ruleset;
- masquerade written over netlink really rewrites the source of traffic leaving the host.
"""
from __future__ import annotations

import ast
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from helpers import nft_f_batches, routed_trio

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB = os.path.join(ROOT, "lib")
pytestmark = [pytest.mark.root, pytest.mark.tool("nft")]

PRELUDE = f"""
import sys, ipaddress
sys.path.insert(0, {LIB!r})
from cni.fw import masq, nft_native as nn
from cni.nl import nftables as n, nft_defs as d
def ips(*a): return [ipaddress.ip_interface(x) for x in a]
def setup(net, ifn, cid, *a):
    nn.setup(ips(*a), masq.nft_comment(net, ifn, cid), masq.hash_for_instance(net, ifn, cid))
def teardown(net, ifn, cid):
    nn.teardown(masq.hash_for_instance(net, ifn, cid))
"""


def py(ns, code: str, check: bool = True) -> subprocess.CompletedProcess:
    r = ns.run(sys.executable, "-c", PRELUDE + code, check=False, timeout=30)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def ruleset(ns) -> list:
    """`nft -j list ruleset` without handles and the metainfo header."""
    data = json.loads(ns.run("nft", "-j", "list", "ruleset").stdout or '{"nftables": []}')
    out = []
    for obj in data["nftables"]:
        if "metainfo" in obj:
            continue
        for v in obj.values():
            v.pop("handle", None)
        out.append(obj)
    return out


def text_setup(ns, net, ifn, cid, *addrs):
    py(ns, f"""
from cni.fw import nft_text as t
lines = masq.nft_setup_lines({net!r}, {cid!r}, {ifn!r}, ips(*{addrs!r}), [])
t.apply(lines)
""")


@pytest.mark.tool("strace")
def test_live_batch_bytes_equal_nft_for_our_text(make_netns, tmp_path):
    """Capture what nft sends for our nft-text masquerade, compare with our batch."""
    ns = make_netns("nftb")
    src = tmp_path / "rules.nft"
    r = py(ns, f"""
lines = masq.nft_setup_lines("cnit-net", "cid-1", "eth0", ips("10.99.0.7/24", "fd99::7/64"), [])
open({str(src)!r}, "w").write("\\n".join(lines) + "\\n")
b = nn.setup_batch(ips("10.99.0.7/24", "fd99::7/64"), masq.nft_comment("cnit-net", "eth0", "cid-1"), [])
print(b.encode(0, ack=False).hex())
""")
    ours = bytes.fromhex(r.stdout.strip())
    chunks = nft_f_batches(ns, str(src), str(tmp_path / "trace"))
    assert chunks and chunks[-1] == ours


def test_native_ruleset_reads_as_nft_text_one(make_netns):
    a, b = make_netns("nfta"), make_netns("nftb")
    for args in (("n1", "eth0", "c1", "10.99.0.5/24", "fd99::5/64"), ("n1", "eth1", "c2", "10.98.0.9/16")):
        py(a, f"setup(*{args!r})")
        text_setup(b, *args)
    assert ruleset(a) == ruleset(b)
    assert len([o for o in ruleset(a) if "rule" in o]) == 6


def test_each_side_deletes_what_the_other_added(make_netns):
    ns = make_netns("nftx")
    text_setup(ns, "n1", "eth0", "c1", "10.99.0.5/24")
    py(ns, "setup('n1', 'eth0', 'c2', '10.99.0.6/24')")
    py(ns, "teardown('n1', 'eth0', 'c1')")                  # native removes the text rule
    left = ns.run("nft", "list", "chain", "inet", "cni_plugins_masquerade", "masq_checks").stdout
    assert "10.99.0.5" not in left and "10.99.0.6" in left
    py(ns, """
from cni.fw import nft_text as t
rs = masq._nft_find(masq.hash_for_instance('n1', 'eth0', 'c2'))
t.apply([t.delete_rule(r) for r in rs])
""")                                                        # nft -f removes the native rule
    left = ns.run("nft", "list", "chain", "inet", "cni_plugins_masquerade", "masq_checks").stdout
    assert "10.99.0" not in left
    py(ns, "teardown('n1', 'eth0', 'c2')")                  # nothing to do: fine


def test_setup_is_idempotent_and_replaces_stale_rules(make_netns):
    ns = make_netns("nfti")
    py(ns, "setup('n1', 'eth0', 'c1', '10.99.0.5/24')")
    py(ns, "setup('n1', 'eth0', 'c1', '10.99.0.8/24')")
    rules = [o["rule"] for o in ruleset(ns) if "rule" in o and o["rule"]["chain"] == "masq_checks"]
    assert len(rules) == 1 and "10.99.0.8" in json.dumps(rules[0])
    r = py(ns, "print(nn.count(masq.nft_comment('n1', 'eth0', 'c1')))")
    assert r.stdout.strip() == "1"


def test_gc_keeps_only_valid_attachments(make_netns):
    ns = make_netns("nftg")
    py(ns, "setup('n1', 'eth0', 'c1', '10.99.0.5/24'); setup('n1', 'eth0', 'c2', '10.99.0.6/24');"
           "setup('n2', 'eth0', 'c3', '10.97.0.6/24')")
    py(ns, "nn.gc(masq.hash_for_network('n1') + '-', {masq.nft_comment('n1', 'eth0', 'c2')})")
    left = ns.run("nft", "list", "chain", "inet", "cni_plugins_masquerade", "masq_checks").stdout
    assert "10.99.0.5" not in left and "10.99.0.6" in left and "10.97.0.6" in left


def test_failing_batch_applies_nothing_and_fails_fast(make_netns):
    ns = make_netns("nftf")
    t0 = time.monotonic()
    r = py(ns, """
b = nn.setup_batch(ips('10.99.0.5/24'), 'x', [])
b.delete_rule('inet', nn.TABLE, nn.CHAIN, 999999)     # no such handle: the whole batch fails
try:
    b.commit()
except OSError as exc:
    print('ERR', exc.errno, exc)
""")
    assert time.monotonic() - t0 < 10
    assert r.stdout.startswith("ERR 2 "), r.stdout
    assert "delete rule" in r.stdout
    assert ruleset(ns) == []


def test_sigkill_never_leaves_half_a_ruleset(make_netns):
    """Kill a busy add/delete loop at random instants: each batch is all or nothing."""
    ns = make_netns("nftk")
    code = PRELUDE + """
import itertools
for i in itertools.count():
    cid = 'c%d' % (i % 5)
    setup('n1', 'eth0', cid, '10.99.0.%d/24' % (i % 200 + 1), 'fd99::%x/64' % (i % 200 + 1))
    if i % 3 == 0:
        teardown('n1', 'eth0', 'c%d' % ((i + 2) % 5))
"""
    rnd = random.Random(11)
    for _ in range(12):
        p = subprocess.Popen(["ip", "netns", "exec", ns.name, sys.executable, "-c", code],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.15 + rnd.random() * 0.4)
        p.send_signal(signal.SIGKILL)
        p.wait()
        rs = ruleset(ns)
        rules = [o["rule"] for o in rs if "rule" in o]
        post = [r for r in rules if r["chain"] == "postrouting"]
        checks = [r for r in rules if r["chain"] == "masq_checks"]
        if rs:
            assert len(post) == 3, rs
        per_comment: dict = {}
        for r in checks:
            per_comment[r["comment"]] = per_comment.get(r["comment"], 0) + 1
        assert all(v == 2 for v in per_comment.values()), per_comment   # v4 and v6 together
    for i in range(5):
        py(ns, f"teardown('n1', 'eth0', 'c{i}')")
    rules = [o for o in ruleset(ns) if "rule" in o and o["rule"]["chain"] == "masq_checks"]
    assert rules == []


@pytest.mark.tool("ping")
def test_native_masquerade_rewrites_source(make_netns):
    """container (10.99.0.2) -> host (routes) -> outside (10.200.0.2): outside sees the host."""
    cont, host, out = make_netns("mc"), make_netns("mh"), make_netns("mo")
    routed_trio(cont, host, out, "m")               # no route back to 10.99.0.0/24
    assert cont.run("ping", "-c1", "-W1", "10.200.0.2", check=False).returncode != 0
    py(host, "setup('n1', 'eth0', 'c1', '10.99.0.2/24')")
    assert cont.run("ping", "-c1", "-W2", "10.200.0.2", check=False).returncode == 0
    py(host, "teardown('n1', 'eth0', 'c1')")
    assert cont.run("ping", "-c1", "-W1", "10.200.0.2", check=False).returncode != 0


PM = """
import _socket
def mappings():
    return [nn.Mapping(6, 8080, 80), nn.Mapping(17, 5353, 53, _socket.inet_pton(2, '10.1.2.3')),
            nn.Mapping(132, 9090, 90)]
V4, V6 = _socket.inet_pton(2, '10.99.0.2'), _socket.inet_pton(10, 'fd99::2')
"""


def test_native_portmap_reads_as_nft_text_one(make_netns):
    a, b = make_netns("pma"), make_netns("pmb")
    py(a, PM + "nn.portmap_add('cid-1', mappings(), [V4, V6])")
    py(b, """
from cni.fw import portmap as p, nft_text as t
from cni.fw.portmap_config import normalize_mappings
ms = normalize_mappings([{'hostPort': 8080, 'containerPort': 80, 'protocol': 'tcp'},
    {'hostPort': 5353, 'containerPort': 53, 'protocol': 'udp', 'hostIP': '10.1.2.3'},
    {'hostPort': 9090, 'containerPort': 90, 'protocol': 'sctp'}])
for ipi in ips('10.99.0.2/24', 'fd99::2/64'):
    t.apply(p.nft_lines('cid-1', ms, ipi, snat=True))
""")
    assert ruleset(a) == ruleset(b)
    py(a, PM + "nn.portmap_add('cid-1', mappings(), [V4, V6])")     # idempotent: stale replaced
    assert ruleset(a) == ruleset(b)
    r = py(a, PM + "print(repr((nn.portmap_count('ip', 'cid-1'), nn.portmap_count('ip6', 'cid-1'))))")
    assert ast.literal_eval(r.stdout) == ({"hostports": 3, "masquerading": 2},
                                          {"hostports": 2, "masquerading": 1})
    py(a, PM + "nn.portmap_delete('cid-1'); nn.portmap_delete('cid-1')")
    left = [o for o in ruleset(a) if "rule" in o and o["rule"]["chain"] in nn_chains()]
    assert left == []


def nn_chains():
    return ("hostports", "hostip_hostports", "masquerading")


def test_native_portmap_dnat_reaches_the_container(make_netns):
    cont, host, out = make_netns("pc"), make_netns("ph"), make_netns("po")
    routed_trio(cont, host, out, "p", route_back=True)
    server = subprocess.Popen(["ip", "netns", "exec", cont.name, sys.executable, "-c", """
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', 80)); s.listen(4); s.settimeout(20)
for _ in range(2):
    c, _ = s.accept(); c.sendall(b'hello'); c.close()
"""])
    client = """
import socket, sys, time
for _ in range(50):
    try:
        c = socket.create_connection(('10.200.0.1', 8080), timeout=1); print(c.recv(10).decode()); break
    except OSError as exc:
        err = exc; time.sleep(0.1)
else:
    print('FAIL', err)
"""
    try:
        py(host, PM + "nn.portmap_add('cid-1', mappings(), [V4])")
        r = out.run(sys.executable, "-c", client, timeout=30)
        assert r.stdout.strip() == "hello"
        py(host, PM + "nn.portmap_delete('cid-1')")
        r = out.run(sys.executable, "-c", client.replace("range(50)", "range(3)"), timeout=30)
        assert r.stdout.startswith("FAIL")
    finally:
        server.kill()
        server.wait()


def test_setup_writes_the_skeleton_only_when_it_is_not_in_place(make_netns):
    """A second ADD adds its rule only (rewriting the chains costs an RCU grace period); a
    skeleton someone damaged is rebuilt."""
    ns = make_netns("nfts")
    py(ns, "setup('n1', 'eth0', 'c1', '10.99.0.5/24')")
    handles = [o["rule"]["handle"] for o in json.loads(ns.run("nft", "-j", "list", "ruleset").stdout)
               ["nftables"] if "rule" in o and o["rule"]["chain"] == "postrouting"]
    py(ns, "setup('n1', 'eth0', 'c2', '10.99.0.6/24')")
    after = [o["rule"]["handle"] for o in json.loads(ns.run("nft", "-j", "list", "ruleset").stdout)
             ["nftables"] if "rule" in o and o["rule"]["chain"] == "postrouting"]
    assert after == handles and len(after) == 3               # not rewritten
    ns.run("nft", "flush", "chain", "inet", "cni_plugins_masquerade", "postrouting")
    py(ns, "setup('n1', 'eth0', 'c3', '10.99.0.7/24')")
    text = ns.run("nft", "list", "chain", "inet", "cni_plugins_masquerade", "postrouting").stdout
    assert "goto masq_checks" in text and "ip daddr 224.0.0.0/4 return" in text
    r = py(ns, PM + "nn.portmap_add('cid-1', mappings(), [V4]); nn.portmap_add('cid-2', mappings(), [V4])")
    rs = json.loads(ns.run("nft", "-j", "list", "table", "ip", "cni_hostport").stdout)["nftables"]
    assert sum(1 for o in rs if "rule" in o and o["rule"]["chain"] == "hostports_all") == 2
