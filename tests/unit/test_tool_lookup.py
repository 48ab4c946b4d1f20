"""Tool and plugin lookup never runs anything from the current directory.

cni.std.process.which is the one home of tool lookup (iptables*, nft, nsenter, ...): only absolute
PATH entries count, as Go's exec.LookPath refuses a result relative to the cwd. CNI_PATH
entries are used as given (as Go's FindInPath), except empty ones and ".".
"""
from __future__ import annotations

import os

import pytest

from cni import invoke
from cni.std import process as proc
from cni.errors import CNIError
from cni.fw import backend


@pytest.fixture
def cwd_with_fakes(tmp_path, monkeypatch):
    """cwd holds executables named like the real tools, and so does ./relative."""
    marker = tmp_path / "ran"
    rel = tmp_path / "relative"
    rel.mkdir()
    for d in (tmp_path, rel):
        for name in ("sh", "iptables-save", "nft", "nsenter", "cnit-only-here"):
            p = d / name
            p.write_text(f"#!/bin/sh\necho \"$0\" >> {marker}\n")
            p.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    backend._which_cache.clear()
    yield marker
    backend._which_cache.clear()


HOSTILE_PATHS = ("", ":", ".", "./", "relative", ":relative:.", "relative/../relative")


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_relative_entries_skipped_default_used(cwd_with_fakes, path):
    """No absolute entry: the default PATH, never the cwd."""
    assert proc.search_path(path) == proc.DEFAULT_PATH.split(":")
    assert proc.which("cnit-only-here", path) is None
    sh = proc.which("sh", path)
    assert sh is not None and os.path.isabs(sh) and os.path.dirname(sh) in proc.DEFAULT_PATH


def test_absolute_entries_only(cwd_with_fakes, monkeypatch):
    monkeypatch.setenv("PATH", ":relative:.:/usr/bin:/bin")
    assert proc.search_path() == ["/usr/bin", "/bin"]
    for tool in ("sh", "iptables-save", "nft", "nsenter"):
        found = proc.which(tool)
        assert found is None or (os.path.isabs(found) and found.startswith(("/usr/bin/", "/bin/")))
        found = backend.which(tool)
        assert found is None or found.startswith(("/usr/bin/", "/bin/"))
    assert proc.which("cnit-only-here") is None and backend.which("cnit-only-here") is None
    monkeypatch.delenv("PATH")
    assert proc.search_path() == proc.DEFAULT_PATH.split(":")


def test_run_never_spawns_from_cwd(cwd_with_fakes, monkeypatch):
    monkeypatch.setenv("PATH", ":relative:/usr/bin:/bin")
    with pytest.raises(FileNotFoundError):
        proc.run(["cnit-only-here"])
    rc, out, _ = proc.run(["sh", "-c", "echo real"])
    assert rc == 0 and out == b"real\n"
    assert not cwd_with_fakes.exists()


def test_cni_path_entries(tmp_path, monkeypatch):
    (tmp_path / "bin").mkdir()
    for p in (tmp_path / "cnit-plug", tmp_path / "bin" / "cnit-plug"):
        p.write_text("#!/bin/sh\n")
        p.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    for bad in ("", ":", ".", "./", ":.:", "bin/..", [""], [".", ""]):
        with pytest.raises(CNIError) as ei:
            invoke.find_in_path("cnit-plug", bad)
        assert ei.value.code == 7, bad
    # a relative entry other than the cwd itself is used as given, as Go's FindInPath does
    assert invoke.find_in_path("cnit-plug", ":.:bin") == "bin/cnit-plug"
    assert invoke.find_in_path("cnit-plug", ["", str(tmp_path)]) == str(tmp_path / "cnit-plug")
