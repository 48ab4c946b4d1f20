"""Zipapp requirements: start-up imports per verb, bytecode with source
fallback, the PYTHON override, `make install` with DESTDIR, the README's two commands."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest

from helpers import BIN, ROOT, imported_modules, launch_importtime, run_plugin

PREV = {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": "/run/netns/x"}],
        "ips": [{"address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 0}]}
SAMPLE = {"cniVersion": "1.0.0", "name": "net1", "type": "sample", "anotherAwesomeArg": "x",
          "prevResult": PREV}
HEAVY = {"json", "subprocess", "dataclasses", "logging", "argparse", "typing", "ctypes", "re",
         "enum", "runpy"}


@pytest.fixture(scope="module", autouse=True)
def _built(built_bins):
    return built_bins


def _imports(exe, command, conf, **env):
    e = {"PATH": os.environ["PATH"], "CNI_COMMAND": command, "CNI_CONTAINERID": "c1",
         "CNI_NETNS": "/run/netns/x", "CNI_IFNAME": "eth0", "CNI_PATH": BIN, **env}
    r = subprocess.run(launch_importtime(exe), input=json.dumps(conf).encode(), capture_output=True,
                       env=e)
    return r, imported_modules(r.stderr)


def test_version_fast_path_imports_nothing(tmp_path):
    exe = os.path.join(BIN, "sample")
    # the sh preamble answers VERSION: no interpreter at all (its path made unusable here)
    data = open(exe, "rb").read()
    broken = tmp_path / "sample"
    broken.write_bytes(data.replace(b"\nexec '/usr/bin/python3' -IS", b"\nexec '/nonexistent/py3' -IS", 1))
    broken.chmod(0o755)
    r = run_plugin(str(broken), "VERSION", {"cniVersion": "0.3.1"})
    assert r.rc == 0 and r.json["cniVersion"] == "0.3.1", r
    assert run_plugin(str(broken), "ADD", SAMPLE, netns="/run/netns/x").rc != 0
    # `python3 FILE` answers from __main__ before importing anything of ours
    e = {"PATH": os.environ["PATH"], "CNI_COMMAND": "VERSION"}
    r = subprocess.run(["/usr/bin/python3", "-X", "importtime", "-I", exe], input=b'{"cniVersion":"0.3.1"}',
                       capture_output=True, env=e)
    mods = imported_modules(r.stderr)
    assert r.returncode == 0 and json.loads(r.stdout)["cniVersion"] == "0.3.1"
    assert mods, "importtime output missing"
    ours = {m for m in mods if m.split(".")[0] in ("cni", "sample", "_json", "json")}
    assert not ours, f"VERSION imported {sorted(ours)}"


def test_add_imports_only_what_it_needs():
    r, mods = _imports(os.path.join(BIN, "sample"), "ADD", SAMPLE)
    assert r.returncode == 0, r.stderr[-2000:]
    assert not mods & HEAVY, sorted(mods & HEAVY)
    assert not any(m.startswith("cni.nl") or m == "cni.invoke" for m in mods)


def test_loopback_del_imports_no_heavy_modules():
    r, mods = _imports(os.path.join(BIN, "loopback"), "DEL",
                       {"cniVersion": "1.0.0", "name": "lo", "type": "loopback"},
                       CNI_NETNS="")
    assert r.returncode == 0, r.stderr[-2000:]
    assert not mods & HEAVY, sorted(mods & HEAVY)


def test_bytecode_for_the_build_python_with_source_fallback(tmp_path):
    src = os.path.join(BIN, "sample")
    with zipfile.ZipFile(src) as z:
        names = set(z.namelist())
        pycs = [n for n in names if n.endswith(".pyc")]
        bundle = z.read("_pycni_sources").partition(b"\n\n")[0].decode()
        sources = names | {ln.split("\t")[0] for ln in bundle.splitlines()}
        assert pycs and all(n[:-1] in sources for n in pycs), "a .pyc without its source"
        want = subprocess.run(["/usr/bin/python3", "-c",
                               "import importlib.util,sys;sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())"],
                              capture_output=True, text=True).stdout
        for n in pycs:
            assert z.read(n)[:4].hex() == want, n
        infos = z.infolist()
        # Another Python: every .pyc has a foreign magic number -> the sources run
        with open(src, "rb") as f:
            data = f.read()
        eocd = data.rindex(b"PK\x05\x06")
        cd_size, cd_off = (int.from_bytes(data[eocd + o:eocd + o + 4], "little") for o in (12, 16))
        start = eocd - cd_size - cd_off               # the zip's first byte, after the preamble
        out = tmp_path / "sample"
        with open(out, "wb") as f:
            f.write(data[:start])
            with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zo:
                for i in infos:
                    d = z.read(i.filename)
                    if i.filename.endswith(".pyc"):
                        d = b"\x00\x00\r\n" + d[4:]
                    zo.writestr(i, d)
    out.chmod(0o755)
    r = run_plugin(str(out), "ADD", SAMPLE, netns="/run/netns/x")
    assert r.rc == 0 and r.json["ips"][0]["address"] == "10.1.0.5/16", r


def test_python_override_goes_into_the_shebang(tmp_path):
    subprocess.run([sys.executable, os.path.join(ROOT, "zipapp", "build.py"), "--out",
                    str(tmp_path), "--python", "/opt/py3/bin/python3", "--only", "sample"],
                   check=True)
    with open(tmp_path / "sample", "rb") as f:
        head = f.read(4096)
    assert head.startswith(b"#!/bin/sh\n") and b"\nexec '/opt/py3/bin/python3' -IS -c '" in head
    assert os.access(tmp_path / "sample", os.X_OK)


def test_make_install_honours_destdir(tmp_path):
    r = subprocess.run(["make", "-s", "-C", ROOT, "install", f"DESTDIR={tmp_path}"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    dest = tmp_path / "opt" / "cni" / "bin"
    want = sorted(n for n in os.listdir(BIN) if not n.startswith("."))
    assert sorted(os.listdir(dest)) == want
    for n in want:
        assert os.access(dest / n, os.X_OK)
        assert (dest / n).read_bytes() == open(os.path.join(BIN, n), "rb").read()
    r = run_plugin(str(dest / "sample"), "VERSION", {"cniVersion": "1.0.0"})
    assert r.rc == 0


def test_make_test_bootstraps_its_own_venv(tmp_path):
    r = subprocess.run(["make", "-n", "-C", ROOT, "test", f"VENV={tmp_path}/v"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"-m venv {tmp_path}/v" in r.stdout and "pip install" in r.stdout and "pytest" in r.stdout
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        assert "make test" in f.read()


def test_readme_names_the_two_commands():
    text = open(os.path.join(ROOT, "README.md")).read()
    assert "sudo make demo" in text and "sudo make test" in text


GC_PROBE = """import gc, sys
def probe(event, args):
    if event == "import" and args[0] in ("cni.skel", "cni.convert"):
        sys.stderr.write("GC %s %s %d\\n" % (args[0], gc.isenabled(), gc.get_freeze_count()))
sys.addaudithook(probe)
"""


def test_gc_off_while_modules_load_then_frozen_and_on():
    """The launcher turns the cyclic GC off for the imports; the boot freezes what they made
    and turns it back on before the verb runs (cni.convert is imported by the verb)."""
    argv = launch_importtime(os.path.join(BIN, "sample"))
    i = argv.index("-c") + 1
    argv[i] = GC_PROBE + argv[i]
    e = {"PATH": os.environ["PATH"], "CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1",
         "CNI_NETNS": "/run/netns/x", "CNI_IFNAME": "eth0", "CNI_PATH": BIN}
    r = subprocess.run(argv, input=json.dumps(SAMPLE).encode(), capture_output=True, env=e)
    assert r.returncode == 0, r.stderr[-2000:]
    probes = {ln.split()[1]: ln.split()[2:] for ln in r.stderr.decode().splitlines()
              if ln.startswith("GC ")}
    assert probes["cni.skel"] == ["False", "0"], probes
    assert probes["cni.convert"][0] == "True" and int(probes["cni.convert"][1]) > 1000, probes
