"""masq against the real tools inside a test netns; interop with the Go bridge plugin."""
from __future__ import annotations

import ipaddress
import json
import os
import subprocess

import pytest

from cni.std import process as proc
from cni.fw import backend, masq

pytestmark = pytest.mark.root
V4 = ipaddress.ip_interface("10.88.0.2/24")
V6 = ipaddress.ip_interface("fd00:88::2/64")
CH = "CNI-70a29d9dc18bc4d652ea5d59"
C = '-m comment --comment "name: \\"mynet\\" id: \\"abc123\\""'


class InNetns:
    """Route cni.std.process.run through `ip netns exec <ns>` and record each tool exec."""

    def __init__(self, ns, real):
        self.ns, self.real, self.calls = ns, real, []

    def __call__(self, argv, input=b"", env=None, timeout=30.0):
        self.calls.append(os.path.basename(argv[0]))
        return self.real(["ip", "netns", "exec", self.ns.name, *argv], input=input, env=env, timeout=timeout)


@pytest.fixture
def tools_in(monkeypatch):
    """Tools run in `ns`, and so does this thread (our netlink probes must see that netns).

    These tests observe the tool path: the netlink paths (tests/integration/test_fw_native_integ.py)
    are switched off here."""
    import contextlib
    from cni.fw import backend
    from cni.netns import NetNS
    monkeypatch.setattr(backend, "NATIVE", False)
    stack = contextlib.ExitStack()

    def bind(ns):
        runner = InNetns(ns, proc.run)
        monkeypatch.setattr(proc, "run", runner)
        stack.enter_context(stack.enter_context(NetNS.open(ns.path)).enter())
        return runner
    with stack:
        yield bind


def cni_rules(ns, v6=False) -> list:
    out = ns.run("ip6tables-save" if v6 else "iptables-save", "-t", "nat").stdout
    return [line for line in out.splitlines() if "CNI-" in line]


def masq_nft_rules(ns) -> list:
    r = ns.run("nft", "-j", "list", "chain", "inet", masq.TABLE, masq.CHAIN, check=False)
    if r.returncode:
        return []
    return [o["rule"]["comment"] for o in json.loads(r.stdout)["nftables"] if "rule" in o]


def go_plugin(name, ns, cont, command, conf, cid="abc123", ifname="eth0"):
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": cont.path,
           "CNI_IFNAME": ifname, "CNI_PATH": "/usr/lib/cni", "PATH": os.environ.get("PATH", "")}
    r = subprocess.run(["ip", "netns", "exec", ns.name, f"/usr/lib/cni/{name}"], input=json.dumps(conf),
                       env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout) if r.stdout.strip() else None


@pytest.mark.tool("iptables-restore", "ip6tables-restore")
def test_iptables_setup_check_teardown(host_ns, tools_in):
    calls = tools_in(host_ns).calls
    masq.setup("mynet", "abc123", "eth0", [V4, V6], "iptables")
    assert calls == ["iptables-save", "iptables-restore", "ip6tables-save", "ip6tables-restore"]
    assert cni_rules(host_ns) == [
        f":{CH} - [0:0]",
        f"-A POSTROUTING -s 10.88.0.2/32 {C} -j {CH}",
        f"-A {CH} -d 10.88.0.0/24 {C} -j ACCEPT",
        f"-A {CH} ! -d 224.0.0.0/4 {C} -j MASQUERADE"]
    assert cni_rules(host_ns, v6=True)[1:] == [
        f"-A POSTROUTING -s fd00:88::2/128 {C} -j {CH}",
        f"-A {CH} -d fd00:88::/64 {C} -j ACCEPT",
        f"-A {CH} ! -d ff00::/8 {C} -j MASQUERADE"]
    calls.clear()
    masq.setup("mynet", "abc123", "eth0", [V4, V6], "iptables")   # idempotent: reads only
    assert calls == ["iptables-save", "ip6tables-save"]
    masq.check("mynet", "abc123", "eth0", [V4, V6], "iptables")
    calls.clear()
    masq.teardown("mynet", "abc123", "eth0", [V4, V6])
    assert calls.count("iptables-restore") == 1 and calls.count("ip6tables-restore") == 1
    assert cni_rules(host_ns) == [] and cni_rules(host_ns, v6=True) == []
    masq.teardown("mynet", "abc123", "eth0", [V4, V6])          # again: fine
    with pytest.raises(masq.MasqCheckError):
        masq.check("mynet", "abc123", "eth0", [V4], "iptables")


@pytest.mark.tool("nft")
def test_nftables_setup_check_teardown(host_ns, tools_in):
    calls = tools_in(host_ns).calls
    masq.setup("mynet", "abc123", "eth0", [V4, V6], "nftables")
    masq.setup("mynet", "abc123", "eth0", [V4, V6], "nftables")   # stale copies replaced
    assert calls == ["nft", "nft"] * 2
    masq.setup("mynet", "other", "eth1", [ipaddress.ip_interface("10.88.0.3/24")], "nftables")
    want = masq.nft_comment("mynet", "eth0", "abc123")
    assert masq_nft_rules(host_ns).count(want) == 2
    text = host_ns.run("nft", "list", "table", "inet", masq.TABLE).stdout
    assert "ip saddr 10.88.0.2 ip daddr != 10.88.0.0/24 masquerade" in text
    assert "ip6 saddr fd00:88::2 ip6 daddr != fd00:88::/64 masquerade" in text
    assert "ip daddr 224.0.0.0/4 return" in text and "goto masq_checks" in text
    masq.check("mynet", "abc123", "eth0", [V4, V6], "nftables")
    masq.teardown("mynet", "abc123", "eth0", [V4, V6])
    assert masq_nft_rules(host_ns) == [masq.nft_comment("mynet", "eth1", "other")]
    with pytest.raises(masq.MasqCheckError):
        masq.check("mynet", "abc123", "eth0", [V4], "nftables")
    masq.gc("mynet", [])
    assert masq_nft_rules(host_ns) == []
    assert cni_rules(host_ns) == []  # the iptables side was never touched


@pytest.mark.tool("iptables-restore")
def test_iptables_gc(host_ns, tools_in):
    tools_in(host_ns)
    masq.setup("mynet", "keep", "eth0", [V4], "iptables")
    masq.setup("mynet", "drop", "eth0", [ipaddress.ip_interface("10.88.0.3/24")], "iptables")
    masq.setup("othernet", "x", "eth0", [ipaddress.ip_interface("10.89.0.3/24")], "iptables")
    masq.gc("mynet", [{"containerID": "keep", "ifname": "eth0"}])
    text = "\n".join(cni_rules(host_ns))
    assert backend.chain_name("mynet", "keep") in text and backend.chain_name("othernet", "x") in text
    assert backend.chain_name("mynet", "drop") not in text


@pytest.mark.gobin("bridge", "host-local")
@pytest.mark.tool("iptables-restore", "ip6tables-restore")
def test_go_bridge_interop(host_ns, cont_ns, tools_in, tmp_path):
    """Go ADD -> our teardown leaves nothing; our setup -> Go DEL leaves nothing."""
    tools_in(host_ns)
    conf = {"cniVersion": "1.0.0", "name": "mynet", "type": "bridge", "bridge": "cni-test-br0",
            "isGateway": True, "ipMasq": True,
            "ipam": {"type": "host-local", "dataDir": str(tmp_path),
                     "ranges": [[{"subnet": "10.88.0.0/24"}], [{"subnet": "fd00:88::/64"}]]}}
    res = go_plugin("bridge", host_ns, cont_ns, "ADD", conf)
    ips = [ipaddress.ip_interface(i["address"]) for i in res["ips"]]
    assert len(cni_rules(host_ns)) == 4 and len(cni_rules(host_ns, v6=True)) == 4
    masq.check("mynet", "abc123", "eth0", ips, "iptables")          # Go's rules satisfy our CHECK
    masq.teardown("mynet", "abc123", "eth0", ips)
    assert cni_rules(host_ns) == [] and cni_rules(host_ns, v6=True) == []
    masq.setup("mynet", "abc123", "eth0", ips, "iptables")
    assert len(cni_rules(host_ns)) == 4
    go_plugin("bridge", host_ns, cont_ns, "DEL", conf)
    assert cni_rules(host_ns) == [] and cni_rules(host_ns, v6=True) == []
