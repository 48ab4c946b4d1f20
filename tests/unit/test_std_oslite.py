"""cni.std.oslite against its stdlib twin `os`: same answers, and `os` itself never imported."""
from __future__ import annotations

import os
import posixpath
import subprocess
import sys

import pytest

from cni.std import oslite
from cni.std import process as proc

LIB = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                   "lib")
PATHS = ["", "/", "//", "///", "a", "a/", "/a", "/a/", "//a", "///a/b", "a//b", "a/./b", "a/../b",
         "../a", "../../a/..", "/..", "/../a", "./", ".", "..", "a/b/c/..", "a/b/../../..",
         "/run/netns/x", "/proc/1/ns/net", "//x/../y", "a/./../.", "é/ü", "a/b/", "/a//b///c"]


@pytest.mark.parametrize("p", PATHS)
def test_path_string_functions_match_posixpath(p):
    for name in ("split", "dirname", "basename", "isabs", "normpath"):
        assert getattr(oslite.path, name)(p) == getattr(posixpath, name)(p), (name, p)
    for q in PATHS[:12]:
        assert oslite.path.join(p, q) == posixpath.join(p, q), (p, q)
    assert oslite.path.join(p, "x", "/y", "z") == posixpath.join(p, "x", "/y", "z")


def test_stat_based_tests_match(tmp_path):
    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    (tmp_path / "l").symlink_to(tmp_path / "f")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tmp_path / "fifo")
    for name in ("f", "d", "l", "dangling", "fifo", "nowhere", "f\0x"):
        p = str(tmp_path / name)
        for fn in ("exists", "lexists", "isdir", "isfile", "islink"):
            assert getattr(oslite.path, fn)(p) == getattr(posixpath, fn)(p), (fn, name)


def test_makedirs_matches(tmp_path):
    oslite.makedirs(str(tmp_path / "a/b/c"), 0o700)
    assert oct((tmp_path / "a/b/c").stat().st_mode & 0o777) == "0o700"
    assert oct((tmp_path / "a").stat().st_mode & 0o777) == oct(0o777 & ~_umask())
    oslite.makedirs(str(tmp_path / "a/b/c"), exist_ok=True)
    with pytest.raises(FileExistsError):
        oslite.makedirs(str(tmp_path / "a/b/c"))
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError):
        oslite.makedirs(str(tmp_path / "file"), exist_ok=True)      # os says the same
    with pytest.raises(NotADirectoryError):
        oslite.makedirs(str(tmp_path / "file/sub"), exist_ok=True)
    oslite.makedirs(str(tmp_path / "x/y/"), exist_ok=True)
    assert (tmp_path / "x/y").is_dir()


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def test_posix_names_are_the_same_objects_and_the_rest_comes_from_os():
    for name in ("open", "close", "read", "write", "fstat", "getpid", "O_CLOEXEC", "O_PATH",
                 "waitpid", "scandir", "_exit", "strerror", "pipe", "replace"):
        assert getattr(oslite, name) is getattr(os, name), name
    assert oslite.walk is os.walk and oslite.path.realpath is posixpath.realpath
    assert oslite.devnull == os.devnull and oslite.sep == os.sep
    assert oslite.fsencode("é\udcff") == os.fsencode("é\udcff")
    assert oslite.fsdecode(b"\xff") == os.fsdecode(b"\xff")
    assert oslite.environ is os.environ      # os is loaded here: its mapping, live
    with pytest.raises(AttributeError):
        oslite.no_such_name


def test_without_os_nothing_imports_it_and_environ_is_the_decoded_snapshot():
    code = (f"import sys; sys.path.insert(0, {LIB!r})\n"
            "from cni.std import oslite\n"
            "e = oslite.environ\n"
            "assert oslite.path.join('/a', 'b') == '/a/b' and oslite.path.isdir('/')\n"
            "oslite.makedirs('/', exist_ok=True)\n"
            "assert 'os' not in sys.modules, 'os imported'\n"
            "print(repr(sorted(e.items())))\n"
            "import os\n"
            "assert oslite.environ is os.environ\n"
            "assert e == dict(os.environ), (e, os.environ)\n")
    rc, out, err = proc.run([sys.executable, "-I", "-S", "-c", code], b"",
                            {"A": "1", "B": "x\udcffy", "PATH": "/bin"})
    assert rc == 0, err
    got = eval(out.decode("utf-8", "surrogateescape"))
    assert {k: v for k, v in got if k != "LC_CTYPE"} == {"A": "1", "B": "x\udcffy", "PATH": "/bin"}


def test_program_name_follows_the_symlink_chain(tmp_path):
    (tmp_path / "real").write_text("")
    (tmp_path / "d").mkdir()
    (tmp_path / "d/mid").symlink_to("../real")
    (tmp_path / "top").symlink_to(tmp_path / "d/mid")
    (tmp_path / "loop").symlink_to("loop")
    assert proc.program_name(str(tmp_path / "top")) == "real"
    assert proc.program_name(str(tmp_path / "real")) == "real"
    assert proc.program_name(str(tmp_path / "loop")) == "loop"          # gives up, no hang
    assert proc.program_name(str(tmp_path / "missing")) == "missing"
    ipt = proc.which("iptables-restore")
    if ipt:
        assert proc.program_name(ipt) == os.path.basename(os.path.realpath(ipt))
