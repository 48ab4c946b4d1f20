"""host-local storage faults through the exec protocol (bin/host-local as a subprocess).

Damaged reservation files, stale zero-length files, a read-only store and a full
store. The last two need root and a private mount namespace (`unshare -m`); the
others only a temp dataDir.
"""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from helpers import ROOT, exec_ipam, ipam_env

OURS = os.path.join(ROOT, "bin", "host-local")
OWNERS = ".pycni-owners"


def netconf(data_dir, ver="1.1.0", subnet="10.1.0.0/24"):
    return {"cniVersion": ver, "name": "net", "type": "bridge",
            "ipam": {"type": "host-local", "dataDir": str(data_dir),
                     "ranges": [[{"subnet": subnet}]]}}


def run(conf, cmd="ADD", cid="c1", ifname="eth0"):
    p, out = exec_ipam(OURS, conf, cmd, cid, ifname)
    assert b"Traceback" not in p.stderr, p.stderr
    return p.returncode, out


def listing(d):
    """Every name under the network folder, the owner index included."""
    out = []
    for base, dirs, names in os.walk(d):
        rel = os.path.relpath(base, d)
        out += [os.path.normpath(os.path.join(rel, n)) for n in dirs + names]
    return sorted(out)


def gc_conf(conf, *valid):
    c = dict(conf)
    c["cni.dev/valid-attachments"] = [{"containerID": cid, "ifname": "eth0"} for cid in valid]
    return c


@pytest.fixture
def bins(built_bins):
    return built_bins


@pytest.mark.parametrize("damage", [b"", b"\xff\xfe garbage \x00", b"other\r\neth9", b" \n"])
def test_damaged_reservation_is_released_by_its_owners_del(bins, tmp_path, damage):
    conf = netconf(tmp_path)
    assert run(conf, cid="c1")[0] == 0
    assert run(conf, cid="c2")[0] == 0
    net = tmp_path / "net"
    with open(net / "10.1.0.2", "wb") as f:  # in place (O_TRUNC), as `echo x > file` does
        f.write(damage)
    assert run(conf, "DEL", cid="c1") == (0, None)
    assert not (net / "10.1.0.2").exists()
    assert (net / "10.1.0.3").read_bytes() == b"c2\r\neth0"
    assert run(conf, "DEL", cid="c2") == (0, None)
    assert listing(net) == ["last_reserved_ip.0", "lock"]


def test_add_repairs_a_damaged_owner(bins, tmp_path):
    conf = netconf(tmp_path)
    assert run(conf, cid="c1")[0] == 0
    net = tmp_path / "net"
    (net / "10.1.0.2").write_bytes(b"")  # truncates the owner file too (one inode)
    rc, out = run(conf, cid="c1")  # a second ADD: a duplicate, refused, but the owner heals
    assert rc == 1 and "duplicate" in out["details"]
    assert (net / "10.1.0.2").read_bytes() == b"c1\r\neth0"  # Go can match it again


@pytest.mark.parametrize("damage", [b"", b"\xff\xfe garbage", b"\n"])
def test_damaged_reservation_is_released_by_gc(bins, tmp_path, damage):
    conf = netconf(tmp_path)
    for cid in ("c1", "c2", "c3"):
        assert run(conf, cid=cid)[0] == 0
    net = tmp_path / "net"
    with open(net / "10.1.0.2", "wb") as f:  # c1's, damaged in place (still linked)
        f.write(damage)
    (net / "10.1.0.3").write_bytes(damage)
    os.unlink(net / "10.1.0.4")  # c3's replaced by a new file (a new inode, no owner link)
    (net / "10.1.0.4").write_bytes(damage or b"\xff")
    assert run(gc_conf(conf, "c2"), "GC") == (0, None)
    assert sorted(os.listdir(net)) == [OWNERS, "10.1.0.3", "last_reserved_ip.0", "lock"]
    assert os.listdir(net / OWNERS) == ["owner:c2:eth0"]
    assert (net / "10.1.0.3").read_bytes() == b"c2\r\neth0"  # kept and repaired
    assert run(conf, "DEL", cid="c2") == (0, None)
    assert listing(net) == ["last_reserved_ip.0", "lock"]


def test_gc_releases_stale_zero_length_files(bins, tmp_path):
    conf = netconf(tmp_path)
    assert run(conf, cid="c1")[0] == 0
    net = tmp_path / "net"
    old = time.time() - 600
    for name in ("10.1.0.50", "10.1.0.51"):
        (net / name).write_bytes(b"")  # what a Go plugin killed between create and write leaves
    os.utime(net / "10.1.0.50", (old, old))
    assert run(gc_conf(conf, "c1"), "GC") == (0, None)
    names = sorted(os.listdir(net))
    assert "10.1.0.50" not in names  # old: released
    assert "10.1.0.51" in names      # fresh: a writer may still be at it
    assert "10.1.0.2" in names


def test_add_fsyncs_owner_before_linking(bins, tmp_path):
    """strace: the owner file and its folder are synced before the reservation link."""
    if not os.path.exists("/usr/bin/strace"):
        pytest.skip("strace not installed")
    conf = netconf(tmp_path)
    log = tmp_path / "trace"
    p = subprocess.run(["strace", "-f", "-qq", "-e", "trace=fsync,link,linkat,rename,renameat,"
                        "renameat2,openat", "-o", str(log), OURS],
                       input=json.dumps(conf).encode(), env=ipam_env("ADD"),
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stdout
    calls = [ln.split(None, 1)[1] for ln in log.read_text().splitlines()
             if "fsync" in ln or "link" in ln or "rename" in ln]
    kinds = [c.split("(")[0] for c in calls]
    link = next(i for i, k in enumerate(kinds) if k in ("link", "linkat"))
    assert "10.1.0.2" in calls[link]
    assert kinds[:link].count("fsync") >= 2, calls  # owner content, then the owner folder
    assert "fsync" in kinds[link:], calls             # the network folder, at commit


@pytest.mark.root
@pytest.mark.tool("unshare")
def test_read_only_store(bins, tmp_path):
    d = tmp_path / "store"
    d.mkdir()
    conf = netconf(d)
    assert run(conf, cid="c1")[0] == 0
    (tmp_path / "conf.json").write_text(json.dumps(conf))
    (tmp_path / "gc.json").write_text(json.dumps(gc_conf(conf, "c1")))
    before = listing(d / "net")

    def in_ro(cmd, cid, conf_file="conf.json"):
        env = " ".join(f"{k}={v}" for k, v in ipam_env(cmd, cid).items())
        script = (f"mount --bind {d} {d} && mount -o remount,ro,bind {d} && "
                  f"exec env -i {env} {OURS} < {tmp_path / conf_file}")
        p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                           capture_output=True, timeout=30)
        assert b"Traceback" not in p.stderr, p.stderr
        return p.returncode, (json.loads(p.stdout) if p.stdout.strip() else None)

    assert in_ro("DEL", "gone") == (0, None)   # nothing to release: success
    assert in_ro("GC", "", "gc.json") == (0, None)  # nothing stale: success
    rc, out = in_ro("DEL", "c1")                 # something to release: a clear code 5
    assert rc == 1 and out["code"] == 5 and "EROFS" in out["details"], out
    assert listing(d / "net") == before
    os.unlink(d / "net" / "lock")  # a read-only store without a lock file: still readable
    assert in_ro("DEL", "gone") == (0, None)
    rc, out = in_ro("DEL", "c1")
    assert rc == 1 and out["code"] == 5 and "EROFS" in out["details"], out
    assert run(conf, "DEL", cid="c1") == (0, None)  # writable again: released


@pytest.mark.root
@pytest.mark.tool("unshare")
@pytest.mark.parametrize("opts", ["size=16k,nr_inodes=8", "size=8k,nr_inodes=64",
                                  "size=64k,nr_inodes=4"])  # 4: the owner folder cannot be made
def test_full_store_fails_cleanly(bins, tmp_path, opts):
    """Fill a tiny tmpfs with ADDs: the ADD that does not fit gets code 5 and leaves the
    store exactly as it was (no scratch, owner or reservation file); DELs still work."""
    d = tmp_path / "store"
    d.mkdir()
    conf = netconf(d)
    conf_file = tmp_path / "conf.json"
    conf_file.write_text(json.dumps(conf))
    helper = tmp_path / "fill.py"
    helper.write_text(f"""
import json, os, subprocess, sys
d, out = {str(d)!r}, []
def ls():
    res = []
    for base, dirs, names in os.walk(d):
        res += sorted(os.path.relpath(os.path.join(base, n), d) for n in dirs + names)
    return sorted(res)
def plugin(cmd, cid):
    env = {{"CNI_COMMAND": cmd, "CNI_CONTAINERID": cid, "CNI_NETNS": "/x",
           "CNI_IFNAME": "eth0", "CNI_PATH": "/x"}}
    p = subprocess.run([{OURS!r}], stdin=open({str(conf_file)!r}, "rb"), env=env,
                       capture_output=True)
    return p.returncode, p.stdout.decode(), p.stderr.decode()
for i in range(12):
    before = ls()
    rc, so, se = plugin("ADD", f"c{{i}}")
    out.append({{"cid": f"c{{i}}", "rc": rc, "out": so, "err": se, "before": before,
                "after": ls()}})
for step in out:
    if step["rc"] == 0:
        step["del"] = plugin("DEL", step["cid"])[:2]
out.append({{"end": ls()}})
print(json.dumps(out))
""")
    script = f"mount -t tmpfs -o {opts} cnitest {d} && exec {os.sys.executable} {helper}"
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                       capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr
    steps = json.loads(p.stdout)
    end = steps.pop()["end"]
    ok = [s for s in steps if s["rc"] == 0]
    failed = [s for s in steps if s["rc"] != 0]
    assert failed and (ok or "nr_inodes=4" in opts), steps
    for s in failed:
        assert "Traceback" not in s["err"], s["err"]
        # nothing left behind; the network folder and its lock (made first, as Go does) may
        # stay: removing a lock another ADD may already wait on would break its locking
        assert [n for n in s["after"] if n not in ("net", "net/lock")] == \
            [n for n in s["before"] if n not in ("net", "net/lock")], s
        err = json.loads(s["out"])
        assert err["code"] == 5 and "ENOSPC" in err["details"], err
    for s in ok:
        assert s["del"] == [0, ""], s
    assert not any(n.startswith(("10.", OWNERS, ".pycni")) for n in end), end
