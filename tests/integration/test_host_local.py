"""host-local and static through the exec protocol (bin/host-local as a subprocess).

No network namespace is needed: IPAM only touches the data directory (tmp_path).
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time

import pytest

from helpers import ROOT, exec_ipam, ipam_env

OURS = os.path.join(ROOT, "bin", "host-local")
GO = "/usr/lib/cni/host-local"
VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]


def netconf(data_dir, ranges=None, ver="1.0.0", name="net", **ipam):
    d = {"type": "host-local", "dataDir": str(data_dir),
         "ranges": ranges or [[{"subnet": "10.1.0.0/24"}]]}
    d.update(ipam)
    return {"cniVersion": ver, "name": name, "type": "bridge", "ipam": d}


def run(conf, cmd="ADD", cid="c1", ifname="eth0", args="", binary=OURS):
    p, out = exec_ipam(binary, conf, cmd, cid, ifname, args)
    return p.returncode, out


def files(d, net="net"):
    return sorted(os.listdir(os.path.join(d, net)))


def reservations(d, net="net"):
    return [n for n in files(d, net) if n != "lock" and not n.startswith(
        ("last_reserved_ip.", "owner:", "."))]


@pytest.fixture
def bins(built_bins):
    return built_bins


@pytest.mark.parametrize("ver", VERSIONS)
def test_add_check_del_every_version(bins, tmp_path, ver):
    ranges = [[{"subnet": "10.1.0.0/24"}], [{"subnet": "fd00:1::/64"}]]
    conf = netconf(tmp_path, ranges, ver, routes=[{"dst": "0.0.0.0/0"}])
    rc, out = run(conf)
    assert rc == 0, out
    assert out["cniVersion"] == ver
    if ver in ("0.1.0", "0.2.0"):
        assert out["ip4"] == {"ip": "10.1.0.2/24", "gateway": "10.1.0.1",
                              "routes": [{"dst": "0.0.0.0/0"}]}
        assert out["ip6"] == {"ip": "fd00:1::2/64", "gateway": "fd00:1::1"}
        assert out["dns"] == {}
    else:
        ips = out["ips"]
        assert [i["address"] for i in ips] == ["10.1.0.2/24", "fd00:1::2/64"]
        assert all("interface" not in i for i in ips)
        assert ("version" in ips[0]) == ver.startswith("0.")
        assert out["routes"] == [{"dst": "0.0.0.0/0"}]
    assert (tmp_path / "net" / "10.1.0.2").read_bytes() == b"c1\r\neth0"
    if ver >= "0.4.0":
        assert run(conf, "CHECK")[0] == 0
        rc, out = run(conf, "CHECK", cid="other")
        assert rc == 1 and "failed to find" in out["msg"]
    assert run(conf, "DEL") == (0, None)
    assert run(conf, "DEL") == (0, None)  # idempotent
    assert files(tmp_path) == ["last_reserved_ip.0", "last_reserved_ip.1", "lock"]


def test_resolvconf_and_errors(bins, tmp_path):
    rcf = tmp_path / "resolv.conf"
    rcf.write_text("# c\n;c\nnameserver 1.1.1.1\nnameserver 8.8.8.8\ndomain a.b\n"
                   "search x.y z.w\noptions ndots:5 rotate\nbogus\n")
    rc, out = run(netconf(tmp_path, resolvConf=str(rcf)))
    assert rc == 0
    assert out["dns"] == {"nameservers": ["1.1.1.1", "8.8.8.8"], "domain": "a.b",
                          "search": ["x.y", "z.w"], "options": ["ndots:5", "rotate"]}
    rc, out = run(netconf(tmp_path, resolvConf=str(tmp_path / "missing")), cid="c2")
    assert rc == 1 and out["code"] == 5
    rc, out = run(netconf(tmp_path, [[{"subnet": "10.1.0.1/24"}]]), cid="c3")
    assert rc == 1 and out["code"] == 7 and "ipam.ranges[0][0].subnet" in out["details"]
    c = netconf(tmp_path)
    del c["ipam"]
    assert run(c)[1]["code"] == 7


def test_hostile_names(bins, tmp_path):
    for name in ["..", "../x", "a/b", "x" * 300]:
        rc, out = run(netconf(tmp_path, name=name))
        assert rc == 1 and out["code"] == 7, name
    for cid in ["../../etc/passwd", "a/b", "-x", "x" * 2000]:
        rc, out = run(netconf(tmp_path), cid=cid)
        assert rc == 1 and out["code"] == 4, cid
    rc, out = run(netconf(tmp_path), ifname="../../x")
    assert rc == 1 and out["code"] == 4
    assert not (tmp_path.parent / "x").exists()
    assert sorted(os.listdir(tmp_path)) in ([], ["net"])


def _spawn(conf_path, cmd, cid):
    f = open(conf_path, "rb")
    p = subprocess.Popen([OURS], stdin=f, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         env=ipam_env(cmd, cid))
    f.close()
    return p


def test_200_parallel_adds_then_dels(bins, tmp_path):
    conf_path = tmp_path / "conf.json"
    conf_path.write_text(json.dumps(netconf(tmp_path / "data", [[{"subnet": "10.2.0.0/22"}]])))
    procs = [_spawn(conf_path, "ADD", f"c{i}") for i in range(200)]
    addrs = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, out
        addrs.append(json.loads(out)["ips"][0]["address"])
    assert len(set(addrs)) == 200
    assert len(reservations(tmp_path / "data")) == 200
    procs = [_spawn(conf_path, "DEL", f"c{i}") for i in range(200)]
    for p in procs:
        p.communicate(timeout=120)
        assert p.returncode == 0
    assert files(tmp_path / "data") == ["last_reserved_ip.0", "lock"]


def test_sigkill_during_adds_leaves_a_usable_store(bins, tmp_path):
    data = tmp_path / "data"
    conf_path = tmp_path / "conf.json"
    conf_path.write_text(json.dumps(netconf(data, [[{"subnet": "10.3.0.0/24"}],
                                                   [{"subnet": "fd00:3::/64"}]])))
    rnd = random.Random(1234)
    killed = []
    for batch in range(6):
        procs = [(f"k{batch}-{i}", _spawn(conf_path, "ADD", f"k{batch}-{i}")) for i in range(10)]
        for cid, p in procs:
            time.sleep(rnd.uniform(0, 0.03))
            p.send_signal(signal.SIGKILL)
            killed.append(cid)
        for _, p in procs:
            p.communicate()
    d = data / "net"
    if d.exists():
        for n in os.listdir(d):
            if n == "lock" or n.startswith("."):
                continue
            assert os.path.getsize(d / n) > 0, f"empty file {n}"
    # the next operation cleans up and works
    rc, out = run(json.loads(conf_path.read_text()), cid="after")
    assert rc == 0, out
    assert not [n for n in os.listdir(d) if n.startswith(".") and n != ".pycni-owners"]
    held = {}
    for n in reservations(data):
        cid, ifname = (d / n).read_bytes().decode().split("\r\n")
        assert ifname == "eth0" and (cid in killed or cid == "after")
        held.setdefault(cid, []).append(n)
    # every address is held once; the ones a killed ADD got are freed by its DEL
    for cid in killed + ["after"]:
        assert run(json.loads(conf_path.read_text()), "DEL", cid=cid)[0] == 0
    assert files(data) == ["last_reserved_ip.0", "last_reserved_ip.1", "lock"]


def test_status(bins, tmp_path):
    conf = netconf(tmp_path / "data", ver="1.1.0")
    assert run(conf, "STATUS") == (0, None)
    (tmp_path / "file").write_text("x")
    rc, out = run(netconf(tmp_path / "file", ver="1.1.0"), "STATUS")
    assert rc == 1 and out["code"] == 50
    (tmp_path / "data2").mkdir()
    (tmp_path / "data2" / "net").write_text("a file where the network dir should be")
    rc, out = run(netconf(tmp_path / "data2", ver="1.1.0"), "STATUS")
    assert rc == 1 and out["code"] == 50
    # a full range: /30 has one address
    small = netconf(tmp_path / "data3", [[{"subnet": "10.4.0.0/30"}]], ver="1.1.0")
    assert run(small, "STATUS")[0] == 0
    assert run(small)[0] == 0
    rc, out = run(small, "STATUS")
    assert rc == 1 and out["code"] == 50 and "full" in out["details"]


@pytest.mark.root
@pytest.mark.tool("unshare")
def test_status_read_only_store(bins, tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    conf_path = tmp_path / "conf.json"
    conf_path.write_text(json.dumps(netconf(d, ver="1.1.0")))
    script = (f"mount -t tmpfs cnitest {d} && mkdir {d}/net && mount -o remount,ro {d} && "
              f"CNI_COMMAND=STATUS CNI_PATH=/x {OURS} < {conf_path}")
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                       capture_output=True, timeout=30)
    assert p.returncode == 1, p.stderr
    assert json.loads(p.stdout)["code"] == 50


def test_gc(bins, tmp_path):
    conf = netconf(tmp_path, ver="1.1.0")
    for c in ("a", "b", "c"):
        assert run(conf, cid=c)[0] == 0
    (tmp_path / "net" / "10.1.0.200").write_text("legacy")
    assert run(conf, "GC") == (0, None)  # no list: nothing is known stale
    assert len(reservations(tmp_path)) == 4
    conf["cni.dev/valid-attachments"] = [{"containerID": "b", "ifname": "eth0"},
                                         {"containerID": "legacy", "ifname": "eth1"}]
    assert run(conf, "GC") == (0, None)
    assert reservations(tmp_path) == ["10.1.0.200", "10.1.0.3"]
    conf["cni.dev/valid-attachments"] = []
    assert run(conf, "GC") == (0, None)
    assert files(tmp_path) == ["last_reserved_ip.0", "lock"]
    conf["cni.dev/valid-attachments"] = [{"containerID": 5}]
    assert run(conf, "GC")[1]["code"] == 7


def test_requested_ip_via_cni_args_and_capability(bins, tmp_path):
    conf = netconf(tmp_path)
    rc, out = run(conf, args="IgnoreUnknown=1;K8S_POD_NAME=p;IP=10.1.0.77")
    assert rc == 0 and out["ips"][0]["address"] == "10.1.0.77/24"
    conf["runtimeConfig"] = {"ips": ["10.1.0.77/24"]}
    rc, out = run(conf, cid="c2")
    assert rc == 1 and "not available" in out["details"]
    rc, out = run(conf, cid="c3", args="K8S_POD_NAME=p")
    assert rc == 1 and out["code"] == 4


# -- Go interoperability ---------------------------------------------------------------
@pytest.mark.gobin("host-local")
def test_go_store_continues_with_ours(bins, tmp_path):
    ranges = [[{"subnet": "10.5.0.0/24"}], [{"subnet": "fd00:5::/120"}]]
    conf = netconf(tmp_path, ranges)
    for c in ("g1", "g2", "g3"):
        assert run(conf, cid=c, binary=GO)[0] == 0
    assert run(conf, "DEL", cid="g2", binary=GO)[0] == 0
    # ours sees Go's allocations as taken, continues round-robin after Go's last_reserved_ip
    rc, out = run(conf, cid="p1")
    assert rc == 0 and [i["address"] for i in out["ips"]] == ["10.5.0.5/24", "fd00:5::5/120"]
    # ours refuses a duplicate for a Go-made attachment, and CHECKs and DELs it
    rc, out = run(conf, cid="g1")
    assert rc == 1 and "duplicate" in out["details"]
    assert run(conf, "CHECK", cid="g3")[0] == 0
    assert run(conf, "DEL", cid="g1")[0] == 0
    assert run(conf, "DEL", cid="g3")[0] == 0
    assert reservations(tmp_path) == ["10.5.0.5", "fd00:5::5"]
    # Go continues after ours
    rc, out = run(conf, cid="g4", binary=GO)
    assert rc == 0 and out["ips"][0]["address"] == "10.5.0.6/24"
    # and ours after Go again (its marks were rewritten in place by Go)
    rc, out = run(conf, cid="p2")
    assert rc == 0 and out["ips"][0]["address"] == "10.5.0.7/24"
    rc, out = run(conf, cid="g4")
    assert rc == 1 and "duplicate" in out["details"]


@pytest.mark.gobin("host-local")
def test_our_store_works_with_go(bins, tmp_path):
    ranges = [[{"subnet": "10.6.0.0/24"}]]
    conf = netconf(tmp_path, ranges)
    for c in ("p1", "p2", "p3"):
        assert run(conf, cid=c)[0] == 0
    rc, out = run(conf, cid="g1", binary=GO)  # Go sees ours as taken, round-robins after ours
    assert rc == 0 and out["ips"][0]["address"] == "10.6.0.5/24"
    rc, out = run(conf, cid="p2", binary=GO)  # Go's duplicate check sees our files
    assert rc == 1 and "duplicate" in out["msg"] + out.get("details", "")
    assert run(conf, "CHECK", cid="p1", binary=GO)[0] == 0
    for c in ("p1", "p2", "p3", "g1"):
        assert run(conf, "DEL", cid=c, binary=GO)[0] == 0
    # owner files went too (Go walks into our hidden folder); the empty folder may stay
    assert [f for f in files(tmp_path) if f != ".pycni-owners"] == ["last_reserved_ip.0", "lock"]
    owners = tmp_path / "net" / ".pycni-owners"
    assert not owners.exists() or os.listdir(owners) == []


# -- static ------------------------------------------------------------------------------
@pytest.mark.parametrize("ver", VERSIONS)
def test_static_exec(bins, ver):
    conf = {"cniVersion": ver, "name": "s", "type": "bridge",
            "ipam": {"type": "static", "addresses": [{"address": "10.9.0.5/24",
                                                      "gateway": "10.9.0.1"}],
                     "routes": [{"dst": "0.0.0.0/0"}]}}
    rc, out = run(conf, binary=os.path.join(ROOT, "bin", "static"))
    assert rc == 0 and out["cniVersion"] == ver
    key = "ip4" if ver in ("0.1.0", "0.2.0") else "ips"
    assert key in out
    assert run(conf, "DEL", binary=os.path.join(ROOT, "bin", "static")) == (0, None)


@pytest.mark.gobin("static")
def test_static_matches_go(bins):
    conf = {"cniVersion": "1.0.0", "name": "s", "type": "bridge",
            "ipam": {"type": "static",
                     "addresses": [{"address": "10.9.0.5/24", "gateway": "10.9.0.1"},
                                   {"address": "2001:db8:0:0::5/64"}],
                     "routes": [{"dst": "0.0.0.0/0", "gw": "10.9.0.1"}],
                     "dns": {"nameservers": ["1.1.1.1"]}}}
    args = "IP=10.8.0.9/16;GATEWAY=10.8.0.1"
    ours = run(conf, args=args, binary=os.path.join(ROOT, "bin", "static"))
    go = run(conf, args=args, binary="/usr/lib/cni/static")
    assert ours == go
