"""In-process delegation: both halves of the contract between the build and the run.

A plugin that delegates (bridge -> host-local) declares `skel.Plugin(..., embeds=(...))`.
The build (zipapp/build.py) then carries each embedded plugin's code in the archive, writes
the table TABLE_MODULE (delegate name -> (module, content hash)), and ends every archive
with marker(name, hash) as its zip comment. At run time, when the file that CNI_PATH yields
for a delegate ends with the marker of the very code we carry, running that code here is
the same as executing the file, minus an interpreter start: run() calls the delegate's skel
handler and hands back its result object (no JSON text in between; exec keeps JSON).
CNI_NO_INPROCESS=1 turns it off.
"""
from __future__ import annotations

from cni import skel
from cni.convert import convert
from cni.errors import CNIError, InternalError
from cni.std import oslite as os

TABLE_MODULE = "_pycni_embed"       # generated into an archive that embeds plugins
OPT_OUT = "CNI_NO_INPROCESS"


# --- build side (zipapp/build.py) ---

def content_hash(files: dict) -> str:
    """Identity of a plugin build: its sources. Two archives with equal hashes run the same code."""
    import hashlib  # lazy: only the build hashes
    h = hashlib.sha256()
    for arc in sorted(files):
        h.update(arc.encode() + b"\0" + str(len(files[arc])).encode() + b"\0" + files[arc])
    return h.hexdigest()[:16]


def marker(binname: str, digest: str) -> bytes:
    """An archive's trailing bytes (its zip comment): which plugin, which build."""
    return f"pycni {binname} {digest}".encode()


def table_source(embedded: dict) -> bytes:
    """The source of TABLE_MODULE: {delegate name: (module, content hash)}."""
    return ("EMBEDDED = %r\n" % dict(sorted(embedded.items()))).encode()


# --- run side (cni.invoke) ---

def _table() -> dict:
    try:
        mod = __import__(TABLE_MODULE)
    except ImportError:
        return {}
    return mod.EMBEDDED


def module_for(plugin: str, path: str, environ) -> str | None:
    """The module to run `path` in-process, if our archive embeds the very same build."""
    if environ.get(OPT_OUT) == "1":
        return None
    ent = _table().get(plugin)
    if ent is None:
        return None
    want = marker(plugin, ent[1])
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        if size < len(want) or os.pread(fd, len(want), size - len(want)) != want:
            return None
    finally:
        os.close(fd)
    return ent[0]


def run(module: str, stdin: bytes, environ):
    """Run an embedded plugin's command as its exec would; errors keep their codes.

    Returns what the exec path would have parsed from stdout: for ADD the Result in the
    request's version (convert.convert: the same check and relabelling as print + parse),
    else None.
    """
    import io  # lazy: only an in-process delegation needs it
    plugin = __import__(module).PLUGIN
    try:
        result, ver = skel.execute(plugin, environ, io.BytesIO(stdin))
        if result is None or environ.get("CNI_COMMAND") != "ADD":
            return None
        return convert(result, ver or "0.1.0")
    except CNIError:
        raise
    except RecursionError:
        raise InternalError("input nested too deeply") from None
    except Exception as exc:  # as the skel of an exec'd plugin reports it
        raise InternalError(str(exc) or type(exc).__name__, type(exc).__name__) from None
