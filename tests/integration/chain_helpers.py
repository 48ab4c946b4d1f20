"""The chain the meta-plugin tests build on: our bridge ADDed in a test "host" netns, a plugin
chained after it (stdin as libcni builds it), and a tiny TCP/UDP server and client to prove
connectivity through it."""
from __future__ import annotations

import subprocess
import sys

from helpers import BIN, GO_BIN, run_plugin

CNI_PATH = f"{BIN}:{GO_BIN}"

# A tiny server run inside a container: TCP replies "hello <port>", UDP echoes "echo:<data>".
SERVER = r"""
import socket, sys, threading
def tcp(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(16)
    while True:
        c, _ = s.accept(); c.sendall(b"hello %d" % port); c.close()
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port))
    while True:
        d, a = s.recvfrom(2048); s.sendto(b"echo:" + d, a)
for spec in sys.argv[1:]:
    proto, port = spec.split(":")
    threading.Thread(target=tcp if proto == "tcp" else udp, args=(int(port),), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""

CLIENT = r"""
import socket, sys
proto, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if proto == "tcp":
    s = socket.create_connection((host, port), timeout=3)
    print(s.recv(100).decode())
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
    s.sendto(b"ping", (host, port)); print(s.recv(100).decode())
"""


def bridge_conf(tmp_path, *, name="pmnet", bridge="cni-pm0", subnet="10.91.0.0/24", **extra):
    conf = {"cniVersion": "1.0.0", "name": name, "type": "bridge", "bridge": bridge,
            "isGateway": True, "ipam": {"type": "host-local", "dataDir": str(tmp_path / "ipam"),
                                        "ranges": [[{"subnet": subnet}]],
                                        "routes": [{"dst": "0.0.0.0/0"}]}}
    conf.update(extra)
    return conf


def run(plugin, command, conf, host, cont, cid, *, netns=None, exe=None, **kw):
    """Run a plugin with the test's host netns as its host; returns PluginResult."""
    return run_plugin(exe or plugin, command, conf, container_id=cid,
                      netns=cont.path if netns is None and cont is not None else (netns or ""),
                      in_netns=host.name, path=CNI_PATH, **kw)


def ok(r):
    assert r.rc == 0, f"rc={r.rc} stdout={r.stdout} stderr={r.stderr}"
    return r.json


def bridge_add(tmp_path, host, cont, cid, **kw):
    return ok(run("bridge", "ADD", bridge_conf(tmp_path, **kw), host, cont, cid))


def bridge_del(tmp_path, host, cont, cid, **kw):
    ok(run("bridge", "DEL", bridge_conf(tmp_path, **kw), host, cont, cid))


def chained(prev, plugin_conf, name="pmnet"):
    """The plugin's stdin as libcni builds it: name/cniVersion injected, prevResult attached."""
    conf = {"cniVersion": "1.0.0", "name": name, **plugin_conf}
    if prev is not None:
        conf["prevResult"] = prev
    return conf


def container_ip(result) -> str:
    return result["ips"][0]["address"].split("/")[0]


class Server:
    def __init__(self, ns, *specs):
        self.p = subprocess.Popen(["ip", "netns", "exec", ns.name, sys.executable, "-c", SERVER,
                                   *specs], stdout=subprocess.PIPE, text=True)
        assert self.p.stdout.readline().strip() == "ready"

    def stop(self):
        self.p.kill()
        self.p.wait()


def connect(ns, proto, host, port, *, expect_ok=True):
    r = ns.run(sys.executable, "-c", CLIENT, proto, host, str(port), check=False, timeout=20)
    if expect_ok:
        assert r.returncode == 0, f"{proto} {host}:{port} from {ns.name}: {r.stderr}"
    return r.stdout.strip() if r.returncode == 0 else None


def net_conf(tmp_path, nets: dict, net: str) -> dict:
    """bridge_conf for `nets[net]` = (network name, bridge, subnet)."""
    name, br, subnet = nets[net]
    return bridge_conf(tmp_path, name=name, bridge=br, subnet=subnet)


def two_bridges(tmp_path, host, make_netns, nets: dict):
    """a1, a2 on bridge A and b1 on bridge B of `nets` (a fixture body: yields {cname: (netns,
    net, ADD result)}, then DELs every container it added, even when a later ADD failed)."""
    made = {}
    try:
        for cname, net in (("a1", "A"), ("a2", "A"), ("b1", "B")):
            ns = make_netns(cname)
            made[cname] = (ns, net, ok(run("bridge", "ADD", net_conf(tmp_path, nets, net), host, ns,
                                           cname)))
        yield made
    finally:
        for cname, (ns, net, _) in made.items():
            run("bridge", "DEL", net_conf(tmp_path, nets, net), host, ns, cname)
