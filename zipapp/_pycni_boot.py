"""Import the rest of a pycni zipapp from memory (shipped inside every archive).

zipimport re-opens the archive, parses its central directory in Python and walks
importlib's path machinery for every module; a plugin imports ~30. This finder
works on the archive's bytes read once and executes each module's bytecode
straight from the buffer; entries may be stored or deflated.

Two ways in:
- the sh preamble's launcher finds this module's bytecode at a fixed offset in
  front of the zip data, with the entry index computed at build time, and runs
  `_fast()` (no zipimport, no directory parsing);
- `python3 FILE`, or an interpreter whose bytecode magic differs, comes through
  zipimport (`__main__`/`_pycni_main`), and `install()` parses the directory.
Bytecode for another interpreter version is ignored and the module is compiled
from its source, which the archive also carries. Anything unexpected leaves
zipimport in charge.
"""
import posix
import sys

from _frozen_importlib import ModuleSpec
from _frozen_importlib_external import MAGIC_NUMBER


class ArchiveFinder:
    """Meta-path finder and loader over one zip archive held in memory.

    `entries` maps an archive name to (offset of its local header in `data`, compressed
    size, method); `index` (name -> the same with offsets from the zip's start), `base` and
    the file's expected `size` skip parsing the central directory.
    """

    def __init__(self, path: str, data: bytes = None, index: dict = None, base: int = 0,
                 size: int = -1):
        if data is None:
            with open(path, "rb") as f:
                data = f.read()
        if index is not None and len(data) == size and data[base:base + 4] == b"PK\x03\x04":
            entries = {k: (base + o, s, m) for k, (o, s, m) in index.items()}
        else:
            entries = self._directory(data)
        self.data = data
        self.entries = entries
        self.path = path
        self._bundle = None

    @staticmethod
    def _directory(data: bytes) -> dict:
        import _struct
        eocd = data.rfind(b"PK\x05\x06")
        if eocd < 0:
            raise ImportError("no zip end record")
        count, cd_size, cd_off = _struct.unpack_from("<HII", data, eocd + 10)
        shift = eocd - cd_size - cd_off          # bytes before the zip data (the preamble)
        entries = {}
        p = eocd - cd_size
        for _ in range(count):
            if data[p:p + 4] != b"PK\x01\x02":
                raise ImportError("bad central directory")
            method, = _struct.unpack_from("<H", data, p + 10)
            csize, usize, nlen, elen, clen = _struct.unpack_from("<IIHHH", data, p + 20)
            local, = _struct.unpack_from("<I", data, p + 42)
            if method in (0, 8):                 # stored or deflated; others stay zipimport's
                entries[data[p + 46:p + 46 + nlen].decode()] = (shift + local, csize, method)
            p += 46 + nlen + elen + clen
        return entries

    def _get(self, name: str) -> bytes:
        off, size, method = self.entries[name]
        data = self.data
        if data[off:off + 4] != b"PK\x03\x04":
            raise ImportError(f"bad local header for {name}")
        start = off + 30 + int.from_bytes(data[off + 26:off + 28], "little") \
            + int.from_bytes(data[off + 28:off + 30], "little")
        if method == 8:
            import zlib
            return zlib.decompress(data[start:start + size], -15)
        return data[start:start + size]

    def _source(self, name: str) -> bytes:
        """A module's source: its own entry, or from the bundle of sources (`_pycni_sources`:
        'name<TAB>size' lines, a blank line, the sources back to back)."""
        if name in self.entries:
            return self._get(name)
        if self._bundle is None:
            data = self._get("_pycni_sources") if "_pycni_sources" in self.entries else b"\n\n"
            head, _, body = data.partition(b"\n\n")
            index, off = {}, 0
            for line in head.decode().splitlines():
                n, size = line.rsplit("\t", 1)
                index[n] = (off, int(size))
                off += int(size)
            self._bundle = (index, body)
        index, body = self._bundle
        off, size = index[name]
        return body[off:off + size]

    def find_spec(self, fullname, path=None, target=None):
        rel = fullname.replace(".", "/")
        for key, pkg in ((rel + "/__init__", True), (rel, False)):
            if key + ".pyc" in self.entries or key + ".py" in self.entries:
                # no has_location: __file__ and __cached__ are not needed, and computing
                # __cached__ costs a cache_from_source() per module
                spec = ModuleSpec(fullname, self, origin=f"{self.path}/{key}.py", is_package=pkg)
                if pkg:
                    spec.submodule_search_locations = [f"{self.path}/{rel}"]
                return spec
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        key = module.__spec__.origin[len(self.path) + 1:-3]
        pyc = self.entries.get(key + ".pyc") and self._get(key + ".pyc")
        if pyc and pyc[:4] == MAGIC_NUMBER:
            import marshal
            code = marshal.loads(memoryview(pyc)[16:])
        else:
            code = compile(self._source(key + ".py"), module.__spec__.origin, "exec",
                           dont_inherit=True)
        exec(code, module.__dict__)

    def get_source(self, fullname):
        """For tracebacks (CNI_DEBUG=1)."""
        spec = self.find_spec(fullname)
        if spec is None:
            return None
        return self._source(spec.origin[len(self.path) + 1:]).decode("utf-8", "replace")


def install() -> None:
    archive = __file__.rpartition("/")[0]
    try:
        sys.meta_path.insert(0, ArchiveFinder(archive))
    except (OSError, ImportError, ValueError, IndexError, UnicodeDecodeError):
        pass  # zipimport still works


def _fast(path: str, data: bytes, base: int, size: int, index: dict, module: str, func: str,
          noop=None) -> None:
    """The launcher's way in: our finder first, the archive last on sys.path (zipimport,
    for anything our finder skips, without making every stdlib import look in the zip).
    The index is used only if the file is still `size` bytes long (else: a repacked archive,
    and the directory is parsed). `noop` = (plugin, versions, verbs): for those CNI_COMMANDs,
    cni.fastpath tries a no-op answer first (other verbs do not load it)."""
    sys.meta_path.insert(0, ArchiveFinder(path, data, index, base, size))
    sys.path.append(path)
    if noop is not None and posix.environ.get(b"CNI_COMMAND") in noop[2]:
        from cni.fastpath import run
        if run(noop[0], noop[1]):
            return
    entry = getattr(__import__(module, fromlist=[func]), func)
    import gc  # the launcher turned it off for the imports: what they made lives to the end
    gc.freeze()
    gc.enable()
    entry()


if "__file__" in globals():     # imported through zipimport (python3 FILE, or the fallback)
    install()
