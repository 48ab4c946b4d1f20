"""pycni-install from a checkout (the installed-wheel path is in integration/test_package.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from helpers import ROOT


def install(*args, cwd):
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.path.join(ROOT, "lib")}
    return subprocess.run([sys.executable, "-m", "cni._dist.install", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def _preamble(path) -> bytes:
    """The sh preamble in front of the archive (it execs the pinned interpreter)."""
    with open(path, "rb") as f:
        head = f.read(4096)
    assert head.startswith(b"#!/bin/sh\n")
    return head


def test_builds_selected_zipapps_for_this_interpreter(tmp_path):
    dest = tmp_path / "opt" / "cni" / "bin"
    r = install("--python", sys.executable, "--only", "bridge,cnitool", str(dest), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(dest)) == ["bridge", "cnitool"]
    assert "2 binaries" in r.stdout
    assert f"exec '{sys.executable}' -IS ".encode() in _preamble(dest / "bridge")
    v = subprocess.run([str(dest / "bridge")], input=b'{"cniVersion":"1.0.0"}',
                       env={"CNI_COMMAND": "VERSION"}, capture_output=True)
    assert v.returncode == 0 and "1.1.0" in json.loads(v.stdout)["supportedVersions"]
    assert os.listdir(tmp_path) == ["opt"]  # the temporary build tree is gone


def test_cross_interpreter_and_errors(tmp_path):
    r = install("--python", "/nonexistent/python3", "--only", "loopback", str(tmp_path / "b"),
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert b"exec '/nonexistent/python3' -IS " in _preamble(tmp_path / "b" / "loopback")
    (tmp_path / "file").write_text("")
    r = install(str(tmp_path / "file" / "sub"), cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.startswith("pycni-install: ")
    assert len(r.stderr.splitlines()) == 1
    r = install("--only", "bridge", cwd=tmp_path)  # DEST is required: no default target
    assert r.returncode == 2 and "DEST" in r.stderr
    r = install("--help", cwd=tmp_path)
    assert r.returncode == 0 and "--python" in r.stdout
