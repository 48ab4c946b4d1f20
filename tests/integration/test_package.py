"""The project as a Python package: build the wheel in a fresh venv, install it, and use
the installed copy only (README example against real namespaces, cnitool, pycni-install).
"""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from helpers import ROOT

pytestmark = [pytest.mark.root, pytest.mark.slow]
SHIPPED = ("pyproject.toml", "setup.py", "README.md", "LICENSE", "lib", "plugins", "zipapp")
BACKEND_MISSING = ("No matching distribution found", "Could not find a version that satisfies")


def readme_blocks() -> dict:
    """The code blocks of README's "Using the library from Python" section, by language."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    section = text.split("## Using the library from Python", 1)[1].split("\n## ", 1)[0]
    return {lang: body for lang, body in re.findall(r"```(\w+)\n(.*?)```", section, re.S)}


def clean_env(**extra) -> dict:
    """This environment without PYTHON* variables (no PYTHONPATH to the source tree)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(extra)
    return env


def run(argv, **kw):
    kw.setdefault("env", clean_env())
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A venv with the wheel built from a copy of the tree installed in it."""
    tmp = tmp_path_factory.mktemp("pkg")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in SHIPPED:
        p = os.path.join(ROOT, name)
        if os.path.isdir(p):
            shutil.copytree(p, src / name, ignore=ignore)
        else:
            shutil.copy(p, src / name)
    r = run([sys.executable, "-m", "venv", str(tmp / "venv")])
    assert r.returncode == 0, r.stderr
    py = str(tmp / "venv" / "bin" / "python")
    r = run([py, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp / "dist"), str(src)])
    if r.returncode != 0 and any(m in r.stdout + r.stderr for m in BACKEND_MISSING):
        pytest.skip("the build backend (setuptools>=77) cannot be installed from the configured"
                    " package index")
    assert r.returncode == 0, r.stdout + r.stderr
    (wheel,) = glob.glob(str(tmp / "dist" / "pycni-*.whl"))
    r = run([py, "-m", "pip", "install", "--no-index", "--no-deps", wheel])
    assert r.returncode == 0, r.stdout + r.stderr
    work = tmp / "cwd"  # an empty working directory: nothing importable from the tree
    work.mkdir()
    return {"dir": tmp, "python": py, "bin": str(tmp / "venv" / "bin"), "cwd": str(work),
            "wheel": wheel}


def test_wheel_contents(venv):
    import zipfile
    with zipfile.ZipFile(venv["wheel"]) as zf:
        names = set(zf.namelist())
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        entry = zf.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert {"cni/py.typed", "cni/runtime/libcni.py", "cni/_dist/plugins/bridge.py",
            "cni/_dist/zipapp/build.py", "cni/_dist/zipapp/_pycni_boot.py"} <= names
    assert not any(n.startswith(("tests/", "bench/")) for n in names)
    import cni
    assert f"Version: {cni.__version__}" in meta  # the one version, from lib/cni/__init__.py
    assert "Requires-Python: >=3.9" in meta and "Requires-Dist" not in meta
    assert "cnitool = cni.runtime.cnitool:main" in entry
    assert "pycni-install = cni._dist.install:main" in entry


def test_installed_copy_is_used(venv):
    r = run([venv["python"], "-c", "import cni, cni.runtime; print(cni.__file__)"],
            cwd=venv["cwd"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith(str(venv["dir"] / "venv")), r.stdout
    r = run([venv["python"], "-c", "import cni.runtime as m; help(m.CNIConfig.add_network_list)"],
            cwd=venv["cwd"])
    assert "prevResult" in r.stdout


def test_readme_example_cnitool_and_pycni_install(venv, host_ns, cont_ns):
    tmp = venv["dir"]
    plugins = str(tmp / "cnibin")
    # pycni-install: the zipapps for this machine's interpreter, from the installed wheel
    r = run([os.path.join(venv["bin"], "pycni-install"), "--python", "/usr/bin/python3",
             plugins], cwd=venv["cwd"])
    assert r.returncode == 0, r.stderr
    for name in ("bridge", "host-local", "tuning", "cnitool"):
        assert os.access(os.path.join(plugins, name), os.X_OK), name
    r = run([os.path.join(plugins, "bridge")], input='{"cniVersion": "1.0.0"}',
            env=clean_env(CNI_COMMAND="VERSION"))
    assert r.returncode == 0 and "1.1.0" in json.loads(r.stdout)["supportedVersions"]

    blocks = readme_blocks()
    conf = json.loads(blocks["json"])
    conf["plugins"][0]["ipam"]["dataDir"] = str(tmp / "ipam")  # keep the host's store clean
    netconf = tmp / "net.d"
    netconf.mkdir()
    (netconf / "10-demo.conflist").write_text(json.dumps(conf))
    guard = f"import cni\nassert cni.__file__.startswith({str(tmp / 'venv')!r}), cni.__file__\n"
    (tmp / "example.py").write_text(guard + blocks["python"])  # the README code, verbatim
    env = clean_env(NETCONFPATH=str(netconf), CNI_PATH=plugins,
                    CNI_CACHE_DIR=str(tmp / "cache"), NETNS=cont_ns.path)
    r = run(["ip", "netns", "exec", host_ns.name, venv["python"], str(tmp / "example.py")],
            cwd=venv["cwd"], env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"^eth0 (10\.250\.7\.\d+)/24 gateway 10\.250\.7\.1$", r.stdout, re.M)
    assert m, r.stdout
    assert r.stdout.rstrip().endswith("detached")
    # the example really ran against the kernel: the bridge got the gateway address,
    # and the container side is gone again after DEL
    (br,) = host_ns.ipj("addr", "show", "dev", "demo0")
    assert "10.250.7.1" in [a["local"] for a in br["addr_info"]]
    assert [ln["ifname"] for ln in cont_ns.ipj("link")] == ["lo"]
    assert os.listdir(tmp / "cache" / "results") == []

    # the installed cnitool: same network, result printed, kernel state, one-line errors
    tool = os.path.join(venv["bin"], "cnitool")
    r = run(["ip", "netns", "exec", host_ns.name, tool, "add", "demo", cont_ns.path],
            cwd=venv["cwd"], env=env)
    assert r.returncode == 0, r.stderr
    addr = json.loads(r.stdout)["ips"][0]["address"]
    (eth0,) = cont_ns.ipj("addr", "show", "dev", "eth0")
    assert addr == f"{eth0['addr_info'][0]['local']}/24"
    r = run(["ip", "netns", "exec", host_ns.name, tool, "del", "demo", cont_ns.path],
            cwd=venv["cwd"], env=env)
    assert r.returncode == 0, r.stderr
    assert [ln["ifname"] for ln in cont_ns.ipj("link")] == ["lo"]
    r = run([tool, "--json", "add", "nosuch", cont_ns.path], cwd=venv["cwd"], env=env)
    assert r.returncode == 1 and json.loads(r.stdout)["code"] == 7
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("cnitool: add nosuch: error 7")
    r = run([tool, "--help"], cwd=venv["cwd"], env=env)
    assert r.returncode == 0 and "CNI_CACHE_DIR" in r.stdout
