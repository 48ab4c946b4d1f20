"""bin/cnitool as a program: Go-compatible verbs, env, container ID, errors, list, version."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess

import pytest


@pytest.fixture
def tool(tmp_path, built_bins):
    d = tmp_path
    (d / "bin").mkdir()
    for n in ("debug", "debug-0.4.0"):
        shutil.copy(os.path.join(built_bins, "debug"), d / "bin" / n)
    (d / "net.d").mkdir()
    log = str(d / "calls.jsonl")

    def plugin(tag, **kw):
        return dict({"type": "debug", "tag": tag, "cniOutput": log}, **kw)

    def write(name, obj):
        (d / "net.d" / name).write_text(json.dumps(obj))

    def run(*args, env=None, check=None):
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NETCONFPATH": str(d / "net.d"),
             "CNI_PATH": str(d / "bin"), "CNI_CACHE_DIR": str(d / "cache")}
        e.update(env or {})
        r = subprocess.run([os.path.join(built_bins, "cnitool"), *args], env=e,
                           capture_output=True, text=True, timeout=60)
        if check is not None:
            assert r.returncode == check, r
        return r

    def calls():
        if not os.path.exists(log):
            return []
        with open(log) as f:
            out = [json.loads(line) for line in f]
        os.unlink(log)
        for r in out:
            r["conf"] = json.loads(r["stdin"])
        return out

    class T:
        pass
    t = T()
    t.dir, t.plugin, t.write, t.run, t.calls = d, plugin, write, run, calls
    return t


RESULT = {"cniVersion": "1.0.0", "ips": [{"address": "10.7.0.2/24", "gateway": "10.7.0.1"}]}


def test_add_check_del_roundtrip(tool):
    tool.write("10-n.conflist", {"cniVersion": "1.0.0", "name": "n",
                                 "plugins": [tool.plugin("a", debugResult=RESULT),
                                             tool.plugin("b", capabilities={"portMappings": True})]})
    caps = {"portMappings": [{"hostPort": 1, "containerPort": 2, "protocol": "tcp"}]}
    r = tool.run("add", "n", "/run/netns/x", env={"CAP_ARGS": json.dumps(caps),
                                                  "CNI_ARGS": "A=1;B=2"}, check=0)
    # Go prints the result indented by 4 spaces, without a trailing newline
    assert r.stdout == json.dumps(dict(RESULT, dns={}), indent=4)
    cid = "cnitool-" + hashlib.sha512(b"/run/netns/x").hexdigest()[:20]
    recs = tool.calls()
    assert [c["env"]["CNI_CONTAINERID"] for c in recs] == [cid, cid]
    assert recs[0]["env"]["CNI_IFNAME"] == "eth0" and recs[0]["env"]["CNI_ARGS"] == "A=1;B=2"
    assert recs[1]["conf"]["runtimeConfig"] == caps
    assert os.path.exists(tool.dir / "cache" / "results" / f"n-{cid}-eth0")
    tool.run("check", "n", "/run/netns/x", check=0)
    assert [c["command"] for c in tool.calls()] == ["CHECK", "CHECK"]
    tool.run("del", "n", "/run/netns/x", check=0)
    assert [(c["command"], c["conf"]["tag"]) for c in tool.calls()] == [("DEL", "b"), ("DEL", "a")]
    assert os.listdir(tool.dir / "cache" / "results") == []


def test_relative_netns_ifname_and_id_override(tool, tmp_path):
    tool.write("n.conflist", {"cniVersion": "1.0.0", "name": "n", "plugins": [tool.plugin("a")]})
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        tool.run("add", "n", "rel", "-i", "net1", check=0)
    finally:
        os.chdir(cwd)
    (c,) = tool.calls()
    assert c["env"]["CNI_NETNS"] == str(tmp_path / "rel")
    assert c["env"]["CNI_IFNAME"] == "net1"
    tool.run("add", "n", "/x", env={"CNI_IFNAME": "eth5", "CNI_CONTAINERID": "mine"}, check=0)
    (c,) = tool.calls()
    assert (c["env"]["CNI_IFNAME"], c["env"]["CNI_CONTAINERID"]) == ("eth5", "mine")


def test_conf_file_and_lookup_order(tool):
    tool.write("00.conf", {"cniVersion": "0.4.0", "name": "n", "type": "debug",
                           "cniOutput": str(tool.dir / "calls.jsonl"), "tag": "conf"})
    tool.run("add", "n", "/x", check=0)
    assert tool.calls()[0]["conf"]["tag"] == "conf"
    tool.write("99.conflist", {"cniVersion": "1.0.0", "name": "n", "plugins": [tool.plugin("l")]})
    tool.run("add", "n", "/y", check=0)
    assert tool.calls()[0]["conf"]["tag"] == "l"


def test_errors(tool):
    tool.write("n.conflist", {"cniVersion": "1.0.0", "name": "n", "plugins": [
        tool.plugin("a", debugError={"code": 11, "msg": "try later", "details": "busy"})]})
    r = tool.run("add", "n", "/x", "--json", check=1)
    assert r.stderr.strip().splitlines()[-1] == \
        'cnitool: add n: error 11: plugin type="debug" failed (add): try later: busy'
    assert json.loads(r.stdout)["code"] == 11
    r = tool.run("add", "nope", "/x", check=1)
    assert "error 7" in r.stderr and 'no net configuration with name "nope"' in r.stderr
    r = tool.run("add", "n", "/x", env={"CNI_ARGS": "A=1;B"}, check=1)
    assert "error 4" in r.stderr and "CNI_ARGS" in r.stderr
    r = tool.run("add", "n", "/x", env={"CAP_ARGS": "[1]"}, check=1)
    assert "CAP_ARGS" in r.stderr
    assert tool.run("add", "n", check=2).stderr.startswith("cnitool: add needs")
    assert tool.run("frob", check=2).returncode == 2
    r = tool.run("add", "n", "/x", env={"NETCONFPATH": str(tool.dir / "empty")}, check=1)
    assert "no net configurations found" in r.stderr


def test_gc_and_status(tool):
    tool.write("n.conflist", {"cniVersion": "1.1.0", "name": "n",
                              "plugins": [tool.plugin("a", debugResult=RESULT)]})
    tool.run("add", "n", "/run/netns/one", check=0)
    tool.run("add", "n", "/run/netns/two", check=0)
    tool.calls()
    keep = "cnitool-" + hashlib.sha512(b"/run/netns/one").hexdigest()[:20]
    tool.run("gc", "n", "--valid", f"{keep}:eth0", check=0)
    recs = tool.calls()
    assert [c["command"] for c in recs] == ["DEL", "GC"]
    assert recs[1]["conf"]["cni.dev/valid-attachments"] == [{"containerID": keep,
                                                             "ifname": "eth0"}]
    tool.run("gc", "n", "/ignored", check=0)  # Go semantics: nothing valid, GC without the key
    recs = tool.calls()
    assert [c["command"] for c in recs] == ["DEL", "GC"]
    assert "cni.dev/valid-attachments" not in recs[1]["conf"]
    assert os.listdir(tool.dir / "cache" / "results") == []
    tool.run("status", "n", check=0)
    assert [c["command"] for c in tool.calls()] == ["STATUS"]
    tool.write("n.conflist", {"cniVersion": "1.1.0", "name": "n", "plugins": [
        tool.plugin("a", debugError={"code": 50, "msg": "no ips"})]})
    r = tool.run("status", "n", "--json", check=1)
    assert json.loads(r.stdout)["code"] == 50 and "error 50" in r.stderr


def test_list_and_version(tool):
    tool.write("10-a.conflist", {"cniVersion": "1.0.0", "cniVersions": ["0.4.0"], "name": "a",
                                 "plugins": [tool.plugin("x"), {"type": "debug-0.4.0"}]})
    tool.write("20-b.conf", {"cniVersion": "0.4.0", "name": "b", "type": "debug"})
    tool.write("30-bad.conflist", "{")
    r = tool.run("list", check=0)
    lines = [ln.split("\t") for ln in r.stdout.splitlines()]
    assert [ln[:3] for ln in lines] == [["a", "1.0.0,0.4.0", "debug,debug-0.4.0"],
                                        ["b", "0.4.0", "debug"]]
    assert "30-bad.conflist" in r.stderr
    assert tool.run("list", "-q", check=0).stdout == "a\nb\n"
    r = tool.run("version", "a", check=0)
    assert "selected version 0.4.0" in r.stdout
    assert "debug-0.4.0: 0.1.0 0.2.0 0.3.0 0.3.1 0.4.0\n" in r.stdout
    r = tool.run("version", check=0)
    assert "debug: 0.1.0 0.2.0 0.3.0 0.3.1 0.4.0 1.0.0 1.1.0" in r.stdout


def test_startup_is_light(built_bins):
    code = ("import sys; sys.argv=['cnitool','list']; import cni.runtime.cnitool as c; "
            "bad=[m for m in ('argparse','json','subprocess','dataclasses','typing','logging')"
            " if m in sys.modules]; print(bad)")
    r = subprocess.run(["/usr/bin/python3", "-IS", "-c",
                        f"import sys; sys.path.insert(0, {os.path.join(built_bins, 'cnitool')!r}); "
                        + code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"
