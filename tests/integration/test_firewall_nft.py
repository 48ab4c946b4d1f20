"""firewall with backend nftables (table inet cni_firewall over netlink), against the kernel in
test netns: containers on two bridges, connectivity shown by ping and TCP between them.

- our ADD batch equals, byte for byte, what `nft -f` sends for the same ruleset in nft text;
- allowed traffic once the admin makes the table the gate (`policy drop` on its forward chain,
  which ADD keeps): the container's own outbound, conntrack established/related back to it;
- same-bridge and isolated ingress policies isolate the bridges (and, isolated, the containers);
- `nft -j list ruleset` holds the container's rules, and after DEL nothing of it;
- a backend switch between ADD and DEL leaks nothing (DEL cleans iptables and nftables);
- bin/firewall ADD/CHECK/DEL execs nothing but itself, with backend nftables and, on this
  iptables-nft host, with backend iptables (strace -f -e trace=execve);
- SIGKILL at random instants of an ADD loop never leaves part of a container's rules;
- on a node with neither iptables nor nft (python3-minimal), no backend given: nftables;
- racing ADDs on an empty table; nft_update switching a bridge's policy in place.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from helpers import BIN
from test_embedded import chroot, ex  # noqa: F401  (fixtures: python3-minimal node)
from test_embedded import ok as ok_emb
from test_firewall import blocked, ping
from helpers import nft_f_batches
from chain_helpers import Server, chained, connect, container_ip, net_conf, ok, run, two_bridges

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB = os.path.join(ROOT, "lib")
pytestmark = [pytest.mark.root, pytest.mark.tool("nft")]
NETS = {"A": ("fwna", "cni-fwna0", "10.93.1.0/24"), "B": ("fwnb", "cni-fwnb0", "10.93.2.0/24")}
TABLE = "cni_firewall"


def _bconf(tmp_path, net):
    return net_conf(tmp_path, NETS, net)


@pytest.fixture
def topo(tmp_path, host_ns, make_netns, built_bins):
    """a1, a2 on bridge A; b1 on bridge B; bridged traffic passes the forward hook."""
    host_ns.run("sysctl", "-w", "net.bridge.bridge-nf-call-iptables=1", check=False)
    yield from two_bridges(tmp_path, host_ns, make_netns, NETS)


def fw(topo, host, cname, command, backend="nftables", **extra):
    ns, net, prev = topo[cname]
    conf = chained(prev, {"type": "firewall", "backend": backend, **extra}, name=NETS[net][0])
    return run("firewall", command, conf, host, ns, cname)


def ip_of(topo, cname):
    return container_ip(topo[cname][2])


def ruleset(ns) -> list:
    """`nft -j list ruleset` objects, without the metainfo header."""
    data = json.loads(ns.run("nft", "-j", "list", "ruleset").stdout or '{"nftables": []}')
    return [o for o in data["nftables"] if "metainfo" not in o]


def fw_rules(ns, chain=None) -> list:
    return [o["rule"] for o in ruleset(ns) if "rule" in o and o["rule"]["table"] == TABLE
            and (chain is None or o["rule"]["chain"] == chain)]


def of_container(ns, cname) -> list:
    """Our rules whose comment names the container (`..., id: <cid>`)."""
    return [r for r in fw_rules(ns) if r.get("comment", "").endswith(f"id: {cname}")]


def gate(host):
    """The admin makes our table the gate: nothing is forwarded unless accepted here."""
    host.run("nft", "add chain inet cni_firewall forward { type filter hook forward priority 0 ; "
                    "policy drop ; }")


def policy(host) -> str:
    return next(o["chain"]["policy"] for o in ruleset(host)
                if "chain" in o and o["chain"]["table"] == TABLE and o["chain"]["name"] == "forward")


def test_batch_bytes_equal_nft_for_the_same_text(make_netns, tmp_path):
    """What our ADD sends equals what nft sends for the equivalent text (canonical encoding)."""
    ns = make_netns("fwnb")
    src = tmp_path / "fw.nft"
    c = "h-1, net: n, if: eth0, id: c1"
    iso = "CNI firewall plugin rules (ingressPolicy: isolated), bridge: cnitbr0"
    pol = "CNI firewall plugin rules (ingressPolicy: same-bridge|isolated)"
    t = "inet cni_firewall"
    src.write_text("\n".join([
        f'add table {t} {{ comment "CNI firewall plugin" ; }}',
        *(f"add chain {t} {ch}" for ch in ("isolation_stage_1", "isolation_stage_2", "allow", "admin")),
        f"add chain {t} forward {{ type filter hook forward priority 0 ; }}",
        f'add rule {t} forward jump isolation_stage_1 comment "{pol}"',
        f'add rule {t} forward jump allow comment "CNI firewall plugin rules"',
        f'insert rule {t} allow jump admin comment "CNI firewall plugin admin overrides"',
        f'add rule {t} isolation_stage_1 iifname "cnitbr0" oifname != "cnitbr0" jump isolation_stage_2 comment "{pol}, bridge: cnitbr0"',
        f'add rule {t} isolation_stage_2 oifname "cnitbr0" drop comment "{pol}, bridge: cnitbr0"',
        f'add rule {t} isolation_stage_1 iifname "cnitbr0" oifname "cnitbr0" drop comment "{iso}"',
        f'add rule {t} allow ip daddr 10.99.0.7 ct state established,related accept comment "{c}"',
        f'add rule {t} allow ip saddr 10.99.0.7 accept comment "{c}"',
        f'add rule {t} allow ip6 daddr fd99::7 ct state established,related accept comment "{c}"',
        f'add rule {t} allow ip6 saddr fd99::7 accept comment "{c}"']) + "\n")
    r = ns.run(sys.executable, "-c", f"""
import sys, _socket
sys.path.insert(0, {LIB!r})
from cni.fw import nft_firewall as f
addrs = [_socket.inet_pton(2, '10.99.0.7'), _socket.inet_pton(10, 'fd99::7')]
print(f.add_batch([], set(), addrs, {c!r}, 'h-1', bridge='cnitbr0', isolated=True).encode(0, ack=False).hex())
""")
    ours = bytes.fromhex(r.stdout.strip())
    chunks = nft_f_batches(ns, str(src), str(tmp_path / "trace"))
    assert chunks and chunks[-1] == ours


def test_open_policy_allows_own_traffic_and_replies(topo, host_ns):
    a1, b1 = topo["a1"][0], topo["b1"][0]
    for c in ("a1", "b1"):
        assert ok(fw(topo, host_ns, c, "ADD")) == topo[c][2]
        ok(fw(topo, host_ns, c, "CHECK"))
    assert len(of_container(host_ns, "a1")) == 2 and len(of_container(host_ns, "b1")) == 2
    gate(host_ns)
    ok(fw(topo, host_ns, "a1", "ADD"))                      # ADD again: the gate stays
    assert policy(host_ns) == "drop" and len(of_container(host_ns, "a1")) == 2
    assert ping(a1, ip_of(topo, "b1")) and ping(b1, ip_of(topo, "a1"))
    ok(fw(topo, host_ns, "b1", "DEL"))
    assert of_container(host_ns, "b1") == [] and len(of_container(host_ns, "a1")) == 2
    r = fw(topo, host_ns, "b1", "CHECK")
    assert r.rc == 1 and "allow rules of " + ip_of(topo, "b1") in r.json["details"]
    assert blocked(b1, ip_of(topo, "a1"))                   # b1's own outbound no longer accepted
    assert ping(a1, ip_of(topo, "b1"))                      # a1's outbound, the reply established
    srv = Server(b1, "tcp:8089")
    try:
        assert connect(a1, "tcp", ip_of(topo, "b1"), 8089) == "hello 8089"
    finally:
        srv.stop()
    srv = Server(a1, "tcp:8089")
    try:                                                    # a new connection to a1: refused
        assert connect(b1, "tcp", ip_of(topo, "a1"), 8089, expect_ok=False) is None
    finally:
        srv.stop()
    ok(fw(topo, host_ns, "b1", "DEL"))                      # again: fine
    ok(fw(topo, host_ns, "a1", "DEL"))
    assert of_container(host_ns, "a1") == [] and fw_rules(host_ns, "allow") != []
    assert [r for r in fw_rules(host_ns) if "id: " in r.get("comment", "")] == []
    assert ip_of(topo, "a1") not in json.dumps(ruleset(host_ns))


def test_same_bridge_policy(topo, host_ns):
    for c in ("a1", "a2", "b1"):
        ok(fw(topo, host_ns, c, "ADD", ingressPolicy="same-bridge"))
        ok(fw(topo, host_ns, c, "CHECK", ingressPolicy="same-bridge"))
    a1, b1 = topo["a1"][0], topo["b1"][0]
    assert ping(a1, ip_of(topo, "a2"))                      # same bridge: allowed
    assert blocked(a1, ip_of(topo, "b1"))                   # across bridges: isolated
    assert blocked(b1, ip_of(topo, "a1"))
    stage2 = fw_rules(host_ns, "isolation_stage_2")
    assert len(stage2) == 2                                 # one per bridge, not per container
    for c in ("a1", "a2", "b1"):
        ok(fw(topo, host_ns, c, "DEL"))
        assert of_container(host_ns, c) == []
    assert fw_rules(host_ns, "isolation_stage_2") == stage2  # shared: they stay (as Go)


def test_isolated_policy(topo, host_ns):
    ok(fw(topo, host_ns, "b1", "ADD"))
    assert ping(topo["a1"][0], ip_of(topo, "a2")) and ping(topo["a1"][0], ip_of(topo, "b1"))
    for c in ("a1", "a2"):
        ok(fw(topo, host_ns, c, "ADD", ingressPolicy="isolated"))
    ok(fw(topo, host_ns, "a1", "CHECK", ingressPolicy="isolated"))
    assert blocked(topo["a1"][0], ip_of(topo, "a2"))        # even on the same bridge
    assert ping(topo["a1"][0], ip_of(topo, "b1"))           # B has no policy: open (as iptables)
    ok(fw(topo, host_ns, "b1", "ADD", ingressPolicy="isolated"))
    assert blocked(topo["a1"][0], ip_of(topo, "b1")) and blocked(topo["b1"][0], ip_of(topo, "a1"))


def test_backend_switch_between_add_and_del_leaks_nothing(topo, host_ns):
    ok(fw(topo, host_ns, "a1", "ADD", backend="iptables"))
    ok(fw(topo, host_ns, "b1", "ADD", backend="nftables"))
    assert ip_of(topo, "a1") + "/32" in host_ns.run("iptables", "-S", "CNI-FORWARD").stdout
    ok(fw(topo, host_ns, "a1", "DEL", backend="nftables"))
    ok(fw(topo, host_ns, "b1", "DEL", backend="iptables"))
    assert ip_of(topo, "a1") not in host_ns.run("iptables-save", "-t", "filter").stdout
    assert of_container(host_ns, "b1") == []
    ok(fw(topo, host_ns, "a2", "ADD", backend="iptables"))  # both at once, then one DEL
    ok(fw(topo, host_ns, "a2", "ADD", backend="nftables"))
    ok(fw(topo, host_ns, "a2", "DEL", backend="iptables"))
    assert ip_of(topo, "a2") not in host_ns.run("iptables-save", "-t", "filter").stdout
    assert of_container(host_ns, "a2") == []


def test_errors_leave_nothing(topo, host_ns):
    r = fw(topo, host_ns, "a1", "ADD", backend="nft")
    assert r.rc == 1 and r.json["code"] == 7 and "backend" in r.json["msg"]
    r = fw(topo, host_ns, "a1", "ADD", iptablesAdminChainName="allow")
    assert r.rc == 1 and r.json["code"] == 7 and "iptablesAdminChainName" in r.json["msg"]
    ns, net, prev = topo["a1"]
    nobr = dict(prev, interfaces=[])
    conf = chained(nobr, {"type": "firewall", "backend": "nftables", "ingressPolicy": "isolated"},
                   name="fwna")
    r = run("firewall", "ADD", conf, host_ns, ns, "a1")
    assert r.rc == 1 and r.json["code"] == 7 and "bridge" in r.json["msg"]
    assert fw_rules(host_ns) == []
    ok(fw(topo, host_ns, "a1", "ADD", iptablesAdminChainName="MY-ADMIN"))
    assert any(r["chain"] == "allow" and "MY-ADMIN" in json.dumps(r["expr"])
               for r in fw_rules(host_ns))
    ok(fw(topo, host_ns, "a1", "CHECK", iptablesAdminChainName="MY-ADMIN"))
    assert fw(topo, host_ns, "a1", "CHECK", iptablesAdminChainName="OTHER").rc == 1


@pytest.mark.tool("strace")
@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_plugin_execs_nothing(topo, host_ns, tmp_path, backend):
    """bin/firewall ADD, CHECK, DEL with both families and an ingress policy: no execve but the
    plugin's own (iptables: this host's iptables is the nf_tables flavour, written over netlink)."""
    from cni.fw import backend as be
    if backend == "iptables" and not be.iptables_nft(False):
        pytest.skip("iptables here is not the nf_tables flavour")
    ns, net, prev = topo["a1"]
    prev = dict(prev, ips=prev["ips"] + [{"address": "fd00:93::2/64", "interface": 2}])
    conf = chained(prev, {"type": "firewall", "backend": backend, "ingressPolicy": "isolated"},
                   name="fwna")
    env = {"CNI_CONTAINERID": "cnit-noexec", "CNI_NETNS": ns.path, "CNI_IFNAME": "eth0",
           "CNI_PATH": BIN, "PATH": os.environ["PATH"]}
    exe = os.path.join(BIN, "firewall")
    counts = {}
    for cmd in ("ADD", "CHECK", "DEL"):
        trace = tmp_path / f"{backend}-{cmd}.trace"
        r = subprocess.run(["ip", "netns", "exec", host_ns.name, "strace", "-f", "-qq", "-e",
                            "trace=execve", "-o", str(trace), exe], input=json.dumps(conf),
                           env=dict(env, CNI_COMMAND=cmd), capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        execs = [ln for ln in trace.read_text().splitlines() if "execve(" in ln]
        # the plugin itself (and, with a sh preamble, the interpreter it execs on its own path)
        assert execs and exe in execs[0] and [ln for ln in execs if exe not in ln] == [], execs
        counts[cmd] = len([ln for ln in execs if exe not in ln])
        if cmd == "ADD":
            if backend == "nftables":
                assert len(of_container(host_ns, "cnit-noexec")) == 4
            else:
                for tool in ("iptables", "ip6tables"):
                    saved = host_ns.run(f"{tool}-save", "-t", "filter").stdout
                    assert "CNI-ISOLATION-STAGE-2" in saved and "RELATED,ESTABLISHED" in saved
    print(f"tool execs per verb ({backend}): {counts}")
    assert of_container(host_ns, "cnit-noexec") == []
    for tool, addr in (("iptables", ip_of(topo, "a1")), ("ip6tables", "fd00:93::2")):
        assert addr not in host_ns.run(f"{tool}-save", "-t", "filter").stdout


KILL_LOOP = f"""
import sys, itertools, ipaddress
sys.path.insert(0, {LIB!r})
from cni.fw import firewall
for i in itertools.count():
    cid = 'cnit-k%d' % (i % 4)
    ips = [ipaddress.ip_interface('10.93.7.%d/24' % (i % 200 + 1)),
           ipaddress.ip_interface('fd00:97::%x/64' % (i % 200 + 1))]
    firewall.nft_add(ips, network='fwk', container_id=cid, ifname='eth0',
                     ingress_policy='same-bridge' if i % 2 else 'isolated', bridge='cnitk%d' % (i % 3))
    if i % 3 == 0:
        firewall.teardown([], network='fwk', container_id='cnit-k%d' % ((i + 2) % 4), ifname='eth0')
"""


def test_sigkill_never_leaves_part_of_a_container(make_netns):
    """Kill an ADD (and DEL) loop at random instants: per container 0 or all 4 of its rules."""
    ns = make_netns("fwnk")
    rnd = random.Random(14)
    seen = set()
    kills = 0
    for _ in range(10):
        p = subprocess.Popen(["ip", "netns", "exec", ns.name, sys.executable, "-c", KILL_LOOP],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.2 + rnd.random() * 0.5)
        p.send_signal(signal.SIGKILL)
        p.wait()
        assert p.returncode == -signal.SIGKILL, p.stderr.read()
        kills += 1
        per: dict = {}
        for r in fw_rules(ns, "allow"):
            if "id: " in r.get("comment", ""):
                per[r["comment"]] = per.get(r["comment"], 0) + 1
        assert all(v == 4 for v in per.values()), per          # v4 and v6, two rules each
        fwd = fw_rules(ns, "forward")
        assert len(fwd) in (0, 2), fwd
        seen.update(per)
    print(f"{kills} kills, containers seen with rules: {len(seen)}")
    assert seen                                                 # the loop did get somewhere
    code = f"import sys; sys.path.insert(0, {LIB!r})\nfrom cni.fw import firewall\n" + "".join(
        f"firewall.teardown([], network='fwk', container_id='cnit-k{i}', ifname='eth0')\n"
        for i in range(4))
    ns.run(sys.executable, "-c", code)
    assert [r for r in fw_rules(ns) if "id: " in r.get("comment", "")] == []


@pytest.mark.slow
def test_node_without_tools_uses_nftables(ex, built_bins):
    """python3-minimal node, no iptables, no nft, no firewalld: the firewall plugin with no
    backend key writes table inet cni_firewall; CHECK passes; DEL leaves nothing of it."""
    shutil.copy(os.path.join(built_bins, "firewall"), os.path.join(ex.root, "opt", "cni", "bin"))
    net = "emb-fw-" + ex.cid[-6:]
    conf = {"cniVersion": "1.0.0", "name": net, "type": "bridge", "bridge": "cnitembr2",
            "isGateway": True,
            "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.250.11.0/24"}]]}}
    res = ok_emb(ex("ADD", conf))
    ip = res["ips"][0]["address"].split("/")[0]
    fwc = {"cniVersion": "1.0.0", "name": net, "type": "firewall", "ingressPolicy": "same-bridge"}
    assert ok_emb(ex("ADD", fwc, prev=res)) == res
    mine = [r for r in fw_rules(ex.node, "allow") if r.get("comment", "").endswith("id: " + ex.cid)]
    assert len(mine) == 2 and ip in json.dumps(mine)
    assert len(fw_rules(ex.node, "isolation_stage_2")) == 1
    ok_emb(ex("CHECK", fwc, prev=res))
    ok_emb(ex("DEL", fwc, prev=res))
    assert ip not in json.dumps(ruleset(ex.node))
    assert ex("CHECK", fwc, prev=res).returncode != 0
    ok_emb(ex("DEL", fwc, prev=res))
    ok_emb(ex("DEL", conf, prev=res))


def test_concurrent_adds_into_an_empty_table(make_netns):
    """8 ADDs racing on a fresh node: the genid check makes each batch apply to what it read,
    so the shared parts exist once and every container has its two rules."""
    ns = make_netns("fwnc")
    code = (f"import sys, ipaddress; sys.path.insert(0, {LIB!r})\nfrom cni.fw import firewall\n"
            "i = int(sys.argv[1])\n"
            "firewall.nft_add([ipaddress.ip_interface('10.93.9.%d/24' % (i + 2))], network='fwc',"
            " container_id='cnit-c%d' % i, ifname='eth0', ingress_policy='same-bridge',"
            " bridge='cnitc0')\n")
    procs = [subprocess.Popen(["ip", "netns", "exec", ns.name, sys.executable, "-c", code, str(i)],
                              stderr=subprocess.PIPE, text=True) for i in range(8)]
    for p in procs:
        assert p.wait(timeout=60) == 0, p.stderr.read()
    assert [len(of_container(ns, f"cnit-c{i}")) for i in range(8)] == [2] * 8
    assert len(fw_rules(ns, "forward")) == 2
    assert len([r for r in fw_rules(ns, "allow") if "id: " not in r.get("comment", "")]) == 1
    assert len(fw_rules(ns, "isolation_stage_1")) == 1 and len(fw_rules(ns, "isolation_stage_2")) == 1


def test_update_switches_the_bridge_policy_in_place(topo, host_ns):
    """cni.fw.firewall.nft_update (for the plugin's UPDATE): isolated -> same-bridge -> open on
    bridge A, shown by a1 -> a2 and b1 -> a1; the container's rules stay two per address."""
    for c in ("a1", "a2"):
        ok(fw(topo, host_ns, c, "ADD", ingressPolicy="isolated"))
    ok(fw(topo, host_ns, "b1", "ADD", ingressPolicy="same-bridge"))
    a1, b1 = topo["a1"][0], topo["b1"][0]
    assert blocked(a1, ip_of(topo, "a2")) and blocked(b1, ip_of(topo, "a1"))

    def update(policy):
        host_ns.run(sys.executable, "-c", f"""
import sys, ipaddress; sys.path.insert(0, {LIB!r})
from cni.fw import firewall
firewall.nft_update([ipaddress.ip_interface({topo['a1'][2]['ips'][0]['address']!r})], network='fwna',
                    container_id='a1', ifname='eth0', ingress_policy={policy!r}, bridge='cni-fwna0')
""")
    update("same-bridge")
    assert ping(a1, ip_of(topo, "a2")) and blocked(b1, ip_of(topo, "a1"))
    update("open")
    assert ping(b1, ip_of(topo, "a1"))        # A has no policy now; B's still isolates B only
    assert len(of_container(host_ns, "a1")) == 2
    ok(fw(topo, host_ns, "a1", "CHECK"))
