"""Import hygiene: minimal interpreters, start-up cost, Python 3.9 compatibility."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from helpers import import_from

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
        "from cni.std import json as jsonx\n"
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


# ---- issue 13: modules that must never be imported on a plugin's path ------------------------
# Found statically (every import statement, lazy ones included, in every module a plugin's
# zipapp carries), so a regression fails here without timing anything.
FORBIDDEN = ("ipaddress", "functools", "collections", "enum", "re", "json", "subprocess",
             "dataclasses", "typing", "logging", "argparse", "ctypes", "socket", "contextlib",
             "threading", "random", "runpy", "importlib", "inspect", "tempfile", "shutil",
             "datetime", "string", "textwrap", "copy", "zipfile", "selectors", "signal", "uuid")
# (module, import) pairs allowed at a real edge, each with its reason
EDGES = {
    ("cni.meta.tuning", "re"): "regexes of /etc/cni/tuning/allowlist.conf, only when it exists",
    ("cni.skel", "traceback"): "CNI_DEBUG=1 only",
}
# whole modules that are edges themselves (imported lazily, only when that feature is used)
EDGE_MODULES = {"cni.dbus": "firewalld over the system bus",
                "cni.dhcp": "the dhcp daemon and client (bin/dhcp)",
                "cni.runtime": "cnitool and the runtime library"}
NOT_PLUGIN_PATHS = ("dhcp",)      # the dhcp daemon is a long-running process, not an exec


def _imported_names(path: str, modname: str, is_pkg: bool) -> set:
    """Every module name an import statement in the file can load (lazy ones too)."""
    import dis
    with open(path, "rb") as f:
        code = compile(f.read(), path, "exec", dont_inherit=True)
    names, todo = set(), [code]
    pkg = modname if is_pkg else modname.rpartition(".")[0]
    while todo:
        c = todo.pop()
        todo += [k for k in c.co_consts if hasattr(k, "co_code")]
        ins = list(dis.get_instructions(c))
        for i, op in enumerate(ins):
            if op.opname != "IMPORT_NAME":
                continue
            level = next((p.argval for p in reversed(ins[:i]) if p.opname == "LOAD_CONST"
                          and isinstance(p.argval, int)), 0)
            name = op.argval
            if level:
                base = pkg
                for _ in range(level - 1):
                    base = base.rpartition(".")[0]
                name = f"{base}.{name}" if name else base
            names.add(name)
    return names


def _closure(plugin: str) -> dict:
    return import_from("zipapp", "build").cni_modules(plugin, os.path.join(PLUGINS, plugin + ".py"))


@pytest.mark.parametrize("plugin", [p for p in plugins() if p not in NOT_PLUGIN_PATHS])
def test_no_forbidden_module_on_a_plugin_path(plugin):
    bad = []
    mods = dict(_closure(plugin))
    mods[plugin] = os.path.join(PLUGINS, plugin + ".py")
    if plugin in ("tuning", "portmap", "bandwidth", "firewall"):
        mods["cni.fastpath"] = os.path.join(LIB, "cni", "fastpath.py")
    for mod, path in sorted(mods.items()):
        if any(mod == e or mod.startswith(e + ".") for e in EDGE_MODULES):
            continue
        for name in _imported_names(path, mod, path.endswith("__init__.py")):
            top = name.split(".")[0]
            if top in FORBIDDEN and (mod, top) not in EDGES:
                bad.append(f"{mod} imports {name}")
    assert not bad, bad


def test_forbidden_list_catches_a_regression(tmp_path):
    """The scan sees a lazy import inside a function (what the timing would have missed)."""
    p = tmp_path / "m.py"
    p.write_text("def f():\n    import ipaddress\n    from collections import deque\n"
                 "    from . import sibling\n")
    assert _imported_names(str(p), "cni.m", False) >= {"ipaddress", "collections", "cni"}
