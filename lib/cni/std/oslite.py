"""`os` without importing `os`: the part of it a plugin's hot path uses, over `posix`.

Importing `os` costs ~0.9 ms of every plugin exec (it builds `_collections_abc`, `stat`,
`posixpath` and the environ mapping); a plugin is exec'd 16 times per container. Modules
import this as `from cni.std import oslite as os`, so call sites read as the stdlib's.

- Every `posix` function and constant is re-exported as is (`os.open` is `posix.open`).
- `environ` is the real `os.environ` once anything has imported `os` (an embedding program,
  a test's monkeypatch, a tool run through subprocess), else a str->str snapshot of the
  process environment decoded as `os` does (utf-8, surrogateescape).
- `path` has the pure string functions and the stat-based tests; anything else
  (`realpath`, `normpath`, ...) and any other name of `os` (`makedirs`, `walk`, ...) is
  delegated to the real module, imported on first use: same behaviour, paid only there.
"""
import sys
from posix import *  # noqa: F401,F403  (the functions and constants `os` re-exports)
from posix import _exit  # noqa: F401  (underscored: not in the * import)
from posix import environ as _benviron
from posix import lstat as _lstat
from posix import stat as _stat

del environ  # noqa: F821  (bytes -> bytes in posix; ours is str, see __getattr__)

sep = "/"
curdir, pardir, devnull = ".", "..", "/dev/null"
SEEK_SET, SEEK_CUR, SEEK_END = 0, 1, 2
_S_IFMT, _S_IFDIR, _S_IFREG, _S_IFLNK = 0o170000, 0o040000, 0o100000, 0o120000
_env = None


def _real():
    import os  # lazy: the point of this module is not to pay for it on the hot path
    return os


def __getattr__(name: str):
    if name == "environ":
        real = sys.modules.get("os")
        if real is not None:
            return real.environ
        global _env
        if _env is None:
            _env = {k.decode("utf-8", "surrogateescape"): v.decode("utf-8", "surrogateescape")
                    for k, v in _benviron.items()}
        return _env
    return getattr(_real(), name)


def _mode(p, follow: bool = True):
    try:
        return (_stat(p) if follow else _lstat(p)).st_mode & _S_IFMT
    except (OSError, ValueError):
        return None


def makedirs(name: str, mode: int = 0o777, exist_ok: bool = False) -> None:
    """os.makedirs: the missing parents (mode 0o777, as os does), then `name` with `mode`."""
    head, tail = path.split(name)
    if not tail:
        head, tail = path.split(head)
    if head and tail and not path.exists(head):
        try:
            makedirs(head, exist_ok=exist_ok)
        except FileExistsError:
            pass                                  # made by someone else meanwhile
        if tail == ".":
            return
    try:
        mkdir(name, mode)  # noqa: F405
    except OSError:
        if not exist_ok or not path.isdir(name):
            raise


class _Path:
    """The string half of `os.path` (posixpath's rules for str paths)."""

    sep = "/"

    @staticmethod
    def join(a, *p):
        for b in p:
            if b.startswith("/"):
                a = b
            elif not a or a.endswith("/"):
                a += b
            else:
                a += "/" + b
        return a

    @staticmethod
    def split(p):
        i = p.rfind("/") + 1
        head, tail = p[:i], p[i:]
        if head and head != "/" * len(head):
            head = head.rstrip("/")
        return head, tail

    def dirname(self, p):
        return self.split(p)[0]

    @staticmethod
    def basename(p):
        return p[p.rfind("/") + 1:]

    @staticmethod
    def normpath(p):
        if not p:
            return "."
        lead = 2 if p.startswith("//") and not p.startswith("///") else int(p.startswith("/"))
        out = []
        for c in p.split("/"):
            if c in ("", "."):
                continue
            if c == ".." and (out and out[-1] != ".."):
                out.pop()
            elif c != ".." or not lead:
                out.append(c)
        return "/" * lead + "/".join(out) or "."

    @staticmethod
    def isabs(p):
        return p.startswith("/")

    @staticmethod
    def exists(p):
        return _mode(p) is not None

    @staticmethod
    def lexists(p):
        return _mode(p, False) is not None

    @staticmethod
    def isdir(p):
        return _mode(p) == _S_IFDIR

    @staticmethod
    def isfile(p):
        return _mode(p) == _S_IFREG

    @staticmethod
    def islink(p):
        return _mode(p, False) == _S_IFLNK

    def __getattr__(self, name):
        return getattr(_real().path, name)


path = _Path()
