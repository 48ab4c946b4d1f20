"""bridge `vlan` + `isGateway` (issue 15): the gateway address goes on `<bridge>.<vlan>`, one end
of a veth pair in the host netns whose peer is a bridge port untagged in that VLAN (as current
Go's ensureVlanInterface), and that interface is listed in the result.

This kernel has no bridge VLAN filtering: the bridge-VLAN requests are compared byte for byte
with what `bridge vlan add/del ... master` sends, and the rest of ADD/CHECK/DEL runs against the
kernel with those three calls recorded instead of sent.
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import pytest

from helpers import BIN, ROOT

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit"))
from test_links_netlink import _DUMP, ours  # noqa: E402

pytestmark = [pytest.mark.root]
RTM_SETLINK, RTM_DELLINK = 19, 17

# The bridge plugin, in-process, with the three bridge-VLAN calls recorded (not sent) and the
# bridge made without vlan_filtering: everything else talks to the kernel.
DRIVER = r"""
import json, os, sys
sys.path[:0] = [os.path.join(sys.argv[1], "lib"), os.path.join(sys.argv[1], "plugins")]
from cni import skel
from cni.nl.rtnl import Rtnl
calls = []
def record(kind):
    def f(self, ref=None, *a, **kw):
        name = self.link_get(ref).name if ref is not None else None
        calls.append([kind, name, list(a), kw])
        return {self.index(ref): [(1, 6)]} if kind == "list" else None
    return f
Rtnl.bridge_vlan_add, Rtnl.bridge_vlan_del = record("add"), record("del")
Rtnl.bridge_vlan_list = record("list")
_add = Rtnl.bridge_add
Rtnl.bridge_add = lambda self, name, **kw: _add(self, name, **{k: v for k, v in kw.items()
                                                          if k != "vlan_filtering"})
import bridge
rc = skel.run(bridge.PLUGIN)
with open(os.environ["VLAN_CALLS"], "w") as f:
    json.dump(calls, f)
sys.stdout.flush()
os._exit(rc)
"""


@pytest.fixture
def drive(tmp_path, host_ns, cont_ns, built_bins):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)

    def run(cmd, conf, cid="cnit-vgw", netns=None):
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
               "CNI_COMMAND": cmd, "CNI_CONTAINERID": cid,
               "CNI_NETNS": (netns or cont_ns).path,
               "CNI_IFNAME": "eth0", "CNI_PATH": BIN, "VLAN_CALLS": str(tmp_path / "calls.json")}
        p = subprocess.run(["ip", "netns", "exec", host_ns.name, sys.executable, "-S", str(script),
                            ROOT], input=json.dumps(conf).encode(), env=env,
                           capture_output=True, timeout=60)
        calls = json.loads((tmp_path / "calls.json").read_text()) \
            if (tmp_path / "calls.json").exists() else []
        (tmp_path / "calls.json").unlink(missing_ok=True)
        out = json.loads(p.stdout) if p.stdout.strip() else None
        return p.returncode, out, calls
    return run


def conf(tmp_path, **kw):
    c = {"cniVersion": "1.0.0", "name": "cnit-vgw", "type": "bridge", "bridge": "cnitvb0",
         "isGateway": True, "vlan": 10,
         "ipam": {"type": "host-local", "dataDir": str(tmp_path / "ipam"),
                  "ranges": [[{"subnet": "10.96.0.0/24"}], [{"subnet": "fd00:96::/64"}]]}}
    c.update(kw)
    return c


def addrs(ns, dev):
    return sorted(f"{a['local']}/{a['prefixlen']}" for a in ns.ipj("addr", "show", dev)[0]["addr_info"]
                  if a["scope"] == "global")


def test_vlan_gateway_interface(drive, host_ns, make_netns, tmp_path):
    c = conf(tmp_path)
    rc, res, calls = drive("ADD", c)
    assert rc == 0, res
    names = [i["name"] for i in res["interfaces"]]
    assert names[0] == "cnitvb0" and names[2] == "eth0" and names[3] == "cnitvb0.10"
    gw_if = host_ns.ipj("-d", "link", "show", "cnitvb0.10")[0]
    assert gw_if["linkinfo"]["info_kind"] == "veth" and "master" not in gw_if
    assert res["interfaces"][3] == {"name": "cnitvb0.10", "mac": gw_if["address"]}
    # the gateways sit on cnitvb0.10, not on the bridge
    assert addrs(host_ns, "cnitvb0.10") == ["10.96.0.1/24", "fd00:96::1/64"]
    assert addrs(host_ns, "cnitvb0") == []
    # its peer is a port of the bridge, untagged in VLAN 10; so is the container's veth
    peer = next(lk for lk in host_ns.ipj("link", "show")
                if lk.get("master") == "cnitvb0" and lk["ifname"] != names[1])
    assert ["add", peer["ifname"], [10], {"pvid": True, "untagged": True}] in calls
    assert ["del", peer["ifname"], [1], {}] in calls                 # default VLAN removed
    assert ["add", names[1], [10], {"pvid": True, "untagged": True}] in calls
    # a second container on the VLAN reuses the gateway interface
    cont2 = make_netns("vgw2")
    rc, res2, calls = drive("ADD", c, cid="cnit-vgw2", netns=cont2)
    assert rc == 0, res2
    assert [i["name"] for i in res2["interfaces"]][3] == "cnitvb0.10"
    assert sum(1 for lk in host_ns.ipj("link", "show") if lk.get("master") == "cnitvb0") == 3
    rc, out, _ = drive("CHECK", dict(c, prevResult=res))
    assert rc == 0, out
    assert drive("DEL", c, cid="cnit-vgw2", netns=cont2)[0] == 0
    rc, out, _ = drive("DEL", c)
    assert rc == 0, out
    assert host_ns.ipj("link", "show", "cnitvb0.10")                 # shared: DEL keeps it


def test_no_vlan_keeps_gateway_on_bridge(drive, host_ns, tmp_path):
    c = conf(tmp_path, vlan=0)
    rc, res, calls = drive("ADD", c)
    assert rc == 0, res
    assert [i["name"] for i in res["interfaces"]][3:] == [] and calls == []
    assert addrs(host_ns, "cnitvb0") == ["10.96.0.1/24", "fd00:96::1/64"]
    assert drive("DEL", c)[0] == 0


def test_vlan_gateway_name_too_long(drive, host_ns, tmp_path):
    rc, out, _ = drive("ADD", conf(tmp_path, bridge="cnitvlanbr0123", vlan=4000))
    assert rc == 1 and out["code"] == 7 and "cnitvlanbr0123.4000" in out["details"], out
    assert [lk["ifname"] for lk in host_ns.ipj("link", "show")] == ["lo"]   # nothing made


def bridge_tool(ns: str, *argv: str) -> bytes:
    """The AF_BRIDGE RTM_SETLINK/RTM_DELLINK that `bridge -n ns vlan ARGV` sent."""
    r = subprocess.run(["strace", "-f", "-e", "trace=sendmsg", "-e", "write=all",
                        "bridge", "-n", ns, "vlan", *argv], capture_output=True, text=True)
    bufs, cur = [], None
    for line in r.stderr.splitlines():
        if line.startswith(" * ") and "bytes in buffer" in line:
            cur = bytearray()
            bufs.append(cur)
        elif _DUMP.match(line) and cur is not None:
            cur.extend(bytes.fromhex("".join(line[10:59].split())))
    for b in bufs:
        if len(b) >= 16 and struct.unpack_from("=IH", b)[1] in (RTM_SETLINK, RTM_DELLINK):
            return bytes(b)
    raise AssertionError(f"no bridge VLAN request captured:\n{r.stderr[-2000:]}")


def masked(b: bytes) -> bytes:
    """seq/pid zeroed; NLA_F_NESTED cleared on IFLA_AF_SPEC (this iproute2 leaves it off)."""
    out = bytearray(b[:8] + b"\0" * 8 + b[16:])
    off = 32
    while off + 4 <= len(out):
        ln, typ = struct.unpack_from("=HH", out, off)
        struct.pack_into("=H", out, off + 2, typ & 0x7FFF)
        off += (ln + 3) & ~3
    return bytes(out)


@pytest.mark.tool("strace", "bridge")
@pytest.mark.parametrize("argv,call", [
    (["add", "dev", "p1", "vid", "10", "pvid", "untagged"],
     lambda h, i: h.bridge_vlan_add(i, 10, pvid=True, untagged=True)),
    (["del", "dev", "p1", "vid", "1"], lambda h, i: h.bridge_vlan_del(i, 1)),
    (["add", "dev", "p1", "vid", "200"], lambda h, i: h.bridge_vlan_add(i, 200)),
])
def test_bridge_vlan_request_bytes(host_ns, argv, call):
    """Without `master`/`self` the request carries no IFLA_BRIDGE_FLAGS and the kernel applies
    it to the port (master), what Go's BridgeVlanAdd(..., master=true) spells out."""
    host_ns.ip("link", "add", "p1", "type", "veth", "peer", "name", "p2")
    idx = host_ns.ipj("link", "show", "p1")[0]["ifindex"]
    theirs = bridge_tool(host_ns.name, *argv)
    assert masked(ours(lambda h: call(h, idx))) == masked(theirs)


@pytest.mark.tool("strace")
def test_vlan_gateway_veth_request_bytes(host_ns):
    """The gateway pair: `ip link add vethX type veth peer name cnitvb0.10` with the bridge MTU."""
    from test_links_netlink import canon, iproute2
    theirs = iproute2(host_ns.name, "vethcnit0", "mtu", "1400", "type", "veth", "peer", "name",
                      "cnitvb0.10", "mtu", "1400")
    mine = ours(lambda h: h.veth_add("vethcnit0", "cnitvb0.10", mtu=1400))

    def unflag(tree):   # NLA_F_NESTED on VETH_INFO_PEER: we set it, this iproute2 does not
        return [(t & 0x7FFF, unflag(v) if isinstance(v, list) else v) for t, v in tree]
    assert unflag(canon(mine)) == unflag(canon(theirs))
