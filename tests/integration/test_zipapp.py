"""The built zipapps: self-contained, isolated from the environment, reproducible."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from helpers import BIN, ROOT, run_plugin

PREV = {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": "/run/netns/x"}],
        "ips": [{"address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 0}]}
SAMPLE = {"cniVersion": "1.0.0", "name": "net1", "type": "sample", "anotherAwesomeArg": "x",
          "prevResult": PREV}


@pytest.fixture(scope="module", autouse=True)
def _built(built_bins):
    return built_bins


def test_every_binary_answers_version():
    for name in sorted(os.listdir(BIN)):
        p = os.path.join(BIN, name)
        if name.startswith(".") or not os.access(p, os.X_OK):
            continue
        r = run_plugin(p, "VERSION", {"cniVersion": "0.4.0"})
        if name == "cnitool":
            continue
        assert r.rc == 0, (name, r)
        assert r.json["cniVersion"] == "0.4.0" and "0.4.0" in r.json["supportedVersions"], name


def test_preamble_execs_the_isolated_interpreter():
    with open(os.path.join(BIN, "sample"), "rb") as f:
        head = f.read(4096)
    assert head.startswith(b"#!/bin/sh\n")
    assert b"\nexec '/usr/bin/python3' -IS -c '" in head   # absolute path, isolated, no site


def test_copied_alone_runs(tmp_path):
    exe = tmp_path / "sample"
    shutil.copy(os.path.join(BIN, "sample"), exe)
    r = run_plugin(str(exe), "ADD", SAMPLE, netns="/run/netns/x", path=str(tmp_path))
    assert r.rc == 0, r
    assert r.json["ips"][0]["address"] == "10.1.0.5/16"


def test_hostile_pythonpath_ignored(tmp_path):
    evil = tmp_path / "evil"
    evil.mkdir()
    marker = tmp_path / "pwned"
    for mod in ("json", "os", "cni", "_json", "struct", "sample", "encodings"):
        (evil / f"{mod}.py").write_text(f"open({str(marker)!r}, 'w').write('x')\nraise SystemExit(42)\n")
    env = {"PYTHONPATH": str(evil), "PYTHONSTARTUP": str(evil / "json.py"),
           "PYTHONHOME": str(evil), "PYTHONINSPECT": "1"}
    for cmd in ("VERSION", "ADD"):
        r = run_plugin("sample", cmd, SAMPLE, netns="/run/netns/x", env=env)
        assert r.rc == 0, r
    assert not marker.exists()


def test_error_output_shape():
    r = run_plugin("sample", "ADD", dict(SAMPLE, anotherAwesomeArg=""), netns="/run/netns/x")
    assert r.rc == 1
    assert r.json == {"cniVersion": "1.0.0", "code": 7, "msg": "invalid config",
                      "details": "anotherAwesomeArg must be specified"}


def test_reproducible(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        subprocess.run([sys.executable, os.path.join(ROOT, "zipapp", "build.py"), "--out", str(d),
                        "--only", "sample", "debug"], check=True)
    for n in ("sample", "debug"):
        assert (a / n).read_bytes() == (b / n).read_bytes()


def test_only_needed_modules_inside():
    import zipfile
    names = zipfile.ZipFile(os.path.join(BIN, "sample")).namelist()
    assert "sample.pyc" in names and "cni/skel.pyc" in names
    assert not any(n.startswith("cni/nl/") for n in names)


def test_delegation_with_debug(tmp_path):
    """A delegate is found via CNI_PATH, run with our env, and its error passes up."""
    log = tmp_path / "calls"
    conf = {"cniVersion": "1.0.0", "name": "n", "type": "x", "cniOutput": str(log),
            "debugResult": {"cniVersion": "1.0.0", "ips": [{"address": "10.9.0.2/24"}]}}
    code = f"""
import json, os, sys
sys.path.insert(0, {os.path.join(ROOT, 'lib')!r})
from cni import invoke
from cni.errors import CNIError
os.environ.update(CNI_PATH={BIN!r}, CNI_CONTAINERID="c1", CNI_NETNS="/x", CNI_IFNAME="eth0",
                  CNI_COMMAND="ADD")
stdin = json.dumps({conf!r}).encode()
r = invoke.delegate_add("debug", stdin)
print(r.ips[0].address_str)
invoke.delegate_del("debug", stdin)
for bad in ("../bin/debug", "/bin/sh", "..", ""):
    try:
        invoke.delegate_add(bad, stdin)
        print("NOT REJECTED", bad)
    except CNIError as e:
        assert e.code == 7, (bad, e.code)
bad = dict(json.loads(stdin), debugError={{"code": 117, "msg": "nope", "details": "d"}})
try:
    invoke.delegate_add("debug", json.dumps(bad).encode())
except CNIError as e:
    print(e.code, e.msg, e.details)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["10.9.0.2/24", "117 nope d"]
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c["command"] for c in calls] == ["ADD", "DEL", "ADD"]
    assert calls[0]["env"]["CNI_CONTAINERID"] == "c1"


def test_inprocess_delegate_only_for_identical_build(tmp_path):
    """bridge runs host-local in-process only when CNI_PATH's file is the same build."""
    changed = tmp_path / "host-local"
    changed.write_bytes(open(os.path.join(BIN, "host-local"), "rb").read() + b" ")
    code = f"""
import sys
sys.path.insert(0, {os.path.join(BIN, 'bridge')!r})
from cni import embed
print(embed.module_for("host-local", {os.path.join(BIN, 'host-local')!r}, {{}}))
print(embed.module_for("host-local", {str(changed)!r}, {{}}))
print(embed.module_for("host-local", "/usr/lib/cni/host-local", {{}}))
print(embed.module_for("dhcp", {os.path.join(BIN, 'dhcp')!r}, {{}}))
print(embed.module_for("host-local", {os.path.join(BIN, 'host-local')!r}, {{"CNI_NO_INPROCESS": "1"}}))
"""
    r = subprocess.run(["/usr/bin/python3", "-IS", "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["host_local", "None", "None", "None", "None"]


def test_inprocess_result_equals_exec_result(tmp_path):
    """The in-process delegate hands back the Result object the exec path parses from JSON:
    equal in every version, the same error where a version cannot carry the result."""
    code = f"""
import json, os, sys
sys.path.insert(0, {os.path.join(BIN, 'bridge')!r})
from cni import invoke
from cni.convert import to_json
from cni.errors import CNIError
out = []
for ver in ("0.1.0", "0.2.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"):
    for ranges in ([[{{"subnet": "10.9.0.0/24"}}]],
                   [[{{"subnet": "10.9.0.0/24"}}], [{{"subnet": "10.8.0.0/24"}}]]):
        for mode in ("0", "1"):
            d = {str(tmp_path)!r} + "/" + ver + str(len(ranges)) + mode
            conf = {{"cniVersion": ver, "name": "n", "type": "bridge",
                     "ipam": {{"type": "host-local", "dataDir": d, "ranges": ranges,
                              "routes": [{{"dst": "0.0.0.0/0"}}]}}}}
            env = dict(CNI_PATH={BIN!r}, CNI_CONTAINERID="c1", CNI_NETNS="/proc/self/ns/net",
                       CNI_IFNAME="eth0", CNI_NETNS_OVERRIDE="1", CNI_NO_INPROCESS=mode)
            try:
                r = invoke.delegate_add("host-local", json.dumps(conf).encode(), env=env)
                out.append((ver, len(ranges), mode, type(r).__name__, to_json(r, ver)))
            except CNIError as exc:
                out.append((ver, len(ranges), mode, exc.code, exc.msg))
print(json.dumps(out))
"""
    r = subprocess.run(["/usr/bin/python3", "-IS", "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert len(rows) == 24
    for inproc, execd in zip(rows[::2], rows[1::2]):
        assert inproc[2] == "0" and execd[2] == "1"
        assert inproc[3:] == execd[3:], (inproc, execd)
    assert [row[3] for row in rows if row[0] == "0.2.0"] == ["Result", "Result", 7, 7]


def test_footprint_within_4_mb(built_bins):
    """Every executable in bin/ together, as `du -ck bin/*` counts them: at most 4096 KB."""
    import glob
    files = [p for p in glob.glob(os.path.join(built_bins, "*")) if os.path.isfile(p)]
    r = subprocess.run(["du", "-ck", *files], capture_output=True, text=True, check=True)
    total = int(r.stdout.splitlines()[-1].split()[0])
    assert total <= 4096, r.stdout
