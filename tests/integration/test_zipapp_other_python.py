"""A zipapp meets another Python minor: its bytecode does not match, the sources run instead,
and stdout carries only the CNI answer (issue 13)."""
from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import pytest

from helpers import BIN, ROOT, run_plugin

SYSTEM = "/usr/bin/python3"
PREV = {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": "/run/netns/x"}],
        "ips": [{"address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 0}]}
SAMPLE = {"cniVersion": "1.0.0", "name": "net1", "type": "sample", "anotherAwesomeArg": "x",
          "prevResult": PREV}


def _minor(py: str):
    r = subprocess.run([py, "-c", "import sys;print(sys.version_info[0],sys.version_info[1])"],
                       capture_output=True, text=True)
    return tuple(map(int, r.stdout.split())) if r.returncode == 0 else None


def _other_python() -> str:
    """Any Python 3.9+ on this machine whose minor differs from /usr/bin/python3's."""
    own = _minor(SYSTEM)
    cands = sorted(glob.glob("/usr/bin/python3.[0-9]*") + glob.glob("/usr/local/bin/python3.[0-9]*")
                   + glob.glob("/root/.pyenv/versions/3.*/bin/python3"))
    for c in cands:
        if c.endswith("-config") or not os.access(c, os.X_OK):
            continue
        m = _minor(c)
        if m and m >= (3, 9) and m != own:
            return c
    pytest.skip(f"no Python 3.9+ other than {own} on this machine")


@pytest.fixture(scope="module")
def other():
    return _other_python()


def _magic(py: str) -> bytes:
    return subprocess.run([py, "-c", "import sys,importlib.util as u;"
                           "sys.stdout.buffer.write(u.MAGIC_NUMBER)"], capture_output=True).stdout


def test_bytecode_built_by_another_python(other, tmp_path):
    """Built by `other` (its bytecode and boot blob), run by the pinned /usr/bin/python3."""
    subprocess.run([other, os.path.join(ROOT, "zipapp", "build.py"), "--python", SYSTEM, "--out",
                    str(tmp_path), "--only", "sample"], check=True, capture_output=True)
    exe = str(tmp_path / "sample")
    import zipfile
    with zipfile.ZipFile(exe) as z:
        assert z.read("cni/skel.pyc")[:4] == _magic(other) != _magic(SYSTEM)
    r = run_plugin(exe, "ADD", SAMPLE, netns="/run/netns/x", path=str(tmp_path))
    assert r.rc == 0, r
    assert json.loads(r.stdout) == json.loads(run_plugin("sample", "ADD", SAMPLE,
                                                         netns="/run/netns/x").stdout)
    assert r.stdout.lstrip().startswith("{") and r.stderr == "", r
    v = run_plugin(exe, "VERSION", {"cniVersion": "0.4.0"})
    assert v.rc == 0 and v.json["cniVersion"] == "0.4.0"


def test_our_build_run_by_another_python(other, built_bins):
    """bin/sample (bytecode of /usr/bin/python3) run as `OTHER FILE`: __main__ and sources."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CNI_COMMAND": "ADD",
           "CNI_CONTAINERID": "c1", "CNI_NETNS": "/run/netns/x", "CNI_IFNAME": "eth0",
           "CNI_PATH": BIN}
    r = subprocess.run([other, "-I", os.path.join(BIN, "sample")], env=env,
                       input=json.dumps(SAMPLE).encode(), capture_output=True)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert json.loads(r.stdout)["ips"][0]["address"] == "10.1.0.5/16"
    assert r.stderr == b""
    assert sys.version_info >= (3, 9)


def _oldest_python() -> str:
    """The oldest Python 3.9+ on this machine (the floor we promise), else skip."""
    cands = sorted(glob.glob("/usr/bin/python3.[0-9]*") + glob.glob("/root/.pyenv/versions/3.*/bin/python3"))
    found = [(m, c) for c in cands if not c.endswith("-config") and os.access(c, os.X_OK)
             for m in [_minor(c)] if m and m >= (3, 9)]
    if not found:
        pytest.skip("no Python 3.9+ besides the system one")
    return min(found)[1]


def test_fallback_sources_compile_on_the_oldest_python():
    """The sources bundled as the fallback (minified at build time) are valid for 3.9."""
    py = _oldest_python()
    code = r'''
import sys, zipfile
for path in sys.argv[1:]:
    data = zipfile.ZipFile(path).read("_pycni_sources")
    head, _, body = data.partition(b"\n\n")
    off = 0
    for line in head.decode().splitlines():
        name, size = line.split("\t")
        compile(body[off:off + int(size)], path + ":" + name, "exec")
        off += int(size)
print("ok", len(sys.argv) - 1)
'''
    bins = sorted(glob.glob(os.path.join(BIN, "*")))
    r = subprocess.run([py, "-c", code, *bins], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"ok {len(bins)}"
