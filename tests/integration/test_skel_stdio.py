"""skel's standard streams through the exec protocol: closed or broken stdin/stdout,
truncated or deeply nested JSON, and configs far beyond the old 4 MiB cap.

Kernel-free: host-local in a temp dataDir, and the debug plugin.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "bin")


def hl_conf(data_dir):
    return {"cniVersion": "1.0.0", "name": "net", "type": "host-local",
            "ipam": {"type": "host-local", "dataDir": str(data_dir),
                     "ranges": [[{"subnet": "10.1.0.0/24"}]]}}


def env_for(cmd, cid="c1"):
    return {"CNI_COMMAND": cmd, "CNI_CONTAINERID": cid, "CNI_NETNS": "/var/run/netns/x",
            "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin", "PATH": "/usr/bin:/bin"}


def sh(plugin, cmd, redirs, conf=None, tmp=None):
    """Run bin/<plugin> from sh with `redirs` (e.g. '<&-'); stdout/stderr captured unless
    the redirections close them."""
    conf_file = ""
    if conf is not None:
        conf_file = os.path.join(str(tmp), "conf.json")
        with open(conf_file, "w") as f:
            json.dump(conf, f)
        if "<&-" not in redirs:
            redirs = f"< {shlex.quote(conf_file)} {redirs}"
    script = f"exec {shlex.quote(os.path.join(BIN, plugin))} {redirs}"
    p = subprocess.run(["sh", "-c", script], env=env_for(cmd), capture_output=True, timeout=30)
    assert b"Traceback" not in p.stderr, p.stderr
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def store_names(d):
    net = os.path.join(str(d), "net")
    if not os.path.isdir(net):
        return []
    out = []
    for base, dirs, names in os.walk(net):
        out += [os.path.relpath(os.path.join(base, n), net) for n in dirs + names]
    return sorted(out)


NO_RESERVATION = [[], ["last_reserved_ip.0", "lock"], ["lock"]]


@pytest.fixture
def bins(built_bins):
    return built_bins


@pytest.mark.parametrize("cmd", ["ADD", "DEL", "CHECK"])
def test_closed_stdin(bins, tmp_path, cmd):
    rc, out, err = sh("host-local", cmd, "<&-", hl_conf(tmp_path), tmp_path)
    assert rc == 1
    assert json.loads(out)["code"] == 5 and "EBADF" in json.loads(out)["details"]
    assert "error reading from stdin" in err and "closed" in err
    assert store_names(tmp_path) == []


def test_closed_stdin_version_still_answers(bins, tmp_path):
    for plugin in ("host-local", "debug"):  # the fast VERSION path and skel's
        rc, out, _ = sh(plugin, "VERSION", "<&-")
        assert rc == 0 and "1.1.0" in json.loads(out)["supportedVersions"]


@pytest.mark.parametrize("redirs", [">&-", ">&- 2>/dev/null", ">/dev/full", ">&- 2>&-"])
def test_add_whose_result_cannot_be_written_is_undone(bins, tmp_path, redirs):
    conf = hl_conf(tmp_path)
    rc, out, err = sh("host-local", "ADD", redirs, conf, tmp_path)
    assert rc == 1 and out == ""
    if "2>" not in redirs:
        assert "cannot write the ADD result to stdout" in err and "undone" in err, err
        assert ("EBADF" if "&-" in redirs else "ENOSPC") in err
    assert store_names(tmp_path) in NO_RESERVATION
    rc, out, _ = sh("host-local", "ADD", "", conf, tmp_path)
    assert rc == 0  # the same attachment can be added again: no duplicate-allocation error
    ip = json.loads(out)["ips"][0]["address"].split("/")[0]
    assert [n for n in store_names(tmp_path) if n.startswith("10.")] == [ip]


def test_add_into_a_broken_pipe_is_undone(bins, tmp_path):
    r, w = os.pipe()
    os.close(r)  # EPIPE on the first write
    try:
        p = subprocess.run([os.path.join(BIN, "host-local")],
                           input=json.dumps(hl_conf(tmp_path)).encode(), stdout=w,
                           stderr=subprocess.PIPE, env=env_for("ADD"), timeout=30)
    finally:
        os.close(w)
    assert p.returncode == 1
    assert b"EPIPE" in p.stderr and b"undone" in p.stderr and b"Traceback" not in p.stderr
    assert store_names(tmp_path) in NO_RESERVATION


def test_closed_stdout_other_verbs(bins, tmp_path):
    conf = hl_conf(tmp_path)
    assert sh("host-local", "ADD", "", conf, tmp_path)[0] == 0
    assert sh("host-local", "DEL", ">&-", conf, tmp_path) == (0, "", "")  # nothing to write
    assert store_names(tmp_path) in NO_RESERVATION
    rc, _, err = sh("host-local", "ADD", ">&-", {"cniVersion": "1.0.0", "name": "net"}, tmp_path)
    assert rc == 1 and "cannot write to stdout" in err and '"code": 7' in err  # error kept
    for plugin in ("host-local", "debug"):
        rc, _, err = sh(plugin, "VERSION", ">&- </dev/null")
        assert rc == 1 and "cannot write to stdout" in err


@pytest.mark.parametrize("doc", ['{"cniVersion": "1.0.0", "name": "net", "ipam": {"ty', '{',
                                 '{"cniVersion": "1.0.0", "name": "n', '{"cniVersion": tr',
                                 '{"cniVersion": "1.0.0", "name": "n", "ipam": {"ranges": [[',
                                 '{"cniVersion": "1.0.0", "name": "n", "mtu": 15'])
def test_truncated_json(bins, tmp_path, doc):
    offset = len(doc)
    p = subprocess.run([os.path.join(BIN, "host-local")], input=doc.encode(),
                       env=env_for("ADD"), capture_output=True, timeout=30)
    out = json.loads(p.stdout)
    assert p.returncode == 1 and out["code"] == 6, out
    assert out["details"] == f"unexpected end of JSON input at offset {offset}", out
    assert "Scanner" not in p.stdout.decode() and not p.stderr


@pytest.mark.parametrize("doc", ["[" * 100000 + "]" * 100000, '{"a":' * 50000 + "1" + "}" * 50000,
                                 '{"cniVersion": "1.0.0", "name": "n", "x": ' + "[" * 5000])
def test_deep_nesting_is_code_6(bins, doc):
    p = subprocess.run([os.path.join(BIN, "debug")], input=doc.encode(), env=env_for("ADD"),
                       capture_output=True, timeout=30)
    assert p.returncode == 1 and json.loads(p.stdout)["code"] == 6, p.stdout[:300]
    assert not p.stderr


def _debug_add(size: int):
    """ADD through bin/debug with a `padding` field of `size` bytes: (rc, stdout, maxrss KB)."""
    conf = {"cniVersion": "1.0.0", "name": "big", "type": "debug", "padding": "x" * size,
            "debugResult": {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24"}]}}
    script = ("import resource, subprocess, sys\n"
              "p = subprocess.run(sys.argv[1:], stdin=sys.stdin, capture_output=True)\n"
              "sys.stdout.write('%d %d\\n' % (p.returncode, "
              "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
              "sys.stdout.write(p.stdout.decode())\n")
    p = subprocess.run([os.sys.executable, "-c", script, os.path.join(BIN, "debug")],
                       input=json.dumps(conf).encode(), env=env_for("ADD"),
                       capture_output=True, timeout=120)
    head, _, out = p.stdout.decode().partition("\n")
    rc, rss = map(int, head.split())
    return rc, out, rss


def test_large_config_reads_whole_in_linear_memory(bins):
    rc, out, rss_small = _debug_add(1000)
    assert rc == 0
    rc, out, rss10 = _debug_add(10 << 20)  # 10 MiB: failed with code 5 under the 4 MiB cap
    assert rc == 0, out
    assert json.loads(out)["ips"] == [{"address": "10.0.0.2/24"}]
    rc, out, rss40 = _debug_add(40 << 20)
    assert rc == 0, out
    per_byte_10 = (rss10 - rss_small) * 1024 / (10 << 20)
    per_byte_40 = (rss40 - rss_small) * 1024 / (40 << 20)
    print(f"maxrss KB: base {rss_small}, 10 MiB {rss10}, 40 MiB {rss40}; "
          f"bytes of RSS per config byte: {per_byte_10:.2f}, {per_byte_40:.2f}")
    assert per_byte_40 < 8 and per_byte_40 < per_byte_10 * 1.5  # linear, small constant
