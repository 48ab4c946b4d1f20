#!/usr/bin/env python3
"""Build one self-contained, reproducible zipapp per plugin.

Each archive holds the plugin module, only the `cni` modules it can import
(found by scanning bytecode, lazy imports included), their .pyc compiled by
this interpreter (unchecked-hash, next to the .py, where zipimport looks;
docstrings, annotations and column tables left out), the sources deflated
(the fallback for another interpreter version), and a generated __main__.py
whose VERSION answer needs no imports. In front of the archive, a POSIX sh
preamble answers VERSION itself and execs the pinned interpreter otherwise.

usage: build.py [--python /usr/bin/python3] [--out bin] [--only NAME ...]
"""
from __future__ import annotations

import argparse
import importlib.util
import io
import modulefinder
import os
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "lib")
PLUGINS = os.path.join(ROOT, "plugins")
EPOCH = (1980, 1, 1, 0, 0, 0)
sys.path.insert(0, LIB)
from cni import embed  # noqa: E402  (the contract's build half; see cni/embed.py)

# extra executables that are not plugins: binary name -> "module:function"
APPS = {"cnitool": "cni.runtime.cnitool:main"}

MAIN_TEMPLATE = '''\
import posix  # already loaded by the interpreter; `os` is not, and VERSION needs nothing else
if posix.environ.get(b"CNI_COMMAND") == b"VERSION" and {fast!r}:
    import sys
    v = "1.1.0"
    try:
        s = sys.stdin.buffer.read(65536).decode("utf-8", "replace")
        i = s.find('"cniVersion"')
        if i >= 0:
            j = s.index('"', s.index(":", i) + 1)
            c = s[j + 1:s.index('"', j + 1)]
            if c and len(c) < 16 and all(ch in "0123456789." for ch in c):
                v = c
    except (OSError, ValueError, AttributeError):  # AttributeError: stdin closed (None)
        pass
    try:
        sys.stdout.write('{{"cniVersion":"%s","supportedVersions":{versions}}}' % v)
        sys.stdout.flush()
    except (OSError, ValueError, AttributeError) as e:  # stdout closed or broken
        try:
            sys.stderr.write("cannot write to stdout: %s\\n" % (e if sys.stdout else "closed"))
        except (OSError, ValueError, AttributeError):
            pass
        posix._exit(1)
    raise SystemExit(0)
import _pycni_boot
from {module} import {func}
{func}()
'''


LAUNCH_MODULE = "_pycni_main"
ZIPIMPORTED = ("__main__.py", LAUNCH_MODULE + ".py", "_pycni_boot.py")
SOURCES = "_pycni_sources"          # read by _pycni_boot.ArchiveFinder._source()
PYC_DEFLATE = os.environ.get("PYCNI_PYC_DEFLATE", "1") == "1"


def launcher_code(start: int, end: int) -> str:
    """The -c command the preamble passes (argv: '-c', FILE, args...).

    Bytes start..end of FILE hold the bytecode of _pycni_boot plus the archive's entry
    index and a call of the entry point, compiled by the build's Python: it runs from
    memory, with no zipimport, no directory parsing, no runpy (running a zip file goes
    through runpy: ~9 ms). The cyclic GC is off while the plugin's modules load (they are
    ~400 KB of bytecode whose objects it would scan again and again: 0.7 ms of a loopback
    ADD, ~2 ms of a bridge one); _fast() freezes them and turns it back on. If the
    interpreter's bytecode magic differs, the archive goes first on sys.path and zipimport
    takes _pycni_main, which falls back to the sources.
    """
    return ("import gc,sys,marshal,_frozen_importlib_external as x\n"
            'gc.disable();a=sys.argv;del a[0];d=open(a[0],"rb").read()\n'
            f"if d[{start:8d}:{start + 4:8d}]==x.MAGIC_NUMBER:"
            f"exec(marshal.loads(d[{start + 4:8d}:{end:8d}]),"
            '{"__name__":"_pycni_boot","_F":a[0],"_D":d})\n'
            f"else:gc.enable();sys.path[:0]=a[:1];import {LAUNCH_MODULE}")


PREAMBLE = """\
#!/bin/sh
# pycni {name}: a POSIX sh preamble in front of a Python zipapp ("python3 FILE" runs the
# archive). It answers VERSION with shell builtins only and execs the interpreter otherwise.
unset -f read printf 2>/dev/null; set +euvx
case ${{CNI_COMMAND-}} in VERSION){version}
esac
exec '{python}' -IS -c '{code}' "$0" "$@"
exit 127
"""

# VERSION: echo the config's cniVersion when it is plain digits and dots (under 16 chars), as
# the __main__ fast path and skel do; read/case/printf are builtins in dash, bash and busybox.
# Hostile environments: nothing is expanded unquoted and only builtins run; bash (as sh)
# imports exported functions, so `unset -f` (a special builtin, which functions cannot
# shadow in POSIX mode) drops any `read`/`printf`; `set +euvx` undoes SHELLOPTS noise. A
# `#!/bin/sh -p` line would stop bash importing them at all, but busybox sh rejects -p.
VERSION_SH = """
v=1.1.0 s= l= t= c=
while IFS= read -r l; do s=$s$l; l=; done
s=$s$l
case $s in *'"cniVersion"'*)
    t=${{s#*'"cniVersion"'}}
    case $t in *:*'"'*'"'*) t=${{t#*:}}; t=${{t#*'"'}}; c=${{t%%'"'*}} ;; esac ;;
esac
case $c in ''|*[!0-9.]*|????????????????*) ;; *) v=$c ;; esac
printf '%s' '{{"cniVersion":"'"$v"'","supportedVersions":{versions}}}' 2>/dev/null ||
    {{ printf 'cannot write to stdout\n' >&2; exit 1; }}
exit 0 ;;"""


def preamble(name: str, python: str, versions: str | None, start: int = 0, end: int = 0) -> bytes:
    """The sh preamble for one executable; versions is the JSON list, or None: no VERSION case.
    Its length does not depend on start/end (fixed-width numbers)."""
    if "'" in python or "\n" in python or not python.startswith("/"):
        raise SystemExit(f"build: unusable interpreter path {python!r}")
    version = VERSION_SH.format(versions=versions) if versions else " ;;"
    return PREAMBLE.format(name=name, version=version, python=python,
                           code=launcher_code(start, end)).encode()


def boot_blob(zipdata: bytes, base: int, module: str, func: str, noop=None) -> bytes:
    """MAGIC + marshalled code: _pycni_boot, then _fast() with the entry index of `zipdata`
    (offsets from the zip's first byte, which will sit at `base` in the file)."""
    import marshal
    index = {}
    with zipfile.ZipFile(io.BytesIO(zipdata)) as zf:
        for zi in zf.infolist():
            if zi.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                index[zi.filename] = (zi.header_offset, zi.compress_size, zi.compress_type)
    with open(os.path.join(ROOT, "zipapp", "_pycni_boot.py"), "rb") as f:
        src = f.read()
    size = base + len(zipdata)
    tail = f"\n_fast(_F, _D, {base}, {size}, {index!r}, {module!r}, {func!r}, {noop!r})\n".encode()
    import ast
    tree = _strip(ast.parse(src + tail, "_pycni_boot.py"), False)
    code = compile(tree, "_pycni_boot.py", "exec", dont_inherit=True, optimize=0)
    return importlib.util.MAGIC_NUMBER + marshal.dumps(code)


def cni_modules(entry_module: str, entry_file: str) -> dict:
    """{module name: source path} for the entry module and every cni.* module it reaches."""
    finder = modulefinder.ModuleFinder(path=[LIB, PLUGINS], excludes=[])
    finder.run_script(entry_file)
    out = {}
    for name, mod in finder.modules.items():
        if (name == "cni" or name.startswith("cni.")) and mod.__file__:
            out[name] = mod.__file__
    out["cni"] = os.path.join(LIB, "cni", "__init__.py")
    # packages of every module must be present
    for name in list(out):
        parts = name.split(".")
        for i in range(1, len(parts)):
            pkg = ".".join(parts[:i])
            out.setdefault(pkg, os.path.join(LIB, *parts[:i], "__init__.py"))
    return out


def arcname(modname: str, path: str) -> str:
    rel = modname.replace(".", "/")
    return rel + "/__init__.py" if path.endswith("__init__.py") else rel + ".py"


def _strip(tree, keep_module_doc: bool):
    """Drop docstrings (the module's too unless the code reads __doc__) and annotations:
    nothing reads them at run time, and they are a fifth of the bytecode. Asserts stay."""
    import ast
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node.returns = None
            a = node.args
            for arg in a.posonlyargs + a.args + a.kwonlyargs + [a.vararg, a.kwarg]:
                if arg is not None:
                    arg.annotation = None
        if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, ast.Module) and keep_module_doc:
            continue
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            if len(body) == 1:
                body[0] = ast.copy_location(ast.Pass(), body[0])
            else:
                del body[0]
    for node in ast.walk(tree):
        for field in ("orelse", "finalbody"):
            if isinstance(getattr(node, field, None), list):
                setattr(node, field, [_plain(n) for n in getattr(node, field)])
        body = getattr(node, "body", None)
        if isinstance(body, list):
            node.body = [_plain(n) for n in body]
            if isinstance(node, ast.Module):
                # with no annotation left, `from __future__ import annotations` only costs
                # the import of __future__ (~0.2 ms per exec)
                node.body = [n for n in node.body if not (isinstance(n, ast.ImportFrom)
                                                          and n.module == "__future__")]
            if not node.body:
                node.body = [ast.Pass()]
    return ast.fix_missing_locations(tree)


def _plain(n):
    """`x: T = v` -> `x = v`; a bare `x: T` -> pass (annotations are never read)."""
    import ast
    if not isinstance(n, ast.AnnAssign):
        return n
    if n.value is None:
        return ast.copy_location(ast.Pass(), n)
    return ast.copy_location(ast.Assign([n.target], n.value), n)


def compile_pyc(source: bytes, arc: str) -> bytes:
    """A .pyc in unchecked-hash mode (flags=0b01): no mtime inside, reproducible."""
    import ast
    import importlib._bootstrap_external as be
    tree = _strip(ast.parse(source, arc), b"__doc__" in source)
    code = compile(tree, arc, "exec", dont_inherit=True, optimize=0)
    source_hash = importlib.util.source_hash(source)
    return be._code_to_hash_pyc(code, source_hash, checked=False)


def plugin_info(module: str):
    """(versions, fast VERSION path?, plugins to embed) read from the plugin module."""
    sys.path[:0] = [LIB, PLUGINS]
    try:
        mod = __import__(module)
        plugin = getattr(mod, "PLUGIN", None)
        fast = plugin is not None and getattr(mod, "FAST_VERSION", True)
        return (tuple(plugin.versions) if plugin else ()), fast, (plugin.embeds if plugin else ())
    finally:
        del sys.path[:2]


def noop_verbs() -> dict:
    """Plugin -> the verbs with no-op answers in cni.fastpath (their archives carry it)."""
    sys.path.insert(0, LIB)
    try:
        from cni.fastpath import NOOP
        verbs: dict = {}
        for plugin, verb in sorted(NOOP):
            verbs.setdefault(plugin, []).append(verb.encode())
        return {p: tuple(v) for p, v in verbs.items()}
    finally:
        del sys.path[0]


def module_files(module: str, entry_file: str) -> dict:
    """{arcname: source} for an entry module and its cni closure."""
    files = {}
    for name, path in cni_modules(module, entry_file).items():
        with open(path, "rb") as f:
            files[arcname(name, path)] = f.read()
    with open(entry_file, "rb") as f:  # modulefinder files the entry itself as __main__
        files[arcname(module, entry_file) if "." in module else module + ".py"] = f.read()
    return files


def minify(src: bytes) -> bytes:
    """The same module with its docstrings, comments and annotations left out (ast round trip, as
    for the bytecode), for the fallback bundle only: it runs, nobody reads it there (the
    repository has the original)."""
    import ast
    return (ast.unparse(_strip(ast.parse(src), b"__doc__" in src)) + "\n").encode()


def source_bundle(files: dict) -> bytes:
    """'name<TAB>size' lines, a blank line, then the (minified) sources back to back."""
    names = sorted(files)
    srcs = {n: minify(files[n]) for n in names}
    head = "".join(f"{n}\t{len(srcs[n])}\n" for n in names) + "\n"
    return head.encode() + b"".join(srcs[n] for n in names)


def add_file(zf: zipfile.ZipFile, arc: str, data: bytes, deflate: bool = False) -> None:
    zi = zipfile.ZipInfo(arc, EPOCH)
    zi.external_attr = 0o644 << 16
    zi.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    zi.create_system = 3
    zf.writestr(zi, data, compresslevel=9 if deflate else None)


def build(binname: str, module: str, func: str, entry_file: str, python: str, outdir: str) -> str:
    files = module_files(module, entry_file)
    digest = embed.content_hash(files)
    is_plugin = entry_file.startswith(PLUGINS)
    versions, fast, embeds = plugin_info(module) if is_plugin else ((), False, ())
    embedded = {}
    for name in embeds:
        emod = name.replace("-", "_")
        efile = os.path.join(PLUGINS, emod + ".py")
        if os.path.exists(efile):
            efiles = module_files(emod, efile)
            embedded[name] = (emod, embed.content_hash(efiles))
            files.update(efiles)
    noop = None
    verbs = noop_verbs().get(binname) if is_plugin else None
    if verbs:
        files.update(module_files("cni.fastpath", os.path.join(LIB, "cni", "fastpath.py")))
        noop = (binname, tuple(versions), verbs)
    if embedded:
        files[embed.TABLE_MODULE + ".py"] = embed.table_source(embedded)
    vjson = "[" + ",".join('"%s"' % v for v in versions) + "]"
    files["__main__.py"] = MAIN_TEMPLATE.format(fast=bool(fast and versions), versions=vjson,
                                                module=module, func=func).encode()
    files[LAUNCH_MODULE + ".py"] = files["__main__.py"]
    with open(os.path.join(ROOT, "zipapp", "_pycni_boot.py"), "rb") as f:
        files["_pycni_boot.py"] = f.read()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.comment = embed.marker(binname, digest)
        for arc in sorted(files):
            src = files[arc]
            # zipimport's way in (python3 FILE, or another Python) needs these as files; their
            # bytecode is not shipped: the preamble runs the boot from its own copy, and only
            # `python3 FILE` (never a runtime's exec) would read it
            if arc in ZIPIMPORTED:
                add_file(zf, arc, src, deflate=True)
            else:
                add_file(zf, arc[:-3] + ".pyc", compile_pyc(src, arc), deflate=PYC_DEFLATE)
        # every other source, the fallback for another Python, in one deflated entry
        # (one stream compresses a fifth better than a file each)
        add_file(zf, SOURCES, source_bundle({a: files[a] for a in files if a not in ZIPIMPORTED}),
                 deflate=True)
    zipdata = buf.getvalue()
    pversions = vjson if fast and versions else None
    start = len(preamble(binname, python, pversions))
    blob = boot_blob(zipdata, start + 0, module, func, noop)     # base fixed below
    end = start + len(blob)
    blob = boot_blob(zipdata, end, module, func, noop)
    assert len(blob) == end - start
    head = preamble(binname, python, pversions, start, end)
    assert len(head) == start
    dest = os.path.join(outdir, binname)
    tmp = dest + ".tmp"
    with open(tmp, "wb") as f:
        f.write(head + blob + zipdata)
    os.chmod(tmp, 0o755)
    os.replace(tmp, dest)
    return dest




def main() -> int:
    if sys.version_info >= (3, 11) and "no_debug_ranges" not in sys._xoptions:
        # column tables only serve tracebacks' carets: compile without them (-X no_debug_ranges)
        os.execv(sys.executable, [sys.executable, "-X", "no_debug_ranges"] + sys.argv)
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--python", default="/usr/bin/python3",
                    help="interpreter for the shebang (its bytecode is shipped)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bin"))
    ap.add_argument("--only", nargs="*", default=None, help="binary names to build")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    targets = {}
    for fn in sorted(os.listdir(PLUGINS)):
        if fn.endswith(".py") and not fn.startswith("_"):
            mod = fn[:-3]
            targets[mod.replace("_", "-")] = (mod, "main", os.path.join(PLUGINS, fn))
    for binname, spec in APPS.items():
        mod, func = spec.split(":")
        path = os.path.join(LIB, *mod.split(".")) + ".py"
        if os.path.exists(path):
            targets[binname] = (mod, func, path)
    for binname, (mod, func, path) in sorted(targets.items()):
        if a.only and binname not in a.only:
            continue
        build(binname, mod, func, path, a.python, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
