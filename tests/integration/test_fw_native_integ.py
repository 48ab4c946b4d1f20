"""The firewall changes over netlink, against the real kernel in a test netns: no tool runs.

On this host iptables is the nf_tables flavour, so the iptables backend writes its rules over
netlink exactly as iptables-nft would; the nftables backend writes its tables over netlink
with no `nft` binary. Each test runs this thread inside the test netns (so our netlink sockets
belong to it) and fails if any tool is executed; the results are read back with the tools.

- masquerade and portmap: the iptables-save output equals the Go 1.1.1 plugins' for the same
  container, Go's DEL removes what ours added, ours removes what Go added;
- nftables backend: the same tables as the `nft -f` path, removed by DEL;
- DEL cleans both backends, so a host that switched backends leaks nothing;
- the plugins (bin/bridge with ipMasq, bin/portmap), traced with strace: no execve but their own.
"""
from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import subprocess

import pytest

from cni.std import process as proc
from cni.fw import backend, masq, portmap, portmap_config
from test_fw_masq_integ import CH, cni_rules, go_plugin, masq_nft_rules
from test_fw_portmap_integ import RAW, V4, V6, go_conf, nat, per_container

pytestmark = [pytest.mark.root, pytest.mark.tool("iptables-restore", "ip6tables-restore")]
PYTHON = "/usr/bin/python3"         # what `make` pins in the preamble (PYTHON ?= /usr/bin/python3)


@pytest.fixture
def netlink_in(monkeypatch):
    """Run this thread in `ns` with the netlink paths on; any tool exec fails the test."""
    from cni.netns import NetNS
    stack = contextlib.ExitStack()

    def no_tools(argv, *a, **kw):
        raise AssertionError(f"a tool ran: {argv}")

    def bind(ns):
        if not backend.iptables_nft(False):
            pytest.skip("iptables here is not the nf_tables flavour")
        monkeypatch.setattr(proc, "run", no_tools)
        monkeypatch.setattr(backend, "NATIVE", None)
        stack.enter_context(stack.enter_context(NetNS.open(ns.path)).enter())
    with stack:
        yield bind


@pytest.mark.gobin("bridge", "host-local")
def test_masq_iptables_matches_go_both_ways(host_ns, cont_ns, make_netns, netlink_in, tmp_path):
    go_ns = make_netns("gomasq")
    conf = {"cniVersion": "1.0.0", "name": "mynet", "type": "bridge", "bridge": "cnitbr0",
            "ipMasq": True, "ipam": {"type": "host-local", "subnet": "10.88.0.0/24",
                                     "dataDir": str(tmp_path / "ipam")}}
    res = go_plugin("bridge", go_ns, cont_ns, "ADD", conf)
    addr = ipaddress.ip_interface(res["ips"][0]["address"])
    netlink_in(host_ns)
    masq.setup("mynet", "abc123", "eth0", [addr], "iptables")
    masq.setup("mynet", "abc123", "eth0", [addr], "iptables")        # idempotent
    assert cni_rules(host_ns) == cni_rules(go_ns) and len(cni_rules(host_ns)) == 4
    masq.check("mynet", "abc123", "eth0", [addr], "iptables")
    masq.teardown("mynet", "abc123", "eth0", [addr])                 # ours removes ours
    assert cni_rules(host_ns) == []
    masq.setup("mynet", "abc123", "eth0", [addr], "iptables")
    subprocess.run(["ip", "netns", "exec", host_ns.name, "true"], check=True)
    # Go's DEL in the netns holding our rules removes them
    go_host = {"CNI_COMMAND": "DEL", "CNI_CONTAINERID": "abc123", "CNI_NETNS": cont_ns.path,
               "CNI_IFNAME": "eth0", "CNI_PATH": "/usr/lib/cni", "PATH": os.environ["PATH"]}
    del_conf = dict(conf, prevResult=res)
    r = subprocess.run(["ip", "netns", "exec", host_ns.name, "/usr/lib/cni/bridge"],
                       input=json.dumps(del_conf), env=go_host, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert cni_rules(host_ns) == []
    # and ours removes what Go added (in Go's netns)
    stack = contextlib.ExitStack()
    from cni.netns import NetNS
    with stack:
        stack.enter_context(stack.enter_context(NetNS.open(go_ns.path)).enter())
        masq.teardown("mynet", "abc123", "eth0", [addr])
    assert cni_rules(go_ns) == []


@pytest.mark.gobin("portmap")
def test_portmap_iptables_matches_go_both_ways(host_ns, cont_ns, make_netns, netlink_in):
    go_ns = make_netns("gopm")
    go_plugin("portmap", go_ns, cont_ns, "ADD", go_conf(cont_ns))
    netlink_in(host_ns)
    ms = portmap_config.normalize_mappings(RAW)
    portmap.add("mynet", "abc123", ms, [V4, V6], backend="iptables")
    for v6 in (False, True):
        assert nat(host_ns, v6) == nat(go_ns, v6)
    portmap.add("mynet", "abc123", ms, [V4, V6], backend="iptables")   # idempotent
    portmap.check("mynet", "abc123", ms, [V4, V6], backend="iptables")
    go_plugin("portmap", host_ns, cont_ns, "DEL", go_conf(cont_ns))     # Go removes ours
    for v6 in (False, True):
        assert per_container(nat(host_ns, v6)) == []
    from cni.netns import NetNS
    with NetNS.open(go_ns.path) as ns, ns.enter():
        portmap.delete("mynet", "abc123")                               # ours removes Go's
    for v6 in (False, True):
        assert per_container(nat(go_ns, v6)) == []


def test_nftables_backend_without_the_binary(host_ns, netlink_in):
    netlink_in(host_ns)
    ms = portmap_config.normalize_mappings(RAW[:2])
    masq.setup("mynet", "abc123", "eth0", [V4, V6], "nftables")
    portmap.add("mynet", "abc123", ms, [V4, V6], backend="nftables")
    masq.check("mynet", "abc123", "eth0", [V4, V6], "nftables")
    portmap.check("mynet", "abc123", ms, [V4, V6], backend="nftables")
    assert masq_nft_rules(host_ns).count(masq.nft_comment("mynet", "eth0", "abc123")) == 2
    text = host_ns.run("nft", "list", "ruleset").stdout
    assert "tcp dport 8080 dnat to 10.88.0.2:80" in text
    assert "udp dport 8081 dnat to [fd00:88::2]:81" in text
    masq.teardown("mynet", "abc123", "eth0", [V4, V6])
    portmap.delete("mynet", "abc123")
    text = host_ns.run("nft", "list", "ruleset").stdout
    assert "abc123" not in text and "dnat" not in text


def test_delete_cleans_both_backends(host_ns, netlink_in):
    """A host that switched backends between ADD and DEL leaks nothing."""
    netlink_in(host_ns)
    ms = portmap_config.normalize_mappings(RAW[:2])
    portmap.add("mynet", "abc123", ms, [V4], backend="iptables")
    portmap.add("mynet", "abc123", ms, [V4], backend="nftables")
    masq.setup("mynet", "abc123", "eth0", [V4], "iptables")
    masq.setup("mynet", "abc123", "eth0", [V4], "nftables")
    portmap.delete("mynet", "abc123", backend="nftables")
    masq.teardown("mynet", "abc123", "eth0", [V4], "iptables")
    assert per_container(nat(host_ns)) == [] and cni_rules(host_ns) == [] or \
        all(CH not in ln for ln in cni_rules(host_ns))
    assert [ln for ln in cni_rules(host_ns) if "abc123" in ln] == []
    assert "abc123" not in host_ns.run("nft", "list", "ruleset").stdout


@pytest.mark.tool("strace")
def test_plugins_exec_nothing(host_ns, cont_ns, tmp_path):
    """bridge (ipMasq) and portmap ADD, CHECK and DEL through bin/: the only execve is their own."""
    from test_fw_masq_integ import backend as _b  # noqa: F401
    if not backend.iptables_nft(False):
        pytest.skip("iptables here is not the nf_tables flavour")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    bindir = os.path.join(root, "bin")
    net = {"cniVersion": "1.0.0", "name": "cnit-noexec", "type": "bridge", "bridge": "cnitbrx",
           "ipMasq": True, "ipam": {"type": "host-local", "subnet": "10.77.0.0/24",
                                    "dataDir": str(tmp_path / "ipam")}}
    env = {"CNI_CONTAINERID": "noexec1", "CNI_NETNS": cont_ns.path, "CNI_IFNAME": "eth0",
           "CNI_PATH": bindir, "PATH": os.environ["PATH"]}

    def run(plugin, cmd, conf):
        trace = tmp_path / f"{plugin}-{cmd}.trace"
        r = subprocess.run(["ip", "netns", "exec", host_ns.name, "strace", "-f", "-qq", "-e",
                            "trace=execve", "-o", str(trace), os.path.join(bindir, plugin)],
                           input=json.dumps(conf), env=dict(env, CNI_COMMAND=cmd),
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        execs = [ln.split("execve(", 1)[1].split(",", 1)[0].strip('"')
                 for ln in trace.read_text().splitlines() if "execve(" in ln and "= 0" in ln]
        # the plugin file itself, then the interpreter its sh preamble execs: nothing else
        assert execs[0] == os.path.join(bindir, plugin) and set(execs[1:]) <= {PYTHON}, execs
        return json.loads(r.stdout) if r.stdout.strip() else None
    res = run("bridge", "ADD", net)
    pm = {"cniVersion": "1.0.0", "name": "cnit-noexec", "type": "portmap", "prevResult": res,
          "runtimeConfig": {"portMappings": RAW[:2]}}
    pres = run("portmap", "ADD", pm)
    assert any("MASQUERADE" in ln for ln in cni_rules(host_ns))
    assert any("DNAT" in ln for ln in nat(host_ns))
    run("portmap", "CHECK", dict(pm, prevResult=pres))
    run("bridge", "CHECK", dict(net, prevResult=res))
    run("portmap", "DEL", pm)
    run("bridge", "DEL", dict(net, prevResult=res))
    assert [ln for ln in nat(host_ns) if "noexec1" in ln] == []
    assert [ln for ln in cni_rules(host_ns) if "noexec1" in ln] == []
