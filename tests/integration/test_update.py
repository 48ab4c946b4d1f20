"""UPDATE (our extension) end to end: `cnitool update` (the runtime library) run in a test "host"
netns against real bridge attachments: port mappings replaced with the container's link and
connections untouched, bandwidth changed in place (same qdiscs), the firewall ingress policy
switched and back, a Go plugin updated through the DEL+ADD fallback, and SIGKILL at random
instants of an UPDATE never leaving a state with neither the old nor the new rules."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from chain_helpers import connect
from helpers import BIN, GO_BIN
from test_bandwidth import measure

pytestmark = pytest.mark.root

SERVER = r"""
import socket, threading
def hello():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 80)); s.listen(16)
    while True:
        c, _ = s.accept(); c.sendall(b"hello 80"); c.close()
def echo(c):
    while True:
        d = c.recv(100)
        if not d:
            return
        c.sendall(b"echo:" + d)
def echoes():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 9000)); s.listen(4)
    while True:
        threading.Thread(target=echo, args=(s.accept()[0],), daemon=True).start()
threading.Thread(target=hello, daemon=True).start()
threading.Thread(target=echoes, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""
# one long-lived TCP connection: "up" once connected, then one echo per line read on stdin
HOLDER = r"""
import socket, sys
c = socket.create_connection((sys.argv[1], 9000), timeout=5)
print("up", flush=True)
for line in sys.stdin:
    c.sendall(line.strip().encode()); print(c.recv(100).decode(), flush=True)
"""


class Attachment:
    """One network (a conflist in tmp_path/net.d) attached to `cont` by bin/cnitool run inside
    the test's host netns, with its own result cache and plugin directory."""

    def __init__(self, tmp_path, host, cont, name, cid, plugins, *, path=None):
        self.tmp, self.host, self.cont, self.name, self.cid = tmp_path, host, cont, name, cid
        self.confdir = tmp_path / "net.d"
        self.confdir.mkdir(exist_ok=True)
        self.cache = tmp_path / "cache"
        self.path = path or f"{BIN}:{GO_BIN}"
        self.write(plugins)

    def write(self, plugins) -> None:
        conf = {"cniVersion": "1.0.0", "name": self.name, "plugins": plugins}
        (self.confdir / f"{self.name}.conflist").write_text(json.dumps(conf))

    def env(self, caps) -> dict:
        e = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
             "NETCONFPATH": str(self.confdir), "CNI_PATH": self.path,
             "CNI_CACHE_DIR": str(self.cache), "CNI_CONTAINERID": self.cid}
        if caps is not None:
            e["CAP_ARGS"] = json.dumps(caps)
        return e

    def argv(self, verb) -> list:
        return ["ip", "netns", "exec", self.host.name, os.path.join(BIN, "cnitool"), verb,
                self.name, self.cont.path]

    def tool(self, verb, caps=None, *, check=True):
        r = subprocess.run(self.argv(verb), env=self.env(caps), capture_output=True, text=True,
                           timeout=120)
        if check:
            assert r.returncode == 0, f"cnitool {verb}: {r.stderr} {r.stdout}"
        return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else r

    def cached(self) -> dict:
        with open(self.cache / "results" / f"{self.name}-{self.cid}-eth0") as f:
            return json.load(f)


def bridge(tmp_path, name, br, subnet):
    return {"type": "bridge", "bridge": br, "isGateway": True,
            "ipam": {"type": "host-local", "dataDir": str(tmp_path / "ipam"),
                     "ranges": [[{"subnet": subnet}]], "routes": [{"dst": "0.0.0.0/0"}]}}


PORTMAP = {"type": "portmap", "backend": "iptables", "capabilities": {"portMappings": True}}
BANDWIDTH = {"type": "bandwidth", "capabilities": {"bandwidth": True}}


def link_state(cont) -> tuple:
    (a,) = cont.ipj("addr", "show", "dev", "eth0")
    return a["ifindex"], a["address"], [x["local"] for x in a["addr_info"] if x["family"] == "inet"]


def dnat_ports(host, name, cid) -> list:
    """Host ports of the container's DNAT rules and of its jumps in CNI-HOSTPORT-DNAT."""
    from cni.fw.portmap import dn_chain
    chain = dn_chain(name, cid)
    rules, jumps = [], []
    for ln in host.run("iptables-save", "-t", "nat").stdout.splitlines():
        toks = ln.split()
        if ln.startswith(f"-A {chain} ") and "DNAT" in toks:
            rules.append(int(toks[toks.index("--dport") + 1]))
        if ln.startswith("-A CNI-HOSTPORT-DNAT ") and ln.endswith(f"-j {chain}"):
            jumps.append(toks[toks.index("--dports") + 1])
    return sorted(rules), sorted(jumps)


def mapping(port):
    return {"portMappings": [{"hostPort": port, "containerPort": 80, "protocol": "tcp"}]}


@pytest.fixture
def outside(host_ns, make_netns):
    """A netns routed to the host over a veth: 192.168.77.2 -> host 192.168.77.1."""
    out = make_netns("out")
    host_ns.ip("link", "add", "cnitu-h", "type", "veth", "peer", "name", "cnitu-o", "netns", out.name)
    host_ns.ip("addr", "add", "192.168.77.1/24", "dev", "cnitu-h")
    host_ns.ip("link", "set", "cnitu-h", "up")
    out.ip("addr", "add", "192.168.77.2/24", "dev", "cnitu-o")
    out.ip("link", "set", "cnitu-o", "up")
    host_ns.run("sysctl", "-w", "net.ipv4.ip_forward=1")
    return out


@pytest.fixture
def server():
    procs = []

    def start(ns):
        p = subprocess.Popen(["ip", "netns", "exec", ns.name, sys.executable, "-c", SERVER],
                             stdout=subprocess.PIPE, text=True)
        procs.append(p)
        assert p.stdout.readline().strip() == "ready"
    yield start
    for p in procs:
        p.kill()
        p.wait()


def test_update_port_mappings(tmp_path, host_ns, cont_ns, outside, server, built_bins):
    att = Attachment(tmp_path, host_ns, cont_ns, "upnet", "cnit-up1",
                     [bridge(tmp_path, "upnet", "cni-up0", "10.94.0.0/24"), PORTMAP])
    res = att.tool("add", mapping(8080))
    try:
        cip = res["ips"][0]["address"].split("/")[0]
        outside.ip("route", "add", "10.94.0.0/24", "via", "192.168.77.1")
        server(cont_ns)
        assert connect(outside, "tcp", "192.168.77.1", 8080) == "hello 80"
        before = link_state(cont_ns)
        holder = subprocess.Popen(["ip", "netns", "exec", outside.name, sys.executable, "-c", HOLDER,
                                   cip], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "up"
            new = att.tool("update", mapping(8081))
            assert new == res                                   # portmap passes the result on
            assert connect(outside, "tcp", "192.168.77.1", 8081) == "hello 80"
            assert connect(outside, "tcp", "192.168.77.1", 8080, expect_ok=False) is None
            holder.stdin.write("still-here\n")
            holder.stdin.flush()
            assert holder.stdout.readline().strip() == "echo:still-here"   # connection survived
        finally:
            holder.kill()
            holder.wait()
        assert link_state(cont_ns) == before                    # same ifindex, MAC, IP
        cached = att.cached()
        assert cached["capabilityArgs"]["portMappings"] == mapping(8081)["portMappings"]
        assert cached["result"]["ips"] == res["ips"]
        assert dnat_ports(host_ns, "upnet", "cnit-up1") == ([8081], ["8081"])
        again = att.tool("update", mapping(8081))                # idempotent
        assert again == new and dnat_ports(host_ns, "upnet", "cnit-up1") == ([8081], ["8081"])
        # changing the interface plugin is refused and changes nothing
        att.write([bridge(tmp_path, "upnet", "cni-up0", "10.94.0.0/25"), PORTMAP])
        r = att.tool("update", mapping(8082), check=False)
        assert r.returncode == 1 and "interface plugin" in r.stderr and "error 7" in r.stderr
        assert dnat_ports(host_ns, "upnet", "cnit-up1") == ([8081], ["8081"])
        att.write([bridge(tmp_path, "upnet", "cni-up0", "10.94.0.0/24"), PORTMAP])
    finally:
        att.tool("del", mapping(8081))
    assert dnat_ports(host_ns, "upnet", "cnit-up1") == ([], [])
    assert not (att.cache / "results" / "upnet-cnit-up1-eth0").exists()


def _tbf(host, dev) -> dict:
    qs = json.loads(host.run("tc", "-s", "-j", "qdisc", "show", "dev", dev).stdout)
    (q,) = [q for q in qs if q["kind"] == "tbf"]
    return q


def test_update_bandwidth_in_place(tmp_path, host_ns, cont_ns, built_bins):
    from cni.names import ifb_name
    slow = {"ingressRate": 1_000_000, "ingressBurst": 80_000, "egressRate": 1_000_000,
            "egressBurst": 80_000}
    fast = {"ingressRate": 8_000_000, "ingressBurst": 80_000, "egressRate": 8_000_000,
            "egressBurst": 80_000}
    att = Attachment(tmp_path, host_ns, cont_ns, "bwnet", "cnit-bw1",
                     [bridge(tmp_path, "bwnet", "cni-ubw0", "10.95.0.0/24"), BANDWIDTH])
    res = att.tool("add", {"bandwidth": slow})
    try:
        cip, gw = res["ips"][0]["address"].split("/")[0], "10.95.0.1"
        veth = res["interfaces"][1]["name"]
        ifb = ifb_name("bwnet", "cnit-bw1")
        assert res["interfaces"][-1]["name"] == ifb
        rate = measure(cont_ns, host_ns, cip, 5301)                 # host -> container: veth TBF
        assert abs(rate - 125_000) <= 0.2 * 125_000, rate
        q_veth, q_ifb = _tbf(host_ns, veth), _tbf(host_ns, ifb)
        ifb_index = host_ns.ipj("link", "show", ifb)[0]["ifindex"]
        new = att.tool("update", {"bandwidth": fast})
        assert [i["name"] for i in new["interfaces"]] == [i["name"] for i in res["interfaces"]]
        n_veth, n_ifb = _tbf(host_ns, veth), _tbf(host_ns, ifb)
        assert n_veth["handle"] == q_veth["handle"] == "1:"
        assert n_ifb["handle"] == q_ifb["handle"] == "1:"
        assert n_veth["bytes"] >= q_veth["bytes"] > 0                # not recreated: counters kept
        assert n_veth["options"]["rate"] == 1_000_000 and n_ifb["options"]["rate"] == 1_000_000
        assert host_ns.ipj("link", "show", ifb)[0]["ifindex"] == ifb_index
        rate = measure(cont_ns, host_ns, cip, 5302)
        assert abs(rate - 1_000_000) <= 0.2 * 1_000_000, rate
        rate = measure(host_ns, cont_ns, gw, 5303)                   # container -> host: IFB TBF
        assert abs(rate - 1_000_000) <= 0.2 * 1_000_000, rate
        assert att.cached()["capabilityArgs"]["bandwidth"] == dict(sorted(fast.items()))
    finally:
        att.tool("del")
    assert host_ns.ip("link", "show", ifb_name("bwnet", "cnit-bw1"), check=False).returncode != 0


def _ping(src, ip, tries=3) -> bool:
    return any(src.run("ping", "-c1", "-W1", ip, check=False).returncode == 0 for _ in range(tries))


def test_update_firewall_ingress_policy(tmp_path, host_ns, make_netns, built_bins):
    """a1, a2 on network A (firewall, policy switched), b1 on B (same-bridge): b1 and a2 reach
    a1 while A is open, neither does while A is isolated, both do again once it is open."""
    host_ns.run("iptables", "-P", "FORWARD", "DROP")
    host_ns.run("sysctl", "-w", "net.bridge.bridge-nf-call-iptables=1", check=False)

    def fw(policy):
        return {"type": "firewall", "backend": "iptables", "ingressPolicy": policy}
    nets = {"A": ("fwua", "cni-fwua0", "10.96.1.0/24"), "B": ("fwub", "cni-fwub0", "10.96.2.0/24")}
    atts = {}
    try:
        for cname, net, policy in (("a1", "A", "open"), ("a2", "A", "open"), ("b1", "B", "same-bridge")):
            name, br, subnet = nets[net]
            d = tmp_path / cname
            d.mkdir()
            att = Attachment(d, host_ns, make_netns(cname), name, f"cnit-{cname}",
                             [bridge(tmp_path, name, br, subnet), fw(policy)])
            atts[cname] = (att, att.tool("add")["ips"][0]["address"].split("/")[0])
        a1, ip_a1 = atts["a1"]
        b1, a2 = atts["b1"][0].cont, atts["a2"][0].cont
        assert _ping(b1, ip_a1) and _ping(a2, ip_a1)
        a1.write([bridge(tmp_path, *nets["A"]), fw("isolated")])
        a1.tool("update")
        assert not _ping(b1, ip_a1, 1) and not _ping(a2, ip_a1, 1)
        a1.write([bridge(tmp_path, *nets["A"]), fw("open")])
        a1.tool("update")
        assert _ping(b1, ip_a1) and _ping(a2, ip_a1)
        saved = host_ns.run("iptables-save", "-t", "filter").stdout
        assert "cni-fwua0" not in saved and "cni-fwub0" in saved      # A's policy rules gone
    finally:
        for att, _ in atts.values():
            att.tool("del", check=False)


@pytest.mark.gobin("tuning")
def test_update_go_plugin_through_fallback(tmp_path, host_ns, cont_ns, built_bins):
    """bridge (ours) + tuning (Go 1.1.1, which answers UPDATE with code 4) + portmap (ours):
    tuning is updated by DEL+ADD, portmap by UPDATE, in one `cnitool update`."""
    pdir = tmp_path / "plugins"
    pdir.mkdir()
    for n in ("bridge", "host-local", "portmap"):
        os.symlink(os.path.join(BIN, n), pdir / n)
    os.symlink(os.path.join(GO_BIN, "tuning"), pdir / "tuning")
    r = subprocess.run([str(pdir / "tuning")], input='{"cniVersion":"1.0.0","name":"x","type":"tuning"}',
                       env={"CNI_COMMAND": "UPDATE", "CNI_CONTAINERID": "x", "CNI_NETNS": cont_ns.path,
                            "CNI_IFNAME": "eth0", "CNI_PATH": str(pdir)}, capture_output=True, text=True)
    assert r.returncode == 1 and json.loads(r.stdout)["code"] == 4      # what the fallback keys on

    def plugins(mtu):
        return [bridge(tmp_path, "gonet", "cni-ugo0", "10.97.0.0/24"),
                {"type": "tuning", "mtu": mtu, "sysctl": {"net.ipv4.conf.eth0.rp_filter": "2"}},
                PORTMAP]
    att = Attachment(tmp_path, host_ns, cont_ns, "gonet", "cnit-go1", plugins(1400), path=str(pdir))
    res = att.tool("add", mapping(8080))
    try:
        before = link_state(cont_ns)
        assert cont_ns.ipj("link", "show", "eth0")[0]["mtu"] == 1400
        att.write(plugins(1300))
        new = att.tool("update", mapping(8081))
        assert cont_ns.ipj("link", "show", "eth0")[0]["mtu"] == 1300
        assert link_state(cont_ns) == before
        assert new["ips"] == res["ips"]
        assert dnat_ports(host_ns, "gonet", "cnit-go1") == ([8081], ["8081"])
        assert json.loads(__import__("base64").b64decode(att.cached()["config"]))["plugins"][1]["mtu"] == 1300
    finally:
        att.tool("del", mapping(8081))
    assert dnat_ports(host_ns, "gonet", "cnit-go1") == ([], [])


def _kill(p) -> None:
    """SIGKILL the cnitool and every plugin or tool it started (its own session)."""
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:      # it had finished
        pass
    p.wait()


def test_update_sigkill(tmp_path, host_ns, cont_ns, built_bins):
    """~10 UPDATEs killed (SIGKILL, whole process group) at random instants: after each, the
    portmap rules are exactly the old or the new set and the TBF rate is the old or the new
    one; a completing UPDATE then converges, and DEL leaves nothing."""
    rnd = random.Random(17)
    caps = [{**mapping(8080), "bandwidth": {"ingressRate": 1_000_000, "ingressBurst": 80_000}},
            {**mapping(8081), "bandwidth": {"ingressRate": 8_000_000, "ingressBurst": 80_000}}]
    states = [([8080], ["8080"]), ([8081], ["8081"])]
    att = Attachment(tmp_path, host_ns, cont_ns, "killnet", "cnit-k1",
                     [bridge(tmp_path, "killnet", "cni-uk0", "10.98.0.0/24"), PORTMAP, BANDWIDTH])
    res = att.tool("add", caps[0])
    veth = res["interfaces"][1]["name"]
    try:
        t0 = time.monotonic()
        att.tool("update", caps[1])
        span = time.monotonic() - t0
        seen, stop = [], threading.Event()

        def watch():                     # the rules as anyone could see them meanwhile
            while not stop.is_set():
                seen.append(dnat_ports(host_ns, "killnet", "cnit-k1"))
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        killed = 0
        for i in range(10):
            target = caps[i % 2]
            p = subprocess.Popen(att.argv("update"), env=att.env(target), start_new_session=True,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rnd.uniform(0, span))
            if p.poll() is None:
                killed += 1
            _kill(p)
            assert dnat_ports(host_ns, "killnet", "cnit-k1") in states, i
            assert _tbf(host_ns, veth)["options"]["rate"] in (125_000, 1_000_000), i
        stop.set()
        watcher.join()
        assert killed >= 3, f"only {killed} of 10 UPDATEs were still running when killed"
        assert seen and all(x in states for x in seen), [x for x in seen if x not in states]
        att.tool("update", caps[0])                       # UPDATE again: converges
        assert dnat_ports(host_ns, "killnet", "cnit-k1") == states[0]
        assert _tbf(host_ns, veth)["options"]["rate"] == 125_000
        p = subprocess.Popen(att.argv("update"), env=att.env(caps[1]), start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0, span))
        _kill(p)
        assert dnat_ports(host_ns, "killnet", "cnit-k1") in states
    finally:
        att.tool("del", caps[0])                          # or DEL straight after a kill
    assert dnat_ports(host_ns, "killnet", "cnit-k1") == ([], [])
    assert host_ns.ip("link", "show", veth, check=False).returncode != 0
    assert not (att.cache / "results" / "killnet-cnit-k1-eth0").exists()


def test_update_tuning_keeps_originals_for_del(tmp_path, host_ns, cont_ns, built_bins):
    data = str(tmp_path / "tuning")

    def plugins(**kw):
        return [bridge(tmp_path, "tunet", "cni-utu0", "10.99.0.0/24"),
                {"type": "tuning", "dataDir": data, **kw}]

    def link():
        (ln,) = cont_ns.ipj("-d", "link", "show", "eth0")
        return ln["mtu"], "PROMISC" in ln["flags"], ln.get("promiscuity", 0) > 0, \
            "ALLMULTI" in ln["flags"]
    att = Attachment(tmp_path, host_ns, cont_ns, "tunet", "cnit-tu1",
                     plugins(mtu=1400, promisc=True, sysctl={"net.ipv4.conf.eth0.rp_filter": "2"}))
    att.tool("add")
    try:
        orig_mtu = 1500
        assert link()[0] == 1400 and link()[2]
        before = link_state(cont_ns)
        att.write(plugins(mtu=1300, allmulti=True, sysctl={"net.ipv4.conf.eth0.rp_filter": "1"}))
        att.tool("update")
        mtu, _, promisc, allmulti = link()
        assert (mtu, promisc, allmulti) == (1300, False, True)   # promisc dropped: original back
        assert cont_ns.run("sysctl", "-n", "net.ipv4.conf.eth0.rp_filter").stdout.strip() == "1"
        assert link_state(cont_ns) == before
        att.tool("update")                                         # idempotent
        assert link()[0] == 1300
        saved = json.loads(open(os.path.join(data, "cnit-tu1_eth0.json")).read())
        assert saved["mtu"] == orig_mtu and saved["allmulti"] is False and "promisc" not in saved
    finally:
        att.tool("del")
    # DEL restored the originals of ADD, not the values the UPDATE found
    assert not os.path.exists(os.path.join(data, "cnit-tu1_eth0.json"))


@pytest.mark.tool("nft")
def test_update_port_mappings_nftables(tmp_path, host_ns, cont_ns, server, built_bins):
    pm = {**PORTMAP, "backend": "nftables"}
    att = Attachment(tmp_path, host_ns, cont_ns, "nftnet", "cnit-nf1",
                     [bridge(tmp_path, "nftnet", "cni-unf0", "10.100.0.0/24"), pm])
    att.tool("add", mapping(8080))

    def ports():
        r = host_ns.run("nft", "-j", "list", "table", "ip", "cni_hostport", check=False)
        if r.returncode:
            return []
        out = []
        for o in json.loads(r.stdout)["nftables"]:
            rule = o.get("rule")
            if rule and rule.get("comment") == "cnit-nf1" and rule["chain"] == "hostports":
                out += [e["match"]["right"] for e in rule["expr"]
                        if "match" in e and e["match"]["left"].get("payload", {}).get("field") == "dport"]
        return out
    try:
        server(cont_ns)
        assert ports() == [8080]
        assert connect(host_ns, "tcp", "10.100.0.1", 8080) == "hello 80"
        att.tool("update", mapping(8081))
        assert ports() == [8081]
        assert connect(host_ns, "tcp", "10.100.0.1", 8081) == "hello 80"
        assert connect(host_ns, "tcp", "10.100.0.1", 8080, expect_ok=False) is None
        att.tool("update", {"portMappings": []})                 # no mappings: rules removed
        assert ports() == []
        att.tool("update", mapping(8082))
        assert ports() == [8082]
        att.write([bridge(tmp_path, "nftnet", "cni-unf0", "10.100.0.0/24"), PORTMAP])
        att.tool("update", mapping(8082))                        # backend switch: iptables
        assert ports() == [] and dnat_ports(host_ns, "nftnet", "cnit-nf1") == ([8082], ["8082"])
        assert connect(host_ns, "tcp", "10.100.0.1", 8082) == "hello 80"
        att.write([bridge(tmp_path, "nftnet", "cni-unf0", "10.100.0.0/24"), pm])
        att.tool("update", mapping(8082))                        # and back
        assert ports() == [8082] and dnat_ports(host_ns, "nftnet", "cnit-nf1") == ([], [])
    finally:
        att.tool("del", mapping(8082))
    assert ports() == []


def test_interface_plugin_update_rule(tmp_path, host_ns, cont_ns, built_bins):
    """bridge without an UPDATE handler: unchanged config -> prevResult; a change -> code 7."""
    from helpers import run_plugin
    conf = {"cniVersion": "1.0.0", "name": "ifnet", **bridge(tmp_path, "ifnet", "cni-uif0", "10.101.0.0/24")}

    def call(cmd, c):
        return run_plugin("bridge", cmd, c, container_id="cnit-if1", netns=cont_ns.path,
                          in_netns=host_ns.name, path=BIN)
    r = call("ADD", conf)
    assert r.rc == 0, r
    prev = r.json
    try:
        r = call("UPDATE", {**conf, "prevResult": prev})
        assert r.rc == 0 and r.json == prev, r
        r = call("UPDATE", {**conf, "bridge": "cni-uif1", "prevResult": prev})
        assert r.rc == 1 and r.json["code"] == 7 and "cannot change" in r.json["msg"], r
        assert host_ns.ip("link", "show", "cni-uif1", check=False).returncode != 0
        r = call("UPDATE", {**conf, "cniVersion": "0.4.0", "prevResult": prev})
        assert r.rc == 1 and r.json["code"] == 1, r
    finally:
        call("DEL", {**conf, "prevResult": prev})


def test_update_firewall_admin_chain(tmp_path, host_ns, cont_ns, built_bins):
    def plugins(**kw):
        return [bridge(tmp_path, "admnet", "cni-uad0", "10.102.0.0/24"),
                {"type": "firewall", "backend": "iptables", **kw}]
    att = Attachment(tmp_path, host_ns, cont_ns, "admnet", "cnit-ad1", plugins())
    att.tool("add")
    try:
        att.write(plugins(iptablesAdminChainName="CNIT-ADM2"))
        att.tool("update")
        fwd = host_ns.run("iptables", "-S", "CNI-FORWARD").stdout.splitlines()
        assert fwd[1].endswith("-j CNIT-ADM2"), fwd
        assert host_ns.run("iptables", "-S", "CNIT-ADM2", check=False).returncode == 0
        att.tool("update")
        assert host_ns.run("iptables", "-S", "CNI-FORWARD").stdout.splitlines() == fwd   # idempotent
    finally:
        att.tool("del")


def test_update_bandwidth_directions_on_and_off(tmp_path, host_ns, cont_ns, built_bins):
    from cni.names import ifb_name
    both = {"ingressRate": 8_000_000, "ingressBurst": 80_000, "egressRate": 8_000_000,
            "egressBurst": 80_000}
    att = Attachment(tmp_path, host_ns, cont_ns, "bw2net", "cnit-bw2",
                     [bridge(tmp_path, "bw2net", "cni-ubx0", "10.103.0.0/24"), BANDWIDTH])
    res = att.tool("add", {"bandwidth": both})
    veth, ifb = res["interfaces"][1]["name"], ifb_name("bw2net", "cnit-bw2")

    def kinds(dev):
        r = host_ns.run("tc", "-j", "qdisc", "show", "dev", dev, check=False)
        return sorted(q["kind"] for q in json.loads(r.stdout or "[]")) if r.returncode == 0 else None
    try:
        assert kinds(veth) == ["ingress", "tbf"] and kinds(ifb) == ["tbf"]
        out = att.tool("update", {"bandwidth": {"ingressRate": 8_000_000, "ingressBurst": 80_000}})
        assert kinds(veth) == ["noqueue", "tbf"] or kinds(veth) == ["tbf"]   # redirect gone
        assert kinds(ifb) is None and ifb not in [i["name"] for i in out["interfaces"]]
        out = att.tool("update", {"bandwidth": {"egressRate": 8_000_000, "egressBurst": 80_000}})
        assert "tbf" not in kinds(veth) and kinds(ifb) == ["tbf"]
        assert [i["name"] for i in out["interfaces"]].count(ifb) == 1
        out = att.tool("update", {"bandwidth": both})
        assert [i["name"] for i in out["interfaces"]] == [i["name"] for i in res["interfaces"]]
        assert "tbf" in kinds(veth) and "ingress" in kinds(veth)
        filt = host_ns.run("tc", "filter", "show", "dev", veth, "ingress").stdout
        assert f"Egress Redirect to device {ifb}" in filt
    finally:
        att.tool("del")
    assert kinds(ifb) is None
