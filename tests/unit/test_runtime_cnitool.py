"""cnitool's help and error lines, in-process (bin/cnitool is tested in integration)."""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

from cni.errors import CNIError
from cni.runtime import cnitool

LIB = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(cnitool.__file__))))


def run(*argv, env=None):
    out, err = io.StringIO(), io.StringIO()
    rc = cnitool.run(list(argv), env=env or {}, out=out, err=err)
    return rc, out.getvalue(), err.getvalue()


def test_help_documents_every_environment_variable():
    with open(cnitool.__file__) as f:
        src = f.read()
    read = set(re.findall(r'env(?:\.get\(|\[)"([A-Z_]+)"', src))
    assert {"NETCONFPATH", "CNI_PATH", "CAP_ARGS", "CNI_TIMEOUT"} <= read  # the regex works
    read |= {"CNI_DEBUG"}  # read by cni.log and cni.invoke on cnitool's path
    for flag in ("--help", "-h", "help"):
        rc, out, err = run(flag)
        assert rc == 0 and err == ""
        env_section = out.split("environment:")[1]
        for var in sorted(read):
            assert re.search(rf"^  {var} ", env_section, re.M), f"{var} not in --help"


def test_usage_error_exit_2():
    rc, out, err = run("frob")
    assert rc == 2 and out == "" and err.startswith("cnitool: unknown command 'frob'\nusage:")


def test_error_is_one_line_and_json_on_request(tmp_path):
    (tmp_path / "n.conflist").write_text("{bad")
    env = {"NETCONFPATH": str(tmp_path), "CNI_PATH": str(tmp_path)}
    rc, out, err = run("add", "n", "/x", env=env)
    assert rc == 1 and out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith("cnitool: add n: error 6: error parsing network config")
    rc, out, err = run("--json", "del", "n", "/x", env=env)
    assert rc == 1 and json.loads(out)["code"] == 6 and len(err.splitlines()) == 1


def test_multiline_details_become_one_line(monkeypatch):
    def boom(*a, **kw):
        raise CNIError("plugin said", "line one\nline two\n", code=100)
    monkeypatch.setattr(cnitool, "cmd_list", boom)
    rc, out, err = run("list")
    assert rc == 1 and err == "cnitool: list: error 100: plugin said: line one line two\n"


def test_python_m_cnitool():
    r = subprocess.run([sys.executable, "-m", "cni.runtime.cnitool", "--help"],
                       env={"PYTHONPATH": LIB, "PATH": os.environ.get("PATH", "")},
                       capture_output=True, text=True)
    assert r.returncode == 0 and "CNI_CACHE_DIR" in r.stdout
