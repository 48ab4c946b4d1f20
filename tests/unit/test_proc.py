"""cni.proc.run: output capture, stdin feeding, timeouts, missing binaries."""
from __future__ import annotations

import time

import pytest

from cni import proc


def test_captures_and_feeds():
    rc, out, err = proc.run(["sh", "-c", "cat; echo err >&2; exit 3"], b"x" * 300000)
    assert rc == 3 and out == b"x" * 300000 and err == b"err\n"


def test_timeout_kills():
    t = time.monotonic()
    with pytest.raises(TimeoutError):
        proc.run(["sleep", "5"], timeout=0.3)
    assert time.monotonic() - t < 2


def test_timeout_when_child_closes_its_pipes_but_lingers():
    t = time.monotonic()
    with pytest.raises(TimeoutError):
        proc.run(["sh", "-c", "exec >&- 2>&- <&-; sleep 5"], timeout=0.3)
    assert time.monotonic() - t < 2


def test_missing_binary():
    with pytest.raises(FileNotFoundError):
        proc.run(["/nonexistent/cnit-binary"])
    assert proc.which("sh") and proc.which("cnit-no-such-tool") is None
