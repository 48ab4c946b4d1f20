"""Our zipapps on a minimal node: Debian bookworm minbase + python3-minimal only.

The chroot (debootstrap from Debian's packages, cached in /var/tmp/pycni-chroot
or $PYCNI_CHROOT between runs) has no json module, no iptables and no nft. Each
plugin runs inside it through the exec protocol, in a private mount namespace
and inside its own "node" netns, against a container netns; kernel state is
checked from outside.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid

import pytest

CHROOT = os.environ.get("PYCNI_CHROOT", "/var/tmp/pycni-chroot")
MIRROR = os.environ.get("PYCNI_DEBIAN_MIRROR", "http://deb.debian.org/debian")
PLUGINS = ("loopback", "bridge", "host-local", "ptp", "portmap")
pytestmark = [pytest.mark.root, pytest.mark.slow]


def _build_chroot() -> str | None:
    """Debootstrap the chroot once; return a skip reason or None."""
    if os.path.exists(os.path.join(CHROOT, ".pycni-ready")):
        return None
    if not shutil.which("debootstrap"):
        if not shutil.which("apt-get"):
            return "debootstrap missing and apt-get unavailable"
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        r = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                            "debootstrap"], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env)
            r = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                                "debootstrap"], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            return f"cannot install debootstrap: {r.stderr.strip()[-200:]}"
    partial = CHROOT + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    r = subprocess.run(["debootstrap", "--variant=minbase", "--include=python3-minimal",
                        "bookworm", partial, MIRROR], capture_output=True, text=True,
                       timeout=1200)
    if r.returncode != 0:
        return f"debootstrap failed: {(r.stdout + r.stderr).strip()[-300:]}"
    shutil.rmtree(CHROOT, ignore_errors=True)
    os.rename(partial, CHROOT)
    open(os.path.join(CHROOT, ".pycni-ready"), "w").close()
    return None


@pytest.fixture(scope="module")
def chroot(built_bins):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    missing = [p for p in PLUGINS if not os.path.exists(os.path.join(built_bins, p))]
    if missing:
        pytest.skip(f"plugins not built yet: {', '.join(missing)}")
    why = _build_chroot()
    if why:
        pytest.skip(why)
    for tool in ("iptables", "nft", "ip6tables", "iptables-legacy"):
        for d in ("usr/sbin", "sbin", "usr/bin", "bin"):
            assert not os.path.exists(os.path.join(CHROOT, d, tool)), f"{tool} in the chroot"
    dest = os.path.join(CHROOT, "opt", "cni", "bin")
    os.makedirs(dest, exist_ok=True)
    for p in PLUGINS:
        shutil.copy(os.path.join(built_bins, p), os.path.join(dest, p))
    os.makedirs(os.path.join(CHROOT, "run", "netns"), exist_ok=True)
    r = subprocess.run(["chroot", CHROOT, "/usr/bin/python3", "-c", "import json"],
                       capture_output=True)
    assert r.returncode != 0, "python3-minimal should not have json"
    shutil.rmtree(os.path.join(CHROOT, "var", "lib", "cni"), ignore_errors=True)
    return CHROOT


class Exec:
    """Run one of the chroot's plugins via the exec protocol, inside the node netns."""

    def __init__(self, root: str, node, cont):
        self.root, self.node, self.cont = root, node, cont
        self.cid = "emb-" + uuid.uuid4().hex[:10]

    def __call__(self, command: str, conf: dict, *, ifname="eth0", prev=None, netns=None):
        conf = dict(conf)
        if prev is not None:
            conf["prevResult"] = prev
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND": command,
               "CNI_CONTAINERID": self.cid, "CNI_IFNAME": ifname,
               "CNI_NETNS": self.cont.path if netns is None else netns,
               "CNI_PATH": "/opt/cni/bin"}
        plugin = conf["type"]
        d = self.root
        script = (f"mount -t proc proc {d}/proc && mount --rbind /dev {d}/dev && "
                  f"mount -t sysfs sysfs {d}/sys && mount --rbind /run/netns {d}/run/netns && "
                  f"exec chroot {d} /opt/cni/bin/{plugin}")
        r = subprocess.run(["ip", "netns", "exec", self.node.name, "unshare", "-m",
                            "--propagation", "private", "sh", "-c", script],
                           input=json.dumps(conf), capture_output=True, text=True, env=env,
                           timeout=60)
        return r


def ok(r):
    assert r.returncode == 0, f"rc={r.returncode}\nstdout={r.stdout}\nstderr={r.stderr}"
    return json.loads(r.stdout) if r.stdout.strip() else None


@pytest.fixture
def ex(chroot, make_netns):
    return Exec(chroot, make_netns("node"), make_netns("cont"))


def leases(root: str, net: str) -> list:
    d = os.path.join(root, "var", "lib", "cni", "networks", net)
    if not os.path.isdir(d):
        return []
    # reservations only: not the lock, the round-robin marks, or our owner index files
    return [f for f in os.listdir(d)
            if f != "lock" and not f.startswith(("last_reserved_ip", "."))]


def v4(ns, dev):
    info = ns.ipj("addr", "show", "dev", dev)
    return [f"{a['local']}/{a['prefixlen']}" for a in info[0]["addr_info"] if a["family"] == "inet"]


def test_loopback(ex):
    ex.cont.ip("link", "set", "lo", "down")
    conf = {"cniVersion": "1.0.0", "name": "emb-lo", "type": "loopback"}
    res = ok(ex("ADD", conf, ifname="lo"))
    assert res["cniVersion"] == "1.0.0"
    assert "UP" in ex.cont.ipj("link", "show", "lo")[0]["flags"]
    assert "127.0.0.1/8" in v4(ex.cont, "lo")
    ok(ex("CHECK", conf, ifname="lo", prev=res))
    ok(ex("DEL", conf, ifname="lo", prev=res))
    ok(ex("DEL", conf, ifname="lo"))


def test_bridge_host_local(ex):
    net = "emb-br-" + ex.cid[-6:]
    conf = {"cniVersion": "1.0.0", "name": net, "type": "bridge", "bridge": "cnitembr0",
            "isGateway": True, "ipMasq": False,
            "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.250.7.0/24"}]],
                     "routes": [{"dst": "0.0.0.0/0"}]}}
    res = ok(ex("ADD", conf))
    assert res["ips"][0]["address"] == "10.250.7.2/24"
    assert v4(ex.cont, "eth0") == ["10.250.7.2/24"]
    assert "10.250.7.1/24" in v4(ex.node, "cnitembr0")
    ports = ex.node.ipj("link", "show", "master", "cnitembr0")
    assert len(ports) == 1
    assert leases(ex.root, net) == ["10.250.7.2"]
    ok(ex("CHECK", conf, prev=res))
    ok(ex("DEL", conf, prev=res))
    assert ex.node.ipj("link", "show", "master", "cnitembr0") == []
    assert not any(i["ifname"] == "eth0" for i in ex.cont.ipj("link"))
    assert leases(ex.root, net) == []
    ok(ex("DEL", conf, prev=res))
    ok(ex("DEL", conf, netns=""))


def test_ptp_host_local(ex):
    net = "emb-ptp-" + ex.cid[-6:]
    conf = {"cniVersion": "1.0.0", "name": net, "type": "ptp", "ipMasq": False,
            "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.250.8.0/24"}]],
                     "routes": [{"dst": "0.0.0.0/0"}]}}
    res = ok(ex("ADD", conf))
    ip = res["ips"][0]["address"].split("/")[0]
    assert v4(ex.cont, "eth0") == [res["ips"][0]["address"]]
    routes = ex.node.ipj("route", "show", ip)
    assert routes and routes[0]["dst"] == ip
    assert leases(ex.root, net) == [ip]
    ok(ex("CHECK", conf, prev=res))
    ok(ex("DEL", conf, prev=res))
    assert ex.node.ipj("route", "show", ip) == []
    assert [i["ifname"] for i in ex.node.ipj("link")] == ["lo"]
    assert leases(ex.root, net) == []
    ok(ex("DEL", conf, prev=res))


def test_ipmasq_and_portmap_without_firewall_tools(ex):
    """No iptables, no nft: masquerade and port mappings go to the node's nf_tables over
    netlink (Go's nftables layout), and DEL removes them."""
    net = "emb-masq-" + ex.cid[-6:]
    conf = {"cniVersion": "1.0.0", "name": net, "type": "bridge", "bridge": "cnitembr1",
            "isGateway": True, "ipMasq": True,
            "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.250.9.0/24"}]]}}
    res = ok(ex("ADD", conf))
    ip = res["ips"][0]["address"].split("/")[0]
    ruleset = ex.node.run("nft", "list", "ruleset").stdout
    assert f"ip saddr {ip} ip daddr != 10.250.9.0/24 masquerade" in ruleset, ruleset
    pm = {"cniVersion": "1.0.0", "name": net, "type": "portmap",
          "runtimeConfig": {"portMappings": [{"hostPort": 18080, "containerPort": 80,
                                              "protocol": "tcp"}]}}
    pres = ok(ex("ADD", pm, prev=res))
    ruleset = ex.node.run("nft", "list", "ruleset").stdout
    assert f"tcp dport 18080 dnat to {ip}:80" in ruleset, ruleset
    ok(ex("CHECK", pm, prev=pres))
    ok(ex("CHECK", conf, prev=res))
    ok(ex("DEL", pm, prev=pres))
    ok(ex("DEL", conf, prev=res))
    ruleset = ex.node.run("nft", "list", "ruleset").stdout
    assert ip not in ruleset and "dnat" not in ruleset, ruleset
    assert not any(i["ifname"] == "eth0" for i in ex.cont.ipj("link"))
    assert leases(ex.root, net) == []
    ok(ex("DEL", pm, prev=pres))
    ok(ex("DEL", conf))
    ok(ex("DEL", conf, netns=""))
