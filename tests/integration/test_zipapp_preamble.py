"""The sh preamble of every zipapp: VERSION from shell builtins under dash, bash-as-sh and
busybox sh, unchanged by a hostile environment; everything else reaches the interpreter."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from helpers import BIN

SAMPLE_ADD = {"cniVersion": "1.0.0", "name": "net1", "type": "sample", "anotherAwesomeArg": "x",
              "prevResult": {"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.5/16"}]}}
VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]


@pytest.fixture(scope="module")
def shells(tmp_path_factory, built_bins):
    """name -> argv prefix that runs a script as the kernel would with `#!/bin/sh`."""
    d = tmp_path_factory.mktemp("sh")
    out = {}
    if os.path.exists("/bin/dash"):
        out["dash"] = ["/bin/dash"]
    for name, target in (("bash", "/bin/bash"), ("busybox", "/bin/busybox")):
        if os.path.exists(target):
            os.makedirs(d / name)
            os.symlink(target, d / name / "sh")          # invoked as `sh`: POSIX mode / ash
            out[name] = [str(d / name / "sh")]
    if not out:
        pytest.skip("no POSIX shell found")
    return out


def _hostile(tmp) -> dict:
    evil = tmp / "evil"
    evil.mkdir(exist_ok=True)
    marker = tmp / "pwned"
    script = f"#!/bin/sh\necho pwned; touch {marker}\n"
    for tool in ("printf", "[", "test", "cat", "echo", "read", "python3", "sh", "env"):
        p = evil / tool
        p.write_text(script)
        p.chmod(0o755)
    (tmp / "envfile").write_text(f"touch {marker}; echo pwned\n")
    fn = "() { echo pwned; touch %s; }" % marker
    env = {"PATH": f"{evil}:/usr/bin:/bin", "IFS": "0123456789.:{}\"v ", "ENV": str(tmp / "envfile"),
           "BASH_ENV": str(tmp / "envfile"), "CDPATH": str(evil), "SHELLOPTS": "xtrace",
           "PS4": "$(touch %s)" % marker, "LC_ALL": "C"}
    for f in ("printf", "exec", "read", "exit", "case", "test", "[", "echo", "unset", "command"):
        env[f"BASH_FUNC_{f}%%"] = fn
        env[f"BASH_FUNC_{f}()"] = fn
    return env, marker


def _ran(r) -> bool:
    """Did a planted function or tool print its line?"""
    return b"pwned" in (r.stdout + r.stderr).split(b"\n")


def _run(argv, env, stdin: bytes):
    return subprocess.run(argv, input=stdin, capture_output=True, env=env, timeout=30)


@pytest.mark.parametrize("conf,want", [
    (b'{"cniVersion":"0.4.0"}', "0.4.0"),
    (b'{\n  "name": "x",\n  "cniVersion" : "0.3.1",\n  "type": "bridge"\n}\n', "0.3.1"),
    (b'{"cniVersion":"1.0.0"', "1.0.0"),                     # no final newline, cut short
    (b"", "1.1.0"), (b"\xff garbage", "1.1.0"), (b'{"cniVersion":""}', "1.1.0"),
    (b'{"cniVersion":"0.4.0\\"}"}', "1.1.0"), (b'{"cniVersion":"1.0.0; rm -rf /"}', "1.1.0"),
    (b'{"cniVersion":"$(touch /tmp/x)"}', "1.1.0"), (b'{"cniVersion":"1.2.3.4.5.6.7.8.9"}', "1.1.0"),
    (b'{"cniVersion":"0.4.0"}' * 300, "0.4.0"),
])
def test_version_from_every_shell(shells, conf, want):
    exe = os.path.join(BIN, "bridge")
    for name, sh in shells.items():
        r = _run(sh + [exe], {"CNI_COMMAND": "VERSION", "PATH": "/usr/bin:/bin"}, conf)
        assert r.returncode == 0, (name, r)
        out = json.loads(r.stdout)
        assert out == {"cniVersion": want, "supportedVersions": VERSIONS}, (name, r.stdout)
        assert r.stderr == b"", (name, r.stderr)


def test_version_matches_the_python_answer():
    """The preamble and __main__ (python3 FILE) give the same bytes for the same stdin."""
    exe = os.path.join(BIN, "tuning")
    for conf in (b'{"cniVersion":"0.4.0"}', b"garbage", b'{"cniVersion":"9.9.9"}', b""):
        env = {"CNI_COMMAND": "VERSION", "PATH": "/usr/bin:/bin"}
        a = _run([exe], env, conf)
        b = _run(["/usr/bin/python3", "-I", exe], env, conf)
        assert (a.returncode, a.stdout) == (b.returncode, b.stdout), conf


def test_hostile_environment_changes_nothing(shells, tmp_path):
    exe = os.path.join(BIN, "sample")
    env, marker = _hostile(tmp_path)
    clean = _run(next(iter(shells.values())) + [exe],
                 {"CNI_COMMAND": "VERSION", "PATH": "/usr/bin:/bin"}, b'{"cniVersion":"0.4.0"}')
    add_env = {"CNI_CONTAINERID": "c1", "CNI_NETNS": "/run/netns/x", "CNI_IFNAME": "eth0",
               "CNI_PATH": BIN}
    tried = 0
    for name, sh in shells.items():
        r = _run(sh + [exe], dict(env, CNI_COMMAND="VERSION"), b'{"cniVersion":"0.4.0"}')
        assert r.returncode == 0 and r.stdout == clean.stdout, (name, r)
        assert not _ran(r), (name, r)            # bash may quote the bodies it refused
        r = _run(sh + [exe], dict(env, CNI_COMMAND="ADD", **add_env), json.dumps(SAMPLE_ADD).encode())
        assert r.returncode == 0, (name, r)
        assert json.loads(r.stdout)["ips"][0]["address"] == "10.1.0.5/16", (name, r.stdout)
        assert not _ran(r), (name, r)
        tried += 1
    assert tried and not marker.exists()


def test_bash_refusing_special_builtin_functions_runs_nothing(shells, tmp_path):
    """bash as sh, told POSIXLY_CORRECT, refuses to start when the environment defines a
    function named after a special builtin (exit 2, as for any /bin/sh script): nothing of
    the function runs and nothing reaches stdout. Only `#!/bin/sh -p` would avoid it, and
    busybox sh rejects -p."""
    if "bash" not in shells:
        pytest.skip("no bash")
    env, marker = _hostile(tmp_path)
    env.update(POSIXLY_CORRECT="1", CNI_COMMAND="VERSION")
    r = _run(shells["bash"] + [os.path.join(BIN, "sample")], env, b'{"cniVersion":"0.4.0"}')
    assert r.stdout == b"" and not _ran(r) and not marker.exists(), r


def test_the_kernel_path_and_other_verbs(tmp_path):
    """Exec'd directly (the kernel runs /bin/sh): VERSION, and ADD reaching Python with the
    arguments and environment intact; `python3 FILE` still runs the archive."""
    exe = os.path.join(BIN, "sample")
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/run/netns/x",
           "CNI_IFNAME": "eth0", "CNI_PATH": BIN, "PATH": "/usr/bin:/bin",
           "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=a b\tc"}
    for argv in ([exe], ["/usr/bin/python3", exe]):
        r = _run(argv, env, json.dumps(SAMPLE_ADD).encode())
        assert r.returncode == 0 and json.loads(r.stdout)["ips"], (argv, r)
    # a copy under a name with spaces and a leading dash still works
    odd = tmp_path / "-odd name"
    shutil.copy(exe, odd)
    r = _run([str(odd)], env, json.dumps(SAMPLE_ADD).encode())
    assert r.returncode == 0, r
    r = _run([str(odd)], dict(env, CNI_COMMAND="VERSION"), b'{"cniVersion":"0.4.0"}')
    assert r.returncode == 0 and json.loads(r.stdout)["cniVersion"] == "0.4.0"
