"""cni.std.process: output capture, stdin feeding, timeouts, missing binaries; same answers as subprocess."""
from __future__ import annotations

import time

import pytest

from cni.std import process as proc


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


@pytest.mark.parametrize("argv,stdin", [
    (["true"], b""),
    (["false"], b""),
    (["sh", "-c", "printf 'a\\0b'; printf e >&2; exit 7"], b""),
    (["cat"], bytes(range(256)) * 1000),
    (["sh", "-c", "kill -TERM $$"], b""),
    (["env"], b""),
])
def test_run_agrees_with_subprocess(argv, stdin):
    import subprocess  # the stdlib twin, test side only
    env = {"PATH": "/usr/bin:/bin", "X": "1"}
    want = subprocess.run(argv, input=stdin, capture_output=True, env=env, timeout=10)
    assert proc.run(argv, stdin, env=env) == (want.returncode, want.stdout, want.stderr)


def test_which_agrees_with_shutil():
    import shutil
    for name in ("sh", "cat", "ip", "no-such-tool-cnit"):
        assert proc.which(name, "/usr/sbin:/usr/bin:/sbin:/bin") == \
            shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
