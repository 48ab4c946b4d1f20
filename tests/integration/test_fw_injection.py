"""Issue 12, item 1: no config, runtimeConfig or prevResult string may become a firewall command.

Every attack runs the zipapps (bin/bridge, bin/portmap, bin/firewall) chained as a runtime does,
in a test netns that plays the node. Before and after the hostile ADD and its DEL we snapshot
`iptables -S`, `ip6tables -S` (filter and nat) and `nft list ruleset`: a refused value must leave
them exactly as they were, no rule may hold the injected marker, and the answer is code 7 (or 4 for
CNI_IFNAME) naming the field. The accepted side is checked too: values Go passes as one argv
element still work, and random accepted tokens round-trip through the real tools unchanged.
"""
from __future__ import annotations

import json
import random

import pytest

from helpers import restore_argv

from chain_helpers import bridge_conf, chained, ok, run
from test_portmap import pm_conf

pytestmark = [pytest.mark.root, pytest.mark.tool("iptables-restore", "ip6tables-restore", "nft")]
MARK = "6.6.6.6"         # the injected rules match this source address
MARK6 = "2001:db8:6666::6"
MARK_NS = "cnitinj"      # ... or create this nft table / iptables chain
INJECT = f"COMMIT\n*filter\n-I INPUT 1 -s {MARK}/32 -j ACCEPT\nCOMMIT\n"


def snapshot(ns) -> dict:
    out = {}
    for tool in ("iptables", "ip6tables"):
        for table in ("filter", "nat"):
            out[f"{tool} -t {table}"] = ns.run(tool, "-t", table, "-S", check=False).stdout
    out["nft"] = ns.run("nft", "list", "ruleset", check=False).stdout
    return out


def assert_clean(ns, before: dict) -> None:
    after = snapshot(ns)
    for key, text in after.items():
        found = [m for m in (MARK, MARK6, MARK_NS) if m in text]
        assert not found, f"{found} injected into {key}:\n{text}"
    assert after == before


def refused(r, field: str, code: int = 7) -> None:
    assert r.rc == 1, r
    err = r.json
    assert err["code"] == code, err
    assert field in err["msg"] + err.get("details", ""), err


@pytest.fixture
def node(tmp_path, host_ns, make_netns, built_bins):
    """A dual-stack bridge network with one container; yields (host, cont, prevResult)."""
    cont = make_netns("c")
    conf = bridge_conf(tmp_path, name="injnet", bridge="cnit-inj0", subnet="10.93.0.0/24")
    conf["ipam"]["ranges"].append([{"subnet": "fd00:93::/64"}])
    prev = ok(run("bridge", "ADD", conf, host_ns, cont, "ctr1"))
    yield host_ns, cont, prev
    run("bridge", "DEL", conf, host_ns, cont, "ctr1")


def attack(node, plugin_conf, field, *, del_ok=False, code=7, cid="ctr1"):
    """Hostile ADD then DEL: refused (or DEL succeeds), nothing written, nothing left."""
    host, cont, prev = node
    before = snapshot(host)
    conf = chained(prev, plugin_conf, name="injnet")
    refused(run(plugin_conf["type"], "ADD", conf, host, cont, cid), field, code)
    assert_clean(host, before)
    r = run(plugin_conf["type"], "DEL", conf, host, cont, cid)
    if del_ok:
        assert r.rc == 0, r
    else:
        refused(r, field, code)
    assert_clean(host, before)


MAPS = [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]

# --- portmap, iptables -------------------------------------------------------------------------

@pytest.mark.parametrize("conditions,field", [
    # the reproducer: one element breaks out of the quoted argument and the line
    (["-m", "comment", "--comment", "x y\n" + INJECT + "*nat\n-A CNI-HOSTPORT-DNAT -m comment --comment \"z"],
     "conditionsV4[3]"),
    (["-s", "10.0.0.0/8\n" + INJECT + "*nat\n-N cnitinj"], "conditionsV4[1]"),
    (["-s", "10.0.0.0/8\r-j ACCEPT"], "conditionsV4[1]"),
    (["-s", "10.0.0.0/8\x00-j ACCEPT"], "conditionsV4[1]"),
    (["-m", "comment", "--comment", "a" * 1200], "conditionsV4[3]"),   # "Parameter too long"
    # 10240-byte chunks: a long line's tail would be read as a line of its own
    (["-m", "comment", "--comment", "p" * 200] * 60 + ["-j", "ACCEPT", "-I", "INPUT", "-s", MARK],
     "conditionsV4"),
    (["-s", ""], "conditionsV4[1]"),
])
def test_portmap_iptables_conditions(node, conditions, field):
    attack(node, pm_conf("iptables", MAPS, conditionsV4=conditions), field)


def test_portmap_iptables_conditions_v6(node):
    attack(node, pm_conf("iptables", MAPS, conditionsV6=["-s", "fd00::/8\n" + INJECT.replace(
        f"{MARK}/32", MARK6) + "*nat\n-N cnitinj"]), "conditionsV6[1]")


@pytest.mark.parametrize("chain", [
    "RETURN\n" + INJECT + "*nat\n-N cnitinj",
    "CNI-X -j ACCEPT", "CNI;X", "A" * 29, "-j", "", "CNI-X\r",
])
def test_portmap_external_setmark_chain(node, chain):
    attack(node, pm_conf("iptables", MAPS, externalSetMarkChain=chain), "externalSetMarkChain")


@pytest.mark.parametrize("host_ip", [
    # ipaddress takes any zone without '%' or '/': getaddrinfo resolves `fe80::1%1`, the rest is
    # new lines, and our "/128 -p tcp ..." completes the last one
    "fe80::1%1\n" + INJECT.replace(f"{MARK}/32", MARK6) + "*nat\n-N cnitinj\n-A cnitinj -d ::1",
    "fe80::1%eth0", "10.0.0.1\n", " 10.0.0.1", "::ffff:6.6.6.6%x y",
])
def test_portmap_host_ip(node, host_ip):
    maps = [{"hostPort": 8080, "containerPort": 80}, {"hostPort": 8081, "containerPort": 81,
                                                      "hostIP": host_ip}]
    attack(node, pm_conf("iptables", maps), "runtimeConfig.portMappings[1].hostIP")


def test_portmap_host_ip_nft(node):
    maps = [{"hostPort": 8081, "containerPort": 81,
             "hostIP": f"fe80::1%1;add table ip {MARK_NS};add chain ip {MARK_NS} c"}]
    attack(node, pm_conf("nftables", maps), "runtimeConfig.portMappings[0].hostIP")


# --- portmap, nftables -----------------------------------------------------------------------

@pytest.mark.parametrize("conditions,field", [
    # ';' ends our rule: the rest is any nft command, and our tail completes the last one
    ([f"ip saddr {MARK} accept ; add table ip {MARK_NS} ; add rule ip cni_hostport prerouting"],
     "conditionsV4[0]"),
    ([f"ip saddr {MARK} accept", "#"], "conditionsV4[1]"),             # '#' drops our jump
    ([f"ip saddr {MARK} accept\nadd table ip {MARK_NS}\nadd rule ip cni_hostport prerouting"],
     "conditionsV4[0]"),
    (["ip saddr { 10.0.0.1 } }", f"add table ip {MARK_NS}"], "conditionsV4[0]"),
    (["ip saddr {", "10.0.0.1"], "conditionsV4"),                      # unbalanced brace
    (['iifname "eth0'], "conditionsV4[0]"),                            # open quote
    (["ip saddr 10.0.0.1 \\"], "conditionsV4[0]"),
])
def test_portmap_nft_conditions(node, conditions, field):
    attack(node, pm_conf("nftables", MAPS, conditionsV4=conditions), field)


def test_portmap_nft_conditions_v6(node):
    attack(node, pm_conf("nftables", MAPS, conditionsV6=[
        f"ip6 saddr {MARK6} accept ; add table ip6 {MARK_NS} ; add rule ip6 cni_hostport prerouting"]),
        "conditionsV6[0]")


# --- firewall ----------------------------------------------------------------------------------

@pytest.mark.parametrize("chain", [
    "CNI-ADMIN\n" + INJECT + "*filter\n-N cnitinj",
    "CNI-ADMIN -s 6.6.6.6 -j ACCEPT", "A" * 29, "X\r", "!X", "CNI\x00ADMIN",
])
def test_firewall_admin_chain(node, chain):
    attack(node, {"type": "firewall", "backend": "iptables", "iptablesAdminChainName": chain},
           "iptablesAdminChainName")


@pytest.mark.parametrize("policy", ["same-bridge", "isolated"])
@pytest.mark.parametrize("name", [
    # the reproducer: the bridge name from prevResult breaks out of `-i <name>`
    "x -j ACCEPT\n" + INJECT + "*filter\n-A CNI-ISOLATION-STAGE-1 -i y",
    "br0 -j ACCEPT", "br0\n", "a/b", "..", "br:0", "x" * 16, "b\tr", "b\x01r", 'b"r',
])
def test_firewall_same_bridge_prev_interface(node, policy, name):
    host, cont, prev = node
    prev = json.loads(json.dumps(prev))
    prev["interfaces"][0]["name"] = name
    # the DEL removes per-address rules only and never reads the name: it succeeds
    attack((host, cont, prev), {"type": "firewall", "backend": "iptables", "ingressPolicy": policy},
           "prevResult.interfaces[0].name", del_ok=True)
    assert "CNI-ISOLATION-STAGE-1" not in snapshot(host)["iptables -t filter"]


def test_firewall_zone(node):
    attack(node, {"type": "firewall", "backend": "firewalld", "firewalldZone": "trusted\nx"},
           "firewalldZone")


# --- bridge macspoofchk (chain names from CNI_IFNAME) and ipMasq -------------------------------

@pytest.mark.parametrize("ifname", ["e;x", "e#x", "e{x", "e}x", "e\"x", "e$x", "e@x"])
def test_bridge_macspoofchk_ifname(tmp_path, host_ns, make_netns, built_bins, ifname):
    cont = make_netns("c")
    conf = bridge_conf(tmp_path, name="spoofnet", bridge="cnit-sp0", subnet="10.94.0.0/24",
                       macspoofchk=True)
    before = snapshot(host_ns)
    links = host_ns.ipj("link", "show")
    r = run("bridge", "ADD", conf, host_ns, cont, "ctr1", ifname=ifname)
    refused(r, "CNI_IFNAME", code=4)
    assert_clean(host_ns, before)
    assert host_ns.ipj("link", "show") == links            # refused before any link was made
    assert cont.ipj("link", "show")[1:] == []
    assert run("bridge", "DEL", conf, host_ns, cont, "ctr1", ifname=ifname).rc == 0
    assert_clean(host_ns, before)


def test_bridge_ipmasq_network_name(tmp_path, host_ns, make_netns, built_bins):
    cont = make_netns("c")
    before = snapshot(host_ns)
    for backend in ("iptables", "nftables"):
        conf = bridge_conf(tmp_path, name="n\n" + INJECT, bridge="cnit-mq0", subnet="10.95.0.0/24",
                           ipMasq=True, ipMasqBackend=backend)
        refused(run("bridge", "ADD", conf, host_ns, cont, "ctr1"), "name")
        assert_clean(host_ns, before)


# --- what is accepted still works, exactly as Go passes it ---------------------------------------

def test_portmap_conditions_with_quotes_and_separators_work(node):
    """A condition element with spaces, quotes, ';', '#', braces is one argument, as in Go."""
    host, cont, prev = node
    text = "it's a \"test\" ; # { } \\ done"
    conf = chained(prev, pm_conf("iptables", MAPS, conditionsV4=["-m", "comment", "--comment", text]),
                   name="injnet")
    ok(run("portmap", "ADD", conf, host, cont, "ctr1"))
    ok(run("portmap", "CHECK", conf, host, cont, "ctr1"))
    from cni.fw.iptables import Table
    t = Table.parse("nat", host.run("iptables-save", "-t", "nat").stdout)
    jumps = [s for s in t.chains["CNI-HOSTPORT-DNAT"] if "--dports 8080" in s]
    assert len(jumps) == 1 and text in restore_argv(jumps[0])
    ok(run("portmap", "DEL", conf, host, cont, "ctr1"))
    t = Table.parse("nat", host.run("iptables-save", "-t", "nat").stdout)
    assert [s for s in t.chains["CNI-HOSTPORT-DNAT"] if "--dports 8080" in s] == []


def _random_token(rng) -> str:
    """Printable text full of quotes and separators; one in three gets a control character."""
    pool = "abcXYZ019 -_.!/:%,*$@+=~\"'`\\;#{}é€😀"
    tok = [rng.choice(pool) for _ in range(rng.randint(1, 40))]
    if rng.random() < 0.33:
        tok.insert(rng.randrange(len(tok) + 1), rng.choice("\t\n\r\x00\x01\x1b\x7f\x85\u2028"))
    return "".join(tok)


def test_random_iptables_tokens_roundtrip_real_tool(host_ns):
    """Accepted tokens, written as one argument each, are read back by iptables unchanged."""
    from cni.fw import rules
    from cni.fw.iptables import Table
    rng = random.Random(12)
    accepted, refused_n = [], 0
    for _ in range(600):
        tok = _random_token(rng)
        try:
            rendered = rules.ipt_token(tok, "t")
        except rules.RuleValueError:
            refused_n += 1
            assert not tok.isprintable()
            continue
        if len(tok.encode()) <= rules.IPT_COMMENT_MAX:
            accepted.append((tok, rendered))
    lines = ["-N cnitrt"] + [f"-A cnitrt -m comment --comment {r}" for _, r in accepted]
    rules.check_lines(lines, "test")
    r = host_ns.run("iptables-restore", "--noflush", input="*filter\n" + "\n".join(lines) + "\nCOMMIT\n",
                    check=False)
    assert r.returncode == 0, r.stderr
    t = Table.parse("filter", host_ns.run("iptables-save", "-t", "filter").stdout)
    got = [restore_argv(s)[-1] for s in t.chains["cnitrt"]]
    assert got == [tok for tok, _ in accepted]
    assert refused_n > 100 and len(accepted) > 100


def test_random_nft_conditions_stay_one_rule_real_tool(host_ns):
    """Accepted nft conditions can at most make one rule in our chain, never another command."""
    from cni.fw import rules
    rng = random.Random(13)
    host_ns.run("nft", "-f", "-", input="add table ip cnitrt\nadd chain ip cnitrt c\n")
    pieces = ["ip saddr 10.0.0.1", "tcp dport { 80, 443 }", "meta mark 0x1", "counter", "accept",
              "{", "}", ";", "#", "\"x\"", "\"", "\n", "add table ip cnitinj", "$v", "@s", "\\",
              "iifname \"eth*\"", "ip daddr != 10.0.0.0/8", "\r", "\x00"]
    tried = accepted = 0
    for _ in range(300):
        cond = [" ".join(rng.choice(pieces) for _ in range(rng.randint(1, 4)))
                for _ in range(rng.randint(1, 2))]
        tried += 1
        try:
            text = rules.nft_conditions(cond, "conditionsV4")
        except rules.RuleValueError:
            continue
        accepted += 1
        line = f"add rule ip cnitrt c {text} counter"
        rules.check_lines([line], "test")
        host_ns.run("nft", "-f", "-", input=line + "\n", check=False)
    rs = json.loads(host_ns.run("nft", "-j", "list", "ruleset").stdout)["nftables"]
    tables = {(o["table"]["family"], o["table"]["name"]) for o in rs if "table" in o}
    chains = {o["chain"]["name"] for o in rs if "chain" in o}
    nrules = sum(1 for o in rs if "rule" in o)
    assert tables == {("ip", "cnitrt")} and chains == {"c"}
    assert nrules <= accepted and accepted > 20
