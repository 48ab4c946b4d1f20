"""Import hygiene: minimal interpreters, start-up cost, Python 3.9 compatibility."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB = os.path.join(ROOT, "lib")
PLUGINS = os.path.join(ROOT, "plugins")
# what Debian's python3-minimal lacks
MINIMAL_MISSING = ("json", "_json", "ctypes", "_ctypes", "zipfile", "shutil", "dataclasses", "uuid")
HEAVY = ("dataclasses", "subprocess", "logging", "argparse", "typing", "json", "re", "enum")


def modules():
    out = []
    for base, dirs, files in os.walk(os.path.join(LIB, "cni")):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for f in sorted(files):
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(base, f), LIB)[:-3].replace(os.sep, ".")
                out.append(rel[:-9] if rel.endswith(".__init__") else rel)
    return sorted(out)


def plugins():
    return sorted(f[:-3] for f in os.listdir(PLUGINS) if f.endswith(".py"))


BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in %r:
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
for m in %r: sys.modules.pop(m, None)
sys.path[:0] = [%r, %r]
"""


def _py(code: str):
    return subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True)


@pytest.mark.parametrize("mod", modules() + plugins())
def test_imports_without_minimal_missing_modules(mod):
    code = BLOCKER % (MINIMAL_MISSING, MINIMAL_MISSING, LIB, PLUGINS) + f"import {mod}\n"
    r = _py(code)
    assert r.returncode == 0, r.stderr


def test_jsonx_works_without_json_modules():
    code = BLOCKER % (MINIMAL_MISSING, MINIMAL_MISSING, LIB, PLUGINS) + (
        "from cni import jsonx\n"
        "assert jsonx._json is None\n"
        "d = jsonx.loads('{\"a\": [1, 2.5, \"\\\\u00e9\", null, true]}')\n"
        "assert d == {'a': [1, 2.5, '\\u00e9', None, True]}, d\n"
        "print(jsonx.dumps(d))\n")
    r = _py(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == '{"a":[1,2.5,"\\u00e9",null,true]}'


@pytest.mark.parametrize("plugin", plugins())
def test_plugin_import_is_light(plugin):
    code = (f"import sys; sys.path[:0] = [{LIB!r}, {PLUGINS!r}]\n"
            f"import {plugin}\n"
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    r = _py(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "", f"{plugin} imports {r.stdout.strip()} at start-up"


def test_python39_compatible():
    vermin = shutil.which("vermin") or os.path.join(os.path.dirname(sys.executable), "vermin")
    if not os.path.exists(vermin):
        pytest.skip("vermin not installed")
    r = subprocess.run([vermin, "-t=3.9-", "--no-tips", "--violations", "--eval-annotations",
                        LIB, PLUGINS], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
