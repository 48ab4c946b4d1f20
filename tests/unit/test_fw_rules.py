"""cni.fw.rules, the one builder of rule text, and a seeded property test over every string field
that can reach it: a value is refused (code 7, or 4 for CNI_IFNAME) or every rule it is part of is
exactly one line that iptables-restore / nft reads back as the value we meant."""
from __future__ import annotations

import io
import ipaddress
import json
import random

import pytest

from helpers import restore_argv

import firewall as firewall_plugin
import portmap as portmap_plugin
from cni import skel
from cni.errors import CNIError, InvalidConfigError, InvalidEnvError
from cni.fw import firewall, iptables, masq, nft_text, portmap, portmap_config, rules, spoofchk
from cni.fw.backend import format_comment
from test_fw_masq import _nft_rules, fake  # noqa: F401  (fixture)

V4 = ipaddress.ip_interface("10.88.0.2/24")
V6 = ipaddress.ip_interface("fd00:88::2/64")
MAPS = portmap_config.normalize_mappings([{"hostPort": 8080, "containerPort": 80},
                                   {"hostPort": 53, "containerPort": 53, "protocol": "udp"}])
CASES = 2000
SUMMARY: dict = {}      # class -> [tried, hostile, hostile refused, accepted]


# --- models of how the tools split their input --------------------------------------------------

def nft_check(line: str) -> None:
    """One nft command: no line break; outside "..." no '#', and ';' only inside a { } block of
    our own (never in `add rule`/`delete rule`); quotes and braces balanced."""
    assert not any(c in line for c in "\n\r\0"), line
    rule = line.startswith(("add rule", "delete rule"))
    quoted, depth = False, 0
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif ch == "#":
            raise AssertionError(f"'#' outside a string: {line!r}")
        elif ch == ";":
            assert depth > 0 and not rule, f"';' starts a new command: {line!r}"
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            assert depth >= 0, line
    assert not quoted and depth == 0, line


def ipt_text_ok(text: str) -> list:
    """Batch text: one table, every line one command; returns the argv of each line."""
    lines = text.splitlines()
    assert lines[0].startswith("*") and lines[-1] == "COMMIT"
    assert sum(1 for ln in lines if ln == "COMMIT" or ln.startswith("*")) == 2
    out = []
    for ln in lines[1:-1]:
        argv = restore_argv(ln)
        assert argv[0] in ("-N", "-A", "-I", "-D", "-F", "-X"), ln
        out.append(argv)
    return out


# --- random input ------------------------------------------------------------------------------

POOLS = {"alnum": "abcdefXYZ0129", "punct": "-_.!/:%,*$@+=~?&|<>()[]^", "quote": "\"'`\\",
         "sep": ";#{} \t", "ctrl": "\n\r\x00\x01\x0b\x0c\x1b\x7f\x85\u2028\u2029",
         "uni": "éß€😀\u200b\ufeff"}
ATTACKS = ["x y\nCOMMIT\n*filter\n-I INPUT 1 -j ACCEPT\nCOMMIT\n*nat", " -j ACCEPT\n-A INPUT -j ACCEPT",
           "a;add table ip x", "a # b", "a { b", "} ; flush ruleset", "\r", "\0", "", '"', "'",
           "\\", "x" * 12000, "é" * 600, "fe80::1%x\nCOMMIT", "-j ACCEPT", "\u2028", "a\tb"]


def rand_str(rng: random.Random, base: str = "") -> str:
    """A random string from random pools, or `base` with random characters spliced in."""
    length = rng.randint(300, 12000) if rng.random() < 0.04 else rng.randint(0, 24)
    alphabet = "".join(POOLS[p] for p in rng.sample(sorted(POOLS), rng.randint(1, len(POOLS))))
    if base and rng.random() < 0.5:
        s = list(base)
        for _ in range(rng.randint(1, 3)):
            s.insert(rng.randrange(len(s) + 1), rng.choice(alphabet))
        return "".join(s)
    return "".join(rng.choice(alphabet) for _ in range(length))


def values(seed: int, base: str = ""):
    rng = random.Random(seed)
    yield from ATTACKS + ([base, base.upper()] if base else [])
    for _ in range(CASES - len(ATTACKS)):
        yield rand_str(rng, base)


def tally(cls: str, hostile: bool, refused: bool, *, escaped: bool = False) -> None:
    """Count one input; a hostile one must be refused (or, only where Go does so, escaped)."""
    t = SUMMARY.setdefault(cls, [0, 0, 0, 0])
    t[0] += 1
    t[1] += hostile
    t[2] += hostile and (refused or escaped)
    t[3] += not refused
    assert refused or escaped or not hostile, f"{cls}: hostile value accepted"


def bad_text(s: str) -> bool:
    return not isinstance(s, str) or not s.isprintable()


def refuses(fn, *a, code=7, **kw):
    try:
        return False, fn(*a, **kw)
    except CNIError as exc:
        assert exc.code == code and isinstance(exc, (rules.RuleValueError, InvalidEnvError)), exc
        return True, None


def batch(table: str = "nat") -> iptables.Batch:
    return iptables.Batch(iptables.Table(table))


# --- property tests, one per class of field ------------------------------------------------------

def test_portmap_iptables_conditions():
    rng = random.Random(1)
    for i, v in enumerate(values(1)):
        cond = ["-m", "comment", "--comment", v] if i % 2 else [v, *(rand_str(rng) for _ in range(rng.randint(0, 3)))]
        if cond[0][:1] not in "-!":
            cond.insert(0, "-s")       # keep the iptables backend (Go detects it from the first element)
        hostile = any(bad_text(c) or not c or len(c.encode()) > rules.TOKEN_MAX for c in cond) \
            or sum(len(c.encode()) + 3 for c in cond) > rules.CONDITIONS_MAX
        refused, _ = refuses(portmap_config.check_options, "iptables", conditions_v4=cond)
        if not refused:
            o = portmap._options({"conditions_v4": cond})
            b = batch()
            portmap._ipt_build(b, "net", "cid", MAPS, V4, o)
            for argv in ipt_text_ok(b.text()):
                if "--dports" in argv:
                    assert argv[-2 - len(cond):-2] == cond    # each element one argument
        tally("conditionsV4 (iptables)", hostile, refused)


def test_portmap_nft_conditions():
    rng = random.Random(2)
    base_lines = len(portmap.nft_lines("cid", MAPS, V4))
    for v in values(2, "ip saddr { 10.0.0.1, 10.0.0.2 } tcp dport 80"):
        cond = [v] + [rand_str(rng) for _ in range(rng.randint(0, 2))]
        text = " ".join(cond)
        depth, unbalanced = 0, False
        for ch in text:
            depth += (ch == "{") - (ch == "}")
            unbalanced |= depth < 0
        hostile = any(bad_text(c) or not c or set(c) & set(";#\\") or c.count('"') % 2 for c in cond) \
            or unbalanced or depth != 0
        refused, _ = refuses(portmap_config.check_options, "nftables", conditions_v6=cond)
        if not refused:
            lines = portmap.nft_lines("cid", MAPS, V6, conditions=cond)
            assert len(lines) == base_lines - 1        # (v6: no 127.0.0.1 masquerade rule)
            for ln in lines:
                nft_check(ln)
            rules.check_lines(lines, "nft")
        tally("conditionsV6 (nft)", hostile, refused)


def _chain_ok(s: str) -> bool:
    ok_chars = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
    return bool(s) and len(s) <= 28 and s[0].isalnum() and s[0].isascii() and set(s) <= ok_chars


def test_external_setmark_chain():
    for v in values(3, "KUBE-MARK-MASQ"):
        refused, _ = refuses(portmap_config.check_options, "iptables", external_setmark_chain=v)
        if not refused:
            b = batch()
            portmap._ipt_build(b, "net", "cid", MAPS, V4, portmap._options({"external_setmark_chain": v}))
            jumps = [a[a.index("-j") + 1] for a in ipt_text_ok(b.text()) if "-j" in a]
            assert v in jumps
        tally("externalSetMarkChain", not _chain_ok(v), refused)


def test_admin_chain():
    for v in values(4, "CNI-ADMIN"):
        refused, _ = refuses(firewall._jump_rules, v)
        if not refused:
            b = batch("filter")
            firewall._build_add(b, [V4], v, "open", "")
            argv = ipt_text_ok(b.text())
            assert ["-N", v] in argv and any(a[-2:] == ["-j", v] for a in argv)
        tally("iptablesAdminChainName", not _chain_ok(v), refused)


def test_host_ip():
    for v in values(5, "fd00::1"):
        hostile = not all(c in "0123456789abcdefABCDEF.:" for c in v)   # "" = unset, as in Go
        try:
            maps = portmap_config.normalize_mappings([{"hostPort": 80, "containerPort": 80, "hostIP": v}])
            refused = False
        except InvalidConfigError as exc:
            assert "runtimeConfig.portMappings[0].hostIP" in exc.details
            refused = True
        if not refused and maps[0]["hostIP"] is not None:
            ip = maps[0]["hostIP"]
            dst = V6 if ip.version == 6 else V4
            for spec in portmap.ipt_chain_rules(maps, dst):
                argv = restore_argv(spec)
                if "-d" in argv:
                    assert argv[argv.index("-d") + 1] == f"{ipaddress.ip_address(ip.packed)}/{ip.max_prefixlen}"
            for ln in portmap.nft_lines("cid", maps, dst):
                nft_check(ln)
        tally("runtimeConfig.portMappings[].hostIP", hostile, refused)


def _ifname_ok(s: str) -> bool:
    return (bool(s) and len(s.encode()) <= 15 and s not in (".", "..") and s.isprintable()
            and not any(c in "/:\"" or c.isspace() for c in s))


def test_prev_result_bridge_name():
    for v in values(6, "cni0"):
        for iso in (False, True):
            refused, specs = refuses(firewall.isolation_rules, v, iso)
            if not refused:
                b = batch("filter")
                for op, chain, spec, alts in specs:
                    (b.insert_unique if op == "insert" else b.append_unique)(chain, spec, alts)
                for argv in ipt_text_ok(b.text()):
                    for opt in ("-i", "-o"):
                        if opt in argv:
                            assert argv[argv.index(opt) + 1] == v
            tally("prevResult.interfaces[0].name", not _ifname_ok(v), refused)


def test_comments_network_and_container_id():
    """The builders below the skel checks (which already refuse odd names and IDs) still refuse
    control characters and keep Go's comment text as one argument."""
    for i, v in enumerate(values(7, "mynet")):
        net, cid = (v, "abc123") if i % 2 else ("mynet", v)
        hostile = bad_text(v)
        refused, specs = refuses(masq.ipt_rules, net, cid, V4)
        escaped = False
        if not refused:
            for _, spec in specs:
                argv = restore_argv(spec)
                comment = argv[argv.index("--comment") + 1]
                want = format_comment(net, cid).encode()[:255].decode("utf-8", "ignore")
                assert comment == want       # Go's `name: %q id: %q`, as iptables keeps it
                escaped = comment.isprintable()
        tally("masq iptables comment (name, CNI_CONTAINERID; Go's %q escapes)", hostile, refused,
              escaped=escaped)
        refused, specs = refuses(portmap.ipt_entry_rules, net, cid, MAPS)
        if not refused:
            for spec in specs:
                argv = restore_argv(spec)
                text = f'dnat name: "{net}" id: "{cid}"'
                comment = argv[argv.index("--comment") + 1]
                if len(text.encode()) <= 255:
                    assert comment == text
                else:                      # Go's cut to 253 + "...", of which iptables keeps 255 bytes
                    assert len(comment.encode()) <= 255 and comment.endswith("..")
                    assert text.startswith(comment.rstrip("."))
        tally("portmap comment (name, CNI_CONTAINERID)", hostile, refused)
        refused, lines = refuses(masq.nft_setup_lines, net, cid, "eth0", [V4], [])
        if not refused:
            for ln in lines:
                nft_check(ln)
        tally("masq nft comment (name, CNI_CONTAINERID)", hostile, refused)
        refused, lines = refuses(portmap.nft_lines, cid, MAPS, V4)
        if not refused:
            for ln in lines:
                nft_check(ln)
        tally("portmap nft comment (CNI_CONTAINERID)", hostile and net == "mynet", refused)


def test_ifname_spoofchk_and_masq(monkeypatch):
    captured = []
    monkeypatch.setattr(nft_text, "apply", lambda lines: captured.append(list(lines)))
    ok_chars = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
    for v in values(8, "eth0"):
        refused, _ = refuses(spoofchk.validate, "ctr1", v, code=4)
        if not refused:
            captured.clear()
            spoofchk.setup("ctr1", v, "veth1234", "0A:58:0a:00:00:02")
            assert len(captured[0]) == 10
            for ln in captured[0]:
                nft_check(ln)
            rules.check_lines(captured[0], "nft")
        tally("CNI_IFNAME (macspoofchk chain names)", not (v and set(v) <= ok_chars), refused)
        refused, lines = refuses(masq.nft_setup_lines, "mynet", "ctr1", v, [V4], [])
        if not refused:
            for ln in lines:
                nft_check(ln)
        tally("CNI_IFNAME (masq nft comment)", bad_text(v), refused)


def test_mac_and_zone():
    for v in values(9, "0a:58:0a:00:00:02"):
        refused, out = refuses(rules.mac, v)
        parts = v.split(":")
        good = len(parts) == 6 and all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts)
        if not refused:
            assert out == v.lower()
        tally("mac", not good, refused)
        refused, _ = refuses(rules.zone_name, v)
        tally("firewalldZone", bad_text(v) or not v or "/" in v or any(c.isspace() for c in v)
              or len(v.encode()) > 64, refused)


def test_zz_summary(capsys):
    """Every class tried ~2000 inputs and refused every hostile one (printed for the report)."""
    with capsys.disabled():
        print()
        for cls, (tried, hostile, refused, accepted) in sorted(SUMMARY.items()):
            print(f"  {cls}: {tried} tried, {hostile} hostile, {refused} of them refused/escaped, "
                  f"{accepted} accepted")
    for cls, (tried, hostile, refused, _) in SUMMARY.items():
        assert hostile == refused, cls


# --- the builder's own checks -----------------------------------------------------------------------

def test_addresses_rendered_from_bytes():
    assert rules.addr(ipaddress.ip_address("fe80::1%eth0")) == "fe80::1"
    assert rules.host(ipaddress.ip_interface("10.1.2.3/8")) == "10.1.2.3/32"
    assert rules.net(ipaddress.ip_interface("fd00::5/64")) == "fd00::/64"
    assert rules.dnat_to(V6, 80) == "[fd00:88::2]:80" and rules.dnat_to(V4, 80) == "10.88.0.2:80"
    with pytest.raises(rules.RuleTextError):
        rules.addr("10.0.0.1")                 # strings never reach a rule unparsed
    for bad in (0, 65536, True, "80", 1.5):
        with pytest.raises(rules.RuleValueError):
            rules.port(bad)
    assert rules.mark(13) == "0x2000/0x2000"
    with pytest.raises(rules.RuleValueError):
        rules.mark(32)
    with pytest.raises(rules.RuleValueError):
        rules.proto("icmp")


def test_names():
    assert rules.ipt_chain("CNI-ADMIN") == "CNI-ADMIN"
    assert rules.ipt_chain("A" * 28)
    for bad in ("A" * 29, "-X", "!X", "X Y", "X\n", "", "é", None):
        with pytest.raises(rules.RuleValueError):
            rules.ipt_chain(bad, "iptablesAdminChainName")
    assert rules.nft_name("cni-br-iface-abc-eth0.1") == "cni-br-iface-abc-eth0.1"
    for bad in ("1abc", "a;b", "a b", "a" * 256, "a{", "a#"):
        with pytest.raises(rules.RuleValueError):
            rules.nft_name(bad)
    assert rules.ipt_ifname("b'r\\;#") == "b'r\\;#" and rules.ipt_ifname("cni0") == "cni0"
    with pytest.raises(rules.RuleValueError):
        rules.ipt_ifname('b"r')
    with pytest.raises(rules.RuleValueError):
        rules.nft_ifname("eth*")


def test_errors_name_the_field():
    with pytest.raises(rules.RuleValueError) as ei:
        rules.ipt_conditions(["-s", "1.2.3.4\nCOMMIT"], "conditionsV4")
    assert ei.value.code == 7 and "conditionsV4[1]" in ei.value.details and isinstance(ei.value, ValueError)
    with pytest.raises(rules.RuleValueError) as ei:
        rules.nft_conditions(["ip saddr 1.2.3.4", "accept ; flush ruleset"], "conditionsV6")
    assert "conditionsV6[1]" in ei.value.details and "';'" in ei.value.details
    with pytest.raises(rules.RuleValueError) as ei:
        rules.nft_conditions(["ip saddr {", "1.2.3.4"], "conditionsV4")
    assert "unbalanced braces" in ei.value.details
    assert rules.nft_conditions(["ip saddr { 10.0.0.1, 10.0.0.2 }", 'iifname "eth0"']) == \
        'ip saddr { 10.0.0.1, 10.0.0.2 } iifname "eth0"'
    assert rules.nft_comment("a" * 200) == 'comment "' + "a" * 128 + '"'
    assert rules.nft_comment("é" * 100).encode().__len__() <= len('comment ""') + 128


def test_last_line_of_defence(monkeypatch):
    """Batch.text() and nft_text.apply() refuse a line break, NUL or an overlong line before any
    exec, whatever a builder did."""
    from cni.fw import backend
    monkeypatch.setattr(backend, "check_run", lambda *a, **k: pytest.fail("a tool ran"))
    monkeypatch.setattr(backend, "require", lambda name: "/bin/" + name)
    for bad in ("-j ACCEPT\nCOMMIT", "x\ry", "x\0y", "x" * (rules.MAX_LINE + 1)):
        b = batch()
        b.append("CNI-X", bad)
        with pytest.raises(rules.RuleTextError) as ei:
            b.text()
        assert ei.value.code == 999
        with pytest.raises(rules.RuleTextError):
            nft_text.apply(["add table ip t", f"add rule ip t c {bad}"])
    b = batch()
    b.ensure_chain("CNI-X\nCOMMIT")
    with pytest.raises(rules.RuleTextError):
        b.text()


# --- through the plugins: code 7 naming the field, before anything runs -------------------------

def _dispatch(plugin, conf: dict, command="DEL", ifname="eth0"):
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": "ctr1", "CNI_IFNAME": ifname,
           "CNI_NETNS": "", "CNI_PATH": "/nonexistent"}
    with pytest.raises(CNIError) as ei:
        skel.dispatch(plugin, env, io.BytesIO(json.dumps(conf).encode()))
    return ei.value


@pytest.mark.parametrize("extra,field", [
    ({"conditionsV4": ["-s", "1.2.3.4\nCOMMIT"]}, "conditionsV4[1]"),
    ({"conditionsV6": ["ip6 saddr ::1 ; flush ruleset"]}, "conditionsV6[0]"),
    ({"externalSetMarkChain": "X\nCOMMIT"}, "externalSetMarkChain"),
    ({"runtimeConfig": {"portMappings": [{"hostPort": 1, "containerPort": 1},
                                         {"hostPort": 2, "containerPort": 2},
                                         {"hostPort": 3, "containerPort": 3, "hostIP": "fe80::1%x\n"}]}},
     "runtimeConfig.portMappings[2].hostIP"),
])
def test_portmap_plugin_refuses(monkeypatch, extra, field):
    from cni.fw import backend
    monkeypatch.setattr(backend, "run", lambda *a, **k: pytest.fail("a tool ran"))
    conf = {"cniVersion": "1.0.0", "name": "n", "type": "portmap", "backend": "iptables", **extra}
    if "conditionsV6" in extra:
        conf["backend"] = "nftables"
    err = _dispatch(portmap_plugin.PLUGIN, conf)
    assert err.code == 7 and field in err.details, err


@pytest.mark.parametrize("extra,field", [
    ({"iptablesAdminChainName": "CNI-ADMIN\n-A INPUT -j ACCEPT"}, "iptablesAdminChainName"),
    ({"firewalldZone": "trusted\0"}, "firewalldZone"),
])
def test_firewall_plugin_refuses(monkeypatch, extra, field):
    from cni.fw import backend
    monkeypatch.setattr(backend, "run", lambda *a, **k: pytest.fail("a tool ran"))
    conf = {"cniVersion": "1.0.0", "name": "n", "type": "firewall", "backend": "iptables", **extra}
    err = _dispatch(firewall_plugin.PLUGIN, conf)
    assert err.code == 7 and field in err.details, err


def test_firewall_prev_bridge_refused_at_add(monkeypatch):
    from cni.fw import backend
    monkeypatch.setattr(backend, "run", lambda *a, **k: pytest.fail("a tool ran"))
    prev = {"cniVersion": "1.0.0", "interfaces": [{"name": "br0 -j ACCEPT\n-A INPUT -j ACCEPT"}],
            "ips": [{"address": "10.0.0.2/24", "interface": 0}]}
    conf = firewall_plugin.Config.load({"cniVersion": "1.0.0", "name": "n", "type": "firewall",
                                        "backend": "iptables", "ingressPolicy": "same-bridge",
                                        "prevResult": prev})
    with pytest.raises(rules.RuleValueError) as ei:
        firewall_plugin.add(skel.Args("ADD", "ctr1", "/x", "eth0"), conf)
    assert ei.value.code == 7 and "prevResult.interfaces[0].name" in ei.value.details


def test_masq_gc_skips_attachments_no_rule_can_have(fake):  # noqa: F811
    """GC must not fail on an attachment whose name setup would refuse: it owns no rule."""
    key = f"chain inet {masq.TABLE} {masq.CHAIN}"
    f = fake(nft_lists={key: _nft_rules((1, masq.nft_comment("mynet", "eth0", "a")))}, available=("nft",))
    masq.gc("mynet", [("a", "eth0"), ("b", "e\x01\n")])
    assert f.names() == ["nft"]                      # read only: the valid rule stays
